/* SPDX-License-Identifier: MIT */
/*
 * The cloud core's gateway topology (topology = gateway, gw/cloud.h): the gateway device whose
 * session carries every node as a sub-device, the sub-devices' attach calls in batches, their
 * holds (refused, disabled, logged out while idle), the remembered topology file and the
 * status. The protocol is the driver's (struct gw_cloud_gateway_ops); the sessions, the feed and
 * provisioning are core.c's (core-private.h).
 *
 * The topology file <state_dir>/topology/<uplink>.json remembers which sub-devices were added
 * (bound) under which gateway and sub-device product: {"gateway":"P/DN","product":"P",
 * "attached":["dev",...]}. It is replaced atomically on every change; a file of another
 * gateway or product counts as empty (the platform's topology is asked for again by adding).
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core-private.h"
#include "gw/fileio.h"
#include "gw/log.h"

#define clog gw_cloud_log

#define TOPO_FILE_MAX (1024 * 1024)
#define HELD_RETRY_MS 1000 /* a login the platform ended is tried again after at least this */
#define IDLE_CHECK_US 5000000ULL /* how often idle_logout_s is checked */
#define REFUSED_RETRY_MIN_MS 60000 /* the first retry of a refusal that is not the credential's */

struct gw_cloud_topology {
	int dfd;         /* <state_dir>/topology */
	char *file;      /* <uplink>.json */
	char *tmp;       /* <uplink>.json.tmp */
	char *gateway;   /* "product/device" of the gateway */
	char **attached; /* names, as read; a sub-device's own flag wins once it exists */
	size_t n_attached;
	sd_event_source *attach_timer;
	uint64_t next_attach_us;
	sd_event_source *idle_timer;
};

/* ---- the topology file ---- */

static bool file_has(const struct gw_cloud_topology *t, const char *name)
{
	for (size_t i = 0; i < t->n_attached; i++)
		if (strcmp(t->attached[i], name) == 0)
			return true;
	return false;
}

static void file_set(struct gw_cloud_topology *t, const char *name, bool on)
{
	for (size_t i = 0; i < t->n_attached; i++) {
		if (strcmp(t->attached[i], name) != 0)
			continue;
		if (!on) {
			free(t->attached[i]);
			t->attached[i] = t->attached[--t->n_attached];
		}
		return;
	}
	if (!on)
		return;
	t->attached = gw_realloc_array(t->attached, t->n_attached + 1, sizeof(*t->attached));
	t->attached[t->n_attached++] = gw_strdup(name);
}

static int file_save(struct gw_cloud *c)
{
	struct gw_cloud_topology *t = c->topo;
	enum gw_file_step step = GW_FILE_STEP_NONE;
	json_t *names = json_array(), *o;
	char *text = NULL;
	int r;

	for (size_t i = 0; names && i < t->n_attached; i++)
		(void)json_array_append_new(names, json_string(t->attached[i]));
	o = json_pack("{s:s,s:s,s:o*}", "gateway", t->gateway, "product",
		      c->ops->gateway->sub_product(c->cfg), "attached", names);
	if (o && names)
		text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	if (!text) {
		clog(c, LOG_ERR, "cannot write the topology file topology/%s: out of memory",
		     t->file);
		return -ENOMEM;
	}
	r = gw_file_write_atomic(t->dfd, t->file, t->tmp, text, strlen(text), &step);
	free(text);
	if (r < 0)
		clog(c, LOG_ERR,
		     "cannot write the topology file topology/%s (%s): %s; a restart "
		     "adds the topology again",
		     t->file, gw_file_step_name(step), strerror(-r));
	return r;
}

