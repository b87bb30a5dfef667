/* SPDX-License-Identifier: MIT */
/*
 * The keys of a type = aliyun uplink (struct gw_config_aliyun, beside the clouds' shared
 * struct gw_config_cloud) and the platform's rules for them (docs/protocols/aliyun.md §4): TLS
 * only (plain TCP is closed to new devices), keepalive 30..1200 s, 30 messages per second per
 * device, device-secret, register or regnwl. host and port default to the platform's endpoint,
 * which the driver derives from region or instance_id. The engine is config.c
 * (config-private.h).
 */

#include <inttypes.h>
#include <stdlib.h>

#include "../config-private.h"
#include "gw-build.h"
#include "gw/aliyun.h"
#include "gw/thingmodel.h"
#include "gw/util.h"

_Static_assert(GW_CONFIG_CLOUD_ID_MAX == GW_ALIYUN_ID_MAX - 1, "the platform's id length");
_Static_assert(GW_CONFIG_CLOUD_URL_MAX == GW_ALIYUN_URL_MAX - 1, "the platform's URL length");
_Static_assert((int)GW_SIGN_HMAC_SHA256 == (int)GW_ALIYUN_HMAC_SHA256 &&
		       (int)GW_SIGN_HMAC_SHA1 == (int)GW_ALIYUN_HMAC_SHA1 &&
		       (int)GW_SIGN_HMAC_MD5 == (int)GW_ALIYUN_HMAC_MD5,
	       "config's sign_method is the protocol module's (gw_aliyun_sign_method_of())");
_Static_assert((int)GW_EVENT_PARAMS_VALUE_TIME == (int)GW_ALIYUN_EVENT_VALUE_TIME &&
		       (int)GW_EVENT_PARAMS_OUTPUTS == (int)GW_ALIYUN_EVENT_OUTPUTS,
	       "config's event_params is the message builder's form (aliyun_uplink.c)");

static const struct gw_config_word register_via_words[] = {
	{ "auto", GW_REGISTER_VIA_AUTO },
	{ "https", GW_REGISTER_VIA_HTTPS },
	{ "mqtt", GW_REGISTER_VIA_MQTT },
	{ NULL, 0 },
};

/* The SDKs' form and today's (docs/protocols/aliyun.md §5, event post). */
static const struct gw_config_word event_params_words[] = {
	{ "value-time", GW_EVENT_PARAMS_VALUE_TIME },
	{ "outputs", GW_EVENT_PARAMS_OUTPUTS },
	{ NULL, 0 },
};

#define U struct gw_config_uplink
static const struct gw_config_key aliyun_keys[] = {
	GW_CONFIG_KEY("product_key", gw_config_set_label, U, aliyun.product_key, NULL, 0,
		      GW_CONFIG_CLOUD_ID_MAX, 0),
	GW_CONFIG_KEY("gateway_product_key", gw_config_set_label, U, aliyun.gateway_product_key,
		      NULL, 0, GW_CONFIG_CLOUD_ID_MAX, 0),
	GW_CONFIG_KEY("instance_id", gw_config_set_label, U, aliyun.instance_id, NULL, 0,
		      GW_CONFIG_CLOUD_ID_MAX, 0),
	GW_CONFIG_KEY_ENUM("register_via", U, aliyun.register_via, "auto", register_via_words),
	GW_CONFIG_KEY_ENUM("event_params", U, aliyun.event_params, "value-time",
			   event_params_words),
};

static const struct gw_config_keys aliyun_own = { aliyun_keys, N_ELEMENTS(aliyun_keys) };

