/* SPDX-License-Identifier: MIT */
/*
 * The keys of a type = tencent uplink (struct gw_config_tencent, beside the clouds' shared
 * struct gw_config_cloud; it also takes tls) and the platform's rules for them
 * (docs/protocols/tencent.md §1): keepalive up to 900 s, 30 messages per second per device, one
 * region of docs/protocols/tencent.md §1.5, hmacsha256 or hmacsha1. auth = psk or certificate
 * read the credential store; register fetches it with the ProductSecret. The engine is
 * config.c (config-private.h).
 */

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../config-private.h"
#include "gw-build.h"
#include "gw/tencent.h"
#include "gw/thingmodel.h"
#include "gw/util.h"

_Static_assert((int)GW_REGISTER_API_V2 == (int)GW_TENCENT_DYNREG_V2 &&
		       (int)GW_REGISTER_API_LEGACY == (int)GW_TENCENT_DYNREG_LEGACY,
	       "config's register_api is the protocol module's");

static const struct gw_config_word register_api_words[] = {
	{ "v2", GW_REGISTER_API_V2 },
	{ "legacy", GW_REGISTER_API_LEGACY },
	{ NULL, 0 },
};

/* Tencent ProductIds are DNS labels of the MQTT host: the pure module's rule. */
static bool set_product_id(struct gw_config_parser *p, const struct gw_config_key *k, void *obj,
			   const char *v)
{
	char reason[GW_TENCENT_REASON_MAX] = "";

	if (gw_tencent_check_product_id(v, reason) < 0) {
		gw_config_report(p, gw_config_line(p), "%s: '%s' is not valid: %s", k->name, v,
				 reason);
		return false;
	}
	return gw_config_set_string(p, k, obj, v);
}

/* expiry: Unix seconds (0 = the default), or auto */
static bool set_expiry(struct gw_config_parser *p, const struct gw_config_key *k, void *obj,
		       const char *v)
{
	struct gw_config_uplink *u = obj;

	u->tencent.expiry_auto = strcmp(v, "auto") == 0;
	if (u->tencent.expiry_auto) {
		u->tencent.expiry = 0;
		return true;
	}
	return gw_config_set_uint(p, k, obj, v);
}

#define U struct gw_config_uplink
/* tls has no default here: it derives from other keys. */
static const struct gw_config_key tencent_keys[] = {
	GW_CONFIG_KEY("tls", gw_config_set_tls, U, tls, NULL, 0, 0, 0),
	GW_CONFIG_KEY("product_id", set_product_id, U, tencent.product_id, NULL, 0,
		      GW_TENCENT_PRODUCT_ID_MAX - 1, 0),
	GW_CONFIG_KEY("gateway_product_id", set_product_id, U, tencent.gateway_product_id, NULL, 0,
		      GW_TENCENT_PRODUCT_ID_MAX - 1, 0),
	GW_CONFIG_KEY("sdkappid", gw_config_set_uint, U, tencent.sdkappid, "12010126", 1,
		      UINT32_MAX, 0),
	/* 0: the default far-future expiry; auto: now + 600 s with a synchronised clock;
	 * otherwise any later Unix time (docs/protocols/tencent.md §1.2) */
	GW_CONFIG_KEY("expiry", set_expiry, U, tencent.expiry, "0", 0, UINT64_MAX, 0),
	GW_CONFIG_KEY_ENUM("register_api", U, tencent.register_api, "v2", register_api_words),
};

static const struct gw_config_keys tencent_own = { tencent_keys, N_ELEMENTS(tencent_keys) };

/* Host and port: the platform's MQTT host for product_id and region (docs/protocols/tencent.md
 * §1.5), 8883 with TLS (docs/protocols/tencent.md §1.4); plain TCP (1883) only when tls = false
 * is written down. */
