/* SPDX-License-Identifier: MIT */
/*
 * Serial ports on the event loop: finds the device (path or USB match), opens and configures it
 * with termios, holds an exclusive lock, delivers bytes, queues writes, and reopens on a backoff
 * timer after the device goes away.
 *
 * Flushing: the input queue is flushed (tcflush TCIFLUSH|TCOFLUSH) only at the first open of
 * the object, the start of sensorgwd's session with the device: bytes that were waiting
 * before it owned the line belong to no session it can account for (half a frame from a
 * previous reader). Never afterwards: a reopen after an unplug takes the new device's bytes
 * from its very first one, and gw_serial_reconfigure() (a reload) keeps the open fd and only
 * changes its termios, so nothing that arrived is thrown away.
 *
 * Callbacks (data_fn, state_fn) run from inside this module's event sources. They may call
 * gw_serial_write() and the getters, but must not call gw_serial_free() on the same object: the
 * dispatching code still uses it after the callback returns.
 */

#include <errno.h>
#include <fcntl.h>
#include <libserialport.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "gw/serial.h"
#include "gw/tty.h"
#include "gw/util.h"

/* One EPOLLIN dispatch reads at most this much, so a port that never stops talking cannot starve
 * the other sources; epoll is level-triggered and brings us back on the next iteration. */
#define SERIAL_READ_CHUNK 4096
#define SERIAL_READS_PER_DISPATCH 64
#define SERIAL_WRITE_QUEUE_MAX (64 * 1024)
/* sd-event's default accuracy (250 ms) would swallow retry delays of a few tens of ms. */
#define SERIAL_RETRY_ACCURACY_USEC 1000

struct gw_serial {
	sd_event *event;
	const struct gw_config_port *cfg;
	gw_serial_data_fn data_fn;
	gw_serial_state_fn state_fn;
	void *user_data;
	speed_t speed;

	enum gw_serial_state state;
	/* What state_fn was last told, so that a retry failing the same way stays quiet. */
	bool reported;
	enum gw_serial_state reported_state;
	int reported_err;

	int fd;
	char *device; /* resolved path while open */
	sd_event_source *io;
	uint32_t io_events;     /* what io watches now */
	bool held;              /* batching: read by gw_serial_poll(), not on EPOLLIN */
	sd_event_source *retry; /* created once, armed as SD_EVENT_ONESHOT while absent */
	uint32_t backoff_ms;    /* un-jittered, so growth does not depend on the dice */
	bool opened_once;       /* after the first open nothing is flushed any more */

	uint8_t *wq; /* SERIAL_WRITE_QUEUE_MAX bytes, allocated on first write */
	size_t wq_head;
	size_t wq_len;

	struct gw_serial_stats stats;
};

static const struct {
	uint32_t baud;
	speed_t speed;
} baud_table[] = {
	{ 50, B50 },         { 75, B75 },         { 110, B110 },       { 134, B134 },
	{ 150, B150 },       { 200, B200 },       { 300, B300 },       { 600, B600 },
	{ 1200, B1200 },     { 1800, B1800 },     { 2400, B2400 },     { 4800, B4800 },
	{ 9600, B9600 },     { 19200, B19200 },   { 38400, B38400 },   { 57600, B57600 },
	{ 115200, B115200 }, { 230400, B230400 }, { 460800, B460800 }, { 500000, B500000 },
	{ 576000, B576000 }, { 921600, B921600 },
};

unsigned gw_serial_baud_to_speed(uint32_t baud)
{
	for (size_t i = 0; i < sizeof(baud_table) / sizeof(baud_table[0]); i++)
		if (baud_table[i].baud == baud)
			return baud_table[i].speed;
	return 0;
}

static void serial_report(struct gw_serial *s, int err, const char *device, uint32_t retry_ms)
{
	s->reported = true;
	s->reported_state = s->state;
	s->reported_err = err;
	if (s->state_fn)
		s->state_fn(s, s->state, err, device, retry_ms, s->user_data);
}

static int serial_update_events(struct gw_serial *s)
{
	uint32_t events = (s->held ? 0 : EPOLLIN) | (s->wq_len > 0 ? EPOLLOUT : 0);
	int r;

	if (!s->io || events == s->io_events)
		return 0;
	/* with no events epoll still reports a hang-up or an error: an unplug is seen at once */
	r = sd_event_source_set_io_events(s->io, events);
	if (r < 0)
		return r;
	s->io_events = events;
	return 0;
}

