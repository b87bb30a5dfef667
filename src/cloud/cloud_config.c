/* SPDX-License-Identifier: MIT */
/*
 * The keys both cloud uplink types take (struct gw_config_cloud): region, how each device gets
 * its credential (auth, with the ProductSecret for dynamic registration), the registration URL,
 * the signature's HMAC, and the device and command limits. Each cloud's own table and checks
 * are in aliyun_config.c and tencent_config.c; the engine is config.c (config-private.h).
 */

#include <stdlib.h>
#include <string.h>

#include "../config-private.h"
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
	GW_CONFIG_KEY_ENUM("sign_method", U, cloud.sign_method, "hmacsha256", sign_method_words),
	GW_CONFIG_KEY("max_devices", gw_config_set_uint, U, cloud.max_devices, "32", 1, 256, 0),
	/* commands from the cloud a second, and how many at once, before a node's serial line
	 * sees them; 0 = no limit */
	GW_CONFIG_KEY("command_rate", gw_config_set_uint, U, cloud.command_rate, "10", 0, 1000, 0),
	GW_CONFIG_KEY("command_burst", gw_config_set_uint, U, cloud.command_burst, "20", 1, 1000,
		      0),
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

bool gw_config_cloud_equal(const struct gw_config_cloud *a, const struct gw_config_cloud *b)
{
	return gw_streq_null(a->region, b->region) && a->auth == b->auth &&
	       gw_streq_null(a->product_secret, b->product_secret) &&
	       gw_streq_null(a->register_url, b->register_url) &&
	       a->sign_method == b->sign_method && a->max_devices == b->max_devices &&
	       a->command_rate == b->command_rate && a->command_burst == b->command_burst;
}

void gw_config_cloud_clear(struct gw_config_cloud *c)
{
	free(c->region);
	c->product_secret = gw_secret_free(c->product_secret);
	free(c->register_url);
}
