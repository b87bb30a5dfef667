/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Integration test fixtures: everything a test needs to drive the real sensorgwd against real
 * parts. A temporary directory, a CA and server certificate made with the openssl CLI, a
 * mosquitto broker with TLS and a password file, ptys that can be "replugged", the daemon
 * itself, and an independent MQTT subscriber that records every message.
 *
 * Use with Check's fork mode: fx_setup()/fx_teardown() as a checked fixture. Every process is
 * started as a direct child of the test process and reaped with waitpid(). A watchdog process
 * removes the temporary directory and kills the children even when a failed assertion ends
 * the test process before fx_teardown() can run.
 *
 * Fixture functions fail the running test (ck_abort_msg) when a fixture cannot be set up: a
 * missing tool or a broker that does not start is a test failure, never a skip.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define FX_WAIT_MS 10000 /* default deadline for fixture waits */

/* ---- environment ---- */

/* Creates the temporary directory and the watchdog. Checked-fixture setup. */
void fx_setup(void);
/* Stops the daemon, the simulators, the subscriber and the broker, closes ptys and removes
 * the directory (kept when GW_KEEP_TMP is set). Checked-fixture teardown. */
void fx_teardown(void);

const char *fx_dir(void);
/* "<dir>/<name>" in a static rotating buffer (valid for the next 8 calls). */
const char *fx_path(const char *name);
/* A required environment variable (GW_SENSORGWD, GW_SIM, GW_SOURCE_ROOT). */
const char *fx_env(const char *name);
/*
 * GW_TIMEOUT_SCALE (an integer 1..100, default 1): every deadline for a wait on the daemon is
 * multiplied by it, for a daemon run under GW_DAEMON_WRAPPER (e.g. valgrind, see
 * tools/valgrind.sh), which runs it many times slower: the fixture's (fx_pty_wait_opened,
 * fx_daemon_wait_log_line, fx_daemon_wait_connected, fx_subscriber_wait_count,
 * fx_daemon_stop, fx_daemon_kill), the test clouds' helpers' (cl_wait, cl_wait_since,
 * cl_wait_property, cl_downlink, tc_wait, tc_wait_property: cloud.h, tcloud.h) and the tests'
 * own polling loops. A test that asserts a rate or an interval in wall time keeps the
 * assertion and widens by it only the bound that a slow daemon could break. Check's per-test
 * timeouts are stretched separately (CK_TIMEOUT_MULTIPLIER).
 */
int fx_timeout_scale(void);

/* Fails the test unless status (a json_t) matches docs/status.schema.json (schema.c). */
struct json_t;
void fx_check_status_schema(const struct json_t *status);
/* `sensorgwctl status --json` of the running daemon (control socket fx_path("control")), a
 * new reference; fails the test when the command fails or prints no JSON object (schema.c). */
struct json_t *fx_status_json(void);

int64_t fx_now_ms(void);   /* CLOCK_REALTIME, ms */
int64_t fx_mono_ms(void);  /* CLOCK_MONOTONIC, ms */
void fx_sleep_ms(int ms);
/* Asks fn every 200 ms until it returns at least n or timeout_ms (scaled) ran out; returns its
 * last answer. */
size_t fx_wait_count(size_t (*fn)(void), size_t n, int timeout_ms);

/* Writes a file with the given mode (replacing it). */
void fx_write_file(const char *path, const char *text, unsigned mode);
/* Writes secret and a newline to path, 0600 (a product_secret_file, a password_file). */
void fx_write_secret(const char *path, const char *secret);
/* printf into a static rotating buffer (valid for the next 8 calls; 8 KiB, longer fails). */
const char *fx_strf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Reads a whole file; NULL when it does not exist. Free the result. */
char *fx_read_file(const char *path);

/*
 * Runs argv[0] (a path) to completion with stdin from /dev/null. The output of stdout and
 * stderr goes to *out and *err when those are non-NULL (free them), else to the test's
 * stderr. Returns the wait status; fails the test after timeout_ms.
 */
int fx_run(const char *const argv[], char **out, char **err, int timeout_ms);

/* ---- certificates ---- */

