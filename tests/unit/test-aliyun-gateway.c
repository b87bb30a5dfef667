/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the Aliyun gateway mode (src/cloud/aliyun_gateway.c): the sub-device and proxy
 * registration signs against every Aliyun vector of docs/protocols/gateway.md §G19, each
 * request byte for byte in the documented shape, the gateway topics, and the parsers of replies
 * and pushes on good and malformed input. With GW_SENSORGWCTL set to the built sensorgwctl,
 * the "cli" case checks that `sensorgwctl sign aliyun-subdev` prints the same vectors.
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

/* §G19 inputs: sub-device 01 of Link SDK 4.1.0 demos/subdev_basic_demo.c. */
#define PK "a13FN5TplKq"
#define DN "subdev_basic_demo_01"
#define DS "768XBgQwgOakz3K4uhOiLeeh9xjJQx6h"
#define PS "y7GSILD480lBSsP8"
#define TS 1700000000000ULL
#define CID_LS4X PK "." DN "|_ss=1,_v=sdk-c-4.1.0|"
#define CID_IKE3 PK "." DN "|_v=sdk-c-3.0.1|"
#define CID_DOC PK "&" DN

/* §G19 outputs. */
#define A1 "EB57255A6E35BDF5016F5BCEFD66B6E9227BA5C85C1F08C0CEF17B48F8292412"
#define A2 "C4299240566A59408578A0A3CE5EEA65A390A9EF140232989C2A59F2CF902866"
#define A3_SHA256 "807C0AFFAA5E4E8AFCDA0DFCEEAB00015CD7C032A85C2837040346E32C4FD278"
#define A3_SHA1 "2fbf68c9e45ad2e13a2b52075f41b144adddadfb"
#define A3_MD5 "875624717c179c272ea8f04e97a8de06"
#define B1 "65fe24dc74d34d277b1e1384b09032e01124f21a"
#define B2 "6c53aec40ab7a554d0c96025b34c7fbf3c40c2d7"
#define B3 "e48173cc5aa355cc5fd20d5e2e2e8eec5c73e3da"
#define C1 "8A30BB84A7EE1DD7B6DABBFEE2875A49A47D5D9F5356CFEFFAC308A60EBD46B3"
#define C2 "4D70E9FF2EB5708278159C22BFBF781ACC18AEB454881F91EE362BD937A4D78E"
#define D1 "3ba0dfa4c477b40c007d84d30d6466cc"

/* The gateway of the tests. */
#define GPK "a1GwPk00001"
#define GDN "pi-gateway"

struct vector {
	const char *name;
	enum gw_aliyun_sign_method method;
	bool upper;
	struct gw_aliyun_subdev sub;
	const char *cid; /* the client id sent */
	const char *ts;
	const char *sign;
};

static const struct vector vectors[] = {
	{ "A1",
	  GW_ALIYUN_HMAC_SHA256,
	  true,
	  { PK, DN, DS, NULL, TS },
	  PK "." DN,
	  "1700000000000",
	  A1 },
	{ "A2",
	  GW_ALIYUN_HMAC_SHA256,
	  true,
	  { PK, DN, DS, CID_LS4X, TS },
	  CID_LS4X,
	  "1700000000000",
	  A2 },
	{ "A3",
	  GW_ALIYUN_HMAC_SHA256,
	  true,
	  { PK, DN, DS, CID_DOC, TS },
	  CID_DOC,
	  "1700000000000",
	  A3_SHA256 },
	{ "A3-sha1",
	  GW_ALIYUN_HMAC_SHA1,
	  false,
	  { PK, DN, DS, CID_DOC, TS },
	  CID_DOC,
	  "1700000000000",
	  A3_SHA1 },
	{ "A3-md5",
	  GW_ALIYUN_HMAC_MD5,
	  false,
	  { PK, DN, DS, CID_DOC, TS },
	  CID_DOC,
	  "1700000000000",
	  A3_MD5 },
	{ "B1", GW_ALIYUN_HMAC_SHA1, false, { PK, DN, DS, NULL, 123456 }, PK "." DN, "123456", B1 },
	{ "B2",
	  GW_ALIYUN_HMAC_SHA1,
	  false,
	  { PK, DN, DS, CID_IKE3, 123456 },
	  CID_IKE3,
	  "123456",
	  B2 },
	{ "B3",
	  GW_ALIYUN_HMAC_SHA1,
	  false,
	  { PK, DN, DS, NULL, TS },
	  PK "." DN,
	  "1700000000000",
	  B3 },
	{ "D1",
	  GW_ALIYUN_HMAC_MD5,
	  false,
	  { "a1PB5fp1234", "868575026974305", "1234", "868575026974305", 1646277090411ULL },
	  "868575026974305",
	  "1646277090411",
	  D1 },
};

static const char *const method_names[] = { "hmacSha256", "hmacSha1", "hmacMd5" };

START_TEST(test_sign_vectors)
{
	struct gw_aliyun_subdev_sign sg;
	char reason[GW_ALIYUN_REASON_MAX];
	size_t i;

	for (i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		const struct vector *v = &vectors[i];

		ck_assert_msg(gw_aliyun_sign_subdev(v->method, v->upper, &v->sub, &sg, reason) == 0,
			      "%s: %s", v->name, reason);
		ck_assert_msg(strcmp(sg.sign, v->sign) == 0, "%s: %s", v->name, sg.sign);
		ck_assert_str_eq(sg.client_id, v->cid);
		ck_assert_str_eq(sg.timestamp, v->ts);
		ck_assert_str_eq(sg.sign_method, method_names[v->method]);
	}
	/* D1 in the doc's upper case: the platform compares hex case-insensitively. */
	ck_assert_int_eq(gw_aliyun_sign_subdev(GW_ALIYUN_HMAC_MD5, true, &vectors[8].sub, &sg,
					       NULL),
			 0);
	ck_assert_str_eq(sg.sign, "3BA0DFA4C477B40C007D84D30D6466CC");
	/* A1 in lower case: the same MAC. */
	ck_assert_int_eq(gw_aliyun_sign_subdev(GW_ALIYUN_HMAC_SHA256, false, &vectors[0].sub, &sg,
					       NULL),
			 0);
	ck_assert_int_eq(strcasecmp(sg.sign, A1), 0);
	ck_assert_str_ne(sg.sign, A1);
}
END_TEST

START_TEST(test_sign_negative)
{
	struct gw_aliyun_subdev s = { PK, DN, DS, NULL, TS };
	struct gw_aliyun_subdev_sign sg;

	/* The clientId suffix is signed: A1's sign does not fit A2's client id, and back. */
	s.client_id = CID_LS4X;
	ck_assert_int_eq(gw_aliyun_sign_subdev(GW_ALIYUN_HMAC_SHA256, true, &s, &sg, NULL), 0);
	ck_assert_str_ne(sg.sign, A1);
	/* Keyed with the ProductSecret instead of the DeviceSecret. */
	s.client_id = NULL;
	s.device_secret = PS;
	ck_assert_int_eq(gw_aliyun_sign_subdev(GW_ALIYUN_HMAC_SHA256, true, &s, &sg, NULL), 0);
	ck_assert_str_ne(sg.sign, A1);
	/* An uptime timestamp is not an epoch one (B1 vs B3). */
	s.device_secret = DS;
	s.timestamp_ms = 123456;
	ck_assert_int_eq(gw_aliyun_sign_subdev(GW_ALIYUN_HMAC_SHA1, false, &s, &sg, NULL), 0);
	ck_assert_str_eq(sg.sign, B1);
	ck_assert_str_ne(sg.sign, B3);
}
END_TEST

