/* SPDX-License-Identifier: MIT */
/*
 * sensorgwctl: the command-line companion of sensorgwd.
 *
 * Commands are looked up in tables, two levels deep ("sign aliyun"), so that new ones ("sign
 * tencent", "status", "reload", "decode") are one function and one table row each. Exit codes:
 * 0 success, 1 the command failed, 2 the command line is wrong.
 */

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "gw-build.h"
#include "gw/aliyun.h"
#include "gw/tencent.h"
#include "gw/util.h"

/* A secret file larger than this is certainly not a secret (they are 32..512 bytes). */
#define SECRET_FILE_MAX 4096

static int cmd_sign(int argc, char **argv);
static int sign_aliyun(int argc, char **argv);
static int sign_tencent(int argc, char **argv);

static const struct command commands[] = {
	{ "sign", "print the MQTT CONNECT parameters of a device on a cloud platform", cmd_sign },
	{ "status", "show the running daemon's ports, nodes, uplinks and spool", ctl_status },
	{ "reload", "make the running daemon reload its configuration file", ctl_reload },
	{ "decode", "show what the daemon would make of frames on a port", ctl_decode },
};

static const struct command sign_targets[] = {
	{ "aliyun", "Alibaba Cloud IoT Platform (阿里云物联网平台)", sign_aliyun },
	{ "tencent", "Tencent Cloud IoT Explorer (物联网开发平台)", sign_tencent },
	{ "aliyun-subdev", "Aliyun gateway: a sub-device's topo/add and login sign",
	  ctl_sign_aliyun_subdev },
	{ "tencent-bind", "Tencent gateway: a sub-device's bind signature", ctl_sign_tencent_bind },
};

void ctl_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "sensorgwctl: %s%s", cmd ? cmd : "", cmd ? ": " : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int ctl_usage_error(const char *cmd, const char *synopsis, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "sensorgwctl: %s%s", cmd ? cmd : "", cmd ? ": " : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nUsage: %s\nTry 'sensorgwctl %s%s--help' for more information.\n",
		synopsis, cmd ? cmd : "", cmd ? " " : "");
	return EXIT_USAGE;
}

static void list_commands(FILE *f, const char *prefix, const struct command *table, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		fprintf(f, "  %s%-*s %s\n", prefix, (int)(22 - strlen(prefix)), table[i].name,
			table[i].summary);
}

#define MAIN_SYNOPSIS "sensorgwctl COMMAND [ARG]..."

static void main_help(void)
{
	printf("Usage: " MAIN_SYNOPSIS "\n"
	       "       sensorgwctl --help | --version\n"
	       "Control and inspect sensorgw.\n\nCommands:\n");
	list_commands(stdout, "", commands, N_ELEMENTS(commands));
	printf("\nCloud platforms of 'sign':\n");
	list_commands(stdout, "sign ", sign_targets, N_ELEMENTS(sign_targets));
	printf("\n"
	       "  -h, --help     show this help and exit\n"
	       "  -V, --version  show the version and exit\n"
	       "\n'sensorgwctl COMMAND --help' describes a command. See sensorgwctl(1).\n");
}

/* Runs the command named argv[0] from table; what names the level for messages. */
static int dispatch(const struct command *table, size_t n, const char *what, const char *synopsis,
		    int argc, char **argv)
{
	size_t i;

	if (argc < 1)
		return ctl_usage_error(what, synopsis, "missing %s",
				   what ? "cloud platform" : "command");
	for (i = 0; i < n; i++)
		if (strcmp(argv[0], table[i].name) == 0)
			return table[i].run(argc, argv);
	return ctl_usage_error(what, synopsis, "unknown %s '%s'", what ? "cloud platform" : "command",
			   argv[0]);
}

#define SIGN_SYNOPSIS "sensorgwctl sign CLOUD [OPTION]..."

static int cmd_sign(int argc, char **argv)
{
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("Usage: " SIGN_SYNOPSIS "\n"
		       "Print the MQTT CONNECT parameters of a device, or the signed fields of a\n"
		       "sub-device behind a gateway, one key=value per line.\n\n");
		list_commands(stdout, "sign ", sign_targets, N_ELEMENTS(sign_targets));
		return EXIT_SUCCESS;
	}
	return dispatch(sign_targets, N_ELEMENTS(sign_targets), "sign", SIGN_SYNOPSIS, argc - 1,
			argv + 1);
}