/* Reads the file of this gateway and product; anything else counts as empty (logged). */
static void file_load(struct gw_cloud *c)
{
	struct gw_cloud_topology *t = c->topo;
	char *buf = gw_malloc0(TOPO_FILE_MAX + 1);
	json_error_t jerr;
	json_t *o = NULL, *names;
	const char *gw = NULL, *product = NULL;
	size_t len = 0, i;
	json_t *v;
	int r;

	r = gw_file_read_small(t->dfd, t->file, buf, TOPO_FILE_MAX, &len);
	if (r == -ENOENT)
		goto out;
	if (r < 0) {
		clog(c, LOG_WARNING,
		     "cannot read the topology file topology/%s: %s; adding the "
		     "topology of every sub-device again",
		     t->file, strerror(-r));
		goto out;
	}
	o = json_loadb(buf, len, 0, &jerr);
	if (!o ||
	    json_unpack(o, "{s:s,s:s,s:o}", "gateway", &gw, "product", &product, "attached",
			&names) < 0 ||
	    !json_is_array(names)) {
		clog(c, LOG_WARNING,
		     "the topology file topology/%s is damaged; adding the topology "
		     "of every sub-device again",
		     t->file);
		goto out;
	}
	if (strcmp(gw, t->gateway) != 0 ||
	    strcmp(product, c->ops->gateway->sub_product(c->cfg)) != 0) {
		clog(c, LOG_NOTICE,
		     "the topology file topology/%s is of gateway %s, product %s; "
		     "adding the topology of every sub-device under %s again",
		     t->file, gw, product, t->gateway);
		goto out;
	}
	json_array_foreach(names, i, v)
		if (json_is_string(v) && gw_credstore_name_valid(json_string_value(v)))
			file_set(t, json_string_value(v), true);
out:
	json_decref(o);
	free(buf);
}

/* ---- attaching ---- */

/* A sub-device's subscriptions. */
static const struct gw_cloud_subs *sub_subs(const struct gw_cloud *c)
{
	return c->ops->gateway->sub_subs.n ? &c->ops->gateway->sub_subs : &c->ops->subs;
}

static bool gateway_online(const struct gw_cloud *c)
{
	return c->gw->state == GW_CLOUD_DEV_ONLINE && !gw_cloud_dev_lost(c->gw);
}

static void attach_kick(struct gw_cloud *c)
{
	struct gw_cloud_topology *t = c->topo;
	uint64_t now = gw_now_mono_us();

	(void)sd_event_source_set_time(t->attach_timer,
				       t->next_attach_us > now ? t->next_attach_us : now);
	(void)sd_event_source_set_enabled(t->attach_timer, SD_EVENT_ONESHOT);
}

/* Back to idle, without its gateway's session. */
static void sub_detached(struct gw_cloud_dev *d)
{
	d->state = GW_CLOUD_DEV_IDLE;
	d->mosq = NULL;
	d->subacked = 0;
	d->ready = false;
}

static void sub_set_attached(struct gw_cloud_dev *d, bool on)
{
	struct gw_cloud *c = d->cloud;

	if (d->attached == on)
		return;
	d->attached = on;
	file_set(c->topo, d->name, on);
	(void)file_save(c);
}

static int attach_cb(sd_event_source *s, uint64_t usec, void *ud)
{
	struct gw_cloud *c = ud;
	const struct gw_cloud_gateway_ops *g = c->ops->gateway;
	struct gw_cloud_dev **batch;
	size_t n = 0, i;
	bool more = false;
	int r;

	if (!gateway_online(c))
		return 0;
	batch = gw_new0(struct gw_cloud_dev *, g->attach_max);
	for (i = 0; i < c->n_devs; i++) {
		struct gw_cloud_dev *d = c->devs[i];

		if (!d->ready || d->state != GW_CLOUD_DEV_IDLE || d->hold != GW_CLOUD_HOLD_NONE)
			continue;
		if (n == g->attach_max) {
			more = true;
			break;
		}
		d->ready = false;
		d->state = GW_CLOUD_DEV_ATTACHING;
		d->mosq = c->gw->mosq;
		gw_cloud_dev_arm(d, g->attach_timeout_ms);
		batch[n++] = d;
	}
	c->topo->next_attach_us = gw_now_mono_us() + (uint64_t)g->attach_gap_ms * 1000;
	r = n ? g->attach(c, batch, n) : 0;
	for (i = 0; r < 0 && i < n; i++)
		gw_cloud_sub_attach_done(batch[i], GW_CLOUD_ATTACH_FAILED, strerror(-r));
	free(batch);
	if (more)
		attach_kick(c);
	gw_cloud_dev_update(c->gw);
	return 0;
}