START_TEST(test_sign_proxied_vectors)
{
	struct gw_aliyun_proxied c1 = { PK, DN, PS, "0123456789ABCDEF0123" };
	struct gw_aliyun_proxied c2 = { PK, "stm32-0001", PS, "00000000000000000000" };
	char sign[GW_ALIYUN_SIGN_MAX], reason[GW_ALIYUN_REASON_MAX];

	ck_assert_int_eq(gw_aliyun_sign_proxied(GW_ALIYUN_HMAC_SHA256, true, &c1, sign,
						sizeof(sign), reason),
			 64);
	ck_assert_str_eq(sign, C1);
	ck_assert_int_eq(gw_aliyun_sign_proxied(GW_ALIYUN_HMAC_SHA256, true, &c2, sign,
						sizeof(sign), reason),
			 64);
	ck_assert_str_eq(sign, C2);
	/* keyed with the DeviceSecret: not C1 */
	c1.product_secret = DS;
	ck_assert_int_eq(gw_aliyun_sign_proxied(GW_ALIYUN_HMAC_SHA256, true, &c1, sign,
						sizeof(sign), reason),
			 64);
	ck_assert_str_ne(sign, C1);
	c1.product_secret = PS;
	c1.random = "not-alnum";
	ck_assert_int_eq(gw_aliyun_sign_proxied(GW_ALIYUN_HMAC_SHA256, true, &c1, sign,
						sizeof(sign), reason),
			 -EINVAL);
	c1.random = "0123";
	ck_assert_int_eq(gw_aliyun_sign_proxied(GW_ALIYUN_HMAC_SHA256, true, &c1, sign, 64, reason),
			 -ENOBUFS);
	ck_assert_int_eq(gw_aliyun_sign_proxied(GW_ALIYUN_HMAC_SHA256, true, NULL, sign,
						sizeof(sign), reason),
			 -EINVAL);
}
END_TEST

