/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the Tencent gateway mode (src/cloud/tencent_gateway.c): the bind signature
 * against every Tencent vector of docs/protocols/gateway.md §G19 and its negative vectors, each
 * operation byte for byte in the documented shape, the gateway topics, and the parser of both
 * gateway topics on good and malformed input. With GW_SENSORGWCTL set to the built
 * sensorgwctl, the "cli" case checks that `sensorgwctl sign tencent-bind` prints the same.
 */
#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "ctltest.h"
#include "gw/tencent.h"

/* §G19 inputs and outputs. */
#define T1_KEY "IyXmUW5sU/q1vnb5yzTkeQ=="
#define T2_KEY "bG9jYWxUZXN0UFNLMDAwMA=="
#define T1_SHA1 "r7PEZPQ2IZ5y9546GYwg5Mc6fyI="
#define T1_SHA256 "dOMDt9wp5HOAToYoCgy9R3y3pbTih6w/3H8A7k6tOCs="
#define T2_SHA1 "PocIcraj/zlsCltB1NVSoYhE4nY="
#define T2_SHA256 "v9GEzCj1EUXszfEAt2LgN94cFLDgg4KmDj4zxQBsAXA="
#define T3_SHA1 "wXZ7zHGlZkgGuQ6v1CWz3W/HP70="
#define T3_SHA256 "Hu/7+tcjpJMLAN0ikiC9cOgBtvBYNKSUXMdSP0SGW1k="
#define T4_CERT "-----BEGIN CERTIFICATE-----\nTEST\n-----END CERTIFICATE-----\n"
#define T4_KEY "36d6442210fa63d5ef851f48834f4cc5"
#define T4_SHA1 "PIKcihr4xwdKJnkFyIUQszhFKPA="
#define NEG_HEX_B64 "YWZiM2M0NjRmNDM2MjE5ZTcyZjc5ZTNhMTk4YzIwZTRjNzNhN2YyMg=="
#define NEG_DECODED "WHfciWyA2EZ+MfwAPoAVZ/l8VeA="

/* The gateway of the tests. */
#define GPID "GWPRODUCT1"
#define GDN "pi-gateway"

struct vector {
	const char *name, *key, *pid, *dn;
	uint32_t random;
	uint64_t ts;
	const char *sha1, *sha256;
};

static const struct vector vectors[] = {
	{ "T1", T1_KEY, "CS0SLTKSYA", "dev1", 121213, 1700000000, T1_SHA1, T1_SHA256 },
	{ "T2", T2_KEY, "CFCSQ5EAG7", "onlinedev00", 121213, 1589786839, T2_SHA1, T2_SHA256 },
	{ "T3", T1_KEY, "ABCDEFGHIJ", "stm32-0001", 1804289383, 1735689600, T3_SHA1, T3_SHA256 },
	{ "T4", T4_KEY, "CS0SLTKSYA", "dev1", 121213, 1700000000, T4_SHA1, NULL },
};

static const char *sign(enum gw_tencent_sign_method m, const struct vector *v)
{
	static char buf[GW_TENCENT_BIND_SIGNATURE_MAX];
	int r = gw_tencent_sign_bind(m, v->key, strlen(v->key), v->pid, v->dn, v->random, v->ts,
				     buf, sizeof(buf));

	ck_assert_int_eq(r, m == GW_TENCENT_HMAC_SHA1 ? 28 : 44);
	return buf;
}

START_TEST(test_sign_vectors)
{
	char key[GW_TENCENT_CERT_KEY_MAX];
	size_t i;

	for (i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		ck_assert_msg(strcmp(sign(GW_TENCENT_HMAC_SHA1, &vectors[i]), vectors[i].sha1) == 0,
			      "%s sha1", vectors[i].name);
		if (vectors[i].sha256)
			ck_assert_msg(strcmp(sign(GW_TENCENT_HMAC_SHA256, &vectors[i]),
					     vectors[i].sha256) == 0,
				      "%s sha256", vectors[i].name);
	}
	/* T4: the key is the MD5 of the certificate file */
	ck_assert_int_eq(gw_tencent_cert_bind_key(T4_CERT, strlen(T4_CERT), key, sizeof(key)), 32);
	ck_assert_str_eq(key, T4_KEY);
	ck_assert_int_eq(gw_tencent_cert_bind_key(T4_CERT, strlen(T4_CERT), key, 32), -ENOBUFS);
	ck_assert_int_eq(gw_tencent_cert_bind_key(T4_CERT, 0, key, sizeof(key)), -EINVAL);
}
END_TEST

