/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the Aliyun driver's pure half: signing against every test vector of
 * docs/protocols/aliyun.md §8 ("Test vectors"), CONNECT parameters for all login modes,
 * HTTPS and MQTT dynamic registration, Alink messages and topics. With GW_SENSORGWCTL set to
 * the built sensorgwctl, the "cli" case checks that `sensorgwctl sign aliyun` prints the same.
 */
#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctltest.h"
#include "gw/aliyun.h"

/* The inputs of docs/protocols/aliyun.md §8. */
#define PK "a1m7er1nJbQ"
#define DN "222222"
#define PRODUCT_SECRET "testProductSecret123"
#define DEVICE_SECRET "testDeviceSecret456"
#define RANDOM "8Ygb7ULYh53B6OA"
#define TS 1700000000000ULL
#define TS_STR "1700000000000"
#define REG_CONTENT "deviceName222222productKeya1m7er1nJbQrandom8Ygb7ULYh53B6OA"
#define DEV_CONTENT "clientId222222deviceName222222productKeya1m7er1nJbQtimestamp1700000000000"
#define DEV_CONTENT_LS \
	"clientIda1m7er1nJbQ.222222deviceName222222productKeya1m7er1nJbQtimestamp1700000000000"

/* ... and its outputs. */
#define REG_SHA256 "8e365e5891cb1ac119260f21d3f43738488ec6000ae25871b03580a57b668a9e"
#define REG_SHA256_UPPER "8E365E5891CB1AC119260F21D3F43738488EC6000AE25871B03580A57B668A9E"
#define REG_MD5 "015ced26e6f38a9e3758edcb3ac77bbc"
#define REG_SHA1 "6ec99e340ea044f1a8c1165b7fff5bff8bd50d0f"
#define REG_BODY                                                                       \
	"productKey=a1m7er1nJbQ&deviceName=222222&random=8Ygb7ULYh53B6OA&sign=" \
	REG_SHA256_UPPER "&signMethod=hmacsha256"
#define DEV_SHA256 "b9f9e4a922737331b05946fec3c8d3469f76c4a9a2952992113a6898f496b009"
#define DEV_SHA1 "e0c46ec3d05bd7d247b4c8375f6e2b3a0581eff3"
#define DEV_MD5 "b003c8a8affc26e9d8beb0ab7f2d86a6"
#define DEV_CID "222222|securemode=2,signmethod=hmacsha256,timestamp=1700000000000|"
#define DEV_USER "222222&a1m7er1nJbQ"
#define DEV_LS_SHA256 "2395a18e950ee17f8c376647a44f7d92216f821a316bc9f89ee71e51bb57b6b9"
#define LEGACY_HOST "a1m7er1nJbQ.iot-as-mqtt.cn-shanghai.aliyuncs.com"

static const char *sign(enum gw_aliyun_sign_method m, const char *key, const char *content,
			bool upper)
{
	static char buf[129];
	int r;

	r = gw_aliyun_sign_hex(m, key, strlen(key), content, strlen(content), upper, buf,
			       sizeof(buf));
	ck_assert_int_gt(r, 0);
	ck_assert_uint_eq((size_t)r, strlen(buf));
	return buf;
}

START_TEST(test_sign_vectors)
{
	ck_assert_str_eq(sign(GW_ALIYUN_HMAC_SHA256, PRODUCT_SECRET, REG_CONTENT, false),
			 REG_SHA256);
	ck_assert_str_eq(sign(GW_ALIYUN_HMAC_SHA256, PRODUCT_SECRET, REG_CONTENT, true),
			 REG_SHA256_UPPER);
	ck_assert_str_eq(sign(GW_ALIYUN_HMAC_MD5, PRODUCT_SECRET, REG_CONTENT, false), REG_MD5);
	ck_assert_str_eq(sign(GW_ALIYUN_HMAC_SHA1, PRODUCT_SECRET, REG_CONTENT, false), REG_SHA1);
	ck_assert_str_eq(sign(GW_ALIYUN_HMAC_SHA256, DEVICE_SECRET, DEV_CONTENT, false),
			 DEV_SHA256);
	ck_assert_str_eq(sign(GW_ALIYUN_HMAC_SHA1, DEVICE_SECRET, DEV_CONTENT, false), DEV_SHA1);
	ck_assert_str_eq(sign(GW_ALIYUN_HMAC_MD5, DEVICE_SECRET, DEV_CONTENT, false), DEV_MD5);
	ck_assert_str_eq(sign(GW_ALIYUN_HMAC_SHA256, DEVICE_SECRET, DEV_CONTENT_LS, false),
			 DEV_LS_SHA256);
}
END_TEST

START_TEST(test_sign_errors)
{
	char buf[65];

	ck_assert_int_eq(gw_aliyun_sign_hex(GW_ALIYUN_HMAC_SHA256, "k", 1, "c", 1, false, buf, 64),
			 -ENOBUFS);
	ck_assert_int_eq(gw_aliyun_sign_hex(GW_ALIYUN_HMAC_MD5, "k", 1, "c", 1, false, buf, 33),
			 32);
	ck_assert_int_eq(gw_aliyun_sign_hex((enum gw_aliyun_sign_method)7, "k", 1, "c", 1, false,
					    buf, sizeof(buf)),
			 -EINVAL);
}
END_TEST

START_TEST(test_names)
{
	enum gw_aliyun_sign_method m;
	enum gw_aliyun_auth a;

	ck_assert_int_eq(gw_aliyun_parse_sign_method("hmacsha1", &m), 0);
	ck_assert_int_eq(m, GW_ALIYUN_HMAC_SHA1);
	ck_assert_int_eq(gw_aliyun_parse_sign_method("hmacmd5", &m), 0);
	ck_assert_int_eq(m, GW_ALIYUN_HMAC_MD5);
	ck_assert_int_eq(gw_aliyun_parse_sign_method("hmacsha256", &m), 0);
	ck_assert_int_eq(m, GW_ALIYUN_HMAC_SHA256);
	ck_assert_int_eq(gw_aliyun_parse_sign_method("HmacSHA256", &m), -EINVAL);
	ck_assert_int_eq(gw_aliyun_parse_sign_method("sha256", &m), -EINVAL);
	ck_assert_str_eq(gw_aliyun_name_sign_method(GW_ALIYUN_HMAC_MD5), "hmacmd5");
	ck_assert_ptr_null(gw_aliyun_name_sign_method((enum gw_aliyun_sign_method)3));
	ck_assert_int_eq(gw_aliyun_parse_auth("regnwl", &a), 0);
	ck_assert_int_eq(a, GW_ALIYUN_AUTH_REGNWL);
	ck_assert_int_eq(gw_aliyun_parse_auth("connwl", &a), 0);
	ck_assert_int_eq(a, GW_ALIYUN_AUTH_CONNWL);
	ck_assert_int_eq(gw_aliyun_parse_auth("nwl", &a), -EINVAL);
	ck_assert_str_eq(gw_aliyun_name_auth(GW_ALIYUN_AUTH_REGISTER), "register");
}
END_TEST

static struct gw_aliyun_login device_login(void)
{
	return (struct gw_aliyun_login){
		.auth = GW_ALIYUN_AUTH_DEVICE,
		.product_key = PK,
		.device_name = DN,
		.secret = DEVICE_SECRET,
		.client_id = DN,
		.has_timestamp = true,
		.timestamp_ms = TS,
	};
}

START_TEST(test_connect_device_vectors)
{
	static const struct {
		enum gw_aliyun_sign_method m;
		const char *cid;
		const char *password;
	} v[] = {
		{ GW_ALIYUN_HMAC_SHA256, DEV_CID, DEV_SHA256 },
		{ GW_ALIYUN_HMAC_SHA1,
		  "222222|securemode=2,signmethod=hmacsha1,timestamp=1700000000000|", DEV_SHA1 },
		{ GW_ALIYUN_HMAC_MD5,
		  "222222|securemode=2,signmethod=hmacmd5,timestamp=1700000000000|", DEV_MD5 },
	};
	struct gw_aliyun_login l = device_login();
	struct gw_aliyun_connect c;
	size_t i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		l.sign_method = v[i].m;
		ck_assert_int_eq(gw_aliyun_build_connect(&l, &c, NULL), 0);
		ck_assert_str_eq(c.host, LEGACY_HOST);
		ck_assert_uint_eq(c.port, 443);
		ck_assert(c.tls);
		ck_assert_str_eq(c.client_id, v[i].cid);
		ck_assert_str_eq(c.username, DEV_USER);
		ck_assert_str_eq(c.password, v[i].password);
	}
}
END_TEST

START_TEST(test_connect_device_link_sdk_client_id)
{
	struct gw_aliyun_login l = device_login();
	struct gw_aliyun_connect c;

	/* No client id: "<pk>.<dn>", the Link-SDK-style vector of docs/protocols/aliyun.md §8. */
	l.client_id = NULL;
	ck_assert_int_eq(gw_aliyun_build_connect(&l, &c, NULL), 0);
	ck_assert_str_eq(c.client_id, "a1m7er1nJbQ.222222|securemode=2,signmethod=hmacsha256,"
				      "timestamp=1700000000000|");
	ck_assert_str_eq(c.password, DEV_LS_SHA256);
}
END_TEST

