/* SPDX-License-Identifier: MIT */
/*
 * sensorgwctl sign aliyun-subdev and sign tencent-bind: the signed fields a gateway sends for
 * one sub-device (docs/protocols/gateway.md §G3, §G13, §G17), one key=value a line, to compare
 * with a console, an SDK or a packet capture. Variants of the sign engine (ctl_sign.c), which
 * takes the secret from a file (or standard input) or, less safely, from the command line.
 */

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "gw/aliyun.h"
#include "gw/tencent.h"
#include "gw/util.h"

/* A certificate file larger than this is not one certificate. */
#define CERT_FILE_MAX 65536

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

#define ALIYUN_CMD "sign aliyun-subdev"
#define ALIYUN_SYNOPSIS                                                              \
	"sensorgwctl sign aliyun-subdev --product-key PK --device-name DN\n"         \
	"         (--device-secret DS | --device-secret-file FILE\n"                 \
	"          | --product-secret PS | --product-secret-file FILE) [OPTION]..."

static void aliyun_help(void)
{
	printf("Usage: " ALIYUN_SYNOPSIS "\n"
	       "Print the signed fields a gateway sends for one sub-device on Alibaba Cloud\n"
	       "IoT Platform, one key=value per line. With a DeviceSecret: the sign of\n"
	       "thing/topo/add, combine/login and combine/batch_login: client_id, timestamp,\n"
	       "sign_method, sign.\n"
	       "With a ProductSecret: the sign of thing/proxy/provisioning/product_register:\n"
	       "random, sign_method, sign.\n"
	       "\n"
	       "Sub-device:\n"
	       "      --product-key PK          the sub-device's ProductKey\n"
	       "      --device-name DN          the sub-device's DeviceName\n"
	       "Secret (exactly one; FILE '-' is standard input):\n"
	       "      --device-secret DS        the sub-device's DeviceSecret\n"
	       "      --device-secret-file FILE\n"
	       "      --product-secret PS       its product's ProductSecret (proxy registration)\n"
	       "      --product-secret-file FILE\n"
	       "Options:\n"
	       "      --client-id ID            the client id sent and signed, a |k=v| suffix\n"
	       "                                included (default PK.DN)\n"
	       "      --timestamp MS            milliseconds since 1970 (default: now)\n"
	       "      --random R                proxy registration: letters and digits\n"
	       "                                (default: %d fresh random ones)\n"
	       "      --sign-method M           hmacsha256 (default), hmacsha1 or hmacmd5\n"
	       "      --uppercase               the sign in upper-case hex (as Link SDK 4)\n"
	       "                                (default lower case; the platform takes both)\n"
	       "  -h, --help                    show this help and exit\n"
	       "\n"
	       "A secret on the command line lands in the shell history and is visible in ps(1);\n"
	       "the *-file options keep it out of both.\n",
	       GW_ALIYUN_RANDOM_LEN);
}

enum {
	OPT_A_PRODUCT_KEY = 256,
	OPT_A_DEVICE_NAME,
	OPT_A_DEVICE_SECRET,
	OPT_A_DEVICE_SECRET_FILE,
	OPT_A_PRODUCT_SECRET,
	OPT_A_PRODUCT_SECRET_FILE,
	OPT_A_CLIENT_ID,
	OPT_A_TIMESTAMP,
	OPT_A_RANDOM,
	OPT_A_SIGN_METHOD,
	OPT_A_UPPERCASE,
};

struct aliyun_args {
	struct gw_aliyun_subdev sub;
	const char *random;
	bool has_timestamp;
	enum gw_aliyun_sign_method method;
	bool upper;
};

enum { SECRET_DEVICE = 1, SECRET_PRODUCT }; /* a ProductSecret: proxy registration */

#define usage(...) ctl_usage_error(ALIYUN_CMD, ALIYUN_SYNOPSIS, __VA_ARGS__)

