/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Thing models: the TSL JSON exported from the Aliyun IoT console (物模型 TSL) and the data
 * template JSON exported from the Tencent IoT Explorer console (数据模板), read into one typed
 * model (docs/protocols/aliyun.md §9, docs/protocols/tencent.md §7), and the conversion of a
 * reading to what the model says its property or event output is.
 *
 * Pure (library gwproto): no I/O, no logging, no clock; gw_thingmodel_load(), which reads one
 * file, is in library gwfile (src/cloud/thingmodel_load.c). Library code: -errno returns. A
 * model is read-only once parsed: share it freely.
 *
 * Parsing. The format is told from the content (gw_thingmodel_parse()). Every problem is
 * reported with a position, for --check-config's "FILE:LINE: message": a JSON syntax error at
 * jansson's line and column; anything else (a property without identifier, an unknown data
 * type, min above max, ...) with the JSON path of the offending member, e.g.
 * "properties[3].dataType.type: unknown data type \"long\"", and the line and column where
 * that member (or, when it is missing, its object) starts in the text.
 *
 * Conversion. A value is converted to the model's type or refused with a reason
 * (enum gw_thingmodel_refusal) that callers count per reason and log once per identifier:
 *  - int: numbers, numeric strings and booleans (0/1); rounded to the step (1 when none is
 *    given) counted from min (or 0), then checked against min..max and the 32-bit range the
 *    platforms store. Out: a JSON integer.
 *  - float, double: the same, without the integer rounding; a result rounded to a step has
 *    only the step's decimals (23.94 with step 0.1 gives 23.9, not 23.900000000000002). Out: a
 *    JSON real (which the message builders print with a decimal point).
 *  - bool: JSON true/false, the numbers 0 and 1, and the strings "0", "1", "true", "false".
 *    Out: the integer 0 or 1 (both platforms' bool is 0/1 in thing-model JSON).
 *  - enum: an integral number (or numeric string) that is one of the listed values, or a string
 *    equal to one value's description (e.g. "自动"); not a boolean. Out: a JSON integer.
 *  - stringenum (Tencent): a string that is one of the listed values or equal to one value's
 *    description (integers as their decimal text). Out: a JSON string, the listed value.
 *  - string (Aliyun text, Tencent string): a string, or a number as its decimal text (%lld,
 *    %.15g); at most max_length bytes (and at least min_length). Booleans are refused: 0/1 and
 *    true/false are both plausible texts. Out: a JSON string.
 *  - date (Aliyun date, Tencent timestamp): a non-negative integral number or string of
 *    digits, passed on without any change of unit. Out: for Aliyun the decimal string of the
 *    number (the TSL's date is a string of UTC milliseconds), for Tencent a JSON integer.
 *  - struct: a JSON object whose members are converted by the struct's members; array: a JSON
 *    array of at most max_items elements, each converted by the item type when there is one.
 *    Records never carry these today (frames give scalars); they are here for completeness.
 * null is always refused as the wrong type, and so is a real that is not finite.
 */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gw/frame.h"

/* gw_thingmodel_load() refuses a longer file (-EFBIG); exported models are a few kB. */
#define GW_THINGMODEL_FILE_MAX (1024 * 1024)

enum gw_thingmodel_format {
	GW_THINGMODEL_ALIYUN,  /* TSL: "schema", "profile":{"productKey"}, "properties", ... */
	GW_THINGMODEL_TENCENT, /* data template: "version", "profile":{"ProductId"}, ... */
};

enum gw_thingmodel_type {
	GW_THINGMODEL_INT,
	GW_THINGMODEL_FLOAT,
	GW_THINGMODEL_DOUBLE, /* Aliyun only */
	GW_THINGMODEL_BOOL,
	GW_THINGMODEL_ENUM,
	GW_THINGMODEL_STRING,     /* Aliyun "text", Tencent "string" */
	GW_THINGMODEL_DATE,       /* Aliyun "date", Tencent "timestamp" */
	GW_THINGMODEL_STRINGENUM, /* Tencent only */
	GW_THINGMODEL_STRUCT,
	GW_THINGMODEL_ARRAY,
};

/* Aliyun events are info, alert or error; Tencent events info, alert or fault. */
enum gw_thingmodel_event_type {
	GW_THINGMODEL_EVENT_INFO,
	GW_THINGMODEL_EVENT_ALERT,
	GW_THINGMODEL_EVENT_ERROR, /* Aliyun */
	GW_THINGMODEL_EVENT_FAULT, /* Tencent */
};

/* One listed value of a bool, enum or stringenum: its key as written, and as a number. */
struct gw_thingmodel_enum {
	char *key;     /* "0", "1", ... (stringenum: any text) */
	int64_t value; /* the key as an integer; 0 for a stringenum */
	char *text;    /* its description, e.g. "自动"; may be empty */
};

/* A property, an event output, a struct member or an array item. */
struct gw_thingmodel_param {
	char *identifier; /* Aliyun "identifier", Tencent "id"; NULL for an array item */
	char *name;       /* display name; may be empty */
	enum gw_thingmodel_type type;
	bool writable; /* properties: accessMode / mode "rw" (or "w") */
	bool required;
	bool has_min, has_max;
	double min, max;               /* int, float, double */
	double step;                   /* int, float, double; 0: none given */
	char *unit;                    /* may be empty */
	size_t min_length, max_length; /* string; max_length 0: none given */
	size_t n_enums;                /* bool, enum, stringenum */
	struct gw_thingmodel_enum *enums;
	size_t n_members; /* struct */
	struct gw_thingmodel_param *members;
	size_t max_items;                 /* array; 0: none given */
	struct gw_thingmodel_param *item; /* array: its element type, NULL when not given */
};

struct gw_thingmodel_event {
	char *identifier;
	char *name;
	enum gw_thingmodel_event_type type;
	size_t n_outputs; /* Aliyun outputData[], Tencent params[] */
	struct gw_thingmodel_param *outputs;
};

/*
 * A parsed model. Read-only for callers. Aliyun's standard property post event ("post",
 * method thing.event.property.post, present in every export) is not listed among the events:
 * its outputs are the properties.
 */
struct gw_thingmodel {
	enum gw_thingmodel_format format;
	char *product; /* profile.productKey / profile.ProductId; empty when absent */
	size_t n_properties;
	struct gw_thingmodel_param *properties;
	size_t n_events;
	struct gw_thingmodel_event *events;
	size_t n_services; /* Aliyun services[] (with the standard set and get), Tencent actions[] */
};

/* Where and why a model did not parse. */
#define GW_THINGMODEL_ERROR_MAX 256
struct gw_thingmodel_error {
	unsigned line;                      /* 1-based; 0 when unknown */
	unsigned column;                    /* 1-based; 0 when unknown */
	char text[GW_THINGMODEL_ERROR_MAX]; /* "PATH: message" or jansson's message; no position */
};

/*
 * Parses buf[0..len): a JSON object that is either format, told apart by profile.productKey /
 * profile.ProductId, then "schema" / "version", then the first property's or event's shape.
 * Unknown members are ignored; services and actions are only counted. Returns 0 with a new
 * model in *ret; -EMSGSIZE (len > GW_THINGMODEL_FILE_MAX), -EBADMSG or -ENOMEM with err (may
 * be NULL) filled and *ret untouched.
 */
int gw_thingmodel_parse(const char *buf, size_t len, struct gw_thingmodel **ret,
			struct gw_thingmodel_error *err);

/*
 * Reads the file at path (a regular file of at most GW_THINGMODEL_FILE_MAX bytes, opened as
 * gw_file_open_read() does, following symbolic links) and parses it. Returns as
 * gw_thingmodel_parse(), or -errno of open/fstat/read (err->text names the call), -EINVAL (not
 * a regular file) or -EFBIG (longer than GW_THINGMODEL_FILE_MAX).
 */
int gw_thingmodel_load(const char *path, struct gw_thingmodel **ret,
		       struct gw_thingmodel_error *err);

/* Accepts NULL; returns NULL. */
struct gw_thingmodel *gw_thingmodel_free(struct gw_thingmodel *m);

/* The property or event with this identifier, or NULL. */
const struct gw_thingmodel_param *gw_thingmodel_property(const struct gw_thingmodel *m,
							 const char *identifier);
const struct gw_thingmodel_event *gw_thingmodel_event(const struct gw_thingmodel *m,
						      const char *identifier);
/* The output of event e with this identifier, or NULL. */
const struct gw_thingmodel_param *gw_thingmodel_event_output(const struct gw_thingmodel_event *e,
							     const char *identifier);

/* The type of event identifier: 0 with *ret set, or -ENOENT (not in the model). */
int gw_thingmodel_event_type(const struct gw_thingmodel *m, const char *identifier,
			     enum gw_thingmodel_event_type *ret);

/* "aliyun", "tencent"; "int", "float", ... "array"; "info", "alert", "error", "fault". */
const char *gw_thingmodel_format_to_string(enum gw_thingmodel_format f);
const char *gw_thingmodel_type_to_string(enum gw_thingmodel_type t);
const char *gw_thingmodel_event_type_to_string(enum gw_thingmodel_event_type t);

/* Why a value is left out. Short stable texts, for counters and log lines. */
enum gw_thingmodel_refusal {
	GW_THINGMODEL_OK = 0,
	GW_THINGMODEL_UNKNOWN_IDENTIFIER, /* "unknown identifier": not in the model */
	GW_THINGMODEL_WRONG_TYPE,         /* "wrong type": e.g. "abc" for an int, null, NaN */
	GW_THINGMODEL_OUT_OF_RANGE,       /* "out of range": outside min..max (or int32) */
	GW_THINGMODEL_NOT_IN_ENUM,        /* "not in enum": not a listed bool/enum value */
	GW_THINGMODEL_TOO_LONG,           /* "too long": a string or array beyond its limit */
	/* systemd's spelling of the count; a reserved name in theory, defined by no libc */
	_GW_THINGMODEL_REFUSAL_MAX, /* NOLINT(bugprone-reserved-identifier,cert-dcl37-c,cert-dcl51-cpp) */
};
const char *gw_thingmodel_refusal_to_string(enum gw_thingmodel_refusal r);

/*
 * Converts in (borrowed) as param p says (see the file header). Returns 0 with a new reference
 * in *ret; -EDOM when the value is refused, with *reason set (reason may be NULL) and *ret
 * untouched; -ENOMEM.
 */
int gw_thingmodel_convert_param(const struct gw_thingmodel *m, const struct gw_thingmodel_param *p,
				json_t *in, json_t **ret, enum gw_thingmodel_refusal *reason);

/*
 * The same for the property identifier of m; an identifier that is not in the model is
 * refused with GW_THINGMODEL_UNKNOWN_IDENTIFIER.
 */
int gw_thingmodel_convert(const struct gw_thingmodel *m, const char *identifier, json_t *in,
			  json_t **ret, enum gw_thingmodel_refusal *reason);

/* The same for a decoded frame value (gw/frame.h): bool, int64, double or string. */
int gw_thingmodel_convert_value(const struct gw_thingmodel *m, const char *identifier,
				const struct gw_value *v, json_t **ret,
				enum gw_thingmodel_refusal *reason);

/* Called for each member left out by gw_thingmodel_convert_params(). */
typedef void (*gw_thingmodel_refused_fn)(const char *identifier, json_t *value,
					 enum gw_thingmodel_refusal reason, void *user_data);

/*
 * Converts every member of the object params (borrowed): the properties of a property post
 * when event is NULL, else the outputs of that event. Returns 0 with a new object in *ret that
 * holds the accepted members, converted, in their order (it may be empty), fn (may be NULL)
 * called once for each member left out; -ENOENT when event is not in the model (fn not
 * called); -EINVAL when params is not an object; -ENOMEM. *ret is untouched on error.
 */
int gw_thingmodel_convert_params(const struct gw_thingmodel *m, const char *event, json_t *params,
				 json_t **ret, gw_thingmodel_refused_fn fn, void *user_data);