void gw_cloud_topo_ready(struct gw_cloud_dev *d)
{
	d->ready = true;
	d->state = GW_CLOUD_DEV_IDLE;
	if (gateway_online(d->cloud))
		attach_kick(d->cloud);
}

/* Not attached now; tried again in backoff. */
static void sub_failed(struct gw_cloud_dev *d, const char *why, uint32_t min_ms)
{
	struct gw_cloud *c = d->cloud;
	uint32_t delay;

	sub_detached(d);
	gw_strset(&d->last_error, why);
	d->backoff_ms = gw_backoff_next(d->backoff_ms,
					min_ms > c->cfg->reconnect_min_ms ?
						min_ms :
						c->cfg->reconnect_min_ms,
					c->cfg->reconnect_max_ms);
	delay = gw_backoff_jitter(d->backoff_ms);
	clog(c, LOG_WARNING, "device %s: not attached to gateway %s: %s; again in %.1f s", d->name,
	     c->gw->name, why, delay / 1000.0);
	gw_cloud_dev_arm(d, delay);
	gw_cloudfeed_rescan(c->feed);
	gw_cloud_core_notify(c, true);
}

/* Held back for good: its records are dead-lettered until the retry. A refused credential
 * goes into the store's marker (a newer one provisioned meanwhile is used at the retry); any
 * other refusal backs off in memory, its credential kept. */
static void sub_refused(struct gw_cloud_dev *d, const char *why, bool forget, bool credential)
{
	struct gw_cloud *c = d->cloud;
	struct gw_cred_state st;
	uint64_t delay_ms;

	if (!d->sub)
		return;
	sub_detached(d);
	if (forget)
		sub_set_attached(d, false);
	d->hold = GW_CLOUD_HOLD_REFUSED;
	gw_strset(&d->held_why, why);
	gw_strset(&d->last_error, why);
	if (credential) {
		c->ops->cred_forget(d);
		gw_cloud_mark_refused(c->store, c->cfg->name, d->name, why, &st);
		delay_ms = (uint64_t)gw_cloud_secs_until(st.next_retry_ms) * 1000;
	} else {
		d->held_backoff_ms = gw_backoff_next(d->held_backoff_ms, REFUSED_RETRY_MIN_MS,
						     (uint32_t)GW_CREDSTORE_RETRY_MAX_MS);
		delay_ms = gw_backoff_jitter(d->held_backoff_ms);
	}
	clog(c, LOG_WARNING,
	     "device %s: refused by the platform: %s; its records are "
	     "dead-lettered until the next attempt in %llu s",
	     d->name, why, (unsigned long long)(delay_ms / 1000));
	gw_cloud_dev_arm(d, delay_ms);
	gw_cloudfeed_rescan(c->feed);
	gw_cloud_core_notify(c, true);
}

void gw_cloud_sub_refuse(struct gw_cloud_dev *d, const char *why, bool forget)
{
	sub_refused(d, why, forget, false);
}

void gw_cloud_sub_refuse_credential(struct gw_cloud_dev *d, const char *why)
{
	sub_refused(d, why, false, true);
}

