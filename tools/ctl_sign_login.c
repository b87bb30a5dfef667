/* SPDX-License-Identifier: MIT */
/*
 * sensorgwctl sign aliyun and sign tencent: the MQTT CONNECT parameters of one device logging in
 * directly (docs/protocols/aliyun.md §1, docs/protocols/tencent.md §1.2), one key=value a line,
 * exactly as sensorgwd would send them, to compare with a console, an SDK or MQTT.fx. Variants of
 * the sign engine (ctl_sign.c).
 */

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "gw/aliyun.h"
#include "gw/tencent.h"

#define ALIYUN_CMD "sign aliyun"
#define ALIYUN_SYNOPSIS                                                   \
	"sensorgwctl sign aliyun --product-key PK --device-name DN\n"     \
	"         (--device-secret[-file] DS\n"                           \
	"          | --product-secret[-file] PS --auth register|regnwl\n" \
	"          | --device-token[-file] TOKEN --auth connwl --client-id ID) [OPTION]..."

static void aliyun_help(void)
{
	printf("Usage: " ALIYUN_SYNOPSIS "\n"
	       "Print the MQTT CONNECT parameters of one device on Alibaba Cloud IoT Platform,\n"
	       "one key=value per line: host, port, client_id, username, password.\n"
	       "\n"
	       "Device:\n"
	       "      --product-key PK          the product's ProductKey\n"
	       "      --device-name DN          the device's DeviceName\n"
	       "Secret (exactly one; FILE '-' is standard input):\n"
	       "      --device-secret DS        DeviceSecret: a normal login (--auth device)\n"
	       "      --device-secret-file FILE\n"
	       "      --product-secret PS       ProductSecret: dynamic registration, --auth\n"
	       "      --product-secret-file FILE  register (pre-registered) or regnwl (without)\n"
	       "      --device-token TOKEN      DeviceToken from regnwl: --auth connwl\n"
	       "      --device-token-file FILE\n"
	       "Options:\n"
	       "      --auth MODE               device, register, regnwl or connwl\n"
	       "      --client-id ID            device: the client id (default PK.DN);\n"
	       "                                connwl: the ClientID regnwl returned\n"
	       "      --timestamp MS            device: a timestamp to send and sign (default: none)\n"
	       "      --random R                register, regnwl: letters and digits\n"
	       "                                (default: %d fresh random ones)\n"
	       "      --sign-method M           hmacsha256 (default), hmacsha1 or hmacmd5\n"
	       "      --region R                legacy endpoint PK.iot-as-mqtt.R.aliyuncs.com\n"
	       "                                (default " GW_ALIYUN_DEFAULT_REGION ")\n"
	       "      --instance-id ID          instance endpoint ID.mqtt.iothub.aliyuncs.com\n"
	       "      --securemode N            device: 2 (TLS, default) or 3 (TCP);\n"
	       "                                register, regnwl: 2 (default) or -2\n"
	       "      --port N                  override the port (default: 443 legacy TLS,\n"
	       "                                8883 instance TLS, 1883 TCP)\n"
	       "  -h, --help                    show this help and exit\n"
	       "\n"
	       "A secret on the command line lands in the shell history and is visible in ps(1);\n"
	       "the *-file options keep it out of both.\n",
	       GW_ALIYUN_RANDOM_LEN);
}

enum {
	OPT_PRODUCT_KEY = 256,
	OPT_DEVICE_NAME,
	OPT_DEVICE_SECRET,
	OPT_DEVICE_SECRET_FILE,
	OPT_PRODUCT_SECRET,
	OPT_PRODUCT_SECRET_FILE,
	OPT_DEVICE_TOKEN,
	OPT_DEVICE_TOKEN_FILE,
	OPT_AUTH,
	OPT_CLIENT_ID,
	OPT_TIMESTAMP,
	OPT_RANDOM,
	OPT_SIGN_METHOD,
	OPT_REGION,
	OPT_INSTANCE_ID,
	OPT_SECUREMODE,
	OPT_PORT,
};

