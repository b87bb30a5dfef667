/* SPDX-License-Identifier: MIT */
/*
 * Home Assistant MQTT discovery (see gw/hadisc.h and docs/homeassistant.md): the nodes and
 * fields an uplink has announced, the messages that announce, refresh and remove them, and the
 * state file that carries them across restarts.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gw-build.h"
#include "gw/fileio.h"
#include "gw/hadisc.h"
#include "gw/log.h"
#include "gw/util.h"

#define STATE_FILE_MAX (1u << 20)
#define TOPIC_MAX 512

enum kind { KIND_NUMBER, KIND_BOOL, KIND_STRING };

struct field {
	char *name;
	char *map; /* the [map] section it came from, "" for a field as the node sent it */
	enum kind kind;
};

struct node {
	char *device; /* the device name: the HA device */
	char *id;     /* the node id of the payload (a UID in hex once known) */
	char *fw;     /* from the node's hello, NULL when unknown */
	char *state_topic;
	struct field *fields;
	size_t n_fields;
	int64_t last_ms; /* the reading time of its newest record; 0 = none this run */
	int online;      /* what its availability topic says: -1 nothing yet, 0, 1 */
};

/* An entity to remove: an empty retained config on its topic at the next announcement. */
struct removal {
	char *topic;
};

struct gw_hadisc {
	const struct gw_config_uplink *cfg;
	const struct gw_config_map *maps;
	size_t n_maps;
	char gw_id[96];
	char gw_topic[TOPIC_MAX];
	char ha_status[TOPIC_MAX];
	int dfd; /* <state_dir>/discovery, -1 when it cannot be had (logged) */
	char file[300], tmp[310];
	struct node *nodes;
	size_t n_nodes;
	struct removal *removals;
	size_t n_removals;
};

/* Home Assistant's node_id and object_id: [A-Za-z0-9_-]. */
static void topic_id(const char *in, char *out, size_t size)
{
	size_t n = 0;

	for (; *in && n + 1 < size; in++)
		out[n++] = (strchr("_-", *in) || (*in >= '0' && *in <= '9') ||
			    ((*in | 0x20) >= 'a' && (*in | 0x20) <= 'z')) ?
				   *in :
				   '_';
	out[n] = '\0';
}

static void config_topic(const struct gw_hadisc *d, const char *device, const char *field,
			 enum kind kind, char *buf, size_t size)
{
	char node[128], object[128];

	topic_id(device, node, sizeof(node));
	topic_id(field, object, sizeof(object));
	snprintf(buf, size, "%s/%s/%s/%s/config", d->cfg->mqtt.discovery_prefix,
		 kind == KIND_BOOL ? "binary_sensor" : "sensor", node, object);
}

static void node_topic(const struct gw_hadisc *d, const struct node *n, char *buf, size_t size)
{
	char node[128];

	topic_id(n->device, node, sizeof(node));
	snprintf(buf, size, "sensorgw/%s/%s/status", d->gw_id, node);
}

/* The [map] a field name comes from on this port: the section whose identifier it is. */
static const struct gw_config_map *find_map(const struct gw_hadisc *d, const char *field,
					    const char *port)
{
	for (size_t i = 0; i < d->n_maps; i++)
		if (strcmp(d->maps[i].identifier, field) == 0 &&
		    (!d->maps[i].port[0] || !port || strcmp(d->maps[i].port, port) == 0))
			return &d->maps[i];
	return NULL;
}

/* Unit and device class: the [map]'s, else what the usual sensor names mean. */
static void field_class(const struct gw_hadisc *d, const struct field *f, const char **unit,
			const char **dclass)
{
	const struct gw_config_map *m = find_map(d, f->name, NULL);
	size_t n = strlen(f->name);
	bool dht = strncasecmp(f->name, "DHT", 3) == 0 && n > 2 && f->name[n - 2] == '_';

	*unit = m && m->unit[0] ? m->unit : NULL;
	*dclass = m && m->device_class[0] ? m->device_class : NULL;
	if (*unit || *dclass || f->kind != KIND_NUMBER)
		return;
	if ((dht && (f->name[n - 1] | 0x20) == 't') || !strcasecmp(f->name, "temperature") ||
	    !strcasecmp(f->name, "temp")) {
		*unit = "°C";
		*dclass = "temperature";
	} else if ((dht && (f->name[n - 1] | 0x20) == 'h') || !strcasecmp(f->name, "humidity") ||
		   !strcasecmp(f->name, "hum")) {
		*unit = "%";
		*dclass = "humidity";
	}
}

