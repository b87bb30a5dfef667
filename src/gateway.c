/* SPDX-License-Identifier: MIT */
/*
 * The gateway: frames from ports become records for the uplinks. Decides what to log about
 * nodes, bad frames, ports and uplinks, and keeps sd_notify STATUS= current: sent at once when
 * a port or an uplink changes state, and checked every STATUS_REFRESH_USEC (or half the
 * watchdog interval, when that is shorter) for what changes without an event of its own (nodes,
 * records, backlog); a STATUS= is sent only when its text differs from the last one sent.
 */

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>

#include "gw/command.h"
#include "gw/gateway.h"
#include "gw/jsonw.h"
#include "gw/log.h"
#include "gw/mapping.h"
#include "gw/node.h"
#include "gw/payload.h"
#include "gw/port.h"
#include "gw/spool.h"
#include "gw/uplink.h"
#include "gw/util.h"

#define STATUS_REFRESH_USEC (5 * 1000000ULL)

struct gw_gateway {
	sd_event *event;
	const struct gw_config *cfg;
	struct gw_nodes *nodes;
	struct gw_command *commands; /* downlink commands waiting for their node's reply */
	struct gw_spool *spool;
	sd_event_source *sync_timer;
	uint64_t records_enospc;
	size_t n_ports;
	struct gw_port *ports[GW_CONFIG_MAX_PORTS];
	size_t n_uplinks;
	struct gw_uplink *uplinks[GW_CONFIG_MAX_UPLINKS];
	uint64_t records;
	uint64_t duplicates;
	uint64_t records_unmapped; /* frames whose values could not be mapped */
	bool stopping;
	gw_gateway_stopped_fn stopped_fn;
	void *stopped_ud;
	sd_event_source *stop_timer;
	/* reused for every frame: the mapped params, then the spool record built around them */
	struct gw_jsonw *params_w, *record_w;
	uint64_t refused_logged[GW_CONFIG_MAX_PORTS]; /* a port's refusals seen, by config index */
	bool port_setup; /* inside gw_port_new, whose port cannot answer for its stats yet */
	sd_event_source *status_timer;
	uint64_t status_period_usec;
	char status_sent[256]; /* the last STATUS= text sent */
};

static void notify_status(struct gw_gateway *g)
{
	char status[sizeof(g->status_sent)];

	gw_gateway_status(g, status, sizeof(status));
	if (strcmp(status, g->status_sent) == 0)
		return;
	if (sd_notifyf(0, "STATUS=%s", status) > 0)
		memcpy(g->status_sent, status, sizeof(status));
}

static int status_cb(sd_event_source *s, uint64_t usec, void *ud)
{
	struct gw_gateway *g = ud;

	notify_status(g);
	(void)sd_event_source_set_time_relative(s, g->status_period_usec);
	return 0;
}

void gw_gateway_status(const struct gw_gateway *g, char *buf, size_t size)
{
	size_t open = 0, online = 0;
	uint64_t backlog = 0;

	for (size_t i = 0; i < g->n_ports; i++)
		open += gw_port_state(g->ports[i]) == GW_SERIAL_OPEN;
	for (size_t i = 0; i < g->n_uplinks; i++) {
		struct gw_uplink_summary st;

		gw_uplink_summary(g->uplinks[i], &st);
		/* online when every session it wants is up */
		online += st.sessions > 0 && st.online == st.sessions;
		backlog += st.queued;
	}
	snprintf(buf, size, "%s; ports %zu/%zu open; uplinks %zu/%zu online; %zu nodes; "
		 "%llu records; backlog %llu",
		 g->stopping ? "stopping" : "running", open, g->n_ports, online,
		 g->n_uplinks,
		 gw_nodes_count(g->nodes), (unsigned long long)g->records,
		 (unsigned long long)backlog);
}