START_TEST(test_connect_device_variants)
{
	struct gw_aliyun_login l = device_login();
	struct gw_aliyun_connect c;

	/* Without a timestamp it is neither sent nor signed. */
	l.has_timestamp = false;
	ck_assert_int_eq(gw_aliyun_build_connect(&l, &c, NULL), 0);
	ck_assert_str_eq(c.client_id, "222222|securemode=2,signmethod=hmacsha256|");
	ck_assert_str_eq(c.password,
			 sign(GW_ALIYUN_HMAC_SHA256, DEVICE_SECRET,
			      "clientId222222deviceName222222productKeya1m7er1nJbQ", false));

	/* Instance endpoint: TLS on 8883. */
	l = device_login();
	l.instance_id = "iot-06z00ax1o4qxxxx";
	ck_assert_int_eq(gw_aliyun_build_connect(&l, &c, NULL), 0);
	ck_assert_str_eq(c.host, "iot-06z00ax1o4qxxxx.mqtt.iothub.aliyuncs.com");
	ck_assert_uint_eq(c.port, 8883);
	ck_assert_str_eq(c.client_id, DEV_CID);
	ck_assert_str_eq(c.password, DEV_SHA256);

	/* Plain TCP: securemode 3 on 1883, and the password does not change. */
	l = device_login();
	l.securemode = 3;
	l.region = "ap-southeast-1";
	ck_assert_int_eq(gw_aliyun_build_connect(&l, &c, NULL), 0);
	ck_assert_str_eq(c.host, "a1m7er1nJbQ.iot-as-mqtt.ap-southeast-1.aliyuncs.com");
	ck_assert_uint_eq(c.port, 1883);
	ck_assert(!c.tls);
	ck_assert_str_eq(c.client_id,
			 "222222|securemode=3,signmethod=hmacsha256,timestamp=1700000000000|");
	ck_assert_str_eq(c.password, DEV_SHA256);

	/* An explicit port wins. */
	l = device_login();
	l.port = 1883;
	ck_assert_int_eq(gw_aliyun_build_connect(&l, &c, NULL), 0);
	ck_assert_uint_eq(c.port, 1883);
	ck_assert(c.tls);

	/* DeviceNames may hold - _ @ . : */
	l = device_login();
	l.device_name = "a-b_c@d.e:f";
	ck_assert_int_eq(gw_aliyun_build_connect(&l, &c, NULL), 0);
	ck_assert_str_eq(c.username, "a-b_c@d.e:f&" PK);
}
END_TEST

START_TEST(test_connect_invalid)
{
	static const char cid65[] =
		"12345678901234567890123456789012345678901234567890123456789012345";
	char reason[GW_ALIYUN_REASON_MAX];
	struct gw_aliyun_login l;
	struct gw_aliyun_connect c;

#define REJECT(stmt)                                                                  \
	do {                                                                          \
		l = device_login();                                                   \
		stmt;                                                                 \
		memset(&c, 'x', sizeof(c));                                           \
		reason[0] = '\0';                                                     \
		ck_assert_int_eq(gw_aliyun_build_connect(&l, &c, reason), -EINVAL);  \
		ck_assert_str_eq(c.password, "");                                     \
		ck_assert_str_ne(reason, "");                                         \
	} while (0)

	REJECT(l.product_key = NULL);
	REJECT(l.product_key = "");
	REJECT(l.product_key = "a1.b");
	REJECT(l.device_name = NULL);
	REJECT(l.device_name = "a/b");
	REJECT(l.device_name = "a b");
	REJECT(l.device_name = "a|b");
	REJECT(l.secret = NULL);
	REJECT(l.secret = "");
	REJECT(l.secret = "two words");
	REJECT(l.secret = "line\n");
	REJECT(l.client_id = "");
	REJECT(l.client_id = "a|b");
	REJECT(l.client_id = cid65);
	REJECT((l.region = "cn-shanghai", l.instance_id = "iot-1"));
	REJECT(l.region = "cn_shanghai");
	REJECT(l.instance_id = "iot.1");
	REJECT(l.securemode = -2);
	REJECT(l.securemode = 1);
	REJECT(l.sign_method = (enum gw_aliyun_sign_method)9);
	REJECT(l.random = RANDOM);
	REJECT(l.auth = (enum gw_aliyun_auth)17);
	/* Register modes: the client id is fixed, a random is required, no timestamp, TLS. */
	REJECT((l.auth = GW_ALIYUN_AUTH_REGISTER, l.has_timestamp = false, l.client_id = NULL));
	REJECT((l.auth = GW_ALIYUN_AUTH_REGISTER, l.has_timestamp = false, l.random = RANDOM));
	REJECT((l.auth = GW_ALIYUN_AUTH_REGNWL, l.client_id = NULL, l.random = RANDOM));
	REJECT((l.auth = GW_ALIYUN_AUTH_REGNWL, l.client_id = NULL, l.has_timestamp = false,
		l.random = "8Ygb-7UL"));
	REJECT((l.auth = GW_ALIYUN_AUTH_REGNWL, l.client_id = NULL, l.has_timestamp = false,
		l.random = RANDOM, l.securemode = 3));
	/* connwl: a client id is required, the securemode is -2. */
	REJECT((l.auth = GW_ALIYUN_AUTH_CONNWL, l.has_timestamp = false, l.client_id = NULL));
	REJECT((l.auth = GW_ALIYUN_AUTH_CONNWL, l.has_timestamp = false, l.securemode = 2));
	REJECT((l.auth = GW_ALIYUN_AUTH_CONNWL, l.has_timestamp = true));
#undef REJECT
}
END_TEST

static struct gw_aliyun_login register_login(enum gw_aliyun_auth auth)
{
	return (struct gw_aliyun_login){
		.auth = auth,
		.product_key = PK,
		.device_name = DN,
		.secret = PRODUCT_SECRET,
		.random = RANDOM,
	};
}

START_TEST(test_connect_register)
{
	static const struct {
		enum gw_aliyun_sign_method m;
		const char *name;
		const char *password;
	} v[] = {
		{ GW_ALIYUN_HMAC_SHA256, "hmacsha256", REG_SHA256 },
		{ GW_ALIYUN_HMAC_SHA1, "hmacsha1", REG_SHA1 },
		{ GW_ALIYUN_HMAC_MD5, "hmacmd5", REG_MD5 },
	};
	static const enum gw_aliyun_auth auths[] = {
		GW_ALIYUN_AUTH_REGISTER,
		GW_ALIYUN_AUTH_REGNWL,
	};
	struct gw_aliyun_connect c;
	struct gw_aliyun_login l;
	char expect[256];
	size_t i, j;

	for (j = 0; j < 2; j++) {
		for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
			l = register_login(auths[j]);
			l.sign_method = v[i].m;
			ck_assert_int_eq(gw_aliyun_build_connect(&l, &c, NULL), 0);
			snprintf(expect, sizeof(expect),
				 "222222.a1m7er1nJbQ|random=8Ygb7ULYh53B6OA,authType=%s,"
				 "securemode=2,signmethod=%s|",
				 j ? "regnwl" : "register", v[i].name);
			ck_assert_str_eq(c.host, LEGACY_HOST);
			ck_assert_uint_eq(c.port, 443);
			ck_assert(c.tls);
			ck_assert_str_eq(c.client_id, expect);
			ck_assert_str_eq(c.username, DEV_USER);
			ck_assert_str_eq(c.password, v[i].password);
		}
	}

	/* Instance endpoint: instanceId joins the client id; securemode -2 on request. */
	l = register_login(GW_ALIYUN_AUTH_REGNWL);
	l.instance_id = "iot-06z00ax1o4qxxxx";
	l.securemode = -2;
	ck_assert_int_eq(gw_aliyun_build_connect(&l, &c, NULL), 0);
	ck_assert_str_eq(c.host, "iot-06z00ax1o4qxxxx.mqtt.iothub.aliyuncs.com");
	ck_assert_uint_eq(c.port, 8883);
	ck_assert_str_eq(c.client_id, "222222.a1m7er1nJbQ|random=8Ygb7ULYh53B6OA,authType=regnwl,"
				      "securemode=-2,signmethod=hmacsha256,"
				      "instanceId=iot-06z00ax1o4qxxxx|");
	ck_assert_str_eq(c.password, REG_SHA256);
}
END_TEST

START_TEST(test_connect_connwl)
{
	struct gw_aliyun_login l = {
		.auth = GW_ALIYUN_AUTH_CONNWL,
		.product_key = PK,
		.device_name = DN,
		.instance_id = "iot-06z00ax1o4qxxxx",
		.client_id = "a1m7er1nJbQ.222222_abc123",
		.secret = "Tok3n.With-Some_Chars=",
	};
	struct gw_aliyun_connect c;

	ck_assert_int_eq(gw_aliyun_build_connect(&l, &c, NULL), 0);
	ck_assert_str_eq(c.host, "iot-06z00ax1o4qxxxx.mqtt.iothub.aliyuncs.com");
	ck_assert_uint_eq(c.port, 8883);
	ck_assert_str_eq(c.client_id, "a1m7er1nJbQ.222222_abc123|securemode=-2,authType=connwl|");
	ck_assert_str_eq(c.username, DEV_USER);
	ck_assert_str_eq(c.password, "Tok3n.With-Some_Chars=");
}
END_TEST

