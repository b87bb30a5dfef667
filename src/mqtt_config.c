/* SPDX-License-Identifier: MIT */
/*
 * The keys of a type = mqtt uplink (struct gw_config_mqtt) and their checks: TLS with a CA of
 * the user's broker, an optional client certificate, user name and password, client id, QoS,
 * the topic template, delivery order and dead-lettering. The engine is config.c
 * (config-private.h).
 */

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config-private.h"
#include "gw/util.h"

#define CLIENT_ID_MAX 64 /* the broker limit we promise */

static const struct gw_config_word order_words[] = {
	{ "fifo", GW_ORDER_FIFO },
	{ "live-first", GW_ORDER_LIVE_FIRST },
	{ NULL, 0 },
};
static const struct gw_config_word discovery_words[] = {
	{ "none", GW_DISCOVERY_NONE },
	{ "homeassistant", GW_DISCOVERY_HOMEASSISTANT },
	{ NULL, 0 },
};
static const char *const no_placeholders[] = { NULL };
static const char *const topic_placeholders[] = {
	"device", "uid", "port", "addr", "kind", "uplink", NULL,
};

#define U struct gw_config_uplink
/* tls and client_id have no default here: they derive from other keys. */
static const struct gw_config_key mqtt_keys[] = {
	GW_CONFIG_KEY("tls", gw_config_set_tls, U, tls, NULL, 0, 0, 0),
	GW_CONFIG_KEY("cert_file", gw_config_set_readable_file, U, mqtt.cert_file, NULL, 0, 0, 0),
	GW_CONFIG_KEY("key_file", gw_config_set_private_file, U, mqtt.key_file, NULL, 0, 0, 0),
	GW_CONFIG_KEY("username", gw_config_set_string, U, mqtt.username, NULL, 0,
		      GW_CONFIG_STRING_MAX, 0),
	GW_CONFIG_KEY("password", gw_config_set_secret, U, mqtt.password, NULL, 0, 0, 0),
	GW_CONFIG_KEY("password_file", gw_config_set_secret_file, U, mqtt.password, NULL, 0, 0, 0),
	GW_CONFIG_KEY("password_credential", gw_config_set_secret_credential, U, mqtt.password,
		      NULL, 0, 0, 0),
	GW_CONFIG_KEY("client_id", gw_config_set_string, U, mqtt.client_id, NULL, 0, CLIENT_ID_MAX,
		      0),
	GW_CONFIG_KEY("qos", gw_config_set_uint, U, mqtt.qos, "1", 0, 1, 0),
	GW_CONFIG_KEY("clean_session", gw_config_set_bool, U, mqtt.clean_session, "yes", 0, 0, 0),
	GW_CONFIG_KEY_TEMPLATE("topic", U, mqtt.topic, "sensorgw/{device}/{kind}",
			       topic_placeholders, GW_KF_TOPIC),
	GW_CONFIG_KEY_ENUM("order", U, mqtt.order, "fifo", order_words),
	GW_CONFIG_KEY("deadletter_after", gw_config_set_uint, U, mqtt.deadletter_after, "5", 1, 100,
		      0),
	GW_CONFIG_KEY_ENUM("discovery", U, mqtt.discovery, "none", discovery_words),
	GW_CONFIG_KEY_TEMPLATE("discovery_prefix", U, mqtt.discovery_prefix, "homeassistant",
			       no_placeholders, GW_KF_TOPIC),
	GW_CONFIG_KEY("node_timeout_s", gw_config_set_uint, U, mqtt.node_timeout_s, "600", 0, 86400,
		      0),
};

static const struct gw_config_keys mqtt_own = { mqtt_keys, N_ELEMENTS(mqtt_keys) };

static void default_client_id(struct gw_config_uplink *u)
{
	char host[HOST_NAME_MAX + 1] = "localhost";
	char id[CLIENT_ID_MAX + 1];

	if (gethostname(host, sizeof(host)) < 0 || !host[0])
		strcpy(host, "localhost");
	host[sizeof(host) - 1] = '\0';
	/* a long host name is cut, not refused */
	gw_bprintf(id, sizeof(id), "sensorgw-%s-%s", host, u->name);
	u->mqtt.client_id = gw_strdup(id);
}

static void close_mqtt(struct gw_config_parser *p, struct gw_config_uplink *u)
{
	static const char *const sources[] = { "password", "password_file", "password_credential" };
	const char *first;

	if (u->tls_psk) {
		if (gw_config_given(p, "type"))
			gw_config_report(p, gw_config_given(p, "tls"),
					 "tls: psk (TLS-PSK) is for type = tencent");
		u->tls_psk = false;
		u->tls = false;
	}
	if (!gw_config_given(p, "tls"))
		u->tls = u->ca_file != NULL;
	else if (u->tls && !gw_config_given(p, "ca_file") && !gw_config_bad(p, "tls"))
		gw_config_report(p, gw_config_given(p, "tls"), "tls: yes requires ca_file");
	if (!gw_config_given(p, "port"))
		u->port = u->tls ? 8883 : 1883;

	if (gw_config_given(p, "cert_file") && !gw_config_given(p, "key_file"))
		gw_config_report(p, gw_config_given(p, "cert_file"), "cert_file: needs key_file");
	if (gw_config_given(p, "key_file") && !gw_config_given(p, "cert_file"))
		gw_config_report(p, gw_config_given(p, "key_file"), "key_file: needs cert_file");
	if (gw_config_given(p, "cert_file") && gw_config_given_ok(p, "tls") && !u->tls)
		gw_config_report(p, gw_config_given(p, "cert_file"),
				 "cert_file: a client certificate needs tls = yes");

	first = gw_config_one_source(p, sources, N_ELEMENTS(sources),
				     "password, password_file and password_credential");
	if (first && !gw_config_given(p, "username"))
		gw_config_report(p, gw_config_given(p, first), "%s: needs username", first);

	if (!u->mqtt.client_id)
		default_client_id(u);
}

#define SAME(f) (a->mqtt.f == b->mqtt.f)
#define SAME_STR(f) gw_streq_null(a->mqtt.f, b->mqtt.f)

static bool mqtt_equal(const struct gw_config_uplink *a, const struct gw_config_uplink *b)
{
	return SAME_STR(cert_file) && SAME_STR(key_file) && SAME_STR(username) &&
	       SAME_STR(password) && SAME_STR(client_id) && SAME(qos) && SAME(clean_session) &&
	       SAME_STR(topic) && SAME(order) && SAME(deadletter_after) && SAME(discovery) &&
	       SAME_STR(discovery_prefix) && SAME(node_timeout_s);
}

static void mqtt_clear(struct gw_config_uplink *u)
{
	free(u->mqtt.cert_file);
	free(u->mqtt.key_file);
	free(u->mqtt.username);
	u->mqtt.password = gw_secret_free(u->mqtt.password);
	free(u->mqtt.client_id);
	free(u->mqtt.topic);
	free(u->mqtt.discovery_prefix);
}

const struct gw_config_uplink_type gw_config_mqtt_type = {
	.name = "mqtt",
	.type = GW_UPLINK_MQTT,
	.keys = { &mqtt_own },
	.close = close_mqtt,
	.equal = mqtt_equal,
	.clear = mqtt_clear,
};