static json_t *port_json(const struct gw_port *p)
{
	const struct gw_frame_stats *fs = gw_port_frame_stats(p);
	const struct gw_serial_stats *ss = gw_port_serial_stats(p);
	uint64_t bad = 0;

	for (int e = 1; e < _GW_FRAME_ERR_MAX; e++)
		bad += fs->errors[e];
	return json_pack("{s:s,s:s,s:I,s:I,s:I,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "name",
			 gw_port_name(p), "state",
			 gw_port_state(p) == GW_SERIAL_OPEN ? "open" : "absent",
			 "bytes_in", (json_int_t)ss->bytes_in, "bytes_out", (json_int_t)ss->bytes_out,
			 "refused", (json_int_t)ss->refused, "refused_why", ss->refused_why,
			 "opens", (json_int_t)ss->opens, "closes", (json_int_t)ss->closes,
			 "frames", (json_int_t)fs->frames, "bad_frames", (json_int_t)bad,
			 "crc_errors", (json_int_t)fs->errors[GW_FRAME_ERR_CRC],
			 "oversize", (json_int_t)fs->errors[GW_FRAME_ERR_OVERSIZE],
			 "unknown", (json_int_t)fs->errors[GW_FRAME_ERR_UNKNOWN],
			 "malformed", (json_int_t)fs->errors[GW_FRAME_ERR_MALFORMED],
			 "resyncs", (json_int_t)fs->resyncs);
}

static json_t *node_json(const struct gw_node *n)
{
	char uid[GW_UID_SIZE * 2 + 1];

	if (n->has_uid)
		gw_uid_to_hex(n->uid, uid);
	return json_pack("{s:s,s:s,s:s,s:o,s:o,s:o,s:o,s:I,s:I,s:I,s:I,s:I}", "id", n->id,
			 "device", n->device, "port", n->port,
			 "addr", n->has_addr ? json_integer(n->addr) : json_null(),
			 "uid", n->has_uid ? json_string(uid) : json_null(),
			 "firmware", n->fw_version[0] ? json_string(n->fw_version) : json_null(),
			 "boot", n->has_boot ? json_integer(n->boot_counter) : json_null(),
			 "frames", (json_int_t)n->frames, "errors", (json_int_t)n->errors,
			 "seq_gaps", (json_int_t)n->seq_gaps, "duplicates",
			 (json_int_t)n->duplicates, "last_seen_ms", (json_int_t)n->last_seen_ms);
}

json_t *gw_gateway_status_json(struct gw_gateway *g)
{
	const struct gw_spool_stats *s = gw_spool_stats(g->spool);
	json_t *ports = json_array(), *nodes = json_array(), *uplinks = json_array();
	struct gw_nodes_stats ns;
	size_t n_ports = g->stopping ? 0 : g->cfg->n_ports;

	for (size_t i = 0; i < g->n_ports; i++)
		(void)json_array_append_new(ports, port_json(g->ports[i]));
	/* a configured port not set up yet (start-up) shows as absent */
	for (size_t i = g->n_ports; i < n_ports; i++)
		(void)json_array_append_new(ports, json_pack("{s:s,s:s}", "name",
							     g->cfg->ports[i].name, "state",
							     "absent"));
	for (size_t i = 0; i < gw_nodes_count(g->nodes); i++)
		(void)json_array_append_new(nodes, node_json(gw_nodes_at(g->nodes, i)));
	for (size_t i = 0; i < g->n_uplinks; i++)
		(void)json_array_append_new(uplinks, gw_uplink_status_json(g->uplinks[i]));
	gw_nodes_stats(g->nodes, &ns);
	return json_pack("{s:s,s:I,s:I,s:o,s:o,s:o,s:{s:I,s:I,s:I,s:I},"
			 "s:{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}}",
			 "state", g->stopping ? "stopping" : "running",
			 "records", (json_int_t)g->records,
			 "time_ms", (json_int_t)gw_now_wall_ms(),
			 "ports", ports, "nodes", nodes, "uplinks", uplinks,
			 "node_table", "known", (json_int_t)ns.known, "max", (json_int_t)ns.max,
			 "refused", (json_int_t)ns.refused, "frames_refused",
			 (json_int_t)ns.frames_refused,
			 "spool",
			 "first_seq", (json_int_t)gw_spool_first_seq(g->spool),
			 "next_seq", (json_int_t)gw_spool_next_seq(g->spool),
			 "bytes", (json_int_t)s->bytes, "segments", (json_int_t)s->segments,
			 "appended", (json_int_t)s->appended, "syncs", (json_int_t)s->syncs,
			 "unsynced", (json_int_t)gw_spool_unsynced(g->spool),
			 "torn_tails", (json_int_t)s->recovered_torn_tail,
			 "quarantined", (json_int_t)s->segments_quarantined,
			 "lost_corrupt", (json_int_t)s->records_lost_corrupt,
			 "dropped_overflow", (json_int_t)s->dropped_overflow,
			 "dropped_enospc", (json_int_t)s->dropped_enospc,
			 "duplicates", (json_int_t)g->duplicates,
			 "unmapped", (json_int_t)g->records_unmapped,
			 "seq_gaps", (json_int_t)s->seq_gaps);
}