/* Makes broker/ca.crt, broker/server.{crt,key} (SAN DNS:localhost, IP:127.0.0.1) signed by
 * that CA, and broker/wrongca.crt, an unrelated CA. */
void fx_make_certs(void);

/* ---- broker ---- */

/* An unused TCP port on 127.0.0.1 at the time of the call. */
int fx_free_port(void);

#define FX_MQTT_USER "gw"
#define FX_OBSERVER_USER "observer"

/* Starts mosquitto (TLS only, password file with users gw and observer, no persistence,
 * max_queued_messages 0) on a free port and waits until it accepts connections. Makes the
 * certificates first when needed. */
void fx_broker_start(void);

struct fx_broker_opts {
	int port;               /* the daemon's listener; 0 = a free port */
	bool persistence;       /* persistence true (database saved on SIGTERM, loaded at start) */
	bool observer_listener; /* a second listener for the subscriber, so a fault on the
				 * daemon's port leaves the observer connected */
};

/* fx_broker_prepare() then starts it. opts may be NULL (the fx_broker_start() setup). */
void fx_broker_start_opts(const struct fx_broker_opts *opts);
/* Writes certificates, passwords and the broker configuration without starting it: the
 * daemon can be pointed at a broker that is down, which fx_broker_relaunch() brings up. */
void fx_broker_prepare(const struct fx_broker_opts *opts);
/* Starts the broker again with the same configuration, port and passwords (after
 * fx_broker_stop(), or for the first time after fx_broker_prepare()). */
void fx_broker_relaunch(void);
bool fx_broker_running(void);
void fx_broker_stop(void);
int fx_broker_port(void);
/* The observer listener's port, or the daemon's port when there is no separate one. */
int fx_broker_observer_port(void);
/* gw's password; also in fx_path("mqtt.pass"), 0600. Random hex; in canary mode "mq", the
 * canary, then random hex. */
const char *fx_mqtt_password(void);
int fx_broker_log_count(const char *needle);
/* Waits until the broker log contains needle; false at the deadline. */
bool fx_broker_wait_log(const char *needle, int timeout_ms);

/* ---- ptys ---- */

struct fx_pty {
	int master; /* non-blocking, close-on-exec */
	char slave[64];
	char link[4096]; /* stable name in the test directory, a symlink to slave */
	unsigned generation; /* incremented by each replug */
	off_t log_mark; /* the size of daemon.log when the pty was made (fx_pty_wait_opened) */
};

/* A new raw pty and the symlink fx_path(linkname) pointing at its slave. */
void fx_pty_new(struct fx_pty *p, const char *linkname);
/* "Unplug and plug back": closes the master (the reader sees a hangup), makes a new pty and
 * atomically re-points the symlink at the new slave. */
void fx_pty_replug(struct fx_pty *p);
void fx_pty_close(struct fx_pty *p);
/* Whether process pid has p's current slave open (from /proc/PID/fd) and, when pid is the
 * daemon, has logged "opened <slave> at" since the pty was made or the daemon started (the
 * line is configured and flushed: what is written now is read); waits up to timeout_ms. */
bool fx_pty_wait_opened(const struct fx_pty *p, pid_t pid, int timeout_ms);
/* Writes all bytes to the master; fails the test when the reader stops reading for 5 s. */
void fx_pty_write(const struct fx_pty *p, const void *buf, size_t len);
/*
 * Writes like a UART bridge delivers: in chunks of random length (1..97 bytes, so frames are
 * split at odd boundaries), with a short pause after some chunks.
 */
void fx_pty_write_chunked(const struct fx_pty *p, const void *buf, size_t len, uint64_t *rng);

/* ---- sensorgwd ---- */

/*
 * The contract configuration: [gateway], [port txt] (text) on fx_path("tty-txt"), [port bin]
 * (binary) on fx_path("tty-bin"), and [uplink local] to the broker with ca_file. extra is
 * appended verbatim (may be NULL). Free the result.
 */
char *fx_config(const char *ca_file, const char *extra);
/* Writes config to fx_path("sensorgw.conf") (0600) and starts
 * `sensorgwd -c FILE --log-level debug`, stdout and stderr to fx_path("daemon.log"). When
 * GW_DAEMON_WRAPPER is set, its words (split on spaces; the first found in PATH) come first:
 * `$GW_DAEMON_WRAPPER sensorgwd ...`; the wrapper must exec the daemon in the same process. */