/* name inside a Jinja2 string literal in single quotes */
static void jinja_string(const char *name, char *out, size_t size)
{
	size_t n = 0;

	for (; *name && n + 2 < size; name++) {
		if (*name == '\'' || *name == '\\')
			out[n++] = '\\';
		out[n++] = *name;
	}
	out[n] = '\0';
}

static json_t *entity_config(const struct gw_hadisc *d, const struct node *n, const struct field *f)
{
	char uid[300], node_avail[TOPIC_MAX], tmpl[400], gw_ident[128], quoted[260];
	const char *unit, *dclass;
	json_t *o, *dev;

	snprintf(uid, sizeof(uid), "sensorgw_%s_%s", n->device, f->name);
	snprintf(gw_ident, sizeof(gw_ident), "sensorgw_%s", d->gw_id);
	node_topic(d, n, node_avail, sizeof(node_avail));
	jinja_string(f->name, quoted, sizeof(quoted));
	if (f->kind == KIND_BOOL)
		snprintf(tmpl, sizeof(tmpl), "{{ 'ON' if value_json.params['%s'] else 'OFF' }}",
			 quoted);
	else
		snprintf(tmpl, sizeof(tmpl), "{{ value_json.params['%s'] }}", quoted);
	dev = json_pack("{s:[s+],s:s,s:s,s:s,s:s}", "identifiers", "sensorgw_", n->device, "name",
			n->device, "manufacturer", "sensorgw", "model", "STM32 node", "via_device",
			gw_ident);
	if (dev && n->fw)
		(void)json_object_set_new(dev, "sw_version", json_string(n->fw));
	if (dev && strlen(n->id) == 24 && strspn(n->id, "0123456789abcdef") == 24)
		(void)json_object_set_new(dev, "serial_number", json_string(n->id));
	o = json_pack("{s:s,s:s,s:s,s:s,s:[{s:s},{s:s}],s:s,s:o,s:{s:s,s:s}}", "name", f->name,
		      "unique_id", uid, "state_topic", n->state_topic, "value_template", tmpl,
		      "availability", "topic", d->gw_topic, "topic", node_avail,
		      "availability_mode", "all", "device", dev, "origin", "name", "sensorgw",
		      "sw_version", GW_VERSION);
	if (!o)
		return NULL;
	field_class(d, f, &unit, &dclass);
	if (unit)
		(void)json_object_set_new(o, "unit_of_measurement", json_string(unit));
	if (dclass)
		(void)json_object_set_new(o, "device_class", json_string(dclass));
	if (f->kind == KIND_NUMBER)
		(void)json_object_set_new(o, "state_class", json_string("measurement"));
	return o;
}

static void publish_json(const char *topic, json_t *o, gw_hadisc_publish_fn pub, void *ud)
{
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;

	if (text)
		pub(ud, topic, text, strlen(text));
	free(text);
	json_decref(o);
}

static void announce_field(struct gw_hadisc *d, const struct node *n, const struct field *f,
			   gw_hadisc_publish_fn pub, void *ud)
{
	char topic[TOPIC_MAX];

	config_topic(d, n->device, f->name, f->kind, topic, sizeof(topic));
	publish_json(topic, entity_config(d, n, f), pub, ud);
}

/* Whether the node's newest reading is within node_timeout_s of now (0: no timeout). */
static bool node_fresh(const struct gw_hadisc *d, const struct node *n, int64_t now_ms)
{
	return n->last_ms && (!d->cfg->mqtt.node_timeout_s ||
			      now_ms - n->last_ms < (int64_t)d->cfg->mqtt.node_timeout_s * 1000);
}

static void set_online(struct gw_hadisc *d, struct node *n, int online, gw_hadisc_publish_fn pub,
		       void *ud)
{
	char topic[TOPIC_MAX];
	const char *word = online ? "online" : "offline";

	node_topic(d, n, topic, sizeof(topic));
	pub(ud, topic, word, strlen(word));
	n->online = online;
}

/* ---- the state file ---- */