void gw_gateway_log_stats(const struct gw_gateway *g)
{
	const struct gw_spool_stats *s = gw_spool_stats(g->spool);
	struct gw_nodes_stats ns;

	gw_log(LOG_INFO, "spool: next_seq=%llu first_seq=%llu appended=%llu bytes=%llu "
	       "segments=%llu syncs=%llu torn_tail=%llu quarantined=%llu lost_corrupt=%llu "
	       "dropped_overflow=%llu dropped_enospc=%llu duplicates=%llu",
	       (unsigned long long)gw_spool_next_seq(g->spool),
	       (unsigned long long)gw_spool_first_seq(g->spool), (unsigned long long)s->appended,
	       (unsigned long long)s->bytes, (unsigned long long)s->segments,
	       (unsigned long long)s->syncs, (unsigned long long)s->recovered_torn_tail,
	       (unsigned long long)s->segments_quarantined,
	       (unsigned long long)s->records_lost_corrupt,
	       (unsigned long long)s->dropped_overflow, (unsigned long long)s->dropped_enospc,
	       (unsigned long long)g->duplicates);
	gw_nodes_stats(g->nodes, &ns);
	gw_log(LOG_INFO, "nodes: known=%zu max=%zu refused=%llu frames_refused=%llu", ns.known,
	       ns.max, (unsigned long long)ns.refused, (unsigned long long)ns.frames_refused);
	for (size_t i = 0; i < g->n_uplinks; i++)
		gw_uplink_log_counters(g->uplinks[i]);
}

static int sync_spool(struct gw_gateway *g)
{
	int r = gw_spool_sync(g->spool);

	if (r < 0)
		gw_log(LOG_ERR, "spool sync failed: %s; records since the last sync may not survive "
		       "a power cut", strerror(-r));
	(void)sd_event_source_set_enabled(g->sync_timer, SD_EVENT_OFF);
	return r;
}

static int sync_cb(sd_event_source *s, uint64_t usec, void *ud)
{
	(void)sync_spool(ud);
	return 0;
}

/* Group commit: every sync_records records, or sync_ms after the first unsynced one. */
static void schedule_sync(struct gw_gateway *g)
{
	int enabled = SD_EVENT_OFF;

	if (gw_spool_unsynced(g->spool) >= g->cfg->sync_records) {
		(void)sync_spool(g);
		return;
	}
	(void)sd_event_source_get_enabled(g->sync_timer, &enabled);
	if (enabled == SD_EVENT_OFF) {
		(void)sd_event_source_set_time_relative(g->sync_timer,
							(uint64_t)g->cfg->sync_ms * 1000);
		(void)sd_event_source_set_enabled(g->sync_timer, SD_EVENT_ONESHOT);
	}
}

/* The record goes to disk first; only then do the uplinks hear of it. */
static void deliver(struct gw_gateway *g, struct gw_record *rec)
{
	const char *params, *packed;
	size_t len, plen;
	uint64_t seq;
	int r;

	rec->seq = gw_spool_next_seq(g->spool);
	params = gw_jsonw_data(g->params_w, &len);
	gw_jsonw_reset(g->record_w);
	r = gw_payload_build(rec, params, len, g->record_w);
	if (r < 0) {
		gw_log_node(LOG_ERR, rec->node->port, rec->node->id, "cannot build payload: %s",
			    strerror(-r));
		return;
	}
	packed = gw_jsonw_data(g->record_w, &plen);
	r = gw_spool_append(g->spool, rec->ts_ms, (uint8_t)rec->type, (const uint8_t *)packed, plen,
			    &seq);
	if (r < 0) {
		g->records_enospc++;
		gw_log_node(LOG_WARNING, rec->node->port, rec->node->id,
			    "record dropped: the spool cannot store it (%s); the gateway keeps "
			    "running and counts the drop", strerror(-r));
		return;
	}
	g->records++;
	schedule_sync(g);
	for (size_t i = 0; i < g->n_uplinks; i++)
		gw_uplink_kick(g->uplinks[i], seq);
}

