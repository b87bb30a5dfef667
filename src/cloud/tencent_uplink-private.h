/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Between the Tencent driver (tencent_uplink.c: the devices, their data-template messages,
 * commands, login and registration) and its gateway topology (tencent_subdev.c: the gateway's
 * session, bind and online of the sub-devices over it, the platform's binding changes,
 * docs/protocols/gateway.md §G15-§G18). Nothing here is for other modules.
 */

#include <mosquitto.h>
#include <openssl/ssl.h>

#include "gw/cloud.h"
#include "gw/credstore.h"
#include "gw/tencent.h"
#include "gw/util.h"

/* A device's part of the driver (gw_cloud_dev.priv). */
struct dev {
	struct gw_cred cred; /* PSK or certificate + key, once loaded (cred.psk or cred.cert) */
	bool has_cred;
	/* during dev_connect only */
	struct gw_tencent_connect *conn; /* not kept per device */
	char psk_hex[GW_TENCENT_PSK_HEX_MAX];
	SSL_CTX *ctx;

	/* max_rate records a second (docs/protocols/tencent.md §1.7: 30 up per device) */
	struct gw_rate rate;
	char fw[GW_TENCENT_THING_ID_MAX];        /* the node's firmware version, from its records */
	bool info_sent;                          /* report_info of fw sent on this session */
	uint64_t token_seq;                      /* for the tokens of session messages */
	char status_token[GW_TENCENT_TOKEN_MAX]; /* of the get_status sent on this session */

	/* a sub-device (tencent_subdev.c): the operation (bind or online) whose result it waits
	 * for while it attaches; §G15 has no message id, a result is matched by type and name */
	bool gw_waiting;
	enum gw_tencent_gw_type gw_op;
};

/* The uplink's part (gw_cloud.priv). */
struct uplink {
	int clock_said; /* expiry = auto: 0 not yet logged, 1 trusted, -1 not trusted */
};

#define ulog(d, level, ...) gw_cloud_log((d)->cloud, level, __VA_ARGS__)
#define DEV(d) ((struct dev *)(d)->priv)

/* tencent_uplink.c: a device's downlink (its own $thing/down topics), the end of what a session
 * owed it, and a login as product_id/d->name with the PSK psk (NULL: d's stored certificate) in
 * the TLS mode of the configuration (tls = yes, psk or no; ops->tls sets it up) */
void gw_tencent_uplink_message(struct gw_cloud_dev *d, const struct mosquitto_message *msg);
void gw_tencent_uplink_session_end(struct gw_cloud_dev *d);
int gw_tencent_uplink_login(struct gw_cloud_dev *d, const char *product_id, const char *psk,
			    struct gw_cloud_login *ret, char *why, size_t size);

/* tencent_subdev.c */
extern const struct gw_cloud_gateway_ops gw_tencent_gateway_ops;
