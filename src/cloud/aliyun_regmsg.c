/* SPDX-License-Identifier: MIT */
/*
 * Aliyun dynamic registration, the message formats: the HTTPS pre-registration request (form
 * body signed with the ProductSecret) and its JSON reply, and the credentials the platform
 * pushes on /ext/register and /ext/regnwl after an MQTT registration login. The contract is in
 * include/gw/aliyun_regmsg.h; the I/O around it is aliyun_register.c. Protocol rules from
 * docs/protocols/aliyun.md with section numbers cited as §N.
 *
 * Pure: no I/O, nothing logs. Every credential read out of a JSON tree is wiped in the tree,
 * and a result that does not parse is wiped before it is returned.
 */

#include <errno.h>
#include <string.h>

#include "aliyun-private.h"
#include "proto.h"

/* application/x-www-form-urlencoded: unreserved characters stay, the rest becomes %XX. */
static int append_form_value(char *buf, size_t size, size_t *pos, const char *v)
{
	unsigned char c;

	for (; *v; v++) {
		c = (unsigned char)*v;
		if (gw_is_alnum((char)c) || strchr("-._~", c)) {
			if (*pos + 1 >= size)
				return -ENOBUFS;
			buf[(*pos)++] = (char)c;
		} else {
			if (*pos + 3 >= size)
				return -ENOBUFS;
			buf[(*pos)++] = '%';
			gw_proto_hex(&c, 1, true, buf + *pos);
			*pos += 2;
		}
	}
	buf[*pos] = '\0';
	return 0;
}

static int append_form_field(char *buf, size_t size, size_t *pos, const char *name,
			     const char *value)
{
	int r;

	r = gw_bprintf(buf + *pos, size - *pos, "%s%s=", *pos ? "&" : "", name);
	if (r < 0)
		return r;
	*pos += (size_t)r;
	return append_form_value(buf, size, pos, value);
}

int gw_aliyun_build_https_register(const char *region, const char *product_key,
				   const char *device_name, const char *product_secret,
				   const char *random, enum gw_aliyun_sign_method method,
				   struct gw_aliyun_https_request *ret)
{
	char sign[EVP_MAX_MD_SIZE * 2 + 1];
	size_t pos = 0;
	int r;

	memset(ret, 0, sizeof(*ret));
	if (!region)
		region = GW_ALIYUN_DEFAULT_REGION;
	if (!gw_aliyun_valid_label(region) || !gw_aliyun_valid_label(product_key) ||
	    !gw_aliyun_valid_device_name(device_name) || !gw_aliyun_valid_random(random) ||
	    !gw_proto_printable(product_secret, 1, GW_ALIYUN_SECRET_MAX - 1, false, NULL) ||
	    !gw_aliyun_name_sign_method(method))
		return -EINVAL;

	r = gw_bprintf(ret->host, sizeof(ret->host), "iot-auth.%s.aliyuncs.com", region);
	if (r < 0)
		goto out;
	ret->port = GW_ALIYUN_PORT_HTTPS;
	r = gw_bprintf(ret->url, sizeof(ret->url), "https://%s%s", ret->host,
		    GW_ALIYUN_REGISTER_PATH);
	if (r < 0)
		goto out;
	/* Upper-case hex, as the official C SDKs send it (docs/protocols/aliyun.md §2, and its §8
	 * form body). */
	r = gw_aliyun_sign_registration(method, product_key, device_name, product_secret, random,
					true, sign, sizeof(sign));
	if (r < 0)
		goto out;
	r = append_form_field(ret->body, sizeof(ret->body), &pos, "productKey", product_key);
	if (r >= 0)
		r = append_form_field(ret->body, sizeof(ret->body), &pos, "deviceName",
				      device_name);
	if (r >= 0)
		r = append_form_field(ret->body, sizeof(ret->body), &pos, "random", random);
	if (r >= 0)
		r = append_form_field(ret->body, sizeof(ret->body), &pos, "sign", sign);
	if (r >= 0)
		r = append_form_field(ret->body, sizeof(ret->body), &pos, "signMethod",
				      gw_aliyun_name_sign_method(method));
out:
	if (r < 0)
		memset(ret, 0, sizeof(*ret));
	return r < 0 ? r : 0;
}

