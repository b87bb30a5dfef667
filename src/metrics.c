/* SPDX-License-Identifier: MIT */
/*
 * The status object as Prometheus text (see gw/metrics.h). One table row per metric family:
 * where in the status its samples are (the scope: the whole status, each port, node, uplink,
 * cloud device or gateway session), which field (a path such as "spool.reserve.fs_bytes"),
 * and how the field becomes a
 * value (a number, scaled from milliseconds to seconds where the name ends in _seconds; a
 * state compared with one word; one sample per word of a split or a state; every entry of an
 * uplink's counters). A family with no sample still gets its HELP and TYPE lines, so that the
 * series list does not depend on which nodes have been seen.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw/metrics.h"

enum scope {
	S_TOP,
	S_PORT,
	S_NODE,
	S_UPLINK,
	S_DEVICE,
	S_GATEWAY,
};

enum kind {
	K_NUM,      /* the number at key (times scale) */
	K_IS,       /* 1 when the string at key is arg, else 0 */
	K_BOOL,     /* 1 for true, 0 for false */
	K_SPLIT,    /* arg "path=word,...": one sample per path, labelled label="word" */
	K_STATE,    /* arg "word,...": one sample per word, label="word", 1 for the current one */
	K_COUNTERS, /* every number of the object at key but those in arg, label="name" */
	K_INFO,     /* 1, labelled label="the string at key" */
};

struct family {
	const char *name;
	const char *type; /* "counter" or "gauge" */
	const char *help;
	enum scope scope;
	enum kind kind;
	const char *key; /* a member, or a path of members: "spool.reserve.fs_bytes" */
	const char *arg;
	const char *label; /* K_SPLIT, K_STATE, K_COUNTERS, K_INFO */
	double scale;      /* K_NUM; 0 means 1 */
};

#define MS 0.001

