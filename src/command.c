/* SPDX-License-Identifier: MIT */
/*
 * The command path to nodes: encode, queue on the node's port, wait for the command-reply or
 * the timeout. See include/gw/command.h for the contract.
 */

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "gw/command.h"
#include "gw/log.h"
#include "gw/mapping.h"
#include "gw/util.h"
#include "sgw_node.h"

struct pending {
	struct gw_command *c;
	bool used;
	char port[GW_KEY_MAX];
	char node[GW_NODE_ID_MAX];
	uint8_t addr;
	uint16_t cmd_id;
	uint64_t started_us;
	sd_event_source *timer;
	gw_command_done_fn done;
	void *user_data;
};

struct gw_command {
	sd_event *event;
	const struct gw_config *cfg;
	struct gw_nodes *nodes;
	gw_command_port_fn port_fn;
	void *port_ud;
	uint16_t next_cmd_id;
	uint16_t next_seq; /* the gateway's own sequence as a sender of command frames */
	struct pending pending[GW_COMMAND_MAX_PENDING];
};

const char *gw_command_status_to_string(enum gw_command_status s)
{
	switch (s) {
	case GW_COMMAND_REPLIED:
		return "replied";
	case GW_COMMAND_ABSENT:
		return "absent";
	case GW_COMMAND_NO_CHANNEL:
		return "no-channel";
	case GW_COMMAND_PORT_CLOSED:
		return "port-closed";
	case GW_COMMAND_NODE_GONE:
		return "node-gone";
	case GW_COMMAND_TIMEOUT:
		return "timeout";
	case GW_COMMAND_BUSY:
		return "busy";
	case GW_COMMAND_INVALID:
		return "invalid";
	case GW_COMMAND_FAILED:
		return "failed";
	case GW_COMMAND_CANCELLED:
		return "cancelled";
	}
	return "?";
}

const char *gw_command_kind_to_string(enum gw_command_kind k)
{
	switch (k) {
	case GW_COMMAND_PROPERTY_SET:
		return "property set";
	case GW_COMMAND_SERVICE:
		return "service call";
	case GW_COMMAND_CONTROL:
		return "control";
	}
	return "?";
}

/* ---- encoding (pure) ---- */

static bool printable(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return false;
	return true;
}

static bool key_valid(const char *k, size_t len)
{
	if (len < 1 || len > SGW_MAX_KEY)
		return false;
	for (size_t i = 0; i < len; i++) {
		char ch = k[i];

		if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		      (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == '-'))
			return false;
	}
	return true;
}

/* The map whose thing-model identifier is name: one for this port first, then any port. */
static const struct gw_config_map *find_reverse_map(const struct gw_config *cfg, const char *port,
						    const char *name)
{
	const struct gw_config_map *any = NULL;

	if (!cfg)
		return NULL;
	for (size_t i = 0; i < cfg->n_maps; i++) {
		const struct gw_config_map *m = &cfg->maps[i];

		if (strcmp(m->identifier, name) != 0)
			continue;
		if (!m->port[0])
			any = m;
		else if (port && strcmp(m->port, port) == 0)
			return m;
	}
	return any;
}

static bool fits_i32(json_int_t v)
{
	return v >= INT32_MIN && v <= INT32_MAX;
}

/* Appends member name = v as one field. */
static int put_member(struct sgw_builder *b, const struct gw_config *cfg, const char *port,
		      const char *name, json_t *v, char *key, char *why, size_t why_size)
{
	const struct gw_config_map *m = find_reverse_map(cfg, port, name);
	bool scaled = m && (m->scale != 1 || m->offset != 0);
	size_t klen;

	snprintf(key, GW_KEY_MAX, "%s", m ? m->field : name);
	klen = m ? strlen(m->field) : strlen(name);
	if (!key_valid(m ? m->field : name, klen)) {
		gw_why_set(why, why_size, "\"%.40s\" is not a field key (1..%d of "
			   "A-Z a-z 0-9 _ . -)", name, SGW_MAX_KEY);
		return -EINVAL;
	}
	switch (json_typeof(v)) {
	case JSON_TRUE:
	case JSON_FALSE:
		sgw_put_bool(b, key, json_is_true(v));
		return 0;
	case JSON_INTEGER:
	case JSON_REAL: {
		double d = json_number_value(v);

		if (!scaled) {
			if (json_is_integer(v)) {
				json_int_t i = json_integer_value(v);

				if (fits_i32(i))
					sgw_put_i32(b, key, (int32_t)i);
				else
					sgw_put_i64(b, key, (int64_t)i);
			} else {
				sgw_put_f64(b, key, d);
			}
			return 0;
		}
		/* back to the raw value the node works with: the inverse of raw * scale + offset */
		d = (d - m->offset) / m->scale;
		if (!isfinite(d)) {
			gw_why_set(why, why_size, "\"%.40s\" has no finite raw value", name);
			return -EINVAL;
		}
		/* cppcheck 2.10 misreads the hex floats 0x1p31 as 0, hence "always false" */
		/* cppcheck-suppress incorrectLogicOperator */
		if (json_is_integer(v) && d == nearbyint(d) && d >= -0x1p31 && d < 0x1p31)
			sgw_put_i32(b, key, (int32_t)d);
		else
			sgw_put_f64(b, key, d);
		return 0;
	}
	case JSON_STRING:
		if (json_string_length(v) > SGW_MAX_STR ||
		    !printable(json_string_value(v), json_string_length(v))) {
			gw_why_set(why, why_size, "\"%.40s\" is not a string of 0..%d "
				   "printable ASCII characters", name, SGW_MAX_STR);
			return -EINVAL;
		}
		sgw_put_str(b, key, json_string_value(v));
		return 0;
	case JSON_OBJECT:
	case JSON_ARRAY:
	case JSON_NULL:
		break;
	}
	gw_why_set(why, why_size, "\"%.40s\" is %s: a command field holds a bool, number or "
		   "string", name, json_is_object(v) ? "an object" : json_is_array(v) ? "an array" :
		   "null");
	return -EINVAL;
}