static const struct option aliyun_options[] = {
	{ "product-key", required_argument, NULL, OPT_A_PRODUCT_KEY },
	{ "device-name", required_argument, NULL, OPT_A_DEVICE_NAME },
	{ "device-secret", required_argument, NULL, OPT_A_DEVICE_SECRET },
	{ "device-secret-file", required_argument, NULL, OPT_A_DEVICE_SECRET_FILE },
	{ "product-secret", required_argument, NULL, OPT_A_PRODUCT_SECRET },
	{ "product-secret-file", required_argument, NULL, OPT_A_PRODUCT_SECRET_FILE },
	{ "client-id", required_argument, NULL, OPT_A_CLIENT_ID },
	{ "timestamp", required_argument, NULL, OPT_A_TIMESTAMP },
	{ "random", required_argument, NULL, OPT_A_RANDOM },
	{ "sign-method", required_argument, NULL, OPT_A_SIGN_METHOD },
	{ "uppercase", no_argument, NULL, OPT_A_UPPERCASE },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static int aliyun_option(struct ctl_sign *s, int c, char *arg)
{
	struct aliyun_args *a = s->args;
	uint64_t v;

	switch (c) {
	case OPT_A_PRODUCT_KEY:
		a->sub.product_key = arg;
		break;
	case OPT_A_DEVICE_NAME:
		a->sub.device_name = arg;
		break;
	case OPT_A_DEVICE_SECRET:
		return ctl_sign_take_secret(s, SECRET_DEVICE, "--device-secret", CTL_SECRET_INLINE,
					    arg);
	case OPT_A_DEVICE_SECRET_FILE:
		return ctl_sign_take_secret(s, SECRET_DEVICE, "--device-secret-file",
					    CTL_SECRET_FILE, arg);
	case OPT_A_PRODUCT_SECRET:
		return ctl_sign_take_secret(s, SECRET_PRODUCT, "--product-secret",
					    CTL_SECRET_INLINE, arg);
	case OPT_A_PRODUCT_SECRET_FILE:
		return ctl_sign_take_secret(s, SECRET_PRODUCT, "--product-secret-file",
					    CTL_SECRET_FILE, arg);
	case OPT_A_CLIENT_ID:
		a->sub.client_id = arg;
		break;
	case OPT_A_TIMESTAMP:
		if (ctl_parse_u64(arg, UINT64_MAX, &v) < 0)
			return usage("--timestamp must be milliseconds since 1970, not '%s'", arg);
		a->sub.timestamp_ms = v;
		a->has_timestamp = true;
		break;
	case OPT_A_RANDOM:
		a->random = arg;
		break;
	case OPT_A_SIGN_METHOD:
		if (gw_aliyun_parse_sign_method(arg, &a->method) < 0)
			return usage("--sign-method must be hmacsha256, hmacsha1 or hmacmd5, not "
				     "'%s'",
				     arg);
		break;
	case OPT_A_UPPERCASE:
		a->upper = true;
		break;
	}
	return 0;
}

static int aliyun_check(struct ctl_sign *s)
{
	struct aliyun_args *a = s->args;
	bool product = s->secret_kind == SECRET_PRODUCT;

	if (!a->sub.product_key)
		return usage("%s", "--product-key is missing");
	if (!a->sub.device_name)
		return usage("%s", "--device-name is missing");
	if (!s->secret_kind)
		return usage("%s", "the secret is missing: --device-secret[-file] or "
				   "--product-secret[-file]");
	if (product && (a->sub.client_id || a->has_timestamp))
		return usage("%s", "proxy registration (--product-secret[-file]) signs no client "
				   "id and no timestamp");
	if (!product && a->random)
		return usage("%s", "--random belongs to --product-secret[-file]");
	return 0;
}

static int aliyun_run(struct ctl_sign *s)
{
	struct aliyun_args *a = s->args;
	char reason[GW_ALIYUN_REASON_MAX] = "", random[GW_ALIYUN_RANDOM_LEN + 1];
	char sign[GW_ALIYUN_SIGN_MAX];
	struct gw_aliyun_subdev_sign sg;
	int r;

	if (s->secret_kind == SECRET_PRODUCT) {
		struct gw_aliyun_proxied p = { a->sub.product_key, a->sub.device_name, s->secret,
					       a->random };

		if (!p.random) {
			r = gw_aliyun_make_random(random, sizeof(random));
			if (r < 0) {
				ctl_error(ALIYUN_CMD, "cannot draw a random: %s", strerror(-r));
				return EXIT_FAILURE;
			}
			p.random = random;
		}
		r = gw_aliyun_sign_proxied(a->method, a->upper, &p, sign, sizeof(sign), reason);
		if (r >= 0)
			printf("random=%s\nsign_method=%s\nsign=%s\n", p.random,
			       gw_aliyun_gw_sign_method(a->method), sign);
	} else {
		a->sub.device_secret = s->secret;
		if (!a->has_timestamp)
			a->sub.timestamp_ms = now_ms();
		r = gw_aliyun_sign_subdev(a->method, a->upper, &a->sub, &sg, reason);
		if (r >= 0)
			printf("client_id=%s\ntimestamp=%s\nsign_method=%s\nsign=%s\n",
			       sg.client_id, sg.timestamp, sg.sign_method, sg.sign);
	}
	if (r == -EINVAL)
		return usage("%s", reason);
	if (r < 0) {
		ctl_error(ALIYUN_CMD, "%s", reason[0] ? reason : strerror(-r));
		return EXIT_FAILURE;
	}
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

int ctl_sign_aliyun_subdev(int argc, char **argv)
{
	struct aliyun_args a = { .method = GW_ALIYUN_HMAC_SHA256 };

	return ctl_sign_run(&aliyun, &a, argc, argv);
}

#define TENCENT_CMD "sign tencent-bind"
#define TENCENT_SYNOPSIS                                                              \
	"sensorgwctl sign tencent-bind --product-id PID --device-name DN\n"           \
	"         (--psk PSK | --psk-file FILE | --cert-file FILE) [OPTION]..."

static void tencent_help(void)
{
	printf("Usage: " TENCENT_SYNOPSIS "\n"
	       "Print the signed fields of the bind a gateway sends for one sub-device on\n"
	       "Tencent Cloud IoT Explorer, one key=value per line: random, timestamp,\n"
	       "sign_method, signature (base64 of the HMAC of \"PIDDN;RANDOM;TIMESTAMP\", keyed\n"
	       "with the PSK text as it is).\n"
	       "\n"
	       "Sub-device:\n"
	       "      --product-id PID          the sub-device's ProductId\n"
	       "      --device-name DN          the sub-device's DeviceName\n"
	       "Secret (exactly one; FILE '-' is standard input):\n"
	       "      --psk PSK                 the sub-device's PSK (DeviceSecret), base64\n"
	       "      --psk-file FILE\n"
	       "      --cert-file FILE          a certificate sub-device: its certificate file\n"
	       "                                (the key is the file's MD5 in hex)\n"
	       "Options:\n"
	       "      --random N                0..%u (default: fresh random)\n"
	       "      --timestamp S             seconds since 1970, UTC (default: now); the\n"
	       "                                platform refuses a stale one\n"
	       "      --sign-method M           hmacsha1 (default, as the SDKs) or hmacsha256\n"
	       "  -h, --help                    show this help and exit\n"
	       "\n"
	       "A secret on the command line lands in the shell history and is visible in ps(1);\n"
	       "--psk-file keeps it out of both.\n",
	       GW_TENCENT_BIND_RANDOM_MAX);
}

enum {
	OPT_T_PRODUCT_ID = 256,
	OPT_T_DEVICE_NAME,
	OPT_T_PSK,
	OPT_T_PSK_FILE,
	OPT_T_CERT_FILE,
	OPT_T_RANDOM,
	OPT_T_TIMESTAMP,
	OPT_T_SIGN_METHOD,
};

struct tencent_args {
	struct gw_tencent_bind bind;
	bool has_random, has_timestamp;
};

#define tusage(...) ctl_usage_error(TENCENT_CMD, TENCENT_SYNOPSIS, __VA_ARGS__)

static const struct option tencent_options[] = {
	{ "product-id", required_argument, NULL, OPT_T_PRODUCT_ID },
	{ "device-name", required_argument, NULL, OPT_T_DEVICE_NAME },
	{ "psk", required_argument, NULL, OPT_T_PSK },
	{ "psk-file", required_argument, NULL, OPT_T_PSK_FILE },
	{ "cert-file", required_argument, NULL, OPT_T_CERT_FILE },
	{ "random", required_argument, NULL, OPT_T_RANDOM },
	{ "timestamp", required_argument, NULL, OPT_T_TIMESTAMP },
	{ "sign-method", required_argument, NULL, OPT_T_SIGN_METHOD },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static int tencent_option(struct ctl_sign *s, int c, char *arg)
{
	struct tencent_args *a = s->args;
	uint64_t v;

	switch (c) {
	case OPT_T_PRODUCT_ID:
		a->bind.product_id = arg;
		break;
	case OPT_T_DEVICE_NAME:
		a->bind.device_name = arg;
		break;
	case OPT_T_PSK:
		return ctl_sign_take_secret(s, 1, "--psk", CTL_SECRET_INLINE, arg);
	case OPT_T_PSK_FILE:
		return ctl_sign_take_secret(s, 1, "--psk-file", CTL_SECRET_FILE, arg);
	case OPT_T_CERT_FILE:
		a->bind.certificate = true;
		return ctl_sign_take_secret(s, 2, "--cert-file", CTL_SECRET_PATH, arg);
	case OPT_T_RANDOM:
		if (ctl_parse_u64(arg, GW_TENCENT_BIND_RANDOM_MAX, &v) < 0)
			return tusage("--random must be 0..2147483647, not '%s'", arg);
		a->bind.random = (uint32_t)v;
		a->has_random = true;
		break;
	case OPT_T_TIMESTAMP:
		if (ctl_parse_u64(arg, UINT32_MAX, &v) < 0)
			return tusage("--timestamp must be seconds since 1970, not '%s'", arg);
		a->bind.timestamp = v;
		a->has_timestamp = true;
		break;
	case OPT_T_SIGN_METHOD:
		if (gw_tencent_parse_sign_method(arg, &a->bind.sign_method) < 0)
			return tusage("--sign-method must be hmacsha1 or hmacsha256, not '%s'",
				      arg);
		break;
	}
	return 0;
}

static int tencent_check(struct ctl_sign *s)
{
	struct tencent_args *a = s->args;

	if (!a->bind.product_id)
		return tusage("%s", "--product-id is missing");
	if (!a->bind.device_name)
		return tusage("%s", "--device-name is missing");
	if (!s->secret_kind)
		return tusage("%s", "the secret is missing: --psk, --psk-file or --cert-file");
	return 0;
}

/* The bind key of the certificate file at path: its MD5 in hex (§G17). */
static char *cert_key(const char *path)
{
	size_t n = 0;
	char *buf = ctl_read_file(TENCENT_CMD, "--cert-file", path, CERT_FILE_MAX, &n);
	char *key = NULL;

	if (!buf)
		return NULL;
	if (n == 0)
		ctl_error(TENCENT_CMD, "--cert-file: %s is empty", path);
	else if (!(key = malloc(GW_TENCENT_CERT_KEY_MAX)))
		ctl_error(TENCENT_CMD, "out of memory");
	else if (gw_tencent_cert_bind_key(buf, n, key, GW_TENCENT_CERT_KEY_MAX) < 0) {
		ctl_error(TENCENT_CMD, "libcrypto cannot compute MD5");
		free(key);
		key = NULL;
	}
	free(buf);
	return key;
}

static int tencent_run(struct ctl_sign *s)
{
	struct tencent_args *a = s->args;
	char reason[GW_TENCENT_REASON_MAX] = "", sig[GW_TENCENT_BIND_SIGNATURE_MAX];
	struct gw_tencent_bind *b = &a->bind;
	char *key = NULL;
	int r, ret = EXIT_FAILURE;

	/* --cert-file: the engine's secret is the file's path, the key its MD5 */
	if (b->certificate && !(key = cert_key(s->secret)))
		return EXIT_FAILURE;
	b->key = key ? key : s->secret;
	if (!a->has_random) {
		r = gw_tencent_make_bind_random(&b->random);
		if (r < 0) {
			ctl_error(TENCENT_CMD, "cannot draw a random: %s", strerror(-r));
			goto out;
		}
	}
	if (!a->has_timestamp)
		b->timestamp = (uint64_t)time(NULL);

	/* the checks of the bind message, then its signature */
	r = gw_tencent_check_product_id(b->product_id, reason);
	if (r == 0)
		r = gw_tencent_check_device_name(b->device_name, reason);
	if (r == 0 && !b->certificate)
		r = gw_tencent_check_psk(b->key, reason);
	if (r < 0) {
		ret = tusage("%s", reason);
		goto out;
	}
	r = gw_tencent_sign_bind(b->sign_method, b->key, strlen(b->key), b->product_id,
				 b->device_name, b->random, b->timestamp, sig, sizeof(sig));
	if (r < 0) {
		ctl_error(TENCENT_CMD, "cannot compute the signature: %s", strerror(-r));
		goto out;
	}
	printf("random=%" PRIu32 "\ntimestamp=%" PRIu64 "\nsign_method=%s\nsignature=%s\n",
	       b->random, b->timestamp, gw_tencent_name_sign_method(b->sign_method), sig);
	ret = EXIT_SUCCESS;
out:
	if (key) {
		explicit_bzero(key, strlen(key));
		free(key);
	}
	return ret;
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

int ctl_sign_tencent_bind(int argc, char **argv)
{
	struct tencent_args a = { .bind = { .sign_method = GW_TENCENT_HMAC_SHA1 } };

	return ctl_sign_run(&tencent, &a, argc, argv);
}