/* §G19 negative vectors: what the mistakes produce, reproduced here the mistaken way, and never
 * what the module signs. */
START_TEST(test_sign_negative)
{
	const char *text = "CS0SLTKSYAdev1;121213;1700000000";
	unsigned char mac[EVP_MAX_MD_SIZE], psk[32];
	char hex[41], b64[80];
	unsigned int n = 0;
	const char *ours = sign(GW_TENCENT_HMAC_SHA1, &vectors[0]);
	int psk_len, i;

	/* base64 of the hex text */
	ck_assert_ptr_nonnull(HMAC(EVP_sha1(), T1_KEY, (int)strlen(T1_KEY),
				   (const unsigned char *)text, strlen(text), mac, &n));
	for (i = 0; i < (int)n; i++)
		snprintf(hex + 2 * i, 3, "%02x", mac[i]);
	EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)hex, 40);
	ck_assert_str_eq(b64, NEG_HEX_B64);
	ck_assert_str_ne(ours, b64); /* b64 is NEG_HEX_B64, computed */
	/* the base64-decoded PSK as the key */
	psk_len = EVP_DecodeBlock(psk, (const unsigned char *)T1_KEY, (int)strlen(T1_KEY));
	ck_assert_int_eq(psk_len, 18); /* 16 and the two padding bytes EVP_DecodeBlock counts */
	ck_assert_ptr_nonnull(
		HMAC(EVP_sha1(), psk, 16, (const unsigned char *)text, strlen(text), mac, &n));
	EVP_EncodeBlock((unsigned char *)b64, mac, (int)n);
	ck_assert_str_eq(b64, NEG_DECODED);
	ck_assert_str_ne(ours, NEG_DECODED);
	/* and with the module: the decoded key is not the key */
	ck_assert_int_eq(gw_tencent_sign_bind(GW_TENCENT_HMAC_SHA1, (const char *)psk, 16,
					      "CS0SLTKSYA", "dev1", 121213, 1700000000, b64,
					      sizeof(b64)),
			 28);
	ck_assert_str_eq(b64, NEG_DECODED);
	/* one IoT Hub doc drops the second ';': not what the SDKs sign */
	ck_assert_ptr_nonnull(HMAC(EVP_sha1(), T1_KEY, (int)strlen(T1_KEY),
				   (const unsigned char *)"CS0SLTKSYAdev1;1212131700000000", 31,
				   mac, &n));
	EVP_EncodeBlock((unsigned char *)b64, mac, (int)n);
	ck_assert_str_ne(b64, T1_SHA1);
}
END_TEST

START_TEST(test_sign_errors)
{
	char buf[GW_TENCENT_BIND_SIGNATURE_MAX];
	uint32_t r1 = 0, r2 = 0;
	int i;

	ck_assert_int_eq(gw_tencent_sign_bind((enum gw_tencent_sign_method)5, T1_KEY, 24, "P", "d",
					      1, 1, buf, sizeof(buf)),
			 -EINVAL);
	ck_assert_int_eq(gw_tencent_sign_bind(GW_TENCENT_HMAC_SHA1, NULL, 0, "P", "d", 1, 1, buf,
					      sizeof(buf)),
			 -EINVAL);
	ck_assert_int_eq(gw_tencent_sign_bind(GW_TENCENT_HMAC_SHA1, T1_KEY, 24, "P-1", "d", 1, 1,
					      buf, sizeof(buf)),
			 -EINVAL);
	ck_assert_int_eq(gw_tencent_sign_bind(GW_TENCENT_HMAC_SHA1, T1_KEY, 24, "P", "d/e", 1, 1,
					      buf, sizeof(buf)),
			 -EINVAL);
	ck_assert_int_eq(gw_tencent_sign_bind(GW_TENCENT_HMAC_SHA1, T1_KEY, 24, "P", "d",
					      2147483648u, 1, buf, sizeof(buf)),
			 -EINVAL);
	ck_assert_int_eq(gw_tencent_sign_bind(GW_TENCENT_HMAC_SHA256, T1_KEY, 24, "P", "d", 1, 1,
					      buf, 44),
			 -ENOBUFS);
	for (i = 0; i < 8 && r1 == r2; i++) {
		ck_assert_int_eq(gw_tencent_make_bind_random(&r1), 0);
		ck_assert_int_eq(gw_tencent_make_bind_random(&r2), 0);
		ck_assert_uint_le(r1, GW_TENCENT_BIND_RANDOM_MAX);
	}
	ck_assert_uint_ne(r1, r2);
}
END_TEST