static void close_endpoint(struct gw_config_parser *p, struct gw_config_uplink *u)
{
	char host[GW_TENCENT_HOST_MAX];
	const char *pid = u->tencent.product_id;

	if (!gw_config_given(p, "tls"))
		u->tls = true;
	if (!u->tls && gw_config_given_ok(p, "ca_file"))
		gw_config_report(p, gw_config_given(p, "ca_file"),
				 "ca_file: not used with tls = no (line %u)",
				 gw_config_given(p, "tls"));
	/* docs/protocols/tencent.md §1.4: TLS-PSK authenticates both ends with the device's PSK;
	 * no certificates */
	if (u->tls_psk && gw_config_given_ok(p, "ca_file"))
		gw_config_report(p, gw_config_given(p, "ca_file"),
				 "ca_file: not used with tls = psk (line %u): TLS-PSK has no "
				 "certificates",
				 gw_config_given(p, "tls"));
	/* Without ca_file: the platform's root installed with sensorgw
	 * (conf/ca/tencent-iot-roots.pem: the "Tencent Iothub" root of docs/protocols/tencent.md
	 * §1.6, which no system trust store has). */
	if (u->tls && !u->tls_psk && !gw_config_given(p, "ca_file"))
		gw_config_default_ca(p, u, GW_TENCENT_CA_FILE);
	if (!gw_config_given(p, "port"))
		u->port = u->tls ? GW_TENCENT_PORT_TLS : GW_TENCENT_PORT_TCP;
	else if (u->tls && u->port == GW_TENCENT_PORT_TCP && !gw_config_bad(p, "port"))
		gw_config_report(p, gw_config_given(p, "port"),
				 "port: %d is the platform's plain-TCP port; with TLS it is %d "
				 "(plain TCP needs tls = no, written down)",
				 GW_TENCENT_PORT_TCP, GW_TENCENT_PORT_TLS);
	if (gw_config_given(p, "host"))
		return;
	free(u->host);
	u->host = NULL;
	/* topology = gateway: the one session is the gateway's, on its own product's host */
	if (u->cloud.topology == GW_TOPOLOGY_GATEWAY && u->tencent.gateway_product_id)
		pid = u->tencent.gateway_product_id;
	if (pid && !gw_config_bad(p, "region") &&
	    gw_tencent_format_host(pid, u->cloud.region, host, sizeof(host)) > 0)
		u->host = gw_strdup(host);
}

static void close_limits(struct gw_config_parser *p, struct gw_config_uplink *u)
{
	char reason[GW_TENCENT_REASON_MAX] = "";

	if (!gw_config_given(p, "keepalive"))
		u->keepalive = 240;
	else if (!gw_config_bad(p, "keepalive") &&
		 gw_tencent_check_keepalive(u->keepalive, reason) < 0)
		gw_config_report(p, gw_config_given(p, "keepalive"),
				 "keepalive: %" PRIu32
				 " is out of range for type = tencent (5..%d)",
				 u->keepalive, GW_TENCENT_KEEPALIVE_MAX);
	if (!gw_config_given(p, "max_rate"))
		u->max_rate = 30;
	else if (!gw_config_bad(p, "max_rate") && (u->max_rate < 1 || u->max_rate > 30))
		gw_config_report(p, gw_config_given(p, "max_rate"),
				 "max_rate: %" PRIu32 " is out of range for type = tencent (1..30 "
				 "messages per second per device)",
				 u->max_rate);
	if (!gw_config_bad(p, "sign_method") && u->cloud.sign_method == GW_SIGN_HMAC_MD5)
		gw_config_report(p, gw_config_given(p, "sign_method"),
				 "sign_method: hmacmd5 is not "
				 "one of hmacsha256, hmacsha1 (type = tencent)");
	if (u->tencent.expiry && u->tencent.expiry <= (uint64_t)time(NULL) &&
	    !gw_config_bad(p, "expiry"))
		gw_config_report(p, gw_config_given(p, "expiry"),
				 "expiry: %" PRIu64 " is in the "
				 "past (0 = the default, 2038-01-19)",
				 u->tencent.expiry);
}

