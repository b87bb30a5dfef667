/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the Tencent driver's pure half: MQTT signing and dynamic registration against
 * every vector of docs/protocols/tencent.md (§1.2, §2.1, §2.3), the AES
 * payload both ways, strict parsing of registration replies and of data-template messages.
 * With GW_SENSORGWCTL set to the built sensorgwctl, the "cli" case checks that
 * `sensorgwctl sign tencent` prints the same.
 */
#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timex.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctltest.h"
#include "gw/tencent.h"

/* The seed (docs/protocols/tencent.md §1.2). */
#define PID "CS0SLTKSYA"
#define DN "dev1"
#define PSK "IyXmUW5sU/q1vnb5yzTkeQ=="
#define CONNID "ZR5GT"
#define EXPIRY 2623045740ULL
#define SEED_USER PID DN ";12010126;ZR5GT;2623045740"
#define SEED_PW_SHA256 "2debdc61b009ef8d09597f106f6f8ca36f101415459b0623780a81e711e7257c;hmacsha256"
#define SEED_PW_SHA1 "5dc2e1c6c71edcf7f2eff546c81e72579583b583;hmacsha1"
#define HOST PID ".iotcloud.tencentdevices.com"

/* docs/protocols/tencent.md §2.3 */
#define DN2 "dev2"
#define PRODUCT_SECRET "testProductSecret123"
#define NONCE 123456u
#define TS 1700000000ULL
#define V2_BODY "{\"ProductId\":\"CS0SLTKSYA\",\"DeviceName\":\"dev2\"}"
#define V2_SIG_SHA256 "dMOQnA8g98viKlO3Imq+Ra0L2TD+HNdh1vP8nBE0FHQ="
#define V2_SIG_SHA1 "X7nynitQLR6Y/GW0ZBQxrtpBJlY="
#define LEGACY_SIG "NzcwZTQ2MDRlOWQxZTQ1OGU2OTkzMDJhNzAxZWI1N2I3OTc4OWEwNQ=="
#define PLAIN_PSK "{\"encryptionType\":2,\"psk\":\"IyXmUW5sU/q1vnb5yzTkeQ==\"}"
#define CIPHER_PSK                                                                  \
	"TuN0W0K3sdvLLHn+RLSu2CjmksX8CC2dGPt2xpr0M9JIStdkSI2Cza6B+eJ6YSW6TNRKZ4U6Fq7vc" \
	"xaN4PbeRw=="
/* The documentation's own vector (docs/protocols/tencent.md §2.1). */
#define DOC_SECRET "hzvf5LF9S0isvBhDSauWMaIk"
#define DOC_CIPHER                                                                    \
	"s6FB3a1BA/YYbcmSE12XpeDVmQNDcf1QgVD141RRbmmAnFwQfp1ECAu5O016mCOvYlJJ6V59yM4OqQSi" \
	"WphfTg=="
#define DOC_PLAIN "{\"encryptionType\":2,\"psk\":\"lDZ6Uqt+I9E0wW7rvDUs7Q==\"}"

static struct gw_tencent_login seed_login(void)
{
	return (struct gw_tencent_login){
		.product_id = PID,
		.device_name = DN,
		.psk = PSK,
		.connid = CONNID,
		.expiry = EXPIRY,
		.sign_method = GW_TENCENT_HMAC_SHA256,
	};
}

START_TEST(test_connect_seed)
{
	struct gw_tencent_login l = seed_login();
	struct gw_tencent_connect c;
	char reason[GW_TENCENT_REASON_MAX] = "";

	ck_assert_int_eq(gw_tencent_build_connect(&l, &c, reason), 0);
	ck_assert_str_eq(c.host, HOST);
	ck_assert_uint_eq(c.port, 8883);
	ck_assert(c.tls);
	ck_assert_str_eq(c.client_id, PID DN);
	ck_assert_str_eq(c.username, SEED_USER);
	ck_assert_str_eq(c.password, SEED_PW_SHA256);

	l.sign_method = GW_TENCENT_HMAC_SHA1;
	ck_assert_int_eq(gw_tencent_build_connect(&l, &c, reason), 0);
	ck_assert_str_eq(c.username, SEED_USER);
	ck_assert_str_eq(c.password, SEED_PW_SHA1);

	/* The explicit default sdkappid is the same as none. */
	l = seed_login();
	l.sdkappid = GW_TENCENT_DEFAULT_SDKAPPID;
	ck_assert_int_eq(gw_tencent_build_connect(&l, &c, reason), 0);
	ck_assert_str_eq(c.password, SEED_PW_SHA256);

	/* docs/protocols/tencent.md §1.3: a certificate device, the same user name, no PSK and no password; TLS only */
	l = seed_login();
	l.psk = NULL;
	l.certificate = true;
	ck_assert_int_eq(gw_tencent_build_connect(&l, &c, reason), 0);
	ck_assert_str_eq(c.username, SEED_USER);
	ck_assert_str_eq(c.password, "");
	l.transport = GW_TENCENT_TCP;
	ck_assert_int_eq(gw_tencent_build_connect(&l, &c, reason), -EINVAL);
	ck_assert_str_eq(reason, "a certificate device needs TLS");
}
END_TEST

START_TEST(test_connect_variants)
{
	struct gw_tencent_login l = seed_login();
	struct gw_tencent_connect c, c2;
	char reason[GW_TENCENT_REASON_MAX];
	size_t i;

	/* The default expiry, and the key being the decoded PSK (recomputed with Python's hmac
	 * over the same username). */
	l.expiry = 0;
	ck_assert_int_eq(gw_tencent_build_connect(&l, &c, reason), 0);
	ck_assert_str_eq(c.username, PID DN ";12010126;ZR5GT;2147483647");
	ck_assert_str_eq(c.password, "cae77fcbbe1c61396270f7ccc1aab60464f4720cce7e692f9d414d74be9b"
				     "2336;hmacsha256");

	/* The C/Python SDKs' sdkappid; plain TCP; an explicit port. */
	l = seed_login();
	l.sdkappid = 21010406;
	l.transport = GW_TENCENT_TCP;
	ck_assert_int_eq(gw_tencent_build_connect(&l, &c, reason), 0);
	ck_assert_str_eq(c.username, PID DN ";21010406;ZR5GT;2623045740");
	ck_assert_uint_eq(c.port, 1883);
	ck_assert(!c.tls);
	ck_assert_str_ne(c.password, SEED_PW_SHA256);
	l.port = 4433;
	ck_assert_int_eq(gw_tencent_build_connect(&l, &c, reason), 0);
	ck_assert_uint_eq(c.port, 4433);

	/* A fresh connid each time when none is given. */
	l = seed_login();
	l.connid = NULL;
	ck_assert_int_eq(gw_tencent_build_connect(&l, &c, reason), 0);
	ck_assert_int_eq(gw_tencent_build_connect(&l, &c2, reason), 0);
	ck_assert_int_eq(strncmp(c.username, PID DN ";12010126;", 24), 0);
	ck_assert_uint_eq(strlen(c.username), strlen(SEED_USER));
	for (i = 24; i < 29; i++)
		ck_assert_msg(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				     "0123456789",
				     c.username[i]) != NULL,
			      "connid character '%c'", c.username[i]);
	ck_assert_str_ne(c.username, c2.username); /* 62^5: a collision is 1 in 9e8 */

	/* Regions (docs/protocols/tencent.md §1.5). */
	{
		static const struct {
			const char *region, *host;
		} v[] = {
			{ "ap-guangzhou", HOST },
			{ "china", HOST },
			{ "us-east", PID ".us-east.iotcloud.tencentdevices.com" },
			{ "europe", PID ".europe.iothub.tencentdevices.com" },
			{ "ap-bangkok", PID ".ap-bangkok.iothub.tencentdevices.com" },
		};
		for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
			l = seed_login();
			l.region = v[i].region;
			ck_assert_int_eq(gw_tencent_build_connect(&l, &c, reason), 0);
			ck_assert_str_eq(c.host, v[i].host);
			ck_assert_str_eq(c.password, SEED_PW_SHA256);
		}
	}
}
END_TEST