START_TEST(test_sign_errors)
{
	char long_cid[400];
	struct gw_aliyun_subdev ok = { PK, DN, DS, NULL, TS }, s;
	struct gw_aliyun_subdev_sign sg;
	char reason[GW_ALIYUN_REASON_MAX];

	memset(long_cid, 'c', sizeof(long_cid) - 1);
	long_cid[sizeof(long_cid) - 1] = '\0';
#define REJECT(assign)                                                                        \
	do {                                                                                  \
		s = ok;                                                                       \
		assign;                                                                       \
		reason[0] = '\0';                                                             \
		ck_assert_int_eq(gw_aliyun_sign_subdev(GW_ALIYUN_HMAC_SHA256, false, &s, &sg, \
						       reason),                               \
				 -EINVAL);                                                    \
		ck_assert_msg(reason[0] != '\0', "no reason for " #assign);                   \
		ck_assert_str_eq(sg.sign, "");                                                \
	} while (0)
	REJECT(s.product_key = NULL);
	REJECT(s.product_key = "a_b");
	REJECT(s.device_name = "");
	REJECT(s.device_name = "a/b");
	REJECT(s.device_secret = NULL);
	REJECT(s.device_secret = "");
	REJECT(s.device_secret = "with space");
	REJECT(s.client_id = "");
	REJECT(s.client_id = "a b");
	REJECT(s.client_id = long_cid);
#undef REJECT
	ck_assert_int_eq(gw_aliyun_sign_subdev((enum gw_aliyun_sign_method)7, false, &ok, &sg,
					       reason),
			 -EINVAL);
	ck_assert_int_eq(gw_aliyun_sign_subdev(GW_ALIYUN_HMAC_SHA1, false, NULL, &sg, reason),
			 -EINVAL);
	ck_assert_ptr_null(gw_aliyun_gw_sign_method((enum gw_aliyun_sign_method)3));
}
END_TEST

/* The envelope of §G2 around params P and method M. */
#define REQ(id, P, M) \
	"{\"id\":\"" id "\",\"version\":\"1.0\",\"params\":" P ",\"method\":\"" M "\"}"
#define REQ_NO_METHOD(id, P) "{\"id\":\"" id "\",\"version\":\"1.0\",\"params\":" P "}"
#define IDENT(pk, dn) "{\"productKey\":\"" pk "\",\"deviceName\":\"" dn "\"}"

/* r and what *got, *len hold once the call made as the first argument has run. */
static void expect(int r, char **got, size_t *len, const char *want)
{
	ck_assert_int_eq(r, 0);
	ck_assert_ptr_nonnull(*got);
	ck_assert_str_eq(*got, want);
	ck_assert_uint_eq(*len, strlen(want));
	free(*got);
	*got = NULL;
}

START_TEST(test_build_topo)
{
	struct gw_aliyun_subdev subs[31];
	char reason[GW_ALIYUN_REASON_MAX];
	char *s = NULL;
	size_t len = 0, i;

	for (i = 0; i < 31; i++)
		subs[i] = (struct gw_aliyun_subdev){ PK, DN, DS, NULL, TS };
	/* §G4 with the A1 inputs (Link SDK 4: HMAC-SHA256, upper-case hex). */
	expect(gw_aliyun_build_topo_add(1, GW_ALIYUN_HMAC_SHA256, true, subs, 1, &s, &len, reason),
	       &s, &len,
	       REQ("1",
		   "[{\"productKey\":\"" PK "\",\"deviceName\":\"" DN "\",\"clientId\":\"" PK "." DN
		   "\",\"timestamp\":\"1700000000000\",\"signmethod\":\"hmacSha256\","
		   "\"sign\":\"" A1 "\"}]",
		   "thing.topo.add"));
	/* [IKE3] with B1: HMAC-SHA1, lower case, an uptime timestamp; two in one request. */
	subs[0].timestamp_ms = 123456;
	subs[1] = (struct gw_aliyun_subdev){ PK, DN, DS, CID_DOC, TS };
	expect(gw_aliyun_build_topo_add(4294967295u, GW_ALIYUN_HMAC_SHA1, false, subs, 2, &s, &len,
					reason),
	       &s, &len,
	       REQ("4294967295",
		   "[{\"productKey\":\"" PK "\",\"deviceName\":\"" DN "\",\"clientId\":\"" PK "." DN
		   "\",\"timestamp\":\"123456\",\"signmethod\":\"hmacSha1\",\"sign\":\"" B1
		   "\"},{\"productKey\":\"" PK "\",\"deviceName\":\"" DN
		   "\",\"clientId\":\"" CID_DOC
		   "\",\"timestamp\":\"1700000000000\",\"signmethod\":\"hmacSha1\","
		   "\"sign\":\"" A3_SHA1 "\"}]",
		   "thing.topo.add"));
	subs[0].timestamp_ms = TS;
	subs[1] = subs[0];
	/* chunks of 1..30 */
	ck_assert_int_eq(gw_aliyun_build_topo_add(1, GW_ALIYUN_HMAC_SHA256, true, subs, 30, &s,
						  NULL, reason),
			 0);
	free(s);
	s = NULL;
	ck_assert_int_eq(gw_aliyun_build_topo_add(1, GW_ALIYUN_HMAC_SHA256, true, subs, 31, &s,
						  NULL, reason),
			 -EINVAL);
	ck_assert_int_eq(gw_aliyun_build_topo_add(1, GW_ALIYUN_HMAC_SHA256, true, subs, 0, &s, NULL,
						  reason),
			 -EINVAL);
	ck_assert_int_eq(gw_aliyun_build_topo_add(1, GW_ALIYUN_HMAC_SHA256, true, NULL, 1, &s, NULL,
						  reason),
			 -EINVAL);
	/* one bad entry spoils the request */
	subs[5].device_secret = "";
	ck_assert_int_eq(gw_aliyun_build_topo_add(1, GW_ALIYUN_HMAC_SHA256, true, subs, 10, &s,
						  NULL, reason),
			 -EINVAL);
	ck_assert_ptr_null(s);

	/* §G5 */
	subs[1].device_name = "stm32-0001";
	expect(gw_aliyun_build_topo_delete(7, subs, 2, &s, &len, reason), &s, &len,
	       REQ("7", "[" IDENT(PK, DN) "," IDENT(PK, "stm32-0001") "]", "thing.topo.delete"));
	ck_assert_int_eq(gw_aliyun_build_topo_delete(7, subs, 31, &s, &len, reason), -EINVAL);
	subs[2].product_key = "bad key";
	ck_assert_int_eq(gw_aliyun_build_topo_delete(7, subs, 3, &s, &len, reason), -EINVAL);
	expect(gw_aliyun_build_topo_get(8, &s, &len), &s, &len, REQ("8", "{}", "thing.topo.get"));
}
END_TEST

START_TEST(test_build_session)
{
	struct gw_aliyun_subdev subs[51];
	char reason[GW_ALIYUN_REASON_MAX];
	char *s = NULL;
	size_t len = 0, i;

	for (i = 0; i < 51; i++)
		subs[i] = (struct gw_aliyun_subdev){ PK, DN, DS, NULL, TS };
	/* §G7 with the B2 inputs ([IKE3] combine/login). */
	subs[0].client_id = CID_IKE3;
	subs[0].timestamp_ms = 123456;
	expect(gw_aliyun_build_login(2, GW_ALIYUN_HMAC_SHA1, false, &subs[0], true, &s, &len,
				     reason),
	       &s, &len,
	       REQ("2",
		   "{\"productKey\":\"" PK "\",\"deviceName\":\"" DN "\",\"clientId\":\"" CID_IKE3
		   "\",\"timestamp\":\"123456\",\"signMethod\":\"hmacSha1\",\"sign\":\"" B2
		   "\",\"cleanSession\":\"true\"}",
		   "combine.login"));
	/* §G8 with the A2 inputs ([LS4x] batch_login) and A1: signMethod once, no method. */
	subs[0].client_id = CID_LS4X;
	subs[0].timestamp_ms = TS;
	expect(gw_aliyun_build_batch_login(3, GW_ALIYUN_HMAC_SHA256, true, subs, 2, false, &s, &len,
					   reason),
	       &s, &len,
	       REQ_NO_METHOD("3",
			     "{\"signMethod\":\"hmacSha256\",\"deviceList\":[{\"productKey\":\"" PK
			     "\",\"deviceName\":\"" DN "\",\"clientId\":\"" CID_LS4X
			     "\",\"timestamp\":\"1700000000000\",\"cleanSession\":\"false\","
			     "\"sign\":\"" A2 "\"},{\"productKey\":\"" PK "\",\"deviceName\":\"" DN
			     "\",\"clientId\":\"" PK "." DN "\",\"timestamp\":\"1700000000000\","
			     "\"cleanSession\":\"false\",\"sign\":\"" A1 "\"}]}"));
	ck_assert_int_eq(gw_aliyun_build_batch_login(3, GW_ALIYUN_HMAC_SHA256, true, subs, 50,
						     false, &s, NULL, reason),
			 0);
	free(s);
	ck_assert_int_eq(gw_aliyun_build_batch_login(3, GW_ALIYUN_HMAC_SHA256, true, subs, 51,
						     false, &s, NULL, reason),
			 -EINVAL);
	ck_assert_int_eq(gw_aliyun_build_batch_login(3, GW_ALIYUN_HMAC_SHA256, true, subs, 0, false,
						     &s, NULL, reason),
			 -EINVAL);
	ck_assert_int_eq(gw_aliyun_build_login(2, (enum gw_aliyun_sign_method)9, false, &subs[0],
					       true, &s, &len, reason),
			 -EINVAL);
	ck_assert_int_eq(gw_aliyun_build_login(2, GW_ALIYUN_HMAC_SHA1, false, NULL, true, &s, &len,
					       reason),
			 -EINVAL);

	/* §G9, §G8 */
	expect(gw_aliyun_build_logout(5, &subs[1], &s, &len, reason), &s, &len,
	       REQ("5", IDENT(PK, DN), "combine.logout"));
	expect(gw_aliyun_build_batch_logout(6, subs, 2, &s, &len, reason), &s, &len,
	       REQ_NO_METHOD("6", "[" IDENT(PK, DN) "," IDENT(PK, DN) "]"));
	ck_assert_int_eq(gw_aliyun_build_batch_logout(6, subs, 51, &s, &len, reason), -EINVAL);
	subs[1].device_name = "a b";
	ck_assert_int_eq(gw_aliyun_build_logout(5, &subs[1], &s, &len, reason), -EINVAL);
}
END_TEST

START_TEST(test_build_register)
{
	struct gw_aliyun_subdev subs[31];
	struct gw_aliyun_proxied px[31];
	char reason[GW_ALIYUN_REASON_MAX];
	char *s = NULL;
	size_t len = 0, i;

	for (i = 0; i < 31; i++) {
		subs[i] = (struct gw_aliyun_subdev){ PK, "stm32-0001", NULL, NULL, 0 };
		px[i] = (struct gw_aliyun_proxied){ PK, DN, PS, "0123456789ABCDEF0123" };
	}
	/* §G13: no sign, no secret needed */
	expect(gw_aliyun_build_sub_register(9, subs, 1, &s, &len, reason), &s, &len,
	       REQ("9", "[" IDENT(PK, "stm32-0001") "]", "thing.sub.register"));
	ck_assert_int_eq(gw_aliyun_build_sub_register(9, subs, 31, &s, &len, reason), -EINVAL);
	/* §G13 with the C1 and C2 inputs */
	px[1] = (struct gw_aliyun_proxied){ PK, "stm32-0001", PS, "00000000000000000000" };
	expect(gw_aliyun_build_product_register(10, GW_ALIYUN_HMAC_SHA256, true, px, 2, &s, &len,
						reason),
	       &s, &len,
	       REQ("10",
		   "{\"proxieds\":[{\"productKey\":\"" PK "\",\"deviceName\":\"" DN "\","
		   "\"random\":\"0123456789ABCDEF0123\",\"signMethod\":\"hmacSha256\","
		   "\"sign\":\"" C1
		   "\"},{\"productKey\":\"" PK "\",\"deviceName\":\"stm32-0001\","
		   "\"random\":\"00000000000000000000\",\"signMethod\":\"hmacSha256\","
		   "\"sign\":\"" C2
		   "\"}]}",
		   "thing.proxy.provisioning.product_register"));
	ck_assert_int_eq(gw_aliyun_build_product_register(10, GW_ALIYUN_HMAC_SHA256, true, px, 31,
							  &s, &len, reason),
			 -EINVAL);
	px[1].product_secret = NULL;
	ck_assert_int_eq(gw_aliyun_build_product_register(10, GW_ALIYUN_HMAC_SHA256, true, px, 2,
							  &s, &len, reason),
			 -EINVAL);
}
END_TEST

START_TEST(test_topics)
{
	static const struct {
		enum gw_aliyun_gw_topic kind;
		const char *topic;
		bool down;
	} t[] = {
		{ GW_ALIYUN_GW_TOPO_ADD, "/sys/" GPK "/" GDN "/thing/topo/add", false },
		{ GW_ALIYUN_GW_TOPO_ADD_REPLY, "/sys/" GPK "/" GDN "/thing/topo/add_reply", true },
		{ GW_ALIYUN_GW_TOPO_DELETE, "/sys/" GPK "/" GDN "/thing/topo/delete", false },
		{ GW_ALIYUN_GW_TOPO_DELETE_REPLY, "/sys/" GPK "/" GDN "/thing/topo/delete_reply",
		  true },
		{ GW_ALIYUN_GW_TOPO_GET, "/sys/" GPK "/" GDN "/thing/topo/get", false },
		{ GW_ALIYUN_GW_TOPO_GET_REPLY, "/sys/" GPK "/" GDN "/thing/topo/get_reply", true },
		{ GW_ALIYUN_GW_TOPO_ADD_NOTIFY, "/sys/" GPK "/" GDN "/thing/topo/add/notify",
		  true },
		{ GW_ALIYUN_GW_TOPO_ADD_NOTIFY_REPLY,
		  "/sys/" GPK "/" GDN "/thing/topo/add/notify_reply", false },
		{ GW_ALIYUN_GW_TOPO_CHANGE, "/sys/" GPK "/" GDN "/thing/topo/change", true },
		{ GW_ALIYUN_GW_SUB_REGISTER, "/sys/" GPK "/" GDN "/thing/sub/register", false },
		{ GW_ALIYUN_GW_SUB_REGISTER_REPLY, "/sys/" GPK "/" GDN "/thing/sub/register_reply",
		  true },
		{ GW_ALIYUN_GW_PRODUCT_REGISTER,
		  "/sys/" GPK "/" GDN "/thing/proxy/provisioning/product_register", false },
		{ GW_ALIYUN_GW_PRODUCT_REGISTER_REPLY,
		  "/sys/" GPK "/" GDN "/thing/proxy/provisioning/product_register_reply", true },
		{ GW_ALIYUN_GW_LOGIN, "/ext/session/" GPK "/" GDN "/combine/login", false },
		{ GW_ALIYUN_GW_LOGIN_REPLY, "/ext/session/" GPK "/" GDN "/combine/login_reply",
		  true },
		{ GW_ALIYUN_GW_BATCH_LOGIN, "/ext/session/" GPK "/" GDN "/combine/batch_login",
		  false },
		{ GW_ALIYUN_GW_BATCH_LOGIN_REPLY,
		  "/ext/session/" GPK "/" GDN "/combine/batch_login_reply", true },
		{ GW_ALIYUN_GW_LOGOUT, "/ext/session/" GPK "/" GDN "/combine/logout", false },
		{ GW_ALIYUN_GW_LOGOUT_REPLY, "/ext/session/" GPK "/" GDN "/combine/logout_reply",
		  true },
		{ GW_ALIYUN_GW_BATCH_LOGOUT, "/ext/session/" GPK "/" GDN "/combine/batch_logout",
		  false },
		{ GW_ALIYUN_GW_BATCH_LOGOUT_REPLY,
		  "/ext/session/" GPK "/" GDN "/combine/batch_logout_reply", true },
		{ GW_ALIYUN_GW_ERROR, "/ext/error/" GPK "/" GDN, true },
		{ GW_ALIYUN_GW_DISABLE, "/sys/" GPK "/" GDN "/thing/disable", true },
		{ GW_ALIYUN_GW_DISABLE_REPLY, "/sys/" GPK "/" GDN "/thing/disable_reply", false },
		{ GW_ALIYUN_GW_ENABLE, "/sys/" GPK "/" GDN "/thing/enable", true },
		{ GW_ALIYUN_GW_ENABLE_REPLY, "/sys/" GPK "/" GDN "/thing/enable_reply", false },
		{ GW_ALIYUN_GW_DELETE, "/sys/" GPK "/" GDN "/thing/delete", true },
		{ GW_ALIYUN_GW_DELETE_REPLY, "/sys/" GPK "/" GDN "/thing/delete_reply", false },
	};
	static const char *const foreign[] = {
		"/sys/" GPK "/" GDN "/thing/topo/add/",
		"/sys/" GPK "/" GDN "/thing/event/property/post_reply",
		"/sys/" GPK "/" GDN,
		"/sys/" GPK "//thing/topo/change",
		"/sys/bad_pk/" GDN "/thing/topo/change",
		"/ext/error/" GPK "/" GDN "/x",
		"/ext/error/" GPK,
		"/ext/session/" GPK "/" GDN "/combine/login/batch_reply",
		"/ext/rrpc/1/sys/" GPK "/" GDN "/thing/topo/change",
		"",
	};
	char buf[GW_ALIYUN_TOPIC_MAX], pk[GW_ALIYUN_ID_MAX], dn[GW_ALIYUN_ID_MAX];
	enum gw_aliyun_gw_topic kind;
	size_t i;

	ck_assert_uint_eq(sizeof(t) / sizeof(t[0]), GW_ALIYUN_GW_DELETE_REPLY + 1);
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		ck_assert_int_eq(gw_aliyun_build_gw_topic(t[i].kind, GPK, GDN, buf, sizeof(buf)),
				 (int)strlen(t[i].topic));
		ck_assert_str_eq(buf, t[i].topic);
		ck_assert_ptr_nonnull(gw_aliyun_name_gw_topic(t[i].kind));
		if (t[i].down) {
			ck_assert_int_eq(gw_aliyun_classify_gw_topic(t[i].topic, &kind, pk, dn), 0);
			ck_assert_int_eq(kind, t[i].kind);
			ck_assert_str_eq(pk, GPK);
			ck_assert_str_eq(dn, GDN);
		} else {
			ck_assert_int_eq(gw_aliyun_classify_gw_topic(t[i].topic, &kind, pk, dn),
					 -ENOENT);
		}
	}
	for (i = 0; i < sizeof(foreign) / sizeof(foreign[0]); i++)
		ck_assert_msg(gw_aliyun_classify_gw_topic(foreign[i], &kind, pk, dn) == -ENOENT,
			      "took %s", foreign[i]);
	/* a sub-device's disable names the sub-device */
	ck_assert_int_eq(gw_aliyun_classify_gw_topic("/sys/" PK "/" DN "/thing/disable", &kind, pk,
						     dn),
			 0);
	ck_assert_int_eq(kind, GW_ALIYUN_GW_DISABLE);
	ck_assert_str_eq(pk, PK);
	ck_assert_str_eq(dn, DN);
	ck_assert_int_eq(gw_aliyun_build_gw_topic(GW_ALIYUN_GW_TOPO_ADD, "a/b", GDN, buf,
						  sizeof(buf)),
			 -EINVAL);
	ck_assert_int_eq(gw_aliyun_build_gw_topic((enum gw_aliyun_gw_topic)99, GPK, GDN, buf,
						  sizeof(buf)),
			 -EINVAL);
	ck_assert_int_eq(gw_aliyun_build_gw_topic(GW_ALIYUN_GW_TOPO_ADD, GPK, GDN, buf, 10),
			 -ENOBUFS);
	ck_assert_ptr_null(gw_aliyun_name_gw_topic((enum gw_aliyun_gw_topic)99));

	/* §G11: the sub-device a data topic on the gateway session names */
	ck_assert_int_eq(gw_aliyun_topic_device("/sys/" PK "/" DN "/thing/service/property/set", pk,
						dn),
			 0);
	ck_assert_str_eq(pk, PK);
	ck_assert_str_eq(dn, DN);
	ck_assert_int_eq(gw_aliyun_topic_device("/sys/" PK "/" DN, pk, dn), -ENOENT);
	ck_assert_int_eq(gw_aliyun_topic_device("/sys/" PK "/" DN "/", pk, dn), -ENOENT);
	ck_assert_int_eq(gw_aliyun_topic_device("/ext/session/" PK "/" DN "/x", pk, dn), -ENOENT);
	ck_assert_str_eq(pk, "");
}
END_TEST