static void file_save(struct gw_hadisc *d)
{
	enum gw_file_step step = GW_FILE_STEP_NONE;
	json_t *nodes = json_array();
	char *text = NULL;
	int r;

	if (d->dfd < 0 || !nodes)
		goto out;
	for (size_t i = 0; i < d->n_nodes; i++) {
		const struct node *n = &d->nodes[i];
		json_t *fields = json_array();

		for (size_t j = 0; fields && j < n->n_fields; j++)
			(void)json_array_append_new(fields, json_pack("{s:s,s:s,s:i}", "name",
								      n->fields[j].name, "map",
								      n->fields[j].map, "kind",
								      n->fields[j].kind));
		(void)json_array_append_new(nodes, json_pack("{s:s,s:s,s:s*,s:s,s:o*}", "device",
							     n->device, "id", n->id, "fw", n->fw,
							     "state_topic", n->state_topic,
							     "fields", fields));
	}
	text = json_dumps(nodes, JSON_COMPACT);
	r = text ? gw_file_write_atomic(d->dfd, d->file, d->tmp, text, strlen(text), &step) :
		   -ENOMEM;
	if (r < 0)
		gw_log_uplink(LOG_WARNING, d->cfg->name,
			      "discovery: cannot write discovery/%s (%s): %s; a restart announces "
			      "only what it sees again",
			      d->file, gw_file_step_name(step), strerror(-r));
out:
	free(text);
	json_decref(nodes);
}

static struct node *node_add(struct gw_hadisc *d, const char *device, const char *id)
{
	struct node *n;

	d->nodes = gw_realloc_array(d->nodes, d->n_nodes + 1, sizeof(*d->nodes));
	n = &d->nodes[d->n_nodes++];
	*n = (struct node){ .device = gw_strdup(device), .id = gw_strdup(id), .online = -1 };
	return n;
}

static void field_add(struct node *n, const char *name, const char *map, enum kind kind)
{
	n->fields = gw_realloc_array(n->fields, n->n_fields + 1, sizeof(*n->fields));
	n->fields[n->n_fields++] = (struct field){ .name = gw_strdup(name),
						   .map = gw_strdup(map),
						   .kind = kind };
}

/* Whether a field announced before still comes out under this configuration's [map]s. */
static bool field_current(const struct gw_hadisc *d, const char *name, const char *map)
{
	for (size_t i = 0; i < d->n_maps; i++) {
		/* its [map] section: gone or renamed */
		if (map[0] && strcmp(d->maps[i].field, map) == 0)
			return strcmp(d->maps[i].identifier, name) == 0;
		/* a raw name that a [map] now renames */
		if (!map[0] && strcmp(d->maps[i].field, name) == 0 &&
		    strcmp(d->maps[i].identifier, name) != 0)
			return false;
	}
	return !map[0];
}

static void file_load(struct gw_hadisc *d)
{
	char *buf = gw_malloc0(STATE_FILE_MAX + 1);
	json_error_t jerr;
	json_t *nodes = NULL, *o, *f;
	size_t len = 0, i, j;
	int r;

	r = d->dfd < 0 ? -ENOENT : gw_file_read_small(d->dfd, d->file, buf, STATE_FILE_MAX, &len);
	if (r == -ENOENT)
		goto out;
	nodes = r < 0 ? NULL : json_loadb(buf, len, 0, &jerr);
	if (!json_is_array(nodes)) {
		gw_log_uplink(LOG_WARNING, d->cfg->name,
			      "discovery: discovery/%s is unreadable or damaged (%s); announcing "
			      "what comes",
			      d->file, r < 0 ? strerror(-r) : "not a JSON array");
		goto out;
	}
	json_array_foreach(nodes, i, o) {
		const char *device = NULL, *id = NULL, *fw = NULL, *topic = NULL;
		json_t *fields = NULL;
		struct node *n;

		if (json_unpack(o, "{s:s,s:s,s?s,s:s,s:o}", "device", &device, "id", &id, "fw", &fw,
				"state_topic", &topic, "fields", &fields) < 0)
			continue;
		n = node_add(d, device, id);
		n->fw = gw_strdup(fw);
		n->state_topic = gw_strdup(topic);
		json_array_foreach(fields, j, f) {
			const char *name = NULL, *map = NULL;
			int kind = 0;
			char topic_buf[TOPIC_MAX];

			if (json_unpack(f, "{s:s,s:s,s:i}", "name", &name, "map", &map, "kind",
					&kind) < 0 ||
			    kind < KIND_NUMBER || kind > KIND_STRING)
				continue;
			if (field_current(d, name, map)) {
				field_add(n, name, map, (enum kind)kind);
				continue;
			}
			config_topic(d, device, name, (enum kind)kind, topic_buf,
				     sizeof(topic_buf));
			d->removals = gw_realloc_array(d->removals, d->n_removals + 1,
						       sizeof(*d->removals));
			d->removals[d->n_removals++].topic = gw_strdup(topic_buf);
			gw_log_uplink(LOG_INFO, d->cfg->name,
				      "discovery: %s of %s no longer comes out of the [map]s; its "
				      "entity is removed",
				      name, device);
		}
	}
out:
	json_decref(nodes);
	free(buf);
}