START_TEST(test_hosts)
{
	char buf[GW_ALIYUN_HOST_MAX];

	ck_assert_int_eq(gw_aliyun_format_host(PK, NULL, NULL, buf, sizeof(buf)),
			 (int)strlen(LEGACY_HOST));
	ck_assert_str_eq(buf, LEGACY_HOST);
	ck_assert_int_gt(gw_aliyun_format_host(PK, "us-west-1", NULL, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "a1m7er1nJbQ.iot-as-mqtt.us-west-1.aliyuncs.com");
	ck_assert_int_gt(gw_aliyun_format_host(NULL, NULL, "iot-cn-abc", buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "iot-cn-abc.mqtt.iothub.aliyuncs.com");
	ck_assert_int_eq(gw_aliyun_format_host(PK, "cn-shanghai", "iot-1", buf, sizeof(buf)),
			 -EINVAL);
	ck_assert_int_eq(gw_aliyun_format_host(PK, NULL, NULL, buf, strlen(LEGACY_HOST)),
			 -ENOBUFS);
	ck_assert_int_eq(gw_aliyun_format_host(PK, NULL, NULL, buf, strlen(LEGACY_HOST) + 1),
			 (int)strlen(LEGACY_HOST));
	ck_assert_int_eq(gw_aliyun_format_host("a/b", NULL, NULL, buf, sizeof(buf)), -EINVAL);
}
END_TEST

START_TEST(test_random)
{
	char a[GW_ALIYUN_RANDOM_LEN + 1], b[GW_ALIYUN_RANDOM_LEN + 1];
	size_t i;

	ck_assert_int_eq(gw_aliyun_make_random(a, sizeof(a)), 0);
	ck_assert_int_eq(gw_aliyun_make_random(b, sizeof(b)), 0);
	ck_assert_uint_eq(strlen(a), GW_ALIYUN_RANDOM_LEN);
	for (i = 0; a[i]; i++)
		ck_assert(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
				 a[i]));
	ck_assert_str_ne(a, b);
	ck_assert_int_eq(gw_aliyun_make_random(a, GW_ALIYUN_RANDOM_LEN), -ENOBUFS);
}
END_TEST

START_TEST(test_https_request)
{
	struct gw_aliyun_https_request q;

	ck_assert_int_eq(gw_aliyun_build_https_register(NULL, PK, DN, PRODUCT_SECRET, RANDOM,
							GW_ALIYUN_HMAC_SHA256, &q),
			 0);
	ck_assert_str_eq(q.host, "iot-auth.cn-shanghai.aliyuncs.com");
	ck_assert_uint_eq(q.port, 443);
	ck_assert_str_eq(q.url, "https://iot-auth.cn-shanghai.aliyuncs.com/auth/register/device");
	ck_assert_str_eq(q.body, REG_BODY);

	ck_assert_int_eq(gw_aliyun_build_https_register("ap-northeast-1", PK, DN, PRODUCT_SECRET,
							RANDOM, GW_ALIYUN_HMAC_SHA1, &q),
			 0);
	ck_assert_str_eq(q.url,
			 "https://iot-auth.ap-northeast-1.aliyuncs.com/auth/register/device");
	ck_assert_str_eq(q.body, "productKey=a1m7er1nJbQ&deviceName=222222&random=8Ygb7ULYh53B6OA"
				 "&sign=6EC99E340EA044F1A8C1165B7FFF5BFF8BD50D0F"
				 "&signMethod=hmacsha1");
	ck_assert_int_eq(gw_aliyun_build_https_register(NULL, PK, DN, PRODUCT_SECRET, RANDOM,
							GW_ALIYUN_HMAC_MD5, &q),
			 0);
	ck_assert_ptr_nonnull(strstr(q.body, "&sign=015CED26E6F38A9E3758EDCB3AC77BBC&"
					     "signMethod=hmacmd5"));

	/* Form-encoding of the characters a DeviceName may hold; the sign covers the raw name. */
	ck_assert_int_eq(gw_aliyun_build_https_register(NULL, PK, "a@b:c.d-e_f", PRODUCT_SECRET,
							RANDOM, GW_ALIYUN_HMAC_SHA256, &q),
			 0);
	ck_assert_ptr_nonnull(strstr(q.body, "&deviceName=a%40b%3Ac.d-e_f&"));
	ck_assert_ptr_nonnull(
		strstr(q.body, sign(GW_ALIYUN_HMAC_SHA256, PRODUCT_SECRET,
				    "deviceNamea@b:c.d-e_fproductKeya1m7er1nJbQrandom" RANDOM,
				    true)));

	ck_assert_int_eq(gw_aliyun_build_https_register(NULL, PK, DN, "", RANDOM,
							GW_ALIYUN_HMAC_SHA256, &q),
			 -EINVAL);
	ck_assert_int_eq(gw_aliyun_build_https_register(NULL, PK, DN, PRODUCT_SECRET, "a&b",
							GW_ALIYUN_HMAC_SHA256, &q),
			 -EINVAL);
	ck_assert_int_eq(gw_aliyun_build_https_register("cn.shanghai", PK, DN, PRODUCT_SECRET,
							RANDOM, GW_ALIYUN_HMAC_SHA256, &q),
			 -EINVAL);
	ck_assert_str_eq(q.body, "");
}
END_TEST

#define REPLY_OK                                                                        \
	"{\"code\":200,\"data\":{\"deviceName\":\"222222\",\"deviceSecret\":\"adsfweafdsf\"," \
	"\"productKey\":\"a1m7er1nJbQ\"},\"message\":\"success\"}"

static int parse_https(const char *s, struct gw_aliyun_credentials *c, char *reason)
{
	return gw_aliyun_parse_https_register(s, strlen(s), c, reason);
}

START_TEST(test_https_reply_ok)
{
	char reason[GW_ALIYUN_REASON_MAX] = "";
	struct gw_aliyun_credentials c;

	ck_assert_int_eq(parse_https(REPLY_OK, &c, reason), 0);
	ck_assert_int_eq(c.code, 200);
	ck_assert_str_eq(c.device_secret, "adsfweafdsf");
	ck_assert_str_eq(c.message, "success");
	/* message is optional; unknown members are ignored; whitespace around is fine. */
	ck_assert_int_eq(parse_https(" {\"data\":{\"deviceSecret\":\"s\",\"x\":[1]},\"code\":200,"
				     "\"requestId\":\"r\"}\r\n",
				     &c, reason),
			 0);
	ck_assert_str_eq(c.device_secret, "s");
	ck_assert_str_eq(c.message, "");
}
END_TEST

START_TEST(test_https_reply_refused)
{
	char reason[GW_ALIYUN_REASON_MAX] = "";
	struct gw_aliyun_credentials c;

	ck_assert_int_eq(parse_https("{\"code\":6288,\"message\":\"device is activated\"}", &c,
				     reason),
			 -EREMOTEIO);
	ck_assert_int_eq(c.code, 6288);
	ck_assert_str_eq(c.message, "device is activated");
	ck_assert_str_eq(c.device_secret, "");
	ck_assert_ptr_nonnull(strstr(reason, "6288"));
	ck_assert_ptr_nonnull(strstr(reason, "device is activated"));

	/* An error with a data object holding a secret is still an error. */
	ck_assert_int_eq(
		parse_https("{\"code\":460,\"data\":{\"deviceSecret\":\"s\"}}", &c, reason),
		-EREMOTEIO);
	ck_assert_int_eq(c.code, 460);
	ck_assert_str_eq(c.device_secret, "");
	ck_assert_str_eq(c.message, "");

	/* Control characters in the message are masked; long UTF-8 is cut at a boundary. */
	ck_assert_int_eq(parse_https("{\"code\":500,\"message\":\"a\\nb\\u001bc\"}", &c, reason),
			 -EREMOTEIO);
	ck_assert_str_eq(c.message, "a?b?c");
	{
		char big[1024];
		size_t n, i;

		n = (size_t)snprintf(big, sizeof(big), "{\"code\":500,\"message\":\"");
		for (i = 0; i < 100; i++)
			n += (size_t)snprintf(big + n, sizeof(big) - n, "设");
		snprintf(big + n, sizeof(big) - n, "\"}");
		ck_assert_int_eq(parse_https(big, &c, reason), -EREMOTEIO);
		ck_assert_uint_eq(strlen(c.message), 126); /* 42 three-byte characters */
		ck_assert_int_eq(strncmp(c.message, "设设", 6), 0);
	}
}
END_TEST

START_TEST(test_https_reply_truncated)
{
	char reason[GW_ALIYUN_REASON_MAX];
	struct gw_aliyun_credentials c;
	size_t len = strlen(REPLY_OK), i;

	for (i = 0; i < len; i++) {
		reason[0] = '\0';
		ck_assert_msg(gw_aliyun_parse_https_register(REPLY_OK, i, &c, reason) == -EBADMSG,
			      "truncated to %zu bytes", i);
		ck_assert_str_ne(reason, "");
		/* A truncated reply never leaks the part of the secret it holds. */
		ck_assert_ptr_null(strstr(reason, "adsf"));
		ck_assert_str_eq(c.device_secret, "");
	}
	ck_assert_int_eq(gw_aliyun_parse_https_register(REPLY_OK, len, &c, reason), 0);
}
END_TEST

START_TEST(test_https_reply_malformed)
{
	static const char *const bad[] = {
		"",
		"null",
		"200",
		"[200]",
		"\"code\"",
		"{}",
		"{\"data\":{\"deviceSecret\":\"s\"}}",
		"{\"code\":\"200\",\"data\":{\"deviceSecret\":\"s\"}}",
		"{\"code\":200.0,\"data\":{\"deviceSecret\":\"s\"}}",
		"{\"code\":true,\"data\":{\"deviceSecret\":\"s\"}}",
		"{\"code\":null,\"data\":{\"deviceSecret\":\"s\"}}",
		"{\"code\":99999999999,\"data\":{\"deviceSecret\":\"s\"}}",
		"{\"code\":200}",
		"{\"code\":200,\"data\":null}",
		"{\"code\":200,\"data\":\"s\"}",
		"{\"code\":200,\"data\":[]}",
		"{\"code\":200,\"data\":{}}",
		"{\"code\":200,\"deviceSecret\":\"s\",\"data\":{}}",
		"{\"code\":200,\"data\":{\"deviceSecret\":5}}",
		"{\"code\":200,\"data\":{\"deviceSecret\":null}}",
		"{\"code\":200,\"data\":{\"deviceSecret\":\"\"}}",
		"{\"code\":200,\"data\":{\"deviceSecret\":\"a b\"}}",
		"{\"code\":200,\"data\":{\"deviceSecret\":\"a\\u0000b\"}}",
		"{\"code\":200,\"data\":{\"deviceSecret\":\"\\u00e9\"}}",
		"{\"code\":200,\"data\":{\"deviceSecret\":\"s\"},\"message\":7}",
		"{\"code\":404,\"message\":[\"not found\"]}",
		"{\"code\":200,\"code\":200,\"data\":{\"deviceSecret\":\"s\"}}",
		"{\"code\":200,\"data\":{\"deviceSecret\":\"s\"}} {}",
		"{\"code\":200,\"data\":{\"deviceSecret\":\"s\"}}x",
		"<html>502 Bad Gateway</html>",
	};
	char reason[GW_ALIYUN_REASON_MAX];
	struct gw_aliyun_credentials c;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		reason[0] = '\0';
		ck_assert_msg(parse_https(bad[i], &c, reason) == -EBADMSG, "accepted %s", bad[i]);
		ck_assert_msg(reason[0], "no reason for %s", bad[i]);
		ck_assert_str_eq(c.device_secret, "");
	}
	/* An embedded NUL byte. */
	ck_assert_int_eq(gw_aliyun_parse_https_register("{\"code\":200\0}", 13, &c, reason),
			 -EBADMSG);
	/* A secret of 128 bytes fits, 129 does not. */
	{
		char buf[512], secret[130];

		memset(secret, 'k', 129);
		secret[128] = '\0';
		snprintf(buf, sizeof(buf), "{\"code\":200,\"data\":{\"deviceSecret\":\"%s\"}}",
			 secret);
		ck_assert_int_eq(parse_https(buf, &c, reason), 0);
		ck_assert_str_eq(c.device_secret, secret);
		secret[128] = 'k';
		secret[129] = '\0';
		snprintf(buf, sizeof(buf), "{\"code\":200,\"data\":{\"deviceSecret\":\"%s\"}}",
			 secret);
		ck_assert_int_eq(parse_https(buf, &c, reason), -EBADMSG);
	}
}
END_TEST

