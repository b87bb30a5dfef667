/* SPDX-License-Identifier: MIT */
/*
 * The keys both cloud uplink types take (struct gw_config_cloud): region, how each device gets
 * its credential (auth, with the ProductSecret for dynamic registration), the registration URL,
 * the signature's HMAC, and the device and command limits. Each cloud's own table and checks
 * are in aliyun_config.c and tencent_config.c; the engine is config.c (config-private.h).
 */

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../config-private.h"
#include "gw/thingmodel.h"
#include "gw/util.h"

/* Both clouds' words: each cloud's close() refuses the other's. */
static const struct gw_config_word auth_words[] = {
	{ "device-secret", GW_CLOUD_AUTH_DEVICE_SECRET },
	{ "register", GW_CLOUD_AUTH_REGISTER },
	{ "regnwl", GW_CLOUD_AUTH_REGNWL },
	{ "psk", GW_CLOUD_AUTH_PSK },
	{ "certificate", GW_CLOUD_AUTH_CERTIFICATE },
	{ NULL, 0 },
};
static const struct gw_config_word sign_method_words[] = {
	{ "hmacsha256", GW_SIGN_HMAC_SHA256 },
	{ "hmacsha1", GW_SIGN_HMAC_SHA1 },
	{ "hmacmd5", GW_SIGN_HMAC_MD5 },
	{ NULL, 0 },
};

/* The registration request carries a sign that a man in the middle could replay: TLS only. */
static bool set_https_url(struct gw_config_parser *p, const struct gw_config_key *k, void *obj,
			  const char *v)
{
	if (strncmp(v, "https://", strlen("https://")) != 0 || !v[strlen("https://")]) {
		gw_config_report(p, gw_config_line(p), "%s: '%s' is not an https:// URL", k->name,
				 v);
		return false;
	}
	return gw_config_set_string(p, k, obj, v);
}

static const struct gw_config_word topology_words[] = {
	{ "direct", GW_TOPOLOGY_DIRECT },
	{ "gateway", GW_TOPOLOGY_GATEWAY },
	{ NULL, 0 },
};

/* idle_logout_s: 0 (never) or 60..86400 */
static bool set_idle_logout(struct gw_config_parser *p, const struct gw_config_key *k, void *obj,
			    const char *v)
{
	struct gw_config_uplink *u = obj;

	if (!gw_config_set_uint(p, k, obj, v))
		return false;
	if (u->cloud.idle_logout_s && u->cloud.idle_logout_s < 60) {
		gw_config_report(p, gw_config_line(p),
				 "%s: %s is too short (0 = never, or 60..86400)", k->name, v);
		return false;
	}
	return true;
}

static const struct gw_config_word model_refused_words[] = {
	{ "leave-out", GW_MODEL_LEAVE_OUT },
	{ "deadletter", GW_MODEL_DEADLETTER },
	{ NULL, 0 },
};

/* thing_model: a file the service may read, parsed now so that --check-config shows where it
 * is wrong: "thing_model: FILE:LINE:COLUMN: what" */