static const struct family families[] = {
	{ "sensorgw_info", "gauge", "sensorgwd's version (always 1)", S_TOP, K_INFO, "version",
	  NULL, "version", 0 },
	{ "sensorgw_uptime_seconds", "gauge", "Time since sensorgwd started", S_TOP, K_NUM,
	  "uptime_ms", NULL, NULL, MS },
	{ "sensorgw_records_stored_total", "counter", "Records stored in the spool by this run",
	  S_TOP, K_NUM, "records", NULL, NULL, 0 },
	{ "sensorgw_tail_clients", "gauge", "sensorgwctl tail and top clients watching now", S_TOP,
	  K_NUM, "control.tail_clients", NULL, NULL, 0 },
	{ "sensorgw_tail_events_total", "counter", "Event lines queued for tail clients", S_TOP,
	  K_NUM, "control.tail_events", NULL, NULL, 0 },
	{ "sensorgw_tail_dropped_total", "counter",
	  "Event lines dropped because a tail client read too slowly (no record is lost)", S_TOP,
	  K_NUM, "control.tail_dropped", NULL, NULL, 0 },
	{ "sensorgw_stopping", "gauge", "1 while sensorgwd drains its uplinks after SIGTERM", S_TOP,
	  K_IS, "state", "stopping", NULL, 0 },

	{ "sensorgw_spool_bytes", "gauge", "Bytes of spool segments on disk", S_TOP, K_NUM,
	  "spool.bytes", NULL, NULL, 0 },
	{ "sensorgw_spool_segments", "gauge", "Spool segment files on disk", S_TOP, K_NUM,
	  "spool.segments", NULL, NULL, 0 },
	{ "sensorgw_spool_first_seq", "gauge", "Sequence number of the oldest stored record", S_TOP,
	  K_NUM, "spool.first_seq", NULL, NULL, 0 },
	{ "sensorgw_spool_next_seq", "gauge", "Sequence number the next record gets", S_TOP, K_NUM,
	  "spool.next_seq", NULL, NULL, 0 },
	{ "sensorgw_spool_appended_total", "counter", "Records written to the spool by this run",
	  S_TOP, K_NUM, "spool.appended", NULL, NULL, 0 },
	{ "sensorgw_spool_syncs_total", "counter", "fdatasync calls of the spool", S_TOP, K_NUM,
	  "spool.syncs", NULL, NULL, 0 },
	{ "sensorgw_spool_unsynced_records", "gauge",
	  "Records written but not yet synced (what a power cut could take)", S_TOP, K_NUM,
	  "spool.unsynced", NULL, NULL, 0 },
	{ "sensorgw_spool_lost_records_total", "counter",
	  "Records removed or never stored, by reason (overflow: spool_max_bytes reached; enospc: "
	  "disk full or min_free_bytes; corrupt: damaged segment found at start)",
	  S_TOP, K_SPLIT, NULL,
	  "spool.dropped_overflow=overflow,spool.dropped_enospc=enospc,spool.lost_corrupt=corrupt",
	  "reason", 0 },
	{ "sensorgw_spool_duplicates_total", "counter", "Frames a node sent again, dropped", S_TOP,
	  K_NUM, "spool.duplicates", NULL, NULL, 0 },
	{ "sensorgw_spool_unmapped_total", "counter",
	  "Frames whose values a [map] section could not convert", S_TOP, K_NUM, "spool.unmapped",
	  NULL, NULL, 0 },
	{ "sensorgw_spool_recovery_total", "counter",
	  "What recovery at start found, by kind (torn_tail: truncated; quarantined: segment moved "
	  "aside; seq_gap: gap in the numbering; seq_skipped: numbers reserved and never used)",
	  S_TOP, K_SPLIT, NULL,
	  "spool.torn_tails=torn_tail,spool.quarantined=quarantined,spool.seq_gaps=seq_gap,"
	  "spool.seqs_skipped=seq_skipped",
	  "kind", 0 },
	{ "sensorgw_spool_reserve_bytes", "gauge", "The min_free_bytes reserve", S_TOP, K_NUM,
	  "spool.reserve.min_free_bytes", NULL, NULL, 0 },
	{ "sensorgw_spool_fs_size_bytes", "gauge", "Size of the state directory's file system",
	  S_TOP, K_NUM, "spool.reserve.fs_bytes", NULL, NULL, 0 },
	{ "sensorgw_spool_fs_free_bytes", "gauge",
	  "Free bytes of the state directory's file system for sensorgwd", S_TOP, K_NUM,
	  "spool.reserve.free_bytes", NULL, NULL, 0 },

	{ "sensorgw_batch_window_seconds", "gauge", "The batch window (batch_ms; 0 = off)", S_TOP,
	  K_NUM, "batch.window_ms", NULL, NULL, MS },
	{ "sensorgw_batch_holds_total", "counter",
	  "Times a frame after a quiet spell started the batch clock", S_TOP, K_NUM, "batch.holds",
	  NULL, NULL, 0 },
	{ "sensorgw_batch_ticks_total", "counter", "Rounds of reading on the batch clock", S_TOP,
	  K_NUM, "batch.ticks", NULL, NULL, 0 },

	{ "sensorgw_nodes", "gauge", "Nodes in the node table", S_TOP, K_NUM, "node_table.known",
	  NULL, NULL, 0 },
	{ "sensorgw_nodes_max", "gauge", "The node table's size (max_nodes)", S_TOP, K_NUM,
	  "node_table.max", NULL, NULL, 0 },
	{ "sensorgw_nodes_refused_total", "counter", "Nodes turned away because the table was full",
	  S_TOP, K_NUM, "node_table.refused", NULL, NULL, 0 },
	{ "sensorgw_nodes_refused_frames_total", "counter",
	  "Frames of refused nodes, dropped and not spooled", S_TOP, K_NUM,
	  "node_table.frames_refused", NULL, NULL, 0 },

	{ "sensorgw_port_open", "gauge", "1 while the port's device is open", S_PORT, K_IS, "state",
	  "open", NULL, 0 },
	{ "sensorgw_port_received_bytes_total", "counter", "Bytes read from the port", S_PORT,
	  K_NUM, "bytes_in", NULL, NULL, 0 },
	{ "sensorgw_port_sent_bytes_total", "counter", "Bytes written to the port (commands)",
	  S_PORT, K_NUM, "bytes_out", NULL, NULL, 0 },
	{ "sensorgw_port_opens_total", "counter", "Times the port's device was opened", S_PORT,
	  K_NUM, "opens", NULL, NULL, 0 },
	{ "sensorgw_port_closes_total", "counter", "Hang-ups and errors that closed the port",
	  S_PORT, K_NUM, "closes", NULL, NULL, 0 },
	{ "sensorgw_port_refused_total", "counter",
	  "Opens refused because the device is a console or has a login on it", S_PORT, K_NUM,
	  "refused", NULL, NULL, 0 },
	{ "sensorgw_port_frames_total", "counter", "Good frames read from the port", S_PORT, K_NUM,
	  "frames", NULL, NULL, 0 },
	{ "sensorgw_port_bad_frames_total", "counter", "Refused frames, by reason", S_PORT, K_SPLIT,
	  NULL,
	  "crc_errors=crc,oversize=oversize,unknown=unknown,malformed=malformed,truncated=truncated",
	  "reason", 0 },
	{ "sensorgw_port_resyncs_total", "counter",
	  "Times the decoder skipped bytes to find the next frame", S_PORT, K_NUM, "resyncs", NULL,
	  NULL, 0 },

	{ "sensorgw_node_frames_total", "counter", "Good frames from the node", S_NODE, K_NUM,
	  "frames", NULL, NULL, 0 },
	{ "sensorgw_node_errors_total", "counter", "Bad frames that carried the node's address",
	  S_NODE, K_NUM, "errors", NULL, NULL, 0 },
	{ "sensorgw_node_seq_gaps_total", "counter", "Frames missing by the node's sequence number",
	  S_NODE, K_NUM, "seq_gaps", NULL, NULL, 0 },
	{ "sensorgw_node_duplicates_total", "counter", "Frames the node sent again", S_NODE, K_NUM,
	  "duplicates", NULL, NULL, 0 },
	{ "sensorgw_node_last_seen_timestamp_seconds", "gauge",
	  "When the node's last frame arrived (Unix time)", S_NODE, K_NUM, "last_seen_ms", NULL,
	  NULL, MS },

	{ "sensorgw_uplink_online", "gauge", "1 when every session the uplink wants is up",
	  S_UPLINK, K_IS, "state", "online", NULL, 0 },
	{ "sensorgw_uplink_sessions", "gauge", "MQTT sessions the uplink wants", S_UPLINK, K_NUM,
	  "sessions", NULL, NULL, 0 },
	{ "sensorgw_uplink_sessions_online", "gauge", "MQTT sessions of the uplink that are up",
	  S_UPLINK, K_NUM, "online", NULL, NULL, 0 },
	{ "sensorgw_uplink_queued_records", "gauge", "Records stored and not yet acknowledged",
	  S_UPLINK, K_NUM, "queued", NULL, NULL, 0 },
	{ "sensorgw_uplink_inflight_records", "gauge", "Records sent and waiting for their PUBACK",
	  S_UPLINK, K_NUM, "inflight", NULL, NULL, 0 },
	{ "sensorgw_uplink_acked_records_total", "counter", "Records acknowledged by this run",
	  S_UPLINK, K_NUM, "acked", NULL, NULL, 0 },
	{ "sensorgw_uplink_rejected_records_total", "counter",
	  "Records the peer acknowledged but refused (dead-lettered)", S_UPLINK, K_NUM, "rejected",
	  NULL, NULL, 0 },
	{ "sensorgw_uplink_backlog_bytes", "gauge", "Bytes of the queued records on disk", S_UPLINK,
	  K_NUM, "backlog_bytes", NULL, NULL, 0 },
	{ "sensorgw_uplink_oldest_age_seconds", "gauge",
	  "Age of the oldest queued record by its reading time", S_UPLINK, K_NUM, "oldest_age_ms",
	  NULL, NULL, MS },
	{ "sensorgw_uplink_events_total", "counter",
	  "Every counter the uplink's driver keeps, by name (docs/status.md; the gauges queued and "
	  "inflight are the families above)",
	  S_UPLINK, K_COUNTERS, "counters", "queued,inflight", "event", 0 },
	{ "sensorgw_uplink_law_exact", "gauge",
	  "1 while every record produced is accounted for (0 is a bug: report it)", S_UPLINK,
	  K_BOOL, "law.exact", NULL, NULL, 0 },

	{ "sensorgw_gateway_online", "gauge", "1 while the gateway device's session is up",
	  S_GATEWAY, K_IS, "session", "online", NULL, 0 },
	{ "sensorgw_device_session", "gauge",
	  "The cloud device's or sub-device's session state (1 for the current one)", S_DEVICE,
	  K_STATE, "session",
	  "idle,registering,connecting,attaching,subscribing,online,refused,disabled,logged-out",
	  "state", 0 },
	{ "sensorgw_device_provisioned", "gauge", "1 when the cloud device has its credential",
	  S_DEVICE, K_IS, "provisioning", "provisioned", NULL, 0 },
};