static void expect(int r, char **got, size_t *len, const char *want)
{
	ck_assert_int_eq(r, 0);
	ck_assert_ptr_nonnull(*got);
	ck_assert_str_eq(*got, want);
	ck_assert_uint_eq(*len, strlen(want));
	free(*got);
	*got = NULL;
}

START_TEST(test_build)
{
	struct gw_tencent_bind b = { "ABCDEFGHIJ",         "stm32-0001", T1_KEY,    false,
				     GW_TENCENT_HMAC_SHA1, 1804289383,   1735689600 };
	struct gw_tencent_gw_device devs[2] = {
		{ .product_id = "CS0SLTKSYA", .device_name = "dev1", .result = 0 },
		{ .product_id = "CS0SLTKSYA", .device_name = "dev2", .result = -1 },
	};
	char reason[GW_TENCENT_REASON_MAX];
	char *s = NULL;
	size_t len = 0;

	/* §G16 bind with the T3 inputs */
	expect(gw_tencent_build_bind(&b, &s, &len, reason), &s, &len,
	       "{\"type\":\"bind\",\"payload\":{\"devices\":[{\"product_id\":\"ABCDEFGHIJ\","
	       "\"device_name\":\"stm32-0001\",\"signature\":\"" T3_SHA1 "\",\"random\":1804289383,"
	       "\"timestamp\":1735689600,\"signmethod\":\"hmacsha1\",\"authtype\":\"psk\"}]}}");
	b.sign_method = GW_TENCENT_HMAC_SHA256;
	expect(gw_tencent_build_bind(&b, &s, &len, reason), &s, &len,
	       "{\"type\":\"bind\",\"payload\":{\"devices\":[{\"product_id\":\"ABCDEFGHIJ\","
	       "\"device_name\":\"stm32-0001\",\"signature\":\"" T3_SHA256 "\","
	       "\"random\":1804289383,\"timestamp\":1735689600,\"signmethod\":\"hmacsha256\","
	       "\"authtype\":\"psk\"}]}}");
	/* T4: a certificate sub-device */
	b = (struct gw_tencent_bind){ "CS0SLTKSYA",         "dev1", T4_KEY,    true,
				      GW_TENCENT_HMAC_SHA1, 121213, 1700000000 };
	expect(gw_tencent_build_bind(&b, &s, &len, reason), &s, &len,
	       "{\"type\":\"bind\",\"payload\":{\"devices\":[{\"product_id\":\"CS0SLTKSYA\","
	       "\"device_name\":\"dev1\",\"signature\":\"" T4_SHA1 "\",\"random\":121213,"
	       "\"timestamp\":1700000000,\"signmethod\":\"hmacsha1\","
	       "\"authtype\":\"certificate\"}]}}");
	/* refusals */
	b.key = "36D6442210FA63D5EF851F48834F4CC5";
	ck_assert_int_eq(gw_tencent_build_bind(&b, &s, &len, reason), -EINVAL);
	b.certificate = false;
	b.key = "not base64!";
	ck_assert_int_eq(gw_tencent_build_bind(&b, &s, &len, reason), -EINVAL);
	b.key = T1_KEY;
	b.random = 2147483648u;
	ck_assert_int_eq(gw_tencent_build_bind(&b, &s, &len, reason), -EINVAL);
	b.random = 1;
	b.product_id = "a-b";
	ck_assert_int_eq(gw_tencent_build_bind(&b, &s, &len, reason), -EINVAL);
	ck_assert_int_eq(gw_tencent_build_bind(NULL, &s, &len, reason), -EINVAL);
	ck_assert_ptr_null(s);

	expect(gw_tencent_build_gw_op(GW_TENCENT_GW_ONLINE, "CS0SLTKSYA", "dev1", &s, &len), &s,
	       &len,
	       "{\"type\":\"online\",\"payload\":{\"devices\":[{\"product_id\":\"CS0SLTKSYA\","
	       "\"device_name\":\"dev1\"}]}}");
	expect(gw_tencent_build_gw_op(GW_TENCENT_GW_OFFLINE, "CS0SLTKSYA", "dev1", &s, &len), &s,
	       &len,
	       "{\"type\":\"offline\",\"payload\":{\"devices\":[{\"product_id\":\"CS0SLTKSYA\","
	       "\"device_name\":\"dev1\"}]}}");
	expect(gw_tencent_build_gw_op(GW_TENCENT_GW_UNBIND, "CS0SLTKSYA", "dev1", &s, &len), &s,
	       &len,
	       "{\"type\":\"unbind\",\"payload\":{\"devices\":[{\"product_id\":\"CS0SLTKSYA\","
	       "\"device_name\":\"dev1\"}]}}");
	ck_assert_int_eq(gw_tencent_build_gw_op(GW_TENCENT_GW_BIND, "CS0SLTKSYA", "dev1", &s, &len),
			 -EINVAL);
	ck_assert_int_eq(gw_tencent_build_gw_op(GW_TENCENT_GW_ONLINE, "CS0SLTKSYA", "", &s, &len),
			 -EINVAL);
	expect(gw_tencent_build_describe_sub_devices(&s, &len), &s, &len,
	       "{\"type\":\"describe_sub_devices\"}");

	/* §G18 acknowledgements */
	expect(gw_tencent_build_change_ack(1, devs, 2, &s, &len), &s, &len,
	       "{\"type\":\"change\",\"payload\":{\"status\":1,\"devices\":[{\"product_id\":"
	       "\"CS0SLTKSYA\",\"device_name\":\"dev1\",\"result\":0},{\"product_id\":"
	       "\"CS0SLTKSYA\",\"device_name\":\"dev2\",\"result\":-1}]}}");
	ck_assert_int_eq(gw_tencent_build_change_ack(2, devs, 2, &s, &len), -EINVAL);
	ck_assert_int_eq(gw_tencent_build_change_ack(1, devs, 0, &s, &len), -EINVAL);
	expect(gw_tencent_build_search_devices_ack(0, 0, &s, &len), &s, &len,
	       "{\"type\":\"search_devices\",\"payload\":{\"status\":0,\"result\":0}}");
	ck_assert_int_eq(gw_tencent_build_search_devices_ack(-1, 0, &s, &len), -EINVAL);
	expect(gw_tencent_build_unbind_all_ack(0, &s, &len), &s, &len,
	       "{\"type\":\"unbind_all\",\"payload\":{\"result\":0}}");
}
END_TEST