static void on_hello(struct gw_gateway *g, struct gw_port *p, struct gw_node *node,
		     const struct gw_frame *f)
{
	char old_id[GW_NODE_ID_MAX];
	bool had_boot = node->has_boot;
	uint32_t old_boot = node->boot_counter;
	int r;

	snprintf(old_id, sizeof(old_id), "%s", node->id);
	r = gw_node_hello(g->nodes, node, f);
	/* a node that rebooted or was replaced will not answer what was sent before */
	if (node->has_addr && had_boot && (r != 0 || old_boot != node->boot_counter))
		gw_command_node_reset(g->commands, node->port, node->addr,
				      r != 0 ? "another node took its address while the command "
				      "was pending" :
				      "the node rebooted while the command was pending");
	if (r < 0) {
		gw_log_node(LOG_ERR, gw_port_name(p), old_id,
			    "device name template cannot be expanded: %s", strerror(-r));
		return;
	}
	gw_log_node(LOG_INFO, gw_port_name(p), node->id,
		    "node %s: hello from %s, firmware '%s', boot %u, device '%s'",
		    r ? "identified" : "rebooted", old_id, node->fw_version, node->boot_counter,
		    node->device);
}

static void on_frame(struct gw_port *p, const struct gw_frame *f, enum gw_frame_error err,
		     void *ud)
{
	struct gw_gateway *g = ud;
	const char *port = gw_port_name(p);
	struct gw_record rec = { 0 };
	struct gw_node *node;
	bool created;
	int r;

	if (g->stopping)
		return;
	if (err != GW_FRAME_OK) {
		/* The address in a damaged frame may itself be damaged: only count it against
		 * a node we already know. */
		for (size_t i = 0; f && f->has_addr && i < gw_nodes_count(g->nodes); i++) {
			node = gw_nodes_at(g->nodes, i);
			if (node->has_addr && node->addr == f->addr && strcmp(node->port, port) == 0)
				node->errors++;
		}
		gw_log_port(LOG_WARNING, port, "skipped a bad frame: %s",
			    gw_frame_error_to_string(err));
		return;
	}

	r = gw_nodes_get(g->nodes, port, f->has_addr, f->addr, &node, &created);
	if (r == -ENOSPC) {
		/* Its frames are lost, not spooled: keeping them would give a peer that invents
		 * addresses the spool instead of the table to fill. One line per refused node
		 * (at most 257 a port), the rest at debug; sensorgwctl status counts both. */
		char who[32];
		struct gw_nodes_stats st;

		gw_nodes_stats(g->nodes, &st);
		if (f->has_addr)
			snprintf(who, sizeof(who), "address %u", f->addr);
		else
			snprintf(who, sizeof(who), "the node without an address");
		gw_log_port(created ? LOG_WARNING : LOG_DEBUG, port, "node table full (max_nodes = "
			    "%zu): the frames of %s are dropped, not spooled (%llu node(s), %llu "
			    "frame(s) refused so far)", st.max, who, (unsigned long long)st.refused,
			    (unsigned long long)st.frames_refused);
		return;
	}
	if (r < 0) {
		gw_log_port(LOG_ERR, port, "cannot name node: %s", strerror(-r));
		return;
	}
	if (created)
		gw_log_node(LOG_INFO, port, node->id, "new node on port %s, device '%s'", port,
			    node->device);
	node->last_seen_ms = gw_now_wall_ms();

	switch (f->type) {
	case GW_FRAME_HELLO:
		on_hello(g, p, node, f);
		return;
	case GW_FRAME_TELEMETRY:
	case GW_FRAME_EVENT:
		break;
	case GW_FRAME_COMMAND_REPLY:
		/* a reply takes a place in the node's sequence like any frame it sends */
		if (f->has_seq) {
			bool dup;
			uint32_t missing = gw_node_seq(node, f->seq, &dup);

			if (missing)
				gw_log_node(LOG_NOTICE, port, node->id, "%u frame(s) missing before "
					    "sequence %u", missing, f->seq);
			if (dup) {
				gw_log_node(LOG_DEBUG, port, node->id, "duplicate reply (sequence "
					    "%u) dropped", f->seq);
				return;
			}
		}
		if (!gw_command_reply(g->commands, port, f))
			gw_log_node(LOG_NOTICE, port, node->id, "reply to command %u (code %u) "
				    "ignored: no such command is pending (it timed out, or was sent "
				    "before a restart)", f->cmd_id, f->code);
		return;
	case GW_FRAME_ACK:
	case GW_FRAME_COMMAND:
		gw_log_node(LOG_DEBUG, port, node->id, "ignored a %s frame from a node",
			    gw_frame_type_to_string(f->type));
		return;
	}

	if (f->has_seq) {
		bool dup;
		uint32_t missing = gw_node_seq(node, f->seq, &dup);

		if (dup) {
			/* The node re-sent a frame we already have (it missed our ack). */
			g->duplicates++;
			gw_log_node(LOG_DEBUG, port, node->id, "duplicate of sequence %u dropped",
				    f->seq);
			return;
		}
		if (missing)
			gw_log_node(LOG_NOTICE, port, node->id,
				    "%u frame(s) missing before sequence %u", missing, f->seq);
	}
	node->frames++;
	rec.ts_ms = node->last_seen_ms;
	rec.type = f->type;
	rec.node = node;
	rec.has_node_seq = f->has_seq;
	rec.node_seq = f->seq;
	if (f->type == GW_FRAME_EVENT)
		snprintf(rec.event, sizeof(rec.event), "%s", f->name);
	gw_jsonw_reset(g->params_w);
	r = gw_mapping_write_params(g->cfg, port, f, g->params_w);
	if (r < 0) {
		g->records_unmapped++;
		gw_log_node(LOG_WARNING, port, node->id,
			    "frame skipped: a value cannot be converted as its [map] section says");
		return;
	}
	deliver(g, &rec);
}