struct out {
	FILE *f;
	const struct family *fam;
	char labels[1024]; /* the scope's labels, each `,name="value"` */
};

static void label_add(char *buf, size_t size, const char *name, const char *value)
{
	size_t n = strlen(buf);

	if (!value)
		value = "";
	n += (size_t)snprintf(buf + n, n < size ? size - n : 0, ",%s=\"", name);
	for (const char *p = value; *p && n + 3 < size; p++) {
		/* the exposition format escapes exactly these three */
		if (*p == '\\' || *p == '"') {
			buf[n++] = '\\';
			buf[n++] = *p;
		} else if (*p == '\n') {
			buf[n++] = '\\';
			buf[n++] = 'n';
		} else {
			buf[n++] = *p;
		}
	}
	if (n + 2 < size) {
		buf[n++] = '"';
		buf[n] = '\0';
	}
}

static void sample(struct out *o, const char *extra_name, const char *extra_value, double v)
{
	char labels[sizeof(o->labels) + 256], num[40];

	memcpy(labels, o->labels, strlen(o->labels) + 1);
	if (extra_name)
		label_add(labels, sizeof(labels), extra_name, extra_value);

	/* integers in full; 15 digits otherwise (milliseconds as seconds: exact) */
	if (v == floor(v) && fabs(v) < 1e17)
		snprintf(num, sizeof(num), "%.0f", v);
	else
		snprintf(num, sizeof(num), "%.15g", v);
	if (labels[0])
		fprintf(o->f, "%s{%s} %s\n", o->fam->name, labels + 1, num);
	else
		fprintf(o->f, "%s %s\n", o->fam->name, num);
}