/* auth and the keys that go with it */
static void close_auth(struct gw_config_parser *p, struct gw_config_uplink *u)
{
	static const char *const https_keys[] = { "register_url", "register_ca_file" };
	static const char *const direct_keys[] = { "register_via", "register_url",
						   "register_ca_file" };
	const char *first = gw_config_cloud_secret_source(p);
	const char *why;
	bool dynamic;

	if (gw_config_bad(p, "auth"))
		return;
	if (u->cloud.auth == GW_CLOUD_AUTH_PSK || u->cloud.auth == GW_CLOUD_AUTH_CERTIFICATE) {
		gw_config_report(p, gw_config_given(p, "auth"),
				 "auth: %s is for type = tencent "
				 "(aliyun: device-secret, register or regnwl)",
				 u->cloud.auth == GW_CLOUD_AUTH_PSK ? "psk" : "certificate");
		return;
	}
	dynamic = u->cloud.auth == GW_CLOUD_AUTH_REGISTER || u->cloud.auth == GW_CLOUD_AUTH_REGNWL;
	if (u->cloud.topology == GW_TOPOLOGY_GATEWAY) {
		/* through the gateway (docs/protocols/gateway.md §G13): thing/sub/register needs
		 * no sign, product_register is signed with the ProductSecret */
		if (u->cloud.auth == GW_CLOUD_AUTH_REGNWL && !first)
			gw_config_report(p, gw_config_given(p, "auth"),
					 "auth: regnwl needs product_secret_file or "
					 "product_secret_credential");
		if (u->cloud.auth != GW_CLOUD_AUTH_REGNWL && first && gw_config_given_ok(p, first))
			gw_config_report(p, gw_config_given(p, first),
					 "%s: only used with auth = regnwl with topology = gateway",
					 first);
		for (size_t i = 0; i < N_ELEMENTS(direct_keys); i++)
			if (gw_config_given_ok(p, direct_keys[i]))
				gw_config_report(p, gw_config_given(p, direct_keys[i]),
						 "%s: not used with topology = gateway (sub-devices "
						 "register through the gateway's session)",
						 direct_keys[i]);
		return;
	}
	if (dynamic && !first)
		gw_config_report(p, gw_config_given(p, "auth"),
				 "auth: %s needs product_secret_file or product_secret_credential",
				 u->cloud.auth == GW_CLOUD_AUTH_REGNWL ? "regnwl" : "register");
	if (!dynamic && first && gw_config_given_ok(p, first))
		gw_config_report(p, gw_config_given(p, first),
				 "%s: only used with auth = register or regnwl", first);
	/* regnwl exists over MQTT only (docs/protocols/aliyun.md §1): no HTTPS endpoint to
	 * choose */
	why = u->cloud.auth == GW_CLOUD_AUTH_REGNWL ? " (regnwl registers over MQTT only)" : "";
	if (u->cloud.auth != GW_CLOUD_AUTH_REGISTER && gw_config_given_ok(p, "register_via"))
		gw_config_report(p, gw_config_given(p, "register_via"),
				 "register_via: only used with auth = register%s", why);
	for (size_t i = 0; i < N_ELEMENTS(https_keys); i++) {
		const char *k = https_keys[i];

		if (u->cloud.auth != GW_CLOUD_AUTH_REGISTER && gw_config_given_ok(p, k))
			gw_config_report(p, gw_config_given(p, k),
					 "%s: only used with auth = register%s", k, why);
		else if (u->aliyun.register_via == GW_REGISTER_VIA_MQTT &&
			 gw_config_given_ok(p, k) && !gw_config_bad(p, "register_via"))
			gw_config_report(p, gw_config_given(p, k),
					 "%s: not used with register_via = mqtt (line %u)", k,
					 gw_config_given(p, "register_via"));
	}
}

static void close_aliyun(struct gw_config_parser *p, struct gw_config_uplink *u)
{
	u->tls = true;
	if (!gw_config_given(p, "product_key") && !gw_config_bad(p, "product_key"))
		gw_config_report(p, gw_config_section_line(p), "%s needs product_key",
				 gw_config_title(p));
	/* Without ca_file: the platform's roots installed with sensorgw
	 * (conf/ca/aliyun-iot-roots.pem: GlobalSign Root CA R1 and R6, Aliyun IoT Root CA), which
	 * cover every port (docs/protocols/aliyun.md §4.4). */
	if (!gw_config_given(p, "ca_file"))
		gw_config_default_ca(p, u, GW_ALIYUN_CA_FILE);
	if (gw_config_given(p, "region") && gw_config_given(p, "instance_id"))
		gw_config_report(p, gw_config_given(p, "instance_id"),
				 "instance_id: cannot be combined with region (line %u)",
				 gw_config_given(p, "region"));
	if (!gw_config_given(p, "host")) {
		free(u->host);
		u->host = NULL;
	}
	if (!gw_config_given(p, "keepalive"))
		u->keepalive = 300;
	else if (!gw_config_bad(p, "keepalive") && (u->keepalive < 30 || u->keepalive > 1200))
		gw_config_report(p, gw_config_given(p, "keepalive"),
				 "keepalive: %" PRIu32
				 " is out of range for type = aliyun (30..1200)",
				 u->keepalive);
	if (!gw_config_given(p, "max_rate"))
		u->max_rate = 30;
	else if (!gw_config_bad(p, "max_rate") && u->max_rate > GW_CONFIG_ALIYUN_MAX_RATE)
		/* per device, each with a ring of that many send times */
		gw_config_report(p, gw_config_given(p, "max_rate"),
				 "max_rate: %" PRIu32 " is out of range for type = aliyun (0..%d, "
				 "per device)",
				 u->max_rate, GW_CONFIG_ALIYUN_MAX_RATE);
	gw_config_cloud_check_model(p, u, GW_THINGMODEL_ALIYUN, "the TSL from the Aliyun console");
	/* docs/protocols/gateway.md §G14 */
	gw_config_cloud_check_topology(p, u, "gateway_product_key", 2000);
	close_auth(p, u);
}

static bool aliyun_equal(const struct gw_config_uplink *a, const struct gw_config_uplink *b)
{
	return gw_config_cloud_equal(&a->cloud, &b->cloud) &&
	       gw_streq_null(a->aliyun.product_key, b->aliyun.product_key) &&
	       gw_streq_null(a->aliyun.gateway_product_key, b->aliyun.gateway_product_key) &&
	       gw_streq_null(a->aliyun.instance_id, b->aliyun.instance_id) &&
	       a->aliyun.register_via == b->aliyun.register_via &&
	       a->aliyun.event_params == b->aliyun.event_params;
}

static void aliyun_clear(struct gw_config_uplink *u)
{
	gw_config_cloud_clear(&u->cloud);
	free(u->aliyun.product_key);
	free(u->aliyun.gateway_product_key);
	free(u->aliyun.instance_id);
}

const struct gw_config_uplink_type gw_config_aliyun_type = {
	.name = "aliyun",
	.type = GW_UPLINK_ALIYUN,
	.keys = { &gw_config_cloud_keys, &aliyun_own },
	.close = close_aliyun,
	.equal = aliyun_equal,
	.clear = aliyun_clear,
};
