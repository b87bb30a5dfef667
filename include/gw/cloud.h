/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The cloud core: the engine of the per-device cloud uplinks. Under the first-level driver
 * table (gw/uplink.h) a cloud is a second-level table, struct gw_cloud_ops, and nothing else:
 * src/cloud/aliyun_uplink.c and src/cloud/tencent_uplink.c are such drivers (as chrony's
 * refclock drivers are to refclock.c, or iwd's TLS-based EAP methods to eap-tls-common.c).
 *
 * The core owns:
 *  - the device table: one struct gw_cloud_dev per node device (the device name of its
 *    records), at most max_devices, each with one libmosquitto session on the event loop
 *    (gw/mosqev.h) and a timer that paces its attempts (one new session or registration per
 *    ops->pace_ms for the whole uplink, and ops->connect_gap_ms between a device's CONNECTs);
 *  - the feed pump: one spool reader (gw/cloudfeed.h) handing records to the devices while
 *    the in-flight window has room; a record whose device is not online, or whose rate the
 *    driver says is spent, waits in the spool without holding back other devices' records;
 *    one that can never be sent is dead-lettered;
 *  - per-device rate hooks: the driver's rate_take/rate_give_back, and one rate timer that
 *    reads the waiting records again (and lets the driver flush what it queued, rate_tick);
 *  - session loss: the reason shown, the reconnect backoff (a session up for ops->stable_s
 *    starts again from the minimum) and a stored credential refused at login, which goes into
 *    the credential store's refusal marker and is retried slowly;
 *  - provisioning with refusal backoff: the credential store first, then (ops->dynamic)
 *    registration through the driver's register_start, its outcome counted, logged and
 *    scheduled by the core;
 *  - the command path: command_rate, the hand-over to the gateway's command path, the
 *    node's answer or the code for its failure; the driver parses requests and builds and
 *    publishes answers (ops->answer);
 *  - the counters (one table of names, in the order each cloud lists them), the summary and
 *    the status, and the gw_uplink_ops glue (gw_cloud_uplink_*).
 *
 * A driver supplies: its subscriptions and topic classification (message), login (CONNECT
 * fields and TLS set-up), record -> message (build), downlink parsing and answers, its limits,
 * registration start and cancel, and extra status fields.
 *
 * The core logs through gw_log_uplink() under the uplink's name, as the drivers do; neither
 * ever logs a secret. Everything passed in is borrowed.
 */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <mosquitto.h>
#include <systemd/sd-event.h>

#include "gw/cloudfeed.h"
#include "gw/cloudreg.h"
#include "gw/config.h"
#include "gw/credstore.h"
#include "gw/http.h"
#include "gw/mosqev.h"
#include "gw/payload.h"
#include "gw/spool.h"
#include "gw/uplink.h"
#include "gw/util.h"

/* How often a limit a peer can hit at will (command_rate, an answer queue) is logged above
 * debug; each line carries the running count. */
#define GW_CLOUD_LIMIT_LOG_US (10ULL * 1000000)

/* The counters a cloud uplink keeps beyond its feed's (gw_cloudfeed_stats). */
struct gw_cloud_counters {
	uint64_t rejected; /* acknowledged, then refused by the platform's reply */
	uint64_t connects;
	uint64_t connection_losses;
	uint64_t registrations;
	uint64_t registration_failures;
	uint64_t commands;
	uint64_t commands_throttled;
	uint64_t answers_dropped;
	uint64_t too_large;
	uint64_t model_refused; /* values the thing model refused (left out, or dead-lettered) */
	uint64_t devices;
	uint64_t online;
};

/*
 * The counters by name, in the order names lists them (NULL-terminated): produced, acked,
 * queued, dropped_overflow, dropped_enospc, deadlettered, lost_corrupt, inflight, resent (the
 * feed's) and the fields of gw_cloud_counters. gw_cloud_log_counters() logs them as one line
 * "counters: a=1 b=2 ..."; gw_cloud_counters_json() returns them as an object (NULL without
 * memory).
 */
void gw_cloud_log_counters(const char *uplink, const char *const *names,
			   const struct gw_cloudfeed_stats *feed, const struct gw_cloud_counters *c);
json_t *gw_cloud_counters_json(const char *const *names, const struct gw_cloudfeed_stats *feed,
			       const struct gw_cloud_counters *c);
/* The summary every uplink gives (gw/uplink.h). */
void gw_cloud_summary(const struct gw_cloudfeed_stats *feed, const struct gw_cloud_counters *c,
		      struct gw_uplink_summary *ret);
/* The status fields every cloud uplink shows beside its devices: backlog_bytes, oldest_age_ms
 * and counters (names as above). */
void gw_cloud_status(struct gw_cloudfeed *feed, const char *const *names,
		     const struct gw_cloud_counters *c, json_t *o);

/*
 * Reads records while the window has room and hands each to send (1: sent, 0: it waits or
 * was dead-lettered), then moves the cursor. True when nothing is in flight afterwards (the
 * gateway may finish stopping).
 */
bool gw_cloud_pump(struct gw_cloudfeed *feed, const char *uplink,
		   int (*send)(void *user_data, const struct gw_spool_record *rec),
		   void *user_data);

/* Why a session ended: its CONNACK refusal, a TLS failure (also when tls_from_log and the
 * last error is an OpenSSL one), a keepalive timeout, the last error or libmosquitto's text
 * for rc. Returns buf. */
const char *gw_cloud_describe_loss(int connack, int rc, const char *last_error,
				   bool tls_from_log, char *buf, size_t size);
/* The delay before the next attempt of a session that ended: backoff between cfg's
 * reconnect_min_ms and reconnect_max_ms, from the minimum again when it was online for
 * stable_s. *backoff_ms is the device's. */
uint32_t gw_cloud_loss_delay(const struct gw_config_uplink *cfg, uint32_t *backoff_ms,
			     bool was_online, uint64_t connected_at_us, uint32_t stable_s);

/* Whole seconds until the wall-clock time at_ms, 0 when it is past. */
long long gw_cloud_secs_until(int64_t at_ms);
/* Records a refusal (why) in the device's needs-provisioning marker; st gets the next retry.
 * Without a marker it still waits as long as a first refusal would (logged). */
void gw_cloud_mark_refused(struct gw_credstore *store, const char *uplink, const char *device,
			   const char *why, struct gw_cred_state *st);
/* Whether the marker says cred was refused at login after it was obtained (st filled); a
 * credential stored later wins. An unreadable marker is logged and counts as no refusal. */
bool gw_cloud_cred_refused(struct gw_credstore *store, const char *uplink, const char *device,
			   const struct gw_cred *cred, struct gw_cred_state *st);

/* command_rate and command_burst of an uplink, and its refusals. */
struct gw_cloud_throttle {
	struct gw_rate rate;
	uint64_t refused;   /* the commands_throttled counter */
	uint64_t logged_us; /* gw_every: one warning per GW_CLOUD_LIMIT_LOG_US */
};

void gw_cloud_throttle_init(struct gw_cloud_throttle *t, const struct gw_config_uplink *cfg);
/* Takes a token for a command (what) of device. Without one: counted, logged (a warning per
 * interval, else debug) as answered with code, and true: the caller answers it with
 * GW_CLOUD_THROTTLED_TEXT. */
bool gw_cloud_throttled(struct gw_cloud_throttle *t, const struct gw_config_uplink *cfg,
			const char *device, const char *what, int code);
#define GW_CLOUD_THROTTLED_TEXT "too many commands: more than command_rate a second; try again later"

/* ---- the engine: one cloud uplink and its devices ---- */

#define GW_CLOUD_TOPIC_MAX 256 /* both clouds: a topic is at most 255 bytes */
#define GW_CLOUD_SUBS_MAX 12
#define GW_CLOUD_WHAT_MAX 256  /* a command as the log names it */
/* rate_take: the record waits without a wake-up of its own (something queued before it
 * already armed the rate timer) */
#define GW_CLOUD_WAIT_QUEUED UINT64_MAX

enum gw_cloud_dev_state {
	GW_CLOUD_DEV_IDLE,        /* its timer brings the next credential or connection attempt */
	GW_CLOUD_DEV_REGISTERING, /* its registration (the driver's register_start) is running */
	GW_CLOUD_DEV_CONNECTING,  /* CONNECT sent */
	GW_CLOUD_DEV_SUBSCRIBING, /* CONNACK 0 (a sub-device: attached), waiting for the SUBACKs */
	GW_CLOUD_DEV_ONLINE,
	GW_CLOUD_DEV_ATTACHING, /* a sub-device: its attach is out (topology.c) */
};

/* Why a sub-device is held back from attaching (topology = gateway). */
enum gw_cloud_hold {
	GW_CLOUD_HOLD_NONE,
	GW_CLOUD_HOLD_REFUSED,  /* refused for good: records dead-lettered until its retry */
	GW_CLOUD_HOLD_DISABLED, /* disabled in the console: records wait */
	GW_CLOUD_HOLD_IDLE,     /* logged out after idle_logout_s: a record logs it in again */
};

struct gw_cloud;

/* One node device of a cloud uplink. Drivers read name, state, mosq (NULL without a session)
 * and their own priv; the rest is the core's. */
struct gw_cloud_dev {
	struct gw_cloud *cloud;
	char name[GW_CREDSTORE_NAME_MAX + 1];
	enum gw_cloud_dev_state state;
	struct mosquitto *mosq;
	void *priv; /* ops->dev_size bytes, zeroed, the driver's */

	struct gw_mosqev *ev; /* its socket and timer on the event loop */
	void *reg;            /* the running registration (ops->register_start) */
	uint32_t reg_backoff_ms;
	uint32_t backoff_ms;
	uint64_t last_connect_us; /* when its last CONNECT attempt began; 0: never */
	uint64_t connected_at_us;
	sd_event_source *timer;
	int sub_mid[GW_CLOUD_SUBS_MAX];
	unsigned subacked;
	char *last_error; /* of the last session (or attach), for the status; NULL: none */

	/* a sub-device (topology = gateway), topology.c's */
	bool sub;
	bool attached; /* topology added / bound, as remembered */
	bool ready;    /* has its credential: waits for the next attach call */
	enum gw_cloud_hold hold;
	char *held_why;           /* NULL when not held */
	uint32_t held_backoff_ms; /* of a refusal that is not its credential's */
	uint64_t last_record_us;
};

/* One cloud uplink. Drivers read event, cfg, cred_dir, store and priv, and count in n; the
 * rest is the core's. */
struct gw_cloud {
	const struct gw_cloud_ops *ops;
	sd_event *event;
	const struct gw_config_uplink *cfg;
	struct gw_uplink *self;
	struct gw_uplink_commands commands;
	char *cred_dir;
	struct gw_credstore *store;
	struct gw_cloudfeed *feed;
	struct gw_http *http; /* for registrations (ops->dynamic) */
	void *priv; /* ops->size bytes, zeroed, the driver's */

	struct gw_cloud_dev **devs; /* cfg->max_devices slots */
	size_t n_devs;
	/* topology = gateway: the gateway device and topology.c's state */
	struct gw_cloud_dev *gw;
	struct gw_cloud_topology *topo;
	uint64_t next_slot_us; /* pacing of new sessions and registrations */
	sd_event_source *rate_timer; /* the first device whose rate was spent may send again */
	uint64_t rate_wake_us;       /* when it fires; 0 when not armed */

	struct gw_cloud_counters n;
	struct gw_cloud_throttle throttle; /* commands from the cloud, before any reaches a node */
	/* the identifiers whose refusal by the thing model was logged (each once) */
	char **model_logged;
	size_t n_model_logged;
};

/* A command from the cloud on its way to a node: the start of the driver's own command
 * (malloc'd), freed by the core once answered. */
struct gw_cloud_cmd {
	struct gw_cloud_dev *d;
	/* not answered when it fails: it stays pending on the platform and a later session
	 * fetches it again */
	bool stays_pending;
	char what[GW_CLOUD_WHAT_MAX]; /* for the log: "property set 123", ... */
};

/* What a session logs in with; the strings stay valid until ops->login_end(). */
struct gw_cloud_login {
	const char *client_id;
	const char *username;
	const char *password; /* NULL: none sent */
	const char *host;     /* cfg->host wins over it */
	uint16_t port;
};
/* The login of a cloud's CONNECT parameters conn (client_id, username, password, host, port),
 * with its password or without. */
#define GW_CLOUD_LOGIN(conn, with_password)                                                \
	((struct gw_cloud_login){ (conn).client_id, (conn).username,                       \
				  (with_password) ? (conn).password : NULL, (conn).host,  \
				  (conn).port })

/* The codes a cloud answers commands with when the node did not answer (gw/command.h). */
struct gw_cloud_codes {
	int ok;         /* the node's 200 */
	int not_found;  /* ABSENT, PORT_CLOSED, NODE_GONE */
	int no_channel; /* NO_CHANNEL */
	int failed;     /* FAILED */
	int throttled;  /* BUSY, and command_rate */
	int invalid;    /* INVALID */
	int unknown;    /* TIMEOUT, CANCELLED: the outcome is unknown */
	int no_path;    /* the gateway has no command path */
};

/* A session's subscriptions: one SUBSCRIBE with all of them (together) or one each, the
 * filter of the i-th, what each carries (for a refusal), and the text of a failure. */
struct gw_cloud_subs {
	size_t n;
	const char *const *what;
	bool together;
	int qos;
	int (*filter)(struct gw_cloud_dev *d, size_t i, char *buf, size_t size);
	const char *failed;
};

struct gw_cloud_gateway_ops;

struct gw_cloud_ops {
	const char *title; /* "Aliyun": "device name '...' is not valid for Aliyun (...)" */
	size_t size;       /* of the uplink's priv */
	size_t dev_size;   /* of each device's priv */

	/* limits */
	uint32_t pace_ms;        /* between two new sessions or registrations of the uplink */
	uint32_t connect_gap_ms; /* between two CONNECTs of one device; 0: none */
	uint32_t recheck_ms;     /* a missing or unusable credential is looked for again */
	uint32_t stable_s;       /* a session up this long resets its backoff */
	uint32_t command_timeout_ms;
	bool tls_from_log;       /* an OpenSSL error in the last error is a TLS failure */
	bool give_back_unsent;   /* a record libmosquitto did not take gives its rate back */
	bool retry_whole_s;      /* a refusal's retry is armed in whole seconds */
	const char *recheck_verb; /* "retrying", "looking again": after a credential's load error */
	const char *const *log_counters;    /* the counters' log line, in its order */
	const char *const *status_counters; /* the status' counters */

	/* The uplink: set-up beyond the core's (logs what failed; 0 or -errno). Optional. */
	int (*init)(struct gw_cloud *c);
	/* Extra status fields. Optional. */
	void (*status)(struct gw_cloud *c, json_t *o);

	/* A device's name is one this cloud takes (besides a credential-store name). Optional. */
	bool (*name_valid)(const char *name);
	void (*dev_init)(struct gw_cloud_dev *d);
	void (*dev_fini)(struct gw_cloud_dev *d); /* wipes its credential */

	/* records (o: the parsed JSON of the payload, NULL when it is not JSON): seen (optional)
	 * looks at each record of an online d before it is sent or waits for d's rate (-errno:
	 * dead-letter with why); build is the
	 * message (the preview's too: pure but for the clock) */
	int (*record_seen)(struct gw_cloud_dev *d, json_t *o, char *why, size_t why_size);
	int (*build)(const struct gw_config_uplink *cfg, const struct gw_spool_record *rec,
		     const struct gw_payload_view *v, json_t *o, const char *device, char *topic,
		     size_t size, char **payload, size_t *len, char *why, size_t why_size);
	/* rate: 0 when d may send a record now, else how long it waits (µs) or
	 * GW_CLOUD_WAIT_QUEUED; give_back when the message was not sent; rate_tick when the rate
	 * timer fires, for an online device (optional) */
	uint64_t (*rate_take)(struct gw_cloud_dev *d);
	void (*rate_give_back)(struct gw_cloud_dev *d);
	void (*rate_tick)(struct gw_cloud_dev *d);

	/* login: the CONNECT fields (why set on failure), the TLS set-up of the client (a
	 * MOSQ_ERR_*), and the end of both (wipes what login left) */
	int (*login)(struct gw_cloud_dev *d, struct gw_cloud_login *l, char *why, size_t why_size);
	int (*tls)(struct gw_cloud_dev *d, struct mosquitto *mosq);
	void (*login_end)(struct gw_cloud_dev *d);
	/* the credential: whether d has one, its name in the log ("DeviceSecret"), a loaded one
	 * fits (else logged), taking it, forgetting it, one registered (optional: forget) */
	bool (*has_cred)(const struct gw_cloud_dev *d);
	const char *(*cred_name)(const struct gw_cloud_dev *d);
	bool (*cred_fits)(struct gw_cloud_dev *d, const struct gw_cred *cred);
	void (*cred_take)(struct gw_cloud_dev *d, struct gw_cred *cred);
	void (*cred_forget)(struct gw_cloud_dev *d);
	void (*cred_registered)(struct gw_cloud_dev *d, const struct gw_cred *cred);
	/* no credential (r: the load's -ENOENT or -EBADMSG, reason its text) and no
	 * registration: logs what to provision */
	void (*cred_missing)(struct gw_cloud_dev *d, int r, const char *reason);
	/* what the device's stored credential is called in "its stored %s was refused" */
	const char *(*stored_name)(const struct gw_config_uplink *cfg);
	/* what a provisioning brings after a refusal: "a new %s in <dir>/<dev>.json" */
	const char *new_cred_name;
	/* the loss is the platform refusing the stored credential at login: how (one line) */
	bool (*login_refused)(struct gw_cloud_dev *d, char *how, size_t how_size);
	bool refusal_is_error;      /* the refusal becomes the device's last error */
	bool reregister_on_refusal; /* dynamic: a refused credential is registered again */

	/* registration: whether cfg registers devices, start (0 or -errno, *via the transport
	 * a failure to start is told under), cancel; the texts of its outcomes */
	bool (*dynamic)(const struct gw_config_uplink *cfg);
	int (*register_start)(struct gw_cloud_dev *d, const char **via);
	void (*register_cancel)(struct gw_cloud_dev *d, void *reg);
	const char *(*cred_desc)(const struct gw_cred *cred); /* "DeviceSecret": what was stored */
	const char *refused_needs;  /* "it needs provisioning; " before the next attempt, or "" */
	const char *refused_hint;   /* " (an activated ...)" after it, or "" */

	/* the session's subscriptions (a sub-device's, on its gateway's session) */
	struct gw_cloud_subs subs;
	void (*online)(struct gw_cloud_dev *d);      /* optional: all SUBACKs came */
	void (*session_end)(struct gw_cloud_dev *d); /* optional: what the session owed */
	void (*message)(struct gw_cloud_dev *d, const struct mosquitto_message *msg);

	/* commands: answer c (message NULL: success), and the codes of the answers */
	void (*answer)(struct gw_cloud_cmd *c, int code, const char *message, json_t *data);
	struct gw_cloud_codes codes;

	/* topology = gateway (NULL: the cloud has no gateway topology) */
	const struct gw_cloud_gateway_ops *gateway;
};

/*
 * topology = gateway (docs/protocols/gateway.md): one device, the gateway (gw_cloud.gw, not in
 * the device table), has the only session; every node device is a sub-device of it. A
 * sub-device has no session of its own: once the gateway is online it gets its credential (the
 * store, or ops->register_start, which may use the gateway's session), is attached (topology
 * added or bound once, remembered in <state_dir>/topology/<uplink>.json; logged in or online in
 * every gateway session), its ops->subs are subscribed on the gateway's session, and it is
 * online: its records, commands and answers use the gateway's session (d->mosq is the
 * gateway's). Its records wait while it is not online; a sub-device the platform refused has
 * them dead-lettered with the reason until its refusal's retry (the credential store's marker
 * and backoff). The gateway's loss ends every sub-device's attachment; the next gateway session
 * attaches them all again before any of their records flows.
 *
 * The driver's part is this table; the cloud's direct-mode hooks (ops) serve the sub-devices
 * as they serve direct devices, the gateway's login and messages are these.
 */
struct gw_cloud_gateway_ops {
	uint32_t attach_max;        /* sub-devices per attach call */
	uint32_t attach_gap_ms;     /* between two attach calls */
	uint32_t attach_timeout_ms; /* an attach not answered in this time failed */
	/* the gateway's product (for the topology file) and the sub-devices' */
	const char *(*product)(const struct gw_config_uplink *cfg);
	const char *(*sub_product)(const struct gw_config_uplink *cfg);
	/* the gateway's own session: its login (cfg's gateway identity) and subscriptions */
	int (*login)(struct gw_cloud_dev *gw, struct gw_cloud_login *l, char *why, size_t why_size);
	struct gw_cloud_subs subs;
	/* a sub-device's subscriptions on the gateway's session (n 0: the cloud's ops->subs) */
	struct gw_cloud_subs sub_subs;
	/* a message on the gateway's session: its own, or a sub-device's (gw_cloud_sub_find()
	 * and the cloud's ops->message for it) */
	void (*message)(struct gw_cloud_dev *gw, const struct mosquitto_message *msg);
	/* publishes what attaches the n sub-devices (their topology first where
	 * gw_cloud_sub_attached_before() is false); every one's outcome comes back through
	 * gw_cloud_sub_attach_done(). -errno: nothing went out (all failed). */
	int (*attach)(struct gw_cloud *c, struct gw_cloud_dev *const *subs, size_t n);
	/* logs it out (offline), unanswered: idle_logout_s */
	void (*detach)(struct gw_cloud_dev *sub);
	/* the gateway went online (optional: the time, a topology query) */
	void (*online)(struct gw_cloud_dev *gw);
};

enum gw_cloud_attach {
	GW_CLOUD_ATTACH_OK,      /* logged in / online: its subscriptions follow */
	GW_CLOUD_ATTACH_FAILED,  /* not now (no answer, throttled, busy): again with backoff */
	GW_CLOUD_ATTACH_READD,   /* the platform lost its topology: add it again, then log in */
	GW_CLOUD_ATTACH_REFUSED, /* refused for good (deleted, not found, not allowed): its
				  * records are dead-lettered until the refusal's retry (in memory:
				  * 1 min doubling up to 1 h) */
	GW_CLOUD_ATTACH_BAD_CREDENTIAL, /* its credential was refused (a wrong sign): as REFUSED,
					 * with the retry of the credential store's refusal
					 * marker, which a newer credential ends */
};

/* The outcome of the sub-device's attach (why: for the log and status unless OK). A
 * sub-device not attaching is ignored (an answer that came too late). */
void gw_cloud_sub_attach_done(struct gw_cloud_dev *sub, enum gw_cloud_attach result,
			      const char *why);
/* Whether its topology was added / it was bound (remembered across restarts). */
bool gw_cloud_sub_attached_before(const struct gw_cloud_dev *sub);
/* The platform says the sub-device's topology or binding is gone (true) or exists again. */
void gw_cloud_sub_set_attached(struct gw_cloud_dev *sub, bool attached);
/* The platform logged it out (520, a topology change): attached again with backoff. */
void gw_cloud_sub_logged_out(struct gw_cloud_dev *sub, const char *why);
/* Disabled in the console (its records wait) and enabled again. */
void gw_cloud_sub_disable(struct gw_cloud_dev *sub, const char *why);
void gw_cloud_sub_enable(struct gw_cloud_dev *sub);
/* Refused for good outside an attach (deleted, unbound): as GW_CLOUD_ATTACH_REFUSED; with
 * forget its topology is forgotten too. The same for its credential (as
 * GW_CLOUD_ATTACH_BAD_CREDENTIAL). */
void gw_cloud_sub_refuse(struct gw_cloud_dev *sub, const char *why, bool forget);
void gw_cloud_sub_refuse_credential(struct gw_cloud_dev *sub, const char *why);
/* The sub-device of that name, NULL when none (or not a gateway topology). */
struct gw_cloud_dev *gw_cloud_sub_find(struct gw_cloud *c, const char *name);
/* Whether d is its uplink's gateway device. */
static inline bool gw_cloud_dev_is_gateway(const struct gw_cloud_dev *d)
{
	return d->cloud && d == d->cloud->gw;
}

/* ---- the gw_uplink_ops glue: a driver's new and preview call these ---- */
int gw_cloud_uplink_new(const struct gw_uplink_env *env, const struct gw_cloud_ops *ops,
			void **ret);
int gw_cloud_uplink_preview(const struct gw_cloud_ops *ops, const struct gw_config_uplink *cfg,
			    const struct gw_spool_record *rec, char *topic, size_t topic_size,
			    char **payload, size_t *len, char *why, size_t why_size);
/* Defines name_, the gw_uplink_ops of the uplink type type_ whose cloud is cloud_ops_: its new
 * and preview go through the core with cloud_ops_, the rest is the core's. */
#define GW_CLOUD_DRIVER(name_, type_, cloud_ops_)                                             \
	static int name_##_new(const struct gw_uplink_env *env, void **ret)                   \
	{                                                                                     \
		return gw_cloud_uplink_new(env, &(cloud_ops_), ret);                          \
	}                                                                                     \
	static int name_##_preview(const struct gw_config_uplink *cfg,                        \
				   const struct gw_spool_record *rec, char *topic,            \
				   size_t topic_size, char **payload, size_t *len, char *why, \
				   size_t why_size)                                           \
	{                                                                                     \
		return gw_cloud_uplink_preview(&(cloud_ops_), cfg, rec, topic, topic_size,    \
					       payload, len, why, why_size);                  \
	}                                                                                     \
	const struct gw_uplink_ops name_ = {                                                  \
		.type = (type_),                                                              \
		.new = name_##_new,                                                           \
		.free = gw_cloud_uplink_free,                                                 \
		.start = gw_cloud_uplink_start,                                               \
		.kick = gw_cloud_uplink_kick,                                                 \
		.save = gw_cloud_uplink_save,                                                 \
		.draining = gw_cloud_uplink_draining,                                         \
		.summary = gw_cloud_uplink_summary,                                           \
		.log_counters = gw_cloud_uplink_log_counters,                                 \
		.status = gw_cloud_uplink_status,                                             \
		.preview = name_##_preview,                                                   \
	}
void gw_cloud_uplink_free(void *impl);
int gw_cloud_uplink_start(void *impl);
void gw_cloud_uplink_kick(void *impl, uint64_t seq);
int gw_cloud_uplink_save(void *impl);
size_t gw_cloud_uplink_draining(const void *impl);
void gw_cloud_uplink_summary(const void *impl, struct gw_uplink_summary *ret);
void gw_cloud_uplink_log_counters(const void *impl);
void gw_cloud_uplink_status(void *impl, json_t *o);

/* ---- for drivers ---- */

/* The fields of a record's payload o: params (an object), its reading time (-1 for a reading
 * that is not an event and not older than replay_ms: live data is stamped by the platform, a
 * replayed reading keeps its time) and the event id (NULL when none). -EBADMSG with why. */
int gw_cloud_record_fields(json_t *o, const struct gw_payload_view *v, int64_t replay_ms,
			   json_t **params, int64_t *time_ms, const char **event, char *why,
			   size_t why_size);

#define gw_cloud_log(c, level, ...) gw_log_uplink(level, (c)->cfg->name, __VA_ARGS__)

/* The session is going away (its round tears it down), or what its last session left. */
bool gw_cloud_dev_lost(const struct gw_cloud_dev *d);
int gw_cloud_dev_connack(const struct gw_cloud_dev *d);
const char *gw_cloud_dev_error(const struct gw_cloud_dev *d);
/* Call after queueing something with libmosquitto (logs a failure). */
void gw_cloud_dev_update(struct gw_cloud_dev *d);
/* Its timer: the next attempt in delay_ms. */
void gw_cloud_dev_arm(struct gw_cloud_dev *d, uint64_t delay_ms);
/* The driver's registration ended (it is freed by the driver's module). */
void gw_cloud_dev_registered(struct gw_cloud_dev *d, const struct gw_cloud_reg_outcome *o);
/*
 * A TLS client context (an SSL_CTX) that presents a stored certificate and key (PEM) and
 * verifies the server itself: ca_file, the peer's chain, the host name (an address against the
 * certificate's IP names), TLS >= 1.2. For libmosquitto, which takes client certificates only
 * as files: nothing of the key is written anywhere. 0, or -EINVAL with why.
 */
int gw_cloud_tls_ctx(const struct gw_cred *cred, const char *host, const char *ca_file,
		     void **ret, char *why, size_t why_size);

/* Arms the rate timer to fire in wait_us, unless it fires sooner anyway. */
void gw_cloud_rate_wake(struct gw_cloud *c, uint64_t wait_us);

/* commands: command_rate (true: counted, answered with code_throttled and freed); the
 * hand-over to the gateway's command path (answered through ops->answer, possibly before it
 * returns; params stay the caller's); a refusal answered at once (logged, freed) */
bool gw_cloud_cmd_throttled(struct gw_cloud_cmd *c);
void gw_cloud_cmd_send(struct gw_cloud_cmd *c, enum gw_command_kind kind, const char *name,
		       json_t *params);
void gw_cloud_cmd_refuse(struct gw_cloud_cmd *c, int code, const char *reason);
