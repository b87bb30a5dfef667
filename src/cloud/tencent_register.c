/* SPDX-License-Identifier: MIT */
/*
 * Tencent dynamic registration of one device over HTTPS, the credential stored before it is
 * handed on. See include/gw/tencent_register.h.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gw-build.h"
#include "gw/cloudreg.h"
#include "gw/log.h"
#include "gw/tencent.h"
#include "gw/tencent_register.h"
#include "gw/util.h"

struct gw_tencent_register {
	struct gw_cloud_reg job; /* device, timer, outcome, the POST (gw/cloudreg.h) */
	gw_tencent_register_fn done;
	void *user_data;
};

_Static_assert((int)GW_TENCENT_REGISTER_FAILED == (int)GW_CLOUD_REG_FAILED &&
		       (int)GW_TENCENT_REGISTER_REFUSED == (int)GW_CLOUD_REG_REFUSED,
	       "the results are the job's");

#define rlog(reg, level, ...) gw_log_uplink(level, (reg)->job.cfg->name, __VA_ARGS__)
/* the outcome; the callback runs from the timer, never inside libcurl nor inside
 * gw_tencent_register_start() */
#define finish(reg, result, ...) \
	gw_cloud_reg_finish(&(reg)->job, GW_CLOUD_REG_##result, NULL, __VA_ARGS__)

static const char *api_name(enum gw_tencent_dynreg_api api)
{
	return api == GW_TENCENT_DYNREG_LEGACY ? "legacy API" : "v2 API";
}

int gw_tencent_register_signed_host(const char *url, char *buf, size_t size)
{
	/* the host signed is the host libcurl connects to and sends */
	return gw_http_url_host(url, buf, size);
}

/* Stores what the platform issued; it is used only once it is on disk. */
static void store(struct gw_tencent_register *reg, const struct gw_tencent_credentials *creds)
{
	bool psk = creds->kind == GW_TENCENT_CRED_PSK;
	struct gw_cred cred = {
		.cloud = GW_CRED_CLOUD_TENCENT,
		.kind = psk ? GW_CRED_PSK : GW_CRED_CERTIFICATE,
		.product = reg->job.cfg->tencent.product_id,
		.device = reg->job.device,
		.psk = psk ? (char *)creds->psk : NULL,
		.cert = psk ? NULL : (char *)creds->client_cert,
		.key = psk ? NULL : (char *)creds->client_key,
	};

	gw_cloud_reg_store(&reg->job, &cred, NULL, psk ? "PSK" : "certificate and key");
}

static void on_done(struct gw_http_request *req, const struct gw_http_response *resp, void *ud)
{
	struct gw_tencent_register *reg = ud;
	enum gw_tencent_dynreg_api api = gw_tencent_config_register_api(reg->job.cfg);
	struct gw_tencent_credentials *creds;
	char reason[GW_TENCENT_REASON_MAX];
	char why[GW_CREDSTORE_REASON_MAX];
	int r;

	reg->job.req = NULL;
	r = gw_cloud_reg_http_status(&reg->job, resp, why, sizeof(why));
	if (r < 0) {
		finish(reg, FAILED, "%s%s", r == -EIO ? "registration request failed: " : "", why);
		return;
	}
	/* two PEM buffers: too large for the stack of a loop callback */
	creds = gw_new0(struct gw_tencent_credentials, 1);
	reason[0] = '\0';
	r = gw_tencent_parse_dynreg_reply(api, reg->job.cfg->cloud.product_secret, resp->body,
					  resp->len, creds, reason);
	if (r == -EREMOTEIO) {
		/* reason quotes the platform's code and message, cut and made printable */
		if (creds->request_id[0])
			finish(reg, REFUSED, "%s (RequestId %s)", reason,
			       creds->request_id);
		else
			finish(reg, REFUSED, "%s", reason);
	} else if (r == -EBADMSG) {
		finish(reg, FAILED, "malformed reply (%s): %s", api_name(api),
		       reason);
	} else if (r == -EMSGSIZE) {
		finish(reg, FAILED, "reply of %zu bytes, over %d", resp->len,
		       GW_TENCENT_HTTPS_REPLY_MAX);
	} else if (r < 0) {
		finish(reg, FAILED, "cannot read the reply: %s",
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
	const struct gw_config_uplink *c = reg->job.cfg;
	/* the reply is small: a larger body is cut off in transfer, never buffered */
	struct gw_http_options o = {
		.ca_file = reg->job.https_ca_file,
		.timeout_ms = GW_TENCENT_REGISTER_TIMEOUT_MS,
		.max_body = GW_TENCENT_HTTPS_REPLY_MAX,
	};
	struct gw_tencent_dynreg d = {
		.api = gw_tencent_config_register_api(c),
		.region = c->cloud.region,
		.product_id = c->tencent.product_id,
		.device_name = reg->job.device,
		.product_secret = c->cloud.product_secret,
		/* docs/protocols/tencent.md §2.2: the legacy API signs with HMAC-SHA1 only */
		.sign_method = c->tencent.register_api == GW_REGISTER_API_LEGACY ?
				       GW_TENCENT_HMAC_SHA1 :
				       gw_tencent_config_sign_method(c),
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

	r = gw_tencent_make_nonce(&d.nonce);
	if (r >= 0)
		r = gw_tencent_build_dynreg(&d, req, reason);
	url = c->cloud.register_url ? c->cloud.register_url : req->url;
	if (r >= 0) {
		r = gw_tencent_register_signed_host(url, host, sizeof(host));
		if (r < 0)
			snprintf(reason, sizeof(reason), "register_url is not an https:// URL with "
				 "a host and without user info");
	}
	if (r >= 0 && c->cloud.register_url && d.api == GW_TENCENT_DYNREG_V2) {
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
		finish(reg, FAILED, "cannot build the registration request: %s",
		       reason[0] ? reason : strerror(-r));
		goto out;
	}
	for (size_t i = 1; i < req->n_headers; i++)
		headers[n++] = req->headers[i];
	rlog(reg, LOG_INFO, "device %s: registering with product %s (%s, %s) at %s",
	     reg->job.device, c->tencent.product_id, api_name(d.api),
	     gw_tencent_name_sign_method(d.sign_method), url);
	r = gw_http_post(reg->job.http, url, req->headers[0] + sizeof(ct_prefix) - 1, headers,
			 req->body, strlen(req->body), &o, on_done, reg, &reg->job.req);
	if (r < 0)
		finish(reg, FAILED, "cannot start the registration request: %s",
		       r == -EINVAL ? "the URL is not https://" : strerror(-r));
out:
	/* nothing in it is a secret, but the signature is the ProductSecret's work */
	explicit_bzero(req, sizeof(*req));
	free(req);
}

static void step(struct gw_cloud_reg *job)
{
	/* armed once: the request; libcurl bounds it */
	start_post((struct gw_tencent_register *)job);
}

static void done(struct gw_cloud_reg *job, const struct gw_cloud_reg_outcome *o)
{
	struct gw_tencent_register *reg = (struct gw_tencent_register *)job;

	/* the job's outcome without the transport: HTTPS, always */
	reg->done(reg, &(struct gw_tencent_register_outcome){
		(enum gw_tencent_register_result)o->result, o->why, o->cred, o->untrusted },
		  reg->user_data);
	gw_tencent_register_cancel(reg);
}

static const struct gw_cloud_reg_hooks hooks = {
	.step = step, /* the POST */
	.done = done,
};

int gw_tencent_register_start(sd_event *event, struct gw_http *http, struct gw_credstore *store,
			      const struct gw_config_uplink *cfg, const char *device,
			      gw_tencent_register_fn done_fn, void *user_data,
			      struct gw_tencent_register **ret)
{
	int r = -EINVAL;
	struct gw_tencent_register *reg;

	if (event && http && store && cfg && done_fn && ret &&
	    gw_tencent_check_product_id(cfg->tencent.product_id, NULL) >= 0 &&
	    gw_tencent_check_product_secret(cfg->cloud.product_secret, NULL) >= 0 &&
	    gw_tencent_check_region(cfg->cloud.region) >= 0 &&
	    gw_tencent_check_device_name(device, NULL) >= 0 && gw_credstore_name_valid(device) &&
	    (cfg->cloud.sign_method == GW_SIGN_HMAC_SHA256 ||
	     cfg->cloud.sign_method == GW_SIGN_HMAC_SHA1) &&
	    (cfg->tencent.register_api == GW_REGISTER_API_V2 ||
	     cfg->tencent.register_api == GW_REGISTER_API_LEGACY))
		r = gw_cloud_reg_new(sizeof(*reg), event, http, store, cfg, device, &hooks,
				     (void **)&reg);
	if (r >= 0) {
		reg->done = done_fn;
		reg->user_data = user_data;
		/* the registration host's roots, never the MQTT endpoint's ca_file: the hosts are
		 * served under different roots (docs/protocols/tencent.md §1.6), and a ca_file
		 * copied from a tutorial is the Iothub root */
		reg->job.https_ca_file = gw_cloud_reg_https_ca(cfg->cloud.register_ca_file, NULL,
							       GW_TENCENT_CA_FILE,
							       GW_TENCENT_REGISTER_CA_FILE);
		*ret = reg;
	}
	return r;
}

struct gw_tencent_register *gw_tencent_register_cancel(struct gw_tencent_register *reg)
{
	gw_cloud_reg_free(reg ? &reg->job : NULL);
	return NULL;
}
