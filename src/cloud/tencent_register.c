/* SPDX-License-Identifier: MIT */
/*
 * Tencent dynamic registration of one device over HTTPS, the credential stored before it is
 * handed on. See include/gw/tencent_register.h.
 */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gw/log.h"
#include "gw/tencent.h"
#include "gw/tencent_register.h"
#include "gw/util.h"

enum phase {
	PHASE_STARTING, /* the timer brings the request */
	PHASE_POSTING,  /* the POST is running */
	PHASE_DONE,     /* the outcome is decided; the timer brings the callback */
};

struct gw_tencent_register {
	sd_event *event;
	struct gw_http *http;
	struct gw_credstore *store;
	const struct gw_config_uplink *cfg;
	char device[GW_TENCENT_DEVICE_NAME_MAX];
	gw_tencent_register_fn done;
	void *user_data;

	enum phase phase;
	sd_event_source *timer;
	struct gw_http_request *req;

	enum gw_tencent_register_result result;
	char why[GW_CREDSTORE_REASON_MAX + 128];
	struct gw_cred cred; /* STORED: a copy of what was stored */
};

#define rlog(reg, level, ...) gw_log_uplink(level, (reg)->cfg->name, __VA_ARGS__)

static const char *api_name(enum gw_tencent_dynreg_api api)
{
	return api == GW_TENCENT_DYNREG_LEGACY ? "legacy API" : "v2 API";
}

int gw_tencent_register_signed_host(const char *url, char *buf, size_t size)
{
	/* the host signed is the host libcurl connects to and sends */
	return gw_http_url_host(url, buf, size);
}

/* The outcome is decided: the callback runs from the timer, so never inside libcurl and never
 * inside gw_tencent_register_start(). */