/* Parses s as kind; returns the result, *m filled (free it). */
static int parse(enum gw_aliyun_gw_topic kind, const char *s, struct gw_aliyun_gw_msg *m,
		 char *reason)
{
	reason[0] = '\0';
	return gw_aliyun_parse_gw_msg(kind, s, strlen(s), m, reason);
}

#define BAD(kind, s)                                                                     \
	do {                                                                             \
		ck_assert_msg(parse(kind, s, &m, reason) == -EBADMSG, "accepted %s", s); \
		ck_assert_msg(reason[0] != '\0', "no reason for %s", s);                 \
		ck_assert_uint_eq(m.n, 0);                                               \
		ck_assert_ptr_null(m.devices);                                           \
	} while (0)

START_TEST(test_parse_replies)
{
	struct gw_aliyun_gw_msg m;
	char reason[GW_ALIYUN_REASON_MAX];

	/* §G4 topo/add_reply: the added ones */
	ck_assert_int_eq(parse(GW_ALIYUN_GW_TOPO_ADD_REPLY,
			       "{\"id\":\"1\",\"code\":200,\"message\":\"success\","
			       "\"data\":[" IDENT(PK, DN) "," IDENT(PK, "stm32-0001") "]}",
			       &m, reason),
			 0);
	ck_assert_int_eq(m.kind, GW_ALIYUN_GW_TOPO_ADD_REPLY);
	ck_assert_str_eq(m.id, "1");
	ck_assert_uint_eq(m.id_num, 1);
	ck_assert_int_eq(m.code, 200);
	ck_assert_str_eq(m.message, "success");
	ck_assert_uint_eq(m.n, 2);
	ck_assert_str_eq(m.devices[0].product_key, PK);
	ck_assert_str_eq(m.devices[1].device_name, "stm32-0001");
	ck_assert_str_eq(m.devices[1].device_secret, "");
	gw_aliyun_gw_msg_free(&m);
	ck_assert_ptr_null(m.devices);
	gw_aliyun_gw_msg_free(NULL);
	/* the older data {}, and a code as a string (§G2) */
	ck_assert_int_eq(parse(GW_ALIYUN_GW_TOPO_ADD_REPLY,
			       "{\"id\":\"2\",\"code\":\"200\",\"data\":{}}", &m, reason),
			 0);
	ck_assert_int_eq(m.code, 200);
	ck_assert_uint_eq(m.n, 0);
	gw_aliyun_gw_msg_free(&m);
	/* an error: 401 with no data */
	ck_assert_int_eq(parse(GW_ALIYUN_GW_TOPO_ADD_REPLY,
			       "{\"id\":\"3\",\"code\":401,\"message\":\"auth\\u0007 error\"}", &m,
			       reason),
			 0);
	ck_assert_int_eq(m.code, 401);
	ck_assert_str_eq(m.message, "auth? error");
	ck_assert_int_eq(gw_aliyun_classify_gw_code(m.code), GW_ALIYUN_GW_ACT_REFUSED);
	gw_aliyun_gw_msg_free(&m);
	/* an error whose data is unreadable is still the error */
	ck_assert_int_eq(parse(GW_ALIYUN_GW_BATCH_LOGIN_REPLY,
			       "{\"id\":\"3\",\"code\":6401,\"data\":[{\"productKey\":1}]}", &m,
			       reason),
			 0);
	ck_assert_int_eq(m.code, 6401);
	ck_assert_uint_eq(m.n, 0);
	gw_aliyun_gw_msg_free(&m);

	/* §G5 topo/get_reply, topo/delete_reply */
	ck_assert_int_eq(parse(GW_ALIYUN_GW_TOPO_GET_REPLY,
			       "{\"id\":\"4\",\"code\":200,\"data\":[" IDENT(PK, DN) "]}", &m,
			       reason),
			 0);
	ck_assert_uint_eq(m.n, 1);
	gw_aliyun_gw_msg_free(&m);
	ck_assert_int_eq(parse(GW_ALIYUN_GW_TOPO_GET_REPLY,
			       "{\"id\":\"4\",\"code\":200,\"data\":[]}", &m, reason),
			 0);
	ck_assert_uint_eq(m.n, 0);
	ck_assert_int_eq(parse(GW_ALIYUN_GW_TOPO_DELETE_REPLY,
			       "{\"id\":\"5\",\"code\":200,\"data\":{}}", &m, reason),
			 0);
	ck_assert_int_eq(parse(GW_ALIYUN_GW_TOPO_DELETE_REPLY,
			       "{\"id\":\"5\",\"code\":6100,\"message\":\"device not found\"}", &m,
			       reason),
			 0);
	ck_assert_int_eq(gw_aliyun_classify_gw_code(m.code), GW_ALIYUN_GW_ACT_GONE);

	/* §G7, §G9 login and logout replies name one sub-device */
	ck_assert_int_eq(parse(GW_ALIYUN_GW_LOGIN_REPLY,
			       "{\"id\":\"6\",\"code\":200,\"message\":\"success\",\"data\":" IDENT(
				       PK, DN) "}",
			       &m, reason),
			 0);
	ck_assert_uint_eq(m.n, 1);
	ck_assert_str_eq(m.devices[0].device_name, DN);
	gw_aliyun_gw_msg_free(&m);
	/* §G10: a forced logout on logout_reply */
	ck_assert_int_eq(parse(GW_ALIYUN_GW_LOGOUT_REPLY,
			       "{\"id\":\"7\",\"code\":427,\"message\":\"kicked\",\"data\":" IDENT(
				       PK, DN) "}",
			       &m, reason),
			 0);
	ck_assert_int_eq(gw_aliyun_classify_gw_code(m.code), GW_ALIYUN_GW_ACT_TAKEN_OVER);
	ck_assert_uint_eq(m.n, 1);
	gw_aliyun_gw_msg_free(&m);

	/* §G8 batch replies */
	ck_assert_int_eq(parse(GW_ALIYUN_GW_BATCH_LOGIN_REPLY,
			       "{\"id\":\"8\",\"code\":200,\"message\":\"success\","
			       "\"data\":[" IDENT(PK, DN) "," IDENT(PK, "n2") "]}",
			       &m, reason),
			 0);
	ck_assert_uint_eq(m.n, 2);
	gw_aliyun_gw_msg_free(&m);
	ck_assert_int_eq(parse(GW_ALIYUN_GW_BATCH_LOGOUT_REPLY,
			       "{\"id\":\"9\",\"code\":200,\"data\":[" IDENT(PK, DN) "]}", &m,
			       reason),
			 0);
	gw_aliyun_gw_msg_free(&m);
}
END_TEST