START_TEST(test_https_reply_oversize)
{
	char reason[GW_ALIYUN_REASON_MAX] = "";
	struct gw_aliyun_credentials c;
	size_t n = GW_ALIYUN_HTTPS_REPLY_MAX + 1, head;
	char *buf = malloc(n + 1);

	ck_assert_ptr_nonnull(buf);
	/* A valid reply padded with whitespace: refused by size alone. */
	head = (size_t)snprintf(buf, n + 1, "%s", REPLY_OK);
	memset(buf + head, ' ', n - head);
	buf[n] = '\0';
	ck_assert_int_eq(gw_aliyun_parse_https_register(buf, n, &c, reason), -EMSGSIZE);
	ck_assert_str_ne(reason, "");
	ck_assert_int_eq(gw_aliyun_parse_https_register(buf, n - 1, &c, reason), 0);
	free(buf);
}
END_TEST

static int parse_push(enum gw_aliyun_auth auth, const char *s, struct gw_aliyun_credentials *c)
{
	char reason[GW_ALIYUN_REASON_MAX] = "";
	int r = gw_aliyun_parse_register_push(auth, PK, DN, s, strlen(s), c, reason);

	if (r < 0)
		ck_assert_str_ne(reason, "");
	return r;
}

#define PUSH_NWL                                                                      \
	"{\"productKey\":\"a1m7er1nJbQ\",\"deviceName\":\"222222\",\"clientId\":\"a1m7er1nJbQ." \
	"222222|x\",\"deviceToken\":\"t0k3n\"}"

START_TEST(test_register_push)
{
	struct gw_aliyun_credentials c;
	char buf[256];
	size_t i, len;

	ck_assert_int_eq(parse_push(GW_ALIYUN_AUTH_REGISTER,
				    "{\"productKey\":\"a1m7er1nJbQ\",\"deviceName\":\"222222\","
				    "\"deviceSecret\":\"ds123\"}",
				    &c),
			 0);
	ck_assert_str_eq(c.device_secret, "ds123");
	ck_assert_int_eq(c.code, 200);
	ck_assert_int_eq(parse_push(GW_ALIYUN_AUTH_REGISTER, "{\"deviceSecret\":\"ds123\"}", &c),
			 0);
	ck_assert_str_eq(c.device_secret, "ds123");

	ck_assert_int_eq(parse_push(GW_ALIYUN_AUTH_REGNWL,
				    "{\"productKey\":\"a1m7er1nJbQ\",\"deviceName\":\"222222\","
				    "\"clientId\":\"a1m7er1nJbQ.222222_x9\","
				    "\"deviceToken\":\"t0k3n\"}",
				    &c),
			 0);
	ck_assert_str_eq(c.client_id, "a1m7er1nJbQ.222222_x9");
	ck_assert_str_eq(c.device_token, "t0k3n");
	ck_assert_str_eq(c.device_secret, "");

	/* Wrong kind of push, another device, '|' in the client id, missing or mistyped. */
	ck_assert_int_eq(parse_push(GW_ALIYUN_AUTH_REGISTER,
				    "{\"clientId\":\"c\",\"deviceToken\":\"t\"}", &c),
			 -EBADMSG);
	ck_assert_int_eq(parse_push(GW_ALIYUN_AUTH_REGNWL, "{\"deviceSecret\":\"ds\"}", &c),
			 -EBADMSG);
	ck_assert_int_eq(parse_push(GW_ALIYUN_AUTH_REGISTER,
				    "{\"productKey\":\"other\",\"deviceSecret\":\"ds\"}", &c),
			 -EBADMSG);
	ck_assert_int_eq(parse_push(GW_ALIYUN_AUTH_REGISTER,
				    "{\"deviceName\":\"2222222\",\"deviceSecret\":\"ds\"}", &c),
			 -EBADMSG);
	ck_assert_int_eq(parse_push(GW_ALIYUN_AUTH_REGISTER,
				    "{\"deviceName\":222222,\"deviceSecret\":\"ds\"}", &c),
			 -EBADMSG);
	ck_assert_int_eq(parse_push(GW_ALIYUN_AUTH_REGNWL, PUSH_NWL, &c), -EBADMSG);
	ck_assert_str_eq(c.client_id, "");
	ck_assert_int_eq(parse_push(GW_ALIYUN_AUTH_REGNWL, "{\"clientId\":\"c\"}", &c), -EBADMSG);
	ck_assert_int_eq(parse_push(GW_ALIYUN_AUTH_REGNWL,
				    "{\"clientId\":\"c\",\"deviceToken\":1}", &c),
			 -EBADMSG);
	ck_assert_int_eq(parse_push(GW_ALIYUN_AUTH_REGNWL,
				    "{\"clientId\":[],\"deviceToken\":\"t\"}", &c),
			 -EBADMSG);
	ck_assert_int_eq(parse_push(GW_ALIYUN_AUTH_DEVICE, "{\"deviceSecret\":\"ds\"}", &c),
			 -EINVAL);

	/* Every truncation of a good regnwl push. */
	len = (size_t)snprintf(buf, sizeof(buf), "%s",
			       "{\"productKey\":\"a1m7er1nJbQ\",\"deviceName\":\"222222\","
			       "\"clientId\":\"cid\",\"deviceToken\":\"tok\"}");
	for (i = 0; i < len; i++)
		ck_assert_msg(gw_aliyun_parse_register_push(GW_ALIYUN_AUTH_REGNWL, PK, DN, buf, i,
							    &c, NULL) == -EBADMSG,
			      "truncated to %zu", i);
	ck_assert_int_eq(
		gw_aliyun_parse_register_push(GW_ALIYUN_AUTH_REGNWL, PK, DN, buf, len, &c, NULL),
		0);
	ck_assert_int_eq(gw_aliyun_parse_register_push(GW_ALIYUN_AUTH_REGNWL, PK, DN, buf,
						       GW_ALIYUN_DOWNLINK_MAX + 1, &c, NULL),
			 -EMSGSIZE);
}
END_TEST

/* Compares a built payload with the expected JSON, as JSON and as bytes. */
#define EV_VT GW_ALIYUN_EVENT_VALUE_TIME
#define EV_OUT GW_ALIYUN_EVENT_OUTPUTS

static void assert_json(const char *got, const char *expect)
{
	json_t *a = json_loads(got, 0, NULL), *b = json_loads(expect, 0, NULL);

	ck_assert_msg(a, "not JSON: %s", got);
	ck_assert_ptr_nonnull(b);
	ck_assert_msg(json_equal(a, b), "got %s, expected %s", got, expect);
	ck_assert_str_eq(got, expect);
	json_decref(a);
	json_decref(b);
}