void gw_cloud_sub_attach_done(struct gw_cloud_dev *d, enum gw_cloud_attach result, const char *why)
{
	struct gw_cloud *c = d->cloud;

	if (!d->sub || d->state != GW_CLOUD_DEV_ATTACHING)
		return;
	switch (result) {
	case GW_CLOUD_ATTACH_OK:
		break;
	case GW_CLOUD_ATTACH_FAILED:
		sub_failed(d, why, 0);
		return;
	case GW_CLOUD_ATTACH_READD:
		clog(c, LOG_NOTICE,
		     "device %s: the platform has no topology of it under gateway "
		     "%s (%s): adding it again",
		     d->name, c->gw->name, why);
		sub_set_attached(d, false);
		sub_failed(d, why, 0);
		return;
	case GW_CLOUD_ATTACH_REFUSED:
	case GW_CLOUD_ATTACH_BAD_CREDENTIAL:
		sub_refused(d, why, false, result == GW_CLOUD_ATTACH_BAD_CREDENTIAL);
		return;
	}
	sub_set_attached(d, true);
	gw_strset(&d->last_error, NULL);
	d->state = GW_CLOUD_DEV_SUBSCRIBING;
	d->mosq = c->gw->mosq;
	if (gw_cloud_core_subscribe(d, sub_subs(c)) < 0) {
		sub_failed(d, sub_subs(c)->failed, 0);
		return;
	}
	gw_cloud_dev_update(d);
	if (!sub_subs(c)->n)
		gw_cloud_topo_suback(c, 0, 0, NULL);
}

void gw_cloud_topo_suback(struct gw_cloud *c, int mid, int qos_count, const int *granted_qos)
{
	for (size_t i = 0; i < c->n_devs; i++) {
		struct gw_cloud_dev *d = c->devs[i];

		if (d->state != GW_CLOUD_DEV_SUBSCRIBING ||
		    !gw_cloud_core_subacked(d, sub_subs(c), mid, qos_count, granted_qos))
			continue;
		/* a fresh start for its next failure's backoff, and for idle_logout_s */
		d->backoff_ms = 0;
		d->held_backoff_ms = 0;
		d->last_record_us = gw_now_mono_us();
		(void)sd_event_source_set_enabled(d->timer, SD_EVENT_OFF);
		gw_cloud_core_dev_online(d);
	}
}

bool gw_cloud_sub_attached_before(const struct gw_cloud_dev *d)
{
	return d->attached;
}

void gw_cloud_sub_set_attached(struct gw_cloud_dev *d, bool attached)
{
	if (d->sub)
		sub_set_attached(d, attached);
}

void gw_cloud_sub_logged_out(struct gw_cloud_dev *d, const char *why)
{
	if (!d->sub || d->state == GW_CLOUD_DEV_IDLE || d->state == GW_CLOUD_DEV_REGISTERING)
		return;
	/* what was sent meanwhile was refused (rejected); what waits goes after the login */
	sub_failed(d, why, HELD_RETRY_MS);
}

void gw_cloud_sub_disable(struct gw_cloud_dev *d, const char *why)
{
	struct gw_cloud *c = d->cloud;

	if (!d->sub || d->hold == GW_CLOUD_HOLD_DISABLED)
		return;
	sub_detached(d);
	d->hold = GW_CLOUD_HOLD_DISABLED;
	gw_strset(&d->held_why, why);
	(void)sd_event_source_set_enabled(d->timer, SD_EVENT_OFF);
	clog(c, LOG_WARNING,
	     "device %s: disabled by the platform (%s); its records wait until "
	     "it is enabled",
	     d->name, why);
	gw_cloudfeed_rescan(c->feed);
	gw_cloud_core_notify(c, true);
}

void gw_cloud_sub_enable(struct gw_cloud_dev *d)
{
	if (!d->sub || d->hold != GW_CLOUD_HOLD_DISABLED)
		return;
	d->hold = GW_CLOUD_HOLD_NONE;
	gw_strset(&d->held_why, NULL);
	clog(d->cloud, LOG_NOTICE, "device %s: enabled by the platform; attaching it again",
	     d->name);
	gw_cloud_dev_arm(d, 0);
	gw_cloud_core_notify(d->cloud, true);
}