pid_t fx_daemon_start(const char *config);
pid_t fx_daemon_pid(void);
bool fx_daemon_running(void);
/* Sends SIGTERM and waits (SIGKILL after 10 s). Returns the wait status and the time from the
 * signal to the exit in *ret_ms. */
int fx_daemon_stop(int64_t *ret_ms);
/* SIGKILL and reap; returns the wait status. */
int fx_daemon_kill(void);
void fx_daemon_signal(int sig);
bool fx_daemon_log_contains(const char *needle);
/* Whether one line of the daemon log contains every one of the NULL-terminated needles,
 * ignoring case. */
bool fx_daemon_log_line_has(const char *const needles[]);
/* Waits until fx_daemon_log_line_has(needles); false at the deadline. */
bool fx_daemon_wait_log_line(const char *const needles[], int timeout_ms);
/* Waits until the daemon's MQTT connection to the broker was accepted. */
bool fx_daemon_wait_connected(int timeout_ms);
/* Waits for the daemon's "started" line: its control socket is bound then. A port it opened
 * (fx_pty_wait_opened) or its broker connection does not say so: both come first. Matches
 * any daemon.log line, so only for the first daemon a test starts. */
bool fx_daemon_wait_started(int timeout_ms);
/* Dumps the daemon and broker logs to stderr (for failing tests). */
void fx_dump_logs(void);

/* ---- other children ---- */

/* Starts argv[0] (a path) as a direct child, stdout and stderr appended to fx_path(logname).
 * Teardown (or the watchdog) stops it. */
pid_t fx_spawn(const char *const argv[], const char *logname);
/* Whether the child still runs (reaps it when it exited). */
bool fx_child_running(pid_t pid);
/* SIGTERM (SIGKILL after 5 s) and reap; returns the wait status. */
int fx_child_stop(pid_t pid);

/* ---- simulator ---- */

/* Starts sensorgw-sim with the given extra arguments (NULL-terminated), stdout to
 * fx_path("sim.out"), stderr to fx_path("sim.log"). */
pid_t fx_sim_start(const char *const args[]);
/* Waits for it to exit by itself (SIGTERM at the deadline). Returns the wait status. */
int fx_sim_wait(int timeout_ms);
void fx_sim_stop(void);
/* The running simulator's pid, 0 when none runs. */
pid_t fx_sim_pid(void);

/* ---- subscriber ---- */

struct fx_msg {
	char *topic;
	char *payload; /* NUL-terminated */
	size_t len;
	int64_t rx_ms;
	bool retained; /* a retained message delivered at the subscription */
};

/* Connects a separate libmosquitto client (user observer, TLS, the right CA) and subscribes to
 * topic with QoS 1; returns after the SUBACK. */
void fx_subscriber_start(const char *topic);
/* The same with a persistent session (clean_session false, a fixed client id) on the observer
 * port: messages queued while the observer or the broker was away still reach it. */
void fx_subscriber_start_persistent(const char *topic);
size_t fx_subscriber_count(void);
/* Waits until at least n messages arrived; false at the deadline. */
bool fx_subscriber_wait_count(size_t n, int timeout_ms);
/* A copy of the messages received so far, in arrival order (free with fx_msgs_free). */
struct fx_msg *fx_subscriber_messages(size_t *ret_n);
void fx_msgs_free(struct fx_msg *m, size_t n);
/* Publishes payload on topic (QoS 1, not retained) through the observer's session. */
void fx_subscriber_publish(const char *topic, const char *payload);
void fx_subscriber_stop(void);

/* ---- binary frames (node library) ---- */

/* Encodes a hello into out (>= 250 bytes); returns the length. */
size_t fx_bin_hello(uint8_t *out, uint8_t addr, uint16_t seq, const uint8_t uid[12],
		    uint32_t boot, const char *fw);

/* ---- secret canary ---- */