static void finish(struct gw_tencent_register *reg, enum gw_tencent_register_result result,
		   const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void finish(struct gw_tencent_register *reg, enum gw_tencent_register_result result,
		   const char *fmt, ...)
{
	va_list ap;

	reg->result = result;
	va_start(ap, fmt);
	vsnprintf(reg->why, sizeof(reg->why), fmt, ap);
	va_end(ap);
	reg->phase = PHASE_DONE;
	(void)sd_event_source_set_time_relative(reg->timer, 0);
	(void)sd_event_source_set_enabled(reg->timer, SD_EVENT_ONESHOT);
}

/* Stores what the platform issued; it is used only once it is on disk. */
static void store(struct gw_tencent_register *reg, const struct gw_tencent_credentials *creds)
{
	bool psk = creds->kind == GW_TENCENT_CRED_PSK;
	char reason[GW_CREDSTORE_REASON_MAX];
	struct gw_cred cred = {
		.cloud = GW_CRED_CLOUD_TENCENT,
		.kind = psk ? GW_CRED_PSK : GW_CRED_CERTIFICATE,
		.product = reg->cfg->product_id,
		.device = reg->device,
		.psk = psk ? (char *)creds->psk : NULL,
		.cert = psk ? NULL : (char *)creds->client_cert,
		.key = psk ? NULL : (char *)creds->client_key,
	};
	int r;

	r = gw_credstore_save(reg->store, &cred, reason, sizeof(reason));
	if (r < 0) {
		finish(reg, GW_TENCENT_REGISTER_FAILED,
		       "the issued %s cannot be stored (%s), so it is not used",
		       psk ? "PSK" : "certificate and key", reason[0] ? reason : strerror(-r));
		return;
	}
	reg->cred = (struct gw_cred){
		.cloud = cred.cloud,
		.kind = cred.kind,
		.product = gw_strdup(cred.product),
		.device = gw_strdup(cred.device),
		.psk = gw_strdup(cred.psk),
		.cert = gw_strdup(cred.cert),
		.key = gw_strdup(cred.key),
	};
	finish(reg, GW_TENCENT_REGISTER_STORED, "%s", "");
}

static void on_done(struct gw_http_request *req, const struct gw_http_response *resp, void *ud)
{
	struct gw_tencent_register *reg = ud;
	enum gw_tencent_dynreg_api api = reg->cfg->register_api;
	struct gw_tencent_credentials *creds;
	char reason[GW_TENCENT_REASON_MAX];
	int r;

	reg->req = NULL;
	if (resp->err) {
		finish(reg, GW_TENCENT_REGISTER_FAILED, "registration request failed: %s",
		       resp->error ? resp->error : strerror(-resp->err));
		return;
	}
	if (resp->status != 200) {
		/* a redirect is never followed: it could lead to plain http or another host */
		if (resp->location)
			finish(reg, GW_TENCENT_REGISTER_FAILED, "HTTP status %ld, a redirect to "
			       "%.200s (not followed)", resp->status, resp->location);
		else
			finish(reg, GW_TENCENT_REGISTER_FAILED, "HTTP status %ld", resp->status);
		return;
	}
	/* two PEM buffers: too large for the stack of a loop callback */
	creds = gw_new0(struct gw_tencent_credentials, 1);
	reason[0] = '\0';
	r = gw_tencent_parse_dynreg_reply(api, reg->cfg->product_secret, resp->body, resp->len,
					  creds, reason);
	if (r == -EREMOTEIO) {
		/* reason quotes the platform's code and message, cut and made printable */
		if (creds->request_id[0])
			finish(reg, GW_TENCENT_REGISTER_REFUSED, "%s (RequestId %s)", reason,
			       creds->request_id);
		else
			finish(reg, GW_TENCENT_REGISTER_REFUSED, "%s", reason);
	} else if (r == -EBADMSG) {
		finish(reg, GW_TENCENT_REGISTER_FAILED, "malformed reply (%s): %s", api_name(api),
		       reason);
	} else if (r == -EMSGSIZE) {
		finish(reg, GW_TENCENT_REGISTER_FAILED, "reply of %zu bytes, over %d", resp->len,
		       GW_TENCENT_HTTPS_REPLY_MAX);
	} else if (r < 0) {
		finish(reg, GW_TENCENT_REGISTER_FAILED, "cannot read the reply: %s",
		       reason[0] ? reason : strerror(-r));
	} else {
		store(reg, creds);
	}
	gw_tencent_credentials_wipe(creds);
	free(creds);
}

/* Builds the request and starts the POST. */
static void start_post(struct gw_tencent_register *reg)
{
	static const char ct_prefix[] = "Content-Type: ";
	const struct gw_config_uplink *c = reg->cfg;
	/* the reply is small: a larger body is cut off in transfer, never buffered */
	struct gw_http_options o = {
		.ca_file = c->ca_file,
		.timeout_ms = GW_TENCENT_REGISTER_TIMEOUT_MS,
		.max_body = GW_TENCENT_HTTPS_REPLY_MAX,
	};
	struct gw_tencent_dynreg d = {
		.api = c->register_api,
		.region = c->region,
		.product_id = c->product_id,
		.device_name = reg->device,
		.product_secret = c->product_secret,
		/* docs/protocols/tencent.md §2.2: the legacy API signs with HMAC-SHA1 only */
		.sign_method = c->register_api == GW_TENCENT_DYNREG_LEGACY ? GW_TENCENT_HMAC_SHA1 :
									     c->tc_sign_method,
		/* docs/protocols/tencent.md §2.1: send the real UTC time */
		.timestamp = (uint64_t)time(NULL),
	};
	struct gw_tencent_https_request *req = gw_new0(struct gw_tencent_https_request, 1);
	const char *headers[GW_TENCENT_HEADERS + 1] = { NULL };
	char reason[GW_TENCENT_REASON_MAX] = "";
	char host[GW_TENCENT_HOST_MAX];
	const char *url;
	size_t n = 0;
	int r;

	reg->phase = PHASE_POSTING;
	r = gw_tencent_make_nonce(&d.nonce);
	if (r >= 0)
		r = gw_tencent_build_dynreg(&d, req, reason);
	url = c->register_url ? c->register_url : req->url;
	if (r >= 0) {
		r = gw_tencent_register_signed_host(url, host, sizeof(host));
		if (r < 0)
			snprintf(reason, sizeof(reason), "register_url is not an https:// URL with "
				 "a host and without user info");
	}
	if (r >= 0 && c->register_url && d.api == GW_TENCENT_DYNREG_V2) {
		/* the signature covers the host: sign the one the request goes to
		 * (docs/protocols/tencent.md §2.1) */
		for (size_t i = 0; r >= 0 && i < req->n_headers; i++) {
			static const char sig[] = "X-TC-Signature: ";
			char *h = req->headers[i];

			if (strncmp(h, sig, sizeof(sig) - 1) != 0)
				continue;
			r = gw_tencent_sign_dynreg(d.sign_method, d.product_secret, host,
						   d.timestamp, d.nonce, req->body,
						   strlen(req->body), h + sizeof(sig) - 1,
						   GW_TENCENT_HEADER_MAX - (sizeof(sig) - 1));
		}
	}
	/* gw_tencent_build_dynreg() puts the Content-Type first; gw_http_post() takes it apart */
	if (r >= 0 && (req->n_headers == 0 ||
		       strncmp(req->headers[0], ct_prefix, sizeof(ct_prefix) - 1) != 0))
		r = -EINVAL;
	if (r < 0) {
		finish(reg, GW_TENCENT_REGISTER_FAILED, "cannot build the registration request: %s",
		       reason[0] ? reason : strerror(-r));
		goto out;
	}
	for (size_t i = 1; i < req->n_headers; i++)
		headers[n++] = req->headers[i];
	rlog(reg, LOG_INFO, "device %s: registering with product %s (%s, %s) at %s", reg->device,
	     c->product_id, api_name(d.api), gw_tencent_name_sign_method(d.sign_method), url);
	r = gw_http_post(reg->http, url, req->headers[0] + sizeof(ct_prefix) - 1, headers,
			 req->body, strlen(req->body), &o, on_done, reg, &reg->req);
	if (r < 0)
		finish(reg, GW_TENCENT_REGISTER_FAILED, "cannot start the registration request: %s",
		       r == -EINVAL ? "the URL is not https://" : strerror(-r));
out:
	/* nothing in it is a secret, but the signature is the ProductSecret's work */
	explicit_bzero(req, sizeof(*req));
	free(req);
}

static void reg_free(struct gw_tencent_register *reg)
{
	if (reg->req)
		gw_http_cancel(reg->req);
	reg->timer = sd_event_source_disable_unref(reg->timer);
	gw_credstore_wipe(&reg->cred);
	explicit_bzero(reg->why, sizeof(reg->why));
	free(reg);
}

static int timer_cb(sd_event_source *s, uint64_t usec, void *ud)
{
	struct gw_tencent_register *reg = ud;
	struct gw_tencent_register_outcome o;

	switch (reg->phase) {
	case PHASE_STARTING:
		start_post(reg);
		return 0;
	case PHASE_POSTING:
		return 0; /* not armed while the request runs; libcurl bounds it */
	case PHASE_DONE:
		break;
	}
	o = (struct gw_tencent_register_outcome){
		.result = reg->result,
		.why = reg->why,
		.cred = reg->result == GW_TENCENT_REGISTER_STORED ? &reg->cred : NULL,
	};
	reg->done(reg, &o, reg->user_data);
	reg_free(reg);
	return 0;
}

int gw_tencent_register_start(sd_event *event, struct gw_http *http, struct gw_credstore *store,
			      const struct gw_config_uplink *cfg, const char *device,
			      gw_tencent_register_fn done, void *user_data,
			      struct gw_tencent_register **ret)
{
	struct gw_tencent_register *reg;
	int r;

	if (!event || !http || !store || !cfg || !done || !ret ||
	    gw_tencent_check_product_id(cfg->product_id, NULL) < 0 ||
	    gw_tencent_check_product_secret(cfg->product_secret, NULL) < 0 ||
	    gw_tencent_check_region(cfg->region) < 0 ||
	    gw_tencent_check_device_name(device, NULL) < 0 || !gw_credstore_name_valid(device) ||
	    !gw_tencent_name_sign_method(cfg->tc_sign_method) ||
	    (cfg->register_api != GW_TENCENT_DYNREG_V2 &&
	     cfg->register_api != GW_TENCENT_DYNREG_LEGACY))
		return -EINVAL;
	reg = gw_new0(struct gw_tencent_register, 1);
	reg->event = event;
	reg->http = http;
	reg->store = store;
	reg->cfg = cfg;
	snprintf(reg->device, sizeof(reg->device), "%s", device);
	reg->done = done;
	reg->user_data = user_data;
	r = sd_event_add_time_relative(event, &reg->timer, CLOCK_MONOTONIC, 0, 0, timer_cb, reg);
	if (r < 0) {
		free(reg);
		return r;
	}
	*ret = reg;
	return 0;
}

struct gw_tencent_register *gw_tencent_register_cancel(struct gw_tencent_register *reg)
{
	if (!reg)
		return NULL;
	reg_free(reg);
	return NULL;
}