struct gw_cloud_dev *gw_cloud_sub_find(struct gw_cloud *c, const char *name)
{
	for (size_t i = 0; c->gw && i < c->n_devs; i++)
		if (strcmp(c->devs[i]->name, name) == 0)
			return c->devs[i];
	return NULL;
}

/* ---- the core's calls ---- */

void gw_cloud_topo_timer(struct gw_cloud_dev *d)
{
	struct gw_cloud *c = d->cloud;
	char why[64];

	switch (d->state) {
	case GW_CLOUD_DEV_ATTACHING:
	case GW_CLOUD_DEV_SUBSCRIBING:
		snprintf(why, sizeof(why), "no %s within %" PRIu32 " s",
			 d->state == GW_CLOUD_DEV_ATTACHING ? "answer" : "SUBACK",
			 c->ops->gateway->attach_timeout_ms / 1000);
		d->state = GW_CLOUD_DEV_ATTACHING;
		gw_cloud_sub_attach_done(d, GW_CLOUD_ATTACH_FAILED, why);
		return;
	case GW_CLOUD_DEV_IDLE:
		break;
	case GW_CLOUD_DEV_REGISTERING: {
		/* its registration (through the gateway's session, or HTTPS) took too long */
		struct gw_cloud_reg_outcome o = { .result = GW_CLOUD_REG_FAILED, .why = why };

		snprintf(why, sizeof(why), "no answer within %" PRIu32 " s",
			 c->ops->gateway->attach_timeout_ms / 1000);
		if (d->reg)
			c->ops->register_cancel(d, d->reg);
		d->reg = NULL;
		gw_cloud_dev_registered(d, &o);
		return;
	}
	case GW_CLOUD_DEV_CONNECTING:
	case GW_CLOUD_DEV_ONLINE:
		return;
	}
	if (d->hold == GW_CLOUD_HOLD_DISABLED || d->hold == GW_CLOUD_HOLD_IDLE)
		return;
	if (d->hold == GW_CLOUD_HOLD_REFUSED) {
		/* its refusal's retry is due (provisioning reads the marker again) */
		d->hold = GW_CLOUD_HOLD_NONE;
		gw_strset(&d->held_why, NULL);
		gw_cloudfeed_rescan(c->feed);
	}
	/* the gateway's next session brings every sub-device back */
	if (!gateway_online(c))
		return;
	gw_cloud_core_provision(d);
}

void gw_cloud_topo_dev_added(struct gw_cloud_dev *d)
{
	d->sub = true;
	d->attached = file_has(d->cloud->topo, d->name);
	/* its timer fires now: it waits there while the gateway is not online */
}

void gw_cloud_topo_gateway_online(struct gw_cloud *c)
{
	c->topo->next_attach_us = 0;
	for (size_t i = 0; i < c->n_devs; i++) {
		struct gw_cloud_dev *d = c->devs[i];

		if (d->state == GW_CLOUD_DEV_IDLE && d->hold == GW_CLOUD_HOLD_NONE)
			gw_cloud_dev_arm(d, 0);
	}
}

void gw_cloud_topo_gateway_lost(struct gw_cloud *c)
{
	for (size_t i = 0; i < c->n_devs; i++) {
		struct gw_cloud_dev *d = c->devs[i];

		if (d->state == GW_CLOUD_DEV_REGISTERING) {
			/* a registration through the gateway's session cannot be answered now */
			if (d->reg)
				c->ops->register_cancel(d, d->reg);
			d->reg = NULL;
		}
		if (d->state != GW_CLOUD_DEV_IDLE && c->ops->session_end)
			c->ops->session_end(d);
		if (d->state != GW_CLOUD_DEV_IDLE)
			(void)sd_event_source_set_enabled(d->timer, SD_EVENT_OFF);
		sub_detached(d);
		/* logged out with its gateway: the next session logs it in */
		if (d->hold == GW_CLOUD_HOLD_IDLE)
			d->hold = GW_CLOUD_HOLD_NONE;
	}
	(void)sd_event_source_set_enabled(c->topo->attach_timer, SD_EVENT_OFF);
}

