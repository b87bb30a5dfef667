/* SPDX-License-Identifier: MIT */
/*
 * The registration job of the cloud core: timer, outcome and storing of a device's dynamic
 * registration. See include/gw/cloudreg.h.
 */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gw/cloudreg.h"
#include "gw/util.h"

static int timer_cb(sd_event_source *s, uint64_t usec, void *ud)
{
	struct gw_cloud_reg *job = ud;
	struct gw_cloud_reg_outcome o;

	if (!job->decided) {
		job->hooks->step(job);
		return 0;
	}
	o = (struct gw_cloud_reg_outcome){
		.result = job->result,
		.via = job->via,
		.why = job->why,
		.cred = job->result == GW_CLOUD_REG_STORED ? &job->cred : NULL,
		.untrusted = job->result == GW_CLOUD_REG_FAILED && job->untrusted,
	};
	job->hooks->done(job, &o);
	return 0;
}

int gw_cloud_reg_new(size_t size, sd_event *event, struct gw_http *http,
		     struct gw_credstore *store, const struct gw_config_uplink *cfg,
		     const char *device, const struct gw_cloud_reg_hooks *hooks, void **ret)
{
	struct gw_cloud_reg *job = gw_malloc0(size);
	int r;

	job->event = event;
	job->http = http;
	job->store = store;
	job->cfg = cfg;
	job->hooks = hooks;
	snprintf(job->device, sizeof(job->device), "%s", device);
	r = sd_event_add_time_relative(event, &job->timer, CLOCK_MONOTONIC, 0, 0, timer_cb, job);
	if (r < 0) {
		free(job);
		return r;
	}
	*ret = job;
	return 0;
}

void gw_cloud_reg_free(struct gw_cloud_reg *job)
{
	if (!job)
		return;
	if (job->req)
		gw_http_cancel(job->req);
	job->timer = sd_event_source_disable_unref(job->timer);
	gw_credstore_wipe(&job->cred);
	explicit_bzero(job->why, sizeof(job->why));
	free(job);
}

void gw_cloud_reg_arm(struct gw_cloud_reg *job, uint64_t ms)
{
	(void)sd_event_source_set_time_relative(job->timer, ms * 1000);
	(void)sd_event_source_set_enabled(job->timer, SD_EVENT_ONESHOT);
}

void gw_cloud_reg_finish(struct gw_cloud_reg *job, enum gw_cloud_reg_result result,
			 const char *via, const char *fmt, ...)
{
	va_list ap;

	job->result = result;
	job->via = via;
	va_start(ap, fmt);
	vsnprintf(job->why, sizeof(job->why), fmt, ap);
	va_end(ap);
	job->decided = true;
	gw_cloud_reg_arm(job, 0);
}

void gw_cloud_reg_store(struct gw_cloud_reg *job, const struct gw_cred *cred, const char *via,
			const char *what)
{
	char reason[GW_CREDSTORE_REASON_MAX];
	int r = gw_credstore_save(job->store, cred, reason, sizeof(reason));

	if (r < 0) {
		gw_cloud_reg_finish(job, GW_CLOUD_REG_FAILED, via,
				    "the issued %s cannot be stored (%s), so it is not used", what,
				    reason[0] ? reason : strerror(-r));
		return;
	}
	job->cred = (struct gw_cred){
		.cloud = cred->cloud,
		.kind = cred->kind,
		.product = gw_strdup(cred->product),
		.device = gw_strdup(cred->device),
		.secret = gw_strdup(cred->secret),
		.token = gw_strdup(cred->token),
		.client_id = gw_strdup(cred->client_id),
		.psk = gw_strdup(cred->psk),
		.cert = gw_strdup(cred->cert),
		.key = gw_strdup(cred->key),
	};
	gw_cloud_reg_finish(job, GW_CLOUD_REG_STORED, via, "%s", "");
}

int gw_cloud_reg_http_status(struct gw_cloud_reg *job, const struct gw_http_response *resp,
			     char *why, size_t why_size)
{
	job->untrusted = resp->err && resp->untrusted;
	if (resp->err) {
		snprintf(why, why_size, "%s", resp->error ? resp->error : strerror(-resp->err));
		return -EIO;
	}
	if (resp->status == 200)
		return 0;
	if (resp->location)
		snprintf(why, why_size, "HTTP status %ld, a redirect to %.200s (not followed)",
			 resp->status, resp->location);
	else
		snprintf(why, why_size, "HTTP status %ld", resp->status);
	return -EPROTO;
}

const char *gw_cloud_reg_https_ca(const char *register_ca_file, const char *ca_file,
				  const char *mqtt_default, const char *register_default)
{
	if (register_ca_file)
		return register_ca_file;
	if (ca_file && !(mqtt_default && strcmp(ca_file, mqtt_default) == 0))
		return ca_file;
	if (register_default && access(register_default, R_OK) == 0)
		return register_default;
	return NULL;
}
