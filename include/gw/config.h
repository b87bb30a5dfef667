/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Configuration: /etc/sensorgw/sensorgw.conf (ini, read with libinih) becomes an immutable,
 * fully validated struct gw_config. Validation collects every problem, each as
 * "FILE:LINE: message", before giving up, so one run of --check-config shows them all.
 *
 * Sections (see conf/sensorgw.conf and man/sensorgw.conf.5):
 *   [gateway]        state_dir, device_name, log_level
 *   [port NAME]      one per serial port
 *   [uplink NAME]    one per uplink: type = mqtt, aliyun (Alibaba Cloud IoT Platform) or tencent
 *                    (Tencent Cloud IoT Explorer)
 *   [map FIELD]      optional mapping of a frame field to a thing-model identifier
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "gw/frame.h"

#define GW_CONFIG_DEFAULT_PATH "/etc/sensorgw/sensorgw.conf"
#define GW_CONFIG_DEFAULT_CONTROL_SOCKET "/run/sensorgw/control"
#define GW_CONFIG_MAX_PORTS 32
#define GW_CONFIG_MAX_UPLINKS 8
#define GW_CONFIG_MAX_MAPS 128
#define GW_CONFIG_ALIYUN_MAX_RATE 1000 /* max_rate of a type = aliyun uplink: per device */
#define GW_CONFIG_NAME_MAX 32 /* section names: [A-Za-z0-9_.-], 1..31 bytes */
#define GW_CONFIG_EX_CONFIG 78 /* EX_CONFIG from sysexits.h */

enum gw_parity {
	GW_PARITY_NONE,
	GW_PARITY_ODD,
	GW_PARITY_EVEN,
};

enum gw_flow {
	GW_FLOW_NONE,
	GW_FLOW_RTSCTS,
	GW_FLOW_XONXOFF,
};

enum gw_uplink_type {
	GW_UPLINK_MQTT,
	GW_UPLINK_ALIYUN,
	GW_UPLINK_TENCENT,
};

/* How a cloud uplink gets each device's credential. */
enum gw_cloud_auth {
	GW_CLOUD_AUTH_DEVICE_SECRET, /* aliyun: provisioned beforehand into the credential store */
	GW_CLOUD_AUTH_REGISTER,      /* 一型一密: aliyun pre-registered, DeviceSecret (HTTPS or
				      * MQTT); tencent: PSK or certificate over HTTPS */
	GW_CLOUD_AUTH_REGNWL,        /* aliyun, 一型一密 without pre-registration: ClientID +
				      * DeviceToken over MQTT, then logins with authType=connwl */
	GW_CLOUD_AUTH_PSK,           /* tencent: the device's PSK, provisioned into the store */
	GW_CLOUD_AUTH_CERTIFICATE,   /* tencent: certificate + key, provisioned into the store */
};

/* Which transport auth = register fetches the DeviceSecret over. */
enum gw_register_via {
	GW_REGISTER_VIA_AUTO,  /* HTTPS; MQTT when HTTPS fails without a refusal */
	GW_REGISTER_VIA_HTTPS, /* HTTPS only */
	GW_REGISTER_VIA_MQTT,  /* MQTT only */
};

/* What params of an Alink event post hold (type = aliyun, event_params). */
enum gw_event_params {
	GW_EVENT_PARAMS_VALUE_TIME, /* {"value":{outputs},"time":ms}, the record's time kept */
	GW_EVENT_PARAMS_OUTPUTS,    /* the outputs themselves, as the official SDKs send them */
};

enum gw_order {
	GW_ORDER_FIFO,       /* oldest first: the backlog drains before live records */
	GW_ORDER_LIVE_FIRST, /* the newest record goes out at once; the backlog fills the gaps */
};

/* Where an uplink that has never run (no cursor file in the spool) starts reading. */
enum gw_start_from {
	GW_START_FROM_NOW,    /* records stored from its first start on */
	GW_START_FROM_OLDEST, /* also every record still stored when it was added */
};