int gw_cloud_topo_record(struct gw_cloud_dev *d, char *why, size_t why_size)
{
	switch (d->hold) {
	case GW_CLOUD_HOLD_REFUSED:
		snprintf(why, why_size, "sub-device %s was refused by the platform: %s", d->name,
			 d->held_why ? d->held_why : "");
		return -1;
	case GW_CLOUD_HOLD_IDLE:
		/* it speaks again: logged in again, its records wait for that */
		d->hold = GW_CLOUD_HOLD_NONE;
		clog(d->cloud, LOG_INFO, "device %s: has records again: logging it in", d->name);
		gw_cloud_dev_arm(d, 0);
		break;
	case GW_CLOUD_HOLD_NONE:
	case GW_CLOUD_HOLD_DISABLED:
		break;
	}
	return 0;
}

void gw_cloud_topo_sent(struct gw_cloud_dev *d)
{
	d->last_record_us = gw_now_mono_us();
}

/* idle_logout_s: the sub-devices silent that long are logged out */
static int idle_cb(sd_event_source *s, uint64_t usec, void *ud)
{
	struct gw_cloud *c = ud;
	uint64_t idle_us = (uint64_t)c->cfg->cloud.idle_logout_s * 1000000;
	uint64_t now = gw_now_mono_us();

	for (size_t i = 0; gateway_online(c) && i < c->n_devs; i++) {
		struct gw_cloud_dev *d = c->devs[i];

		if (d->state != GW_CLOUD_DEV_ONLINE || now - d->last_record_us < idle_us)
			continue;
		clog(c, LOG_INFO,
		     "device %s: no records for %" PRIu32 " s (idle_logout_s): "
		     "logging it out",
		     d->name, c->cfg->cloud.idle_logout_s);
		c->ops->gateway->detach(d);
		if (c->ops->session_end)
			c->ops->session_end(d);
		sub_detached(d);
		d->hold = GW_CLOUD_HOLD_IDLE;
		gw_cloud_core_notify(c, true);
	}
	gw_cloud_dev_update(c->gw);
	(void)sd_event_source_set_time(s, now + IDLE_CHECK_US);
	return 0;
}

/* ---- status ---- */

const char *gw_cloud_topo_dev_state(const struct gw_cloud_dev *d)
{
	static const char *const states[] = {
		[GW_CLOUD_DEV_IDLE] = "idle",
		[GW_CLOUD_DEV_REGISTERING] = "registering",
		[GW_CLOUD_DEV_CONNECTING] = "attaching",
		[GW_CLOUD_DEV_SUBSCRIBING] = "subscribing",
		[GW_CLOUD_DEV_ONLINE] = "online",
		[GW_CLOUD_DEV_ATTACHING] = "attaching",
	};

	switch (d->hold) {
	case GW_CLOUD_HOLD_REFUSED:
		return "refused";
	case GW_CLOUD_HOLD_DISABLED:
		return "disabled";
	case GW_CLOUD_HOLD_IDLE:
		return "logged-out";
	case GW_CLOUD_HOLD_NONE:
		break;
	}
	return states[d->state];
}

void gw_cloud_topo_dev_status(const struct gw_cloud_dev *d, json_t *o)
{
	(void)json_object_set_new(o, "attached", json_boolean(d->attached));
	if (d->hold == GW_CLOUD_HOLD_REFUSED || d->hold == GW_CLOUD_HOLD_DISABLED)
		(void)json_object_set_new(o,
					  d->hold == GW_CLOUD_HOLD_REFUSED ? "refused" : "disabled",
					  json_string(d->held_why ? d->held_why : ""));
}