START_TEST(test_connect_invalid)
{
	static const char *const bad_psk[] = {
		"",
		"IyXmUW5sU/q1vnb5yzTkeQ=",   /* length not a multiple of 4 */
		"IyXmUW5sU/q1vnb5yzTkeQ",    /* unpadded */
		"IyXmUW5sU/q1vnb5yzTkeR==",  /* unused bits set: not canonical */
		"IyXmUW5sU/q1vnb5yzTke===",  /* three '=' */
		"IyXmUW5sU/q1vnb5yzTk=Q==",  /* '=' inside */
		"IyXm UW5sU/q1vnb5yzTkeQ=",  /* space */
		"IyXmUW5sU-q1vnb5yzTkeQ==",  /* URL-safe alphabet */
		"====",
		"IyXmUW5sU/q1vnb5yzTkeQ==\n",
		/* 68 characters: 51 bytes, more than the 48 the SDK's buffer holds */
		"QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB",
	};
	struct gw_tencent_login l;
	struct gw_tencent_connect c;
	char reason[GW_TENCENT_REASON_MAX];
	size_t i;

#define REJECT(stmt)                                                                      \
	do {                                                                              \
		l = seed_login();                                                         \
		stmt;                                                                     \
		reason[0] = '\0';                                                         \
		memset(&c, 'x', sizeof(c));                                               \
		ck_assert_msg(gw_tencent_build_connect(&l, &c, reason) == -EINVAL,        \
			      "accepted: %s", #stmt);                                     \
		ck_assert_msg(reason[0] != '\0', "no reason: %s", #stmt);                 \
		ck_assert_str_eq(c.password, "");                                         \
		ck_assert_str_eq(c.username, "");                                         \
	} while (0)

	REJECT(l.product_id = NULL);
	REJECT(l.product_id = "");
	REJECT(l.product_id = "CS0S.LTKSYA");
	REJECT(l.product_id = "CS0S-LTKSYA");
	REJECT(l.product_id = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456");
	REJECT(l.device_name = "");
	REJECT(l.device_name = "dev;1");
	REJECT(l.device_name = "dev/1");
	REJECT(l.device_name = "dev+");
	REJECT(l.device_name = "dev#");
	REJECT(l.device_name = "dev 1");
	REJECT(l.device_name = "d\xc3\xa9v");
	REJECT(l.device_name = "0123456789012345678901234567890123456789012345678901234567890123X");
	REJECT(l.psk = NULL);
	for (i = 0; i < sizeof(bad_psk) / sizeof(bad_psk[0]); i++)
		REJECT(l.psk = bad_psk[i]);
	REJECT(l.connid = "");
	REJECT(l.connid = "ZR5G");
	REJECT(l.connid = "ZR5GTX");
	REJECT(l.connid = "ZR5G;");
	REJECT(l.region = "ap-shanghai");
	REJECT(l.region = "");
	REJECT(l.sign_method = (enum gw_tencent_sign_method)2);
	REJECT(l.transport = (enum gw_tencent_transport)2);
#undef REJECT

	/* The longest ids still fit, and a 48-byte PSK is taken. */
	l = seed_login();
	l.product_id = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
	l.device_name = "0123456789012345678901234567890123456789012345678901234567890123";
	l.psk = "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB";
	ck_assert_int_eq(gw_tencent_build_connect(&l, &c, reason), 0);
	l.device_name = "a-b_c.d:e@f";
	l.psk = "QQ==";
	ck_assert_int_eq(gw_tencent_build_connect(&l, &c, reason), 0);
}
END_TEST

START_TEST(test_checks)
{
	char reason[GW_TENCENT_REASON_MAX];
	enum gw_tencent_sign_method m;
	char connid[GW_TENCENT_CONNID_LEN + 1], small[GW_TENCENT_CONNID_LEN];
	uint32_t nonce;
	int i;

	ck_assert_int_eq(gw_tencent_check_keepalive(0, reason), -ERANGE);
	ck_assert_ptr_nonnull(strstr(reason, "900"));
	ck_assert_int_eq(gw_tencent_check_keepalive(1, NULL), 0);
	ck_assert_int_eq(gw_tencent_check_keepalive(240, NULL), 0);
	ck_assert_int_eq(gw_tencent_check_keepalive(900, NULL), 0);
	ck_assert_int_eq(gw_tencent_check_keepalive(901, reason), -ERANGE);

	ck_assert_int_eq(gw_tencent_check_psk(PSK, NULL), 0);
	ck_assert_int_eq(gw_tencent_check_psk("IyXmUW5sU/q1vnb5yzTkeQ", reason), -EINVAL);
	ck_assert_ptr_nonnull(strstr(reason, "base64"));
	ck_assert_int_eq(gw_tencent_check_product_secret(PRODUCT_SECRET, NULL), 0);
	ck_assert_int_eq(gw_tencent_check_product_secret("fifteen-chars!!", reason), -EINVAL);
	ck_assert_int_eq(gw_tencent_check_product_secret("sixteen chars!!!", reason), -EINVAL);
	ck_assert_int_eq(gw_tencent_check_product_id(PID, NULL), 0);
	ck_assert_int_eq(gw_tencent_check_device_name(DN, NULL), 0);
	ck_assert_int_eq(gw_tencent_check_region(NULL), 0);
	ck_assert_int_eq(gw_tencent_check_region("mars"), -EINVAL);

	ck_assert_int_eq(gw_tencent_parse_sign_method("hmacsha1", &m), 0);
	ck_assert_int_eq(m, GW_TENCENT_HMAC_SHA1);
	ck_assert_int_eq(gw_tencent_parse_sign_method("hmacsha256", &m), 0);
	ck_assert_int_eq(m, GW_TENCENT_HMAC_SHA256);
	ck_assert_int_eq(gw_tencent_parse_sign_method("HmacSha256", &m), -EINVAL);
	ck_assert_int_eq(gw_tencent_parse_sign_method("hmacmd5", &m), -EINVAL);
	ck_assert_ptr_null(gw_tencent_name_sign_method((enum gw_tencent_sign_method)2));
	ck_assert_str_eq(gw_tencent_name_method(GW_TENCENT_METHOD_ACTION_REPLY), "action_reply");
	ck_assert_ptr_null(gw_tencent_name_method((enum gw_tencent_method)99));

	ck_assert_int_eq(gw_tencent_make_connid(small, sizeof(small)), -ENOBUFS);
	for (i = 0; i < 200; i++) {
		ck_assert_int_eq(gw_tencent_make_connid(connid, sizeof(connid)), 0);
		ck_assert_uint_eq(strlen(connid), GW_TENCENT_CONNID_LEN);
		ck_assert_uint_eq(strspn(connid, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
						 "abcdefghijklmnopqrstuvwxyz0123456789"),
				  GW_TENCENT_CONNID_LEN);
		ck_assert_int_eq(gw_tencent_make_nonce(&nonce), 0);
		ck_assert_uint_ge(nonce, 1);
		ck_assert_uint_le(nonce, 2147483647u);
	}
}
END_TEST

static struct gw_tencent_dynreg v2_request(void)
{
	return (struct gw_tencent_dynreg){
		.api = GW_TENCENT_DYNREG_V2,
		.product_id = PID,
		.device_name = DN2,
		.product_secret = PRODUCT_SECRET,
		.sign_method = GW_TENCENT_HMAC_SHA256,
		.timestamp = TS,
		.nonce = NONCE,
	};
}

START_TEST(test_dynreg_v2)
{
	struct gw_tencent_dynreg d = v2_request();
	struct gw_tencent_https_request req;
	char reason[GW_TENCENT_REASON_MAX];

	ck_assert_int_eq(gw_tencent_build_dynreg(&d, &req, reason), 0);
	ck_assert_str_eq(req.host, "ap-guangzhou.gateway.tencentdevices.com");
	ck_assert_uint_eq(req.port, 443);
	ck_assert_str_eq(req.url,
			 "https://ap-guangzhou.gateway.tencentdevices.com/device/register");
	ck_assert_str_eq(req.body, V2_BODY);
	ck_assert_uint_eq(req.n_headers, 6);
	ck_assert_str_eq(req.headers[0], "Content-Type: application/json; charset=utf-8");
	ck_assert_str_eq(req.headers[1], "Accept: application/json;*/*");
	ck_assert_str_eq(req.headers[2], "X-TC-Algorithm: hmacsha256");
	ck_assert_str_eq(req.headers[3], "X-TC-Timestamp: 1700000000");
	ck_assert_str_eq(req.headers[4], "X-TC-Nonce: 123456");
	ck_assert_str_eq(req.headers[5], "X-TC-Signature: " V2_SIG_SHA256);
	ck_assert_ptr_null(strstr(req.body, PRODUCT_SECRET));

	d.sign_method = GW_TENCENT_HMAC_SHA1;
	ck_assert_int_eq(gw_tencent_build_dynreg(&d, &req, reason), 0);
	ck_assert_str_eq(req.headers[2], "X-TC-Algorithm: hmacsha1");
	ck_assert_str_eq(req.headers[5], "X-TC-Signature: " V2_SIG_SHA1);

	/* Another region signs its own host. */
	d.region = "us-east";
	ck_assert_int_eq(gw_tencent_build_dynreg(&d, &req, reason), 0);
	ck_assert_str_eq(req.url, "https://us-east.gateway.tencentdevices.com/device/register");
	ck_assert_str_ne(req.headers[5], "X-TC-Signature: " V2_SIG_SHA1);
}
END_TEST

START_TEST(test_dynreg_sign)
{
	static const char body[] = "{\"ProductId\":\"PRODUCT_ID1\",\"DeviceName\":\"DEVICENAME1\"}";
	char sig[64];

	/* [SIGNTOOL]'s vector, whose placeholder ProductId is no valid one: signed directly. */
	ck_assert_int_eq(gw_tencent_sign_dynreg(GW_TENCENT_HMAC_SHA1, "PRODUCT_SECRETKEY",
						"ap-guangzhou.gateway.tencentdevices.com",
						1629362589, 333464802, body, strlen(body), sig,
						sizeof(sig)),
			 28);
	ck_assert_str_eq(sig, "7u3+tAPlt8O4mPpBm3lambv23sw=");
	ck_assert_int_eq(gw_tencent_sign_dynreg(GW_TENCENT_HMAC_SHA256, PRODUCT_SECRET,
						"ap-guangzhou.gateway.tencentdevices.com", TS,
						NONCE, V2_BODY, strlen(V2_BODY), sig, sizeof(sig)),
			 44);
	ck_assert_str_eq(sig, V2_SIG_SHA256);
	ck_assert_int_eq(gw_tencent_sign_dynreg(GW_TENCENT_HMAC_SHA256, PRODUCT_SECRET, "h", TS,
						NONCE, V2_BODY, strlen(V2_BODY), sig, 44),
			 -ENOBUFS);
	ck_assert_int_eq(gw_tencent_sign_dynreg((enum gw_tencent_sign_method)5, PRODUCT_SECRET,
						"h", TS, NONCE, V2_BODY, strlen(V2_BODY), sig,
						sizeof(sig)),
			 -EINVAL);
}
END_TEST

START_TEST(test_dynreg_legacy)
{
	struct gw_tencent_dynreg d = v2_request();
	struct gw_tencent_https_request req;
	char reason[GW_TENCENT_REASON_MAX];

	d.api = GW_TENCENT_DYNREG_LEGACY;
	ck_assert_int_eq(gw_tencent_build_dynreg(&d, &req, reason), -EINVAL);
	ck_assert_ptr_nonnull(strstr(reason, "hmacsha1"));
	d.sign_method = GW_TENCENT_HMAC_SHA1;
	ck_assert_int_eq(gw_tencent_build_dynreg(&d, &req, reason), 0);
	ck_assert_str_eq(req.host, "gateway.tencentdevices.com");
	ck_assert_str_eq(req.url, "https://gateway.tencentdevices.com/register/dev");
	ck_assert_uint_eq(req.n_headers, 2);
	ck_assert_str_eq(req.headers[0], "Content-Type: application/x-www-form-urlencoded");
	/* as the Explorer C SDK's dynreg.c sends it (docs/protocols/tencent.md §2.2) */
	ck_assert_str_eq(req.headers[1], "Accept: text/xml,application/json;*/*");
	ck_assert_str_eq(req.body, "{\"deviceName\":\"dev2\",\"nonce\":123456,\"productId\":"
				   "\"CS0SLTKSYA\",\"timestamp\":1700000000,\"signature\":\""
				   LEGACY_SIG "\"}");
	d.region = "europe";
	ck_assert_int_eq(gw_tencent_build_dynreg(&d, &req, reason), 0);
	ck_assert_str_eq(req.url, "https://europe.gateway.tencentdevices.com/register/dev");
}
END_TEST

START_TEST(test_dynreg_invalid)
{
	struct gw_tencent_dynreg d;
	struct gw_tencent_https_request req;
	char reason[GW_TENCENT_REASON_MAX];

#define REJECT(stmt)                                                                   \
	do {                                                                           \
		d = v2_request();                                                      \
		stmt;                                                                  \
		reason[0] = '\0';                                                      \
		ck_assert_msg(gw_tencent_build_dynreg(&d, &req, reason) == -EINVAL,    \
			      "accepted: %s", #stmt);                                  \
		ck_assert_msg(reason[0] != '\0', "no reason: %s", #stmt);              \
		ck_assert_str_eq(req.body, "");                                        \
	} while (0)
	REJECT(d.product_secret = "short");
	REJECT(d.product_secret = NULL);
	REJECT(d.product_secret = "testProductSecret 123");
	REJECT(d.product_id = "CS0S\"LTKSYA");
	REJECT(d.device_name = "dev\"2");
	REJECT(d.device_name = "dev\\2");
	REJECT(d.nonce = 0);
	REJECT(d.nonce = 2147483648u);
	REJECT(d.region = "moon");
	REJECT(d.sign_method = (enum gw_tencent_sign_method)3);
	REJECT(d.api = (enum gw_tencent_dynreg_api)3);
#undef REJECT
}
END_TEST

START_TEST(test_decrypt_vectors)
{
	char out[256], enc[256], reason[GW_TENCENT_REASON_MAX];
	size_t n = 0;

	ck_assert_int_eq(gw_tencent_dynreg_decrypt(DOC_SECRET, DOC_CIPHER, strlen(DOC_CIPHER), -1,
						   out, sizeof(out), &n, reason),
			 0);
	ck_assert_str_eq(out, DOC_PLAIN);
	ck_assert_uint_eq(n, 53);
	ck_assert_int_eq(gw_tencent_dynreg_decrypt(PRODUCT_SECRET, CIPHER_PSK, strlen(CIPHER_PSK),
						   53, out, sizeof(out), &n, reason),
			 0);
	ck_assert_str_eq(out, PLAIN_PSK);
	ck_assert_uint_eq(n, 53);

	/* Encryption gives the ciphertext of docs/protocols/tencent.md §2.3, and round trips at every length
	 * around a block boundary. */
	ck_assert_int_eq(gw_tencent_dynreg_encrypt(PRODUCT_SECRET, PLAIN_PSK, strlen(PLAIN_PSK),
						   enc, sizeof(enc)),
			 (int)strlen(CIPHER_PSK));
	ck_assert_str_eq(enc, CIPHER_PSK);
	for (size_t len = 1; len <= 49; len++) {
		char plain[64];

		memset(plain, 'a' + (int)(len % 26), len);
		ck_assert_int_gt(gw_tencent_dynreg_encrypt(PRODUCT_SECRET, plain, len, enc,
							   sizeof(enc)),
				 0);
		ck_assert_int_eq(gw_tencent_dynreg_decrypt(PRODUCT_SECRET, enc, strlen(enc),
							   (long long)len, out, sizeof(out), &n,
							   reason),
				 0);
		ck_assert_uint_eq(n, len);
		ck_assert_int_eq(memcmp(out, plain, len), 0);
		ck_assert_int_eq(gw_tencent_dynreg_decrypt(PRODUCT_SECRET, enc, strlen(enc), -1,
							   out, sizeof(out), &n, reason),
				 0);
		ck_assert_uint_eq(n, len);
	}
	ck_assert_int_eq(gw_tencent_dynreg_encrypt(PRODUCT_SECRET, PLAIN_PSK, strlen(PLAIN_PSK),
						   enc, 88),
			 -ENOBUFS);
	ck_assert_int_eq(gw_tencent_dynreg_encrypt("short", PLAIN_PSK, 5, enc, sizeof(enc)),
			 -EINVAL);
}
END_TEST

START_TEST(test_decrypt_malformed)
{
	static const struct {
		const char *payload;
		long long len;
	} bad[] = {
		{ "", -1 },
		{ "!!!!", -1 },
		{ "TuN0W0K3sdvLLHn+RLSu2Cjm", -1 },          /* 18 bytes: not whole blocks */
		{ "TuN0W0K3sdvLLHn+RLSu2Cjmks", -1 },        /* not a multiple of 4 */
		{ "TuN0W0K3sdvLLHn+RLSu2B==", -1 },          /* 16 bytes, non-canonical tail */
		{ CIPHER_PSK, 52 },                          /* a '}' where zeros belong */
		{ CIPHER_PSK, 65 },                          /* Len past the end */
		{ CIPHER_PSK, 48 },                          /* 16 bytes of "padding" */
		{ CIPHER_PSK "\n", -1 },
		{ " " CIPHER_PSK, -1 },
	};
	char out[256], reason[GW_TENCENT_REASON_MAX];
	size_t i, n = 7;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		reason[0] = '\0';
		ck_assert_msg(gw_tencent_dynreg_decrypt(PRODUCT_SECRET, bad[i].payload,
							strlen(bad[i].payload), bad[i].len, out,
							sizeof(out), &n, reason) == -EBADMSG,
			      "accepted #%zu", i);
		ck_assert_msg(reason[0] != '\0', "no reason #%zu", i);
		ck_assert_str_eq(out, "");
	}
	/* The wrong ProductSecret: the plaintext is noise; its last bytes are not zeros. */
	ck_assert_int_eq(gw_tencent_dynreg_decrypt("wrongProductSecret", CIPHER_PSK,
						   strlen(CIPHER_PSK), 53, out, sizeof(out), &n,
						   reason),
			 -EBADMSG);
	ck_assert_int_eq(gw_tencent_dynreg_decrypt(PRODUCT_SECRET, CIPHER_PSK, strlen(CIPHER_PSK),
						   53, out, 64, &n, reason),
			 -ENOBUFS);
	ck_assert_int_eq(gw_tencent_dynreg_decrypt("short", CIPHER_PSK, strlen(CIPHER_PSK), 53,
						   out, sizeof(out), &n, reason),
			 -EINVAL);
	ck_assert_uint_eq(n, 7);
}
END_TEST

/* A V2 reply around an encryption of plain. */
static char *v2_reply(const char *secret, const char *plain, bool with_len)
{
	static char buf[40000];
	static char enc[30000];

	ck_assert_int_gt(gw_tencent_dynreg_encrypt(secret, plain, strlen(plain), enc, sizeof(enc)),
			 0);
	if (with_len)
		snprintf(buf, sizeof(buf),
			 "{\"Response\":{\"Len\":%zu,\"Payload\":\"%s\",\"RequestId\":\"r-1\"}}",
			 strlen(plain), enc);
	else
		snprintf(buf, sizeof(buf), "{\"Response\":{\"Payload\":\"%s\"}}", enc);
	return buf;
}

static int parse_v2(const char *reply, struct gw_tencent_credentials *c, char *reason)
{
	return gw_tencent_parse_dynreg_reply(GW_TENCENT_DYNREG_V2, PRODUCT_SECRET, reply,
					     strlen(reply), c, reason);
}

#define CERT_PEM "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n"
#define KEY_PEM "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49\n-----END PRIVATE KEY-----\n"
#define CERT_PLAIN                                                                     \
	"{\"encryptionType\":1,\"clientCert\":\"-----BEGIN CERTIFICATE-----\\n"      \
	"MIIBszCCAVmgAwIBAgIU\\n-----END CERTIFICATE-----\\n\",\"clientKey\":\""     \
	"-----BEGIN PRIVATE KEY-----\\nMIGHAgEAMBMGByqGSM49\\n-----END PRIVATE KEY-----\\n\"}"

START_TEST(test_reply_ok)
{
	static const char exact[] = "{\"Response\":{\"Len\":53,\"Payload\":\"" CIPHER_PSK
				    "\",\"RequestId\":\"f3bf6a4c-1\"}}";
	static const char doc[] = "{\"Response\":{\"Len\":53,\"Payload\":\"" DOC_CIPHER "\"}}";
	static const char legacy[] = "{\"code\":0,\"message\":\"\",\"len\":53,\"payload\":\""
				     CIPHER_PSK "\"}";
	struct gw_tencent_credentials c;
	char reason[GW_TENCENT_REASON_MAX];

	ck_assert_int_eq(parse_v2(exact, &c, reason), 0);
	ck_assert_int_eq(c.kind, GW_TENCENT_CRED_PSK);
	ck_assert_str_eq(c.psk, PSK);
	ck_assert_str_eq(c.request_id, "f3bf6a4c-1");
	ck_assert_str_eq(c.client_cert, "");
	ck_assert_int_eq(gw_tencent_parse_dynreg_reply(GW_TENCENT_DYNREG_V2, DOC_SECRET, doc,
						       strlen(doc), &c, reason),
			 0);
	ck_assert_str_eq(c.psk, "lDZ6Uqt+I9E0wW7rvDUs7Q==");
	/* Without Len the zero padding is stripped. */
	ck_assert_int_eq(parse_v2(v2_reply(PRODUCT_SECRET, PLAIN_PSK, false), &c, reason), 0);
	ck_assert_str_eq(c.psk, PSK);
	ck_assert_int_eq(gw_tencent_parse_dynreg_reply(GW_TENCENT_DYNREG_LEGACY, PRODUCT_SECRET,
						       legacy, strlen(legacy), &c, reason),
			 0);
	ck_assert_str_eq(c.psk, PSK);

	/* A certificate device. */
	ck_assert_int_eq(parse_v2(v2_reply(PRODUCT_SECRET, CERT_PLAIN, true), &c, reason), 0);
	ck_assert_int_eq(c.kind, GW_TENCENT_CRED_CERT);
	ck_assert_str_eq(c.client_cert, CERT_PEM);
	ck_assert_str_eq(c.client_key, KEY_PEM);
	ck_assert_str_eq(c.psk, "");
	gw_tencent_credentials_wipe(&c);
	ck_assert_int_eq(c.kind, GW_TENCENT_CRED_NONE);
	ck_assert_str_eq(c.client_key, "");
}
END_TEST

START_TEST(test_reply_refused)
{
	static const char v2[] = "{\"Response\":{\"Error\":{\"Code\":\"InvalidParameterValue\","
				 "\"Message\":\"device already activated\\n\"},\"RequestId\":"
				 "\"r-9\"}}";
	static const char v2_int[] = "{\"Response\":{\"Error\":{\"Code\":1021}}}";
	static const char legacy[] = "{\"code\":1010,\"message\":\"Check signature failed\","
				     "\"requestId\":\"x\"}";
	struct gw_tencent_credentials c;
	char reason[GW_TENCENT_REASON_MAX];

	ck_assert_int_eq(parse_v2(v2, &c, reason), -EREMOTEIO);
	ck_assert_str_eq(c.error_code, "InvalidParameterValue");
	ck_assert_str_eq(c.message, "device already activated?");
	ck_assert_str_eq(c.request_id, "r-9");
	ck_assert_int_eq(c.kind, GW_TENCENT_CRED_NONE);
	ck_assert_ptr_nonnull(strstr(reason, "refused"));
	ck_assert_int_eq(parse_v2(v2_int, &c, reason), -EREMOTEIO);
	ck_assert_str_eq(c.error_code, "1021");
	ck_assert_str_eq(c.message, "");
	ck_assert_int_eq(gw_tencent_parse_dynreg_reply(GW_TENCENT_DYNREG_LEGACY, PRODUCT_SECRET,
						       legacy, strlen(legacy), &c, reason),
			 -EREMOTEIO);
	ck_assert_str_eq(c.error_code, "1010");
	ck_assert_str_eq(c.message, "Check signature failed");
}
END_TEST

START_TEST(test_reply_malformed)
{
	static const char *const bad_v2[] = {
		"",
		"{",
		"[]",
		"null",
		"{\"Response\":{\"Len\":53,\"Payload\":\"" CIPHER_PSK "\"}} x",
		"{\"Response\":{\"Len\":53,\"Payload\":\"" CIPHER_PSK "\"}",
		"{\"Resp\":{}}",
		"{\"Response\":\"x\"}",
		"{\"Response\":{}}",
		"{\"Response\":{\"Payload\":7}}",
		"{\"Response\":{\"Payload\":\"\"}}",
		"{\"Response\":{\"Payload\":\"%%%%\"}}",
		"{\"Response\":{\"Len\":\"53\",\"Payload\":\"" CIPHER_PSK "\"}}",
		"{\"Response\":{\"Len\":0,\"Payload\":\"" CIPHER_PSK "\"}}",
		"{\"Response\":{\"Len\":-1,\"Payload\":\"" CIPHER_PSK "\"}}",
		"{\"Response\":{\"Len\":52,\"Payload\":\"" CIPHER_PSK "\"}}",
		"{\"Response\":{\"Len\":53.0,\"Payload\":\"" CIPHER_PSK "\"}}",
		"{\"Response\":{\"Len\":53,\"Payload\":\"TuN0W0K3sdvLLHn+RLSu2Cjm\"}}",
		"{\"Response\":{\"RequestId\":1,\"Len\":53,\"Payload\":\"" CIPHER_PSK "\"}}",
		"{\"Response\":{\"Error\":\"denied\"}}",
		"{\"Response\":{\"Error\":{\"Code\":[]}}}",
		"{\"Response\":{\"Error\":{\"Message\":5}}}",
		"{\"Response\":{\"Len\":53,\"Len\":53,\"Payload\":\"" CIPHER_PSK "\"}}",
	};
	/* Payloads that decrypt fine but are not the expected JSON. */
	static const char *const bad_plain[] = {
		"not json at all",
		"[2]",
		"{\"encryptionType\":\"2\",\"psk\":\"" PSK "\"}",
		"{\"encryptionType\":3,\"psk\":\"" PSK "\"}",
		"{\"psk\":\"" PSK "\"}",
		"{\"encryptionType\":2}",
		"{\"encryptionType\":2,\"psk\":16}",
		"{\"encryptionType\":2,\"psk\":\"IyXmUW5sU/q1vnb5yzTkeQ\"}",
		"{\"encryptionType\":2,\"psk\":\"\"}",
		"{\"encryptionType\":2,\"psk\":\"" PSK "\\u0000\"}",
		"{\"encryptionType\":1,\"clientCert\":\"-----BEGIN C\"}",
		"{\"encryptionType\":1,\"clientCert\":\"MIIB\",\"clientKey\":\"-----BEGIN K\"}",
		"{\"encryptionType\":1,\"clientCert\":\"-----BEGIN C\\u0001\",\"clientKey\":"
		"\"-----BEGIN K\"}",
		"{\"encryptionType\":1,\"clientCert\":\"-----BEGIN C\",\"clientKey\":7}",
	};
	static const char *const bad_legacy[] = {
		"{\"payload\":\"" CIPHER_PSK "\"}",
		"{\"code\":\"0\",\"payload\":\"" CIPHER_PSK "\"}",
		"{\"code\":0}",
		"{\"code\":0,\"payload\":[]}",
		"{\"code\":0,\"message\":1,\"payload\":\"" CIPHER_PSK "\"}",
	};
	struct gw_tencent_credentials c;
	char reason[GW_TENCENT_REASON_MAX];
	size_t i;

	for (i = 0; i < sizeof(bad_v2) / sizeof(bad_v2[0]); i++) {
		reason[0] = '\0';
		ck_assert_msg(parse_v2(bad_v2[i], &c, reason) == -EBADMSG, "accepted %s",
			      bad_v2[i]);
		ck_assert_msg(reason[0] != '\0', "no reason for %s", bad_v2[i]);
		ck_assert_int_eq(c.kind, GW_TENCENT_CRED_NONE);
		ck_assert_str_eq(c.psk, "");
	}
	for (i = 0; i < sizeof(bad_plain) / sizeof(bad_plain[0]); i++) {
		reason[0] = '\0';
		ck_assert_msg(parse_v2(v2_reply(PRODUCT_SECRET, bad_plain[i], true), &c, reason) ==
				      -EBADMSG,
			      "accepted %s", bad_plain[i]);
		ck_assert_msg(reason[0] != '\0', "no reason for %s", bad_plain[i]);
		ck_assert_str_eq(c.psk, "");
		ck_assert_str_eq(c.client_cert, "");
		/* The reason never quotes the plaintext. */
		ck_assert_ptr_null(strstr(reason, "IyXm"));
	}
	for (i = 0; i < sizeof(bad_legacy) / sizeof(bad_legacy[0]); i++) {
		reason[0] = '\0';
		ck_assert_msg(gw_tencent_parse_dynreg_reply(GW_TENCENT_DYNREG_LEGACY,
							    PRODUCT_SECRET, bad_legacy[i],
							    strlen(bad_legacy[i]), &c,
							    reason) == -EBADMSG,
			      "accepted %s", bad_legacy[i]);
		ck_assert_msg(reason[0] != '\0', "no reason for %s", bad_legacy[i]);
	}
	/* The wrong ProductSecret. */
	ck_assert_int_eq(gw_tencent_parse_dynreg_reply(GW_TENCENT_DYNREG_V2, "wrongProductSecret",
						       v2_reply(PRODUCT_SECRET, PLAIN_PSK, false),
						       strlen(v2_reply(PRODUCT_SECRET, PLAIN_PSK,
								       false)),
						       &c, reason),
			 -EBADMSG);
	ck_assert_int_eq(gw_tencent_parse_dynreg_reply(GW_TENCENT_DYNREG_V2, "short", "{}", 2, &c,
						       reason),
			 -EINVAL);
	ck_assert_int_eq(gw_tencent_parse_dynreg_reply((enum gw_tencent_dynreg_api)4,
						       PRODUCT_SECRET, "{}", 2, &c, reason),
			 -EINVAL);
}
END_TEST

START_TEST(test_reply_oversize)
{
	struct gw_tencent_credentials c;
	char reason[GW_TENCENT_REASON_MAX];
	size_t n = GW_TENCENT_HTTPS_REPLY_MAX + 1;
	char *big = malloc(n);
	char *pem;

	ck_assert_ptr_nonnull(big);
	memset(big, ' ', n);
	ck_assert_int_eq(gw_tencent_parse_dynreg_reply(GW_TENCENT_DYNREG_V2, PRODUCT_SECRET, big,
						       n, &c, reason),
			 -EMSGSIZE);
	free(big);

	/* A PEM longer than the buffer for it. */
	pem = malloc(GW_TENCENT_PEM_MAX + 128);
	ck_assert_ptr_nonnull(pem);
	snprintf(pem, GW_TENCENT_PEM_MAX + 128,
		 "{\"encryptionType\":1,\"clientKey\":\"-----BEGIN K\",\"clientCert\":"
		 "\"-----BEGIN %0*d\"}",
		 GW_TENCENT_PEM_MAX, 0);
	ck_assert_int_eq(parse_v2(v2_reply(PRODUCT_SECRET, pem, true), &c, reason), -EBADMSG);
	free(pem);
}
END_TEST

#define PROP_UP "$thing/up/property/" PID "/" DN

START_TEST(test_topics)
{
	static const char *const foreign[] = {
		"$thing/down/property/" PID "/dev2",
		"$thing/down/property/" PID "/" DN "/x",
		"$thing/down/property/" PID "/dev",
		"$thing/down/property/CS0SLTKSY/" DN,
		"$thing/down/service/" PID "/" DN,
		"$thing/down/raw/" PID "/" DN,
		"$thing/sideways/property/" PID "/" DN,
		"$thing/down/property/" PID DN,
		"thing/down/property/" PID "/" DN,
		"$sys/operation/result/" PID "/" DN,
		"",
	};
	char buf[GW_TENCENT_TOPIC_MAX];
	enum gw_tencent_direction dir;
	enum gw_tencent_topic kind;
	size_t i;

	ck_assert_int_eq(gw_tencent_build_topic(GW_TENCENT_UP, GW_TENCENT_TOPIC_PROPERTY, PID, DN,
						buf, sizeof(buf)),
			 (int)strlen(PROP_UP));
	ck_assert_str_eq(buf, PROP_UP);
	ck_assert_int_gt(gw_tencent_build_topic(GW_TENCENT_DOWN, GW_TENCENT_TOPIC_EVENT, PID, DN,
						buf, sizeof(buf)),
			 0);
	ck_assert_str_eq(buf, "$thing/down/event/" PID "/" DN);
	ck_assert_int_gt(gw_tencent_build_topic(GW_TENCENT_UP, GW_TENCENT_TOPIC_ACTION, PID, DN,
						buf, sizeof(buf)),
			 0);
	ck_assert_str_eq(buf, "$thing/up/action/" PID "/" DN);
	ck_assert_int_eq(gw_tencent_build_topic(GW_TENCENT_UP, GW_TENCENT_TOPIC_ACTION, PID, DN,
						buf, 10),
			 -ENOBUFS);
	ck_assert_int_eq(gw_tencent_build_topic(GW_TENCENT_UP, GW_TENCENT_TOPIC_ACTION, PID, "+",
						buf, sizeof(buf)),
			 -EINVAL);
	ck_assert_int_eq(gw_tencent_build_topic(GW_TENCENT_UP, (enum gw_tencent_topic)3, PID, DN,
						buf, sizeof(buf)),
			 -EINVAL);

	ck_assert_int_eq(gw_tencent_classify_topic("$thing/down/property/" PID "/" DN, PID, DN,
						   &dir, &kind),
			 0);
	ck_assert_int_eq(dir, GW_TENCENT_DOWN);
	ck_assert_int_eq(kind, GW_TENCENT_TOPIC_PROPERTY);
	ck_assert_int_eq(gw_tencent_classify_topic("$thing/down/action/" PID "/" DN, PID, DN, &dir,
						   &kind),
			 0);
	ck_assert_int_eq(kind, GW_TENCENT_TOPIC_ACTION);
	ck_assert_int_eq(gw_tencent_classify_topic("$thing/up/event/" PID "/" DN, PID, DN, &dir,
						   &kind),
			 0);
	ck_assert_int_eq(dir, GW_TENCENT_UP);
	ck_assert_int_eq(kind, GW_TENCENT_TOPIC_EVENT);
	for (i = 0; i < sizeof(foreign) / sizeof(foreign[0]); i++)
		ck_assert_msg(gw_tencent_classify_topic(foreign[i], PID, DN, &dir, &kind) ==
				      -ENOENT,
			      "took %s", foreign[i]);
}
END_TEST

/* Builds with f, checks the exact text, frees it. */
#define EXPECT_JSON(call, text)                                   \
	do {                                                      \
		char *s_ = NULL;                                  \
		size_t n_ = 0;                                    \
		ck_assert_int_eq(call, 0);                        \
		ck_assert_str_eq(s_, text);                       \
		ck_assert_uint_eq(n_, strlen(text));              \
		free(s_);                                         \
	} while (0)
#define OUT &s_, &n_

START_TEST(test_build_property)
{
	json_t *params = json_pack("{s:i,s:f}", "MQ2", 30, "DHT11_T", 24.5);
	json_t *info = json_pack("{s:s,s:{s:s}}", "mac", "00:11:22:33:44:55", "device_label",
				 "site", "lab");
	json_t *big = json_object();
	char *s = NULL, *filler;
	size_t n = 0, overhead;

	EXPECT_JSON(gw_tencent_build_report("CS0SLTKSYA-1", params, -1, OUT),
		    "{\"method\":\"report\",\"clientToken\":\"CS0SLTKSYA-1\",\"params\":"
		    "{\"MQ2\":30,\"DHT11_T\":24.5}}");
	EXPECT_JSON(gw_tencent_build_report("CS0SLTKSYA-2", params, 1763761800123LL, OUT),
		    "{\"method\":\"report\",\"clientToken\":\"CS0SLTKSYA-2\",\"timestamp\":"
		    "1763761800123,\"params\":{\"MQ2\":30,\"DHT11_T\":24.5}}");
	EXPECT_JSON(gw_tencent_build_report_info("t", "1.2.0", NULL, OUT),
		    "{\"method\":\"report_info\",\"clientToken\":\"t\",\"params\":{\"fw_ver\":"
		    "\"1.2.0\"}}");
	EXPECT_JSON(gw_tencent_build_report_info("t", "1.2.0", info, OUT),
		    "{\"method\":\"report_info\",\"clientToken\":\"t\",\"params\":{\"mac\":"
		    "\"00:11:22:33:44:55\",\"device_label\":{\"site\":\"lab\"},\"fw_ver\":"
		    "\"1.2.0\"}}");
	EXPECT_JSON(gw_tencent_build_get_status("t-3", OUT),
		    "{\"method\":\"get_status\",\"clientToken\":\"t-3\",\"type\":\"report\","
		    "\"showmeta\":0}");
	EXPECT_JSON(gw_tencent_build_clear_control("cloud-token", OUT),
		    "{\"method\":\"clear_control\",\"clientToken\":\"cloud-token\"}");
	EXPECT_JSON(gw_tencent_build_control_reply("c1", 0, "ok", OUT),
		    "{\"method\":\"control_reply\",\"clientToken\":\"c1\",\"code\":0,\"status\":"
		    "\"ok\"}");
	EXPECT_JSON(gw_tencent_build_control_reply("c1", 406, NULL, OUT),
		    "{\"method\":\"control_reply\",\"clientToken\":\"c1\",\"code\":406}");

	/* Refusals. */
	ck_assert_int_eq(gw_tencent_build_report("", params, -1, &s, NULL), -EINVAL);
	ck_assert_int_eq(gw_tencent_build_report("a\nb", params, -1, &s, NULL), -EINVAL);
	ck_assert_int_eq(gw_tencent_build_report("t", json_object_get(params, "MQ2"), -1, &s,
						 NULL),
			 -EINVAL);
	ck_assert_int_eq(gw_tencent_build_report("t", NULL, -1, &s, NULL), -EINVAL);
	ck_assert_int_eq(gw_tencent_build_report_info("t", "", NULL, &s, NULL), -EINVAL);
	ck_assert_int_eq(gw_tencent_build_report_info("t", "1 2", NULL, &s, NULL), -EINVAL);
	json_object_set_new(info, "fw_ver", json_string("x"));
	ck_assert_int_eq(gw_tencent_build_report_info("t", "1.2.0", info, &s, NULL), -EINVAL);
	ck_assert_int_eq(gw_tencent_build_control_reply("c1", 0, "a\001", &s, NULL), -EINVAL);
	ck_assert_int_eq(gw_tencent_build_get_status(NULL, &s, NULL), -EINVAL);
	ck_assert_ptr_null(s);
	{
		json_t *empty = json_object();

		ck_assert_int_eq(gw_tencent_build_report("t", empty, -1, &s, NULL), -EINVAL);
		json_decref(empty);
	}

	/* docs/protocols/tencent.md §1.7: 16 KiB is the limit, counted on the whole payload: exactly the limit passes,
	 * one byte more does not. */
	json_object_set_new(big, "blob", json_string(""));
	ck_assert_int_eq(gw_tencent_build_report("t", big, -1, &s, &n), 0);
	free(s);
	s = NULL;
	overhead = n;
	filler = malloc(GW_TENCENT_PAYLOAD_MAX + 1);
	ck_assert_ptr_nonnull(filler);
	memset(filler, 'x', GW_TENCENT_PAYLOAD_MAX);
	filler[GW_TENCENT_PAYLOAD_MAX - overhead] = '\0';
	json_object_set_new(big, "blob", json_string(filler));
	ck_assert_int_eq(gw_tencent_build_report("t", big, -1, &s, &n), 0);
	ck_assert_uint_eq(n, GW_TENCENT_PAYLOAD_MAX);
	ck_assert_uint_eq(strlen(s), GW_TENCENT_PAYLOAD_MAX);
	free(s);
	s = NULL;
	filler[GW_TENCENT_PAYLOAD_MAX - overhead] = 'x';
	filler[GW_TENCENT_PAYLOAD_MAX - overhead + 1] = '\0';
	json_object_set_new(big, "blob", json_string(filler));
	ck_assert_int_eq(gw_tencent_build_report("t", big, -1, &s, NULL), -EMSGSIZE);
	ck_assert_ptr_null(s);
	/* the size it would have had, for the uplink's log line */
	n = 0;
	ck_assert_int_eq(gw_tencent_build_report("t", big, -1, &s, &n), -EMSGSIZE);
	ck_assert_ptr_null(s);
	ck_assert_uint_eq(n, GW_TENCENT_PAYLOAD_MAX + 1);
	free(filler);
	json_decref(big);
	json_decref(info);
	json_decref(params);
}
END_TEST

/* A data template's bool is 0/1 (docs/protocols/tencent.md §3.1, the 406 example's range
 * [0,1]): JSON true/false from a record or a node's reply go out as 1/0, at any depth. */
START_TEST(test_build_bools)
{
	json_t *params = json_pack("{s:b,s:b,s:i,s:{s:b}}", "power_switch", 1, "fault", 0, "n",
				   2, "st", "ok", 1);
	struct gw_tencent_event ev = { .event_id = "gas", .type = "alert", .timestamp_ms = -1,
				       .params = params };

	EXPECT_JSON(gw_tencent_build_report("t-1", params, -1, OUT),
		    "{\"method\":\"report\",\"clientToken\":\"t-1\",\"params\":"
		    "{\"power_switch\":1,\"fault\":0,\"n\":2,\"st\":{\"ok\":1}}}");
	EXPECT_JSON(gw_tencent_build_event_post("t-2", &ev, OUT),
		    "{\"method\":\"event_post\",\"clientToken\":\"t-2\",\"version\":\"1.0\","
		    "\"eventId\":\"gas\",\"type\":\"alert\",\"params\":{\"power_switch\":1,"
		    "\"fault\":0,\"n\":2,\"st\":{\"ok\":1}}}");
	EXPECT_JSON(gw_tencent_build_events_post("t-3", &ev, 1, OUT),
		    "{\"method\":\"events_post\",\"clientToken\":\"t-3\",\"events\":[{"
		    "\"eventId\":\"gas\",\"type\":\"alert\",\"params\":{\"power_switch\":1,"
		    "\"fault\":0,\"n\":2,\"st\":{\"ok\":1}}}]}");
	EXPECT_JSON(gw_tencent_build_action_reply("a1", 0, NULL, params, OUT),
		    "{\"method\":\"action_reply\",\"clientToken\":\"a1\",\"code\":0,"
		    "\"response\":{\"power_switch\":1,\"fault\":0,\"n\":2,\"st\":{\"ok\":1}}}");
	/* borrowed and untouched */
	ck_assert(json_is_true(json_object_get(params, "power_switch")));
	ck_assert(json_is_true(json_object_get(json_object_get(params, "st"), "ok")));
	ck_assert_int_eq(params->refcount, 1);
	json_decref(params);
}
END_TEST

START_TEST(test_build_event_action)
{
	json_t *p1 = json_pack("{s:f}", "Voltage", 2.8);
	json_t *p2 = json_pack("{s:i}", "level", 3);
	json_t *resp = json_pack("{s:i}", "Code", 0);
	struct gw_tencent_event ev[2] = {
		{ .event_id = "PowerAlarm", .type = "fatal", .timestamp_ms = 1700000000000LL,
		  .params = p1 },
		{ .event_id = "gas", .type = "alert", .timestamp_ms = -1, .params = p2 },
	};
	char *s = NULL;

	EXPECT_JSON(gw_tencent_build_event_post("e1", &ev[0], OUT),
		    "{\"method\":\"event_post\",\"clientToken\":\"e1\",\"version\":\"1.0\","
		    "\"eventId\":\"PowerAlarm\",\"type\":\"fatal\",\"timestamp\":1700000000000,"
		    "\"params\":{\"Voltage\":2.8}}");
	EXPECT_JSON(gw_tencent_build_events_post("e2", ev, 2, OUT),
		    "{\"method\":\"events_post\",\"clientToken\":\"e2\",\"events\":[{\"eventId\":"
		    "\"PowerAlarm\",\"type\":\"fatal\",\"timestamp\":1700000000000,\"params\":"
		    "{\"Voltage\":2.8}},{\"eventId\":\"gas\",\"type\":\"alert\",\"params\":"
		    "{\"level\":3}}]}");
	EXPECT_JSON(gw_tencent_build_action_reply("a1", 0, "done", resp, OUT),
		    "{\"method\":\"action_reply\",\"clientToken\":\"a1\",\"code\":0,\"status\":"
		    "\"done\",\"response\":{\"Code\":0}}");
	EXPECT_JSON(gw_tencent_build_action_reply("a1", 1, NULL, NULL, OUT),
		    "{\"method\":\"action_reply\",\"clientToken\":\"a1\",\"code\":1,\"response\":"
		    "{}}");

	ck_assert_int_eq(gw_tencent_build_events_post("e", ev, 0, &s, NULL), -EINVAL);
	ev[1].type = "warning";
	ck_assert_int_eq(gw_tencent_build_events_post("e", ev, 2, &s, NULL), -EINVAL);
	ck_assert_int_eq(gw_tencent_build_event_post("e", &ev[1], &s, NULL), -EINVAL);
	ev[1].type = "info";
	ev[1].event_id = "a b";
	ck_assert_int_eq(gw_tencent_build_event_post("e", &ev[1], &s, NULL), -EINVAL);
	ev[1].event_id = "";
	ck_assert_int_eq(gw_tencent_build_event_post("e", &ev[1], &s, NULL), -EINVAL);
	ev[1].event_id = "gas";
	ev[1].params = json_object_get(p2, "level");
	ck_assert_int_eq(gw_tencent_build_event_post("e", &ev[1], &s, NULL), -EINVAL);
	ck_assert_int_eq(gw_tencent_build_event_post("e", NULL, &s, NULL), -EINVAL);
	ck_assert_int_eq(gw_tencent_build_action_reply("a", 0, NULL, json_object_get(resp, "Code"),
						       &s, NULL),
			 -EINVAL);
	ck_assert_ptr_null(s);
	json_decref(p1);
	json_decref(p2);
	json_decref(resp);
}
END_TEST

static int reply(int (*f)(const char *, size_t, struct gw_tencent_reply *, char *),
		 const char *text, struct gw_tencent_reply *r, char *reason)
{
	reason[0] = '\0';
	return f(text, strlen(text), r, reason);
}

START_TEST(test_parse_replies)
{
	static const struct {
		int (*f)(const char *, size_t, struct gw_tencent_reply *, char *);
		const char *text;
	} bad[] = {
		{ gw_tencent_parse_report_reply, "" },
		{ gw_tencent_parse_report_reply, "{" },
		{ gw_tencent_parse_report_reply, "[]" },
		{ gw_tencent_parse_report_reply, "{\"clientToken\":\"t\",\"code\":0}" },
		{ gw_tencent_parse_report_reply, "{\"method\":\"control\",\"clientToken\":\"t\","
						 "\"code\":0}" },
		{ gw_tencent_parse_report_reply,
		  "{\"method\":1,\"clientToken\":\"t\",\"code\":0}" },
		{ gw_tencent_parse_report_reply, "{\"method\":\"report_reply\",\"code\":0}" },
		{ gw_tencent_parse_report_reply, "{\"method\":\"report_reply\",\"clientToken\":7,"
						 "\"code\":0}" },
		{ gw_tencent_parse_report_reply,
		  "{\"method\":\"report_reply\",\"clientToken\":\"\",\"code\":0}" },
		{ gw_tencent_parse_report_reply, "{\"method\":\"report_reply\",\"clientToken\":"
						 "\"a\\nb\",\"code\":0}" },
		{ gw_tencent_parse_report_reply, "{\"method\":\"report_reply\",\"clientToken\":"
						 "\"t\"}" },
		{ gw_tencent_parse_report_reply, "{\"method\":\"report_reply\",\"clientToken\":"
						 "\"t\",\"code\":\"0\"}" },
		{ gw_tencent_parse_report_reply, "{\"method\":\"report_reply\",\"clientToken\":"
						 "\"t\",\"code\":0.5}" },
		{ gw_tencent_parse_report_reply, "{\"method\":\"report_reply\",\"clientToken\":"
						 "\"t\",\"code\":4294967296}" },
		{ gw_tencent_parse_report_reply, "{\"method\":\"report_reply\",\"clientToken\":"
						 "\"t\",\"code\":0,\"status\":{}}" },
		{ gw_tencent_parse_report_reply, "{\"method\":\"report_reply\",\"clientToken\":"
						 "\"t\",\"code\":0,\"code\":1}" },
		{ gw_tencent_parse_event_reply, "{\"method\":\"report_reply\",\"clientToken\":"
						"\"t\",\"code\":0}" },
		{ gw_tencent_parse_get_status_reply, "{\"method\":\"get_status_reply\","
						     "\"clientToken\":\"t\",\"code\":0}" },
		{ gw_tencent_parse_get_status_reply,
		  "{\"method\":\"get_status_reply\",\"clientToken\":\"t\",\"code\":0,"
		  "\"data\":[]}" },
		{ gw_tencent_parse_get_status_reply, "{\"method\":\"get_status_reply\","
						     "\"clientToken\":\"t\",\"code\":0,\"data\":"
						     "{\"control\":1}}" },
	};
	struct gw_tencent_reply r;
	char reason[GW_TENCENT_REASON_MAX];
	char *big;
	size_t i;

	ck_assert_int_eq(reply(gw_tencent_parse_report_reply,
			       "{\"method\":\"report_reply\",\"clientToken\":\"CS0SLTKSYA-1\","
			       "\"code\":0,\"status\":\"success\"}",
			       &r, reason),
			 0);
	ck_assert_str_eq(r.client_token, "CS0SLTKSYA-1");
	ck_assert_int_eq(r.code, 0);
	ck_assert_str_eq(r.status, "success");
	ck_assert_ptr_null(r.control);
	/* docs/protocols/tencent.md §3.1 [DOC-406]: an error code parses; the caller looks at it. */
	ck_assert_int_eq(reply(gw_tencent_parse_report_reply,
			       "{\"method\":\"report_reply\",\"clientToken\":\"t\",\"code\":406,"
			       "\"status\":\"check report data err: MQ2 value 3 out of range:[0,1]"
			       "\"}",
			       &r, reason),
			 0);
	ck_assert_int_eq(r.code, 406);
	ck_assert_str_eq(r.status, "check report data err: MQ2 value 3 out of range:[0,1]");
	ck_assert_int_eq(reply(gw_tencent_parse_report_info_reply,
			       "{\"method\":\"report_info_reply\",\"clientToken\":\"t\","
			       "\"code\":0}",
			       &r, reason),
			 0);
	ck_assert_str_eq(r.status, "");
	ck_assert_int_eq(reply(gw_tencent_parse_event_reply,
			       "{\"method\":\"event_reply\",\"clientToken\":\"e1\",\"version\":"
			       "\"1.0\",\"code\":0,\"status\":\"\",\"data\":{}}",
			       &r, reason),
			 0);
	ck_assert_str_eq(r.client_token, "e1");

	/* get_status_reply: the pending control, or none. */
	ck_assert_int_eq(reply(gw_tencent_parse_get_status_reply,
			       "{\"method\":\"get_status_reply\",\"code\":0,\"clientToken\":\"g\","
			       "\"type\":\"report\",\"data\":{\"report\":{\"MQ2\":1},\"control\":"
			       "{\"power_switch\":1}}}",
			       &r, reason),
			 0);
	ck_assert_ptr_nonnull(r.control);
	ck_assert_int_eq(json_integer_value(json_object_get(r.control, "power_switch")), 1);
	json_decref(r.control);
	ck_assert_int_eq(reply(gw_tencent_parse_get_status_reply,
			       "{\"method\":\"get_status_reply\",\"code\":0,\"clientToken\":\"g\","
			       "\"data\":{\"report\":{},\"control\":{}}}",
			       &r, reason),
			 0);
	ck_assert_ptr_null(r.control);
	ck_assert_int_eq(reply(gw_tencent_parse_get_status_reply,
			       "{\"method\":\"get_status_reply\",\"code\":0,\"clientToken\":\"g\","
			       "\"data\":{}}",
			       &r, reason),
			 0);
	ck_assert_ptr_null(r.control);
	ck_assert_int_eq(reply(gw_tencent_parse_get_status_reply,
			       "{\"method\":\"get_status_reply\",\"code\":500,\"clientToken\":"
			       "\"g\",\"status\":\"internal\"}",
			       &r, reason),
			 0);
	ck_assert_int_eq(r.code, 500);

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(reply(bad[i].f, bad[i].text, &r, reason) == -EBADMSG, "accepted %s",
			      bad[i].text);
		ck_assert_msg(reason[0] != '\0', "no reason for %s", bad[i].text);
		ck_assert_str_eq(r.client_token, "");
		ck_assert_ptr_null(r.control);
	}

	big = malloc(GW_TENCENT_PAYLOAD_MAX + 2);
	ck_assert_ptr_nonnull(big);
	memset(big, ' ', GW_TENCENT_PAYLOAD_MAX + 1);
	big[GW_TENCENT_PAYLOAD_MAX + 1] = '\0';
	ck_assert_int_eq(reply(gw_tencent_parse_report_reply, big, &r, reason), -EMSGSIZE);
	ck_assert_int_eq(reply(gw_tencent_parse_get_status_reply, big, &r, reason), -EMSGSIZE);
	free(big);
}
END_TEST

static int request(int (*f)(const char *, size_t, struct gw_tencent_request *, char *),
		   const char *text, struct gw_tencent_request *r, char *reason)
{
	reason[0] = '\0';
	return f(text, strlen(text), r, reason);
}

START_TEST(test_parse_requests)
{
	struct gw_tencent_request r;
	enum gw_tencent_method m;
	char reason[GW_TENCENT_REASON_MAX];
	char *big;

	ck_assert_int_eq(request(gw_tencent_parse_control,
				 "{\"method\":\"control\",\"clientToken\":\"clientToken-Xx8\","
				 "\"params\":{\"power_switch\":1}}",
				 &r, reason),
			 0);
	ck_assert_str_eq(r.client_token, "clientToken-Xx8");
	ck_assert_str_eq(r.action_id, "");
	ck_assert_int_eq(json_integer_value(json_object_get(r.params, "power_switch")), 1);
	json_decref(r.params);

	ck_assert_int_eq(request(gw_tencent_parse_action,
				 "{\"method\":\"action\",\"clientToken\":\"20a4ccfd\",\"actionId\":"
				 "\"openDoor\",\"timestamp\":1700000000,\"params\":{\"userid\":"
				 "\"323343\"}}",
				 &r, reason),
			 0);
	ck_assert_str_eq(r.client_token, "20a4ccfd");
	ck_assert_str_eq(r.action_id, "openDoor");
	ck_assert_str_eq(json_string_value(json_object_get(r.params, "userid")), "323343");
	json_decref(r.params);

	/* Malformed but with a readable token: the caller can still answer it. */
	ck_assert_int_eq(request(gw_tencent_parse_control,
				 "{\"method\":\"control\",\"clientToken\":\"c9\",\"params\":[1]}",
				 &r, reason),
			 -EBADMSG);
	ck_assert_str_eq(r.client_token, "c9");
	ck_assert_ptr_null(r.params);
	ck_assert_int_eq(request(gw_tencent_parse_control,
				 "{\"method\":\"control\",\"clientToken\":\"c9\"}", &r, reason),
			 -EBADMSG);
	ck_assert_str_eq(r.client_token, "c9");
	ck_assert_int_eq(request(gw_tencent_parse_control,
				 "{\"method\":\"action\",\"clientToken\":\"c9\",\"params\":{}}", &r,
				 reason),
			 -EBADMSG);
	ck_assert_int_eq(request(gw_tencent_parse_action,
				 "{\"method\":\"action\",\"clientToken\":\"a9\",\"params\":{}}", &r,
				 reason),
			 -EBADMSG);
	ck_assert_str_eq(r.client_token, "a9");
	ck_assert_str_eq(r.action_id, "");
	ck_assert_int_eq(request(gw_tencent_parse_action,
				 "{\"method\":\"action\",\"clientToken\":\"a9\",\"actionId\":5,"
				 "\"params\":{}}",
				 &r, reason),
			 -EBADMSG);
	ck_assert_int_eq(request(gw_tencent_parse_action,
				 "{\"method\":\"action\",\"clientToken\":\"a9\",\"actionId\":"
				 "\"open door\",\"params\":{}}",
				 &r, reason),
			 -EBADMSG);
	ck_assert_str_eq(r.action_id, "");
	/* No token: nothing to answer. */
	ck_assert_int_eq(request(gw_tencent_parse_control,
				 "{\"method\":\"control\",\"params\":{}}", &r, reason),
			 -EBADMSG);
	ck_assert_str_eq(r.client_token, "");
	ck_assert_int_eq(request(gw_tencent_parse_control,
				 "{\"method\":\"control\",\"clientToken\":[],\"params\":{}}", &r,
				 reason),
			 -EBADMSG);
	ck_assert_int_eq(request(gw_tencent_parse_control, "{\"method\":\"control\",", &r, reason),
			 -EBADMSG);
	ck_assert_int_eq(request(gw_tencent_parse_control, "\"control\"", &r, reason), -EBADMSG);
	big = malloc(GW_TENCENT_PAYLOAD_MAX + 2);
	ck_assert_ptr_nonnull(big);
	memset(big, ' ', GW_TENCENT_PAYLOAD_MAX + 1);
	big[GW_TENCENT_PAYLOAD_MAX + 1] = '\0';
	ck_assert_int_eq(request(gw_tencent_parse_action, big, &r, reason), -EMSGSIZE);
	ck_assert_int_eq(gw_tencent_peek_method(big, strlen(big), &m, reason), -EMSGSIZE);
	free(big);

	/* Dispatch on the property topic. */
#define PEEK(text) gw_tencent_peek_method(text, strlen(text), &m, reason)
	ck_assert_int_eq(PEEK("{\"method\":\"control\",\"clientToken\":\"c\"}"), 0);
	ck_assert_int_eq(m, GW_TENCENT_METHOD_CONTROL);
	ck_assert_int_eq(PEEK("{\"method\":\"get_status_reply\"}"), 0);
	ck_assert_int_eq(m, GW_TENCENT_METHOD_GET_STATUS_REPLY);
	ck_assert_int_eq(PEEK("{\"method\":\"report_reply\"}"), 0);
	ck_assert_int_eq(m, GW_TENCENT_METHOD_REPORT_REPLY);
	ck_assert_int_eq(PEEK("{\"method\":\"unbind_device\"}"), -ENOENT);
	ck_assert_int_eq(PEEK("{\"method\":\"control\\u0000x\"}"), -EBADMSG);
	ck_assert_int_eq(PEEK("{\"method\":\"Control\"}"), -ENOENT);
	ck_assert_int_eq(PEEK("{\"method\":3}"), -EBADMSG);
	ck_assert_int_eq(PEEK("{}"), -EBADMSG);
	ck_assert_int_eq(PEEK("[\"control\"]"), -EBADMSG);
#undef PEEK
}
END_TEST

START_TEST(test_client_token)
{
	char buf[GW_TENCENT_TOKEN_MAX];

	ck_assert_int_eq(gw_tencent_format_client_token(PID, 42, buf, sizeof(buf)), 13);
	ck_assert_str_eq(buf, PID "-42");
	ck_assert_int_eq(gw_tencent_format_client_token(PID, UINT64_MAX, buf, sizeof(buf)), 31);
	ck_assert_int_eq(gw_tencent_format_client_token(PID, 42, buf, 13), -ENOBUFS);
	ck_assert_int_eq(gw_tencent_format_client_token("a/b", 42, buf, sizeof(buf)), -EINVAL);
}
END_TEST

#define CTL "sign tencent --product-id CS0SLTKSYA --device-name dev1 "
#define CTL_SEED_OUT                                                              \
	"host=" HOST "\nport=8883\nclient_id=" PID DN "\nusername=" SEED_USER \
	"\npassword=" SEED_PW_SHA256 "\n"

START_TEST(test_cli_seed)
{
	char out[4096], path[] = "/tmp/test-tencent-psk-XXXXXX", args[512];
	int fd;

	/* The seed, with the PSK on the command line, from a file and from standard input. */
	ck_assert_int_eq(ctltest_run(CTL "--psk " PSK " --connid ZR5GT --expiry 2623045740", NULL, out,
				 sizeof(out)),
			 0);
	ck_assert_str_eq(out, CTL_SEED_OUT);
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, PSK "\n", strlen(PSK) + 1), (int)strlen(PSK) + 1);
	close(fd);
	snprintf(args, sizeof(args), CTL "--psk-file %s --connid ZR5GT --expiry 2623045740", path);
	ck_assert_int_eq(ctltest_run(args, NULL, out, sizeof(out)), 0);
	ck_assert_str_eq(out, CTL_SEED_OUT);
	unlink(path);
	ck_assert_int_eq(ctltest_run(args, NULL, out, sizeof(out)), 1); /* the file is gone */
	ck_assert_str_eq(out, "");
	ck_assert_int_eq(ctltest_run(CTL "--psk-file - --connid ZR5GT --expiry 2623045740 "
				     "--sdkappid 12010126 --region china --sign-method hmacsha256",
				 PSK "\r\n", out, sizeof(out)),
			 0);
	ck_assert_str_eq(out, CTL_SEED_OUT);

	ck_assert_int_eq(ctltest_run(CTL "--psk " PSK " --connid ZR5GT --expiry 2623045740 "
				     "--sign-method hmacsha1",
				 NULL, out, sizeof(out)),
			 0);
	ck_assert_str_eq(out, "host=" HOST "\nport=8883\nclient_id=" PID DN
			      "\nusername=" SEED_USER "\npassword=" SEED_PW_SHA1 "\n");
	ck_assert_int_eq(ctltest_run(CTL "--psk " PSK " --connid ZR5GT --expiry 2623045740 "
				     "--sdkappid 21010406 --region europe --transport tcp",
				 NULL, out, sizeof(out)),
			 0);
	ck_assert_ptr_nonnull(strstr(out, "host=" PID ".europe.iothub.tencentdevices.com\n"
					  "port=1883\n"));
	ck_assert_ptr_nonnull(strstr(out, "username=" PID DN ";21010406;ZR5GT;2623045740\n"));
	/* The defaults: a fresh connid, the far-future expiry. */
	ck_assert_int_eq(ctltest_run(CTL "--psk-file -", PSK, out, sizeof(out)), 0);
	ck_assert_ptr_nonnull(strstr(out, "username=" PID DN ";12010126;"));
	ck_assert_ptr_nonnull(strstr(out, ";2147483647\npassword="));
	ck_assert_ptr_nonnull(strstr(out, ";hmacsha256\n"));
}
END_TEST

START_TEST(test_cli_usage)
{
	static const char *const bad[] = {
		"sign tencent",
		"sign tencent --device-name dev1 --psk " PSK,
		"sign tencent --product-id CS0SLTKSYA --psk " PSK,
		CTL,
		CTL "--psk " PSK " --psk-file -",
		CTL "--psk-file - --psk " PSK,
		CTL "--psk IyXmUW5sU/q1vnb5yzTkeQ",
		CTL "--psk " PSK " --connid ZR5G",
		CTL "--psk " PSK " --expiry soon",
		CTL "--psk " PSK " --expiry -1",
		CTL "--psk " PSK " --expiry 0",
		CTL "--psk " PSK " --sdkappid 4294967296",
		CTL "--psk " PSK " --sdkappid x",
		CTL "--psk " PSK " --sign-method hmacmd5",
		CTL "--psk " PSK " --region mars",
		CTL "--psk " PSK " --transport udp",
		CTL "--psk " PSK " --bogus",
		CTL "--psk " PSK " extra",
		CTL "--psk",
		"sign tencent --product-id CS0S.LTKSYA --device-name dev1 --psk " PSK,
		"sign tencent --product-id CS0SLTKSYA --device-name 'dev 1' --psk " PSK,
	};
	char out[4096];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(ctltest_run(bad[i], NULL, out, sizeof(out)) == 2, "accepted: %s",
			      bad[i]);
		ck_assert_str_eq(out, "");
	}
	/* An unreadable or malformed secret file is a runtime error. */
	ck_assert_int_eq(ctltest_run(CTL "--psk-file -", "\n", out, sizeof(out)), 1);
	ck_assert_int_eq(ctltest_run(CTL "--psk-file -", "a\nb\n", out, sizeof(out)), 1);
	ck_assert_int_eq(ctltest_run(CTL "--psk-file /nonexistent/psk", NULL, out, sizeof(out)), 1);
	ck_assert_int_eq(ctltest_run("sign tencent --help", NULL, out, sizeof(out)), 0);
	ck_assert_ptr_nonnull(strstr(out, "--psk-file"));
	ck_assert_int_eq(ctltest_run("--help", NULL, out, sizeof(out)), 0);
	ck_assert_ptr_nonnull(strstr(out, "sign tencent"));
}
END_TEST

