/* SPDX-License-Identifier: MIT */
/*
 * The gateway: frames from ports become records for the uplinks. Decides what to log about
 * nodes, bad frames, ports and uplinks, and keeps sd_notify STATUS= current: sent at once when
 * a port or an uplink changes state, and checked every STATUS_REFRESH_USEC (or half the
 * watchdog interval, when that is shorter) for what changes without an event of its own (nodes,
 * records, backlog); a STATUS= is sent only when its text differs from the last one sent.
 *
 * Configs and reloads: the gateway holds a reference to its current config and one per port
 * and uplink to the config that object was built from (gw_config_ref), so an object whose
 * section did not change at a reload keeps running on the section it has, even after the
 * config it came from is no longer the current one. gw_gateway_reload() is the only place that
 * changes what runs.
 */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "gw-build.h"
#include "gw/command.h"
#include "gw/control.h"
#include "gw/fileio.h"
#include "gw/gateway.h"
#include "gw/jsonw.h"
#include "gw/log.h"
#include "gw/metrics.h"
#include "gw/node.h"
#include "gw/port.h"
#include "gw/record.h"
#include "gw/spool.h"
#include "gw/tap.h"
#include "gw/uplink.h"
#include "gw/util.h"

#define STATUS_REFRESH_USEC (5 * 1000000ULL)
/* The batch clock's limit: a port that gives this much in one tick is not held for a while. */
#define BATCH_BUSY_BYTES 1024
#define BATCH_BUSY_USEC 1000000ULL
/* How often free memory inside the heap is handed back (heap_trim()). */
#define HEAP_TRIM_USEC (30 * 1000000ULL)

struct gw_gateway {
	sd_event *event;
	struct gw_config *cfg; /* a reference */
	struct gw_nodes *nodes;
	struct gw_command *commands; /* downlink commands waiting for their node's reply */
	struct gw_spool *spool;
	sd_event_source *sync_timer;
	uint64_t trimmed_us; /* the last heap_trim() */
	uint64_t records_enospc;
	size_t n_ports;
	struct gw_port *ports[GW_CONFIG_MAX_PORTS];
	struct gw_config *port_cfg[GW_CONFIG_MAX_PORTS]; /* a reference: what ports[i] uses */
	size_t n_uplinks;
	struct gw_uplink *uplinks[GW_CONFIG_MAX_UPLINKS];
	struct gw_config *uplink_cfg[GW_CONFIG_MAX_UPLINKS];
	/* a reload under way: uplinks being replaced finish what is in flight first */
	bool reloading;
	bool reopen_spool; /* the spool's options changed: every uplink is replaced */
	size_t n_retiring;
	struct gw_uplink *retiring[GW_CONFIG_MAX_UPLINKS];
	struct gw_config *retiring_cfg[GW_CONFIG_MAX_UPLINKS];
	gw_gateway_reloaded_fn reloaded_fn;
	void *reloaded_ud;
	sd_event_source *reload_timer;
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
	/* the batch clock (docs/performance.md): while held, ports and uplinks are read on its
	 * ticks instead of waking the loop for every frame and acknowledgement */
	sd_event_source *batch_timer;
	bool batch_held;
	bool batch_frames;            /* a frame came since the last tick */
	uint64_t batch_busy_until_us; /* a line too fast to hold: no hold before then */
	uint64_t batch_holds, batch_ticks;
	sd_event_source *status_timer;
	uint64_t status_period_usec;
	char status_sent[256]; /* the last STATUS= text sent */
	sd_event_source *metrics_timer; /* [gateway] metrics_file, every metrics_interval_s */
	int metrics_err;                /* the last write's result, to log changes only */
	uint64_t started_us;            /* the daemon's start (gw_gateway_new), for uptime_ms */
	struct gw_control *tail;        /* where frames are shown (gw_gateway_set_tail) */
	struct gw_jsonw *tail_w;        /* reused for every tail event */
};

/* ---- the min_free_bytes reserve against the state directory's file system ---- */

struct reserve {
	bool known;        /* statvfs worked */
	uint64_t fs_bytes; /* the file system's size */
	uint64_t free_bytes; /* available to us (f_bavail) */
	char warning[384]; /* empty when the reserve can be kept */
};

static void human(uint64_t n, char *buf, size_t size)
{
	if (n < 1024)
		snprintf(buf, size, "%llu B", (unsigned long long)n);
	else if (n < 1024 * 1024)
		snprintf(buf, size, "%.1f KiB", n / 1024.0);
	else if (n < 1024ULL * 1024 * 1024)
		snprintf(buf, size, "%.1f MiB", n / (1024.0 * 1024));
	else
		snprintf(buf, size, "%.1f GiB", n / (1024.0 * 1024 * 1024));
}

/* What the daemon can see of the reserve: the spool (a library) does not say why it refused a
 * record, so its reason is read from statvfs and the configuration here. need is what one more
 * record takes (0 for the start-up check). */
