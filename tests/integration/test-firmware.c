/* SPDX-License-Identifier: MIT */
/*
 * Firmware in the loop: the STM32F205 firmware of node/examples/stm32f2, built with
 * arm-none-eabi-gcc (node/meson.build), boots in qemu-system-arm (-M netduino2) with its
 * USART1 on a pty, and the real sensorgwd reads that pty.
 *
 * - Binary framing, the aliyun uplink and the Aliyun test cloud: the firmware's hello makes
 *   the node known, its telemetry reaches the cloud as property posts, and commands from the
 *   cloud (property set report_interval_ms and led, service ping, a property it does not
 *   have) reach the firmware as command frames; its replies come back up with its codes.
 * - Text framing, the mqtt uplink and mosquitto: the firmware's MQ2=...,DHT11_T=... lines
 *   arrive as messages with those values.
 *
 * QEMU starts paused (-S) and is let go through its monitor once the daemon has the pty open:
 * QEMU's USART sends into a pty nobody reads, and the hello would be lost. Where
 * qemu-system-arm or the firmware images are missing the test says which and skips (exit
 * 77); with CI set it fails instead (tools/install-deps.sh installs both).
 */

#include <check.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cloud.h"
#include "fixture.h"

#define QEMU "/usr/bin/qemu-system-arm"
#define DN "dev-n1" /* device_name = dev-{port} */

/* Boots image paused, its USART1 on a pty linked as fx_path(link); returns when the link is
 * there. */
static void qemu_start(const char *image, const char *link)
{
	char mon[4096], pts[64] = "";
	const char *const argv[] = { QEMU, "-M", "netduino2", "-display", "none", "-S",
		"-monitor", mon, "-serial", "pty", "-kernel", image, NULL };
	int64_t end = fx_mono_ms() + 10000LL * fx_timeout_scale();

	snprintf(mon, sizeof(mon), "unix:%s,server=on,wait=off", fx_path("qemu.mon"));
	fx_spawn(argv, "qemu.log");
	while (!pts[0] && fx_mono_ms() < end) {
		char *log = fx_read_file(fx_path("qemu.log"));
		const char *at = log ? strstr(log, "redirected to ") : NULL;

		if (at)
			sscanf(at, "redirected to %63s", pts);
		free(log);
		if (!pts[0])
			fx_sleep_ms(50);
	}
	ck_assert_msg(pts[0], "qemu-system-arm never said which pty it uses (qemu.log)");
	ck_assert_msg(symlink(pts, fx_path(link)) == 0, "symlink: %s", strerror(errno));
}

/* Lets the paused CPU run (the monitor's "cont"). */
static void qemu_cont(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", fx_path("qemu.mon"));
	ck_assert_msg(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "monitor: %s",
		      strerror(errno));
	ck_assert_int_eq(write(fd, "cont\n", 5), 5);
	/* the monitor runs the command before it sees the socket close */
	fx_sleep_ms(200);
	close(fd);
}

/* The firmware image named by the environment; the reason it cannot run in *why. */
static const char *firmware(const char *env, const char **why)
{
	const char *p = getenv(env);

	*why = NULL;
	if (access(QEMU, X_OK) != 0)
		*why = QEMU " is missing (apt-get install qemu-system-arm)";
	else if (!p || !*p || access(p, R_OK) != 0)
		*why = "the firmware was not built: arm-none-eabi-gcc is missing "
		       "(apt-get install gcc-arm-none-eabi)";
	return p;
}

static bool wait_reply_field(json_t *reply, const char *key, json_int_t value)
{
	json_t *v = json_object_get(json_object_get(reply, "data"), key);

	return v && (json_is_boolean(v) ? json_is_true(v) == (value != 0) :
					  json_integer_value(v) == value);
}