START_TEST(test_topics)
{
	char buf[GW_TENCENT_TOPIC_MAX];
	enum gw_tencent_gw_topic kind;

	ck_assert_int_eq(gw_tencent_build_gw_topic(GW_TENCENT_GW_OPERATION, GPID, GDN, buf,
						   sizeof(buf)),
			 (int)strlen("$gateway/operation/" GPID "/" GDN));
	ck_assert_str_eq(buf, "$gateway/operation/" GPID "/" GDN);
	ck_assert_int_eq(gw_tencent_classify_gw_topic(buf, GPID, GDN, &kind), 0);
	ck_assert_int_eq(kind, GW_TENCENT_GW_OPERATION);
	ck_assert_int_gt(gw_tencent_build_gw_topic(GW_TENCENT_GW_RESULT, GPID, GDN, buf,
						   sizeof(buf)),
			 0);
	ck_assert_str_eq(buf, "$gateway/operation/result/" GPID "/" GDN);
	ck_assert_int_eq(gw_tencent_classify_gw_topic(buf, GPID, GDN, &kind), 0);
	ck_assert_int_eq(kind, GW_TENCENT_GW_RESULT);
	ck_assert_int_eq(gw_tencent_classify_gw_topic(buf, GPID, "other", &kind), -ENOENT);
	ck_assert_int_eq(gw_tencent_classify_gw_topic("$gateway/operation/result/" GPID "/" GDN "/",
						      GPID, GDN, &kind),
			 -ENOENT);
	ck_assert_int_eq(gw_tencent_classify_gw_topic("$thing/down/property/" GPID "/" GDN, GPID,
						      GDN, &kind),
			 -ENOENT);
	ck_assert_int_eq(gw_tencent_classify_gw_topic(NULL, GPID, GDN, &kind), -ENOENT);
	ck_assert_int_eq(gw_tencent_build_gw_topic((enum gw_tencent_gw_topic)2, GPID, GDN, buf,
						   sizeof(buf)),
			 -EINVAL);
	ck_assert_int_eq(gw_tencent_build_gw_topic(GW_TENCENT_GW_RESULT, "a/b", GDN, buf,
						   sizeof(buf)),
			 -EINVAL);
	ck_assert_int_eq(gw_tencent_build_gw_topic(GW_TENCENT_GW_RESULT, GPID, GDN, buf, 8),
			 -ENOBUFS);
	ck_assert_str_eq(gw_tencent_name_gw_type(GW_TENCENT_GW_UNBIND_ALL), "unbind_all");
	ck_assert_ptr_null(gw_tencent_name_gw_type((enum gw_tencent_gw_type)8));
}
END_TEST

static int parse(enum gw_tencent_direction dir, const char *s, struct gw_tencent_gw_msg *m,
		 char *reason)
{
	reason[0] = '\0';
	return gw_tencent_parse_gw_msg(dir, s, strlen(s), m, reason);
}