/* A refusal to open a console or a login's line (gw/tty.h), once for each time it begins: the
 * serial layer reports a failure again only when its reason changes. */
static void log_refusal(struct gw_gateway *g, struct gw_port *p)
{
	const struct gw_serial_stats *ss = gw_port_serial_stats(p);

	for (size_t i = 0; i < g->cfg->n_ports; i++) {
		const struct gw_config_port *c = &g->cfg->ports[i];

		if (strcmp(c->name, gw_port_name(p)) != 0 || ss->refused == g->refused_logged[i])
			continue;
		g->refused_logged[i] = ss->refused;
		gw_log_port(LOG_ERR, c->name, "not opened: %s; sensorgwd never takes over a console "
			    "or a login's line. Free it (e.g. disable the serial console and its "
			    "getty) or configure another device: it is tried again every %.1f s at "
			    "most", ss->refused_why, c->reopen_max_ms / 1000.0);
	}
}

static void on_port_state(struct gw_port *p, enum gw_serial_state state, void *ud)
{
	struct gw_gateway *g = ud;

	if (state != GW_SERIAL_OPEN) {
		gw_command_port_closed(g->commands, gw_port_name(p));
		if (!g->port_setup)
			log_refusal(g, p);
	}
	notify_status(g);
}

/* The command path finds a node's port by its name. */
static struct gw_port *command_port(const char *name, void *ud)
{
	struct gw_gateway *g = ud;

	for (size_t i = 0; i < g->n_ports; i++)
		if (strcmp(gw_port_name(g->ports[i]), name) == 0)
			return g->ports[i];
	return NULL;
}

/* What a cloud uplink calls for a command from the cloud (struct gw_uplink_commands). */
static int cloud_command(void *ud, const char *device, enum gw_command_kind kind,
			 const char *name, json_t *params, uint32_t timeout_ms,
			 gw_command_done_fn done, void *done_ud)
{
	struct gw_gateway *g = ud;

	if (g->stopping) {
		struct gw_command_result res = {
			.status = GW_COMMAND_CANCELLED,
			.reason = "the gateway is stopping",
			.port = "",
			.node = "",
		};

		done(&res, done_ud);
		return 0;
	}
	return gw_command_send(g->commands, device, kind, name, params, timeout_ms, done,
			       done_ud);
}

