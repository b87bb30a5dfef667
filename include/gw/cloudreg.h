/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * A registration job of the cloud core: what the dynamic registration of one device
 * (src/cloud/aliyun_register.c, src/cloud/tencent_register.c) has in common whatever the
 * cloud and the transport. The module embeds a struct gw_cloud_reg at the start of its own
 * object and gives two hooks; the job owns
 *
 *  - the timer: it fires at once after gw_cloud_reg_init() (hooks->step starts the first
 *    transport) and whenever the module arms it (a deadline), until the outcome is decided;
 *  - the outcome: gw_cloud_reg_finish() decides it (result, the transport that decided, one
 *    line without secrets) and the timer hands it to hooks->done, so the caller's callback
 *    never runs inside a library call nor inside the module's start function;
 *  - storing: gw_cloud_reg_store() saves the issued credential with gw_credstore_save() before
 *    anyone can use it, and the outcome carries a copy of what was stored;
 *  - the HTTPS request in flight, cancelled with the job, and its trust: https_ca_file, the CA
 *    file of the registration host, which is not the MQTT endpoint's (gw_cloud_reg_https_ca());
 *  - whether a FAILED outcome was a peer that did not verify (untrusted): the core backs that
 *    off like a refusal instead of retrying at the reconnect pace.
 *
 * The job never logs (the modules log the start of a transport, the caller the outcome).
 */

#include <stdbool.h>
#include <stddef.h>
#include <systemd/sd-event.h>

#include "gw/config.h"
#include "gw/credstore.h"
#include "gw/http.h"

enum gw_cloud_reg_result {
	GW_CLOUD_REG_STORED,
	GW_CLOUD_REG_REFUSED,
	GW_CLOUD_REG_FAILED,
};

struct gw_cloud_reg_outcome {
	enum gw_cloud_reg_result result;
	const char *via;            /* the transport that decided ("HTTPS", "MQTT"), or NULL */
	const char *why;            /* REFUSED, FAILED: one line without secrets; else "" */
	const struct gw_cred *cred; /* STORED: what was stored; valid during the callback */
	bool untrusted;             /* FAILED: the registration host's certificate did not verify
				     * against the trust in use (why names host, trust and cause) */
};

struct gw_cloud_reg;

struct gw_cloud_reg_hooks {
	/* The timer fired before the outcome was decided: the start, or a deadline the module
	 * armed (gw_cloud_reg_arm()). */
	void (*step)(struct gw_cloud_reg *job);
	/* The outcome: hand it on and free the module's object (gw_cloud_reg_fini() first). */
	void (*done)(struct gw_cloud_reg *job, const struct gw_cloud_reg_outcome *o);
};

struct gw_cloud_reg {
	sd_event *event;
	struct gw_http *http;
	struct gw_credstore *store;
	const struct gw_config_uplink *cfg;
	char device[GW_CREDSTORE_NAME_MAX + 1];
	struct gw_http_request *req; /* the module's POST in flight, cancelled with the job */
	/* The trust of the HTTPS registration host: a PEM file, or NULL for the system's CA bundle.
	 * Set by the module at start (gw_cloud_reg_https_ca()); borrowed. */
	const char *https_ca_file;
	bool untrusted; /* the last transport failed because its peer did not verify */

	const struct gw_cloud_reg_hooks *hooks;
	sd_event_source *timer;
	bool decided;
	enum gw_cloud_reg_result result;
	const char *via;
	char why[GW_CREDSTORE_REASON_MAX + 128];
	struct gw_cred cred; /* STORED: a copy of what was stored */
};

/* A new module object of size bytes (zeroed) that starts with its job (device is copied; the
 * rest is borrowed), the timer due at once. Returns 0 with it in *ret, or -errno from sd-event;
 * *ret is untouched on failure. */
int gw_cloud_reg_new(size_t size, sd_event *event, struct gw_http *http,
		     struct gw_credstore *store, const struct gw_config_uplink *cfg,
		     const char *device, const struct gw_cloud_reg_hooks *hooks, void **ret);
/* Stops the timer and the request, wipes what the job holds and frees the module's object.
 * Accepts NULL. */
void gw_cloud_reg_free(struct gw_cloud_reg *job);
/* The timer (hooks->step) in ms. */
void gw_cloud_reg_arm(struct gw_cloud_reg *job, uint64_t ms);
/* The outcome is decided: hooks->done gets it from the timer. */
void gw_cloud_reg_finish(struct gw_cloud_reg *job, enum gw_cloud_reg_result result,
			 const char *via, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Stores cred (issued over via, what names it in a failure) and finishes: STORED, or FAILED
 * when it cannot be stored, in which case it is not used either. */
void gw_cloud_reg_store(struct gw_cloud_reg *job, const struct gw_cred *cred, const char *via,
			const char *what);
/* Whether resp is an answer to read (HTTP 200). Else why says what came instead: -EIO, the
 * transport's error (and job->untrusted says whether it was a peer that did not verify, in which
 * case why names the host, the trust and the cause); -EPROTO, another status (a redirect is never
 * followed: it could lead to plain http or another host). */
int gw_cloud_reg_http_status(struct gw_cloud_reg *job, const struct gw_http_response *resp,
			     char *why, size_t why_size);
/*
 * The CA file of an HTTPS registration host. The platforms serve registration under another
 * root than MQTT (docs/protocols/tencent.md §1.6: DigiCert Global Root CA for Tencent's v2 host,
 * the Iothub root only for MQTT), so a registration cannot simply use the uplink's ca_file:
 *
 *   register_ca_file given (the key)                      that file
 *   ca_file NULL or mqtt_default (the bundled MQTT roots)  register_default, the bundled roots of
 *                                                          the registration host, when it can be
 *                                                          read; else NULL (the system's bundle)
 *   another ca_file (the administrator's)                  that file
 *
 * Aliyun passes its ca_file (iot-auth chains to the MQTT roots); Tencent passes NULL, so its
 * registration never uses the MQTT endpoint's ca_file. Returns one of its arguments, or NULL.
 */
const char *gw_cloud_reg_https_ca(const char *register_ca_file, const char *ca_file,
				  const char *mqtt_default, const char *register_default);
