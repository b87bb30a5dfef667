/* SPDX-License-Identifier: MIT */
/*
 * gw_serial on a real sd-event loop with real ptys from openpty(). The configured path is a
 * symlink in a temporary directory, standing in for /dev/serial/by-id/...: re-pointing it is how
 * a test "replugs" the device, and removing it is what udev does on a real unplug. Closing the
 * pty master gives the same EPOLLIN|EPOLLERR|EPOLLHUP and read() == 0/EIO as a USB unplug
 * (test-fixtures.md §3).
 */

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pty.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "../helpers/ckrun.h"
#include "../helpers/emulated.h"
#include "gw/port.h"
#include "gw/serial.h"
#include "gw/util.h"

#define MAX_REPORTS 64

struct report {
	enum gw_serial_state state;
	int err;
	char device[PATH_MAX];
	bool has_device;
	uint32_t retry_ms;
	uint64_t at_us;
};

/* What one gw_serial told us. */
struct rec {
	struct report reports[MAX_REPORTS];
	unsigned n_reports;
	uint8_t *rx;
	size_t rx_len;
	size_t rx_cap;
	/* what run_until() waits for */
	unsigned want_from;
	enum gw_serial_state want_state;
	int want_err;
	size_t want_len;
};

/* A pty master with a buffer to send from and one to collect into, both on the loop. */
struct pty {
	int master;
	char slave[PATH_MAX];
	sd_event_source *tx_src;
	const uint8_t *tx;
	size_t tx_len;
	size_t tx_off;
	sd_event_source *rx_src;
	uint8_t *rx;
	size_t rx_len;
	size_t rx_cap;
	size_t want_rx; /* what run_until(pred_pty_rx) waits for */
};

static sd_event *ev;
static char tmpdir[256];
static char link_path[PATH_MAX];

static void remove_tmpdir(void)
{
	DIR *d;
	struct dirent *de;

	if (!tmpdir[0])
		return;
	d = opendir(tmpdir);
	while (d && (de = readdir(d)))
		if (de->d_name[0] != '.' && unlinkat(dirfd(d), de->d_name, 0) < 0)
			(void)unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR);
	if (d)
		closedir(d);
	(void)rmdir(tmpdir);
	tmpdir[0] = '\0';
}

static void setup(void)
{
	static bool registered;

	snprintf(tmpdir, sizeof(tmpdir), "%s/test-serial-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	snprintf(link_path, sizeof(link_path), "%s/ttyNODE", tmpdir);
	/* A failed assertion ends a forked test without running teardown, but through exit(). */
	if (!registered)
		registered = atexit(remove_tmpdir) == 0;
	ck_assert_int_eq(sd_event_new(&ev), 0);
}

static void teardown(void)
{
	remove_tmpdir();
	ev = sd_event_unref(ev);
}

static void port_cfg(struct gw_config_port *cfg, const char *path, uint32_t baud)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->name, sizeof(cfg->name), "node1");
	cfg->path = (char *)path;
	cfg->match_vid = -1;
	cfg->match_pid = -1;
	cfg->baud = baud;
	cfg->data_bits = 8;
	cfg->parity = GW_PARITY_NONE;
	cfg->stop_bits = 1;
	cfg->flow = GW_FLOW_NONE;
	cfg->reopen_min_ms = 20;
	cfg->reopen_max_ms = 200;
}

static void append(uint8_t **buf, size_t *len, size_t *cap, const uint8_t *data, size_t n)
{
	if (*len + n > *cap) {
		*cap = (*len + n) * 2;
		*buf = realloc(*buf, *cap);
		ck_assert_ptr_nonnull(*buf);
	}
	memcpy(*buf + *len, data, n);
	*len += n;
}

static void on_data(struct gw_serial *s, const uint8_t *buf, size_t len, void *user_data)
{
	struct rec *r = user_data;

	ck_assert_uint_gt(len, 0);
	append(&r->rx, &r->rx_len, &r->rx_cap, buf, len);
}

static void on_state(struct gw_serial *s, enum gw_serial_state state, int err, const char *device,
		     uint32_t retry_ms, void *user_data)
{
	struct rec *r = user_data;
	struct report *rep;

	ck_assert_uint_lt(r->n_reports, MAX_REPORTS);
	rep = &r->reports[r->n_reports++];
	rep->state = state;
	rep->err = err;
	rep->has_device = device != NULL;
	snprintf(rep->device, sizeof(rep->device), "%s", device ? device : "");
	rep->retry_ms = retry_ms;
	rep->at_us = gw_now_mono_us();
	/* The object is usable from its own callbacks. */
	ck_assert_int_eq(gw_serial_get_state(s), state);
	if (state == GW_SERIAL_ABSENT)
		ck_assert_int_eq(gw_serial_write(s, (const uint8_t *)"x", 1), -ENOTCONN);
}

static void rec_free(struct rec *r)
{
	free(r->rx);
	memset(r, 0, sizeof(*r));
}

static bool pred_report(void *arg)
{
	const struct rec *r = arg;

	for (unsigned i = r->want_from; i < r->n_reports; i++)
		if (r->reports[i].state == r->want_state && r->reports[i].err == r->want_err)
			return true;
	return false;
}

static bool pred_rx(void *arg)
{
	const struct rec *r = arg;

	return r->rx_len >= r->want_len;
}

static bool pred_pty_rx(void *arg)
{
	const struct pty *p = arg;

	return p->rx_len >= p->want_rx;
}

static bool pred_never(void *arg)
{
	return false;
}

/* Runs the loop until done(arg) or timeout_ms; returns whether done. */
static bool run_until(bool (*done)(void *), void *arg, unsigned timeout_ms)
{
	uint64_t end = gw_now_mono_us() + (uint64_t)timeout_ms * 1000;

	while (!done(arg)) {
		uint64_t now = gw_now_mono_us();

		if (now >= end)
			return false;
		ck_assert_int_ge(sd_event_run(ev, end - now), 0);
	}
	return true;
}

static void run_for(unsigned ms)
{
	run_until(pred_never, NULL, ms);
}

static bool wait_report(struct rec *r, enum gw_serial_state state, int err, unsigned timeout_ms)
{
	r->want_from = 0;
	r->want_state = state;
	r->want_err = err;
	return run_until(pred_report, r, timeout_ms);
}