char *ctl_read_secret(const char *cmd, const char *opt, const char *path)
{
	bool use_stdin = strcmp(path, "-") == 0;
	FILE *f = use_stdin ? stdin : fopen(path, "re");
	char *buf = NULL;
	size_t n;

	if (!f) {
		ctl_error(cmd, "%s: cannot open %s: %s", opt, path, strerror(errno));
		return NULL;
	}
	buf = calloc(1, SECRET_FILE_MAX + 1);
	if (!buf) {
		ctl_error(cmd, "out of memory");
		goto out;
	}
	n = fread(buf, 1, SECRET_FILE_MAX + 1, f);
	if (ferror(f)) {
		ctl_error(cmd, "%s: cannot read %s", opt, use_stdin ? "standard input" : path);
		goto fail;
	}
	if (n > SECRET_FILE_MAX) {
		ctl_error(cmd, "%s: %s is larger than %d bytes", opt,
		      use_stdin ? "standard input" : path, SECRET_FILE_MAX);
		goto fail;
	}
	buf[n] = '\0';
	if (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	if (n > 0 && buf[n - 1] == '\r')
		buf[--n] = '\0';
	if (n == 0 || memchr(buf, '\n', n) || strlen(buf) != n) {
		ctl_error(cmd, "%s: %s must hold the secret alone on one line", opt,
		      use_stdin ? "standard input" : path);
		goto fail;
	}
	goto out;
fail:
	explicit_bzero(buf, SECRET_FILE_MAX + 1);
	free(buf);
	buf = NULL;
out:
	if (!use_stdin)
		fclose(f);
	return buf;
}

int ctl_parse_u64(const char *s, uint64_t max, uint64_t *ret)
{
	char *end;
	unsigned long long v;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v > max)
		return -EINVAL;
	*ret = v;
	return 0;
}

#define ALIYUN_CMD "sign aliyun"
#define ALIYUN_SYNOPSIS                                                  \
	"sensorgwctl sign aliyun --product-key PK --device-name DN\n"    \
	"         (--device-secret[-file] DS\n"                          \
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
	enum secret_kind kind;
	const char *secret_opt; /* the option that gave it, for messages */
	char *secret_arg; /* the secret (argv) or the file name (*-file) */
	bool secret_is_file;
	bool have_sign_method;
};

static int take_secret(struct aliyun_args *a, enum secret_kind kind, const char *opt,
		       bool is_file, char *arg)
{
	if (a->kind != SECRET_NONE)
		return ctl_usage_error(ALIYUN_CMD, ALIYUN_SYNOPSIS, "%s and %s exclude each other",
				   a->secret_opt, opt);
	a->kind = kind;
	a->secret_opt = opt;
	a->secret_is_file = is_file;
	a->secret_arg = arg;
	return 0;
}