struct gw_config_port {
	char name[GW_CONFIG_NAME_MAX];
	unsigned line; /* line of the section header, for later messages */
	/* Exactly one way to find the device: a path (/dev/ttyAMA0, /dev/serial/by-id/..., a pty)
	 * or a USB match (any of vid/pid/serial/description; libserialport enumerates). */
	char *path;
	int match_vid; /* -1 = any */
	int match_pid; /* -1 = any */
	char *match_serial;
	char *match_description; /* substring of the libserialport description */
	uint32_t baud;   /* 50..921600, a rate termios knows; default 115200 */
	uint8_t data_bits; /* 5..8; default 8 */
	enum gw_parity parity;
	uint8_t stop_bits; /* 1 or 2 */
	enum gw_flow flow;
	enum gw_framing framing; /* default text */
	uint32_t reopen_min_ms; /* backoff while the device is absent: default 500 */
	uint32_t reopen_max_ms; /* default 30000 */
};

/* sign_method of a cloud uplink: its HMAC (aliyun: all three; tencent: the first two) */
enum gw_sign_method {
	GW_SIGN_HMAC_SHA256,
	GW_SIGN_HMAC_SHA1,
	GW_SIGN_HMAC_MD5,
};

/* register_api of a type = tencent uplink with auth = register */
enum gw_register_api {
	GW_REGISTER_API_V2,     /* POST /device/register, signed X-TC-* headers */
	GW_REGISTER_API_LEGACY, /* POST /register/dev, a signed body */
};

/*
 * Each uplink type owns its keys (the common ones are in struct gw_config_uplink): their table
 * and the checks run when the section ends live beside the type's driver (src/mqtt_config.c,
 * src/cloud/cloud_config.c for the keys both clouds take, src/cloud/aliyun_config.c,
 * src/cloud/tencent_config.c). A key of another type is refused with "KEY: not used by type =
 * TYPE". The sub-structures of the other types stay zero (NULL strings).
 */

/* type = mqtt */
/* MQTT discovery messages an mqtt uplink publishes. */
enum gw_discovery {
	GW_DISCOVERY_NONE,
	GW_DISCOVERY_HOMEASSISTANT,
};

struct gw_config_mqtt {
	char *cert_file; /* client certificate (optional; needs key_file) */
	char *key_file;
	char *username;
	char *password;     /* the secret itself, loaded from password, password_file or
			 * password_credential; never logged */
	char *client_id;    /* default "sensorgw-<hostname>-<uplink name>" */
	uint8_t qos;        /* 0 or 1; default 1 */
	bool clean_session; /* default true */
	char *topic; /* template; default "sensorgw/{device}/{kind}"; placeholders {device} {uid}
		      * {port} {addr} {kind} {uplink}; never holds '+' or '#' */
	enum gw_order order;       /* default fifo */
	uint32_t deadletter_after; /* tries before a record goes to the dead-letter file; 5 */
	enum gw_discovery discovery; /* default none (docs/homeassistant.md) */
	char *discovery_prefix;      /* default "homeassistant"; never holds '+' or '#' */
	uint32_t node_timeout_s;     /* a node's availability goes offline after this; 600 */
};

/* How a cloud uplink's nodes reach the platform (topology). */
enum gw_topology {
	GW_TOPOLOGY_DIRECT,  /* each node device has its own session */
	GW_TOPOLOGY_GATEWAY, /* one gateway device's session carries every node as a sub-device
			      * (docs/protocols/gateway.md) */
};

/* max_devices with topology = gateway: the platforms' sub-devices per gateway
 * (docs/protocols/gateway.md §G14, §G18) */
#define GW_CONFIG_GATEWAY_DEVICES_MAX 2000
#define GW_CONFIG_DIRECT_DEVICES_MAX 256

/* What a cloud uplink does with a record whose value its thing model refuses. */
enum gw_model_refused {
	GW_MODEL_LEAVE_OUT,  /* the value is left out (counted, logged once per identifier) */
	GW_MODEL_DEADLETTER, /* the record goes to the dead-letter file */
};

struct gw_thingmodel;