static void reserve_read(const struct gw_config *cfg, uint64_t need, struct reserve *r)
{
	struct statvfs v;
	char reserve[32], fs[32], avail[32];

	*r = (struct reserve){ .known = false };
	if (statvfs(cfg->state_dir, &v) < 0)
		return;
	r->known = true;
	r->fs_bytes = (uint64_t)v.f_blocks * v.f_frsize;
	r->free_bytes = (uint64_t)v.f_bavail * v.f_frsize;
	if (!cfg->min_free_bytes)
		return;
	human(cfg->min_free_bytes, reserve, sizeof(reserve));
	human(r->fs_bytes, fs, sizeof(fs));
	human(r->free_bytes, avail, sizeof(avail));
	if (cfg->min_free_bytes >= r->fs_bytes)
		snprintf(r->warning, sizeof(r->warning), "min_free_bytes (%s) is not less than the "
			 "whole file system of %s (%s, %s free): the reserve can never be kept and "
			 "every record is dropped; lower [gateway] min_free_bytes (0 turns the "
			 "reserve off)", reserve, cfg->state_dir, fs, avail);
	else if (r->free_bytes < cfg->min_free_bytes + need)
		snprintf(r->warning, sizeof(r->warning), "only %s of %s free on the file system of "
			 "%s, less than min_free_bytes (%s): records are dropped until space is "
			 "freed; free space or lower [gateway] min_free_bytes", avail, fs,
			 cfg->state_dir, reserve);
}

/* At start-up and at a reload: say it at once when the reserve cannot be kept. */
static void reserve_check(const struct gw_config *cfg)
{
	struct reserve r;

	reserve_read(cfg, 0, &r);
	if (r.warning[0])
		gw_log(LOG_WARNING, "%s", r.warning);
}

static json_t *reserve_json(const struct gw_config *cfg)
{
	struct reserve r;

	reserve_read(cfg, 0, &r);
	return json_pack("{s:I,s:o,s:o,s:o}", "min_free_bytes", (json_int_t)cfg->min_free_bytes,
			 "fs_bytes", r.known ? json_integer((json_int_t)r.fs_bytes) : json_null(),
			 "free_bytes", r.known ? json_integer((json_int_t)r.free_bytes) :
			 json_null(),
			 "warning", r.warning[0] ? json_string(r.warning) : json_null());
}

static void notify_status(struct gw_gateway *g)
{
	char status[sizeof(g->status_sent)];

	gw_gateway_status(g, status, sizeof(status));
	if (strcmp(status, g->status_sent) == 0)
		return;
	if (sd_notifyf(0, "STATUS=%s", status) > 0)
		memcpy(g->status_sent, status, sizeof(status));
}

/*
 * A burst (a start-up with hundreds of sub-devices, a backlog replayed) leaves free memory
 * inside the heap, which free() keeps for later use and the resident size goes on counting: it
 * is handed back to the kernel every HEAP_TRIM_USEC, so that the daemon's RSS follows what it
 * uses (docs/benchmarks.md, "Gateway topology"). A walk of a heap of a few MiB: cheap.
 */
static void heap_trim(struct gw_gateway *g)
{
	uint64_t now = gw_now_mono_us();

	if (now - g->trimmed_us < HEAP_TRIM_USEC)
		return;
	g->trimmed_us = now;
#ifdef __GLIBC__
	(void)malloc_trim(0);
#endif
}

/* ---- [gateway] metrics_file: the status as Prometheus text (gw/metrics.h) ---- */

/* Written through a dot file beside it (node_exporter reads only *.prom files), without
 * fsync: a reader sees the old or the new text, and the file's mtime tells it how fresh. */
static int metrics_write(struct gw_gateway *g, enum gw_file_step *ret_step)
{
	const char *path = g->cfg->metrics_file, *base = strrchr(path, '/') + 1;
	char dir[PATH_MAX], tmp[NAME_MAX + 1];
	char *text = NULL;
	size_t len = 0;
	json_t *st;
	int dfd, r;

	if ((size_t)snprintf(dir, sizeof(dir), "%.*s", (int)(base - path), path) >= sizeof(dir) ||
	    (size_t)snprintf(tmp, sizeof(tmp), ".%s.tmp", base) >= sizeof(tmp))
		return -ENAMETOOLONG;
	st = gw_gateway_status_json(g);
	r = st ? gw_metrics_format(st, &text, &len) : -ENOMEM;
	json_decref(st);
	if (r < 0)
		return r;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		r = -errno;
		*ret_step = GW_FILE_STEP_NONE;
	} else {
		r = gw_file_publish(dfd, base, tmp, text, len, ret_step);
		close(dfd);
	}
	free(text);
	return r;
}

static int metrics_cb(sd_event_source *s, uint64_t usec, void *ud)
{
	struct gw_gateway *g = ud;
	enum gw_file_step step = GW_FILE_STEP_NONE;
	int r;

	/* armed only while metrics_file is set (metrics_arm) */
	r = metrics_write(g, &step);
	if (r < 0 && r != g->metrics_err)
		gw_log(LOG_WARNING,
		       "metrics_file %s: cannot write it (%s%s%s); trying again every %u s",
		       g->cfg->metrics_file,
		       step != GW_FILE_STEP_NONE ? gw_file_step_name(step) : "",
		       step != GW_FILE_STEP_NONE ? ": " : "", strerror(-r),
		       g->cfg->metrics_interval_s);
	else if (r == 0 && g->metrics_err < 0)
		gw_log(LOG_INFO, "metrics_file %s: written again", g->cfg->metrics_file);
	g->metrics_err = r;
	(void)sd_event_source_set_time_relative(s, (uint64_t)g->cfg->metrics_interval_s * 1000000);
	return 0;
}