static bool set_thing_model(struct gw_config_parser *p, const struct gw_config_key *k, void *obj,
			    const char *v)
{
	struct gw_config_uplink *u = obj;
	struct gw_thingmodel_error err = { 0 };
	struct gw_thingmodel *m = NULL;
	struct stat st;
	int r;

	if (!gw_config_set_readable_file(p, k, obj, v))
		return false;
	r = gw_thingmodel_load(v, &m, &err);
	if (r < 0) {
		if (err.line && err.column)
			gw_config_report(p, gw_config_line(p), "%s: %s:%u:%u: %s", k->name, v,
					 err.line, err.column, err.text);
		else if (err.line)
			gw_config_report(p, gw_config_line(p), "%s: %s:%u: %s", k->name, v,
					 err.line, err.text);
		else
			gw_config_report(p, gw_config_line(p), "%s: %s: %s", k->name, v,
					 err.text[0] ? err.text : strerror(-r));
		return false;
	}
	gw_thingmodel_free(u->cloud.model);
	u->cloud.model = m;
	u->cloud.model_mtime_ns = stat(v, &st) == 0 ?
					  (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec :
					  0;
	return true;
}

#define U struct gw_config_uplink
/* region and auth have no default here: each cloud has its own. */
static const struct gw_config_key cloud_keys[] = {
	GW_CONFIG_KEY("region", gw_config_set_label, U, cloud.region, NULL, 0,
		      GW_CONFIG_CLOUD_ID_MAX, 0),
	GW_CONFIG_KEY_ENUM("auth", U, cloud.auth, "device-secret", auth_words),
	GW_CONFIG_KEY("product_secret", gw_config_set_secret, U, cloud.product_secret, NULL, 0, 0,
		      0),
	GW_CONFIG_KEY("product_secret_file", gw_config_set_secret_file, U, cloud.product_secret,
		      NULL, 0, 0, 0),
	GW_CONFIG_KEY("product_secret_credential", gw_config_set_secret_credential, U,
		      cloud.product_secret, NULL, 0, 0, 0),
	GW_CONFIG_KEY("register_url", set_https_url, U, cloud.register_url, NULL, 0,
		      GW_CONFIG_CLOUD_URL_MAX, 0),
	GW_CONFIG_KEY("register_ca_file", gw_config_set_readable_file, U, cloud.register_ca_file,
		      NULL, 0, 0, 0),
	GW_CONFIG_KEY_ENUM("sign_method", U, cloud.sign_method, "hmacsha256", sign_method_words),
	GW_CONFIG_KEY("max_devices", gw_config_set_uint, U, cloud.max_devices, "32", 1,
		      GW_CONFIG_GATEWAY_DEVICES_MAX, 0),
	/* commands from the cloud a second, and how many at once, before a node's serial line
	 * sees them; 0 = no limit */
	GW_CONFIG_KEY("command_rate", gw_config_set_uint, U, cloud.command_rate, "10", 0, 1000, 0),
	GW_CONFIG_KEY("command_burst", gw_config_set_uint, U, cloud.command_burst, "20", 1, 1000,
		      0),
	GW_CONFIG_KEY("thing_model", set_thing_model, U, cloud.thing_model, NULL, 0, 0, 0),
	GW_CONFIG_KEY_ENUM("thing_model_refused", U, cloud.model_refused, "leave-out",
			   model_refused_words),
	GW_CONFIG_KEY_ENUM("topology", U, cloud.topology, "direct", topology_words),
	GW_CONFIG_KEY("gateway_device_name", gw_config_set_label, U, cloud.gateway_device_name,
		      NULL, 0, GW_CONFIG_CLOUD_ID_MAX, 0),
	GW_CONFIG_KEY("gateway_secret_file", gw_config_set_secret_file, U, cloud.gateway_secret,
		      NULL, 0, 0, 0),
	GW_CONFIG_KEY("gateway_secret_credential", gw_config_set_secret_credential, U,
		      cloud.gateway_secret, NULL, 0, 0, 0),
	GW_CONFIG_KEY("idle_logout_s", set_idle_logout, U, cloud.idle_logout_s, "0", 0, 86400, 0),
};

const struct gw_config_keys gw_config_cloud_keys = { cloud_keys, N_ELEMENTS(cloud_keys) };

const char *gw_config_cloud_secret_source(struct gw_config_parser *p)
{
	static const char *const sources[] = {
		"product_secret",
		"product_secret_file",
		"product_secret_credential",
	};

	return gw_config_one_source(p, sources, N_ELEMENTS(sources),
				    "product_secret, product_secret_file and "
				    "product_secret_credential");
}

void gw_config_cloud_check_topology(struct gw_config_parser *p, const struct gw_config_uplink *u,
				    const char *id_key, uint32_t max_subdevices)
{
	static const char *const sources[] = { "gateway_secret_file", "gateway_secret_credential" };
	static const char *const gateway_keys[] = { "gateway_device_name", "gateway_secret_file",
						    "gateway_secret_credential", "idle_logout_s" };
	const char *first =
		gw_config_one_source(p, sources, N_ELEMENTS(sources),
				     "gateway_secret_file and gateway_secret_credential");
	uint32_t max = u->cloud.topology == GW_TOPOLOGY_GATEWAY ? max_subdevices :
								  GW_CONFIG_DIRECT_DEVICES_MAX;

	if (gw_config_bad(p, "topology"))
		return;
	if (u->cloud.max_devices > max && !gw_config_bad(p, "max_devices"))
		gw_config_report(p, gw_config_given(p, "max_devices"),
				 "max_devices: %" PRIu32 " is out of range for topology = %s "
				 "(1..%" PRIu32 ")",
				 u->cloud.max_devices,
				 u->cloud.topology == GW_TOPOLOGY_GATEWAY ? "gateway" : "direct",
				 max);
	if (u->cloud.topology != GW_TOPOLOGY_GATEWAY) {
		for (size_t i = 0; i < N_ELEMENTS(gateway_keys); i++)
			if (gw_config_given_ok(p, gateway_keys[i]))
				gw_config_report(p, gw_config_given(p, gateway_keys[i]),
						 "%s: only used with topology = gateway",
						 gateway_keys[i]);
		if (gw_config_given_ok(p, id_key))
			gw_config_report(p, gw_config_given(p, id_key),
					 "%s: only used with topology = gateway", id_key);
		return;
	}
	if (!gw_config_given(p, "gateway_device_name") && !gw_config_bad(p, "gateway_device_name"))
		gw_config_report(p, gw_config_given(p, "topology"),
				 "topology: gateway needs gateway_device_name");
	if (!gw_config_given(p, id_key) && !gw_config_bad(p, id_key))
		gw_config_report(p, gw_config_given(p, "topology"), "topology: gateway needs %s",
				 id_key);
	if (!first)
		gw_config_report(p, gw_config_given(p, "topology"),
				 "topology: gateway needs gateway_secret_file or "
				 "gateway_secret_credential (the gateway device's %s)",
				 u->type == GW_UPLINK_ALIYUN ? "DeviceSecret" : "PSK");
}

bool gw_config_cloud_equal(const struct gw_config_cloud *a, const struct gw_config_cloud *b)
{
	return gw_streq_null(a->region, b->region) && a->auth == b->auth &&
	       gw_streq_null(a->product_secret, b->product_secret) &&
	       gw_streq_null(a->register_url, b->register_url) &&
	       gw_streq_null(a->register_ca_file, b->register_ca_file) &&
	       a->sign_method == b->sign_method && a->max_devices == b->max_devices &&
	       a->command_rate == b->command_rate && a->command_burst == b->command_burst &&
	       gw_streq_null(a->thing_model, b->thing_model) &&
	       a->model_mtime_ns == b->model_mtime_ns && a->model_refused == b->model_refused &&
	       a->topology == b->topology &&
	       gw_streq_null(a->gateway_device_name, b->gateway_device_name) &&
	       gw_streq_null(a->gateway_secret, b->gateway_secret) &&
	       a->idle_logout_s == b->idle_logout_s;
}

void gw_config_cloud_check_model(struct gw_config_parser *p, const struct gw_config_uplink *u,
				 int format, const char *what)
{
	if (u->cloud.model && (int)u->cloud.model->format != format)
		gw_config_report(p, gw_config_given(p, "thing_model"),
				 "thing_model: %s is %s; type = %s needs %s", u->cloud.thing_model,
				 u->cloud.model->format == GW_THINGMODEL_ALIYUN ?
					 "an Aliyun TSL" :
					 "a Tencent data template",
				 u->type == GW_UPLINK_ALIYUN ? "aliyun" : "tencent", what);
	if (!u->cloud.model && gw_config_given_ok(p, "thing_model_refused"))
		gw_config_report(p, gw_config_given(p, "thing_model_refused"),
				 "thing_model_refused: only used with thing_model");
}

void gw_config_cloud_clear(struct gw_config_cloud *c)
{
	free(c->region);
	c->product_secret = gw_secret_free(c->product_secret);
	free(c->register_url);
	free(c->register_ca_file);
	free(c->thing_model);
	c->model = gw_thingmodel_free(c->model);
	free(c->gateway_device_name);
	c->gateway_secret = gw_secret_free(c->gateway_secret);
}