START_TEST(test_property_post)
{
	json_t *params = json_pack("{s:s,s:f,s:I,s:b,s:f}", "Power", "on", "WF", 23.6, "MQ2",
				   (json_int_t)30, "ok", 1, "T", 10.0);
	char *s = NULL;
	size_t len = 0;

	ck_assert_ptr_nonnull(params);
	ck_assert_int_eq(gw_aliyun_build_property_post(42, params, -1, true, &s, &len), 0);
	assert_json(s, "{\"id\":\"42\",\"version\":\"1.0\",\"params\":{\"Power\":\"on\","
		       "\"WF\":23.6,\"MQ2\":30,\"ok\":1,\"T\":10.0},"
		       "\"method\":\"thing.event.property.post\"}");
	ck_assert_uint_eq(len, strlen(s));
	free(s);

	/* Replay: each value with the time of its reading; no reply wanted. */
	ck_assert_int_eq(gw_aliyun_build_property_post(4294967295u, params, 1524448722000, false,
						       &s, NULL),
			 0);
	assert_json(s, "{\"id\":\"4294967295\",\"version\":\"1.0\",\"sys\":{\"ack\":0},"
		       "\"params\":{\"Power\":{\"value\":\"on\",\"time\":1524448722000},"
		       "\"WF\":{\"value\":23.6,\"time\":1524448722000},"
		       "\"MQ2\":{\"value\":30,\"time\":1524448722000},"
		       "\"ok\":{\"value\":1,\"time\":1524448722000},"
		       "\"T\":{\"value\":10.0,\"time\":1524448722000}},"
		       "\"method\":\"thing.event.property.post\"}");
	free(s);

	ck_assert_int_eq(gw_aliyun_build_property_post(0, params, 0, true, &s, NULL), 0);
	ck_assert_ptr_nonnull(strstr(s, "\"id\":\"0\""));
	ck_assert_ptr_nonnull(strstr(s, "\"time\":0}"));
	free(s);

	/* The caller's params are borrowed and untouched (the bool too). */
	ck_assert_int_eq(params->refcount, 1);
	ck_assert(json_is_string(json_object_get(params, "Power")));
	ck_assert(json_is_true(json_object_get(params, "ok")));
	json_decref(params);

	ck_assert_int_eq(gw_aliyun_build_property_post(1, NULL, -1, true, &s, NULL), -EINVAL);
	params = json_array();
	ck_assert_int_eq(gw_aliyun_build_property_post(1, params, -1, true, &s, NULL), -EINVAL);
	json_decref(params);
}
END_TEST

/* A thing model's bool is 0/1 (docs/protocols/aliyun.md §5): JSON true/false from a record
 * (a text or binary frame's bool) or a node's reply go out as 1/0, at any depth. */
START_TEST(test_bools_as_ints)
{
	json_t *params = json_pack("{s:b,s:b,s:i,s:{s:b},s:[b,i]}", "on", 1, "fault", 0, "n", 2,
				   "st", "ok", 1, "arr", 0, 7);
	json_t *out = json_pack("{s:b}", "heater", 1);
	char *s = NULL;

	ck_assert_int_eq(gw_aliyun_build_property_post(1, params, -1, true, &s, NULL), 0);
	assert_json(s, "{\"id\":\"1\",\"version\":\"1.0\",\"params\":{\"on\":1,\"fault\":0,"
		       "\"n\":2,\"st\":{\"ok\":1},\"arr\":[0,7]},"
		       "\"method\":\"thing.event.property.post\"}");
	free(s);
	ck_assert_int_eq(gw_aliyun_build_property_post(2, params, 5, true, &s, NULL), 0);
	ck_assert_ptr_nonnull(strstr(s, "\"on\":{\"value\":1,\"time\":5}"));
	ck_assert_ptr_nonnull(strstr(s, "\"fault\":{\"value\":0,\"time\":5}"));
	free(s);
	ck_assert_int_eq(gw_aliyun_build_event_post(3, "alarm", params, 5, EV_VT, true, &s, NULL),
			 0);
	assert_json(s, "{\"id\":\"3\",\"version\":\"1.0\",\"params\":{\"value\":{\"on\":1,"
		       "\"fault\":0,\"n\":2,\"st\":{\"ok\":1},\"arr\":[0,7]},\"time\":5},"
		       "\"method\":\"thing.event.alarm.post\"}");
	free(s);
	ck_assert_int_eq(gw_aliyun_build_reply("9", 200, out, &s, NULL), 0);
	assert_json(s, "{\"id\":\"9\",\"code\":200,\"data\":{\"heater\":1}}");
	free(s);
	ck_assert_int_eq(gw_aliyun_build_reply_message("9", 200, out, "ok", &s, NULL), 0);
	assert_json(s, "{\"id\":\"9\",\"code\":200,\"data\":{\"heater\":1},"
		       "\"message\":\"ok\"}");
	free(s);
	/* borrowed and untouched */
	ck_assert(json_is_true(json_object_get(params, "on")));
	ck_assert(json_is_true(json_object_get(json_object_get(params, "st"), "ok")));
	ck_assert(json_is_true(json_object_get(out, "heater")));
	ck_assert_int_eq(params->refcount, 1);
	ck_assert_int_eq(out->refcount, 1);
	json_decref(params);
	json_decref(out);
}
END_TEST

START_TEST(test_event_post)
{
	json_t *value = json_pack("{s:i,s:s,s:b}", "level", 3, "src", "MQ2", "on", 1);
	char *s = NULL;

	/* the documented form: outputs under value, the reading's time beside them */
	ck_assert_int_eq(gw_aliyun_build_event_post(7, "alarm", value, 1700000000123, EV_VT, true,
						    &s, NULL),
			 0);
	assert_json(s, "{\"id\":\"7\",\"version\":\"1.0\",\"params\":{\"value\":{\"level\":3,"
		       "\"src\":\"MQ2\",\"on\":1},\"time\":1700000000123},"
		       "\"method\":\"thing.event.alarm.post\"}");
	free(s);
	ck_assert_int_eq(gw_aliyun_build_event_post(8, "alarm", value, 5, EV_VT, false, &s, NULL),
			 0);
	assert_json(s, "{\"id\":\"8\",\"version\":\"1.0\",\"sys\":{\"ack\":0},\"params\":{"
		       "\"value\":{\"level\":3,\"src\":\"MQ2\",\"on\":1},\"time\":5},"
		       "\"method\":\"thing.event.alarm.post\"}");
	free(s);
	/* the SDKs' form (docs/protocols/aliyun.md §5): the outputs are the params, no time */
	ck_assert_int_eq(gw_aliyun_build_event_post(9, "alarm", value, 1700000000123, EV_OUT, true,
						    &s, NULL),
			 0);
	assert_json(s, "{\"id\":\"9\",\"version\":\"1.0\",\"params\":{\"level\":3,"
		       "\"src\":\"MQ2\",\"on\":1},\"method\":\"thing.event.alarm.post\"}");
	free(s);
	ck_assert_int_eq(gw_aliyun_build_event_post(10, "alarm", value, 5, EV_OUT, false, &s, NULL),
			 0);
	assert_json(s, "{\"id\":\"10\",\"version\":\"1.0\",\"sys\":{\"ack\":0},\"params\":{"
		       "\"level\":3,\"src\":\"MQ2\",\"on\":1},"
		       "\"method\":\"thing.event.alarm.post\"}");
	free(s);
	/* an event without outputs */
	{
		json_t *none = json_object();

		ck_assert_int_eq(gw_aliyun_build_event_post(11, "boot", none, 5, EV_OUT, true, &s,
							    NULL),
				 0);
		assert_json(s, "{\"id\":\"11\",\"version\":\"1.0\",\"params\":{},"
			       "\"method\":\"thing.event.boot.post\"}");
		free(s);
		ck_assert_int_eq(none->refcount, 1);
		json_decref(none);
	}

	for (int f = EV_VT; f <= EV_OUT; f++) {
		enum gw_aliyun_event_form form = (enum gw_aliyun_event_form)f;

		ck_assert_int_eq(gw_aliyun_build_event_post(1, "property", value, 5, form, true, &s,
							    NULL),
				 -EINVAL);
		ck_assert_int_eq(gw_aliyun_build_event_post(1, "a/b", value, 5, form, true, &s,
							    NULL),
				 -EINVAL);
		ck_assert_int_eq(gw_aliyun_build_event_post(1, "+", value, 5, form, true, &s, NULL),
				 -EINVAL);
		ck_assert_int_eq(gw_aliyun_build_event_post(1, "", value, 5, form, true, &s, NULL),
				 -EINVAL);
		ck_assert_int_eq(gw_aliyun_build_event_post(1, "alarm", value, -1, form, true, &s,
							    NULL),
				 -EINVAL);
		ck_assert_int_eq(gw_aliyun_build_event_post(1, "alarm", NULL, 5, form, true, &s,
							    NULL),
				 -EINVAL);
	}
	ck_assert_int_eq(gw_aliyun_build_event_post(1, "alarm", value, 5,
						    (enum gw_aliyun_event_form)2, true, &s, NULL),
			 -EINVAL);
	/* borrowed and untouched: the bool is still true */
	ck_assert(json_is_true(json_object_get(value, "on")));
	ck_assert_int_eq(value->refcount, 1);
	json_decref(value);
}
END_TEST

static int parse_reply(const char *s, struct gw_aliyun_post_reply *r)
{
	char reason[GW_ALIYUN_REASON_MAX] = "";
	int ret = gw_aliyun_parse_post_reply(s, strlen(s), r, reason);

	if (ret < 0)
		ck_assert_str_ne(reason, "");
	return ret;
}