/* Removes the fd from the loop before closing it: epoll would otherwise keep a stale entry, and
 * the fd number may be reused by the next open. */
static void serial_close_fd(struct gw_serial *s)
{
	s->io = sd_event_source_disable_unref(s->io);
	s->io_events = 0;
	if (s->fd >= 0) {
		close(s->fd);
		s->fd = -1;
	}
	/* Queued bytes were meant for the device that went away; a command replayed to whatever
	 * appears next could do harm. */
	s->wq_head = 0;
	s->wq_len = 0;
	free(s->device);
	s->device = NULL;
}

static void serial_go_absent(struct gw_serial *s, int err, const char *device)
{
	uint32_t delay;
	int r;

	s->state = GW_SERIAL_ABSENT;
	s->backoff_ms = gw_backoff_next(s->backoff_ms, s->cfg->reopen_min_ms,
					s->cfg->reopen_max_ms);
	delay = gw_backoff_jitter(s->backoff_ms);
	r = sd_event_source_set_time_relative(s->retry, (uint64_t)delay * 1000);
	if (r >= 0)
		r = sd_event_source_set_enabled(s->retry, SD_EVENT_ONESHOT);
	if (r < 0) {
		/* Nothing will retry: say so with the loop's error rather than the device's. */
		err = r;
		delay = 0;
	}
	if (s->reported && s->reported_state == GW_SERIAL_ABSENT && s->reported_err == err)
		return;
	serial_report(s, err, device, delay);
}

static void serial_hangup(struct gw_serial *s, int err)
{
	char *device = s->device;

	/* Keep the name for the report; serial_close_fd() would free it. */
	s->device = NULL;
	serial_close_fd(s);
	s->stats.closes++;
	serial_go_absent(s, err, device);
	free(device);
}

/* Returns 0 when drained to EAGAIN, 1 when the per-dispatch bound stopped us with data maybe
 * left, or a negative errno when the device is gone (EOF counts: a tty reads 0 after hang-up). */
/*
 * Reads what is there. A short read ends it without the read that would say EAGAIN: the
 * source is level-triggered, so bytes that come later wake us again, and at a few hundred
 * frames a second that read was one syscall in ten. Not after a hang-up (hup): then every
 * byte that arrived before it is read first.
 */
static int serial_drain(struct gw_serial *s, bool hup)
{
	uint8_t buf[SERIAL_READ_CHUNK];

	for (unsigned i = 0; i < SERIAL_READS_PER_DISPATCH; i++) {
		ssize_t n = read(s->fd, buf, sizeof(buf));

		if (n > 0) {
			s->stats.bytes_in += (uint64_t)n;
			if (s->data_fn)
				s->data_fn(s, buf, (size_t)n, s->user_data);
			if ((size_t)n < sizeof(buf) && !hup)
				return 0;
			continue;
		}
		if (n == 0)
			return -EIO;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN)
			return 0;
		return -errno;
	}
	return 1;
}

static int serial_flush(struct gw_serial *s)
{
	while (s->wq_len > 0) {
		ssize_t n = write(s->fd, s->wq + s->wq_head, s->wq_len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return 0;
			return -errno;
		}
		s->wq_head += (size_t)n;
		s->wq_len -= (size_t)n;
		s->stats.bytes_out += (uint64_t)n;
	}
	s->wq_head = 0;
	return serial_update_events(s);
}

static int serial_on_io(sd_event_source *src, int fd, uint32_t revents, void *userdata)
{
	struct gw_serial *s = userdata;
	int r = 0;

	if (revents & EPOLLIN) {
		r = serial_drain(s, revents & (EPOLLHUP | EPOLLERR));
		if (r < 0)
			goto gone;
	}
	if (revents & (EPOLLHUP | EPOLLERR)) {
		/* Read whatever arrived before the hang-up first; come back for the rest. */
		if (r > 0)
			return 0;
		r = -EIO;
		goto gone;
	}
	if (revents & EPOLLOUT) {
		r = serial_flush(s);
		if (r < 0)
			goto gone;
	}
	return 0;

gone:
	serial_hangup(s, r);
	return 0;
}

/* realpath() at every attempt: a /dev/serial/by-id link (or a test's link to a pty) may point
 * somewhere else after the device came back. */
static int serial_find_path(const char *path, char **ret)
{
	char *real = realpath(path, NULL);

	if (!real)
		return -errno;
	*ret = real;
	return 0;
}

