/* SPDX-License-Identifier: MIT */
/*
 * Tencent dynamic-registration replies (docs/protocols/tencent.md §2). A fuzzer can hardly forge a
 * payload that decrypts, so the first byte also selects a mode in which the rest is the
 * plaintext: it is encrypted with the test ProductSecret and wrapped in a reply, which takes
 * it through the decryption into the credential parser behind it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "gw/tencent.h"

/* docs/protocols/tencent.md §2.1 vector, so its reply is a seed that decrypts */
#define SECRET "hzvf5LF9S0isvBhDSauWMaIk"
#define WRAP_MAX 8192

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char enc[WRAP_MAX], reply[WRAP_MAX + 256], plain[WRAP_MAX];
	struct gw_tencent_credentials c;
	char reason[GW_TENCENT_REASON_MAX];
	const char *buf;
	size_t len, plain_len;
	int n;

	if (size < 1)
		return 0;
	buf = (const char *)data + 1;
	len = size - 1;
	switch (data[0] % 5) {
	case 0:
		(void)gw_tencent_parse_dynreg_reply(GW_TENCENT_DYNREG_V2, SECRET, buf, len, &c, reason);
		break;
	case 1:
		(void)gw_tencent_parse_dynreg_reply(GW_TENCENT_DYNREG_LEGACY, SECRET, buf, len, &c,
						    reason);
		break;
	case 2:
		(void)gw_tencent_dynreg_decrypt(SECRET, buf, len, -1, plain, sizeof(plain),
						&plain_len, reason);
		break;
	case 3:
	case 4:
		if (len > WRAP_MAX / 2)
			return 0;
		n = gw_tencent_dynreg_encrypt(SECRET, buf, len, enc, sizeof(enc));
		if (n < 0)
			return 0;
		if (data[0] % 5 == 3)
			n = snprintf(reply, sizeof(reply), "{\"Response\":{\"Len\":%zu,\"Payload\":"
				     "\"%s\",\"RequestId\":\"r1\"}}", len, enc);
		else
			n = snprintf(reply, sizeof(reply), "{\"code\":0,\"message\":\"\","
				     "\"payload\":\"%s\"}", enc);
		(void)gw_tencent_parse_dynreg_reply(data[0] % 5 == 3 ? GW_TENCENT_DYNREG_V2 :
						    GW_TENCENT_DYNREG_LEGACY, SECRET, reply,
						    (size_t)n, &c, reason);
		break;
	}
	gw_tencent_credentials_wipe(&c);
	return 0;
}