#define DEV(pid, dn) "{\"product_id\":\"" pid "\",\"device_name\":\"" dn "\"}"
#define DEV_R(pid, dn, r) "{\"product_id\":\"" pid "\",\"device_name\":\"" dn "\",\"result\":" r "}"

START_TEST(test_parse_results)
{
	static const char *const ops[] = { "bind", "unbind", "online", "offline" };
	static const enum gw_tencent_gw_type types[] = { GW_TENCENT_GW_BIND, GW_TENCENT_GW_UNBIND,
							 GW_TENCENT_GW_ONLINE,
							 GW_TENCENT_GW_OFFLINE };
	struct gw_tencent_gw_msg m;
	char reason[GW_TENCENT_REASON_MAX], buf[512];
	size_t i;

	for (i = 0; i < 4; i++) {
		snprintf(buf, sizeof(buf),
			 "{\"type\":\"%s\",\"payload\":{\"devices\":[" DEV_R("CS0SLTKSYA", "dev1",
									     "-809") "]}}",
			 ops[i]);
		ck_assert_int_eq(parse(GW_TENCENT_DOWN, buf, &m, reason), 0);
		ck_assert_int_eq(m.type, types[i]);
		ck_assert_uint_eq(m.n, 1);
		ck_assert_str_eq(m.devices[0].product_id, "CS0SLTKSYA");
		ck_assert_str_eq(m.devices[0].device_name, "dev1");
		ck_assert(m.devices[0].has_result);
		ck_assert_int_eq(m.devices[0].result, -809);
		gw_tencent_gw_msg_free(&m);
		ck_assert_ptr_null(m.devices);
		/* a reply without its result is malformed */
		snprintf(buf, sizeof(buf),
			 "{\"type\":\"%s\",\"payload\":{\"devices\":[" DEV("CS0SLTKSYA",
									   "dev1") "]}}",
			 ops[i]);
		ck_assert_int_eq(parse(GW_TENCENT_DOWN, buf, &m, reason), -EBADMSG);
		ck_assert_ptr_nonnull(strstr(reason, "result"));
	}
	gw_tencent_gw_msg_free(NULL);
	/* describe_sub_devices ([HUBC] form), also empty */
	ck_assert_int_eq(parse(GW_TENCENT_DOWN,
			       "{\"type\":\"describe_sub_devices\",\"payload\":{\"devices\":[" DEV(
				       "CS0SLTKSYA", "dev1") "," DEV("CS0SLTKSYA", "dev2") "]}}",
			       &m, reason),
			 0);
	ck_assert_int_eq(m.type, GW_TENCENT_GW_DESCRIBE_SUB_DEVICES);
	ck_assert_uint_eq(m.n, 2);
	ck_assert(!m.devices[1].has_result);
	gw_tencent_gw_msg_free(&m);
	ck_assert_int_eq(parse(GW_TENCENT_DOWN, "{\"type\":\"describe_sub_devices\"}", &m, reason),
			 0);
	ck_assert_uint_eq(m.n, 0);
	/* §G18 cloud messages */
	ck_assert_int_eq(parse(GW_TENCENT_DOWN,
			       "{\"type\":\"change\",\"payload\":{\"status\":0,\"devices\":[" DEV(
				       "CS0SLTKSYA", "dev1") "]}}",
			       &m, reason),
			 0);
	ck_assert_int_eq(m.type, GW_TENCENT_GW_CHANGE);
	ck_assert(m.has_status);
	ck_assert_int_eq(m.status, 0);
	ck_assert_uint_eq(m.n, 1);
	gw_tencent_gw_msg_free(&m);
	ck_assert_int_eq(parse(GW_TENCENT_DOWN,
			       "{\"type\":\"search_devices\",\"payload\":{\"status\":1}}", &m,
			       reason),
			 0);
	ck_assert_int_eq(m.type, GW_TENCENT_GW_SEARCH_DEVICES);
	ck_assert_int_eq(m.status, 1);
	ck_assert(!m.has_result);
	ck_assert_int_eq(parse(GW_TENCENT_DOWN, "{\"type\":\"unbind_all\"}", &m, reason), 0);
	ck_assert_int_eq(m.type, GW_TENCENT_GW_UNBIND_ALL);
	/* unknown types are ignored, not malformed */
	ck_assert_int_eq(parse(GW_TENCENT_DOWN, "{\"type\":\"reboot\"}", &m, reason), -ENOENT);
	/* jansson refuses a NUL in a string outright */
	ck_assert_int_eq(parse(GW_TENCENT_DOWN, "{\"type\":\"bind\\u0000\"}", &m, reason),
			 -EBADMSG);
}
END_TEST

