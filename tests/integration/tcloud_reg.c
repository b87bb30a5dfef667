/* SPDX-License-Identifier: MIT */
/* The loopback Tencent test cloud for the registration tests; see tcloud_reg.h. */

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tcloud_reg.h"

int tc_http_port;

void tc_start(const char *psk_devices, const char *cert_devices)
{
	char products[4096];
	json_t *ports;

	snprintf(products, sizeof(products),
		 "{\"products\": ["
		 "{\"productId\": \"" TC_PID "\", \"productSecret\": \"%s\", "
		 "\"dynamicRegistration\": true, \"registerType\": 1, \"authType\": \"psk\", "
		 "\"devices\": [%s]}, "
		 "{\"productId\": \"" TC_CERT_PID "\", \"productSecret\": \"%s\", "
		 "\"dynamicRegistration\": true, \"registerType\": 1, \"authType\": \"cert\", "
		 "\"devices\": [%s]}]}",
		 TC_PS, psk_devices, TC_CERT_PS, cert_devices);
	ports = cl_launch("tencent_cloud.py", products);
	tc_http_port = (int)json_integer_value(json_object_get(ports, "http"));
	ck_assert_int_gt(tc_http_port, 0);
	json_decref(ports);
}

json_t *tc_dev_args(const char *pid, const char *dn)
{
	return json_pack("{s:s,s:s}", "productId", pid, "deviceName", dn);
}

json_t *tc_device(const char *pid, const char *dn, bool with_cert)
{
	json_t *args = tc_dev_args(pid, dn);
	json_t *r;

	if (with_cert)
		json_object_set_new(args, "withCert", json_true());
	r = cl_ctl("device", args);
	ck_assert_msg(json_is_true(json_object_get(r, "ok")), "device %s/%s unknown", pid, dn);
	return r;
}

char *tc_device_psk(const char *dn)
{
	json_t *r = tc_device(TC_PID, dn, false);
	const char *psk = json_string_value(json_object_get(r, "psk"));
	char *copy = psk ? strdup(psk) : NULL;

	json_decref(r);
	return copy;
}

void tc_https_fail(const char *mode, int count, json_t *opts)
{
	json_t *args = opts ? opts : json_object();
	json_t *r;

	json_object_set_new(args, "mode", json_string(mode));
	if (count > 0)
		json_object_set_new(args, "count", json_integer(count));
	r = cl_ctl("https_fail", args);
	ck_assert_msg(json_is_true(json_object_get(r, "ok")), "https_fail %s refused", mode);
	json_decref(r);
}

void tc_set_product(const char *pid, json_t *fields)
{
	json_t *r;

	json_object_set_new(fields, "productId", json_string(pid));
	r = cl_ctl("set_product", fields);
	ck_assert_msg(json_is_true(json_object_get(r, "ok")), "set_product %s refused", pid);
	json_decref(r);
}

const char *tc_register_url(bool legacy)
{
	static char url[2][128];

	snprintf(url[legacy], sizeof(url[legacy]), "https://localhost:%d%s", cl_https_port,
		 legacy ? "/register/dev" : "/device/register");
	return url[legacy];
}
