/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The configuration engine's interface to the uplink types that own their keys (config.c is the
 * engine; src/mqtt_config.c, src/cloud/cloud_config.c, src/cloud/aliyun_config.c and
 * src/cloud/tencent_config.c are the types). Not installed, not used outside the loader.
 *
 * An [uplink NAME] section is read whole before it is judged, because its type decides which
 * keys it takes and type may come last: the engine keeps the section's lines, looks up type,
 * then applies the common keys and the type's tables (defaults first, then every key as written,
 * through the same setters), refuses a key that only another type takes with "KEY: not used by
 * type = TYPE", and runs the type's close() check. A missing or unknown type is judged as mqtt,
 * so the section's other problems still show.
 *
 * A setter parses one value, reports a problem at the line being applied (gw_config_line())
 * and returns false, or stores the value at the key's offset in the object and returns true.
 * close() runs once, after every key; gw_config_given() and friends say what was written.
 */

#include <stdbool.h>
#include <stddef.h>

#include "gw/config.h"

#define GW_CONFIG_STRING_MAX 255    /* host names, user names, USB strings */
#define GW_CONFIG_CLOUD_ID_MAX 64   /* ProductKey, region, instance id: a DNS label */
#define GW_CONFIG_CLOUD_URL_MAX 191 /* register_url */

struct gw_config_parser;
struct gw_config_key;

typedef bool (*gw_config_setter)(struct gw_config_parser *p, const struct gw_config_key *k,
				 void *obj, const char *v);

struct gw_config_word {
	const char *word;
	int value;
};

enum gw_config_key_flags {
	GW_KF_ABSOLUTE = 1 << 0,    /* path: must start with '/' */
	GW_KF_TOPIC = 1 << 1,       /* template: no MQTT wildcards */
	GW_KF_TOPIC_LEVEL = 1 << 2, /* template: no wildcards and no '/' (one topic level) */
	GW_KF_NONZERO = 1 << 3,     /* double: 0 is refused */
	GW_KF_EMPTY_OK = 1 << 4,    /* an empty value is meaningful */
};

/*
 * One row per key: its name, the setter that parses and stores it, the default (applied
 * through the same setter when the section opens, so defaults obey the same rules; NULL when
 * there is none or it depends on other keys and is computed when the section closes), the
 * bounds (numbers: min..max; strings: max length), the accepted words and where it is stored.
 */
struct gw_config_key {
	const char *name;
	gw_config_setter set;
	const char *def;
	uint64_t min;
	uint64_t max;
	const struct gw_config_word *words;
	const char *const *placeholders;
	size_t offset;
	size_t size;
	unsigned flags;
};

#define GW_CONFIG_KEY(n, fn, st, fld, d, lo, hi, fl)                                          \
	{                                                                                     \
		.name = (n), .set = (fn), .def = (d), .min = (lo), .max = (hi),               \
		.offset = offsetof(st, fld), .size = sizeof(((st *)NULL)->fld), .flags = (fl) \
	}
#define GW_CONFIG_KEY_ENUM(n, st, fld, d, w)                                      \
	{                                                                         \
		.name = (n), .set = gw_config_set_enum, .def = (d), .words = (w), \
		.offset = offsetof(st, fld), .size = sizeof(((st *)NULL)->fld)    \
	}
#define GW_CONFIG_KEY_TEMPLATE(n, st, fld, d, ph, fl)                                         \
	{                                                                                     \
		.name = (n), .set = gw_config_set_template, .def = (d), .placeholders = (ph), \
		.offset = offsetof(st, fld), .size = sizeof(((st *)NULL)->fld), .flags = (fl) \
	}

struct gw_config_keys {
	const struct gw_config_key *keys;
	size_t n;
};

/* An uplink type: the keys it takes beside the common ones, and what it does with them. */
struct gw_config_uplink_type {
	const char *name; /* the type = word */
	enum gw_uplink_type type;
	const struct gw_config_keys *keys[2]; /* an unused slot is NULL */
	/* the cross-key checks and derived defaults, after every key was applied */
	void (*close)(struct gw_config_parser *p, struct gw_config_uplink *u);
	/* every setting of the type's sub-structures equal (secrets included) */
	bool (*equal)(const struct gw_config_uplink *a, const struct gw_config_uplink *b);
	/* frees what the type's keys hold (secrets wiped); NULL-safe fields */
	void (*clear)(struct gw_config_uplink *u);
};