/* A required string member holding a credential: printable ASCII without space. */
static int get_credential(json_t *obj, const char *where, const char *name, const char *forbid,
			  char *dst, size_t size, char *reason)
{
	const char *s;
	size_t n;

	s = gw_json_get_string(obj, where, name, &n, reason, GW_ALIYUN_REASON_MAX);
	if (!s)
		return -EBADMSG;
	if (!gw_proto_printable_n(s, n, 1, size - 1, false, forbid)) {
		set_reason(reason, "\"%s%s\" is empty, too long or holds invalid characters",
			   where, name);
		return -EBADMSG;
	}
	memcpy(dst, s, n);
	dst[n] = '\0';
	return 0;
}

int gw_aliyun_parse_https_register(const char *buf, size_t len, struct gw_aliyun_credentials *ret,
				   char *reason)
{
	json_t *root = NULL, *data;
	int r;

	explicit_bzero(ret, sizeof(*ret));
	r = gw_json_load_object(buf, len, GW_ALIYUN_HTTPS_REPLY_MAX, &root, reason,
				GW_ALIYUN_REASON_MAX);
	if (r < 0)
		return r;
	r = gw_aliyun_get_code(root, &ret->code, reason);
	if (r < 0)
		goto out;
	r = gw_json_get_text(root, "", "message", ret->message, sizeof(ret->message), reason,
			     GW_ALIYUN_REASON_MAX);
	if (r < 0)
		goto out;
	if (ret->code != GW_ALIYUN_CODE_OK) {
		set_reason(reason, "registration refused: code %d: %s", ret->code, ret->message);
		r = -EREMOTEIO;
		goto out;
	}
	data = gw_json_get_object(root, "", "data", reason, GW_ALIYUN_REASON_MAX);
	if (!data) {
		r = -EBADMSG;
		goto out;
	}
	r = get_credential(data, "data.", "deviceSecret", NULL, ret->device_secret,
			   sizeof(ret->device_secret), reason);
out:
	gw_json_wipe_member(json_object_get(root, "data"), "deviceSecret");
	json_decref(root);
	if (r < 0 && r != -EREMOTEIO) {
		int code = ret->code;

		explicit_bzero(ret, sizeof(*ret));
		ret->code = code;
	}
	return r;
}

/* A push may name its device; one for another device must not be taken for ours. */
static int check_identity(json_t *root, const char *name, const char *expected, char *reason)
{
	json_t *v = json_object_get(root, name);

	if (!v)
		return 0;
	if (!json_is_string(v)) {
		set_reason(reason, "\"%s\" is not a string", name);
		return -EBADMSG;
	}
	if (strcmp(json_string_value(v), expected) != 0 ||
	    strlen(expected) != json_string_length(v)) {
		set_reason(reason, "\"%s\" names another device", name);
		return -EBADMSG;
	}
	return 0;
}

int gw_aliyun_parse_register_push(enum gw_aliyun_auth auth, const char *product_key,
				  const char *device_name, const char *buf, size_t len,
				  struct gw_aliyun_credentials *ret, char *reason)
{
	json_t *root = NULL;
	int r;

	explicit_bzero(ret, sizeof(*ret));
	if ((auth != GW_ALIYUN_AUTH_REGISTER && auth != GW_ALIYUN_AUTH_REGNWL) || !product_key ||
	    !device_name) {
		set_reason(reason, "only register and regnwl have a push");
		return -EINVAL;
	}
	r = gw_json_load_object(buf, len, GW_ALIYUN_DOWNLINK_MAX, &root, reason,
				GW_ALIYUN_REASON_MAX);
	if (r < 0)
		return r;
	r = check_identity(root, "productKey", product_key, reason);
	if (r < 0)
		goto out;
	r = check_identity(root, "deviceName", device_name, reason);
	if (r < 0)
		goto out;
	if (auth == GW_ALIYUN_AUTH_REGISTER) {
		r = get_credential(root, "", "deviceSecret", NULL, ret->device_secret,
				   sizeof(ret->device_secret), reason);
	} else {
		r = get_credential(root, "", "clientId", "|", ret->client_id,
				   sizeof(ret->client_id), reason);
		if (r >= 0)
			r = get_credential(root, "", "deviceToken", NULL, ret->device_token,
					   sizeof(ret->device_token), reason);
	}
	if (r >= 0)
		ret->code = GW_ALIYUN_CODE_OK;
out:
	gw_json_wipe_member(root, "deviceSecret");
	gw_json_wipe_member(root, "deviceToken");
	json_decref(root);
	if (r < 0)
		explicit_bzero(ret, sizeof(*ret));
	return r;
}