/* ---- the interface ---- */

int gw_hadisc_new(const struct gw_config_uplink *cfg, const char *state_dir,
		  const struct gw_config_map *maps, size_t n_maps, struct gw_hadisc **ret)
{
	struct gw_hadisc *d = gw_new0(struct gw_hadisc, 1);
	char dir[4096];
	int r;

	d->cfg = cfg;
	d->maps = maps;
	d->n_maps = n_maps;
	topic_id(cfg->mqtt.client_id, d->gw_id, sizeof(d->gw_id));
	snprintf(d->gw_topic, sizeof(d->gw_topic), "sensorgw/%s/status", d->gw_id);
	snprintf(d->ha_status, sizeof(d->ha_status), "%s/status", cfg->mqtt.discovery_prefix);
	snprintf(d->file, sizeof(d->file), "%s.json", cfg->name);
	snprintf(d->tmp, sizeof(d->tmp), ".%s.json.tmp", cfg->name);
	r = snprintf(dir, sizeof(dir), "%s/discovery", state_dir) >= (int)sizeof(dir) ?
		    -ENAMETOOLONG :
		    0;
	if (r == 0 && mkdir(dir, 0700) < 0 && errno != EEXIST)
		r = -errno;
	d->dfd = r < 0 ? -1 : open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (r == 0 && d->dfd < 0)
		r = -errno;
	if (r < 0)
		gw_log_uplink(LOG_WARNING, cfg->name,
			      "discovery: cannot use %s/discovery: %s; announcing without "
			      "remembering",
			      state_dir, strerror(-r));
	file_load(d);
	*ret = d;
	return 0;
}

struct gw_hadisc *gw_hadisc_free(struct gw_hadisc *d)
{
	if (!d)
		return NULL;
	for (size_t i = 0; i < d->n_nodes; i++) {
		struct node *n = &d->nodes[i];

		for (size_t j = 0; j < n->n_fields; j++) {
			free(n->fields[j].name);
			free(n->fields[j].map);
		}
		free(n->fields);
		free(n->device);
		free(n->id);
		free(n->fw);
		free(n->state_topic);
	}
	for (size_t i = 0; i < d->n_removals; i++)
		free(d->removals[i].topic);
	free(d->removals);
	free(d->nodes);
	if (d->dfd >= 0)
		close(d->dfd);
	free(d);
	return NULL;
}

const char *gw_hadisc_gateway_topic(const struct gw_hadisc *d)
{
	return d->gw_topic;
}

const char *gw_hadisc_ha_status_topic(const struct gw_hadisc *d)
{
	return d->ha_status;
}