/* docs/protocols/tencent.md §1.4 TLS-PSK: the key is the decoded PSK, as hex for libmosquitto */
START_TEST(test_psk_hex)
{
	char reason[GW_TENCENT_REASON_MAX] = "";
	char hex[GW_TENCENT_PSK_HEX_MAX];
	char small[32];

	/* the seed of docs/protocols/tencent.md §1.2: IyXmUW5sU/q1vnb5yzTkeQ== is 2325e651 6e6c53fa b5be76f9 cb34e479 */
	ck_assert_int_eq(gw_tencent_psk_hex("IyXmUW5sU/q1vnb5yzTkeQ==", hex, sizeof(hex), reason),
			 0);
	ck_assert_str_eq(hex, "2325e6516e6c53fab5be76f9cb34e479");
	ck_assert_int_eq(gw_tencent_psk_hex("AAECAw==", hex, sizeof(hex), reason), 0);
	ck_assert_str_eq(hex, "00010203");
	ck_assert_int_eq(gw_tencent_psk_hex("not base64!", hex, sizeof(hex), reason), -EINVAL);
	ck_assert_ptr_nonnull(strstr(reason, "base64"));
	ck_assert_int_eq(gw_tencent_psk_hex("IyXmUW5sU/q1vnb5yzTkeQ==", small, sizeof(small),
					    reason), -ENOBUFS);
}
END_TEST