START_TEST(test_post_reply)
{
	static const char ok[] = "{\"code\":200,\"data\":{},\"id\":\"123\","
				 "\"message\":\"success\",\"version\":\"1.0\"}";
	struct gw_aliyun_post_reply r;
	size_t i;

	ck_assert_int_eq(parse_reply(ok, &r), 0);
	ck_assert_uint_eq(r.id, 123);
	ck_assert_int_eq(r.code, 200);
	ck_assert_str_eq(r.message, "success");

	ck_assert_int_eq(parse_reply("{\"code\":6813,\"data\":{},\"id\":\"4294967295\","
				     "\"message\":\"topic illegal\",\"version\":\"1.0\"}",
				     &r),
			 0);
	ck_assert_uint_eq(r.id, 4294967295u);
	ck_assert_int_eq(r.code, 6813);
	ck_assert_str_eq(r.message, "topic illegal");
	ck_assert_int_eq(parse_reply("{\"code\":429,\"id\":\"0\"}", &r), 0);
	ck_assert_int_eq(r.code, 429);
	ck_assert_str_eq(r.message, "");

	ck_assert_int_eq(parse_reply("{\"code\":200,\"id\":123}", &r), -EBADMSG);
	ck_assert_int_eq(parse_reply("{\"code\":200,\"id\":\"4294967296\"}", &r), -EBADMSG);
	ck_assert_int_eq(parse_reply("{\"code\":200,\"id\":\"12345678901\"}", &r), -EBADMSG);
	ck_assert_int_eq(parse_reply("{\"code\":200,\"id\":\"-1\"}", &r), -EBADMSG);
	ck_assert_int_eq(parse_reply("{\"code\":200,\"id\":\"\"}", &r), -EBADMSG);
	ck_assert_int_eq(parse_reply("{\"code\":200,\"id\":\"1 \"}", &r), -EBADMSG);
	ck_assert_int_eq(parse_reply("{\"code\":200}", &r), -EBADMSG);
	ck_assert_int_eq(parse_reply("{\"id\":\"1\"}", &r), -EBADMSG);
	ck_assert_int_eq(parse_reply("{\"code\":\"200\",\"id\":\"1\"}", &r), -EBADMSG);
	ck_assert_int_eq(parse_reply("{\"code\":200,\"id\":\"1\",\"message\":false}", &r),
			 -EBADMSG);
	ck_assert_int_eq(parse_reply("[]", &r), -EBADMSG);
	for (i = 0; i < sizeof(ok) - 1; i++)
		ck_assert_msg(gw_aliyun_parse_post_reply(ok, i, &r, NULL) == -EBADMSG,
			      "truncated to %zu", i);
	ck_assert_int_eq(gw_aliyun_parse_post_reply(ok, GW_ALIYUN_DOWNLINK_MAX + 1, &r, NULL),
			 -EMSGSIZE);
}
END_TEST

static int pset(const char *s, struct gw_aliyun_request *q, char *reason)
{
	return gw_aliyun_parse_property_set(s, strlen(s), q, reason);
}

START_TEST(test_property_set)
{
	static const char set[] = "{\"method\":\"thing.service.property.set\",\"id\":\"223\","
				  "\"params\":{\"LED\":1,\"Target\":21.5},\"version\":\"1.0\"}";
	char reason[GW_ALIYUN_REASON_MAX] = "";
	struct gw_aliyun_request q;
	char *s = NULL;
	size_t i;

	ck_assert_int_eq(gw_aliyun_parse_property_set(set, strlen(set), &q, reason), 0);
	ck_assert_str_eq(q.id, "223");
	ck_assert_uint_eq(q.id_num, 223);
	ck_assert(json_is_object(q.params));
	ck_assert_int_eq(json_integer_value(json_object_get(q.params, "LED")), 1);
	ck_assert(json_real_value(json_object_get(q.params, "Target")) == 21.5);

	ck_assert_int_eq(gw_aliyun_build_reply(q.id, 200, NULL, &s, NULL), 0);
	assert_json(s, "{\"id\":\"223\",\"code\":200,\"data\":{}}");
	free(s);
	json_decref(q.params);

	/* method is optional, but must be the right one when present. */
	ck_assert_int_eq(pset("{\"id\":\"1\",\"params\":{}}", &q, reason),
			 0);
	json_decref(q.params);
	ck_assert_int_eq(pset("{\"id\":\"1\",\"params\":{},\"method\":\"thing.service.x\"}", &q,
			      reason),
			 -EBADMSG);
	ck_assert_ptr_null(q.params);

	/* Bad params: the id is known, so the caller can still answer with an error code. */
	ck_assert_int_eq(pset("{\"id\":\"77\",\"params\":[1]}", &q, reason),
			 -EBADMSG);
	ck_assert_str_eq(q.id, "77");
	ck_assert_ptr_null(q.params);
	ck_assert_int_eq(gw_aliyun_build_reply(q.id, 460, NULL, &s, NULL), 0);
	assert_json(s, "{\"id\":\"77\",\"code\":460,\"data\":{}}");
	free(s);
	ck_assert_int_eq(pset("{\"id\":\"77\"}", &q, reason),
			 -EBADMSG);
	ck_assert_str_eq(q.id, "77");
	ck_assert_int_eq(pset("{\"id\":77,\"params\":{}}", &q, reason),
			 -EBADMSG);
	ck_assert_str_eq(q.id, "");

	for (i = 0; i < sizeof(set) - 1; i++) {
		ck_assert_msg(gw_aliyun_parse_property_set(set, i, &q, NULL) == -EBADMSG,
			      "truncated to %zu", i);
		ck_assert_ptr_null(q.params);
	}
	ck_assert_int_eq(gw_aliyun_parse_property_set(set, GW_ALIYUN_DOWNLINK_MAX + 1, &q, NULL),
			 -EMSGSIZE);
}
END_TEST

START_TEST(test_service_call)
{
	static const char call[] = "{\"method\":\"thing.service.reboot\",\"id\":\"9\","
				   "\"params\":{\"delay\":5},\"version\":\"1.0\"}";
	char reason[GW_ALIYUN_REASON_MAX] = "";
	struct gw_aliyun_request q;
	json_t *out;
	char *s = NULL;

	ck_assert_int_eq(gw_aliyun_parse_service_call("reboot", call, strlen(call), &q, reason),
			 0);
	ck_assert_str_eq(q.id, "9");
	ck_assert_int_eq(json_integer_value(json_object_get(q.params, "delay")), 5);
	json_decref(q.params);

	out = json_pack("{s:s}", "result", "ok");
	ck_assert_int_eq(gw_aliyun_build_reply(q.id, 200, out, &s, NULL), 0);
	assert_json(s, "{\"id\":\"9\",\"code\":200,\"data\":{\"result\":\"ok\"}}");
	free(s);
	ck_assert_int_eq(out->refcount, 1);
	json_decref(out);

	/* A call for another service on this topic. */
	ck_assert_int_eq(gw_aliyun_parse_service_call("reset", call, strlen(call), &q, reason),
			 -EBADMSG);
	ck_assert_str_eq(q.id, "9");
	ck_assert_int_eq(gw_aliyun_parse_service_call("a/b", call, strlen(call), &q, reason),
			 -EINVAL);
	ck_assert_int_eq(gw_aliyun_parse_service_call("property", call, strlen(call), &q, reason),
			 -EINVAL);

	ck_assert_int_eq(gw_aliyun_build_reply("x", 200, NULL, &s, NULL), -EINVAL);
	ck_assert_int_eq(gw_aliyun_build_reply("", 200, NULL, &s, NULL), -EINVAL);
	out = json_array();
	ck_assert_int_eq(gw_aliyun_build_reply("1", 200, out, &s, NULL), -EINVAL);
	json_decref(out);
}
END_TEST

/* Classic RRPC payloads: an Alink request that names its method. */
START_TEST(test_rrpc_request)
{
	static const char set[] = "{\"id\":\"5\",\"version\":\"1.0\","
				  "\"method\":\"thing.service.property.set\","
				  "\"params\":{\"led\":true}}";
	static const char call[] = "{\"id\":\"6\",\"method\":\"thing.service.ping\","
				   "\"params\":{}}";
	static const char *const bad[] = {
		"ping",
		"{\"id\":\"7\",\"params\":{}}",
		"{\"id\":\"7\",\"method\":\"thing.event.property.post\",\"params\":{}}",
		"{\"id\":\"7\",\"method\":\"thing.service.property.get\",\"params\":{}}",
		"{\"id\":\"7\",\"method\":\"thing.service.ping_reply\",\"params\":{}}",
		"{\"id\":\"7\",\"method\":\"thing.service.ping\",\"params\":[]}",
		"{\"method\":\"thing.service.ping\",\"params\":{}}",
	};
	struct gw_aliyun_request q;
	enum gw_aliyun_topic kind;
	char service[GW_ALIYUN_ID_MAX];
	char reason[GW_ALIYUN_REASON_MAX];
	char *s = NULL;
	json_t *data;

	ck_assert_int_eq(gw_aliyun_parse_rrpc_request(set, strlen(set), &q, &kind, service,
						      reason), 0);
	ck_assert_int_eq(kind, GW_ALIYUN_TOPIC_PROPERTY_SET);
	ck_assert_str_eq(q.id, "5");
	ck_assert_str_eq(service, "");
	ck_assert(json_is_true(json_object_get(q.params, "led")));
	json_decref(q.params);
	ck_assert_int_eq(gw_aliyun_parse_rrpc_request(call, strlen(call), &q, &kind, service,
						      reason), 0);
	ck_assert_int_eq(kind, GW_ALIYUN_TOPIC_SERVICE);
	ck_assert_str_eq(service, "ping");
	json_decref(q.params);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(gw_aliyun_parse_rrpc_request(bad[i], strlen(bad[i]), &q, &kind,
							      service, reason), -EBADMSG);
		ck_assert_ptr_null(q.params);
		ck_assert_str_eq(q.id, i == 0 || i == 6 ? "" : "7");
		ck_assert_str_eq(service, "");
		ck_assert(reason[0]);
	}

	ck_assert_int_eq(gw_aliyun_build_reply_message("7", 460, NULL, "no \"method\"", &s,
						       NULL), 0);
	assert_json(s, "{\"id\":\"7\",\"code\":460,\"data\":{},\"message\":\"no \\\"method\\\"\"}");
	free(s);
	ck_assert_int_eq(gw_aliyun_build_reply_message(NULL, 460, NULL, "not JSON", &s, NULL), 0);
	assert_json(s, "{\"code\":460,\"data\":{},\"message\":\"not JSON\"}");
	free(s);
	data = json_pack("{s:i}", "x", 1);
	ck_assert_int_eq(gw_aliyun_build_reply_message("8", 422, data, "node said no", &s, NULL),
			 0);
	assert_json(s, "{\"id\":\"8\",\"code\":422,\"data\":{\"x\":1},"
		    "\"message\":\"node said no\"}");
	free(s);
	ck_assert_int_eq(data->refcount, 1);
	json_decref(data);
	ck_assert_int_eq(gw_aliyun_build_reply_message("x", 200, NULL, "m", &s, NULL), -EINVAL);
	ck_assert_int_eq(gw_aliyun_build_reply_message("1", 200, NULL, NULL, &s, NULL), -EINVAL);
}
END_TEST