static void pty_open(struct pty *p)
{
	int slave;

	memset(p, 0, sizeof(*p));
	ck_assert_int_eq(openpty(&p->master, &slave, NULL, NULL, NULL), 0);
	ck_assert_int_eq(ptsname_r(p->master, p->slave, sizeof(p->slave)), 0);
	/* Only gw_serial keeps the slave open, as only the daemon holds a real UART. */
	close(slave);
	ck_assert_int_eq(fcntl(p->master, F_SETFD, FD_CLOEXEC), 0);
	ck_assert_int_eq(fcntl(p->master, F_SETFL, fcntl(p->master, F_GETFL) | O_NONBLOCK), 0);
}

static void pty_close(struct pty *p)
{
	p->tx_src = sd_event_source_disable_unref(p->tx_src);
	p->rx_src = sd_event_source_disable_unref(p->rx_src);
	if (p->master >= 0)
		close(p->master);
	p->master = -1;
	free(p->rx);
	p->rx = NULL;
}

static int pty_on_writable(sd_event_source *src, int fd, uint32_t revents, void *userdata)
{
	struct pty *p = userdata;
	ssize_t n;

	n = write(fd, p->tx + p->tx_off, p->tx_len - p->tx_off);
	if (n < 0) {
		ck_assert_int_eq(errno, EAGAIN);
		return 0;
	}
	p->tx_off += (size_t)n;
	if (p->tx_off == p->tx_len)
		ck_assert_int_eq(sd_event_source_set_enabled(src, SD_EVENT_OFF), 0);
	return 0;
}

/* Sends buf from the master as the loop runs (it may be larger than the pty's buffer). */
static void pty_send(struct pty *p, const uint8_t *buf, size_t len)
{
	p->tx = buf;
	p->tx_len = len;
	p->tx_off = 0;
	p->tx_src = sd_event_source_disable_unref(p->tx_src);
	ck_assert_int_eq(sd_event_add_io(ev, &p->tx_src, p->master, EPOLLOUT, pty_on_writable, p),
			 0);
}

static int pty_on_readable(sd_event_source *src, int fd, uint32_t revents, void *userdata)
{
	struct pty *p = userdata;
	uint8_t buf[4096];
	ssize_t n;

	n = read(fd, buf, sizeof(buf));
	if (n > 0)
		append(&p->rx, &p->rx_len, &p->rx_cap, buf, (size_t)n);
	else
		ck_assert_int_eq(errno, EAGAIN);
	return 0;
}

/* Collects what gw_serial writes to the slave. */
static void pty_collect(struct pty *p)
{
	ck_assert_int_eq(sd_event_add_io(ev, &p->rx_src, p->master, EPOLLIN, pty_on_readable, p),
			 0);
}

/* Points link_path at target atomically, as udev replaces a by-id link. */
static void link_to(const char *target)
{
	char tmp[PATH_MAX + 8];

	snprintf(tmp, sizeof(tmp), "%s.new", link_path);
	ck_assert_int_eq(symlink(target, tmp), 0);
	ck_assert_int_eq(rename(tmp, link_path), 0);
}

/* Open fds of this process; with prefix, only those whose target starts with it. */
static int count_fds(const char *prefix)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d))) {
		char target[PATH_MAX];
		ssize_t len;

		if (de->d_name[0] == '.' || atoi(de->d_name) == dirfd(d))
			continue;
		if (!prefix) {
			n++;
			continue;
		}
		len = readlinkat(dirfd(d), de->d_name, target, sizeof(target) - 1);
		if (len < 0)
			continue;
		target[len] = '\0';
		if (strncmp(target, prefix, strlen(prefix)) == 0)
			n++;
	}
	closedir(d);
	return n;
}