/*
 * Canary mode (issue 8, item 5): GW_CANARY=<8..48 letters and digits> in the environment of
 * the integration tests (tools/run-tests.sh sets a fresh random one for the ASan+UBSan run).
 * The fixture reads it once per test process and removes it from the environment, so that no
 * child inherits it. Then:
 *
 *   - every secret a test hands the daemon or a test cloud comes from fx_secret() and
 *     contains the canary: gw's MQTT password (fx_mqtt_password(), mqtt.pass), the Aliyun
 *     ProductSecret and preset DeviceSecrets, the Tencent ProductSecrets and PSKs; the test
 *     clouds get `--canary TOKEN` (cc_start()) and put it into every DeviceSecret,
 *     DeviceToken and PSK they issue at registration (tests/cloud/README.md);
 *   - every daemon runs with --log-level debug (fx_daemon_start() always passes it; the CLI
 *     beats the file's log_level);
 *   - before the fixture stops a daemon (fx_daemon_stop(), fx_daemon_kill(), the teardown)
 *     it searches /proc/PID/cmdline and /proc/PID/environ and, at fx_daemon_stop(), the
 *     answer of `sensorgwctl status --json` when the configuration names a control socket;
 *   - after it stopped: daemon.log (its stdout and stderr), every regular file below each
 *     state_dir of the configurations given to fx_daemon_start() (spool, cursors, dead-letter
 *     files, markers) except the credential store's own files (credentials/<uplink>/
 *     <device>.json, .json.bak, .corrupt-N copies, .tmp files), which must be 0600 instead;
 *     core files (core, core.*, vgcore.*) in the state directories, the test directory and the
 *     working directory; the stdout/stderr of sensorgwd runs captured by fx_run();
 *   - the text is searched for the canary as is and hex-encoded.
 *
 * Every hit is reported on stderr with the place ("Secret canary: the canary X (as text)
 * appears in PATH at byte N"); the teardown prints "Secret canary: N places searched, H hits
 * ..." and fails the test when H > 0, when a credential-store file is not 0600, when a
 * daemon's output file is missing or when a test that started a daemon searched fewer than 3
 * places. The test's own stdout/stderr are not searched: tests may print configurations.
 * Without GW_CANARY none of this runs and fx_secret() returns the fixed test values.
 */

/* The canary, or NULL outside canary mode. */
const char *fx_canary(void);
/*
 * The secret for purpose: "aliyun-product", "aliyun-product-wrong", "aliyun-device",
 * "aliyun-device2", "tencent-product", "tencent-product-cert", "tencent-product-wrong",
 * "tencent-product-other", "tencent-psk" (base64), "tencent-psk-wrong" (base64),
 * "mqtt-other" (any other purpose fails the test). Outside canary mode the fixed test value
 * (e.g. "testProductSecret123"); in canary mode a value in the same format that contains the
 * canary (8 characters of the fixed value, or 4 of a base64 one, then the canary; base64 ones
 * padded with 'A' to a multiple of 4, no '='). Stable within a test process.
 */
const char *fx_secret(const char *purpose);
/* Searches buf for the canary, counting it as one place searched; returns the hits. */
size_t fx_canary_scan_buf(const char *where, const void *buf, size_t len);
/* Searches /proc/PID/cmdline and environ of a running process. */
void fx_canary_scan_proc(pid_t pid);
/* The after-stop search now (daemon.log, the state directories, core files); returns the new
 * hits. fx_daemon_stop() and the teardown call it. */
size_t fx_canary_scan(void);
/* For the scanner's self-test: returns the hits so far and clears them and any problem, so
 * that the teardown passes; where gets the place of the last hit, or when there was none the
 * problem (e.g. a store file's mode), or "". */
size_t fx_canary_forget_hits(char *where, size_t size);
/* Leaves path (a file, or a directory and everything below it) out of the state-directory
 * search: for what the test itself put there, e.g. a credential file it made unsafe on
 * purpose, which the daemon must refuse. Counted in the teardown's line. */
void fx_canary_exempt(const char *path);
/* Canary mode with token for this test process when GW_CANARY is not set (the self-test). */
void fx_canary_force(const char *token);

/* ---- randomness ---- */

uint64_t fx_rand(uint64_t *state);
uint32_t fx_rand_below(uint64_t *state, uint32_t n);