static bool serial_usb_matches(const struct gw_config_port *cfg, const struct sp_port *p)
{
	const char *str;
	int vid;
	int pid;

	if (sp_get_port_transport(p) != SP_TRANSPORT_USB)
		return false;
	if (cfg->match_vid >= 0 || cfg->match_pid >= 0) {
		if (sp_get_port_usb_vid_pid(p, &vid, &pid) != SP_OK)
			return false;
		if (cfg->match_vid >= 0 && vid != cfg->match_vid)
			return false;
		if (cfg->match_pid >= 0 && pid != cfg->match_pid)
			return false;
	}
	if (cfg->match_serial) {
		str = sp_get_port_usb_serial(p);
		if (!str || strcmp(str, cfg->match_serial) != 0)
			return false;
	}
	if (cfg->match_description) {
		str = sp_get_port_description(p);
		if (!str || !strstr(str, cfg->match_description))
			return false;
	}
	return true;
}

/* libserialport only enumerates here; it cannot open ptys and we want one open path for all. */
static int serial_find_usb(const struct gw_config_port *cfg, char **ret)
{
	struct sp_port **ports = NULL;
	enum sp_return sr;
	int r = -ENODEV;

	sr = sp_list_ports(&ports);
	if (sr != SP_OK)
		return sr == SP_ERR_MEM ? -ENOMEM : -EIO;
	for (size_t i = 0; ports[i]; i++) {
		const char *name;

		if (!serial_usb_matches(cfg, ports[i]))
			continue;
		name = sp_get_port_name(ports[i]);
		if (!name)
			continue;
		*ret = gw_strdup(name);
		r = 0;
		break;
	}
	sp_free_port_list(ports);
	return r;
}

static tcflag_t serial_csize(uint8_t data_bits)
{
	switch (data_bits) {
	case 5:
		return CS5;
	case 6:
		return CS6;
	case 7:
		return CS7;
	default:
		return CS8;
	}
}

static int serial_configure(const struct gw_serial *s, int fd, bool flush)
{
	const struct gw_config_port *cfg = s->cfg;
	struct termios tio;

	if (tcgetattr(fd, &tio) < 0)
		return -errno;
	cfmakeraw(&tio);
	tio.c_cflag &= ~(tcflag_t)(CSIZE | PARENB | PARODD | CSTOPB | CRTSCTS);
	tio.c_cflag |= serial_csize(cfg->data_bits) | CLOCAL | CREAD;
	/* Parity is generated and stripped but not checked (no INPCK): a bad byte would become
	 * a NUL anyway, and the frame layer's CRC rejects the frame either way. */
	switch (cfg->parity) {
	case GW_PARITY_NONE:
		break;
	case GW_PARITY_ODD:
		tio.c_cflag |= PARENB | PARODD;
		break;
	case GW_PARITY_EVEN:
		tio.c_cflag |= PARENB;
		break;
	}
	if (cfg->stop_bits == 2)
		tio.c_cflag |= CSTOPB;
	tio.c_iflag &= ~(tcflag_t)(IXON | IXOFF | IXANY);
	switch (cfg->flow) {
	case GW_FLOW_NONE:
		break;
	case GW_FLOW_RTSCTS:
		tio.c_cflag |= CRTSCTS;
		break;
	case GW_FLOW_XONXOFF:
		tio.c_iflag |= IXON | IXOFF;
		break;
	}
	tio.c_cc[VMIN] = 1;
	tio.c_cc[VTIME] = 0;
	if (cfsetispeed(&tio, s->speed) < 0 || cfsetospeed(&tio, s->speed) < 0)
		return -errno;
	if (tcsetattr(fd, TCSANOW, &tio) < 0)
		return -errno;
	/* Drop what the line collected before we owned it: half a frame from an old session.
	 * Only at the first open (see the top of the file). */
	if (flush && tcflush(fd, TCIOFLUSH) < 0)
		return -errno;
	/* tcsetattr() reports success when any of the changes took; a driver may refuse a rate. */
	if (tcgetattr(fd, &tio) < 0)
		return -errno;
	if (cfgetispeed(&tio) != s->speed || cfgetospeed(&tio) != s->speed)
		return -EINVAL;
	return 0;
}

/*
 * A false positive of gcc -fanalyzer and clang-analyzer: device is set whenever
 * serial_find_path() or serial_find_usb() return >= 0, but they do not know that errno is
 * positive after a failed realpath(), so they follow a "-errno >= 0" path with device NULL.
 */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wanalyzer-null-argument"