START_TEST(test_parse_register)
{
	struct gw_aliyun_gw_msg m;
	char reason[GW_ALIYUN_REASON_MAX];

	/* §G13 sub/register_reply */
	ck_assert_int_eq(parse(GW_ALIYUN_GW_SUB_REGISTER_REPLY,
			       "{\"id\":\"1\",\"code\":200,\"data\":[{\"iotId\":\"abc123\","
			       "\"productKey\":\"" PK "\",\"deviceName\":\"" DN "\","
			       "\"deviceSecret\":\"" DS "\"}]}",
			       &m, reason),
			 0);
	ck_assert_uint_eq(m.n, 1);
	ck_assert_str_eq(m.devices[0].iot_id, "abc123");
	ck_assert_str_eq(m.devices[0].device_secret, DS);
	gw_aliyun_gw_msg_free(&m);
	ck_assert_ptr_null(m.devices);
	/* with code 200 every entry needs a secret */
	BAD(GW_ALIYUN_GW_SUB_REGISTER_REPLY,
	    "{\"id\":\"1\",\"code\":200,\"data\":[" IDENT(PK, DN) "]}");
	BAD(GW_ALIYUN_GW_SUB_REGISTER_REPLY,
	    "{\"id\":\"1\",\"code\":200,\"data\":[{\"productKey\":\"" PK "\",\"deviceName\":\"" DN
	    "\",\"deviceSecret\":\"a b\"}]}");
	BAD(GW_ALIYUN_GW_SUB_REGISTER_REPLY,
	    "{\"id\":\"1\",\"code\":200,\"data\":[{\"productKey\":\"" PK "\",\"deviceName\":\"" DN
	    "\",\"deviceSecret\":\"s\",\"iotId\":7}]}");
	BAD(GW_ALIYUN_GW_SUB_REGISTER_REPLY, "{\"id\":\"1\",\"code\":200}");
	BAD(GW_ALIYUN_GW_SUB_REGISTER_REPLY, "{\"id\":\"1\",\"code\":200,\"data\":{}}");
	/* a refusal needs none */
	ck_assert_int_eq(parse(GW_ALIYUN_GW_SUB_REGISTER_REPLY,
			       "{\"id\":\"1\",\"code\":6402,\"message\":\"x\","
			       "\"data\":[" IDENT(PK, DN) "]}",
			       &m, reason),
			 0);
	ck_assert_uint_eq(m.n, 1);
	gw_aliyun_gw_msg_free(&m);

	/* §G13 product_register_reply: unverified layout, both forms, secret optional */
	ck_assert_int_eq(parse(GW_ALIYUN_GW_PRODUCT_REGISTER_REPLY,
			       "{\"id\":\"2\",\"code\":200,\"data\":{\"proxieds\":["
			       "{\"productKey\":\"" PK "\",\"deviceName\":\"" DN "\","
			       "\"deviceSecret\":\"" DS "\"}]}}",
			       &m, reason),
			 0);
	ck_assert_uint_eq(m.n, 1);
	ck_assert_str_eq(m.devices[0].device_secret, DS);
	gw_aliyun_gw_msg_free(&m);
	ck_assert_int_eq(parse(GW_ALIYUN_GW_PRODUCT_REGISTER_REPLY,
			       "{\"id\":\"2\",\"code\":200,\"data\":[" IDENT(PK, DN) "]}", &m,
			       reason),
			 0);
	ck_assert_str_eq(m.devices[0].device_secret, "");
	gw_aliyun_gw_msg_free(&m);
	BAD(GW_ALIYUN_GW_PRODUCT_REGISTER_REPLY, "{\"id\":\"2\",\"code\":200,\"data\":{}}");
}
END_TEST