extern const struct gw_config_uplink_type gw_config_mqtt_type;
extern const struct gw_config_uplink_type gw_config_aliyun_type;
extern const struct gw_config_uplink_type gw_config_tencent_type;

/* The keys both clouds take (struct gw_config_cloud), their checks, equality and clearing. */
extern const struct gw_config_keys gw_config_cloud_keys;
/* auth and the ProductSecret sources: at most one source, each only with a dynamic auth;
 * returns the source key given first, or NULL */
const char *gw_config_cloud_secret_source(struct gw_config_parser *p);
/* A thing_model of the other cloud's format is refused (format: enum gw_thingmodel_format, what:
 * the file it needs), and thing_model_refused without a model. */
void gw_config_cloud_check_model(struct gw_config_parser *p, const struct gw_config_uplink *u,
				 int format, const char *what);
/* topology and the gateway keys (id_key: the gateway product's key of the cloud, in the
 * cloud's own table; max_subdevices: max_devices with topology = gateway) */
void gw_config_cloud_check_topology(struct gw_config_parser *p, const struct gw_config_uplink *u,
				    const char *id_key, uint32_t max_subdevices);
bool gw_config_cloud_equal(const struct gw_config_cloud *a, const struct gw_config_cloud *b);
void gw_config_cloud_clear(struct gw_config_cloud *c);

/* Problems: "PATH:LINE: message", collected and printed sorted by line. */
void gw_config_report(struct gw_config_parser *p, unsigned line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* The line of the key being applied. */
unsigned gw_config_line(const struct gw_config_parser *p);
/* The section being closed: its header's line and its title ("[uplink NAME]"). */
unsigned gw_config_section_line(const struct gw_config_parser *p);
const char *gw_config_title(const struct gw_config_parser *p);
/* The line name was given on in the section, 0 when it was not given; aborts on a name the
 * section does not take (a bug). */
unsigned gw_config_given(const struct gw_config_parser *p, const char *name);
/* given, and its value was accepted */
bool gw_config_given_ok(const struct gw_config_parser *p, const char *name);
/* given, and its value was refused (its message is out already) */
bool gw_config_bad(const struct gw_config_parser *p, const char *name);
/* At most one of the n keys of sources may be given; returns the one given first, or NULL.
 * list names them all for the message. */
const char *gw_config_one_source(struct gw_config_parser *p, const char *const *sources, size_t n,
				 const char *list);
/* The default ca_file of a cloud: path when it is readable, else a problem at the header. */
void gw_config_default_ca(struct gw_config_parser *p, struct gw_config_uplink *u, const char *path);

/* Setters shared by the types */
bool gw_config_set_string(struct gw_config_parser *p, const struct gw_config_key *k, void *obj,
			  const char *v);
bool gw_config_set_uint(struct gw_config_parser *p, const struct gw_config_key *k, void *obj,
			const char *v);
bool gw_config_set_bool(struct gw_config_parser *p, const struct gw_config_key *k, void *obj,
			const char *v);
bool gw_config_set_enum(struct gw_config_parser *p, const struct gw_config_key *k, void *obj,
			const char *v);
bool gw_config_set_template(struct gw_config_parser *p, const struct gw_config_key *k, void *obj,
			    const char *v);
/* tls: a boolean, or psk (TLS-PSK; only type = tencent accepts it: the types check) */
bool gw_config_set_tls(struct gw_config_parser *p, const struct gw_config_key *k, void *obj,
		       const char *v);
bool gw_config_set_readable_file(struct gw_config_parser *p, const struct gw_config_key *k,
				 void *obj, const char *v);
bool gw_config_set_private_file(struct gw_config_parser *p, const struct gw_config_key *k,
				void *obj, const char *v);
/* A DNS label of a platform's host names (ProductKey, region, instance id): A-Z a-z 0-9 - */
bool gw_config_set_label(struct gw_config_parser *p, const struct gw_config_key *k, void *obj,
			 const char *v);
/* The three sources of one secret: KEY (inline, only in a private file), KEY_file (a private
 * file) and KEY_credential (a systemd credential); each fills the key's own field. */
bool gw_config_set_secret(struct gw_config_parser *p, const struct gw_config_key *k, void *obj,
			  const char *v);
bool gw_config_set_secret_file(struct gw_config_parser *p, const struct gw_config_key *k, void *obj,
			       const char *v);
bool gw_config_set_secret_credential(struct gw_config_parser *p, const struct gw_config_key *k,
				     void *obj, const char *v);