START_TEST(test_binary_commands)
{
	const char *const online[] = { "device " DN ": online", NULL };
	const char *why, *image = firmware("GW_FW_BINARY", &why);
	json_t *r, *reply;
	json_int_t mark;
	char *conf;

	ck_assert_msg(!why, "%s", why);
	cl_start(fx_strf("{\"deviceName\": \"" DN "\", \"deviceSecret\": \"%s\"}", CL_DS));
	/* the firmware's sensor names are not in the test product's schema */
	r = cl_ctl("set_product", json_pack("{s:s,s:n}", "productKey", CL_PK, "schema"));
	ck_assert(json_is_true(json_object_get(r, "ok")));
	json_decref(r);
	cl_provision(DN, CL_DS);
	qemu_start(image, "tty-n1");
	conf = cl_binary_config(cl_aliyun_config("auth = device-secret\n"), NULL);
	fx_daemon_start(conf);
	free(conf);
	{
		const char *const opened[] = { "opened /dev/pts/", NULL };

		ck_assert(fx_daemon_wait_log_line(opened, FX_WAIT_MS));
	}
	qemu_cont();

	/* the hello names the node, its telemetry goes up as properties */
	ck_assert_msg(fx_daemon_wait_log_line(online, 30000), "the firmware's node never came online");
	ck_assert(fx_daemon_log_contains("firmware 'f2-qemu-1.0'"));
	mark = cl_seq();
	ck_assert_msg(cl_wait_since(json_pack("{s:s,s:s,s:i}", "ev", "alink_post", "deviceName", DN,
					      "code", 200),
				    mark, 20),
		      "no property post from the firmware");

	/* commands down to the firmware, its answers back up */
	reply = cl_downlink("property_set", json_pack("{s:s,s:{s:i}}", "deviceName", DN, "params",
						   "report_interval_ms", 300), 10);
	ck_assert_int_eq(cl_reply_code(reply), 200);
	ck_assert(wait_reply_field(reply, "report_interval_ms", 300));
	json_decref(reply);
	reply = cl_downlink("property_set", json_pack("{s:s,s:{s:b}}", "deviceName", DN, "params",
						   "led", 1), 10);
	ck_assert_int_eq(cl_reply_code(reply), 200);
	ck_assert(wait_reply_field(reply, "led", 1));
	json_decref(reply);
	reply = cl_downlink("property_set", json_pack("{s:s,s:{s:i}}", "deviceName", DN, "params",
						   "no_such_property", 1), 10);
	ck_assert_int_eq(cl_reply_code(reply), 422);
	json_decref(reply);
	reply = cl_downlink("service_call", json_pack("{s:s,s:s,s:{}}", "deviceName", DN, "service",
						   "ping", "params"), 10);
	ck_assert_int_eq(cl_reply_code(reply), 200);
	ck_assert(json_integer_value(json_object_get(json_object_get(reply, "data"),
						     "uptime_ms")) > 0);
	json_decref(reply);

	/* nothing the firmware sent was refused on the way */
	r = fx_status_json();
	ck_assert_int_eq(json_integer_value(json_object_get(
				 json_array_get(json_object_get(r, "ports"), 0), "bad_frames")),
			 0);
	json_decref(r);
}
END_TEST

START_TEST(test_text_lines)
{
	const char *why, *image = firmware("GW_FW_TEXT", &why);
	size_t n;
	struct fx_msg *m;
	char *conf;

	ck_assert_msg(!why, "%s", why);
	fx_broker_start();
	fx_subscriber_start("sensorgw/#");
	qemu_start(image, "tty-txt");
	conf = fx_config(fx_path("broker/ca.crt"), NULL);
	fx_daemon_start(conf);
	free(conf);
	{
		const char *const opened[] = { "opened /dev/pts/", NULL };

		ck_assert(fx_daemon_wait_log_line(opened, FX_WAIT_MS));
	}
	ck_assert(fx_daemon_wait_connected(FX_WAIT_MS));
	qemu_cont();
	/* one line a second */
	ck_assert_msg(fx_subscriber_wait_count(3, 20000), "fewer than 3 lines from the firmware");
	m = fx_subscriber_messages(&n);
	for (size_t i = 0; i < n; i++) {
		ck_assert_msg(strstr(m[i].payload, "\"MQ2\":") && strstr(m[i].payload, "\"DHT11_T\":") &&
				      strstr(m[i].payload, "\"DHT11_H\":"),
			      "message %zu: %s", i, m[i].payload);
	}
	fx_msgs_free(m, n);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("firmware");
	TCase *tc = tcase_create("firmware");
	const char *why;

	(void)firmware("GW_FW_BINARY", &why);
	if (!why)
		(void)firmware("GW_FW_TEXT", &why);
	if (why && !getenv("CI")) {
		printf("firmware in the loop skipped: %s\n", why);
		return 77;
	}
	tcase_add_checked_fixture(tc, fx_setup, fx_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_binary_commands);
	tcase_add_test(tc, test_text_lines);
	suite_add_tcase(s, tc);
	return cl_run(s);
}