static int parse_aliyun_args(int argc, char **argv, struct aliyun_args *a)
{
	static const struct option longopts[] = {
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
	struct gw_aliyun_login *l = &a->login;
	uint64_t v;
	int c, r;

	optind = 0; /* a fresh getopt scan over this command's own argv */
	opterr = 0; /* unknown options get our message, with the synopsis */
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		r = 0;
		switch (c) {
		case OPT_PRODUCT_KEY:
			l->product_key = optarg;
			break;
		case OPT_DEVICE_NAME:
			l->device_name = optarg;
			break;
		case OPT_DEVICE_SECRET:
			r = take_secret(a, SECRET_DEVICE, "--device-secret", false, optarg);
			break;
		case OPT_DEVICE_SECRET_FILE:
			r = take_secret(a, SECRET_DEVICE, "--device-secret-file", true, optarg);
			break;
		case OPT_PRODUCT_SECRET:
			r = take_secret(a, SECRET_PRODUCT, "--product-secret", false, optarg);
			break;
		case OPT_PRODUCT_SECRET_FILE:
			r = take_secret(a, SECRET_PRODUCT, "--product-secret-file", true, optarg);
			break;
		case OPT_DEVICE_TOKEN:
			r = take_secret(a, SECRET_TOKEN, "--device-token", false, optarg);
			break;
		case OPT_DEVICE_TOKEN_FILE:
			r = take_secret(a, SECRET_TOKEN, "--device-token-file", true, optarg);
			break;
		case OPT_AUTH:
			if (gw_aliyun_parse_auth(optarg, &l->auth) < 0)
				return ctl_usage_error(ALIYUN_CMD, ALIYUN_SYNOPSIS,
						   "--auth must be device, register, regnwl or "
						   "connwl, not '%s'", optarg);
			a->have_auth = true;
			break;
		case OPT_CLIENT_ID:
			l->client_id = optarg;
			break;
		case OPT_TIMESTAMP:
			if (ctl_parse_u64(optarg, UINT64_MAX, &v) < 0)
				return ctl_usage_error(ALIYUN_CMD, ALIYUN_SYNOPSIS,
						   "--timestamp must be milliseconds since 1970, "
						   "not '%s'", optarg);
			l->has_timestamp = true;
			l->timestamp_ms = v;
			break;
		case OPT_RANDOM:
			l->random = optarg;
			break;
		case OPT_SIGN_METHOD:
			if (gw_aliyun_parse_sign_method(optarg, &l->sign_method) < 0)
				return ctl_usage_error(ALIYUN_CMD, ALIYUN_SYNOPSIS,
						   "--sign-method must be hmacsha256, hmacsha1 or "
						   "hmacmd5, not '%s'", optarg);
			a->have_sign_method = true;
			break;
		case OPT_REGION:
			l->region = optarg;
			break;
		case OPT_INSTANCE_ID:
			l->instance_id = optarg;
			break;
		case OPT_SECUREMODE:
			if (!strcmp(optarg, "2"))
				l->securemode = 2;
			else if (!strcmp(optarg, "3"))
				l->securemode = 3;
			else if (!strcmp(optarg, "-2"))
				l->securemode = -2;
			else
				return ctl_usage_error(ALIYUN_CMD, ALIYUN_SYNOPSIS,
						   "--securemode must be 2, 3 or -2, not '%s'",
						   optarg);
			break;
		case OPT_PORT:
			if (ctl_parse_u64(optarg, UINT16_MAX, &v) < 0 || v == 0)
				return ctl_usage_error(ALIYUN_CMD, ALIYUN_SYNOPSIS,
						   "--port must be 1..65535, not '%s'", optarg);
			l->port = (uint16_t)v;
			break;
		case 'h':
			aliyun_help();
			return -1;
		case ':':
			return ctl_usage_error(ALIYUN_CMD, ALIYUN_SYNOPSIS, "%s needs a value",
					   argv[optind - 1]);
		default:
			return ctl_usage_error(ALIYUN_CMD, ALIYUN_SYNOPSIS, "unknown option '%s'",
					   argv[optind - 1]);
		}
		if (r)
			return r;
	}
	if (optind < argc)
		return ctl_usage_error(ALIYUN_CMD, ALIYUN_SYNOPSIS, "unexpected argument '%s'",
				   argv[optind]);
	return 0;
}