static uint64_t cpu_us(void)
{
	struct rusage ru;

	ck_assert_int_eq(getrusage(RUSAGE_SELF, &ru), 0);
	return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 +
	       (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

/* Every byte value, so that any leftover cooked-mode processing (ICRNL, ISIG, IXON, OPOST)
 * would show up as a difference. */
static uint8_t *pattern(size_t len, unsigned seed)
{
	uint8_t *b = malloc(len);

	ck_assert_ptr_nonnull(b);
	for (size_t i = 0; i < len; i++)
		b[i] = (uint8_t)(i * 7 + (i >> 8) + seed);
	return b;
}

static struct gw_serial *serial_new_ok(const struct gw_config_port *cfg, struct rec *r)
{
	struct gw_serial *s = NULL;

	ck_assert_int_eq(gw_serial_new(ev, cfg, on_data, on_state, r, &s), 0);
	ck_assert_ptr_nonnull(s);
	return s;
}

START_TEST(test_data_in)
{
	struct gw_config_port cfg;
	struct rec r = { 0 };
	struct pty p;
	struct termios tio;
	struct gw_serial *s;
	uint8_t *small = pattern(3000, 1);
	uint8_t *burst = pattern(100 * 1024, 2);
	char real[PATH_MAX];

	pty_open(&p);
	link_to(p.slave);
	ck_assert_ptr_nonnull(realpath(p.slave, real));
	port_cfg(&cfg, link_path, 57600);
	s = serial_new_ok(&cfg, &r);

	/* The first attempt is reported before gw_serial_new() returns. */
	ck_assert_uint_eq(r.n_reports, 1);
	ck_assert_int_eq(r.reports[0].state, GW_SERIAL_OPEN);
	ck_assert_int_eq(r.reports[0].err, 0);
	ck_assert_str_eq(r.reports[0].device, real);
	ck_assert_str_eq(gw_serial_device(s), real);
	ck_assert_str_eq(gw_serial_name(s), "node1");
	ck_assert_int_eq(gw_serial_get_state(s), GW_SERIAL_OPEN);
	ck_assert_uint_eq(gw_serial_stats(s)->opens, 1);

	/* Termios calls on a pty master act on the slave's settings. */
	ck_assert_int_eq(tcgetattr(p.master, &tio), 0);
	ck_assert_uint_eq(cfgetispeed(&tio), B57600);
	ck_assert_uint_eq(cfgetospeed(&tio), B57600);
	ck_assert_uint_eq(tio.c_cflag & CSIZE, CS8);
	ck_assert_uint_eq(tio.c_cflag & (PARENB | CSTOPB | CRTSCTS), 0);
	ck_assert_uint_eq(tio.c_cflag & (CLOCAL | CREAD), CLOCAL | CREAD);
	ck_assert_uint_eq(tio.c_lflag & (ICANON | ECHO | ISIG | IEXTEN), 0);
	ck_assert_uint_eq(tio.c_iflag & (IXON | IXOFF | ICRNL | INLCR | IGNCR | ISTRIP), 0);
	ck_assert_uint_eq(tio.c_oflag & OPOST, 0);
	ck_assert_uint_eq(tio.c_cc[VMIN], 1);
	ck_assert_uint_eq(tio.c_cc[VTIME], 0);

	pty_send(&p, small, 3000);
	r.want_len = 3000;
	ck_assert(run_until(pred_rx, &r, 2000));
	ck_assert_uint_eq(r.rx_len, 3000);
	ck_assert_mem_eq(r.rx, small, 3000);

	r.rx_len = 0;
	pty_send(&p, burst, 100 * 1024);
	r.want_len = 100 * 1024;
	ck_assert(run_until(pred_rx, &r, 3000));
	ck_assert_uint_eq(r.rx_len, 100 * 1024);
	ck_assert_mem_eq(r.rx, burst, 100 * 1024);
	ck_assert_uint_eq(gw_serial_stats(s)->bytes_in, 3000 + 100 * 1024);
	ck_assert_uint_eq(r.n_reports, 1);

	gw_serial_free(s);
	pty_close(&p);
	rec_free(&r);
	free(small);
	free(burst);
}
END_TEST

/*
 * Whether this tty layer keeps a setting: cflag bits (CSIZE among them) or a rate.
 *  - Recent kernels force CS8 and clear PARENB on ptys (pty_set_termios()), since a pty has no
 *    line to frame. Ask this kernel, so that data bits and parity are checked wherever it
 *    keeps them and only the rest is checked where it does not.
 *  - qemu-user 7.2 translates no rate above B460800 between the guest's termios and the
 *    kernel's, and reads B921600 back as B0.
 */
static bool pty_keeps(tcflag_t cflag, speed_t speed)
{
	struct termios tio;
	int master;
	int slave;
	bool kept;

	ck_assert_int_eq(openpty(&master, &slave, NULL, NULL, NULL), 0);
	ck_assert_int_eq(tcgetattr(slave, &tio), 0);
	cfmakeraw(&tio);
	if (cflag)
		tio.c_cflag = (tio.c_cflag & ~(tcflag_t)CSIZE) | cflag;
	if (speed != B0)
		ck_assert_int_eq(cfsetspeed(&tio, speed), 0);
	ck_assert_msg(tcsetattr(slave, TCSANOW, &tio) == 0, "tcsetattr: %s", strerror(errno));
	ck_assert_int_eq(tcgetattr(slave, &tio), 0);
	kept = (!cflag || (tio.c_cflag & (CSIZE | cflag)) == cflag) &&
	       (speed == B0 || cfgetospeed(&tio) == speed);
	close(slave);
	close(master);
	return kept;
}

/* Line settings other than 8N1 reach the tty. */
START_TEST(test_termios_options)
{
	bool framing = pty_keeps(CS7 | PARENB, B0);

	static const struct {
		uint32_t baud;
		speed_t speed;
		uint8_t data_bits;
		enum gw_parity parity;
		uint8_t stop_bits;
		enum gw_flow flow;
		tcflag_t csize;
	} cases[] = {
		{ 9600, B9600, 7, GW_PARITY_EVEN, 2, GW_FLOW_RTSCTS, CS7 },
		{ 921600, B921600, 5, GW_PARITY_ODD, 1, GW_FLOW_XONXOFF, CS5 },
		{ 50, B50, 6, GW_PARITY_NONE, 2, GW_FLOW_NONE, CS6 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct gw_config_port cfg;
		struct rec r = { 0 };
		struct pty p;
		struct termios tio;
		struct gw_serial *s;

		/* only where a native run checks the case (tests/helpers/emulated.h) */
		if (test_emulated() && !pty_keeps(0, cases[i].speed)) {
			printf("serial termios: the %" PRIu32
			       " baud case not run: this emulator's tty "
			       "layer does not keep that rate\n",
			       cases[i].baud);
			continue;
		}
		pty_open(&p);
		port_cfg(&cfg, p.slave, cases[i].baud);
		cfg.data_bits = cases[i].data_bits;
		cfg.parity = cases[i].parity;
		cfg.stop_bits = cases[i].stop_bits;
		cfg.flow = cases[i].flow;
		s = serial_new_ok(&cfg, &r);
		ck_assert_int_eq(gw_serial_get_state(s), GW_SERIAL_OPEN);

		ck_assert_int_eq(tcgetattr(p.master, &tio), 0);
		ck_assert_uint_eq(cfgetospeed(&tio), cases[i].speed);
		ck_assert_uint_eq(cfgetispeed(&tio), cases[i].speed);
		if (framing) {
			ck_assert_uint_eq(tio.c_cflag & CSIZE, cases[i].csize);
			ck_assert_int_eq(!!(tio.c_cflag & PARENB),
					 cases[i].parity != GW_PARITY_NONE);
		}
		ck_assert_int_eq(!!(tio.c_cflag & PARODD), cases[i].parity == GW_PARITY_ODD);
		ck_assert_int_eq(!!(tio.c_cflag & CSTOPB), cases[i].stop_bits == 2);
		ck_assert_int_eq(!!(tio.c_cflag & CRTSCTS), cases[i].flow == GW_FLOW_RTSCTS);
		ck_assert_int_eq((tio.c_iflag & (IXON | IXOFF)) == (IXON | IXOFF),
				 cases[i].flow == GW_FLOW_XONXOFF);
		ck_assert_uint_eq(tio.c_lflag & (ICANON | ECHO | ISIG), 0);

		gw_serial_free(s);
		pty_close(&p);
		rec_free(&r);
	}
}
END_TEST

START_TEST(test_unplug_replug)
{
	struct gw_config_port cfg;
	struct rec r = { 0 };
	struct pty p;
	struct pty p2;
	struct gw_serial *s;
	char old_slave[PATH_MAX];
	int fds_open;
	int fds_absent;
	uint64_t t0;
	uint64_t cpu0;
	uint64_t hup_us;
	uint64_t cpu_absent_us;
	uint64_t reopen_us;
	unsigned n;

	pty_open(&p);
	link_to(p.slave);
	port_cfg(&cfg, link_path, 115200);
	s = serial_new_ok(&cfg, &r);
	ck_assert_int_eq(gw_serial_get_state(s), GW_SERIAL_OPEN);
	snprintf(old_slave, sizeof(old_slave), "%s", p.slave);
	fds_open = count_fds(NULL);
	ck_assert_int_eq(count_fds(old_slave), 1);

	/* Unplug. */
	t0 = gw_now_mono_us();
	pty_close(&p);
	ck_assert(wait_report(&r, GW_SERIAL_ABSENT, -EIO, 1000));
	hup_us = gw_now_mono_us() - t0;
	ck_assert_uint_eq(r.n_reports, 2);
	ck_assert_str_eq(r.reports[1].device, old_slave);
	ck_assert_uint_ge(r.reports[1].retry_ms, 10);
	ck_assert_uint_le(r.reports[1].retry_ms, 20);
	ck_assert_int_eq(gw_serial_get_state(s), GW_SERIAL_ABSENT);
	ck_assert_ptr_null(gw_serial_device(s));
	ck_assert_uint_eq(gw_serial_stats(s)->closes, 1);
	ck_assert_int_eq(gw_serial_write(s, (const uint8_t *)"x", 1), -ENOTCONN);
	/* The master and gw_serial's slave fd are gone, nothing else. */
	fds_absent = count_fds(NULL);
	ck_assert_int_eq(fds_absent, fds_open - 2);
	ck_assert_int_eq(count_fds(old_slave), 0);

	/* udev removes the by-id link; the retries now fail with ENOENT, which is reported once.
	 * Meanwhile the loop must sleep on its timer, not spin on a dead fd. */
	ck_assert_int_eq(unlink(link_path), 0);
	cpu0 = cpu_us();
	run_for(300);
	cpu_absent_us = cpu_us() - cpu0;
	ck_assert_uint_eq(r.n_reports, 3);
	ck_assert_int_eq(r.reports[2].state, GW_SERIAL_ABSENT);
	ck_assert_int_eq(r.reports[2].err, -ENOENT);
	ck_assert_str_eq(r.reports[2].device, link_path);
	ck_assert_uint_lt(cpu_absent_us, 50000);

	/* Replug: a new pty behind the same link; the same object reopens by itself. */
	pty_open(&p2);
	t0 = gw_now_mono_us();
	link_to(p2.slave);
	n = r.n_reports;
	r.want_from = n;
	r.want_state = GW_SERIAL_OPEN;
	r.want_err = 0;
	ck_assert(run_until(pred_report, &r, 2000));
	reopen_us = gw_now_mono_us() - t0;
	ck_assert_uint_eq(r.n_reports, n + 1);
	/* The backoff is capped at 200 ms (+ dispatch slack). */
	ck_assert_uint_lt(reopen_us, 400000);
	ck_assert_str_eq(gw_serial_device(s), r.reports[n].device);
	ck_assert_uint_eq(gw_serial_stats(s)->opens, 2);
	ck_assert_uint_eq(gw_serial_stats(s)->closes, 1);

	pty_send(&p2, (const uint8_t *)"after replug\n", 13);
	r.want_len = 13;
	ck_assert(run_until(pred_rx, &r, 1000));
	ck_assert_mem_eq(r.rx, "after replug\n", 13);

	printf("serial unplug: hang-up reported in %.2f ms; fds %d open -> %d absent; "
	       "CPU %.2f ms over 300 ms absent; reopen %.1f ms after the link reappeared\n",
	       hup_us / 1000.0, fds_open, fds_absent, cpu_absent_us / 1000.0, reopen_us / 1000.0);

	gw_serial_free(s);
	pty_close(&p2);
	rec_free(&r);
}
END_TEST

START_TEST(test_missing_at_start)
{
	struct gw_config_port cfg;
	struct rec r = { 0 };
	struct pty p;
	struct gw_serial *s;
	char real[PATH_MAX];

	port_cfg(&cfg, link_path, 115200);
	s = serial_new_ok(&cfg, &r);
	ck_assert_uint_eq(r.n_reports, 1);
	ck_assert_int_eq(r.reports[0].state, GW_SERIAL_ABSENT);
	ck_assert_int_eq(r.reports[0].err, -ENOENT);
	ck_assert_str_eq(r.reports[0].device, link_path);
	ck_assert_uint_ge(r.reports[0].retry_ms, 10);
	ck_assert_uint_le(r.reports[0].retry_ms, 20);
	ck_assert_int_eq(gw_serial_get_state(s), GW_SERIAL_ABSENT);
	ck_assert_ptr_null(gw_serial_device(s));
	ck_assert_int_eq(gw_serial_write(s, (const uint8_t *)"x", 1), -ENOTCONN);

	/* Retries failing the same way stay quiet. */
	run_for(100);
	ck_assert_uint_eq(r.n_reports, 1);
	ck_assert_uint_eq(gw_serial_stats(s)->opens, 0);

	pty_open(&p);
	link_to(p.slave);
	ck_assert(wait_report(&r, GW_SERIAL_OPEN, 0, 2000));
	ck_assert_uint_eq(r.n_reports, 2);
	ck_assert_ptr_nonnull(realpath(p.slave, real));
	ck_assert_str_eq(r.reports[1].device, real);
	ck_assert_uint_eq(r.reports[1].retry_ms, 0);
	ck_assert_uint_eq(gw_serial_stats(s)->opens, 1);
	ck_assert_uint_eq(gw_serial_stats(s)->closes, 0);

	gw_serial_free(s);
	pty_close(&p);
	rec_free(&r);
}
END_TEST

START_TEST(test_exclusive_lock)
{
	struct gw_config_port cfg;
	struct rec r1 = { 0 };
	struct rec r2 = { 0 };
	struct pty p;
	struct gw_serial *s1;
	struct gw_serial *s2;
	char real[PATH_MAX];

	pty_open(&p);
	link_to(p.slave);
	ck_assert_ptr_nonnull(realpath(p.slave, real));
	port_cfg(&cfg, link_path, 115200);
	s1 = serial_new_ok(&cfg, &r1);
	ck_assert_int_eq(gw_serial_get_state(s1), GW_SERIAL_OPEN);

	s2 = serial_new_ok(&cfg, &r2);
	ck_assert_uint_eq(r2.n_reports, 1);
	ck_assert_int_eq(r2.reports[0].state, GW_SERIAL_ABSENT);
	ck_assert_int_eq(r2.reports[0].err, -EBUSY);
	ck_assert_str_eq(r2.reports[0].device, real);

	/* The holder is undisturbed. */
	pty_send(&p, (const uint8_t *)"mine", 4);
	r1.want_len = 4;
	ck_assert(run_until(pred_rx, &r1, 1000));
	ck_assert_uint_eq(r2.rx_len, 0);
	ck_assert_uint_eq(r2.n_reports, 1);

	/* Once the holder lets go, the other one gets the port on its next retry. */
	gw_serial_free(s1);
	ck_assert(wait_report(&r2, GW_SERIAL_OPEN, 0, 2000));
	ck_assert_uint_eq(r2.n_reports, 2);

	gw_serial_free(s2);
	pty_close(&p);
	rec_free(&r1);
	rec_free(&r2);
}
END_TEST

START_TEST(test_write)
{
	struct gw_config_port cfg;
	struct rec r = { 0 };
	struct pty p;
	struct pty p2;
	struct gw_serial *s;
	uint8_t *cmd = pattern(1024, 3);
	uint8_t *big = pattern(64 * 1024, 4);

	/* '\n' must not become "\r\n" (OPOST off). */
	cmd[10] = '\n';
	pty_open(&p);
	link_to(p.slave);
	port_cfg(&cfg, link_path, 115200);
	s = serial_new_ok(&cfg, &r);
	pty_collect(&p);

	ck_assert_int_eq(gw_serial_write(s, cmd, 0), 0);
	ck_assert_int_eq(gw_serial_write(s, cmd, 1024), 0);
	p.want_rx = 1024;
	ck_assert(run_until(pred_pty_rx, &p, 2000));
	run_for(20);
	ck_assert_uint_eq(p.rx_len, 1024);
	ck_assert_mem_eq(p.rx, cmd, 1024);

	/* Exactly 64 KiB fit in the queue, one more byte does not. The pty takes only a few KiB
	 * at a time, so this goes through many partial writes. */
	p.rx_len = 0;
	ck_assert_int_eq(gw_serial_write(s, big, 64 * 1024), 0);
	ck_assert_int_eq(gw_serial_write(s, cmd, 1), -ENOBUFS);
	p.want_rx = 64 * 1024;
	ck_assert(run_until(pred_pty_rx, &p, 3000));
	run_for(20);
	ck_assert_uint_eq(p.rx_len, 64 * 1024);
	ck_assert_mem_eq(p.rx, big, 64 * 1024);
	ck_assert_uint_eq(gw_serial_stats(s)->bytes_out, 1024 + 64 * 1024);

	/* A hang-up drops the queue: none of it goes to the device that appears next. */
	ck_assert_int_eq(gw_serial_write(s, big, 64 * 1024), 0);
	pty_close(&p);
	ck_assert(wait_report(&r, GW_SERIAL_ABSENT, -EIO, 1000));
	ck_assert_int_eq(gw_serial_write(s, cmd, 1), -ENOTCONN);
	pty_open(&p2);
	link_to(p2.slave);
	r.want_from = r.n_reports;
	r.want_state = GW_SERIAL_OPEN;
	r.want_err = 0;
	ck_assert(run_until(pred_report, &r, 2000));
	/* Not before: a master whose slave nobody has open reads EIO. */
	pty_collect(&p2);
	run_for(50);
	ck_assert_uint_eq(p2.rx_len, 0);
	ck_assert_int_eq(gw_serial_write(s, (const uint8_t *)"ok", 2), 0);
	p2.want_rx = 2;
	ck_assert(run_until(pred_pty_rx, &p2, 1000));
	ck_assert_mem_eq(p2.rx, "ok", 2);

	/* Freed with bytes still queued. */
	ck_assert_int_eq(gw_serial_write(s, big, 1000), 0);
	gw_serial_free(s);
	pty_close(&p2);
	rec_free(&r);
	free(cmd);
	free(big);
}
END_TEST

START_TEST(test_baud_to_speed)
{
	static const struct {
		uint32_t baud;
		speed_t speed;
	} rates[] = {
		{ 50, B50 },         { 75, B75 },         { 110, B110 },       { 134, B134 },
		{ 150, B150 },       { 200, B200 },       { 300, B300 },       { 600, B600 },
		{ 1200, B1200 },     { 1800, B1800 },     { 2400, B2400 },     { 4800, B4800 },
		{ 9600, B9600 },     { 19200, B19200 },   { 38400, B38400 },   { 57600, B57600 },
		{ 115200, B115200 }, { 230400, B230400 }, { 460800, B460800 }, { 500000, B500000 },
		{ 576000, B576000 }, { 921600, B921600 },
	};
	static const uint32_t bad[] = { 0, 1, 49, 12345, 100000, 250000, 1000000, 4000000 };

	for (size_t i = 0; i < sizeof(rates) / sizeof(rates[0]); i++)
		ck_assert_uint_eq(gw_serial_baud_to_speed(rates[i].baud), rates[i].speed);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_uint_eq(gw_serial_baud_to_speed(bad[i]), 0);
}
END_TEST

START_TEST(test_bad_config)
{
	struct gw_config_port cfg;
	struct gw_serial *s = NULL;

	port_cfg(&cfg, link_path, 12345);
	ck_assert_int_eq(gw_serial_new(ev, &cfg, on_data, on_state, NULL, &s), -EINVAL);
	port_cfg(&cfg, link_path, 115200);
	cfg.data_bits = 9;
	ck_assert_int_eq(gw_serial_new(ev, &cfg, on_data, on_state, NULL, &s), -EINVAL);
	port_cfg(&cfg, link_path, 115200);
	cfg.stop_bits = 3;
	ck_assert_int_eq(gw_serial_new(ev, &cfg, on_data, on_state, NULL, &s), -EINVAL);
	port_cfg(&cfg, NULL, 115200);
	ck_assert_int_eq(gw_serial_new(ev, &cfg, on_data, on_state, NULL, &s), -EINVAL);
	ck_assert_int_eq(gw_serial_new(NULL, &cfg, on_data, on_state, NULL, &s), -EINVAL);
	ck_assert_ptr_null(s);
	ck_assert_ptr_null(gw_serial_free(NULL));
}
END_TEST

/* A USB match that matches nothing on this machine reports -ENODEV without a device. */
START_TEST(test_usb_no_match)
{
	struct gw_config_port cfg;
	struct rec r = { 0 };
	struct gw_serial *s;

	port_cfg(&cfg, NULL, 115200);
	cfg.match_vid = 0xdead;
	cfg.match_pid = 0xbeef;
	cfg.match_serial = (char *)"no-such-serial-7f3a";
	s = serial_new_ok(&cfg, &r);
	ck_assert_uint_eq(r.n_reports, 1);
	ck_assert_int_eq(r.reports[0].state, GW_SERIAL_ABSENT);
	ck_assert_int_eq(r.reports[0].err, -ENODEV);
	ck_assert(!r.reports[0].has_device);
	run_for(60);
	ck_assert_uint_eq(r.n_reports, 1);
	gw_serial_free(s);
	rec_free(&r);
}
END_TEST

struct opens {
	uint64_t at_us[64];
	unsigned n;
};

static int on_inotify(sd_event_source *src, int fd, uint32_t revents, void *userdata)
{
	struct opens *o = userdata;
	uint8_t buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	uint64_t now = gw_now_mono_us();
	ssize_t n = read(fd, buf, sizeof(buf));

	for (ssize_t off = 0; off < n;) {
		const struct inotify_event *ie = (const void *)(buf + off);

		if ((ie->mask & IN_OPEN) && o->n < 64)
			o->at_us[o->n++] = now;
		off += (ssize_t)(sizeof(*ie) + ie->len);
	}
	return 0;
}

/*
 * The retry delays, seen from outside: the configured path is a regular file, so every attempt
 * opens it (an inotify IN_OPEN) and fails with ENOTTY. Un-jittered delays are 20, 40, 80, 160,
 * then 200 ms; with jitter each lies in [d/2, d].
 */
START_TEST(test_backoff)
{
	struct gw_config_port cfg;
	struct rec r = { 0 };
	struct opens o = { 0 };
	struct gw_serial *s;
	sd_event_source *src = NULL;
	char file[PATH_MAX + 16];
	char line[512] = "";
	int ifd;
	int fd;

	snprintf(file, sizeof(file), "%s/not-a-tty", tmpdir);
	fd = open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	close(fd);
	ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	ck_assert_int_ge(ifd, 0);
	ck_assert_int_ge(inotify_add_watch(ifd, file, IN_OPEN), 0);
	ck_assert_int_eq(sd_event_add_io(ev, &src, ifd, EPOLLIN, on_inotify, &o), 0);

	port_cfg(&cfg, file, 115200);
	o.at_us[o.n++] = gw_now_mono_us();
	s = serial_new_ok(&cfg, &r);
	ck_assert_uint_eq(r.n_reports, 1);
	ck_assert_int_eq(r.reports[0].err, -ENOTTY);
	/* The first attempt's own IN_OPEN: fold it into the timestamp taken just before. */
	run_for(5);
	ck_assert_uint_eq(o.n, 2);
	o.n = 1;

	run_for(1200);
	ck_assert_uint_eq(r.n_reports, 1);
	ck_assert_uint_ge(o.n, 7);
	for (unsigned k = 1; k < o.n; k++) {
		uint32_t d = 20u << (k - 1 < 4 ? k - 1 : 4);
		uint64_t ms = (o.at_us[k] - o.at_us[k - 1]) / 1000;
		size_t len = strlen(line);

		if (d > 200)
			d = 200;
		snprintf(line + len, sizeof(line) - len, " %llu", (unsigned long long)ms);
		/* A timer never fires early; late by a scheduling slice at most. */
		ck_assert_uint_ge(ms + 2, d / 2);
		ck_assert_uint_le(ms, d + 60);
	}
	printf("serial backoff: intervals between attempts (ms):%s\n", line);

	gw_serial_free(s);
	sd_event_source_disable_unref(src);
	close(ifd);
	rec_free(&r);
}
END_TEST

/*
 * USB matching through libserialport's enumeration, on a fake sysfs (test-fixtures.md §3).
 * Only with GW_TEST_FAKE_SYSFS=1 (tests/component/serial-usb.sh) and root: the test unshares its mount
 * namespace and mounts tmpfs over /dev and /sys/class/tty. With CK_FORK=yes that namespace
 * belongs to the forked test process alone and vanishes with it.
 */
static void fake_sysfs_enter(void)
{
	char realdev[PATH_MAX];
	char src[PATH_MAX + 16];

	ck_assert_msg(unshare(CLONE_NEWNS) == 0, "unshare: %s", strerror(errno));
	ck_assert_int_eq(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0);
	snprintf(realdev, sizeof(realdev), "%s/realdev", tmpdir);
	ck_assert_int_eq(mkdir(realdev, 0755), 0);
	ck_assert_int_eq(mount("/dev", realdev, NULL, MS_BIND | MS_REC, NULL), 0);
	ck_assert_int_eq(mount("fakedev", "/dev", "tmpfs", 0, "mode=755"), 0);
	/* openpty() still needs ptmx and pts for the replug below. A bind-mounted ptmx cannot
	 * find its devpts (the kernel looks for "pts" next to it), the usual symlink can. */
	ck_assert_int_eq(symlink("pts/ptmx", "/dev/ptmx"), 0);
	ck_assert_int_eq(mkdir("/dev/pts", 0755), 0);
	snprintf(src, sizeof(src), "%s/pts", realdev);
	ck_assert_int_eq(mount(src, "/dev/pts", NULL, MS_BIND | MS_REC, NULL), 0);
	/* The binds hold on their own; without the mount point teardown can remove the dir. */
	ck_assert_int_eq(umount2(realdev, MNT_DETACH), 0);
	ck_assert_int_eq(rmdir(realdev), 0);
	ck_assert_int_eq(mount("fakesys", "/sys/class/tty", "tmpfs", 0, "mode=755"), 0);
}

static void write_attr(const char *dir, const char *name, const char *value)
{
	char p[PATH_MAX + 64];
	FILE *f;

	if (!value)
		return;
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	f = fopen(p, "we");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "%s\n", value);
	ck_assert_int_eq(fclose(f), 0);
}

static void mkdir_p(const char *path)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s", path);
	for (char *c = p + 1; *c; c++) {
		if (*c != '/')
			continue;
		*c = '\0';
		ck_assert(mkdir(p, 0755) == 0 || errno == EEXIST);
		*c = '/';
	}
	ck_assert(mkdir(p, 0755) == 0 || errno == EEXIST);
}

/* A USB serial adapter as the kernel shows it: /sys/class/tty/NAME links into the USB device's
 * interface, whose parent holds busnum, devnum, idVendor, ... And an empty /dev/NAME. */
static void fake_usb_add(const char *name, const char *usbdev, const char *vid, const char *pid,
			 const char *manufacturer, const char *product, const char *serial)
{
	char rel[256];
	char usb[512];
	char dir[1024];
	char p[1100];

	snprintf(rel, sizeof(rel), ".devices/pci0000:00/0000:00:14.0/usb1/%s", usbdev);
	snprintf(usb, sizeof(usb), "/sys/class/tty/%s", rel);
	snprintf(dir, sizeof(dir), "%s/%s:1.0/%s/tty/%s", usb, usbdev, name, name);
	mkdir_p(dir);
	write_attr(usb, "busnum", "1");
	write_attr(usb, "devnum", "7");
	write_attr(usb, "idVendor", vid);
	write_attr(usb, "idProduct", pid);
	write_attr(usb, "manufacturer", manufacturer);
	write_attr(usb, "product", product);
	write_attr(usb, "serial", serial);
	snprintf(p, sizeof(p), "%s/device", dir);
	ck_assert_int_eq(symlink("../../", p), 0);
	snprintf(p, sizeof(p), "%s/%s:1.0/%s/tty/%s", rel, usbdev, name, name);
	snprintf(dir, sizeof(dir), "/sys/class/tty/%s", name);
	ck_assert_int_eq(symlink(p, dir), 0);
	snprintf(p, sizeof(p), "/dev/%s", name);
	ck_assert_int_eq(mknod(p, S_IFREG | 0600, 0), 0);
}

/* The adapter's tty is the pty's slave. */
static void fake_usb_plug(const char *name, const struct pty *p)
{
	char dev[PATH_MAX];

	snprintf(dev, sizeof(dev), "/dev/%s", name);
	ck_assert_int_eq(mount(p->slave, dev, NULL, MS_BIND, NULL), 0);
}

static void fake_usb_remove(const char *name)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "/dev/%s", name);
	(void)umount2(p, MNT_DETACH);
	ck_assert_int_eq(unlink(p), 0);
	snprintf(p, sizeof(p), "/sys/class/tty/%s", name);
	ck_assert_int_eq(unlink(p), 0);
}