void gw_hadisc_announce(struct gw_hadisc *d, int64_t now_ms, gw_hadisc_publish_fn pub, void *ud)
{
	char topic[TOPIC_MAX], ident[128];
	bool removed = d->n_removals > 0;

	snprintf(ident, sizeof(ident), "sensorgw_%s", d->gw_id);
	snprintf(topic, sizeof(topic), "%s/binary_sensor/%s/connectivity/config",
		 d->cfg->mqtt.discovery_prefix, d->gw_id);
	publish_json(topic,
		     json_pack("{s:s,s:s+,s:s,s:s,s:s,s:s,s:{s:[s],s:s,s:s,s:s,s:s},s:{s:s,s:s}}",
			       "name", "Connectivity", "unique_id", ident, "_connectivity",
			       "device_class", "connectivity", "state_topic", d->gw_topic,
			       "payload_on", "online", "payload_off", "offline", "device",
			       "identifiers", ident, "name", d->gw_id, "manufacturer", "sensorgw",
			       "model", "sensorgw gateway", "sw_version", GW_VERSION, "origin",
			       "name", "sensorgw", "sw_version", GW_VERSION),
		     pub, ud);
	pub(ud, d->gw_topic, "online", strlen("online"));
	for (size_t i = 0; i < d->n_removals; i++) {
		pub(ud, d->removals[i].topic, "", 0);
		free(d->removals[i].topic);
	}
	d->n_removals = 0;
	for (size_t i = 0; i < d->n_nodes; i++) {
		struct node *n = &d->nodes[i];

		for (size_t j = 0; j < n->n_fields; j++)
			announce_field(d, n, &n->fields[j], pub, ud);
		set_online(d, n, node_fresh(d, n, now_ms), pub, ud);
	}
	if (removed)
		file_save(d);
}

void gw_hadisc_record(struct gw_hadisc *d, const struct gw_payload_view *v, const char *state_topic,
		      int64_t now_ms, gw_hadisc_publish_fn pub, void *ud)
{
	json_error_t jerr;
	json_t *o = json_loadb(v->json, v->json_len, 0, &jerr), *params, *val;
	const char *fw = json_string_value(json_object_get(o, "fw")), *name;
	json_int_t ts = json_integer_value(json_object_get(o, "ts"));
	struct node *n = NULL;
	bool changed = false;

	params = json_object_get(o, "params");
	if (!json_is_object(params))
		goto out;
	for (size_t i = 0; i < d->n_nodes && !n; i++)
		if (strcmp(d->nodes[i].device, v->device) == 0)
			n = &d->nodes[i];
	if (!n) {
		n = node_add(d, v->device, v->node);
		changed = true;
	}
	if (!n->state_topic || strcmp(n->state_topic, state_topic) != 0 ||
	    !gw_streq_null(n->fw, fw) || strcmp(n->id, v->node) != 0) {
		/* a new hello, topic or identity: every config of the node says so again */
		free(n->state_topic);
		free(n->fw);
		free(n->id);
		n->state_topic = gw_strdup(state_topic);
		n->fw = gw_strdup(fw);
		n->id = gw_strdup(v->node);
		for (size_t j = 0; j < n->n_fields; j++)
			announce_field(d, n, &n->fields[j], pub, ud);
		changed = true;
	}
	json_object_foreach(params, name, val) {
		const struct gw_config_map *m;
		enum kind kind;
		size_t j;

		if (json_is_boolean(val))
			kind = KIND_BOOL;
		else if (json_is_number(val))
			kind = KIND_NUMBER;
		else if (json_is_string(val))
			kind = KIND_STRING;
		else
			continue;
		for (j = 0; j < n->n_fields && strcmp(n->fields[j].name, name) != 0; j++)
			;
		if (j < n->n_fields)
			continue;
		m = find_map(d, name, v->port);
		field_add(n, name, m ? m->field : "", kind);
		announce_field(d, n, &n->fields[n->n_fields - 1], pub, ud);
		changed = true;
	}
	/* availability by the reading's own time: a backlog sent late does not say online */
	if (ts > n->last_ms)
		n->last_ms = ts;
	if (n->online != 1 && node_fresh(d, n, now_ms))
		set_online(d, n, 1, pub, ud);
	if (changed)
		file_save(d);
out:
	json_decref(o);
}

int64_t gw_hadisc_tick(struct gw_hadisc *d, int64_t now_ms, gw_hadisc_publish_fn pub, void *ud)
{
	int64_t timeout = (int64_t)d->cfg->mqtt.node_timeout_s * 1000, next = 60000;

	if (!timeout)
		return next;
	for (size_t i = 0; i < d->n_nodes; i++) {
		struct node *n = &d->nodes[i];
		int64_t left = n->last_ms + timeout - now_ms;

		if (n->online == 1 && left <= 0)
			set_online(d, n, 0, pub, ud);
		else if (n->online == 1 && left < next)
			next = left;
	}
	return next < 100 ? 100 : next;
}

void gw_hadisc_goodbye(struct gw_hadisc *d, gw_hadisc_publish_fn pub, void *ud)
{
	pub(ud, d->gw_topic, "offline", strlen("offline"));
}