/* "[" n identities "]" in a malloc'd string */
static char *list_of(size_t n)
{
	const char *one = IDENT(PK, DN);
	size_t len = strlen(one), i;
	char *s = malloc(n * (len + 1) + 3), *p = s;

	ck_assert_ptr_nonnull(s);
	*p++ = '[';
	for (i = 0; i < n; i++) {
		if (i)
			*p++ = ',';
		memcpy(p, one, len);
		p += len;
	}
	*p++ = ']';
	*p = '\0';
	return s;
}

static int parse_with_list(enum gw_aliyun_gw_topic kind, const char *head, size_t n,
			   const char *tail, struct gw_aliyun_gw_msg *m, char *reason)
{
	char *list = list_of(n);
	char *s = malloc(strlen(head) + strlen(list) + strlen(tail) + 1);
	int r;

	ck_assert_ptr_nonnull(s);
	strcpy(s, head);
	strcat(s, list);
	strcat(s, tail);
	r = parse(kind, s, m, reason);
	free(s);
	free(list);
	return r;
}

START_TEST(test_parse_oversize)
{
	static const struct {
		enum gw_aliyun_gw_topic kind;
		size_t max;
	} lim[] = {
		{ GW_ALIYUN_GW_TOPO_ADD_REPLY, GW_ALIYUN_TOPO_ADD_MAX },
		{ GW_ALIYUN_GW_TOPO_DELETE_REPLY, GW_ALIYUN_TOPO_ADD_MAX },
		{ GW_ALIYUN_GW_BATCH_LOGIN_REPLY, GW_ALIYUN_BATCH_LOGIN_MAX },
		{ GW_ALIYUN_GW_BATCH_LOGOUT_REPLY, GW_ALIYUN_BATCH_LOGIN_MAX },
		{ GW_ALIYUN_GW_TOPO_GET_REPLY, GW_ALIYUN_TOPO_MAX },
	};
	struct gw_aliyun_gw_msg m;
	char reason[GW_ALIYUN_REASON_MAX];
	char *big;
	size_t i;

	for (i = 0; i < sizeof(lim) / sizeof(lim[0]); i++) {
		ck_assert_int_eq(parse_with_list(lim[i].kind,
						 "{\"id\":\"1\",\"code\":200,\"data\":", lim[i].max,
						 "}", &m, reason),
				 0);
		ck_assert_uint_eq(m.n, lim[i].max);
		gw_aliyun_gw_msg_free(&m);
		ck_assert_int_eq(parse_with_list(lim[i].kind,
						 "{\"id\":\"1\",\"code\":200,\"data\":",
						 lim[i].max + 1, "}", &m, reason),
				 -EBADMSG);
		ck_assert_ptr_nonnull(strstr(reason, "entries"));
		ck_assert_ptr_null(m.devices);
	}
	ck_assert_int_eq(parse_with_list(GW_ALIYUN_GW_TOPO_CHANGE,
					 "{\"id\":\"1\",\"params\":{\"status\":1,\"subList\":",
					 GW_ALIYUN_TOPO_MAX + 1, "}}", &m, reason),
			 -EBADMSG);
	ck_assert_int_eq(parse_with_list(GW_ALIYUN_GW_TOPO_ADD_NOTIFY, "{\"id\":\"1\",\"params\":",
					 GW_ALIYUN_TOPO_ADD_MAX + 1, "}", &m, reason),
			 -EBADMSG);
	/* the message itself */
	big = malloc(GW_ALIYUN_GATEWAY_MSG_MAX + 2);
	ck_assert_ptr_nonnull(big);
	memset(big, ' ', GW_ALIYUN_GATEWAY_MSG_MAX + 1);
	big[0] = '{';
	big[GW_ALIYUN_GATEWAY_MSG_MAX] = '}';
	big[GW_ALIYUN_GATEWAY_MSG_MAX + 1] = '\0';
	ck_assert_int_eq(parse(GW_ALIYUN_GW_TOPO_GET_REPLY, big, &m, reason), -EMSGSIZE);
	free(big);
}
END_TEST

START_TEST(test_parse_malformed)
{
	static const char *const replies[] = {
		"",
		"[]",
		"not json",
		"{\"code\":200}",
		"{\"id\":1,\"code\":200}",
		"{\"id\":\"\",\"code\":200}",
		"{\"id\":\"4294967296\",\"code\":200}",
		"{\"id\":\"1x\",\"code\":200}",
		"{\"id\":\"1\"}",
		"{\"id\":\"1\",\"code\":null}",
		"{\"id\":\"1\",\"code\":\"2x0\"}",
		"{\"id\":\"1\",\"code\":\"\"}",
		"{\"id\":\"1\",\"code\":\"12345678901\"}",
		"{\"id\":\"1\",\"code\":200.5}",
		"{\"id\":\"1\",\"code\":200,\"message\":5}",
		"{\"id\":\"1\",\"code\":200,\"data\":\"[]\"}",
		"{\"id\":\"1\",\"code\":200,\"data\":[1]}",
		"{\"id\":\"1\",\"code\":200,\"data\":[{}]}",
		"{\"id\":\"1\",\"code\":200,\"data\":[{\"productKey\":\"" PK "\"}]}",
		"{\"id\":\"1\",\"code\":200,\"data\":[{\"productKey\":\"" PK
		"\",\"deviceName\":3}]}",
		"{\"id\":\"1\",\"code\":200,\"data\":[{\"productKey\":\"a b\","
		"\"deviceName\":\"d\"}]}",
		"{\"id\":\"1\",\"code\":200,\"data\":[{\"productKey\":\"p\","
		"\"deviceName\":\"d/e\"}]}",
		"{\"id\":\"1\",\"code\":200,\"data\":[{\"productKey\":\"p\\u0000\",\"deviceName\":"
		"\"d\"}]}",
		"{\"id\":\"1\",\"id\":\"2\",\"code\":200}",
	};
	struct gw_aliyun_gw_msg m;
	char reason[GW_ALIYUN_REASON_MAX];
	size_t i;

	for (i = 0; i < sizeof(replies) / sizeof(replies[0]); i++)
		BAD(GW_ALIYUN_GW_BATCH_LOGIN_REPLY, replies[i]);
	/* login: data an object naming one sub-device */
	BAD(GW_ALIYUN_GW_LOGIN_REPLY, "{\"id\":\"1\",\"code\":200,\"data\":[]}");
	BAD(GW_ALIYUN_GW_LOGIN_REPLY,
	    "{\"id\":\"1\",\"code\":200,\"data\":{\"productKey\":\"p\"}}");
	ck_assert_int_eq(parse(GW_ALIYUN_GW_LOGIN_REPLY, "{\"id\":\"1\",\"code\":200,\"data\":{}}",
			       &m, reason),
			 0);
	ck_assert_uint_eq(m.n, 0);
	/* the topo/get reply must list */
	BAD(GW_ALIYUN_GW_TOPO_GET_REPLY, "{\"id\":\"1\",\"code\":200}");
	/* an uplink kind is not parsed */
	ck_assert_int_eq(parse(GW_ALIYUN_GW_TOPO_ADD, "{\"id\":\"1\",\"code\":200}", &m, reason),
			 -EINVAL);
	ck_assert_int_eq(parse((enum gw_aliyun_gw_topic)99, "{}", &m, reason), -EINVAL);
}
END_TEST