static void maybe_stopped(struct gw_gateway *g)
{
	gw_gateway_stopped_fn fn = g->stopped_fn;

	if (!g->stopping || !fn)
		return;
	/* Stored records are safe on disk; only what is in flight is worth a moment's wait,
	 * so the next start does not send it twice. */
	for (size_t i = 0; i < g->n_uplinks; i++)
		if (gw_uplink_draining(g->uplinks[i]) > 0)
			return;
	g->stopped_fn = NULL;
	fn(g, g->stopped_ud);
}

/* Uplinks log their own state changes: a cloud uplink has one line per device. */
static void on_uplink_notify(struct gw_uplink *u, bool state_changed, void *ud)
{
	if (state_changed)
		notify_status(ud);
	maybe_stopped(ud);
}

int gw_gateway_new(sd_event *event, const struct gw_config *cfg, struct gw_gateway **ret)
{
	struct gw_gateway *g = gw_new0(struct gw_gateway, 1);
	int r;

	_cleanup_free_ char *spool_dir = NULL;
	struct gw_spool_options so = {
		.segment_bytes = cfg->spool_segment_bytes,
		.max_bytes = cfg->spool_max_bytes,
		.min_free_bytes = cfg->min_free_bytes,
	};

	g->event = sd_event_ref(event);
	g->cfg = cfg;
	g->params_w = gw_jsonw_new();
	g->record_w = gw_jsonw_new();
	r = gw_nodes_new(cfg->device_name, cfg->max_nodes, &g->nodes);
	if (r < 0)
		goto fail;
	r = gw_command_new(event, cfg, g->nodes, command_port, g, &g->commands);
	if (r < 0)
		goto fail;
	/* systemd's StateDirectory= makes it; by hand, the parent must exist. */
	if (mkdir(cfg->state_dir, 0700) < 0 && errno != EEXIST) {
		r = -errno;
		gw_log(LOG_ERR, "cannot create the state directory %s: %s", cfg->state_dir,
		       strerror(errno));
		goto fail;
	}
	if (asprintf(&spool_dir, "%s/spool", cfg->state_dir) < 0) {
		r = -ENOMEM;
		goto fail;
	}
	so.dir = spool_dir;
	r = gw_spool_open(&so, &g->spool);
	if (r < 0) {
		gw_log(LOG_ERR, "cannot open the spool in %s: %s", spool_dir, strerror(-r));
		goto fail;
	}
	{
		const struct gw_spool_stats *st = gw_spool_stats(g->spool);

		if (st->recovered_torn_tail || st->segments_quarantined || st->seq_gaps)
			gw_log(LOG_WARNING, "spool recovered: %llu torn tail(s) truncated, %llu "
			       "damaged segment(s) quarantined (%llu records lost), %llu sequence "
			       "gap(s)", (unsigned long long)st->recovered_torn_tail,
			       (unsigned long long)st->segments_quarantined,
			       (unsigned long long)st->records_lost_corrupt,
			       (unsigned long long)st->seq_gaps);
		gw_log(LOG_INFO, "spool %s: records %llu..%llu, %llu bytes in %llu segment(s)",
		       spool_dir, (unsigned long long)gw_spool_first_seq(g->spool),
		       (unsigned long long)gw_spool_next_seq(g->spool),
		       (unsigned long long)st->bytes, (unsigned long long)st->segments);
	}
	r = sd_event_add_time_relative(event, &g->sync_timer, CLOCK_MONOTONIC, 1000000, 1000,
				       sync_cb, g);
	if (r < 0)
		goto fail;
	{
		uint64_t wd = 0;

		g->status_period_usec = STATUS_REFRESH_USEC;
		if (sd_watchdog_enabled(0, &wd) > 0 && wd / 2 > 0 && wd / 2 < STATUS_REFRESH_USEC)
			g->status_period_usec = wd / 2;
	}
	r = sd_event_add_time_relative(event, &g->status_timer, CLOCK_MONOTONIC,
				       g->status_period_usec, g->status_period_usec / 10,
				       status_cb, g);
	if (r < 0)
		goto fail;
	(void)sd_event_source_set_enabled(g->status_timer, SD_EVENT_ON);
	(void)sd_event_source_set_enabled(g->sync_timer, SD_EVENT_OFF);
	for (size_t i = 0; i < cfg->n_uplinks; i++) {
		const struct gw_uplink_commands cmds = { .send = cloud_command, .user_data = g };

		r = gw_uplink_new(event, &cfg->uplinks[i], cfg->state_dir, g->spool, &cmds,
				  on_uplink_notify, g, &g->uplinks[g->n_uplinks]);
		if (r < 0)
			goto fail;
		g->n_uplinks++;
	}
	*ret = g;
	return 0;
fail:
	gw_gateway_free(g);
	return r;
}

