/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * One libmosquitto client driven by the sd-event loop, for the per-device cloud sessions
 * (aliyun_uplink.c, tencent_uplink.c): its socket watched with epoll (EPOLLOUT only while
 * libmosquitto has something to write), and a timer every quarter keepalive (at most 15 s)
 * for libmosquitto's pings and timeouts. Nothing polls.
 *
 * The owner keeps its own "lost" flag, which its libmosquitto callbacks set; after every read,
 * write or timer round the flag or an error ends the session: hooks.lost(user_data, rc) is
 * called, which must free this object (and the mosquitto client), and then hooks.after. After
 * a good socket round hooks.after is called (to send what waits). A socket error with no
 * message yet leaves its text in the owner's last_error.
 */

#include <mosquitto.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

struct gw_mosqev;

struct gw_mosqev_hooks {
	void (*lost)(void *user_data, int rc); /* rc: MOSQ_ERR_* of the round, or success */
	void (*after)(void *user_data);
};

/* mosq was just connected (mosquitto_connect_async). lost and last_error are the owner's and
 * outlive the object. Returns 0 or -errno (nothing armed). */
int gw_mosqev_new(sd_event *event, struct mosquitto *mosq, uint32_t keepalive_s,
		  const bool *lost, char *last_error, size_t last_error_size,
		  const struct gw_mosqev_hooks *hooks, void *user_data, struct gw_mosqev **ret);
/* Call after queueing something with libmosquitto: watches for writability. Accepts NULL.
 * Returns -errno when the socket cannot be watched (logged by the caller). */
int gw_mosqev_update(struct gw_mosqev *m);
/* Accepts NULL; returns NULL. Does not touch the mosquitto client. */
struct gw_mosqev *gw_mosqev_free(struct gw_mosqev *m);

/*
 * For a libmosquitto log callback (any client, also mqtt.c's): keeps a line logged at error or
 * warning level in last_error, the reason the owner shows when the session ends. libmosquitto
 * logs only "certificate verify failed" for a refused server certificate; the handshake's
 * verification result is added, e.g. "(certificate has expired)", or "(the certificate does
 * not name the host H)" after libmosquitto's own host name check. Other levels are ignored.
 */
void gw_mosqev_note_log(struct mosquitto *mosq, int level, const char *str, char *last_error,
			size_t last_error_size);