START_TEST(test_parse_malformed)
{
	static const char *const down[] = {
		"",
		"[]",
		"{",
		"{}",
		"{\"type\":1}",
		"{\"type\":\"online\"}",
		"{\"type\":\"online\",\"payload\":[]}",
		"{\"type\":\"online\",\"payload\":{}}",
		"{\"type\":\"online\",\"payload\":{\"devices\":{}}}",
		"{\"type\":\"online\",\"payload\":{\"devices\":[]}}",
		"{\"type\":\"online\",\"payload\":{\"devices\":[1]}}",
		"{\"type\":\"online\",\"payload\":{\"devices\":[{\"product_id\":\"P\","
		"\"result\":0}]}}",
		"{\"type\":\"online\",\"payload\":{\"devices\":[{\"product_id\":\"P\","
		"\"device_name\":7,\"result\":0}]}}",
		"{\"type\":\"online\",\"payload\":{\"devices\":[" DEV_R("P-1", "d", "0") "]}}",
		"{\"type\":\"online\",\"payload\":{\"devices\":[" DEV_R("P", "d/e", "0") "]}}",
		"{\"type\":\"online\",\"payload\":{\"devices\":[" DEV_R("P", "d", "\"0\"") "]}}",
		"{\"type\":\"online\",\"payload\":{\"devices\":[" DEV_R("P", "d", "0.5") "]}}",
		"{\"type\":\"online\",\"payload\":{\"devices\":[" DEV_R("P", "d",
									"4294967296") "]}}",
		"{\"type\":\"change\",\"payload\":{\"devices\":[" DEV("P", "d") "]}}",
		"{\"type\":\"change\",\"payload\":{\"status\":2,\"devices\":[" DEV("P", "d") "]}}",
		"{\"type\":\"change\",\"payload\":{\"status\":1}}",
		"{\"type\":\"search_devices\"}",
		"{\"type\":\"search_devices\",\"payload\":{\"status\":\"1\"}}",
		"{\"type\":\"describe_sub_devices\",\"payload\":{\"devices\":[{}]}}",
		"{\"type\":\"describe_sub_devices\",\"payload\":7}",
		"{\"type\":\"bind\",\"type\":\"bind\"}",
	};
	struct gw_tencent_gw_msg m;
	char reason[GW_TENCENT_REASON_MAX];
	char *big, *p;
	size_t i, n;

	for (i = 0; i < sizeof(down) / sizeof(down[0]); i++) {
		ck_assert_msg(parse(GW_TENCENT_DOWN, down[i], &m, reason) == -EBADMSG,
			      "accepted %s", down[i]);
		ck_assert_msg(reason[0] != '\0', "no reason for %s", down[i]);
		ck_assert_ptr_null(m.devices);
		ck_assert_uint_eq(m.n, 0);
	}
	ck_assert_int_eq(gw_tencent_parse_gw_msg((enum gw_tencent_direction)5, "{}", 2, &m, reason),
			 -EINVAL);
	/* more than the 1500 a gateway can hold; the payload limit comes first */
	n = GW_TENCENT_GATEWAY_DEVICES_MAX + 1;
	big = malloc(n * 40 + 128);
	ck_assert_ptr_nonnull(big);
	p = big + sprintf(big, "{\"type\":\"describe_sub_devices\",\"payload\":{\"devices\":[");
	for (i = 0; i < n; i++)
		p += sprintf(p, "%s{\"product_id\":\"P\",\"device_name\":\"d\"}", i ? "," : "");
	strcpy(p, "]}}");
	ck_assert_int_eq(parse(GW_TENCENT_DOWN, big, &m, reason), -EMSGSIZE);
	free(big);
	/* the device limit itself, with entries short enough to fit the payload limit */
	n = GW_TENCENT_GATEWAY_DEVICES_MAX + 1;
	big = malloc(n * 8 + 128);
	ck_assert_ptr_nonnull(big);
	p = big + sprintf(big, "{\"type\":\"describe_sub_devices\",\"payload\":{\"devices\":[");
	for (i = 0; i < n; i++)
		p += sprintf(p, "%s{}", i ? "," : "");
	strcpy(p, "]}}");
	ck_assert_int_eq(parse(GW_TENCENT_DOWN, big, &m, reason), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(reason, "entries"));
	free(big);
}
END_TEST