START_TEST(test_parse_pushes)
{
	struct gw_aliyun_gw_msg m;
	char reason[GW_ALIYUN_REASON_MAX];
	static const int statuses[] = { 0, 1, 2, 8 };
	char buf[256];
	size_t i;

	/* §G6 topo/change, every status */
	for (i = 0; i < 4; i++) {
		snprintf(buf, sizeof(buf),
			 "{\"id\":\"123\",\"version\":\"1.0\",\"method\":\"thing.topo.change\","
			 "\"params\":{\"status\":%d,\"subList\":[" IDENT(PK, DN) "]}}",
			 statuses[i]);
		ck_assert_int_eq(parse(GW_ALIYUN_GW_TOPO_CHANGE, buf, &m, reason), 0);
		ck_assert_int_eq(m.status, statuses[i]);
		ck_assert_str_eq(m.id, "123");
		ck_assert_uint_eq(m.n, 1);
		ck_assert_str_eq(m.devices[0].product_key, PK);
		gw_aliyun_gw_msg_free(&m);
	}
	BAD(GW_ALIYUN_GW_TOPO_CHANGE,
	    "{\"id\":\"1\",\"params\":{\"status\":3,\"subList\":[" IDENT(PK, DN) "]}}");
	BAD(GW_ALIYUN_GW_TOPO_CHANGE,
	    "{\"id\":\"1\",\"params\":{\"status\":\"1\",\"subList\":[" IDENT(PK, DN) "]}}");
	BAD(GW_ALIYUN_GW_TOPO_CHANGE, "{\"id\":\"1\",\"params\":{\"status\":1}}");
	BAD(GW_ALIYUN_GW_TOPO_CHANGE, "{\"id\":\"1\",\"params\":{\"status\":1,\"subList\":[]}}");
	BAD(GW_ALIYUN_GW_TOPO_CHANGE, "{\"id\":\"1\",\"params\":{\"status\":1,\"subList\":{}}}");
	BAD(GW_ALIYUN_GW_TOPO_CHANGE, "{\"id\":\"1\",\"params\":[]}");
	BAD(GW_ALIYUN_GW_TOPO_CHANGE, "{\"id\":\"1\",\"method\":\"thing.topo.add\",\"params\":"
				      "{\"status\":1,\"subList\":[" IDENT(PK, DN) "]}}");
	BAD(GW_ALIYUN_GW_TOPO_CHANGE,
	    "{\"params\":{\"status\":1,\"subList\":[" IDENT(PK, DN) "]}}");

	/* §G5 add/notify */
	ck_assert_int_eq(parse(GW_ALIYUN_GW_TOPO_ADD_NOTIFY,
			       "{\"id\":\"5\",\"version\":\"1.0\",\"method\":"
			       "\"thing.topo.add.notify\",\"params\":[" IDENT(PK, DN) "]}",
			       &m, reason),
			 0);
	ck_assert_uint_eq(m.n, 1);
	gw_aliyun_gw_msg_free(&m);
	BAD(GW_ALIYUN_GW_TOPO_ADD_NOTIFY, "{\"id\":\"5\",\"params\":{}}");
	BAD(GW_ALIYUN_GW_TOPO_ADD_NOTIFY, "{\"id\":\"5\"}");

	/* §G10 /ext/error: the id optional, data naming the sub-device */
	ck_assert_int_eq(parse(GW_ALIYUN_GW_ERROR,
			       "{\"id\":\"77\",\"code\":520,\"message\":\"device session error\","
			       "\"data\":" IDENT(PK, DN) "}",
			       &m, reason),
			 0);
	ck_assert_int_eq(m.code, 520);
	ck_assert_str_eq(m.id, "77");
	ck_assert_str_eq(m.message, "device session error");
	ck_assert_uint_eq(m.n, 1);
	ck_assert_str_eq(m.devices[0].device_name, DN);
	ck_assert_int_eq(gw_aliyun_classify_gw_code(m.code), GW_ALIYUN_GW_ACT_RELOGIN);
	gw_aliyun_gw_msg_free(&m);
	ck_assert_int_eq(parse(GW_ALIYUN_GW_ERROR, "{\"id\":\"x-1\",\"code\":\"6287\"}", &m,
			       reason),
			 0);
	ck_assert_str_eq(m.id, "");
	ck_assert_int_eq(m.code, 6287);
	ck_assert_int_eq(parse(GW_ALIYUN_GW_ERROR, "{\"code\":6401}", &m, reason), 0);
	BAD(GW_ALIYUN_GW_ERROR, "{\"id\":\"1\"}");
	BAD(GW_ALIYUN_GW_ERROR, "{\"code\":[520]}");

	/* §G12 disable, enable, delete */
	ck_assert_int_eq(parse(GW_ALIYUN_GW_DISABLE,
			       "{\"id\":\"9\",\"version\":\"1.0\",\"params\":{},"
			       "\"method\":\"thing.disable\"}",
			       &m, reason),
			 0);
	ck_assert_str_eq(m.id, "9");
	ck_assert_uint_eq(m.n, 0);
	ck_assert_int_eq(parse(GW_ALIYUN_GW_ENABLE,
			       "{\"id\":\"10\",\"params\":{},\"method\":\"thing.enable\"}", &m,
			       reason),
			 0);
	ck_assert_int_eq(parse(GW_ALIYUN_GW_DELETE, "{\"id\":\"11\",\"params\":{}}", &m, reason),
			 0);
	BAD(GW_ALIYUN_GW_DISABLE, "{\"id\":\"9\",\"params\":{},\"method\":\"thing.enable\"}");
	BAD(GW_ALIYUN_GW_DELETE, "{\"id\":\"9\",\"params\":[]}");
	BAD(GW_ALIYUN_GW_ENABLE, "{\"id\":\"9\"}");
	BAD(GW_ALIYUN_GW_ENABLE, "{\"params\":{}}");
}
END_TEST

START_TEST(test_classify_codes)
{
	static const struct {
		int code;
		enum gw_aliyun_gw_action act;
		const char *name;
	} c[] = {
		{ 200, GW_ALIYUN_GW_ACT_OK, "ok" },
		{ 520, GW_ALIYUN_GW_ACT_RELOGIN, "relogin" },
		{ 6401, GW_ALIYUN_GW_ACT_READD, "readd" },
		{ 6287, GW_ALIYUN_GW_ACT_BAD_SECRET, "bad_secret" },
		{ 428, GW_ALIYUN_GW_ACT_BACKOFF, "backoff" },
		{ 429, GW_ALIYUN_GW_ACT_BACKOFF, "backoff" },
		{ 522, GW_ALIYUN_GW_ACT_DISABLED, "disabled" },
		{ 521, GW_ALIYUN_GW_ACT_GONE, "gone" },
		{ 6100, GW_ALIYUN_GW_ACT_GONE, "gone" },
		{ 427, GW_ALIYUN_GW_ACT_TAKEN_OVER, "taken_over" },
		{ 460, GW_ALIYUN_GW_ACT_REFUSED, "refused" },
		{ 401, GW_ALIYUN_GW_ACT_REFUSED, "refused" },
		{ 6402, GW_ALIYUN_GW_ACT_REFUSED, "refused" },
		{ 500, GW_ALIYUN_GW_ACT_RETRY, "retry" },
		{ 12345, GW_ALIYUN_GW_ACT_RETRY, "retry" },
	};
	size_t i;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		ck_assert_int_eq(gw_aliyun_classify_gw_code(c[i].code), c[i].act);
		ck_assert_str_eq(gw_aliyun_name_gw_action(c[i].act), c[i].name);
	}
	ck_assert_ptr_null(gw_aliyun_name_gw_action((enum gw_aliyun_gw_action)99));
}
END_TEST

