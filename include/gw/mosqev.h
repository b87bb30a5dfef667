/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The one libmosquitto adapter: a libmosquitto client driven by the sd-event loop, used by the
 * MQTT uplink (mqtt.c), the cloud sessions (src/cloud/core.c) and Aliyun's registration over
 * MQTT (src/cloud/aliyun_register.c). Its socket is watched with epoll (EPOLLOUT only while
 * libmosquitto has something to write), and a timer every quarter keepalive (at most 15 s)
 * runs libmosquitto's pings and timeouts. Nothing polls.
 *
 * The object owns the client and the state of the session: whether it is lost (the broker or
 * the network ended it, or the owner gave it up with gw_mosqev_end()), the CONNACK refusal,
 * and the last error text (a socket error, or a libmosquitto log line at warning or error
 * level, see gw_mosqev_note_log()). After every read, write or timer round a lost session or an
 * error from libmosquitto ends it: hooks.lost(user_data, rc) is called, which must free this
 * object (it may read its state first); after a good socket round hooks.after is called (to
 * send what waits). libmosquitto's callbacks reach the owner through the other hooks, never
 * from inside gw_mosqev_new().
 */

#include <mosquitto.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#define GW_MOSQEV_ERROR_MAX 256

struct gw_mosqev;

/* Flags of gw_mosqev_new(). */
enum {
	/* no keepalive timer: the owner bounds the session itself (a registration) */
	GW_MOSQEV_NO_TICK = 1 << 0,
	/* a session ended by a socket round with no error text says "connection closed" even
	 * without a hang-up (otherwise only a hang-up does) */
	GW_MOSQEV_SAY_CLOSED = 1 << 1,
};

struct gw_mosqev_hooks {
	/* The CONNACK: 0, or the refusal (the session then ends). Optional. */
	void (*connect)(void *user_data, int rc);
	void (*subscribe)(void *user_data, int mid, int qos_count, const int *granted_qos);
	void (*message)(void *user_data, const struct mosquitto_message *msg);
	void (*publish)(void *user_data, int mid);
	/* Every libmosquitto log line, after gw_mosqev_note_log(). Optional. */
	void (*log)(void *user_data, int level, const char *str);
	/* Before each timer round: a MOSQ_ERR_* other than success ends the session with it
	 * (no socket error is looked for). Optional. */
	int (*tick)(void *user_data);
	/* The session ended (rc: MOSQ_ERR_* of the round, or success). Must free the object. */
	void (*lost)(void *user_data, int rc);
	/* After a good socket round. Optional. */
	void (*after)(void *user_data);
};

/* A new client (MQTT 3.1.1) with hooks, not connected yet: set its options through
 * gw_mosqev_client(), then gw_mosqev_connect(). hooks is copied. Returns 0 or -errno. */
int gw_mosqev_new(sd_event *event, const char *client_id, bool clean_session, unsigned flags,
		  const struct gw_mosqev_hooks *hooks, void *user_data, struct gw_mosqev **ret);
/* Destroys the client, without a DISCONNECT. Accepts NULL; returns NULL. */
struct gw_mosqev *gw_mosqev_free(struct gw_mosqev *m);
/* The client, for its options and for publishing. */
struct mosquitto *gw_mosqev_client(struct gw_mosqev *m);
/* Starts the connection (mosquitto_connect_async) and arms the timer: MOSQ_ERR_* (a failure
 * leaves its text, if any, in the last error; MOSQ_ERR_NOMEM when the timer cannot be armed). */
int gw_mosqev_connect(struct gw_mosqev *m, const char *host, uint16_t port,
		      uint32_t keepalive_s);
/* Call after queueing something with libmosquitto: watches for writability. Accepts NULL.
 * Returns -errno when the socket cannot be watched (logged by the caller). */
int gw_mosqev_update(struct gw_mosqev *m);
/*
 * Batching (docs/performance.md): while hold is on, the owner reads the session on its own
 * clock. The first time the socket wakes the loop with something to read after hold went on,
 * the socket stops being watched for reading (not for writing, nor hang-ups and errors), and
 * gw_mosqev_poll() reads what has come since, with the same callbacks and hooks as a wake-up
 * would (hooks.lost included: the object may be gone after it), round after round while the
 * socket has more (at most 64 rounds: libmosquitto reads only as many packets a round as it
 * has QoS 1 and 2 messages queued). Taking hold off watches the
 * socket for reading again; what waits there wakes the loop at once. Accepts NULL.
 */
void gw_mosqev_hold(struct gw_mosqev *m, bool hold);
void gw_mosqev_poll(struct gw_mosqev *m);
/* The owner gives the session up; why (may be NULL) becomes the last error unless one is
 * there. It ends after the current round. */
void gw_mosqev_end(struct gw_mosqev *m, const char *why);
/* Best effort goodbye: a DISCONNECT written at once, when the session is up. */
void gw_mosqev_hang_up(struct gw_mosqev *m);
/* Stops passing libmosquitto's log lines on (it formats each one while a callback is set):
 * for a session that is up and wants no debug lines. */
void gw_mosqev_quiet(struct gw_mosqev *m);

bool gw_mosqev_lost(const struct gw_mosqev *m);
/* CONNACK 0 came and the broker has not closed the session. */
bool gw_mosqev_up(const struct gw_mosqev *m);
/* The CONNACK refusal, 0 when none. */
int gw_mosqev_connack(const struct gw_mosqev *m);
/* The last error text, "" when none. */
const char *gw_mosqev_last_error(const struct gw_mosqev *m);

/*
 * For a libmosquitto log callback: keeps a line logged at error or warning level in last_error,
 * the reason the owner shows when the session ends. libmosquitto logs only "certificate verify
 * failed" for a refused server certificate; the handshake's verification result is added,
 * e.g. "(certificate has expired)", or "(the certificate does not name the host H)" after
 * libmosquitto's own host name check. Other levels are ignored.
 */
void gw_mosqev_note_log(struct mosquitto *mosq, int level, const char *str, char *last_error,
			size_t last_error_size);