/* The next word of a comma-separated list into word; where the rest starts, NULL at the end. */
static const char *next_word(const char *p, char *word, size_t size)
{
	size_t n;

	if (!p || !*p)
		return NULL;
	n = strcspn(p, ",");
	snprintf(word, size, "%.*s", (int)n, p);
	return p + n + (p[n] == ',');
}

/* whether word is one of the comma-separated list */
static bool word_in(const char *list, const char *word)
{
	char w[64];

	for (const char *p = list; (p = next_word(p, w, sizeof(w)));)
		if (strcmp(w, word) == 0)
			return true;
	return false;
}

/* The member at path ("a.b.c") of obj, NULL when any step is missing. */
static const json_t *path_get(const json_t *obj, const char *path)
{
	char step[64];

	while (obj && *path) {
		size_t n = strcspn(path, ".");

		snprintf(step, sizeof(step), "%.*s", (int)n, path);
		obj = json_object_get(obj, step);
		path += n + (path[n] == '.');
	}
	return obj;
}

static bool number(const json_t *v, double *ret)
{
	if (json_is_integer(v))
		*ret = (double)json_integer_value(v);
	else if (json_is_real(v))
		*ret = json_real_value(v);
	else
		return false;
	return true;
}

/* The samples of o->fam in one object of its scope. */
static void emit(struct out *o, const json_t *obj)
{
	const struct family *fam = o->fam;
	const json_t *v = fam->key ? path_get(obj, fam->key) : NULL;
	char word[64];
	double d;

	switch (fam->kind) {
	case K_NUM:
		if (number(v, &d))
			sample(o, NULL, NULL, d * (fam->scale ? fam->scale : 1));
		break;
	case K_IS:
		if (json_is_string(v))
			sample(o, NULL, NULL, strcmp(json_string_value(v), fam->arg) == 0);
		break;
	case K_BOOL:
		if (json_is_boolean(v))
			sample(o, NULL, NULL, json_is_true(v));
		break;
	case K_INFO:
		if (json_is_string(v))
			sample(o, fam->label, json_string_value(v), 1);
		break;
	case K_STATE:
		for (const char *p = fam->arg;
		     json_is_string(v) && (p = next_word(p, word, sizeof(word)));)
			sample(o, fam->label, word, strcmp(json_string_value(v), word) == 0);
		break;
	case K_SPLIT:
		for (const char *p = fam->arg; (p = next_word(p, word, sizeof(word)));) {
			char *eq = strchr(word, '=');

			if (!eq)
				continue;
			*eq = '\0';
			if (number(path_get(obj, word), &d))
				sample(o, fam->label, eq + 1, d);
		}
		break;
	case K_COUNTERS: {
		const char *name;
		json_t *c;

		json_object_foreach((json_t *)v, name, c)
			if (!word_in(fam->arg, name) && number(c, &d))
				sample(o, fam->label, name, d);
		break;
	}
	}
}