#define CTL "sign aliyun-subdev --product-key " PK " --device-name " DN " "
#define OUT(cid, ts, m, sign) \
	"client_id=" cid "\ntimestamp=" ts "\nsign_method=" m "\nsign=" sign "\n"

START_TEST(test_cli_vectors)
{
	static const struct {
		const char *args;
		const char *out;
	} v[] = {
		{ CTL "--device-secret-file - --timestamp 1700000000000 --uppercase",
		  OUT(PK "." DN, "1700000000000", "hmacSha256", A1) },
		{ CTL "--device-secret-file - --timestamp 1700000000000 --uppercase "
		      "--client-id '" CID_LS4X "'",
		  OUT(CID_LS4X, "1700000000000", "hmacSha256", A2) },
		{ CTL "--device-secret-file - --timestamp 1700000000000 --uppercase "
		      "--client-id '" CID_DOC "' --sign-method hmacsha256",
		  OUT(CID_DOC, "1700000000000", "hmacSha256", A3_SHA256) },
		{ CTL "--device-secret-file - --timestamp 1700000000000 --client-id '" CID_DOC
		      "' --sign-method hmacsha1",
		  OUT(CID_DOC, "1700000000000", "hmacSha1", A3_SHA1) },
		{ CTL "--device-secret-file - --timestamp 1700000000000 --client-id '" CID_DOC
		      "' --sign-method hmacmd5",
		  OUT(CID_DOC, "1700000000000", "hmacMd5", A3_MD5) },
		{ CTL "--device-secret-file - --timestamp 123456 --sign-method hmacsha1",
		  OUT(PK "." DN, "123456", "hmacSha1", B1) },
		{ CTL "--device-secret-file - --timestamp 123456 --sign-method hmacsha1 "
		      "--client-id '" CID_IKE3 "'",
		  OUT(CID_IKE3, "123456", "hmacSha1", B2) },
		{ CTL "--device-secret-file - --timestamp 1700000000000 --sign-method hmacsha1",
		  OUT(PK "." DN, "1700000000000", "hmacSha1", B3) },
	};
	char out[1024];
	size_t i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		ck_assert_int_eq(ctltest_run(v[i].args, DS "\n", out, sizeof(out)), 0);
		ck_assert_str_eq(out, v[i].out);
	}
	/* the secret on the command line gives the same */
	ck_assert_int_eq(ctltest_run(CTL "--device-secret " DS " --timestamp 1700000000000 --uppercase",
				 NULL, out, sizeof(out)),
			 0);
	ck_assert_str_eq(out, v[0].out);
	/* D1, Alibaba's doc example, with its hmacmd5 and key 1234 */
	ck_assert_int_eq(ctltest_run("sign aliyun-subdev --product-key a1PB5fp1234 --device-name "
				 "868575026974305 --client-id 868575026974305 --timestamp "
				 "1646277090411 --sign-method hmacmd5 --uppercase "
				 "--device-secret-file -",
				 "1234", out, sizeof(out)),
			 0);
	ck_assert_str_eq(out, OUT("868575026974305", "1646277090411", "hmacMd5",
				  "3BA0DFA4C477B40C007D84D30D6466CC"));
	/* C1 and C2: proxy registration with the ProductSecret */
	ck_assert_int_eq(ctltest_run(CTL "--product-secret-file - --random 0123456789ABCDEF0123 "
				     "--uppercase",
				 PS "\n", out, sizeof(out)),
			 0);
	ck_assert_str_eq(out, "random=0123456789ABCDEF0123\nsign_method=hmacSha256\nsign=" C1 "\n");
	ck_assert_int_eq(ctltest_run("sign aliyun-subdev --product-key " PK " --device-name stm32-0001 "
				 "--product-secret-file - --random 00000000000000000000 "
				 "--uppercase",
				 PS, out, sizeof(out)),
			 0);
	ck_assert_str_eq(out, "random=00000000000000000000\nsign_method=hmacSha256\nsign=" C2 "\n");
	/* defaults: now, a fresh random */
	ck_assert_int_eq(ctltest_run(CTL "--device-secret-file -", DS, out, sizeof(out)), 0);
	ck_assert_ptr_nonnull(strstr(out, "client_id=" PK "." DN "\ntimestamp=1"));
	ck_assert_int_eq(ctltest_run(CTL "--product-secret-file -", PS, out, sizeof(out)), 0);
	ck_assert_int_eq(strncmp(out, "random=", 7), 0);
}
END_TEST

START_TEST(test_cli_usage)
{
	static const char *const bad[] = {
		"sign aliyun-subdev",
		"sign aliyun-subdev --device-name " DN " --device-secret x",
		"sign aliyun-subdev --product-key " PK " --device-secret x",
		CTL,
		CTL "--device-secret x --device-secret-file y",
		CTL "--device-secret x --product-secret y",
		CTL "--device-secret x --sign-method sha256",
		CTL "--device-secret x --timestamp -1",
		CTL "--device-secret x --timestamp 1x",
		CTL "--device-secret x --random 1",
		CTL "--product-secret x --timestamp 1",
		CTL "--product-secret x --client-id c",
		CTL "--product-secret x --random no-dash",
		CTL "--device-secret 'a b'",
		CTL "--device-secret x --client-id 'a b'",
		CTL "--device-secret x extra",
		CTL "--device-secret x --bogus",
		CTL "--device-secret",
		"sign aliyun-subdev --product-key a_b --device-name " DN " --device-secret x",
	};
	char out[4096];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(ctltest_run(bad[i], NULL, out, sizeof(out)) == 2, "accepted: %s", bad[i]);
	ck_assert_int_eq(ctltest_run(CTL "--device-secret-file -", "\n", out, sizeof(out)), 1);
	ck_assert_int_eq(ctltest_run(CTL "--device-secret-file /nonexistent/ds", NULL, out,
				 sizeof(out)),
			 1);
	ck_assert_int_eq(ctltest_run("sign aliyun-subdev --help", NULL, out, sizeof(out)), 0);
	ck_assert_ptr_nonnull(strstr(out, "--device-secret-file"));
	ck_assert_int_eq(ctltest_run("sign --help", NULL, out, sizeof(out)), 0);
	ck_assert_ptr_nonnull(strstr(out, "aliyun-subdev"));
}
END_TEST

static Suite *gateway_suite(bool cli)
{
	Suite *s = suite_create("aliyun-gateway");
	TCase *tc;

	tc = tcase_create("sign");
	tcase_add_test(tc, test_sign_vectors);
	tcase_add_test(tc, test_sign_negative);
	tcase_add_test(tc, test_sign_proxied_vectors);
	tcase_add_test(tc, test_sign_errors);
	suite_add_tcase(s, tc);

	tc = tcase_create("build");
	tcase_add_test(tc, test_build_topo);
	tcase_add_test(tc, test_build_session);
	tcase_add_test(tc, test_build_register);
	tcase_add_test(tc, test_topics);
	suite_add_tcase(s, tc);

	tc = tcase_create("parse");
	tcase_add_test(tc, test_parse_replies);
	tcase_add_test(tc, test_parse_register);
	tcase_add_test(tc, test_parse_oversize);
	tcase_add_test(tc, test_parse_malformed);
	tcase_add_test(tc, test_parse_pushes);
	tcase_add_test(tc, test_classify_codes);
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
	return ctltest_main("test-aliyun-gateway", gateway_suite);
}