void gw_cloud_topo_status(struct gw_cloud *c, json_t *o)
{
	static const char *const states[] = {
		[GW_CLOUD_DEV_IDLE] = "idle",
		[GW_CLOUD_DEV_REGISTERING] = "idle",
		[GW_CLOUD_DEV_CONNECTING] = "connecting",
		[GW_CLOUD_DEV_SUBSCRIBING] = "subscribing",
		[GW_CLOUD_DEV_ONLINE] = "online",
		[GW_CLOUD_DEV_ATTACHING] = "connecting",
	};
	const char *err = gw_cloud_dev_error(c->gw);

	(void)json_object_set_new(o, "topology", json_string("gateway"));
	(void)json_object_set_new(o, "gateway",
				  json_pack("{s:s,s:s,s:o}", "device", c->topo->gateway, "session",
					    states[c->gw->state], "last_error",
					    err[0] ? json_string(err) : json_null()));
}

/* ---- the uplink ---- */

int gw_cloud_topo_new(struct gw_cloud *c, const char *state_dir)
{
	const struct gw_config_uplink *cfg = c->cfg;
	struct gw_cloud_topology *t = gw_new0(struct gw_cloud_topology, 1);
	char why[256], *dir = NULL;
	int r;

	t->dfd = -1;
	c->topo = t;
	if (asprintf(&t->gateway, "%s/%s", c->ops->gateway->product(cfg),
		     cfg->cloud.gateway_device_name) < 0 ||
	    asprintf(&t->file, "%s.json", cfg->name) < 0 ||
	    asprintf(&t->tmp, "%s.json.tmp", cfg->name) < 0 ||
	    asprintf(&dir, "%s/topology", state_dir) < 0) {
		free(dir);
		return -ENOMEM;
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		r = -errno;
		clog(c, LOG_ERR, "cannot create %s: %s", dir, strerror(-r));
		free(dir);
		return r;
	}
	t->dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	r = t->dfd < 0 ? -errno : 0;
	if (r < 0)
		clog(c, LOG_ERR, "cannot open %s: %s", dir, strerror(-r));
	free(dir);
	if (r < 0)
		return r;
	file_load(c);
	r = sd_event_add_time(c->event, &t->attach_timer, CLOCK_MONOTONIC, 0, 0, attach_cb, c);
	if (r >= 0)
		r = sd_event_source_set_enabled(t->attach_timer, SD_EVENT_OFF);
	if (r >= 0 && cfg->cloud.idle_logout_s)
		r = sd_event_add_time_relative(c->event, &t->idle_timer, CLOCK_MONOTONIC,
					       IDLE_CHECK_US, 0, idle_cb, c);
	if (r >= 0 && t->idle_timer)
		r = sd_event_source_set_enabled(t->idle_timer, SD_EVENT_ON);
	if (r < 0) {
		clog(c, LOG_ERR, "cannot arm the gateway's timers: %s", strerror(-r));
		return r;
	}
	c->gw = gw_cloud_core_dev_new(c, cfg->cloud.gateway_device_name, why, sizeof(why));
	if (!c->gw) {
		clog(c, LOG_ERR, "%s", why);
		return -ENOMEM;
	}
	clog(c, LOG_INFO,
	     "gateway %s: %zu sub-devices remembered as attached; starting its "
	     "session",
	     t->gateway, t->n_attached);
	return 0;
}

void gw_cloud_topo_free(struct gw_cloud *c)
{
	struct gw_cloud_topology *t = c->topo;

	if (!t)
		return;
	t->attach_timer = sd_event_source_disable_unref(t->attach_timer);
	t->idle_timer = sd_event_source_disable_unref(t->idle_timer);
	if (t->dfd >= 0)
		close(t->dfd);
	for (size_t i = 0; i < t->n_attached; i++)
		free(t->attached[i]);
	free(t->attached);
	free(t->gateway);
	free(t->file);
	free(t->tmp);
	free(t);
	c->topo = NULL;
}