START_TEST(test_parse_uplink)
{
	struct gw_tencent_bind b = { "ABCDEFGHIJ",         "stm32-0001", T1_KEY,    false,
				     GW_TENCENT_HMAC_SHA1, 1804289383,   1735689600 };
	struct gw_tencent_gw_device devs[1] = {
		{ .product_id = "CS0SLTKSYA", .device_name = "dev1", .result = 0 },
	};
	struct gw_tencent_gw_msg m;
	char reason[GW_TENCENT_REASON_MAX];
	char *s = NULL;
	size_t len;

	/* what the builders send reads back (the test clouds' side) */
	ck_assert_int_eq(gw_tencent_build_bind(&b, &s, &len, reason), 0);
	ck_assert_int_eq(parse(GW_TENCENT_UP, s, &m, reason), 0);
	free(s);
	ck_assert_int_eq(m.type, GW_TENCENT_GW_BIND);
	ck_assert_uint_eq(m.n, 1);
	ck_assert_str_eq(m.devices[0].signature, T3_SHA1);
	ck_assert_str_eq(m.devices[0].signmethod, "hmacsha1");
	ck_assert_str_eq(m.devices[0].authtype, "psk");
	ck_assert_uint_eq(m.devices[0].random, 1804289383u);
	ck_assert_uint_eq(m.devices[0].timestamp, 1735689600u);
	gw_tencent_gw_msg_free(&m);
	/* a bind reply is no bind request, and back */
	ck_assert_int_eq(parse(GW_TENCENT_UP,
			       "{\"type\":\"bind\",\"payload\":{\"devices\":[" DEV_R("CS0SLTKSYA",
										     "dev1",
										     "0") "]}}",
			       &m, reason),
			 -EBADMSG);
	ck_assert_int_eq(parse(GW_TENCENT_UP,
			       "{\"type\":\"bind\",\"payload\":{\"devices\":[{\"product_id\":\"P\","
			       "\"device_name\":\"d\",\"signature\":\"x\",\"random\":-1,"
			       "\"timestamp\":1,\"signmethod\":\"hmacsha1\","
			       "\"authtype\":\"psk\"}]}}",
			       &m, reason),
			 -EBADMSG);
	ck_assert_int_eq(gw_tencent_build_gw_op(GW_TENCENT_GW_ONLINE, "CS0SLTKSYA", "dev1", &s,
						&len),
			 0);
	ck_assert_int_eq(parse(GW_TENCENT_UP, s, &m, reason), 0);
	ck_assert_uint_eq(m.n, 1);
	gw_tencent_gw_msg_free(&m);
	ck_assert_int_eq(parse(GW_TENCENT_DOWN, s, &m, reason), -EBADMSG);
	free(s);
	ck_assert_int_eq(gw_tencent_build_describe_sub_devices(&s, &len), 0);
	ck_assert_int_eq(parse(GW_TENCENT_UP, s, &m, reason), 0);
	free(s);
	ck_assert_int_eq(gw_tencent_build_change_ack(1, devs, 1, &s, &len), 0);
	ck_assert_int_eq(parse(GW_TENCENT_UP, s, &m, reason), 0);
	ck_assert_int_eq(m.status, 1);
	ck_assert(m.devices[0].has_result);
	gw_tencent_gw_msg_free(&m);
	free(s);
	ck_assert_int_eq(gw_tencent_build_search_devices_ack(1, 0, &s, &len), 0);
	ck_assert_int_eq(parse(GW_TENCENT_UP, s, &m, reason), 0);
	ck_assert(m.has_result && m.has_status);
	free(s);
	ck_assert_int_eq(gw_tencent_build_unbind_all_ack(-2, &s, &len), 0);
	ck_assert_int_eq(parse(GW_TENCENT_UP, s, &m, reason), 0);
	ck_assert_int_eq(m.result, -2);
	free(s);
	/* acks without their result */
	ck_assert_int_eq(parse(GW_TENCENT_UP, "{\"type\":\"unbind_all\"}", &m, reason), -EBADMSG);
	ck_assert_int_eq(parse(GW_TENCENT_UP,
			       "{\"type\":\"search_devices\",\"payload\":"
			       "{\"status\":1}}",
			       &m, reason),
			 -EBADMSG);
}
END_TEST