/* expiry = auto: now + 600 only with a clock the system says is synchronised */
START_TEST(test_auto_expiry)
{
	struct gw_tencent_clock synced = { .adjtimex_state = TIME_OK, .adjtimex_status = 0,
					   .now_s = 1700000000 };
	struct gw_tencent_clock unsynced = { .adjtimex_state = TIME_ERROR,
					     .adjtimex_status = STA_UNSYNC, .now_s = 1700000000 };
	struct gw_tencent_clock c;
	bool fell_back = true;

	ck_assert(gw_tencent_clock_trusted(&synced));
	ck_assert(!gw_tencent_clock_trusted(&unsynced));
	/* TIME_OK but STA_UNSYNC: a clock nobody disciplines */
	c = synced;
	c.adjtimex_status = STA_UNSYNC;
	ck_assert(!gw_tencent_clock_trusted(&c));
	/* a leap second pending is not TIME_OK: not trusted by the kernel's word */
	c = synced;
	c.adjtimex_state = TIME_INS;
	ck_assert(!gw_tencent_clock_trusted(&c));
	/* adjtimex failed, but timesyncd says it synchronised */
	c = unsynced;
	c.adjtimex_state = -1;
	ck_assert(!gw_tencent_clock_trusted(&c));
	c.timesyncd_synchronized = true;
	ck_assert(gw_tencent_clock_trusted(&c));

	/* not auto: the configured value (0 = the builder's default), whatever the clock */
	ck_assert_uint_eq(gw_tencent_login_expiry(0, false, &unsynced, &fell_back), 0);
	ck_assert(!fell_back);
	ck_assert_uint_eq(gw_tencent_login_expiry(4102444800u, false, &synced, &fell_back),
			  4102444800u);
	/* auto */
	ck_assert_uint_eq(gw_tencent_login_expiry(0, true, &synced, &fell_back),
			  1700000000u + GW_TENCENT_AUTO_EXPIRY_S);
	ck_assert(!fell_back);
	ck_assert_uint_eq(gw_tencent_login_expiry(0, true, &unsynced, &fell_back), 0);
	ck_assert(fell_back);
	/* ... and the builder turns 0 into the far-future default */
	{
		struct gw_tencent_login l = { .product_id = "CS0SLTKSYA", .device_name = "dev1",
					      .psk = "IyXmUW5sU/q1vnb5yzTkeQ==", .connid = "ZR5GT",
					      .expiry = 0 };
		struct gw_tencent_connect conn;
		char reason[GW_TENCENT_REASON_MAX] = "";

		ck_assert_int_eq(gw_tencent_build_connect(&l, &conn, reason), 0);
		ck_assert_str_eq(conn.username, "CS0SLTKSYAdev1;12010126;ZR5GT;2147483647");
		l.expiry = gw_tencent_login_expiry(0, true, &synced, &fell_back);
		ck_assert_int_eq(gw_tencent_build_connect(&l, &conn, reason), 0);
		ck_assert_str_eq(conn.username, "CS0SLTKSYAdev1;12010126;ZR5GT;1700000600");
	}
}
END_TEST