/* type = aliyun and type = tencent: the keys both clouds take */
struct gw_config_cloud {
	char *region; /* aliyun: default cn-shanghai unless instance_id is set; tencent: default
		       * ap-guangzhou */
	enum gw_cloud_auth auth; /* aliyun: default device-secret; tencent: default psk */
	char *product_secret;    /* auth = register or regnwl: from product_secret_file, _credential
			       * or inline */
	/* auth = register: https:// only; default from region (docs/protocols/aliyun.md §2,
	 * docs/protocols/tencent.md §2); aliyun: not with register_via = mqtt */
	char *register_url;
	/* the registration host's CA file (HTTPS); default: the roots bundled for that host, or
	 * ca_file when it is the administrator's own (gw_cloud_reg_https_ca()) */
	char *register_ca_file;
	enum gw_sign_method sign_method; /* default hmacsha256 */
	uint32_t max_devices;   /* devices at most; direct: 1..256, gateway: up to the cloud's
			       * sub-devices per gateway; default 32 */
	uint32_t command_rate;  /* commands from the cloud a second, per uplink, 0..1000, 0 = no
				 * limit; default 10 */
	uint32_t command_burst; /* ... and at once after a quiet spell, 1..1000; default 20 */
	/* thing_model = FILE: the TSL (aliyun) or data template (tencent) exported from the
	 * console, read when the configuration is; NULL: values go out as decoded */
	char *thing_model;
	struct gw_thingmodel *model;
	int64_t model_mtime_ns; /* of the file when it was read: a reload reads a changed one */
	enum gw_model_refused model_refused; /* thing_model_refused; default leave-out */
	enum gw_topology topology;           /* default direct */
	/* topology = gateway: the gateway device (its product is the cloud's own key) and its
	 * DeviceSecret (aliyun) or PSK (tencent), from gateway_secret_file or _credential */
	char *gateway_device_name;
	char *gateway_secret;
	uint32_t idle_logout_s; /* a sub-device silent this long is logged out; 0 = never */
};

/* type = aliyun */
struct gw_config_aliyun {
	char *product_key;         /* required; with topology = gateway, the sub-devices' */
	char *gateway_product_key; /* topology = gateway: required */
	char *instance_id; /* the new public or an Enterprise instance's MQTT endpoint */
	enum gw_register_via register_via; /* auth = register only; default auto */
	enum gw_event_params event_params; /* default value-time */
};

/* type = tencent */
struct gw_config_tencent {
	char *product_id;                  /* required; topology = gateway: the sub-devices' */
	char *gateway_product_id;          /* topology = gateway: required */
	enum gw_register_api register_api; /* auth = register: v2 (default) or legacy */
	uint32_t sdkappid;                 /* default 12010126, what the official SDK sends */
	uint64_t expiry;  /* login signature expiry (Unix s); 0 = the protocol module's default */
	bool expiry_auto; /* expiry = auto: now + 600 s when the clock is synchronised */
};

struct gw_config_uplink {
	char name[GW_CONFIG_NAME_MAX];
	unsigned line;
	enum gw_uplink_type type;
	/* the keys every type takes */
	char *host;    /* default 127.0.0.1; aliyun: NULL, the platform's host for region or
		      * instance_id; tencent: from product_id and region */
	uint16_t port; /* default 8883 with TLS, 1883 without; aliyun: 0, the TLS port of that
			* host kind */
	bool tls;      /* mqtt: default true when ca_file is set; aliyun: always; tencent: true
			* unless tls = false (mqtt and tencent take the key) */
	/* tencent, tls = psk: TLS-PSK (docs/protocols/tencent.md §1.4) instead of certificates;
	 * tls is true */
	bool tls_psk;
	char *ca_file;      /* must exist and be readable; aliyun, tencent: default the installed
			* roots */
	uint32_t keepalive; /* seconds, 5..65535; default 60; aliyun: 30..1200, default 300;
			     * tencent: 5..900, default 240 */
	uint32_t reconnect_min_ms; /* default 1000 */
	uint32_t reconnect_max_ms; /* default 60000 */
	uint32_t max_inflight;     /* 1..1000 messages awaiting PUBACK; default 64 */
	uint32_t max_rate;         /* messages per second, 0 = unlimited (default); aliyun: per
				    * device, default 30, at most GW_CONFIG_ALIYUN_MAX_RATE;
				    * tencent: per device, 1..30, default 30 */
	enum gw_start_from start_from; /* a new uplink's first cursor; default now */

	struct gw_config_mqtt mqtt;
	struct gw_config_cloud cloud; /* aliyun and tencent */
	struct gw_config_aliyun aliyun;
	struct gw_config_tencent tencent;
};

enum gw_map_type {
	GW_MAP_TYPE_AUTO, /* keep the decoded type (scaled ints become doubles) */
	GW_MAP_TYPE_INT,
	GW_MAP_TYPE_FLOAT,
	GW_MAP_TYPE_BOOL,
	GW_MAP_TYPE_STRING,
};