int gw_command_encode(const struct gw_config *cfg, const char *port, uint8_t addr, uint16_t seq,
		      uint16_t cmd_id, enum gw_command_kind kind, const char *name, json_t *params,
		      uint8_t *out, size_t cap, char *why, size_t why_size)
{
	char keys[GW_FRAME_MAX_FIELDS][GW_KEY_MAX];
	struct sgw_builder b;
	size_t n = 0, name_len;
	const char *member;
	json_t *v;
	int r;

	gw_why_set(why, why_size, "%s", "");
	if (!name)
		name = "";
	name_len = strlen(name);
	if (kind != GW_COMMAND_PROPERTY_SET && kind != GW_COMMAND_SERVICE &&
	    kind != GW_COMMAND_CONTROL) {
		gw_why_set(why, why_size, "unknown command kind %d", (int)kind);
		return -EINVAL;
	}
	if (name_len > SGW_MAX_NAME || !printable(name, name_len) ||
	    (kind != GW_COMMAND_PROPERTY_SET && name_len == 0)) {
		gw_why_set(why, why_size, "the name \"%.40s\" is not 1..%d printable ASCII "
			   "characters", name, SGW_MAX_NAME);
		return -EINVAL;
	}
	if (params && !json_is_object(params)) {
		gw_why_set(why, why_size, "params is not an object");
		return -EINVAL;
	}
	if (params && json_object_size(params) > GW_FRAME_MAX_FIELDS) {
		gw_why_set(why, why_size, "%zu params: a command frame carries at most %d",
			   json_object_size(params), GW_FRAME_MAX_FIELDS);
		return -EINVAL;
	}
	sgw_begin(&b, SGW_TYPE_COMMAND, addr, seq);
	sgw_put_u16(&b, cmd_id);
	sgw_put_u8(&b, (uint8_t)kind);
	sgw_put_str8(&b, name, SGW_MAX_NAME);
	json_object_foreach(params, member, v) {
		r = put_member(&b, cfg, port, member, v, keys[n], why, why_size);
		if (r < 0)
			return r;
		for (size_t i = 0; i < n; i++) {
			if (strcmp(keys[i], keys[n]) == 0) {
				gw_why_set(why, why_size, "\"%.40s\" and another member are "
					   "both field %s", member, keys[n]);
				return -EINVAL;
			}
		}
		n++;
		if (b.err == SGW_E_SPACE) {
			gw_why_set(why, why_size, "the params do not fit the %d-byte payload "
				   "of a command frame", SGW_MAX_PAYLOAD);
			return -EMSGSIZE;
		}
	}
	r = sgw_finish(&b, out, cap);
	if (r == SGW_E_SPACE) {
		gw_why_set(why, why_size, "the params do not fit the %d-byte payload of a "
			   "command frame", SGW_MAX_PAYLOAD);
		return -EMSGSIZE;
	}
	if (r < 0) {
		/* every argument was checked above: the node library disagrees with us */
		gw_why_set(why, why_size, "the node library refused the frame (%d)", r);
		return -EINVAL;
	}
	return r;
}

/* ---- pending commands ---- */

static void complete(struct pending *p, enum gw_command_status status, uint16_t code,
		     json_t *params, const char *reason)
{
	gw_command_done_fn done = p->done;
	void *ud = p->user_data;
	struct gw_command_result res = {
		.status = status,
		.code = code,
		.params = params,
		.reason = reason ? reason : "",
		.port = p->port,
		.node = p->node,
		.cmd_id = p->cmd_id,
		.elapsed_ms = (gw_now_mono_us() - p->started_us) / 1000,
	};
	char port[GW_KEY_MAX], node[GW_NODE_ID_MAX];

	/* free the slot first: the callback may send the next command */
	snprintf(port, sizeof(port), "%s", p->port);
	snprintf(node, sizeof(node), "%s", p->node);
	res.port = port;
	res.node = node;
	p->timer = sd_event_source_disable_unref(p->timer);
	p->used = false;
	p->done = NULL;
	done(&res, ud);
}