/* Which kind of secret was given, and so which auth modes fit it. */
enum secret_kind {
	SECRET_NONE,
	SECRET_DEVICE,
	SECRET_PRODUCT,
	SECRET_TOKEN,
};

struct aliyun_args {
	struct gw_aliyun_login login;
	bool have_auth;
	bool have_sign_method;
};

static const struct option aliyun_options[] = {
	{ "product-key", required_argument, NULL, OPT_PRODUCT_KEY },
	{ "device-name", required_argument, NULL, OPT_DEVICE_NAME },
	{ "device-secret", required_argument, NULL, OPT_DEVICE_SECRET },
	{ "device-secret-file", required_argument, NULL, OPT_DEVICE_SECRET_FILE },
	{ "product-secret", required_argument, NULL, OPT_PRODUCT_SECRET },
	{ "product-secret-file", required_argument, NULL, OPT_PRODUCT_SECRET_FILE },
	{ "device-token", required_argument, NULL, OPT_DEVICE_TOKEN },
	{ "device-token-file", required_argument, NULL, OPT_DEVICE_TOKEN_FILE },
	{ "auth", required_argument, NULL, OPT_AUTH },
	{ "client-id", required_argument, NULL, OPT_CLIENT_ID },
	{ "timestamp", required_argument, NULL, OPT_TIMESTAMP },
	{ "random", required_argument, NULL, OPT_RANDOM },
	{ "sign-method", required_argument, NULL, OPT_SIGN_METHOD },
	{ "region", required_argument, NULL, OPT_REGION },
	{ "instance-id", required_argument, NULL, OPT_INSTANCE_ID },
	{ "securemode", required_argument, NULL, OPT_SECUREMODE },
	{ "port", required_argument, NULL, OPT_PORT },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static int aliyun_option(struct ctl_sign *s, int c, char *arg)
{
	struct aliyun_args *a = s->args;
	struct gw_aliyun_login *l = &a->login;
	uint64_t v;

	switch (c) {
	case OPT_PRODUCT_KEY:
		l->product_key = arg;
		break;
	case OPT_DEVICE_NAME:
		l->device_name = arg;
		break;
	case OPT_DEVICE_SECRET:
		return ctl_sign_take_secret(s, SECRET_DEVICE, "--device-secret", CTL_SECRET_INLINE,
					    arg);
	case OPT_DEVICE_SECRET_FILE:
		return ctl_sign_take_secret(s, SECRET_DEVICE, "--device-secret-file",
					    CTL_SECRET_FILE, arg);
	case OPT_PRODUCT_SECRET:
		return ctl_sign_take_secret(s, SECRET_PRODUCT, "--product-secret",
					    CTL_SECRET_INLINE, arg);
	case OPT_PRODUCT_SECRET_FILE:
		return ctl_sign_take_secret(s, SECRET_PRODUCT, "--product-secret-file",
					    CTL_SECRET_FILE, arg);
	case OPT_DEVICE_TOKEN:
		return ctl_sign_take_secret(s, SECRET_TOKEN, "--device-token", CTL_SECRET_INLINE,
					    arg);
	case OPT_DEVICE_TOKEN_FILE:
		return ctl_sign_take_secret(s, SECRET_TOKEN, "--device-token-file", CTL_SECRET_FILE,
					    arg);
	case OPT_AUTH:
		if (gw_aliyun_parse_auth(arg, &l->auth) < 0)
			return ctl_usage_error(ALIYUN_CMD, ALIYUN_SYNOPSIS,
					       "--auth must be device, register, regnwl or "
					       "connwl, not '%s'",
					       arg);
		a->have_auth = true;
		break;
	case OPT_CLIENT_ID:
		l->client_id = arg;
		break;
	case OPT_TIMESTAMP:
		if (ctl_parse_u64(arg, UINT64_MAX, &v) < 0)
			return ctl_usage_error(ALIYUN_CMD, ALIYUN_SYNOPSIS,
					       "--timestamp must be milliseconds since 1970, "
					       "not '%s'",
					       arg);
		l->has_timestamp = true;
		l->timestamp_ms = v;
		break;
	case OPT_RANDOM:
		l->random = arg;
		break;
	case OPT_SIGN_METHOD:
		if (gw_aliyun_parse_sign_method(arg, &l->sign_method) < 0)
			return ctl_usage_error(ALIYUN_CMD, ALIYUN_SYNOPSIS,
					       "--sign-method must be hmacsha256, hmacsha1 or "
					       "hmacmd5, not '%s'",
					       arg);
		a->have_sign_method = true;
		break;
	case OPT_REGION:
		l->region = arg;
		break;
	case OPT_INSTANCE_ID:
		l->instance_id = arg;
		break;
	case OPT_SECUREMODE:
		if (!strcmp(arg, "2"))
			l->securemode = 2;
		else if (!strcmp(arg, "3"))
			l->securemode = 3;
		else if (!strcmp(arg, "-2"))
			l->securemode = -2;
		else
			return ctl_usage_error(ALIYUN_CMD, ALIYUN_SYNOPSIS,
					       "--securemode must be 2, 3 or -2, not '%s'", arg);
		break;
	case OPT_PORT:
		if (ctl_parse_u64(arg, UINT16_MAX, &v) < 0 || v == 0)
			return ctl_usage_error(ALIYUN_CMD, ALIYUN_SYNOPSIS,
					       "--port must be 1..65535, not '%s'", arg);
		l->port = (uint16_t)v;
		break;
	}
	return 0;
}

/* The rules of the command line itself; the values are checked by gw_aliyun_build_connect. */
static int aliyun_check(struct ctl_sign *s)
{
	struct aliyun_args *a = s->args;
	struct gw_aliyun_login *l = &a->login;

	if (!l->product_key)
		return ctl_usage_error(ALIYUN_CMD, ALIYUN_SYNOPSIS, "--product-key is missing");
	if (!l->device_name)
		return ctl_usage_error(ALIYUN_CMD, ALIYUN_SYNOPSIS, "--device-name is missing");
	if (l->region && l->instance_id)
		return ctl_usage_error(ALIYUN_CMD, ALIYUN_SYNOPSIS,
				       "--region and --instance-id exclude each other");

	switch ((enum secret_kind)s->secret_kind) {
	case SECRET_NONE:
		return ctl_usage_error(ALIYUN_CMD, ALIYUN_SYNOPSIS,
				       "a secret is missing: --device-secret[-file], "
				       "--product-secret[-file] or --device-token[-file]");
	case SECRET_DEVICE:
		if (a->have_auth && l->auth != GW_ALIYUN_AUTH_DEVICE)
			return ctl_usage_error(ALIYUN_CMD, ALIYUN_SYNOPSIS,
					       "--auth %s needs %s, not %s",
					       gw_aliyun_name_auth(l->auth),
					       l->auth == GW_ALIYUN_AUTH_CONNWL ?
						       "--device-token[-file]" :
						       "--product-secret[-file]",
					       s->secret_opt);
		l->auth = GW_ALIYUN_AUTH_DEVICE;
		break;
	case SECRET_PRODUCT:
		if (!a->have_auth ||
		    (l->auth != GW_ALIYUN_AUTH_REGISTER && l->auth != GW_ALIYUN_AUTH_REGNWL))
			return ctl_usage_error(ALIYUN_CMD, ALIYUN_SYNOPSIS,
					       "%s needs --auth register (pre-registered device) or "
					       "--auth regnwl (without pre-registration)",
					       s->secret_opt);
		break;
	case SECRET_TOKEN:
		if (a->have_auth && l->auth != GW_ALIYUN_AUTH_CONNWL)
			return ctl_usage_error(ALIYUN_CMD, ALIYUN_SYNOPSIS,
					       "%s needs --auth connwl", s->secret_opt);
		l->auth = GW_ALIYUN_AUTH_CONNWL;
		if (!l->client_id)
			return ctl_usage_error(ALIYUN_CMD, ALIYUN_SYNOPSIS,
					       "--auth connwl needs --client-id: the ClientID regnwl "
					       "returned");
		if (a->have_sign_method)
			return ctl_usage_error(ALIYUN_CMD, ALIYUN_SYNOPSIS,
					       "--auth connwl sends the token as it is: no "
					       "--sign-method");
		break;
	default:
		return ctl_usage_error(ALIYUN_CMD, ALIYUN_SYNOPSIS, "internal error");
	}

	if (l->auth == GW_ALIYUN_AUTH_DEVICE) {
		if (l->random)
			return ctl_usage_error(ALIYUN_CMD, ALIYUN_SYNOPSIS,
					       "--random belongs to --auth register and regnwl");
	} else {
		if (l->has_timestamp)
			return ctl_usage_error(ALIYUN_CMD, ALIYUN_SYNOPSIS,
					       "--timestamp belongs to --auth device");
	}
	if ((l->auth == GW_ALIYUN_AUTH_REGISTER || l->auth == GW_ALIYUN_AUTH_REGNWL) &&
	    l->client_id)
		return ctl_usage_error(ALIYUN_CMD, ALIYUN_SYNOPSIS,
				       "--auth %s fixes the client id: no --client-id",
				       gw_aliyun_name_auth(l->auth));
	if (l->auth == GW_ALIYUN_AUTH_CONNWL && l->random)
		return ctl_usage_error(ALIYUN_CMD, ALIYUN_SYNOPSIS,
				       "--random belongs to --auth register and regnwl");
	return 0;
}

static int aliyun_run(struct ctl_sign *s)
{
	char reason[GW_ALIYUN_REASON_MAX] = "", random[GW_ALIYUN_RANDOM_LEN + 1];
	struct aliyun_args *a = s->args;
	struct gw_aliyun_login *l = &a->login;
	struct gw_aliyun_connect c;
	int r;

	l->secret = s->secret;
	/* no --timestamp: none is sent or signed, as sensorgwd does (the platform does not need
	 * one), so the printed login is exactly the daemon's */
	if ((l->auth == GW_ALIYUN_AUTH_REGISTER || l->auth == GW_ALIYUN_AUTH_REGNWL) &&
	    !l->random) {
		r = gw_aliyun_make_random(random, sizeof(random));
		if (r < 0) {
			ctl_error(ALIYUN_CMD, "cannot draw a random: %s", strerror(-r));
			return EXIT_FAILURE;
		}
		l->random = random;
	}
	r = gw_aliyun_build_connect(l, &c, reason);
	if (r == -EINVAL)
		return ctl_usage_error(ALIYUN_CMD, ALIYUN_SYNOPSIS, "%s", reason);
	if (r < 0) {
		ctl_error(ALIYUN_CMD, "%s", reason[0] ? reason : strerror(-r));
		return EXIT_FAILURE;
	}
	printf("host=%s\nport=%u\nclient_id=%s\nusername=%s\npassword=%s\n", c.host,
	       (unsigned)c.port, c.client_id, c.username, c.password);
	explicit_bzero(&c, sizeof(c));
	return EXIT_SUCCESS;
}

static const struct ctl_sign_variant aliyun = {
	.cmd = ALIYUN_CMD,
	.synopsis = ALIYUN_SYNOPSIS,
	.help = aliyun_help,
	.options = aliyun_options,
	.option = aliyun_option,
	.check = aliyun_check,
	.run = aliyun_run,
};

int ctl_sign_aliyun(int argc, char **argv)
{
	struct aliyun_args a = { .login = { .sign_method = GW_ALIYUN_HMAC_SHA256 } };

	return ctl_sign_run(&aliyun, &a, argc, argv);
}

#define TENCENT_CMD "sign tencent"
#define TENCENT_SYNOPSIS                                               \
	"sensorgwctl sign tencent --product-id PID --device-name DN\n" \
	"         (--psk PSK | --psk-file FILE) [OPTION]..."

static void tencent_help(void)
{
	printf("Usage: " TENCENT_SYNOPSIS "\n"
	       "Print the MQTT CONNECT parameters of one key (PSK) device on Tencent Cloud IoT\n"
	       "Explorer, one key=value per line: host, port, client_id, username, password.\n"
	       "\n"
	       "Device:\n"
	       "      --product-id PID          the product's ProductId\n"
	       "      --device-name DN          the device's DeviceName\n"
	       "Secret (exactly one; FILE '-' is standard input):\n"
	       "      --psk PSK                 the device's PSK (DeviceSecret), base64\n"
	       "      --psk-file FILE\n"
	       "Options:\n"
	       "      --connid C                %d letters and digits (default: fresh random)\n"
	       "      --expiry E                Unix seconds the signature is valid until\n"
	       "                                (default %u, so no clock is needed)\n"
	       "      --sign-method M           hmacsha256 (default) or hmacsha1\n"
	       "      --sdkappid N              default %u\n"
	       "      --region R                ap-guangzhou (default; alias china), us-east,\n"
	       "                                europe, ap-bangkok\n"
	       "      --transport T             tls (port 8883, default) or tcp (port 1883)\n"
	       "  -h, --help                    show this help and exit\n"
	       "\n"
	       "A secret on the command line lands in the shell history and is visible in ps(1);\n"
	       "--psk-file keeps it out of both.\n",
	       GW_TENCENT_CONNID_LEN, GW_TENCENT_DEFAULT_EXPIRY, GW_TENCENT_DEFAULT_SDKAPPID);
}

enum {
	OPT_T_PRODUCT_ID = 256,
	OPT_T_DEVICE_NAME,
	OPT_T_PSK,
	OPT_T_PSK_FILE,
	OPT_T_CONNID,
	OPT_T_EXPIRY,
	OPT_T_SIGN_METHOD,
	OPT_T_SDKAPPID,
	OPT_T_REGION,
	OPT_T_TRANSPORT,
};

struct tencent_args {
	struct gw_tencent_login login;
};

static const struct option tencent_options[] = {
	{ "product-id", required_argument, NULL, OPT_T_PRODUCT_ID },
	{ "device-name", required_argument, NULL, OPT_T_DEVICE_NAME },
	{ "psk", required_argument, NULL, OPT_T_PSK },
	{ "psk-file", required_argument, NULL, OPT_T_PSK_FILE },
	{ "connid", required_argument, NULL, OPT_T_CONNID },
	{ "expiry", required_argument, NULL, OPT_T_EXPIRY },
	{ "sign-method", required_argument, NULL, OPT_T_SIGN_METHOD },
	{ "sdkappid", required_argument, NULL, OPT_T_SDKAPPID },
	{ "region", required_argument, NULL, OPT_T_REGION },
	{ "transport", required_argument, NULL, OPT_T_TRANSPORT },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static int tencent_option(struct ctl_sign *s, int c, char *arg)
{
	struct tencent_args *a = s->args;
	struct gw_tencent_login *l = &a->login;
	uint64_t v;

	switch (c) {
	case OPT_T_PRODUCT_ID:
		l->product_id = arg;
		break;
	case OPT_T_DEVICE_NAME:
		l->device_name = arg;
		break;
	case OPT_T_PSK:
		return ctl_sign_take_secret(s, 1, "--psk", CTL_SECRET_INLINE, arg);
	case OPT_T_PSK_FILE:
		return ctl_sign_take_secret(s, 1, "--psk-file", CTL_SECRET_FILE, arg);
	case OPT_T_CONNID:
		l->connid = arg;
		break;
	case OPT_T_EXPIRY:
		/* 0 would mean "the default" to the library: refuse it as a value. */
		if (ctl_parse_u64(arg, UINT64_MAX, &v) < 0 || v == 0)
			return ctl_usage_error(TENCENT_CMD, TENCENT_SYNOPSIS,
					       "--expiry must be seconds since 1970, not '%s'",
					       arg);
		l->expiry = v;
		break;
	case OPT_T_SIGN_METHOD:
		if (gw_tencent_parse_sign_method(arg, &l->sign_method) < 0)
			return ctl_usage_error(TENCENT_CMD, TENCENT_SYNOPSIS,
					       "--sign-method must be hmacsha256 or hmacsha1, "
					       "not '%s'",
					       arg);
		break;
	case OPT_T_SDKAPPID:
		if (ctl_parse_u64(arg, UINT32_MAX, &v) < 0 || v == 0)
			return ctl_usage_error(TENCENT_CMD, TENCENT_SYNOPSIS,
					       "--sdkappid must be 1..4294967295, not '%s'", arg);
		l->sdkappid = (uint32_t)v;
		break;
	case OPT_T_REGION:
		if (gw_tencent_check_region(arg) < 0)
			return ctl_usage_error(TENCENT_CMD, TENCENT_SYNOPSIS,
					       "--region must be ap-guangzhou, china, us-east, "
					       "europe or ap-bangkok, not '%s'",
					       arg);
		l->region = arg;
		break;
	case OPT_T_TRANSPORT:
		if (!strcmp(arg, "tls"))
			l->transport = GW_TENCENT_TLS;
		else if (!strcmp(arg, "tcp"))
			l->transport = GW_TENCENT_TCP;
		else
			return ctl_usage_error(TENCENT_CMD, TENCENT_SYNOPSIS,
					       "--transport must be tls or tcp, not '%s'", arg);
		break;
	}
	return 0;
}

static int tencent_check(struct ctl_sign *s)
{
	struct tencent_args *a = s->args;

	if (!a->login.product_id)
		return ctl_usage_error(TENCENT_CMD, TENCENT_SYNOPSIS, "--product-id is missing");
	if (!a->login.device_name)
		return ctl_usage_error(TENCENT_CMD, TENCENT_SYNOPSIS, "--device-name is missing");
	if (!s->secret_kind)
		return ctl_usage_error(TENCENT_CMD, TENCENT_SYNOPSIS,
				       "the PSK is missing: --psk or --psk-file");
	return 0;
}

static int tencent_run(struct ctl_sign *s)
{
	struct tencent_args *a = s->args;
	char reason[GW_TENCENT_REASON_MAX] = "";
	struct gw_tencent_connect c;
	int r;

	a->login.psk = s->secret;
	r = gw_tencent_build_connect(&a->login, &c, reason);
	if (r == -EINVAL)
		return ctl_usage_error(TENCENT_CMD, TENCENT_SYNOPSIS, "%s", reason);
	if (r < 0) {
		ctl_error(TENCENT_CMD, "%s", reason[0] ? reason : strerror(-r));
		return EXIT_FAILURE;
	}
	printf("host=%s\nport=%u\nclient_id=%s\nusername=%s\npassword=%s\n", c.host,
	       (unsigned)c.port, c.client_id, c.username, c.password);
	explicit_bzero(&c, sizeof(c));
	return EXIT_SUCCESS;
}

static const struct ctl_sign_variant tencent = {
	.cmd = TENCENT_CMD,
	.synopsis = TENCENT_SYNOPSIS,
	.help = tencent_help,
	.options = tencent_options,
	.option = tencent_option,
	.check = tencent_check,
	.run = tencent_run,
};

int ctl_sign_tencent(int argc, char **argv)
{
	struct tencent_args a = { .login = { .sign_method = GW_TENCENT_HMAC_SHA256 } };

	return ctl_sign_run(&tencent, &a, argc, argv);
}
