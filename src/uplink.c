/* SPDX-License-Identifier: MIT */
/*
 * The uplink driver table and the thin object around a driver's own. See gw/uplink.h.
 */

#include <errno.h>
#include <jansson.h>

#include "gw/log.h"
#include "gw/uplink.h"
#include "gw/util.h"

struct gw_uplink {
	const struct gw_uplink_ops *ops;
	void *impl;
	const struct gw_config_uplink *cfg;
	gw_uplink_notify_fn notify;
	void *user_data;
};

static const struct gw_uplink_ops *const drivers[] = {
	&gw_mqtt_uplink_ops,
	&gw_aliyun_uplink_ops,
	&gw_tencent_uplink_ops,
};

const struct gw_uplink_ops *gw_uplink_driver(enum gw_uplink_type type)
{
	for (size_t i = 0; i < sizeof(drivers) / sizeof(drivers[0]); i++)
		if (drivers[i]->type == type)
			return drivers[i];
	return NULL;
}

int gw_uplink_new(sd_event *event, const struct gw_config_uplink *cfg, const struct gw_config *gw,
		  struct gw_spool *spool, const struct gw_uplink_commands *commands,
		  gw_uplink_notify_fn notify, void *user_data, struct gw_uplink **ret)
{
	struct gw_uplink *u;
	struct gw_uplink_env env;
	const struct gw_uplink_ops *ops = gw_uplink_driver(cfg->type);
	int r;

	if (!ops) {
		gw_log_uplink(LOG_ERR, cfg->name, "no driver for its type in this build");
		return -EOPNOTSUPP;
	}
	u = gw_new0(struct gw_uplink, 1);
	u->ops = ops;
	u->cfg = cfg;
	u->notify = notify;
	u->user_data = user_data;
	env = (struct gw_uplink_env){
		.event = event,
		.cfg = cfg,
		.state_dir = gw->state_dir,
		.maps = gw->maps,
		.n_maps = gw->n_maps,
		.spool = spool,
		.self = u,
	};
	if (commands)
		env.commands = *commands;
	r = ops->new(&env, &u->impl);
	if (r < 0) {
		free(u);
		return r;
	}
	*ret = u;
	return 0;
}

struct gw_uplink *gw_uplink_free(struct gw_uplink *u)
{
	if (!u)
		return NULL;
	/* the driver's goodbyes must not call back into a gateway that is going away */
	u->notify = NULL;
	u->ops->free(u->impl);
	free(u);
	return NULL;
}

int gw_uplink_start(struct gw_uplink *u)
{
	return u->ops->start(u->impl);
}

void gw_uplink_kick(struct gw_uplink *u, uint64_t seq)
{
	u->ops->kick(u->impl, seq);
}

void gw_uplink_hold(struct gw_uplink *u, bool hold)
{
	if (u->ops->hold)
		u->ops->hold(u->impl, hold);
}

void gw_uplink_poll(struct gw_uplink *u)
{
	if (u->ops->poll)
		u->ops->poll(u->impl);
}

int gw_uplink_save(struct gw_uplink *u)
{
	return u->ops->save(u->impl);
}

size_t gw_uplink_draining(const struct gw_uplink *u)
{
	return u->ops->draining(u->impl);
}

void gw_uplink_summary(const struct gw_uplink *u, struct gw_uplink_summary *ret)
{
	*ret = (struct gw_uplink_summary){ 0 };
	u->ops->summary(u->impl, ret);
}

void gw_uplink_log_counters(const struct gw_uplink *u)
{
	u->ops->log_counters(u->impl);
}

static uint64_t counter(json_t *counters, const char *key)
{
	return (uint64_t)json_integer_value(json_object_get(counters, key));
}

/*
 * The conservation law over a driver's counters, as the status shows it: every record this
 * run owed the uplink (the backlog found at start and every record stored since) is
 * acknowledged, still queued, or counted dropped, dead-lettered or lost. The cloud drivers
 * call the dead-letter count deadlettered (their rejected is part of acked), mqtt rejected.
 */
static json_t *law_json(json_t *counters)
{
	const char *dl = json_object_get(counters, "deadlettered") ? "deadlettered" : "rejected";
	uint64_t produced = counter(counters, "produced");
	uint64_t accounted = counter(counters, "acked") + counter(counters, "queued") +
			     counter(counters, "dropped_overflow") +
			     counter(counters, "dropped_enospc") + counter(counters, dl) +
			     counter(counters, "lost_corrupt");

	return json_pack("{s:I,s:I,s:b}", "produced", (json_int_t)produced, "accounted",
			 (json_int_t)accounted, "exact", produced == accounted);
}

json_t *gw_uplink_status_json(struct gw_uplink *u)
{
	struct gw_uplink_summary st;
	json_t *o;

	gw_uplink_summary(u, &st);
	o = json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I}", "name", u->cfg->name, "type",
		      gw_uplink_type_to_string(u->cfg->type), "state",
		      st.online == 0 ? "offline" : st.online < st.sessions ? "partial" : "online",
		      "sessions", (json_int_t)st.sessions, "online", (json_int_t)st.online,
		      "queued", (json_int_t)st.queued, "inflight", (json_int_t)st.inflight,
		      "acked", (json_int_t)st.acked, "rejected", (json_int_t)st.rejected);
	if (o && u->ops->status)
		u->ops->status(u->impl, o);
	if (o && json_object_get(o, "counters"))
		(void)json_object_set_new(o, "law", law_json(json_object_get(o, "counters")));
	return o;
}

const struct gw_config_uplink *gw_uplink_config(const struct gw_uplink *u)
{
	return u->cfg;
}

const char *gw_uplink_name(const struct gw_uplink *u)
{
	return u->cfg->name;
}

void gw_uplink_notify(struct gw_uplink *u, bool state_changed)
{
	if (u->notify)
		u->notify(u, state_changed, u->user_data);
}