struct gw_config_map {
	char field[GW_KEY_MAX]; /* the section name: the key as it arrives in frames */
	unsigned line;
	char identifier[GW_KEY_MAX * 2]; /* thing-model identifier; default = field */
	double scale;  /* default 1 */
	double offset; /* default 0: value = raw * scale + offset */
	enum gw_map_type type;
	char port[GW_CONFIG_NAME_MAX]; /* empty = every port */
	char unit[24];                 /* Home Assistant unit_of_measurement; empty = none */
	char device_class[32];         /* Home Assistant device_class; empty = none */
};

struct gw_config {
	char *path; /* the file it came from */
	/* [gateway] */
	char *state_dir;   /* default /var/lib/sensorgw */
	char *device_name; /* template, default "stm32-{uid}"; placeholders {uid} {port} {addr} */
	int log_level;     /* LOG_ERR..LOG_DEBUG (syslog levels); default LOG_INFO */
	uint64_t spool_max_bytes;     /* default 64 MiB; 0 = no limit */
	uint64_t min_free_bytes;      /* default 16 MiB */
	uint64_t spool_segment_bytes; /* default 1 MiB */
	uint32_t sync_records;        /* fdatasync after this many records; default 100 */
	uint32_t sync_ms;             /* ... or this long after the first unsynced one; 200 */
	uint32_t batch_ms;            /* batch window, 0..50 ms, 0 = off; 4 (docs/performance.md) */
	char *control_socket;         /* sensorgwctl's socket; default /run/sensorgw/control */
	uint32_t max_nodes;           /* nodes the node table takes, 1..GW_NODES_MAX; 256 */
	char *metrics_file;           /* Prometheus text written here (".prom"); NULL = none */
	uint32_t metrics_interval_s;  /* ... every this many seconds, 1..3600; 15 */
	size_t n_ports;
	struct gw_config_port ports[GW_CONFIG_MAX_PORTS];
	size_t n_uplinks;
	struct gw_config_uplink uplinks[GW_CONFIG_MAX_UPLINKS];
	size_t n_maps;
	struct gw_config_map maps[GW_CONFIG_MAX_MAPS];
	/* references beyond the loader's own (gw_config_ref); 0 from gw_config_load */
	unsigned extra_refs;
};

/*
 * Loads and validates path. On success returns 0 and a new config in *ret. On failure returns
 * -EINVAL (or -ENOENT/-EACCES/-EISDIR/... when the file itself cannot be read; then the one
 * message is "PATH:0: cannot open: <strerror>") and writes every problem to diag, one per line,
 * as "PATH:LINE: message", sorted by line, LINE 0 (nothing applies) last. diag may be NULL.
 * *ret is untouched on failure. Secrets named by *_file and *_credential are read here
 * ($CREDENTIALS_DIRECTORY for the latter); no message ever contains a secret. A file that holds
 * an inline secret and is group- or world-readable is refused.
 */
int gw_config_load(const char *path, FILE *diag, struct gw_config **ret);
/*
 * A config is immutable and reference-counted, so that objects built from one of its sections
 * (a port, an uplink) can outlive the reload that replaced it when their section did not
 * change. gw_config_load() returns it with one reference; gw_config_ref() adds one and
 * returns c; gw_config_free() drops one, and the last wipes the secrets and frees it. All
 * accept NULL; gw_config_free() returns NULL.
 */
struct gw_config *gw_config_ref(struct gw_config *c);
struct gw_config *gw_config_free(struct gw_config *c);
/* Whether two sections configure the same thing: every setting equal (secrets included),
 * where they are written aside. */
bool gw_config_port_equal(const struct gw_config_port *a, const struct gw_config_port *b);
bool gw_config_uplink_equal(const struct gw_config_uplink *a, const struct gw_config_uplink *b);

/*
 * The map for field on port: a [map] with port = that port first, then one without a port.
 * port may be NULL (only maps for every port match). NULL when field has no map.
 */
const struct gw_config_map *gw_config_find_map(const struct gw_config *c, const char *port,
					       const char *field);
const char *gw_parity_to_string(enum gw_parity p);
const char *gw_flow_to_string(enum gw_flow f);
const char *gw_framing_to_string(enum gw_framing f); /* the config words: "text", "binary" */
const char *gw_uplink_type_to_string(enum gw_uplink_type t); /* "mqtt", "aliyun", ... */