START_TEST(test_usb_match)
{
	static const struct {
		int vid;
		int pid;
		const char *serial;
		const char *description;
		const char *device; /* NULL: no match */
	} cases[] = {
		{ 0x0403, 0x6001, NULL, NULL, "/dev/ttyUSB0" },
		{ 0x0403, -1, "A50285BI", NULL, "/dev/ttyUSB0" },
		{ -1, -1, "STM32NODE42", NULL, "/dev/ttyACM0" },
		{ -1, -1, NULL, "Virtual ComPort", "/dev/ttyACM0" },
		{ 0x0483, 0x5740, "STM32NODE42", "STM32", "/dev/ttyACM0" },
		{ 0x0403, 0x6002, NULL, NULL, NULL },
		{ -1, 0x5740, "A50285BI", NULL, NULL },
		{ 0x1a86, -1, "X", NULL, NULL }, /* ttyUSB1 has no serial at all */
		{ -1, -1, NULL, "no such adapter", NULL },
	};
	struct gw_config_port cfg;
	struct rec r = { 0 };
	struct pty usb0;
	struct pty acm0;
	struct pty usb2;
	struct gw_serial *s;

	fake_sysfs_enter();
	fake_usb_add("ttyUSB0", "1-1", "0403", "6001", "FTDI", "FT232R USB UART", "A50285BI");
	fake_usb_add("ttyUSB1", "1-2", "1a86", "7523", "QinHeng", "USB Serial", NULL);
	fake_usb_add("ttyACM0", "1-3", "0483", "5740", "STMicroelectronics",
		     "STM32 Virtual ComPort", "STM32NODE42");
	pty_open(&usb0);
	fake_usb_plug("ttyUSB0", &usb0);
	pty_open(&acm0);
	fake_usb_plug("ttyACM0", &acm0);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		port_cfg(&cfg, NULL, 115200);
		cfg.match_vid = cases[i].vid;
		cfg.match_pid = cases[i].pid;
		cfg.match_serial = (char *)cases[i].serial;
		cfg.match_description = (char *)cases[i].description;
		s = serial_new_ok(&cfg, &r);
		ck_assert_uint_eq(r.n_reports, 1);
		if (cases[i].device) {
			ck_assert_msg(r.reports[0].state == GW_SERIAL_OPEN, "case %zu: err %d", i,
				      r.reports[0].err);
			ck_assert_str_eq(r.reports[0].device, cases[i].device);
		} else {
			ck_assert_int_eq(r.reports[0].state, GW_SERIAL_ABSENT);
			ck_assert_int_eq(r.reports[0].err, -ENODEV);
			ck_assert(!r.reports[0].has_device);
		}
		gw_serial_free(s);
		rec_free(&r);
	}

	/* The adapter drops off the bus and comes back as ttyUSB2: found again by its serial. */
	port_cfg(&cfg, NULL, 115200);
	cfg.match_serial = (char *)"A50285BI";
	s = serial_new_ok(&cfg, &r);
	ck_assert_str_eq(gw_serial_device(s), "/dev/ttyUSB0");
	pty_send(&usb0, (const uint8_t *)"one", 3);
	r.want_len = 3;
	ck_assert(run_until(pred_rx, &r, 1000));

	pty_close(&usb0);
	fake_usb_remove("ttyUSB0");
	ck_assert(wait_report(&r, GW_SERIAL_ABSENT, -EIO, 1000));
	ck_assert(wait_report(&r, GW_SERIAL_ABSENT, -ENODEV, 1000));
	ck_assert(!r.reports[r.n_reports - 1].has_device);

	fake_usb_add("ttyUSB2", "1-1", "0403", "6001", "FTDI", "FT232R USB UART", "A50285BI");
	pty_open(&usb2);
	fake_usb_plug("ttyUSB2", &usb2);
	r.want_from = r.n_reports;
	r.want_state = GW_SERIAL_OPEN;
	r.want_err = 0;
	ck_assert(run_until(pred_report, &r, 2000));
	ck_assert_str_eq(gw_serial_device(s), "/dev/ttyUSB2");
	pty_send(&usb2, (const uint8_t *)"two", 3);
	r.want_len = 6;
	ck_assert(run_until(pred_rx, &r, 1000));
	ck_assert_mem_eq(r.rx, "onetwo", 6);
	ck_assert_uint_eq(gw_serial_stats(s)->opens, 2);

	gw_serial_free(s);
	rec_free(&r);
	pty_close(&usb2);
	pty_close(&acm0);
}
END_TEST