/* The rules of the command line itself; the values are checked by gw_aliyun_build_connect. */
static int check_aliyun_args(struct aliyun_args *a)
{
	struct gw_aliyun_login *l = &a->login;

	if (!l->product_key)
		return ctl_usage_error(ALIYUN_CMD, ALIYUN_SYNOPSIS, "--product-key is missing");
	if (!l->device_name)
		return ctl_usage_error(ALIYUN_CMD, ALIYUN_SYNOPSIS, "--device-name is missing");
	if (l->region && l->instance_id)
		return ctl_usage_error(ALIYUN_CMD, ALIYUN_SYNOPSIS,
				   "--region and --instance-id exclude each other");

	switch (a->kind) {
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
					   a->secret_opt);
		l->auth = GW_ALIYUN_AUTH_DEVICE;
		break;
	case SECRET_PRODUCT:
		if (!a->have_auth || (l->auth != GW_ALIYUN_AUTH_REGISTER &&
				      l->auth != GW_ALIYUN_AUTH_REGNWL))
			return ctl_usage_error(ALIYUN_CMD, ALIYUN_SYNOPSIS,
					   "%s needs --auth register (pre-registered device) or "
					   "--auth regnwl (without pre-registration)",
					   a->secret_opt);
		break;
	case SECRET_TOKEN:
		if (a->have_auth && l->auth != GW_ALIYUN_AUTH_CONNWL)
			return ctl_usage_error(ALIYUN_CMD, ALIYUN_SYNOPSIS,
					   "%s needs --auth connwl", a->secret_opt);
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

static int sign_aliyun(int argc, char **argv)
{
	char reason[GW_ALIYUN_REASON_MAX] = "", random[GW_ALIYUN_RANDOM_LEN + 1];
	struct aliyun_args a = { .login = { .sign_method = GW_ALIYUN_HMAC_SHA256 } };
	struct gw_aliyun_login *l = &a.login;
	struct gw_aliyun_connect c;
	char *secret = NULL;
	int r, ret = EXIT_FAILURE;

	r = parse_aliyun_args(argc, argv, &a);
	if (r)
		return r < 0 ? EXIT_SUCCESS : r;
	r = check_aliyun_args(&a);
	if (r)
		return r;

	if (a.secret_is_file) {
		secret = ctl_read_secret(ALIYUN_CMD, a.secret_opt, a.secret_arg);
		if (!secret)
			return EXIT_FAILURE;
	} else {
		/* check_*_args() refused SECRET_NONE; clang-analyzer does not follow the variadic
		 * ctl_usage_error() and so thinks it returned 0 with no secret */
		secret = strdup(a.secret_arg); /* NOLINT(clang-analyzer-core.NonNullParamChecker) */
		if (!secret) {
			ctl_error(ALIYUN_CMD, "out of memory");
			return EXIT_FAILURE;
		}
		/* Shortens the time the secret shows in /proc/PID/cmdline; the man page points
		 * at the *-file options, which avoid it altogether. */
		explicit_bzero(a.secret_arg, strlen(a.secret_arg));
	}
	l->secret = secret;

	/* no --timestamp: none is sent or signed, as sensorgwd does (the platform does not need
	 * one), so the printed login is exactly the daemon's */
	if ((l->auth == GW_ALIYUN_AUTH_REGISTER || l->auth == GW_ALIYUN_AUTH_REGNWL) &&
	    !l->random) {
		r = gw_aliyun_make_random(random, sizeof(random));
		if (r < 0) {
			ctl_error(ALIYUN_CMD, "cannot draw a random: %s", strerror(-r));
			goto out;
		}
		l->random = random;
	}

	r = gw_aliyun_build_connect(l, &c, reason);
	if (r == -EINVAL) {
		ret = ctl_usage_error(ALIYUN_CMD, ALIYUN_SYNOPSIS, "%s", reason);
		goto out;
	}
	if (r < 0) {
		ctl_error(ALIYUN_CMD, "%s", reason[0] ? reason : strerror(-r));
		goto out;
	}
	printf("host=%s\nport=%u\nclient_id=%s\nusername=%s\npassword=%s\n", c.host,
	       (unsigned)c.port, c.client_id, c.username, c.password);
	explicit_bzero(&c, sizeof(c));
	if (fflush(stdout) != 0 || ferror(stdout)) {
		ctl_error(ALIYUN_CMD, "cannot write to standard output: %s", strerror(errno));
		goto out;
	}
	ret = EXIT_SUCCESS;
out:
	explicit_bzero(secret, strlen(secret));
	free(secret);
	return ret;
}

#define TENCENT_CMD "sign tencent"
#define TENCENT_SYNOPSIS                                                            \
	"sensorgwctl sign tencent --product-id PID --device-name DN\n"              \
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
	const char *secret_opt; /* --psk or --psk-file, for messages */
	char *secret_arg;       /* the PSK (argv) or the file name */
	bool secret_is_file;
};

static int parse_tencent_args(int argc, char **argv, struct tencent_args *a)
{
	static const struct option longopts[] = {
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
	struct gw_tencent_login *l = &a->login;
	uint64_t v;
	int c;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_T_PRODUCT_ID:
			l->product_id = optarg;
			break;
		case OPT_T_DEVICE_NAME:
			l->device_name = optarg;
			break;
		case OPT_T_PSK:
		case OPT_T_PSK_FILE:
			if (a->secret_opt)
				return ctl_usage_error(TENCENT_CMD, TENCENT_SYNOPSIS,
						   "--psk and --psk-file exclude each other, and "
						   "each is given once");
			a->secret_is_file = c == OPT_T_PSK_FILE;
			a->secret_opt = a->secret_is_file ? "--psk-file" : "--psk";
			a->secret_arg = optarg;
			break;
		case OPT_T_CONNID:
			l->connid = optarg;
			break;
		case OPT_T_EXPIRY:
			/* 0 would mean "the default" to the library: refuse it as a value. */
			if (ctl_parse_u64(optarg, UINT64_MAX, &v) < 0 || v == 0)
				return ctl_usage_error(TENCENT_CMD, TENCENT_SYNOPSIS,
						   "--expiry must be seconds since 1970, not '%s'",
						   optarg);
			l->expiry = v;
			break;
		case OPT_T_SIGN_METHOD:
			if (gw_tencent_parse_sign_method(optarg, &l->sign_method) < 0)
				return ctl_usage_error(TENCENT_CMD, TENCENT_SYNOPSIS,
						   "--sign-method must be hmacsha256 or hmacsha1, "
						   "not '%s'", optarg);
			break;
		case OPT_T_SDKAPPID:
			if (ctl_parse_u64(optarg, UINT32_MAX, &v) < 0 || v == 0)
				return ctl_usage_error(TENCENT_CMD, TENCENT_SYNOPSIS,
						   "--sdkappid must be 1..4294967295, not '%s'",
						   optarg);
			l->sdkappid = (uint32_t)v;
			break;
		case OPT_T_REGION:
			if (gw_tencent_check_region(optarg) < 0)
				return ctl_usage_error(TENCENT_CMD, TENCENT_SYNOPSIS,
						   "--region must be ap-guangzhou, china, us-east, "
						   "europe or ap-bangkok, not '%s'", optarg);
			l->region = optarg;
			break;
		case OPT_T_TRANSPORT:
			if (!strcmp(optarg, "tls"))
				l->transport = GW_TENCENT_TLS;
			else if (!strcmp(optarg, "tcp"))
				l->transport = GW_TENCENT_TCP;
			else
				return ctl_usage_error(TENCENT_CMD, TENCENT_SYNOPSIS,
						   "--transport must be tls or tcp, not '%s'",
						   optarg);
			break;
		case 'h':
			tencent_help();
			return -1;
		case ':':
			return ctl_usage_error(TENCENT_CMD, TENCENT_SYNOPSIS, "%s needs a value",
					   argv[optind - 1]);
		default:
			return ctl_usage_error(TENCENT_CMD, TENCENT_SYNOPSIS, "unknown option '%s'",
					   argv[optind - 1]);
		}
	}
	if (optind < argc)
		return ctl_usage_error(TENCENT_CMD, TENCENT_SYNOPSIS, "unexpected argument '%s'",
				   argv[optind]);
	if (!l->product_id)
		return ctl_usage_error(TENCENT_CMD, TENCENT_SYNOPSIS, "--product-id is missing");
	if (!l->device_name)
		return ctl_usage_error(TENCENT_CMD, TENCENT_SYNOPSIS, "--device-name is missing");
	if (!a->secret_opt)
		return ctl_usage_error(TENCENT_CMD, TENCENT_SYNOPSIS,
				   "the PSK is missing: --psk or --psk-file");
	return 0;
}