static void scope_item(struct out *o, const json_t *obj, const char *const *labels)
{
	o->labels[0] = '\0';
	for (size_t i = 0; labels[i]; i += 2)
		label_add(o->labels, sizeof(o->labels), labels[i], labels[i + 1]);
	emit(o, obj);
}

static const char *str(const json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

static void emit_family(struct out *o, const json_t *status)
{
	const json_t *arr, *item, *dev;
	size_t i, j;

	switch (o->fam->scope) {
	case S_TOP:
		scope_item(o, status, (const char *const[]){ NULL });
		break;
	case S_PORT:
		arr = json_object_get(status, "ports");
		json_array_foreach(arr, i, item)
			scope_item(o, item,
				   (const char *const[]){ "port", str(item, "name"), NULL });
		break;
	case S_NODE:
		arr = json_object_get(status, "nodes");
		json_array_foreach(arr, i, item)
			scope_item(o, item,
				   (const char *const[]){ "node", str(item, "id"), "device",
							  str(item, "device"), "port",
							  str(item, "port"), NULL });
		break;
	case S_UPLINK:
		arr = json_object_get(status, "uplinks");
		json_array_foreach(arr, i, item)
			scope_item(o, item,
				   (const char *const[]){ "uplink", str(item, "name"), "type",
							  str(item, "type"), NULL });
		break;
	case S_DEVICE:
		arr = json_object_get(status, "uplinks");
		json_array_foreach(arr, i, item)
			json_array_foreach(json_object_get(item, "devices"), j, dev)
				scope_item(o, dev,
					   (const char *const[]){ "uplink", str(item, "name"),
								  "device", str(dev, "device"),
								  NULL });
		break;
	case S_GATEWAY:
		arr = json_object_get(status, "uplinks");
		json_array_foreach(arr, i, item) {
			const json_t *gw = json_object_get(item, "gateway");

			if (json_is_object(gw))
				scope_item(o, gw,
					   (const char *const[]){ "uplink", str(item, "name"),
								  "device", str(gw, "device"),
								  NULL });
		}
		break;
	}
}

int gw_metrics_format(const json_t *status, char **ret, size_t *ret_len)
{
	struct out o = { 0 };
	char *buf = NULL;
	size_t len = 0;

	if (!json_is_object(status))
		return -EINVAL;
	o.f = open_memstream(&buf, &len);
	if (!o.f)
		return -ENOMEM;
	for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
		o.fam = &families[i];
		fprintf(o.f, "# HELP %s %s\n# TYPE %s %s\n", o.fam->name, o.fam->help, o.fam->name,
			o.fam->type);
		emit_family(&o, status);
	}
	if (ferror(o.f) | fclose(o.f)) {
		free(buf);
		return -ENOMEM;
	}
	*ret = buf;
	*ret_len = len;
	return 0;
}