/* A command that never became pending. */
static int fail_now(gw_command_done_fn done, void *ud, enum gw_command_status status,
		    const struct gw_node *node, const char *reason)
{
	struct gw_command_result res = {
		.status = status,
		.reason = reason,
		.port = node ? node->port : "",
		.node = node ? node->id : "",
	};

	done(&res, ud);
	return 0;
}

static int timeout_cb(sd_event_source *s, uint64_t usec, void *ud)
{
	struct pending *p = ud;
	char why[GW_COMMAND_REASON_MAX];

	snprintf(why, sizeof(why), "node %s did not answer command %u within %llu ms", p->node,
		 p->cmd_id, (unsigned long long)((gw_now_mono_us() - p->started_us) / 1000));
	complete(p, GW_COMMAND_TIMEOUT, 0, NULL, why);
	return 0;
}

static const struct gw_config_port *port_config(const struct gw_config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n_ports; i++)
		if (strcmp(cfg->ports[i].name, name) == 0)
			return &cfg->ports[i];
	return NULL;
}

/* The node whose records carry device; when several do (a template without {uid} or
 * {addr}), the one heard from last. */
static struct gw_node *find_node(struct gw_command *c, const char *device)
{
	struct gw_node *best = NULL;

	for (size_t i = 0; i < gw_nodes_count(c->nodes); i++) {
		struct gw_node *n = gw_nodes_at(c->nodes, i);

		if (strcmp(n->device, device) == 0 &&
		    (!best || n->last_seen_ms > best->last_seen_ms))
			best = n;
	}
	return best;
}

static bool id_pending(const struct gw_command *c, const char *port, uint8_t addr, uint16_t id)
{
	for (size_t i = 0; i < GW_COMMAND_MAX_PENDING; i++) {
		const struct pending *p = &c->pending[i];

		if (p->used && p->addr == addr && p->cmd_id == id && strcmp(p->port, port) == 0)
			return true;
	}
	return false;
}

int gw_command_send(struct gw_command *c, const char *device, enum gw_command_kind kind,
		    const char *name, json_t *params, uint32_t timeout_ms, gw_command_done_fn done,
		    void *user_data)
{
	uint8_t wire[SGW_MAX_WIRE];
	char reason[GW_COMMAND_REASON_MAX];
	char why[GW_COMMAND_REASON_MAX + 64];
	const struct gw_config_port *pc;
	struct pending *p = NULL;
	struct gw_node *node;
	struct gw_port *port;
	uint16_t cmd_id;
	int len, r;

	node = find_node(c, device);
	if (!node) {
		snprintf(why, sizeof(why), "no node with device name %s has been heard since the "
			 "gateway started", device);
		return fail_now(done, user_data, GW_COMMAND_ABSENT, NULL, why);
	}
	pc = port_config(c->cfg, node->port);
	if (!pc || pc->framing != GW_FRAMING_BINARY || !node->has_addr) {
		snprintf(why, sizeof(why), "node %s is on port %s with text framing, which has no "
			 "command channel", node->id, node->port);
		return fail_now(done, user_data, GW_COMMAND_NO_CHANNEL, node, why);
	}
	port = c->port_fn(node->port, c->port_ud);
	if (!port || gw_port_state(port) != GW_SERIAL_OPEN) {
		snprintf(why, sizeof(why), "port %s of node %s is closed (unplugged?)", node->port,
			 node->id);
		return fail_now(done, user_data, GW_COMMAND_PORT_CLOSED, node, why);
	}
	for (size_t i = 0; i < GW_COMMAND_MAX_PENDING && !p; i++)
		if (!c->pending[i].used)
			p = &c->pending[i];
	if (!p) {
		snprintf(why, sizeof(why), "%d commands are pending already",
			 GW_COMMAND_MAX_PENDING);
		return fail_now(done, user_data, GW_COMMAND_BUSY, node, why);
	}
	/* 65536 ids and at most 16 pending: a free one is always near */
	do
		cmd_id = c->next_cmd_id++;
	while (id_pending(c, node->port, node->addr, cmd_id));
	len = gw_command_encode(c->cfg, node->port, node->addr, c->next_seq, cmd_id, kind, name,
				params, wire, sizeof(wire), reason, sizeof(reason));
	if (len < 0) {
		snprintf(why, sizeof(why), "cannot be sent as a command frame: %s", reason);
		return fail_now(done, user_data, GW_COMMAND_INVALID, node, why);
	}
	r = gw_port_write(port, wire, (size_t)len);
	if (r < 0) {
		snprintf(why, sizeof(why), "port %s refused the frame: %s", node->port,
			 strerror(-r));
		return fail_now(done, user_data, r == -ENOTCONN ? GW_COMMAND_PORT_CLOSED :
				GW_COMMAND_FAILED, node, why);
	}
	c->next_seq++;
	*p = (struct pending){
		.c = c,
		.used = true,
		.addr = node->addr,
		.cmd_id = cmd_id,
		.started_us = gw_now_mono_us(),
		.done = done,
		.user_data = user_data,
	};
	snprintf(p->port, sizeof(p->port), "%s", node->port);
	snprintf(p->node, sizeof(p->node), "%s", node->id);
	r = sd_event_add_time_relative(c->event, &p->timer, CLOCK_MONOTONIC,
				       (uint64_t)timeout_ms * 1000, 1000, timeout_cb, p);
	if (r < 0) {
		/* the frame is out, but without a timer it could pend forever: give up on it */
		p->timer = NULL;
		snprintf(why, sizeof(why), "cannot arm its timeout: %s", strerror(-r));
		complete(p, GW_COMMAND_FAILED, 0, NULL, why);
		return 0;
	}
	gw_log_node(LOG_DEBUG, p->port, p->node, "%s %s%s%s sent as command %u",
		    gw_command_kind_to_string(kind), name && *name ? "'" : "",
		    name && *name ? name : "", name && *name ? "'" : "", cmd_id);
	return 1;
}