static const char *topic(enum gw_aliyun_topic kind, const char *id)
{
	static char buf[GW_ALIYUN_TOPIC_MAX];
	int r = gw_aliyun_build_topic(kind, PK, DN, id, buf, sizeof(buf));

	ck_assert_int_gt(r, 0);
	ck_assert_uint_eq((size_t)r, strlen(buf));
	return buf;
}

#define SYS "/sys/a1m7er1nJbQ/222222/"

START_TEST(test_topics)
{
	char buf[GW_ALIYUN_TOPIC_MAX];

	ck_assert_str_eq(topic(GW_ALIYUN_TOPIC_PROPERTY_POST, NULL),
			 SYS "thing/event/property/post");
	ck_assert_str_eq(topic(GW_ALIYUN_TOPIC_PROPERTY_POST_REPLY, NULL),
			 SYS "thing/event/property/post_reply");
	ck_assert_str_eq(topic(GW_ALIYUN_TOPIC_EVENT_POST, "alarm"),
			 SYS "thing/event/alarm/post");
	ck_assert_str_eq(topic(GW_ALIYUN_TOPIC_EVENT_POST_REPLY, "alarm"),
			 SYS "thing/event/alarm/post_reply");
	ck_assert_str_eq(topic(GW_ALIYUN_TOPIC_EVENT_POST_REPLY, "+"),
			 SYS "thing/event/+/post_reply");
	ck_assert_str_eq(topic(GW_ALIYUN_TOPIC_PROPERTY_SET, NULL),
			 SYS "thing/service/property/set");
	ck_assert_str_eq(topic(GW_ALIYUN_TOPIC_PROPERTY_SET_REPLY, NULL),
			 SYS "thing/service/property/set_reply");
	ck_assert_str_eq(topic(GW_ALIYUN_TOPIC_SERVICE, "reboot"), SYS "thing/service/reboot");
	ck_assert_str_eq(topic(GW_ALIYUN_TOPIC_SERVICE, "+"), SYS "thing/service/+");
	ck_assert_str_eq(topic(GW_ALIYUN_TOPIC_SERVICE_REPLY, "reboot"),
			 SYS "thing/service/reboot_reply");
	ck_assert_str_eq(topic(GW_ALIYUN_TOPIC_RRPC_REQUEST, "+"), SYS "rrpc/request/+");
	ck_assert_str_eq(topic(GW_ALIYUN_TOPIC_RRPC_RESPONSE, "1234567890"),
			 SYS "rrpc/response/1234567890");

#define BAD(kind, id) \
	ck_assert_int_eq(gw_aliyun_build_topic(kind, PK, DN, id, buf, sizeof(buf)), -EINVAL)
	BAD(GW_ALIYUN_TOPIC_PROPERTY_POST, "x");
	BAD(GW_ALIYUN_TOPIC_EVENT_POST, NULL);
	BAD(GW_ALIYUN_TOPIC_EVENT_POST, "+");
	BAD(GW_ALIYUN_TOPIC_EVENT_POST, "property");
	BAD(GW_ALIYUN_TOPIC_EVENT_POST, "a#");
	BAD(GW_ALIYUN_TOPIC_SERVICE, "property");
	BAD(GW_ALIYUN_TOPIC_SERVICE, "x_reply");
	BAD(GW_ALIYUN_TOPIC_SERVICE_REPLY, "+");
	BAD(GW_ALIYUN_TOPIC_RRPC_RESPONSE, "+");
	BAD(GW_ALIYUN_TOPIC_RRPC_RESPONSE, "a b");
	BAD((enum gw_aliyun_topic)99, NULL);
#undef BAD
	ck_assert_int_eq(gw_aliyun_build_topic(GW_ALIYUN_TOPIC_PROPERTY_POST, "a/b", DN, NULL, buf,
					       sizeof(buf)),
			 -EINVAL);
	ck_assert_int_eq(gw_aliyun_build_topic(GW_ALIYUN_TOPIC_PROPERTY_POST, PK, "+", NULL, buf,
					       sizeof(buf)),
			 -EINVAL);
	ck_assert_int_eq(gw_aliyun_build_topic(GW_ALIYUN_TOPIC_PROPERTY_POST, PK, DN, NULL, buf,
					       10),
			 -ENOBUFS);
}
END_TEST

static int classify(const char *t, enum gw_aliyun_topic *kind, char *id)
{
	return gw_aliyun_classify_topic(t, PK, DN, kind, id, GW_ALIYUN_ID_MAX);
}

START_TEST(test_classify)
{
	static const char *const foreign[] = {
		"/sys/a1m7er1nJbQ/2222222/thing/service/property/set",
		"/sys/a1m7er1nJbQ/22222/thing/service/property/set",
		"/sys/a1m7er1nJbQx/222222/thing/service/property/set",
		"/sys/a1m7er1nJbQ/222222",
		"/sys/a1m7er1nJbQ/222222/",
		"sys/a1m7er1nJbQ/222222/thing/service/property/set",
		SYS "thing/event/property/post",
		SYS "thing/event/alarm/post",
		SYS "thing/event//post_reply",
		SYS "thing/event/a/b/post_reply",
		SYS "thing/service/property/get",
		SYS "thing/service/property/set_reply",
		SYS "thing/service/reboot_reply",
		SYS "thing/service/",
		SYS "thing/service/a/b",
		SYS "rrpc/request/",
		SYS "rrpc/request/1/2",
		SYS "rrpc/response/1",
		"/ext/register",
		"",
	};
	char id[GW_ALIYUN_ID_MAX], small[4], resp[GW_ALIYUN_TOPIC_MAX];
	enum gw_aliyun_topic kind;
	size_t i;

	ck_assert_int_eq(classify(SYS "thing/event/property/post_reply", &kind, id), 0);
	ck_assert_int_eq(kind, GW_ALIYUN_TOPIC_PROPERTY_POST_REPLY);
	ck_assert_str_eq(id, "");
	ck_assert_int_eq(classify(SYS "thing/event/alarm/post_reply", &kind, id), 0);
	ck_assert_int_eq(kind, GW_ALIYUN_TOPIC_EVENT_POST_REPLY);
	ck_assert_str_eq(id, "alarm");
	ck_assert_int_eq(classify(SYS "thing/service/property/set", &kind, id), 0);
	ck_assert_int_eq(kind, GW_ALIYUN_TOPIC_PROPERTY_SET);
	ck_assert_int_eq(classify(SYS "thing/service/reboot", &kind, id), 0);
	ck_assert_int_eq(kind, GW_ALIYUN_TOPIC_SERVICE);
	ck_assert_str_eq(id, "reboot");

	/* RRPC: the response goes to the request's message id. */
	ck_assert_int_eq(classify(SYS "rrpc/request/1357924680", &kind, id), 0);
	ck_assert_int_eq(kind, GW_ALIYUN_TOPIC_RRPC_REQUEST);
	ck_assert_str_eq(id, "1357924680");
	ck_assert_int_gt(gw_aliyun_build_topic(GW_ALIYUN_TOPIC_RRPC_RESPONSE, PK, DN, id, resp,
					       sizeof(resp)),
			 0);
	ck_assert_str_eq(resp, SYS "rrpc/response/1357924680");

	for (i = 0; i < sizeof(foreign) / sizeof(foreign[0]); i++)
		ck_assert_msg(classify(foreign[i], &kind, id) == -ENOENT, "took %s", foreign[i]);
	ck_assert_int_eq(gw_aliyun_classify_topic(SYS "thing/service/reboot", PK, DN, &kind, small,
						  sizeof(small)),
			 -ENOBUFS);
}
END_TEST

#define CTL_DEVICE "sign aliyun --product-key a1m7er1nJbQ --device-name 222222 "
#define CTL_OUT_HEAD "host=" LEGACY_HOST "\nport=443\n"

START_TEST(test_cli_device)
{
	char out[4096];

	ck_assert_int_eq(ctltest_run(CTL_DEVICE "--device-secret testDeviceSecret456 --client-id 222222"
					    " --timestamp 1700000000000",
				 NULL, out, sizeof(out)),
			 0);
	ck_assert_str_eq(out, CTL_OUT_HEAD "client_id=" DEV_CID "\nusername=" DEV_USER
					   "\npassword=" DEV_SHA256 "\n");

	ck_assert_int_eq(ctltest_run(CTL_DEVICE "--device-secret testDeviceSecret456 --client-id 222222"
					    " --timestamp 1700000000000 --sign-method hmacsha1 "
					    "--region cn-shanghai",
				 NULL, out, sizeof(out)),
			 0);
	ck_assert_str_eq(out, CTL_OUT_HEAD "client_id=222222|securemode=2,signmethod=hmacsha1,"
					   "timestamp=1700000000000|\nusername=" DEV_USER
					   "\npassword=" DEV_SHA1 "\n");

	ck_assert_int_eq(ctltest_run(CTL_DEVICE "--device-secret testDeviceSecret456 --client-id 222222"
					    " --timestamp 1700000000000 --sign-method hmacmd5",
				 NULL, out, sizeof(out)),
			 0);
	ck_assert_ptr_nonnull(strstr(out, "\npassword=" DEV_MD5 "\n"));

	/* Default client id <pk>.<dn>: the Link-SDK-style vector; the secret from stdin. */
	ck_assert_int_eq(ctltest_run(CTL_DEVICE "--device-secret-file - --timestamp 1700000000000",
				 DEVICE_SECRET "\n", out, sizeof(out)),
			 0);
	ck_assert_str_eq(out, CTL_OUT_HEAD "client_id=a1m7er1nJbQ.222222|securemode=2,"
					   "signmethod=hmacsha256,timestamp=1700000000000|"
					   "\nusername=" DEV_USER "\npassword=" DEV_LS_SHA256 "\n");

	ck_assert_int_eq(ctltest_run(CTL_DEVICE "--device-secret testDeviceSecret456 --client-id 222222"
					    " --timestamp 1700000000000"
					    " --instance-id iot-06z00ax1o4q",
				 NULL, out, sizeof(out)),
			 0);
	ck_assert_str_eq(out, "host=iot-06z00ax1o4q.mqtt.iothub.aliyuncs.com\nport=8883\n"
			      "client_id=" DEV_CID "\nusername=" DEV_USER "\npassword=" DEV_SHA256
			      "\n");
}
END_TEST