#endif
static int serial_open_device(const struct gw_serial *s, const char *device, int *ret_fd)
{
	int fd;
	int r;

	/* O_NONBLOCK also keeps open() from waiting for carrier on a modem-controlled line. */
	/* NOLINTNEXTLINE(clang-analyzer-core.NonNullParamChecker): see above */
	fd = open(device, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (!isatty(fd)) {
		r = -ENOTTY;
		goto fail;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		r = errno == EWOULDBLOCK ? -EBUSY : -errno;
		goto fail;
	}
	/* flock() keeps out cooperating programs; TIOCEXCL makes the kernel refuse other opens by
	 * unprivileged ones. Best effort: the lock above is what we rely on. */
	(void)ioctl(fd, TIOCEXCL);
	r = serial_configure(s, fd, !s->opened_once);
	if (r < 0)
		goto fail;
	*ret_fd = fd;
	return 0;

fail:
	close(fd);
	return r;
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

/* -EPERM for an active console, -EBUSY for a login's line (gw/tty.h), counted with the
 * reason; else 0. Two codes, so that a change from one to the other is reported. */
static int serial_check_use(struct gw_serial *s, const char *device)
{
	char why[sizeof(s->stats.refused_why)];
	int u = gw_tty_use(device, NULL, why, sizeof(why));

	if (u <= GW_TTY_FREE)
		return 0; /* free, or gone: open() says which */
	s->stats.refused++;
	memcpy(s->stats.refused_why, why, sizeof(why));
	return u == GW_TTY_CONSOLE ? -EPERM : -EBUSY;
}

static void serial_attempt(struct gw_serial *s)
{
	char *device = NULL;
	int fd = -1;
	int r;

	if (s->cfg->path)
		r = serial_find_path(s->cfg->path, &device);
	else
		r = serial_find_usb(s->cfg, &device);
	if (r >= 0)
		r = serial_check_use(s, device);
	if (r >= 0)
		r = serial_open_device(s, device, &fd);
	if (r >= 0)
		r = sd_event_add_io(s->event, &s->io, fd, EPOLLIN, serial_on_io, s);
	if (r < 0) {
		if (fd >= 0)
			close(fd);
		serial_go_absent(s, r, device ? device : s->cfg->path);
		free(device);
		return;
	}
	(void)sd_event_source_set_description(s->io, "serial-io");
	s->io_events = EPOLLIN;
	(void)serial_update_events(s);
	s->fd = fd;
	s->device = device;
	s->state = GW_SERIAL_OPEN;
	s->backoff_ms = 0;
	s->opened_once = true;
	s->stats.opens++;
	/* Always reported, unlike repeated failures: the caller counts and logs reconnects. */
	serial_report(s, 0, s->device, 0);
}

static int serial_on_retry(sd_event_source *src, uint64_t usec, void *userdata)
{
	serial_attempt(userdata);
	return 0;
}

static bool serial_config_valid(const struct gw_config_port *cfg)
{
	if (gw_serial_baud_to_speed(cfg->baud) == 0)
		return false;
	if (cfg->data_bits < 5 || cfg->data_bits > 8)
		return false;
	if (cfg->stop_bits != 1 && cfg->stop_bits != 2)
		return false;
	if ((unsigned)cfg->parity > GW_PARITY_EVEN || (unsigned)cfg->flow > GW_FLOW_XONXOFF)
		return false;
	/* Without a path or any USB criterion we would grab whichever adapter comes first. */
	if (!cfg->path && cfg->match_vid < 0 && cfg->match_pid < 0 && !cfg->match_serial &&
	    !cfg->match_description)
		return false;
	return true;
}

int gw_serial_new(sd_event *event, const struct gw_config_port *cfg, gw_serial_data_fn data_fn,
		  gw_serial_state_fn state_fn, void *user_data, struct gw_serial **ret)
{
	struct gw_serial *s;
	int r;

	if (!event || !cfg || !ret)
		return -EINVAL;
	if (!serial_config_valid(cfg))
		return -EINVAL;

	s = gw_new0(struct gw_serial, 1);
	s->event = sd_event_ref(event);
	s->cfg = cfg;
	s->data_fn = data_fn;
	s->state_fn = state_fn;
	s->user_data = user_data;
	s->speed = gw_serial_baud_to_speed(cfg->baud);
	s->state = GW_SERIAL_ABSENT;
	s->fd = -1;

	/* The retry timer exists for the object's whole life, so that arming it later cannot
	 * fail for lack of memory while the device is gone. */
	r = sd_event_add_time_relative(event, &s->retry, CLOCK_MONOTONIC, 0,
				       SERIAL_RETRY_ACCURACY_USEC, serial_on_retry, s);
	if (r < 0)
		goto fail;
	r = sd_event_source_set_enabled(s->retry, SD_EVENT_OFF);
	if (r < 0)
		goto fail;
	(void)sd_event_source_set_description(s->retry, "serial-retry");

	serial_attempt(s);
	*ret = s;
	return 0;

fail:
	gw_serial_free(s);
	return r;
}

struct gw_serial *gw_serial_free(struct gw_serial *s)
{
	if (!s)
		return NULL;
	serial_close_fd(s);
	s->retry = sd_event_source_disable_unref(s->retry);
	sd_event_unref(s->event);
	free(s->wq);
	free(s);
	return NULL;
}

/* Whether a and b find the same device. */
static bool serial_same_device(const struct gw_config_port *a, const struct gw_config_port *b)
{
	return gw_streq_null(a->path, b->path) && a->match_vid == b->match_vid &&
	       a->match_pid == b->match_pid && gw_streq_null(a->match_serial, b->match_serial) &&
	       gw_streq_null(a->match_description, b->match_description);
}

int gw_serial_reconfigure(struct gw_serial *s, const struct gw_config_port *cfg)
{
	bool same;
	int r;

	if (!s || !cfg || !serial_config_valid(cfg))
		return -EINVAL;
	same = serial_same_device(s->cfg, cfg);
	s->cfg = cfg;
	s->speed = gw_serial_baud_to_speed(cfg->baud);
	if (s->state == GW_SERIAL_OPEN && same) {
		/* the same device stays open: new line settings, nothing flushed */
		r = serial_configure(s, s->fd, false);
		if (r >= 0)
			return 0;
		/* the driver refused them: find it again as at an unplug, with the new ones */
		serial_hangup(s, r);
		return r;
	}
	if (s->state == GW_SERIAL_OPEN) {
		/* another device: this one is let go (not a hang-up: not counted in closes) */
		serial_close_fd(s);
		s->state = GW_SERIAL_ABSENT;
	}
	(void)sd_event_source_set_enabled(s->retry, SD_EVENT_OFF);
	s->backoff_ms = 0;
	s->reported = false;
	serial_attempt(s);
	return 1;
}

void gw_serial_hold(struct gw_serial *s, bool hold)
{
	if (!s || s->held == hold)
		return;
	s->held = hold;
	(void)serial_update_events(s);
}

size_t gw_serial_poll(struct gw_serial *s)
{
	uint64_t before;
	int r;

	if (!s || s->state != GW_SERIAL_OPEN)
		return 0;
	before = s->stats.bytes_in;
	r = serial_drain(s, false);
	if (r < 0)
		serial_hangup(s, r);
	return (size_t)(s->stats.bytes_in - before);
}

int gw_serial_write(struct gw_serial *s, const uint8_t *buf, size_t len)
{
	int r;

	if (!s || (!buf && len > 0))
		return -EINVAL;
	if (s->state != GW_SERIAL_OPEN)
		return -ENOTCONN;
	if (len == 0)
		return 0;
	if (len > SERIAL_WRITE_QUEUE_MAX - s->wq_len)
		return -ENOBUFS;
	if (!s->wq)
		s->wq = gw_malloc0(SERIAL_WRITE_QUEUE_MAX);
	if (s->wq_head + s->wq_len + len > SERIAL_WRITE_QUEUE_MAX) {
		memmove(s->wq, s->wq + s->wq_head, s->wq_len);
		s->wq_head = 0;
	}
	memcpy(s->wq + s->wq_head + s->wq_len, buf, len);
	s->wq_len += len;
	/* Only queue here and let EPOLLOUT do the writing: a write error found now would have to
	 * close the port and call state_fn from inside the caller's own call. */
	r = serial_update_events(s);
	if (r < 0) {
		s->wq_len -= len;
		return r;
	}
	return 0;
}

enum gw_serial_state gw_serial_get_state(const struct gw_serial *s)
{
	return s->state;
}

const char *gw_serial_name(const struct gw_serial *s)
{
	return s->cfg->name;
}

const char *gw_serial_device(const struct gw_serial *s)
{
	return s->state == GW_SERIAL_OPEN ? s->device : NULL;
}

const struct gw_serial_stats *gw_serial_stats(const struct gw_serial *s)
{
	return &s->stats;
}