/* ---- no flush after the first open; new settings on the open fd (issue 14, case 4) ---- */

/* Bytes that wait in a device replugged after an unplug are read, not flushed; new line
 * settings (a reload) keep the fd open and every byte, before and after. */
START_TEST(test_no_flush_after_first_open)
{
	struct gw_config_port cfg, cfg2;
	struct rec r = { 0 };
	struct pty p, p2;
	struct gw_serial *s;
	struct termios tio;
	int fd;

	pty_open(&p);
	link_to(p.slave);
	port_cfg(&cfg, link_path, 115200);
	s = serial_new_ok(&cfg, &r);
	ck_assert_int_eq(gw_serial_get_state(s), GW_SERIAL_OPEN);

	/* new line settings while bytes are on their way */
	ck_assert_int_eq(write(p.master, "abc", 3), 3);
	cfg2 = cfg;
	cfg2.baud = 57600;
	ck_assert_int_eq(gw_serial_reconfigure(s, &cfg2), 0);
	ck_assert_int_eq(write(p.master, "def", 3), 3);
	r.want_len = 6;
	ck_assert(run_until(pred_rx, &r, 1000));
	ck_assert_mem_eq(r.rx, "abcdef", 6);
	ck_assert_uint_eq(gw_serial_stats(s)->opens, 1);
	ck_assert_uint_eq(r.n_reports, 1);
	/* and they took */
	fd = open(p.slave, O_RDWR | O_NOCTTY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(tcgetattr(fd, &tio), 0);
	ck_assert_uint_eq(cfgetispeed(&tio), B57600);
	close(fd);

	/* unplug; the replugged device already holds bytes when it is opened again */
	pty_close(&p);
	ck_assert(wait_report(&r, GW_SERIAL_ABSENT, -EIO, 1000));
	pty_open(&p2);
	ck_assert_int_eq(write(p2.master, "early\n", 6), 6);
	link_to(p2.slave);
	r.want_from = r.n_reports;
	r.want_state = GW_SERIAL_OPEN;
	r.want_err = 0;
	ck_assert(run_until(pred_report, &r, 2000));
	r.want_len = 12;
	ck_assert_msg(run_until(pred_rx, &r, 1000), "the bytes waiting at the reopen were "
		      "flushed (%zu of 12 read)", r.rx_len);
	ck_assert_mem_eq(r.rx + 6, "early\n", 6);

	gw_serial_free(s);
	pty_close(&p2);
	rec_free(&r);
}
END_TEST

/* ---- gw_port: a partial frame at a close is a bad frame (issue 14, case 6) ---- */

struct port_rec {
	unsigned good, bad;
	enum gw_frame_error last_err;
	bool open;
};

static void port_on_frame(struct gw_port *p, const struct gw_frame *f, enum gw_frame_error err,
			  void *ud)
{
	struct port_rec *r = ud;

	if (err == GW_FRAME_OK) {
		r->good++;
		return;
	}
	r->bad++;
	r->last_err = err;
}

static void port_on_state(struct gw_port *p, enum gw_serial_state state, void *ud)
{
	struct port_rec *r = ud;

	r->open = state == GW_SERIAL_OPEN;
}

static bool pred_port_bytes(void *arg)
{
	struct gw_port *p = arg;

	return gw_port_serial_stats(p)->bytes_in >= 24;
}

static bool pred_port_closed(void *arg)
{
	const struct port_rec *r = arg;

	return !r->open;
}

static uint64_t port_bad(const struct gw_port *p)
{
	const struct gw_frame_stats *fs = gw_port_frame_stats(p);
	uint64_t bad = 0;

	for (int e = 1; e < _GW_FRAME_ERR_MAX; e++)
		bad += fs->errors[e];
	return bad;
}

/* A line cut off by an unplug, and one cut off by closing the port (a stop or a reload that
 * must reopen it), each count as a bad frame and reach the owner, which logs it. */
START_TEST(test_port_partial_line)
{
	static const char text[] = "MQ2=30\r\nMQ135=95,DHT"; /* one line and 13 bytes of one */
	struct gw_config_port cfg;
	struct port_rec r = { 0 };
	struct gw_port *p = NULL;
	struct pty pt;

	for (int how = 0; how < 2; how++) {
		memset(&r, 0, sizeof(r));
		pty_open(&pt);
		(void)unlink(link_path);
		link_to(pt.slave);
		port_cfg(&cfg, link_path, 115200);
		cfg.framing = GW_FRAMING_TEXT;
		ck_assert_int_eq(gw_port_new(ev, &cfg, port_on_frame, port_on_state, &r, &p), 0);
		ck_assert(r.open);
		ck_assert_int_eq(write(pt.master, text, strlen(text)), (ssize_t)strlen(text));
		ck_assert_int_eq(write(pt.master, "_T=2", 4), 4);
		ck_assert(run_until(pred_port_bytes, p, 1000));
		ck_assert_uint_eq(r.good, 1);
		ck_assert_uint_eq(r.bad, 0);
		if (how == 0) {
			/* unplug */
			pty_close(&pt);
			ck_assert(run_until(pred_port_closed, &r, 1000));
			ck_assert_msg(r.bad == 1, "a half line at an unplug was not counted (bad "
				      "frames %u)", r.bad);
			ck_assert_uint_eq(port_bad(p), 1);
			gw_port_free(p);
		} else {
			/* closed by its owner */
			p = gw_port_free(p);
			ck_assert_msg(r.bad == 1, "a half line at a close was not counted (bad "
				      "frames %u)", r.bad);
			pty_close(&pt);
		}
		ck_assert_uint_eq(r.good, 1);
	}
}
END_TEST

static Suite *serial_suite(void)
{
	Suite *su = suite_create("serial");
	TCase *tc = tcase_create("pty");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 15);
	tcase_add_test(tc, test_data_in);
	tcase_add_test(tc, test_termios_options);
	tcase_add_test(tc, test_unplug_replug);
	tcase_add_test(tc, test_missing_at_start);
	tcase_add_test(tc, test_exclusive_lock);
	tcase_add_test(tc, test_write);
	tcase_add_test(tc, test_baud_to_speed);
	tcase_add_test(tc, test_bad_config);
	tcase_add_test(tc, test_usb_no_match);
	tcase_add_test(tc, test_backoff);
	suite_add_tcase(su, tc);

	tc = tcase_create("port");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 15);
	tcase_add_test(tc, test_port_partial_line);
	tcase_add_test(tc, test_no_flush_after_first_open);
	suite_add_tcase(su, tc);

	if (getenv("GW_TEST_FAKE_SYSFS")) {
		tc = tcase_create("usb-sysfs");
		tcase_add_checked_fixture(tc, setup, teardown);
		tcase_set_timeout(tc, 15);
		tcase_add_test(tc, test_usb_match);
		suite_add_tcase(su, tc);
	}
	return su;
}

int main(void)
{
	return ck_run_suite(serial_suite());
}