/* auth and the keys that go with it */
static void close_auth(struct gw_config_parser *p, struct gw_config_uplink *u)
{
	static const char *const reg_keys[] = { "register_api", "register_url",
						"register_ca_file" };
	const char *first = gw_config_cloud_secret_source(p);
	char reason[GW_TENCENT_REASON_MAX] = "";
	enum gw_cloud_auth auth;

	if (gw_config_bad(p, "auth"))
		return;
	if (!gw_config_given(p, "auth"))
		u->cloud.auth = GW_CLOUD_AUTH_PSK;
	auth = u->cloud.auth;
	if (auth != GW_CLOUD_AUTH_PSK && auth != GW_CLOUD_AUTH_CERTIFICATE &&
	    auth != GW_CLOUD_AUTH_REGISTER) {
		gw_config_report(p, gw_config_given(p, "auth"),
				 "auth: %s is for type = aliyun "
				 "(tencent: psk, certificate or register)",
				 auth == GW_CLOUD_AUTH_REGNWL ? "regnwl" : "device-secret");
		return;
	}
	if (auth == GW_CLOUD_AUTH_CERTIFICATE && u->cloud.topology == GW_TOPOLOGY_GATEWAY &&
	    !gw_config_bad(p, "topology"))
		gw_config_report(p, gw_config_given(p, "auth"),
				 "auth: certificate cannot be used with topology = gateway (line "
				 "%u): bind is signed with each sub-device's PSK (psk or register)",
				 gw_config_given(p, "topology"));
	if (auth == GW_CLOUD_AUTH_CERTIFICATE && !u->tls && !gw_config_bad(p, "tls"))
		gw_config_report(p, gw_config_given(p, "auth"),
				 "auth: certificate needs TLS (tls = no at line %u)",
				 gw_config_given(p, "tls"));
	if (auth == GW_CLOUD_AUTH_CERTIFICATE && u->tls_psk)
		gw_config_report(p, gw_config_given(p, "auth"),
				 "auth: certificate needs "
				 "certificate TLS, not tls = psk (line %u), which logs in with a PSK",
				 gw_config_given(p, "tls"));
	if (auth != GW_CLOUD_AUTH_REGISTER) {
		if (first && gw_config_given_ok(p, first))
			gw_config_report(p, gw_config_given(p, first),
					 "%s: only used with auth = register", first);
		for (size_t i = 0; i < N_ELEMENTS(reg_keys); i++)
			if (gw_config_given_ok(p, reg_keys[i]))
				gw_config_report(p, gw_config_given(p, reg_keys[i]),
						 "%s: only used with auth = register", reg_keys[i]);
		return;
	}
	if (!first)
		gw_config_report(p, gw_config_given(p, "auth"),
				 "auth: register needs "
				 "product_secret_file or product_secret_credential");
	else if (u->cloud.product_secret &&
		 gw_tencent_check_product_secret(u->cloud.product_secret, reason) < 0)
		gw_config_report(p, gw_config_given(p, first), "%s: %s", first, reason);
	if (u->tencent.register_api == GW_REGISTER_API_LEGACY &&
	    u->cloud.sign_method != GW_SIGN_HMAC_SHA1 && gw_config_given_ok(p, "sign_method"))
		gw_config_report(p, gw_config_given(p, "sign_method"),
				 "sign_method: the legacy "
				 "registration API signs with hmacsha1 only");
}

static void close_tencent(struct gw_config_parser *p, struct gw_config_uplink *u)
{
	if (!gw_config_given(p, "product_id") && !gw_config_bad(p, "product_id"))
		gw_config_report(p, gw_config_section_line(p), "%s needs product_id",
				 gw_config_title(p));
	if (!gw_config_given(p, "region"))
		u->cloud.region = gw_strdup(GW_TENCENT_DEFAULT_REGION);
	else if (!gw_config_bad(p, "region") && gw_tencent_check_region(u->cloud.region) < 0)
		gw_config_report(p, gw_config_given(p, "region"),
				 "region: '%s' is not a Tencent "
				 "region (ap-guangzhou, us-east, europe, ap-bangkok)",
				 u->cloud.region);
	close_endpoint(p, u);
	close_limits(p, u);
	gw_config_cloud_check_model(p, u, GW_THINGMODEL_TENCENT,
				    "the data template from the Tencent console");
	/* docs/protocols/gateway.md §G18 */
	gw_config_cloud_check_topology(p, u, "gateway_product_id", 1500);
	close_auth(p, u);
}

static bool tencent_equal(const struct gw_config_uplink *a, const struct gw_config_uplink *b)
{
	return gw_config_cloud_equal(&a->cloud, &b->cloud) &&
	       gw_streq_null(a->tencent.product_id, b->tencent.product_id) &&
	       gw_streq_null(a->tencent.gateway_product_id, b->tencent.gateway_product_id) &&
	       a->tencent.register_api == b->tencent.register_api &&
	       a->tencent.sdkappid == b->tencent.sdkappid &&
	       a->tencent.expiry == b->tencent.expiry &&
	       a->tencent.expiry_auto == b->tencent.expiry_auto;
}

static void tencent_clear(struct gw_config_uplink *u)
{
	gw_config_cloud_clear(&u->cloud);
	free(u->tencent.product_id);
	free(u->tencent.gateway_product_id);
}

const struct gw_config_uplink_type gw_config_tencent_type = {
	.name = "tencent",
	.type = GW_UPLINK_TENCENT,
	.keys = { &gw_config_cloud_keys, &tencent_own },
	.close = close_tencent,
	.equal = tencent_equal,
	.clear = tencent_clear,
};