bool gw_command_reply(struct gw_command *c, const char *port, const struct gw_frame *f)
{
	json_t *params = NULL;
	int r;

	if (!f->has_addr)
		return false;
	for (size_t i = 0; i < GW_COMMAND_MAX_PENDING; i++) {
		struct pending *p = &c->pending[i];

		if (!p->used || p->addr != f->addr || p->cmd_id != f->cmd_id ||
		    strcmp(p->port, port) != 0)
			continue;
		r = gw_mapping_params(c->cfg, port, f, &params);
		if (r < 0) {
			/* the node answered: its code stands, only the values are lost */
			gw_log_node(LOG_WARNING, port, p->node, "command %u: a reply value "
				    "cannot be converted as its [map] section says; replying "
				    "without values", f->cmd_id);
			params = json_object();
		}
		complete(p, GW_COMMAND_REPLIED, f->code, params, NULL);
		json_decref(params);
		return true;
	}
	return false;
}

static void fail_matching(struct gw_command *c, const char *port, bool any_addr, uint8_t addr,
			  enum gw_command_status status, const char *why)
{
	for (size_t i = 0; i < GW_COMMAND_MAX_PENDING; i++) {
		struct pending *p = &c->pending[i];

		if (p->used && (!port || strcmp(p->port, port) == 0) &&
		    (any_addr || p->addr == addr))
			complete(p, status, 0, NULL, why);
	}
}

void gw_command_port_closed(struct gw_command *c, const char *port)
{
	char why[GW_COMMAND_REASON_MAX];

	snprintf(why, sizeof(why), "port %s closed while the command was pending", port);
	fail_matching(c, port, true, 0, GW_COMMAND_PORT_CLOSED, why);
}

void gw_command_node_reset(struct gw_command *c, const char *port, uint8_t addr, const char *why)
{
	fail_matching(c, port, false, addr, GW_COMMAND_NODE_GONE, why);
}

void gw_command_cancel_all(struct gw_command *c)
{
	fail_matching(c, NULL, true, 0, GW_COMMAND_CANCELLED,
		      "the gateway is stopping; commands are not kept across a restart");
}

size_t gw_command_pending(const struct gw_command *c)
{
	size_t n = 0;

	for (size_t i = 0; i < GW_COMMAND_MAX_PENDING; i++)
		n += c->pending[i].used;
	return n;
}

int gw_command_new(sd_event *event, const struct gw_config *cfg, struct gw_nodes *nodes,
		   gw_command_port_fn port_fn, void *port_ud, struct gw_command **ret)
{
	struct gw_command *c = gw_new0(struct gw_command, 1);
	uint32_t seed = 0;

	c->event = sd_event_ref(event);
	c->cfg = cfg;
	c->nodes = nodes;
	c->port_fn = port_fn;
	c->port_ud = port_ud;
	/* a reply a node sends after a restart of the daemon must not match a new command */
	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) == (ssize_t)sizeof(seed))
		c->next_cmd_id = (uint16_t)seed;
	*ret = c;
	return 0;
}

struct gw_command *gw_command_free(struct gw_command *c)
{
	if (!c)
		return NULL;
	gw_command_cancel_all(c);
	sd_event_unref(c->event);
	free(c);
	return NULL;
}