static int sign_tencent(int argc, char **argv)
{
	struct tencent_args a = { .login = { .sign_method = GW_TENCENT_HMAC_SHA256 } };
	char reason[GW_TENCENT_REASON_MAX] = "";
	struct gw_tencent_connect c;
	char *secret;
	int r, ret = EXIT_FAILURE;

	r = parse_tencent_args(argc, argv, &a);
	if (r)
		return r < 0 ? EXIT_SUCCESS : r;
	if (a.secret_is_file) {
		secret = ctl_read_secret(TENCENT_CMD, a.secret_opt, a.secret_arg);
		if (!secret)
			return EXIT_FAILURE;
	} else {
		/* check_*_args() refused SECRET_NONE; clang-analyzer does not follow the variadic
		 * ctl_usage_error() and so thinks it returned 0 with no secret */
		secret = strdup(a.secret_arg); /* NOLINT(clang-analyzer-core.NonNullParamChecker) */
		if (!secret) {
			ctl_error(TENCENT_CMD, "out of memory");
			return EXIT_FAILURE;
		}
		/* Shortens the time the PSK shows in /proc/PID/cmdline; --psk-file avoids it. */
		explicit_bzero(a.secret_arg, strlen(a.secret_arg));
	}
	a.login.psk = secret;

	r = gw_tencent_build_connect(&a.login, &c, reason);
	if (r == -EINVAL) {
		ret = ctl_usage_error(TENCENT_CMD, TENCENT_SYNOPSIS, "%s", reason);
		goto out;
	}
	if (r < 0) {
		ctl_error(TENCENT_CMD, "%s", reason[0] ? reason : strerror(-r));
		goto out;
	}
	printf("host=%s\nport=%u\nclient_id=%s\nusername=%s\npassword=%s\n", c.host,
	       (unsigned)c.port, c.client_id, c.username, c.password);
	explicit_bzero(&c, sizeof(c));
	if (fflush(stdout) != 0 || ferror(stdout)) {
		ctl_error(TENCENT_CMD, "cannot write to standard output: %s", strerror(errno));
		goto out;
	}
	ret = EXIT_SUCCESS;
out:
	explicit_bzero(secret, strlen(secret));
	free(secret);
	return ret;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		main_help();
		return EXIT_SUCCESS;
	}
	if (argc >= 2 && (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V"))) {
		printf("sensorgwctl %s\n", GW_VERSION);
		return EXIT_SUCCESS;
	}
	if (argc >= 2 && argv[1][0] == '-')
		return ctl_usage_error(NULL, MAIN_SYNOPSIS, "unknown option '%s'", argv[1]);
	return dispatch(commands, N_ELEMENTS(commands), NULL, MAIN_SYNOPSIS, argc - 1, argv + 1);
}