int gw_gateway_start(struct gw_gateway *g)
{
	int r;

	/* Uplinks first, so the first frames find a connection attempt under way. */
	for (size_t i = 0; i < g->n_uplinks; i++) {
		r = gw_uplink_start(g->uplinks[i]);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < g->cfg->n_ports; i++) {
		g->port_setup = true;
		r = gw_port_new(g->event, &g->cfg->ports[i], on_frame, on_port_state, g,
				&g->ports[i]);
		g->port_setup = false;
		if (r >= 0)
			log_refusal(g, g->ports[i]); /* the first attempt, made by gw_port_new */
		if (r < 0) {
			gw_log_port(LOG_ERR, g->cfg->ports[i].name, "cannot set up: %s",
				    strerror(-r));
			return r;
		}
		g->n_ports++;
	}
	if (g->cfg->n_ports == 0)
		gw_log(LOG_NOTICE, "no ports configured: nothing is read until a [port NAME] section "
		       "is added to %s (sensorgw.conf(5)) and the configuration is reloaded",
		       g->cfg->path);
	notify_status(g);
	return 0;
}

static int stop_timeout(sd_event_source *s, uint64_t usec, void *ud)
{
	struct gw_gateway *g = ud;
	gw_gateway_stopped_fn fn = g->stopped_fn;
	size_t pending = 0;

	for (size_t i = 0; i < g->n_uplinks; i++) {
		struct gw_uplink_summary st;

		gw_uplink_summary(g->uplinks[i], &st);
		pending += st.inflight;
	}
	if (!fn)
		return 0;
	gw_log(LOG_NOTICE, "stopping with %zu record(s) in flight; they stay in the spool and are "
	       "sent again at the next start", pending);
	g->stopped_fn = NULL;
	fn(g, g->stopped_ud);
	return 0;
}

void gw_gateway_stop(struct gw_gateway *g, uint64_t timeout_usec, gw_gateway_stopped_fn done,
		     void *user_data)
{
	g->stopping = true;
	g->stopped_fn = done;
	g->stopped_ud = user_data;
	/* Commands are not kept: the cloud hears now that they were not carried out. */
	gw_command_cancel_all(g->commands);
	/* Stop reading first: nothing new enters while the uplinks drain. */
	for (size_t i = 0; i < g->n_ports; i++)
		g->ports[i] = gw_port_free(g->ports[i]);
	g->n_ports = 0;
	(void)sync_spool(g);
	for (size_t i = 0; i < g->n_uplinks; i++)
		(void)gw_uplink_save(g->uplinks[i]);
	notify_status(g);
	if (sd_event_add_time_relative(g->event, &g->stop_timer, CLOCK_MONOTONIC, timeout_usec, 0,
				       stop_timeout, g) < 0)
		g->stop_timer = NULL;
	maybe_stopped(g);
}

struct gw_gateway *gw_gateway_free(struct gw_gateway *g)
{
	if (!g)
		return NULL;
	/* pending commands are answered through the uplinks, so before those go */
	g->commands = gw_command_free(g->commands);
	for (size_t i = 0; i < g->n_ports; i++)
		gw_port_free(g->ports[i]);
	for (size_t i = 0; i < g->n_uplinks; i++)
		gw_uplink_free(g->uplinks[i]);
	g->stop_timer = sd_event_source_disable_unref(g->stop_timer);
	g->sync_timer = sd_event_source_disable_unref(g->sync_timer);
	g->status_timer = sd_event_source_disable_unref(g->status_timer);
	gw_spool_close(g->spool);
	gw_nodes_free(g->nodes);
	gw_jsonw_free(g->params_w);
	gw_jsonw_free(g->record_w);
	sd_event_unref(g->event);
	free(g);
	return NULL;
}