START_TEST(test_cli_secret_file)
{
	char path[] = "/tmp/test-aliyun-secret-XXXXXX", args[512], out[4096];
	int fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, DEVICE_SECRET "\n", sizeof(DEVICE_SECRET)),
			 (int)sizeof(DEVICE_SECRET));
	close(fd);
	snprintf(args, sizeof(args),
		 CTL_DEVICE "--device-secret-file %s --client-id 222222 --timestamp " TS_STR, path);
	ck_assert_int_eq(ctltest_run(args, NULL, out, sizeof(out)), 0);
	ck_assert_ptr_nonnull(strstr(out, "\npassword=" DEV_SHA256 "\n"));
	unlink(path);
	/* A missing file is a runtime error, not a usage error. */
	ck_assert_int_eq(ctltest_run(args, NULL, out, sizeof(out)), 1);
	ck_assert_str_eq(out, "");
	/* An empty secret or one with two lines. */
	ck_assert_int_eq(ctltest_run(CTL_DEVICE "--device-secret-file -", "\n", out, sizeof(out)), 1);
	ck_assert_int_eq(ctltest_run(CTL_DEVICE "--device-secret-file -", "a\nb\n", out, sizeof(out)),
			 1);
}
END_TEST

START_TEST(test_cli_register)
{
	char out[4096];

	ck_assert_int_eq(ctltest_run("sign aliyun --product-key a1m7er1nJbQ --device-name 222222 "
				 "--product-secret testProductSecret123 --auth register "
				 "--random 8Ygb7ULYh53B6OA",
				 NULL, out, sizeof(out)),
			 0);
	ck_assert_str_eq(out, CTL_OUT_HEAD "client_id=222222.a1m7er1nJbQ|random=8Ygb7ULYh53B6OA,"
					   "authType=register,securemode=2,signmethod=hmacsha256|"
					   "\nusername=" DEV_USER "\npassword=" REG_SHA256 "\n");
	ck_assert_int_eq(ctltest_run("sign aliyun --product-key a1m7er1nJbQ --device-name 222222 "
				 "--product-secret-file - --auth regnwl --random 8Ygb7ULYh53B6OA "
				 "--sign-method hmacmd5",
				 PRODUCT_SECRET, out, sizeof(out)),
			 0);
	ck_assert_str_eq(out, CTL_OUT_HEAD "client_id=222222.a1m7er1nJbQ|random=8Ygb7ULYh53B6OA,"
					   "authType=regnwl,securemode=2,signmethod=hmacmd5|"
					   "\nusername=" DEV_USER "\npassword=" REG_MD5 "\n");
	ck_assert_int_eq(ctltest_run("sign aliyun --product-key a1m7er1nJbQ --device-name 222222 "
				 "--product-secret testProductSecret123 --auth regnwl "
				 "--random 8Ygb7ULYh53B6OA --sign-method hmacsha1",
				 NULL, out, sizeof(out)),
			 0);
	ck_assert_ptr_nonnull(strstr(out, "\npassword=" REG_SHA1 "\n"));
	/* The DeviceToken login after regnwl. */
	ck_assert_int_eq(ctltest_run("sign aliyun --product-key a1m7er1nJbQ --device-name 222222 "
				 "--device-token-file - --client-id a1m7er1nJbQ.222222_x9 "
				 "--instance-id iot-06z00ax1o4q",
				 "t0k3n\n", out, sizeof(out)),
			 0);
	ck_assert_str_eq(out, "host=iot-06z00ax1o4q.mqtt.iothub.aliyuncs.com\nport=8883\n"
			      "client_id=a1m7er1nJbQ.222222_x9|securemode=-2,authType=connwl|\n"
			      "username=" DEV_USER "\npassword=t0k3n\n");
	/* Without --random a fresh one is drawn. */
	ck_assert_int_eq(ctltest_run("sign aliyun --product-key a1m7er1nJbQ --device-name 222222 "
				 "--product-secret testProductSecret123 --auth register",
				 NULL, out, sizeof(out)),
			 0);
	ck_assert_ptr_nonnull(strstr(out, "client_id=222222.a1m7er1nJbQ|random="));
	ck_assert_ptr_null(strstr(out, RANDOM));
}
END_TEST

START_TEST(test_cli_usage)
{
	static const char *const bad[] = {
		"",
		"sign",
		"sign tencent",
		"frobnicate",
		"sign aliyun",
		"sign aliyun --device-name 222222 --device-secret s",
		"sign aliyun --product-key a1m7er1nJbQ --device-secret s",
		"sign aliyun --product-key a1m7er1nJbQ --device-name 222222",
		CTL_DEVICE "--device-secret s --product-secret p",
		CTL_DEVICE "--device-secret s --device-secret-file -",
		CTL_DEVICE "--device-secret s --region cn-shanghai --instance-id iot-1",
		CTL_DEVICE "--device-secret s --sign-method sha256",
		CTL_DEVICE "--device-secret s --timestamp soon",
		CTL_DEVICE "--device-secret s --timestamp -1",
		CTL_DEVICE "--device-secret s --auth register",
		CTL_DEVICE "--device-secret s --random abc",
		CTL_DEVICE "--device-secret s --bogus",
		CTL_DEVICE "--device-secret s extra",
		CTL_DEVICE "--product-secret p",
		CTL_DEVICE "--product-secret p --auth device",
		CTL_DEVICE "--product-secret p --auth register --timestamp 1",
		CTL_DEVICE "--product-secret p --auth register --client-id c",
		CTL_DEVICE "--product-secret p --auth nwl",
		CTL_DEVICE "--device-secret s --port 0",
		CTL_DEVICE "--device-secret s --port 65536",
		CTL_DEVICE "--device-secret s --securemode 7",
		"sign aliyun --product-key a.b --device-name 222222 --device-secret s",
		CTL_DEVICE "--device-secret 'a b'",
		CTL_DEVICE "--device-token t",
		CTL_DEVICE "--device-token t --client-id c --sign-method hmacsha1",
		CTL_DEVICE "--device-token t --client-id c --auth register",
	};
	char out[4096];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(ctltest_run(bad[i], NULL, out, sizeof(out)) == 2, "accepted: %s",
			      bad[i]);
		ck_assert_str_eq(out, "");
	}
	ck_assert_int_eq(ctltest_run("--help", NULL, out, sizeof(out)), 0);
	ck_assert_ptr_nonnull(strstr(out, "sign aliyun"));
	ck_assert_int_eq(ctltest_run("sign aliyun --help", NULL, out, sizeof(out)), 0);
	ck_assert_ptr_nonnull(strstr(out, "--device-secret-file"));
	ck_assert_int_eq(ctltest_run("--version", NULL, out, sizeof(out)), 0);
	ck_assert_int_eq(strncmp(out, "sensorgwctl ", 12), 0);
}
END_TEST

static Suite *aliyun_suite(bool cli)
{
	Suite *s = suite_create("aliyun");
	TCase *tc;

	tc = tcase_create("sign");
	tcase_add_test(tc, test_sign_vectors);
	tcase_add_test(tc, test_sign_errors);
	tcase_add_test(tc, test_names);
	tcase_add_test(tc, test_connect_device_vectors);
	tcase_add_test(tc, test_connect_device_link_sdk_client_id);
	tcase_add_test(tc, test_connect_device_variants);
	tcase_add_test(tc, test_connect_invalid);
	tcase_add_test(tc, test_connect_register);
	tcase_add_test(tc, test_connect_connwl);
	tcase_add_test(tc, test_hosts);
	tcase_add_test(tc, test_random);
	suite_add_tcase(s, tc);

	tc = tcase_create("register");
	tcase_add_test(tc, test_https_request);
	tcase_add_test(tc, test_https_reply_ok);
	tcase_add_test(tc, test_https_reply_refused);
	tcase_add_test(tc, test_https_reply_truncated);
	tcase_add_test(tc, test_https_reply_malformed);
	tcase_add_test(tc, test_https_reply_oversize);
	tcase_add_test(tc, test_register_push);
	suite_add_tcase(s, tc);

	tc = tcase_create("alink");
	tcase_add_test(tc, test_property_post);
	tcase_add_test(tc, test_event_post);
	tcase_add_test(tc, test_bools_as_ints);
	tcase_add_test(tc, test_post_reply);
	tcase_add_test(tc, test_property_set);
	tcase_add_test(tc, test_service_call);
	tcase_add_test(tc, test_rrpc_request);
	tcase_add_test(tc, test_topics);
	tcase_add_test(tc, test_classify);
	suite_add_tcase(s, tc);

	if (cli) {
		tc = tcase_create("cli");
		tcase_set_timeout(tc, 60);
		tcase_add_test(tc, test_cli_device);
		tcase_add_test(tc, test_cli_secret_file);
		tcase_add_test(tc, test_cli_register);
		tcase_add_test(tc, test_cli_usage);
		suite_add_tcase(s, tc);
	}
	return s;
}

int main(void)
{
	return ctltest_main("test-aliyun", aliyun_suite);
}