static Suite *tencent_suite(bool cli)
{
	Suite *s = suite_create("tencent");
	TCase *tc;

	tc = tcase_create("sign");
	tcase_add_test(tc, test_connect_seed);
	tcase_add_test(tc, test_connect_variants);
	tcase_add_test(tc, test_connect_invalid);
	tcase_add_test(tc, test_checks);
	tcase_add_test(tc, test_psk_hex);
	tcase_add_test(tc, test_auto_expiry);
	suite_add_tcase(s, tc);

	tc = tcase_create("register");
	tcase_add_test(tc, test_dynreg_v2);
	tcase_add_test(tc, test_dynreg_sign);
	tcase_add_test(tc, test_dynreg_legacy);
	tcase_add_test(tc, test_dynreg_invalid);
	tcase_add_test(tc, test_decrypt_vectors);
	tcase_add_test(tc, test_decrypt_malformed);
	tcase_add_test(tc, test_reply_ok);
	tcase_add_test(tc, test_reply_refused);
	tcase_add_test(tc, test_reply_malformed);
	tcase_add_test(tc, test_reply_oversize);
	suite_add_tcase(s, tc);

	tc = tcase_create("template");
	tcase_add_test(tc, test_topics);
	tcase_add_test(tc, test_build_property);
	tcase_add_test(tc, test_build_bools);
	tcase_add_test(tc, test_build_event_action);
	tcase_add_test(tc, test_parse_replies);
	tcase_add_test(tc, test_parse_requests);
	tcase_add_test(tc, test_client_token);
	suite_add_tcase(s, tc);

	if (cli) {
		tc = tcase_create("cli");
		tcase_set_timeout(tc, 60);
		tcase_add_test(tc, test_cli_seed);
		tcase_add_test(tc, test_cli_usage);
		suite_add_tcase(s, tc);
	}
	return s;
}

int main(void)
{
	return ctltest_main("test-tencent", tencent_suite);
}
