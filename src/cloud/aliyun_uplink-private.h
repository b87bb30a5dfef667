/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Between the Aliyun driver (aliyun_uplink.c: the devices, their messages and commands) and its
 * gateway topology (aliyun_subdev.c: the gateway's session, topology, logins and registration
 * through it, docs/protocols/gateway.md §G2-§G14). Nothing here is for other modules.
 */

#include <mosquitto.h>

#include "gw/aliyun.h"
#include "gw/cloud.h"
#include "gw/util.h"

/* An answer to a command that found its device's window full: sent when it frees. */
struct reply {
	struct reply *next;
	int code;
	char *payload;
	size_t len;
	char topic[GW_ALIYUN_TOPIC_MAX];
	char what[GW_CLOUD_WHAT_MAX];
};

/* A device's part of the driver (gw_cloud_dev.priv). */
struct dev {
	char *secret;    /* the DeviceSecret or DeviceToken, once loaded or registered and stored */
	char *client_id; /* with a DeviceToken: the ClientID from /ext/regnwl (connwl login) */
	struct gw_aliyun_connect *conn; /* during dev_connect only (1 KiB: not kept per device) */

	/* its messages in the last GW_ALIYUN_UPLINK_RATE_WINDOW_MS, at most max_rate */
	struct gw_window rate;
	bool rate_limited;     /* its last record waited for the window; for the log */
	struct reply *replies; /* queued answers, oldest first; they go before its records */
	struct reply **replies_tail;
	unsigned n_replies;       /* at most GW_ALIYUN_UPLINK_REPLIES_MAX */
	uint64_t replies_dropped; /* answers dropped because the queue was full */

	bool solo; /* a sub-device whose batch failed: it is added and logs in alone
		    * (aliyun_subdev.c) */
};

struct gw_aliyun_gwreq;

/* The uplink's part (gw_cloud.priv). */
struct uplink {
	uint64_t drop_logged_us; /* answers dropped: one warning per GW_CLOUD_LIMIT_LOG_US */
	/* topology = gateway: the requests on the gateway's session waiting for their replies */
	struct gw_aliyun_gwreq *reqs;
	uint32_t next_id;
};

#define ulog(d, level, ...) gw_cloud_log((d)->cloud, level, __VA_ARGS__)
#define DEV(d) ((struct dev *)(d)->priv)
#define UPLINK(d) ((struct uplink *)(d)->cloud->priv)

/* aliyun_uplink.c: a device's downlink (its own /sys topics), its subscriptions, and a login
 * as product_key/d->name with secret */
void gw_aliyun_uplink_message(struct gw_cloud_dev *d, const struct mosquitto_message *msg);
int gw_aliyun_uplink_sub_filter(struct gw_cloud_dev *d, size_t i, char *buf, size_t size);
#define GW_ALIYUN_UPLINK_SUBS 4
int gw_aliyun_uplink_login(struct gw_cloud_dev *d, const char *product_key, const char *secret,
			   struct gw_cloud_login *ret, char *why, size_t size);

/* aliyun_subdev.c */
extern const struct gw_cloud_gateway_ops gw_aliyun_gateway_ops;
/* registration of sub-device d through the gateway's session (auth = register: thing/sub/
 * register; regnwl: product_register), its cancel, and the gateway session's end */
int gw_aliyun_subdev_register_start(struct gw_cloud_dev *d, const char **via);
void gw_aliyun_subdev_register_cancel(struct gw_cloud_dev *d, void *reg);
void gw_aliyun_subdev_session_end(struct gw_cloud_dev *gw);