/* At start and after a reload: the first write at once, then every metrics_interval_s. */
static void metrics_arm(struct gw_gateway *g)
{
	if (!g->metrics_timer)
		return;
	(void)sd_event_source_set_time_relative(g->metrics_timer, 0);
	(void)sd_event_source_set_enabled(g->metrics_timer,
					  g->cfg->metrics_file ? SD_EVENT_ON : SD_EVENT_OFF);
}

static int status_cb(sd_event_source *s, uint64_t usec, void *ud)
{
	struct gw_gateway *g = ud;

	notify_status(g);
	heap_trim(g);
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
	return json_pack("{s:s,s:s,s:I,s:I,s:I,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}",
			 "name",
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
			 "truncated", (json_int_t)fs->errors[GW_FRAME_ERR_TRUNCATED],
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
	return json_pack("{s:s,s:I,s:s,s:I,s:I,s:o,s:o,s:o,s:{s:I,s:b,s:I,s:I},"
			 "s:{s:I,s:I,s:I,s:I},"
			 "s:{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:o}}",
			 "version", GW_VERSION, "uptime_ms",
			 (json_int_t)((gw_now_mono_us() - g->started_us) / 1000), "state",
			 g->stopping ? "stopping" : "running", "records", (json_int_t)g->records,
			 "time_ms", (json_int_t)gw_now_wall_ms(), "ports", ports, "nodes", nodes,
			 "uplinks", uplinks, "batch", "window_ms", (json_int_t)g->cfg->batch_ms,
			 "held", g->batch_held, "holds", (json_int_t)g->batch_holds, "ticks",
			 (json_int_t)g->batch_ticks, "node_table", "known", (json_int_t)ns.known,
			 "max", (json_int_t)ns.max, "refused", (json_int_t)ns.refused,
			 "frames_refused", (json_int_t)ns.frames_refused, "spool", "first_seq",
			 (json_int_t)gw_spool_first_seq(g->spool), "next_seq",
			 (json_int_t)gw_spool_next_seq(g->spool), "bytes", (json_int_t)s->bytes,
			 "segments", (json_int_t)s->segments, "appended", (json_int_t)s->appended,
			 "syncs", (json_int_t)s->syncs, "unsynced",
			 (json_int_t)gw_spool_unsynced(g->spool), "torn_tails",
			 (json_int_t)s->recovered_torn_tail, "quarantined",
			 (json_int_t)s->segments_quarantined, "lost_corrupt",
			 (json_int_t)s->records_lost_corrupt, "dropped_overflow",
			 (json_int_t)s->dropped_overflow, "dropped_enospc",
			 (json_int_t)s->dropped_enospc, "duplicates", (json_int_t)g->duplicates,
			 "unmapped", (json_int_t)g->records_unmapped, "seq_gaps",
			 (json_int_t)s->seq_gaps, "seqs_skipped", (json_int_t)s->seqs_skipped,
			 "reserve", reserve_json(g->cfg));
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
	gw_log(LOG_INFO, "batch: window_ms=%u holds=%llu ticks=%llu", g->cfg->batch_ms,
	       (unsigned long long)g->batch_holds, (unsigned long long)g->batch_ticks);
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

/* ---- the batch clock ---- */

static void batch_hold(struct gw_gateway *g, bool hold)
{
	if (g->batch_held == hold)
		return;
	g->batch_held = hold;
	for (size_t i = 0; i < g->n_ports; i++)
		if (g->ports[i])
			gw_port_hold(g->ports[i], hold);
	for (size_t i = 0; i < g->n_uplinks; i++)
		gw_uplink_hold(g->uplinks[i], hold);
	if (!hold)
		(void)sd_event_source_set_enabled(g->batch_timer, SD_EVENT_OFF);
}

static int batch_arm(struct gw_gateway *g)
{
	int r = sd_event_source_set_time_relative(g->batch_timer,
						  (uint64_t)g->cfg->batch_ms * 1000);

	if (r >= 0)
		r = sd_event_source_set_enabled(g->batch_timer, SD_EVENT_ONESHOT);
	return r;
}

/* The first frame after a quiet spell was handled at once; what comes within batch_ms of it
 * is read at the next tick, with the acknowledgements of what was sent. */
static void batch_frame(struct gw_gateway *g)
{
	g->batch_frames = true;
	if (g->batch_held || !g->cfg->batch_ms || g->stopping || g->reloading || !g->batch_timer)
		return;
	if (g->batch_busy_until_us && gw_now_mono_us() < g->batch_busy_until_us)
		return;
	if (batch_arm(g) < 0)
		return; /* without a tick nothing would read them: no hold */
	batch_hold(g, true);
	g->batch_holds++;
}

/*
 * A tick: the uplinks' acknowledgements first (room in their windows), then the ports. A
 * tick that found no frame ends the hold, so the next frame is handled the moment it comes.
 * So does a tick that read BATCH_BUSY_BYTES or more from a port (over 250 KB/s with the
 * default window, more than a serial line at 921600 baud carries: a pty or a USB device
 * writing as fast as it can), for a second: such a line keeps the loop busy by itself, and
 * holding it would only cap it at what the tty buffers in a window.
 */
static int batch_cb(sd_event_source *s, uint64_t usec, void *ud)
{
	struct gw_gateway *g = ud;
	bool busy = false;

	g->batch_frames = false;
	g->batch_ticks++;
	for (size_t i = 0; i < g->n_uplinks; i++)
		gw_uplink_poll(g->uplinks[i]);
	for (size_t i = 0; i < g->n_ports; i++)
		if (g->ports[i] && gw_port_poll(g->ports[i]) >= BATCH_BUSY_BYTES)
			busy = true;
	if (busy)
		g->batch_busy_until_us = gw_now_mono_us() + BATCH_BUSY_USEC;
	if (g->batch_frames && !busy && !g->stopping && !g->reloading && batch_arm(g) >= 0)
		return 0;
	batch_hold(g, false);
	return 0;
}

/*
 * The record of frame f from node on port (gw/record.h) goes to disk first; only then do the
 * uplinks hear of it.
 */
static void deliver(struct gw_gateway *g, const char *port, const struct gw_node *node,
		    const struct gw_frame *f)
{
	const char *packed;
	size_t plen;
	uint64_t seq;
	int r;

	r = gw_record_build(g->cfg, port, node, f, gw_spool_next_seq(g->spool),
			    node->last_seen_ms, g->params_w, g->record_w);
	if (r == -EDOM) {
		g->records_unmapped++;
		gw_log_node(LOG_WARNING, port, node->id,
			    "frame skipped: a value cannot be converted as its [map] section says");
		return;
	}
	if (r < 0) {
		gw_log_node(LOG_ERR, node->port, node->id, "cannot build payload: %s",
			    strerror(-r));
		return;
	}
	packed = gw_jsonw_data(g->record_w, &plen);
	r = gw_spool_append(g->spool, node->last_seen_ms, (uint8_t)f->type,
			    (const uint8_t *)packed, plen, &seq);
	if (r < 0) {
		struct reserve res;

		g->records_enospc++;
		/* the spool says ENOSPC for its reserve as for a full disk: tell them apart */
		reserve_read(g->cfg, plen + 64, &res);
		if (r == -ENOSPC && res.warning[0])
			gw_log_node(LOG_WARNING, node->port, node->id,
				    "record dropped: the spool keeps a reserve: %s; the gateway keeps "
				    "running and counts the drop", res.warning);
		else
			gw_log_node(LOG_WARNING, node->port, node->id,
				    "record dropped: the spool cannot store it (%s); the gateway "
				    "keeps running and counts the drop", strerror(-r));
		return;
	}
	g->records++;
	schedule_sync(g);
	for (size_t i = 0; i < g->n_uplinks; i++)
		gw_uplink_kick(g->uplinks[i], seq);
}

/* ---- what `sensorgwctl tail` shows (gw/tap.h), built only while someone watches ---- */

static void tail_frame(struct gw_gateway *g, const char *port, const struct gw_node *node,
		       const struct gw_frame *f, enum gw_frame_error err)
{
	const char *id = node ? node->id : NULL;
	size_t len;
	int r;

	if (!gw_control_streaming(g->tail, GW_CONTROL_EVENT_FRAME))
		return;
	if (err == GW_FRAME_OK)
		r = gw_tap_frame(g->tail_w, gw_now_wall_ms(), port, id, f);
	else
		r = gw_tap_bad(g->tail_w, gw_now_wall_ms(), port, id, err, f ? f->why : "");
	if (r == 0) {
		const char *line = gw_jsonw_data(g->tail_w, &len);

		gw_control_publish(g->tail, GW_CONTROL_EVENT_FRAME, port, id, line, len);
	}
}

static void on_raw(struct gw_port *p, const uint8_t *buf, size_t len, void *ud)
{
	struct gw_gateway *g = ud;
	size_t n;

	if (!gw_control_streaming(g->tail, GW_CONTROL_EVENT_RAW))
		return;
	if (gw_tap_raw(g->tail_w, gw_now_wall_ms(), gw_port_name(p), buf, len) == 0) {
		const char *line = gw_jsonw_data(g->tail_w, &n);

		gw_control_publish(g->tail, GW_CONTROL_EVENT_RAW, gw_port_name(p), NULL, line, n);
	}
}

void gw_gateway_set_tail(struct gw_gateway *g, struct gw_control *c)
{
	g->tail = c;
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
	struct gw_node *node;
	bool created;
	int r;

	/* a stopping gateway takes no records, but still counts and logs a frame its closing
	 * ports cut off */
	if (g->stopping && err == GW_FRAME_OK)
		return;
	batch_frame(g);
	if (err != GW_FRAME_OK) {
		struct gw_node *known = NULL;

		/* The address in a damaged frame may itself be damaged: only count it against
		 * a node we already know. */
		for (size_t i = 0; f && f->has_addr && i < gw_nodes_count(g->nodes); i++) {
			node = gw_nodes_at(g->nodes, i);
			if (node->has_addr && node->addr == f->addr &&
			    strcmp(node->port, port) == 0) {
				node->errors++;
				known = node;
			}
		}
		tail_frame(g, port, known, f, err);
		if (err == GW_FRAME_ERR_TRUNCATED)
			gw_log_port(LOG_WARNING, port, "dropped an incomplete frame: the port closed "
				    "before its end (counted as a bad frame, truncated)");
		else
			gw_log_port(LOG_WARNING, port, "skipped a bad frame: %s%s%s",
				    gw_frame_error_to_string(err), f && f->why[0] ? ": " : "",
				    f ? f->why : "");
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
		tail_frame(g, port, NULL, f, GW_FRAME_OK);
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

	if (f->type != GW_FRAME_HELLO)
		tail_frame(g, port, node, f, GW_FRAME_OK);
	switch (f->type) {
	case GW_FRAME_HELLO:
		on_hello(g, p, node, f);
		tail_frame(g, port, node, f, GW_FRAME_OK); /* under the name it has now */
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
	deliver(g, port, node, f);
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

static void maybe_reloaded(struct gw_gateway *g);

/* Uplinks log their own state changes: a cloud uplink has one line per device. */
static void on_uplink_notify(struct gw_uplink *u, bool state_changed, void *ud)
{
	if (state_changed)
		notify_status(ud);
	maybe_stopped(ud);
	maybe_reloaded(ud);
}

/* What the spool's recovery found: every lost seq range, and seqs skipped after a crash. */
static void log_recovery(struct gw_spool *spool, const char *dir)
{
	const struct gw_spool_stats *st = gw_spool_stats(spool);
	const struct gw_spool_range *lost;
	size_t n;

	if (st->recovered_torn_tail || st->segments_quarantined || st->seq_gaps)
		gw_log(LOG_WARNING, "spool recovered: %llu torn tail(s) truncated, %llu damaged "
		       "segment(s) quarantined, %llu record(s) lost in %llu gap(s)",
		       (unsigned long long)st->recovered_torn_tail,
		       (unsigned long long)st->segments_quarantined,
		       (unsigned long long)st->records_lost_corrupt,
		       (unsigned long long)st->seq_gaps);
	lost = gw_spool_lost_ranges(spool, &n);
	for (size_t i = 0; i < n; i++)
		gw_log(LOG_WARNING, "spool: records %llu..%llu (%llu) lost: damaged, cut off or "
		       "missing from the spool", (unsigned long long)lost[i].lo,
		       (unsigned long long)lost[i].hi,
		       (unsigned long long)(lost[i].hi - lost[i].lo + 1));
	if (st->seqs_skipped)
		gw_log(LOG_WARNING, "spool: sensorgwd did not stop cleanly; record numbers "
		       "%llu..%llu are skipped and never used. They were reserved ahead; none of "
		       "them was stored unless the power failed, which loses at most the records "
		       "written since the last sync", (unsigned long long)st->skipped_lo,
		       (unsigned long long)st->skipped_hi);
	if (gw_spool_first_seq(spool) == gw_spool_next_seq(spool))
		gw_log(LOG_INFO, "spool opened at %s: empty; the next record is %llu", dir,
		       (unsigned long long)gw_spool_next_seq(spool));
	else
		gw_log(LOG_INFO, "spool opened at %s: records %llu..%llu, %llu bytes in %llu "
		       "segment(s)", dir,
		       (unsigned long long)gw_spool_first_seq(spool),
		       (unsigned long long)gw_spool_next_seq(spool) - 1,
		       (unsigned long long)st->bytes, (unsigned long long)st->segments);
}

/* Opens the spool of g->cfg and logs what recovery found. */
static int spool_open(struct gw_gateway *g)
{
	const struct gw_config *cfg = g->cfg;
	_cleanup_free_ char *spool_dir = NULL;
	struct gw_spool_options so = {
		.segment_bytes = cfg->spool_segment_bytes,
		.max_bytes = cfg->spool_max_bytes,
		.min_free_bytes = cfg->min_free_bytes,
	};
	int r;

	if (asprintf(&spool_dir, "%s/spool", cfg->state_dir) < 0)
		return -ENOMEM;
	so.dir = spool_dir;
	r = gw_spool_open(&so, &g->spool);
	if (r < 0) {
		gw_log(LOG_ERR, "cannot open the spool in %s: %s", spool_dir, strerror(-r));
		return r;
	}
	log_recovery(g->spool, spool_dir);
	return 0;
}

/* Builds the uplink of g->cfg->uplinks[i] at the end of g->uplinks (not started). */
static int uplink_add(struct gw_gateway *g, size_t i)
{
	const struct gw_uplink_commands cmds = { .send = cloud_command, .user_data = g };
	int r;

	r = gw_uplink_new(g->event, &g->cfg->uplinks[i], g->cfg, g->spool, &cmds, on_uplink_notify,
			  g, &g->uplinks[g->n_uplinks]);
	if (r < 0)
		return r;
	g->uplink_cfg[g->n_uplinks++] = gw_config_ref(g->cfg);
	return 0;
}

int gw_gateway_new(sd_event *event, struct gw_config *cfg, uint64_t started_us,
		   struct gw_gateway **ret)
{
	struct gw_gateway *g = gw_new0(struct gw_gateway, 1);
	int r;

	g->event = sd_event_ref(event);
	g->cfg = gw_config_ref(cfg);
	g->started_us = started_us;
	g->params_w = gw_jsonw_new();
	g->tail_w = gw_jsonw_new();
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
	r = spool_open(g);
	if (r < 0)
		goto fail;
	reserve_check(cfg);
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
	/* to the microsecond: the window is a few milliseconds, every one of them latency */
	r = sd_event_add_time_relative(event, &g->batch_timer, CLOCK_MONOTONIC, 1000000, 1,
				       batch_cb, g);
	if (r < 0)
		goto fail;
	(void)sd_event_source_set_enabled(g->batch_timer, SD_EVENT_OFF);
	/* a second's slack: nobody reads the file more often than that */
	r = sd_event_add_time_relative(event, &g->metrics_timer, CLOCK_MONOTONIC, 0, 1000000,
				       metrics_cb, g);
	if (r < 0)
		goto fail;
	metrics_arm(g);
	for (size_t i = 0; i < cfg->n_uplinks; i++) {
		r = uplink_add(g, i);
		if (r < 0)
			goto fail;
	}
	*ret = g;
	return 0;
fail:
	gw_gateway_free(g);
	return r;
}

/* Sets up the port of g->cfg->ports[i] as g->ports[i]. */
static int port_add(struct gw_gateway *g, size_t i)
{
	int r;

	g->port_setup = true;
	r = gw_port_new(g->event, &g->cfg->ports[i], on_frame, on_port_state, g, &g->ports[i]);
	g->port_setup = false;
	if (r < 0) {
		gw_log_port(LOG_ERR, g->cfg->ports[i].name, "cannot set up: %s", strerror(-r));
		return r;
	}
	log_refusal(g, g->ports[i]); /* the first attempt, made by gw_port_new */
	gw_port_set_raw_fn(g->ports[i], on_raw);
	g->port_cfg[i] = gw_config_ref(g->cfg);
	return 0;
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
		r = port_add(g, i);
		if (r < 0)
			return r;
		g->n_ports++;
	}
	if (g->cfg->n_ports == 0)
		gw_log(LOG_NOTICE, "no ports configured: nothing is read until a [port NAME] section "
		       "is added to %s (sensorgw.conf(5)) and the configuration is reloaded",
		       g->cfg->path);
	notify_status(g);
	return 0;
}

/* ---- reload ---- */

static bool spool_options_changed(const struct gw_config *a, const struct gw_config *b)
{
	return a->spool_segment_bytes != b->spool_segment_bytes ||
	       a->spool_max_bytes != b->spool_max_bytes || a->min_free_bytes != b->min_free_bytes;
}

/* The ports of the new config, in its order: unchanged ones handed over as they are (open,
 * decoder state and counters), changed ones given their new settings, new ones set up,
 * removed ones closed. */
static int reload_ports(struct gw_gateway *g)
{
	struct gw_port *old[GW_CONFIG_MAX_PORTS];
	struct gw_config *old_cfg[GW_CONFIG_MAX_PORTS];
	size_t n_old = g->n_ports;
	int r = 0;

	memcpy(old, g->ports, sizeof(old));
	memcpy(old_cfg, g->port_cfg, sizeof(old_cfg));
	memset(g->ports, 0, sizeof(g->ports));
	memset(g->port_cfg, 0, sizeof(g->port_cfg));
	g->n_ports = 0;
	for (size_t i = 0; i < g->cfg->n_ports; i++) {
		const struct gw_config_port *pc = &g->cfg->ports[i];
		size_t j;

		for (j = 0; j < n_old; j++)
			if (old[j] && strcmp(gw_port_name(old[j]), pc->name) == 0)
				break;
		if (j == n_old) {
			int q = port_add(g, i);

			if (q < 0) {
				/* keep the slots in step with the config: an absent port */
				r = q;
				break;
			}
			g->n_ports++;
			continue;
		}
		g->ports[i] = old[j];
		old[j] = NULL;
		g->n_ports++;
		if (gw_config_port_equal(gw_port_config(g->ports[i]), pc)) {
			g->port_cfg[i] = old_cfg[j];
			continue;
		}
		g->port_cfg[i] = gw_config_ref(g->cfg);
		{
			int q = gw_port_reconfigure(g->ports[i], pc);

			if (q < 0)
				gw_log_port(LOG_WARNING, pc->name, "the device refused the new "
					    "settings: %s; it is opened again as after an unplug",
					    strerror(-q));
		}
		gw_config_free(old_cfg[j]);
	}
	for (size_t j = 0; j < n_old; j++) {
		if (!old[j])
			continue;
		gw_log_port(LOG_INFO, gw_port_name(old[j]), "removed from the configuration: closed");
		gw_command_port_closed(g->commands, gw_port_name(old[j]));
		gw_port_free(old[j]);
		gw_config_free(old_cfg[j]);
	}
	return r;
}

/* The retiring uplinks hold nothing in flight any more (or the time is up): replace them. */
static void reload_finish(struct gw_gateway *g, bool timed_out)
{
	struct gw_uplink *kept[GW_CONFIG_MAX_UPLINKS];
	struct gw_config *kept_cfg[GW_CONFIG_MAX_UPLINKS];
	size_t n_kept = g->n_uplinks;
	gw_gateway_reloaded_fn fn = g->reloaded_fn;
	int r = 0;

	g->reload_timer = sd_event_source_disable_unref(g->reload_timer);
	for (size_t i = 0; i < g->n_retiring; i++) {
		struct gw_uplink_summary st;

		gw_uplink_summary(g->retiring[i], &st);
		if (timed_out && st.inflight)
			gw_log_uplink(LOG_NOTICE, gw_uplink_name(g->retiring[i]), "replaced with %llu "
				      "record(s) in flight; they stay in the spool and are sent again",
				      (unsigned long long)st.inflight);
		/* its totals up to here: the replacement's counters start again */
		gw_uplink_log_counters(g->retiring[i]);
		gw_uplink_free(g->retiring[i]);
		gw_config_free(g->retiring_cfg[i]);
		g->retiring[i] = NULL;
	}
	g->n_retiring = 0;
	if (g->reopen_spool) {
		/* every uplink retired: no reader is left on the spool */
		(void)sync_spool(g);
		g->spool = gw_spool_close(g->spool);
		r = spool_open(g);
		g->reopen_spool = false;
	}
	memcpy(kept, g->uplinks, sizeof(kept));
	memcpy(kept_cfg, g->uplink_cfg, sizeof(kept_cfg));
	memset(g->uplinks, 0, sizeof(g->uplinks));
	memset(g->uplink_cfg, 0, sizeof(g->uplink_cfg));
	g->n_uplinks = 0;
	for (size_t i = 0; r >= 0 && i < g->cfg->n_uplinks; i++) {
		size_t j;

		for (j = 0; j < n_kept; j++)
			if (kept[j] && strcmp(gw_uplink_name(kept[j]), g->cfg->uplinks[i].name) == 0)
				break;
		if (j < n_kept) {
			g->uplinks[g->n_uplinks] = kept[j];
			g->uplink_cfg[g->n_uplinks++] = kept_cfg[j];
			kept[j] = NULL;
			kept_cfg[j] = NULL;
			continue;
		}
		r = uplink_add(g, i);
		if (r >= 0)
			r = gw_uplink_start(g->uplinks[g->n_uplinks - 1]);
	}
	/* not in the new config (only after a failure above): they go */
	for (size_t j = 0; j < n_kept; j++) {
		gw_uplink_free(kept[j]);
		gw_config_free(kept_cfg[j]);
	}
	if (r < 0)
		g->stopping = true; /* no record is taken until the owner decides */
	g->reloading = false;
	g->reloaded_fn = NULL;
	notify_status(g);
	if (fn)
		fn(g, r, g->reloaded_ud);
}

static bool retiring_drained(const struct gw_gateway *g)
{
	for (size_t i = 0; i < g->n_retiring; i++)
		if (gw_uplink_draining(g->retiring[i]) > 0)
			return false;
	return true;
}

/* From an uplink's callback: the uplink cannot be freed here, so the timer finishes. */
static void maybe_reloaded(struct gw_gateway *g)
{
	if (!g->reloading || !g->reload_timer || !retiring_drained(g))
		return;
	(void)sd_event_source_set_time_relative(g->reload_timer, 0);
}

static int reload_timeout(sd_event_source *s, uint64_t usec, void *ud)
{
	struct gw_gateway *g = ud;

	reload_finish(g, !retiring_drained(g));
	return 0;
}

int gw_gateway_reload(struct gw_gateway *g, struct gw_config *cfg, uint64_t timeout_usec,
		      gw_gateway_reloaded_fn done, void *user_data)
{
	struct gw_config *old = g->cfg;
	struct gw_uplink *uplinks[GW_CONFIG_MAX_UPLINKS];
	struct gw_config *uplink_cfg[GW_CONFIG_MAX_UPLINKS];
	size_t n_uplinks = g->n_uplinks;
	int r;

	if (g->reloading || g->stopping)
		return -EBUSY;
	if (strcmp(cfg->state_dir, old->state_dir) != 0)
		return -EINVAL;
	/* ports and uplinks are replaced and drained: each on its own events again */
	batch_hold(g, false);
	g->cfg = gw_config_ref(cfg);
	g->reloading = true;
	g->reloaded_fn = done;
	g->reloaded_ud = user_data;
	g->reopen_spool = spool_options_changed(old, cfg);

	/* Commands are not kept: the cloud hears now that they were not carried out. The node
	 * table stays (names, sequence numbers) unless what names the nodes changed. */
	gw_command_cancel_all(g->commands);
	g->commands = gw_command_free(g->commands);
	if (strcmp(old->device_name, cfg->device_name) != 0 || old->max_nodes != cfg->max_nodes) {
		g->nodes = gw_nodes_free(g->nodes);
		r = gw_nodes_new(cfg->device_name, cfg->max_nodes, &g->nodes);
		if (r < 0)
			goto fail;
	}
	r = gw_command_new(g->event, cfg, g->nodes, command_port, g, &g->commands);
	if (r < 0)
		goto fail;

	r = reload_ports(g);
	if (r < 0)
		goto fail;

	/* Uplinks whose settings did not change go on as they are (session, cursor, what is in
	 * flight, counters); the others finish what they have in flight, bounded by
	 * timeout_usec, and are replaced then. They hear of no new record meanwhile: the new
	 * ones find those in the spool. */
	memcpy(uplinks, g->uplinks, sizeof(uplinks));
	memcpy(uplink_cfg, g->uplink_cfg, sizeof(uplink_cfg));
	memset(g->uplinks, 0, sizeof(g->uplinks));
	memset(g->uplink_cfg, 0, sizeof(g->uplink_cfg));
	g->n_uplinks = 0;
	for (size_t j = 0; j < n_uplinks; j++) {
		bool keep = false;

		for (size_t i = 0; i < cfg->n_uplinks && !g->reopen_spool; i++)
			if (strcmp(cfg->uplinks[i].name, gw_uplink_name(uplinks[j])) == 0)
				keep = gw_config_uplink_equal(gw_uplink_config(uplinks[j]),
							      &cfg->uplinks[i]);
		if (keep) {
			g->uplinks[g->n_uplinks] = uplinks[j];
			g->uplink_cfg[g->n_uplinks++] = uplink_cfg[j];
			continue;
		}
		(void)gw_uplink_save(uplinks[j]);
		g->retiring[g->n_retiring] = uplinks[j];
		g->retiring_cfg[g->n_retiring++] = uplink_cfg[j];
	}
	gw_config_free(old);
	reserve_check(cfg);
	metrics_arm(g);
	notify_status(g);
	if (g->n_retiring && sd_event_add_time_relative(g->event, &g->reload_timer,
							CLOCK_MONOTONIC, timeout_usec, 0,
							reload_timeout, g) < 0)
		g->reload_timer = NULL;
	if (!g->reload_timer)
		reload_finish(g, false);
	else if (retiring_drained(g))
		(void)sd_event_source_set_time_relative(g->reload_timer, 0);
	return 0;
fail:
	/* rare (out of memory, a port that cannot be set up): the owner rebuilds */
	gw_config_free(old);
	g->stopping = true;
	g->reloading = false;
	g->reloaded_fn = NULL;
	return r;
}

/* ---- stop ---- */

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
	/* the uplinks drain on their own events */
	batch_hold(g, false);
	/* Commands are not kept: the cloud hears now that they were not carried out. */
	gw_command_cancel_all(g->commands);
	/* Stop reading first: nothing new enters while the uplinks drain. A frame a port cuts
	 * off is counted and logged (on_frame). */
	for (size_t i = 0; i < g->n_ports; i++) {
		g->ports[i] = gw_port_free(g->ports[i]);
		g->port_cfg[i] = gw_config_free(g->port_cfg[i]);
	}
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
	/* a port that closes here may report a frame it cut off: counted, never stored */
	g->stopping = true;
	g->reloaded_fn = NULL;
	for (size_t i = 0; i < GW_CONFIG_MAX_PORTS; i++) {
		g->ports[i] = gw_port_free(g->ports[i]);
		g->port_cfg[i] = gw_config_free(g->port_cfg[i]);
	}
	for (size_t i = 0; i < g->n_uplinks; i++) {
		gw_uplink_free(g->uplinks[i]);
		gw_config_free(g->uplink_cfg[i]);
	}
	for (size_t i = 0; i < g->n_retiring; i++) {
		gw_uplink_free(g->retiring[i]);
		gw_config_free(g->retiring_cfg[i]);
	}
	g->reload_timer = sd_event_source_disable_unref(g->reload_timer);
	g->stop_timer = sd_event_source_disable_unref(g->stop_timer);
	g->sync_timer = sd_event_source_disable_unref(g->sync_timer);
	g->batch_timer = sd_event_source_disable_unref(g->batch_timer);
	g->status_timer = sd_event_source_disable_unref(g->status_timer);
	g->metrics_timer = sd_event_source_disable_unref(g->metrics_timer);
	gw_spool_close(g->spool);
	gw_nodes_free(g->nodes);
	gw_jsonw_free(g->params_w);
	gw_jsonw_free(g->tail_w);
	gw_jsonw_free(g->record_w);
	gw_config_free(g->cfg);
	sd_event_unref(g->event);
	free(g);
	return NULL;
}