START_TEST(test_cli_vectors)
{
	char args[512], want[256], out[1024];
	size_t i;
	int m;

	for (i = 0; i < 3; i++) {
		const struct vector *v = &vectors[i];

		for (m = 0; m < 2; m++) {
			snprintf(args, sizeof(args),
				 "sign tencent-bind --product-id %s --device-name %s --psk-file - "
				 "--random %u --timestamp %llu --sign-method %s",
				 v->pid, v->dn, (unsigned)v->random, (unsigned long long)v->ts,
				 m ? "hmacsha256" : "hmacsha1");
			snprintf(want, sizeof(want),
				 "random=%u\ntimestamp=%llu\nsign_method=%s\nsignature=%s\n",
				 (unsigned)v->random, (unsigned long long)v->ts,
				 m ? "hmacsha256" : "hmacsha1", m ? v->sha256 : v->sha1);
			ck_assert_int_eq(ctltest_run(args, v->key, out, sizeof(out)), 0);
			ck_assert_msg(strcmp(out, want) == 0, "%s: %s", v->name, out);
		}
	}
	/* hmacsha1 is the default, the PSK on the command line gives the same */
	ck_assert_int_eq(ctltest_run("sign tencent-bind --product-id CS0SLTKSYA --device-name dev1 "
				 "--psk " T1_KEY " --random 121213 --timestamp 1700000000",
				 NULL, out, sizeof(out)),
			 0);
	ck_assert_str_eq(out, "random=121213\ntimestamp=1700000000\nsign_method=hmacsha1\n"
			      "signature=" T1_SHA1 "\n");
	/* T4 from the certificate file */
	ck_assert_int_eq(ctltest_run("sign tencent-bind --product-id CS0SLTKSYA --device-name dev1 "
				 "--cert-file - --random 121213 --timestamp 1700000000",
				 T4_CERT, out, sizeof(out)),
			 0);
	ck_assert_str_eq(out, "random=121213\ntimestamp=1700000000\nsign_method=hmacsha1\n"
			      "signature=" T4_SHA1 "\n");
	/* defaults: a fresh random, now */
	ck_assert_int_eq(ctltest_run("sign tencent-bind --product-id CS0SLTKSYA --device-name dev1 "
				 "--psk-file -",
				 T1_KEY "\n", out, sizeof(out)),
			 0);
	ck_assert_int_eq(strncmp(out, "random=", 7), 0);
	ck_assert_ptr_nonnull(strstr(out, "\ntimestamp=1"));
}
END_TEST

START_TEST(test_cli_usage)
{
#define T "sign tencent-bind --product-id CS0SLTKSYA --device-name dev1 "
	static const char *const bad[] = {
		"sign tencent-bind",
		"sign tencent-bind --device-name dev1 --psk " T1_KEY,
		"sign tencent-bind --product-id CS0SLTKSYA --psk " T1_KEY,
		T,
		T "--psk " T1_KEY " --psk-file x",
		T "--psk " T1_KEY " --cert-file x",
		T "--psk notbase64!",
		T "--psk " T1_KEY " --random 2147483648",
		T "--psk " T1_KEY " --random -1",
		T "--psk " T1_KEY " --timestamp x",
		T "--psk " T1_KEY " --sign-method hmacmd5",
		T "--psk " T1_KEY " --bogus",
		T "--psk " T1_KEY " extra",
		"sign tencent-bind --product-id A-B --device-name dev1 --psk " T1_KEY,
	};
	char out[4096];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(ctltest_run(bad[i], NULL, out, sizeof(out)) == 2, "accepted: %s", bad[i]);
	ck_assert_int_eq(ctltest_run(T "--psk-file -", "\n", out, sizeof(out)), 1);
	ck_assert_int_eq(ctltest_run(T "--cert-file /nonexistent/cert", NULL, out, sizeof(out)), 1);
	ck_assert_int_eq(ctltest_run("sign tencent-bind --help", NULL, out, sizeof(out)), 0);
	ck_assert_ptr_nonnull(strstr(out, "--psk-file"));
#undef T
}
END_TEST

static Suite *gateway_suite(bool cli)
{
	Suite *s = suite_create("tencent-gateway");
	TCase *tc;

	tc = tcase_create("sign");
	tcase_add_test(tc, test_sign_vectors);
	tcase_add_test(tc, test_sign_negative);
	tcase_add_test(tc, test_sign_errors);
	suite_add_tcase(s, tc);

	tc = tcase_create("messages");
	tcase_add_test(tc, test_build);
	tcase_add_test(tc, test_topics);
	tcase_add_test(tc, test_parse_results);
	tcase_add_test(tc, test_parse_malformed);
	tcase_add_test(tc, test_parse_uplink);
	suite_add_tcase(s, tc);

	if (cli) {
		tc = tcase_create("cli");
		tcase_set_timeout(tc, 60);
		tcase_add_test(tc, test_cli_vectors);
		tcase_add_test(tc, test_cli_usage);
		suite_add_tcase(s, tc);
	}
	return s;
}

int main(void)
{
	return ctltest_main("test-tencent-gateway", gateway_suite);
}
