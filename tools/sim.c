/* SPDX-License-Identifier: MIT */
/*
 * sensorgw-sim: a simulated STM32 sensor node (or a bus of them) for demos and tests.
 *
 * It owns one end of a serial line (the master of a new pty, or an existing tty), emits
 * telemetry frames at an exact rate in text or binary framing, optionally mixes in line noise
 * and corrupted frames, and in binary framing answers the gateway's commands. Binary frames are
 * built with the node library, exactly as firmware builds them.
 */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "gw-build.h"
#include "sgw_node.h"

#define SIM_MAX_NODES 255
#define SIM_FW_VERSION "sim-" GW_VERSION
#define SIM_TEXT_MAX 256
#define SIM_NOISE_MAX 48
/* A frame that cannot be written within this time is dropped, as a UART with nobody listening
 * would lose it; the simulator must not stall forever on a reader that went away. */
#define SIM_WRITE_TIMEOUT_NS 1000000000LL
/* When the loop falls further behind than this (SIGSTOP, a debugger), rebase the schedule
 * instead of bursting out every missed frame at once. */
#define SIM_MAX_LAG_NS 1000000000LL
#define NSEC_PER_SEC 1000000000LL
/* Time a new reader gets to configure the line (termios, input flush) before the first byte. */
#define SIM_SETTLE_NS 200000000LL
/* While nobody has the pty open the master reports POLLHUP constantly, so it cannot be polled;
 * the simulator sleeps in steps of this length and looks again. */
#define SIM_NO_READER_STEP_NS 50000000LL

enum framing {
	FRAMING_TEXT,
	FRAMING_BINARY,
};

enum sensor {
	S_MQ2,
	S_MQ135,
	S_MQ4,
	S_MQ7,
	S_DHT11_T,
	S_DHT11_H,
	S_COUNT,
};

struct sensor_model {
	const char *key;
	double min, max;
	double step; /* typical change per frame */
};

/* Ranges a demo audience would find believable for an indoor room with the usual hobby
 * sensors: gas sensors report a raw ppm-ish integer, the DHT11 a coarse temperature/humidity. */
static const struct sensor_model sensors[S_COUNT] = {
	[S_MQ2] = { "MQ2", 20, 60, 1.5 },
	[S_MQ135] = { "MQ135", 80, 200, 3.0 },
	[S_MQ4] = { "MQ4", 5, 40, 1.0 },
	[S_MQ7] = { "MQ7", 2, 30, 0.8 },
	[S_DHT11_T] = { "DHT11_T", 10, 35, 0.15 },
	[S_DHT11_H] = { "DHT11_H", 20, 90, 0.8 },
};

struct node {
	uint8_t addr;
	uint8_t uid[SGW_UID_SIZE];
	uint32_t boot;
	uint16_t seq; /* binary: next packet sequence number */
	double val[S_COUNT];
	double center[S_COUNT]; /* each node drifts around its own point */
	bool led;
	int64_t period_ns;
	int64_t next_ns; /* absolute CLOCK_MONOTONIC deadline of the next telemetry frame */
	uint64_t sent;
};

struct options {
	const char *tty;
	const char *link;
	enum framing framing;
	double rate;
	uint64_t count; /* 0 = unlimited */
	unsigned nodes;
	int addr; /* -1 = not given */
	bool have_uid;
	uint8_t uid[SGW_UID_SIZE];
	double noise;
	double crc_errors;
	uint64_t seed;
	bool have_seed;
	speed_t speed;
	unsigned long baud;
};

struct stats {
	uint64_t frames;
	uint64_t hellos;
	uint64_t noise;
	uint64_t corrupted;
	uint64_t dropped;
	uint64_t commands;
	uint64_t rx_errors;
};

struct sim {
	struct options opt;
	int fd;       /* the end we write frames to and read commands from */
	bool is_pty;
	bool no_reader; /* --pty: nobody has the slave open, frames go nowhere */
	unsigned attachments; /* --pty: times a reader appeared */
	char pty_name[PATH_MAX];
	char link_target[PATH_MAX];
	bool link_made;
	uint64_t rng;
	struct node *nodes;
	struct sgw_rx rx;
	struct stats st;
	int64_t start_ns;
	sigset_t run_mask; /* the mask ppoll() waits with: SIGINT/SIGTERM deliverable */
};

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
	stop_signal = sig;
}

static void warnx_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void warnx_(const char *fmt, ...)
{
	va_list ap;

	fputs("sensorgw-sim: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---- randomness: splitmix64, so a --seed replays the same run on every libc ---- */

static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static double rng_unit(uint64_t *s)
{
	return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0);
}

static uint32_t rng_below(uint64_t *s, uint32_t n)
{
	return n ? (uint32_t)(rng_next(s) % n) : 0;
}

static bool rng_chance(uint64_t *s, double p)
{
	return p > 0 && rng_unit(s) < p;
}

/* Roughly normal, mean 0, sd 1 (Irwin-Hall): smooth enough for a drifting sensor. */
static double rng_gauss(uint64_t *s)
{
	double sum = 0;

	for (int i = 0; i < 12; i++)
		sum += rng_unit(s);
	return sum - 6.0;
}

/* ---- time ---- */

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * NSEC_PER_SEC + ts.tv_nsec;
}

static struct timespec ns_to_ts(int64_t ns)
{
	struct timespec ts;

	if (ns < 0)
		ns = 0;
	ts.tv_sec = (time_t)(ns / NSEC_PER_SEC);
	ts.tv_nsec = (long)(ns % NSEC_PER_SEC);
	return ts;
}

/* ---- option parsing ---- */

static int parse_double(const char *s, double min, double max, double *ret)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v < min || v > max)
		return -EINVAL;
	*ret = v;
	return 0;
}

static int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *ret)
{
	char *end;
	unsigned long long v;

	if (*s == '-' || *s == '\0')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*ret = v;
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int parse_uid(const char *s, uint8_t uid[SGW_UID_SIZE])
{
	if (strlen(s) != 2 * SGW_UID_SIZE)
		return -EINVAL;
	for (size_t i = 0; i < SGW_UID_SIZE; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		uid[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

static const struct {
	unsigned long baud;
	speed_t speed;
} bauds[] = {
	{ 1200, B1200 },       { 2400, B2400 },       { 4800, B4800 },
	{ 9600, B9600 },       { 19200, B19200 },     { 38400, B38400 },
	{ 57600, B57600 },     { 115200, B115200 },   { 230400, B230400 },
	{ 460800, B460800 },   { 500000, B500000 },   { 576000, B576000 },
	{ 921600, B921600 },   { 1000000, B1000000 }, { 1500000, B1500000 },
	{ 2000000, B2000000 },
};

static int parse_baud(const char *s, struct options *o)
{
	uint64_t v;

	if (parse_u64(s, 1, 4000000, &v) < 0)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(bauds) / sizeof(bauds[0]); i++) {
		if (bauds[i].baud == v) {
			o->baud = bauds[i].baud;
			o->speed = bauds[i].speed;
			return 0;
		}
	}
	return -EINVAL;
}

static void usage(FILE *f)
{
	fputs("Usage: sensorgw-sim [OPTION]...\n"
	      "Simulate STM32 sensor nodes on a serial line for sensorgwd.\n"
	      "\n"
	      "  -p, --pty              create a pty and print \"PTY /dev/pts/N\" (default)\n"
	      "  -t, --tty PATH         use an existing tty instead (socat pair end, real UART)\n"
	      "  -l, --link PATH        keep a symlink PATH pointing at the line in use\n"
	      "  -f, --framing MODE     text (default) or binary\n"
	      "  -r, --rate N           telemetry frames per second, all nodes together (1)\n"
	      "  -c, --count N          stop after N telemetry frames (0 = never, default)\n"
	      "  -n, --nodes N          simulate N nodes, round-robin (1..255, default 1)\n"
	      "  -a, --addr A           address of the first node (0..254)\n"
	      "  -u, --uid HEX24        96-bit UID of the first node, 24 hex digits\n"
	      "  -N, --noise P          probability of a garbage burst between frames (0..1)\n"
	      "  -E, --crc-errors P     probability of corrupting a frame (0..1)\n"
	      "  -s, --seed S           seed of the random walk, noise and corruption\n"
	      "  -b, --baud B           line speed for --tty (default 115200)\n"
	      "  -h, --help             show this help and exit\n"
	      "  -V, --version          show the version and exit\n",
	      f);
}

static int parse_args(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "pty", no_argument, NULL, 'p' },
		{ "tty", required_argument, NULL, 't' },
		{ "link", required_argument, NULL, 'l' },
		{ "framing", required_argument, NULL, 'f' },
		{ "rate", required_argument, NULL, 'r' },
		{ "count", required_argument, NULL, 'c' },
		{ "nodes", required_argument, NULL, 'n' },
		{ "addr", required_argument, NULL, 'a' },
		{ "uid", required_argument, NULL, 'u' },
		{ "noise", required_argument, NULL, 'N' },
		{ "crc-errors", required_argument, NULL, 'E' },
		{ "seed", required_argument, NULL, 's' },
		{ "baud", required_argument, NULL, 'b' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	bool pty = false;
	uint64_t v;
	int c;

	*o = (struct options){
		.framing = FRAMING_TEXT,
		.rate = 1.0,
		.nodes = 1,
		.addr = -1,
		.speed = B115200,
		.baud = 115200,
	};

	while ((c = getopt_long(argc, argv, "pt:l:f:r:c:n:a:u:N:E:s:b:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			pty = true;
			break;
		case 't':
			o->tty = optarg;
			break;
		case 'l':
			if (!*optarg) {
				warnx_("--link needs a path");
				return -EINVAL;
			}
			o->link = optarg;
			break;
		case 'f':
			if (!strcmp(optarg, "text")) {
				o->framing = FRAMING_TEXT;
			} else if (!strcmp(optarg, "binary")) {
				o->framing = FRAMING_BINARY;
			} else {
				warnx_("--framing must be text or binary, not '%s'", optarg);
				return -EINVAL;
			}
			break;
		case 'r':
			if (parse_double(optarg, 1e-3, 100000, &o->rate) < 0) {
				warnx_("--rate must be a number of frames per second in "
				       "0.001..100000, not '%s'", optarg);
				return -EINVAL;
			}
			break;
		case 'c':
			if (parse_u64(optarg, 0, UINT64_MAX, &o->count) < 0) {
				warnx_("--count must be a non-negative integer, not '%s'", optarg);
				return -EINVAL;
			}
			break;
		case 'n':
			if (parse_u64(optarg, 1, SIM_MAX_NODES, &v) < 0) {
				warnx_("--nodes must be 1..%d, not '%s'", SIM_MAX_NODES, optarg);
				return -EINVAL;
			}
			o->nodes = (unsigned)v;
			break;
		case 'a':
			if (parse_u64(optarg, 0, SGW_ADDR_BROADCAST - 1, &v) < 0) {
				warnx_("--addr must be 0..%d, not '%s'", SGW_ADDR_BROADCAST - 1,
				       optarg);
				return -EINVAL;
			}
			o->addr = (int)v;
			break;
		case 'u':
			if (parse_uid(optarg, o->uid) < 0) {
				warnx_("--uid must be exactly 24 hex digits, not '%s'", optarg);
				return -EINVAL;
			}
			o->have_uid = true;
			break;
		case 'N':
			if (parse_double(optarg, 0, 1, &o->noise) < 0) {
				warnx_("--noise must be a probability 0..1, not '%s'", optarg);
				return -EINVAL;
			}
			break;
		case 'E':
			if (parse_double(optarg, 0, 1, &o->crc_errors) < 0) {
				warnx_("--crc-errors must be a probability 0..1, not '%s'", optarg);
				return -EINVAL;
			}
			break;
		case 's':
			if (parse_u64(optarg, 0, UINT64_MAX, &o->seed) < 0) {
				warnx_("--seed must be a non-negative integer, not '%s'", optarg);
				return -EINVAL;
			}
			o->have_seed = true;
			break;
		case 'b':
			if (parse_baud(optarg, o) < 0) {
				warnx_("--baud must be a standard rate (9600, 115200, ...), "
				       "not '%s'", optarg);
				return -EINVAL;
			}
			break;
		case 'h':
			usage(stdout);
			exit(EXIT_SUCCESS);
		case 'V':
			printf("sensorgw-sim %s\n", GW_VERSION);
			exit(EXIT_SUCCESS);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		warnx_("unexpected argument '%s'", argv[optind]);
		return -EINVAL;
	}
	if (pty && o->tty) {
		warnx_("--pty and --tty exclude each other");
		return -EINVAL;
	}
	{
		int first = o->addr < 0 ? 1 : o->addr;

		if (first + (int)o->nodes - 1 > SGW_ADDR_BROADCAST - 1) {
			warnx_("--addr %d with --nodes %u runs past address %d", first, o->nodes,
			       SGW_ADDR_BROADCAST - 1);
			return -EINVAL;
		}
	}
	return 0;
}

/* ---- the line ---- */

static int set_raw(int fd, speed_t speed, bool set_speed)
{
	struct termios t;

	if (tcgetattr(fd, &t) < 0)
		return -errno;
	cfmakeraw(&t);
	t.c_cflag |= CLOCAL | CREAD;
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	if (set_speed && cfsetspeed(&t, speed) < 0)
		return -errno;
	if (tcsetattr(fd, TCSANOW, &t) < 0)
		return -errno;
	return 0;
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

/* Points o->link at target: a temporary name first, then rename(), so a reader following the
 * link sees either the old line or the new one, never no link at all. */
static int make_link(struct sim *s, const char *target)
{
	char tmp[PATH_MAX];
	int n;

	n = snprintf(tmp, sizeof(tmp), "%s.tmp%ld", s->opt.link, (long)getpid());
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return -ENAMETOOLONG;
	(void)unlink(tmp);
	if (symlink(target, tmp) < 0)
		return -errno;
	if (rename(tmp, s->opt.link) < 0) {
		int r = -errno;

		(void)unlink(tmp);
		return r;
	}
	snprintf(s->link_target, sizeof(s->link_target), "%s", target);
	s->link_made = true;
	return 0;
}

/* Removes the link only while it still points at our line: a newer simulator may own it. */
static void remove_link(struct sim *s)
{
	char buf[PATH_MAX];
	ssize_t n;

	if (!s->link_made)
		return;
	n = readlink(s->opt.link, buf, sizeof(buf) - 1);
	if (n < 0)
		return;
	buf[n] = '\0';
	if (!strcmp(buf, s->link_target))
		(void)unlink(s->opt.link);
	s->link_made = false;
}

static int open_line(struct sim *s)
{
	int r;

	if (s->opt.tty) {
		s->fd = open(s->opt.tty, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
		if (s->fd < 0) {
			r = -errno;
			warnx_("cannot open %s: %s", s->opt.tty, strerror(-r));
			return r;
		}
		r = set_raw(s->fd, s->opt.speed, true);
		if (r < 0) {
			warnx_("cannot configure %s: %s", s->opt.tty, strerror(-r));
			return r;
		}
		(void)tcflush(s->fd, TCIOFLUSH);
		if (s->opt.link) {
			r = make_link(s, s->opt.tty);
			if (r < 0) {
				warnx_("cannot create link %s: %s", s->opt.link, strerror(-r));
				return r;
			}
		}
		return 0;
	}

	{
		int slave;

		if (openpty(&s->fd, &slave, s->pty_name, NULL, NULL) < 0) {
			r = -errno;
			warnx_("openpty: %s", strerror(-r));
			return r;
		}
		s->is_pty = true;
		/* The line discipline settings live on the slave side; raw there means no echo of
		 * commands back to the gateway and no CR/LF translation of binary frames. */
		r = set_raw(slave, s->opt.speed, true);
		/* Our own copy of the slave is closed again, so that the master tells us (by a
		 * hangup) whether a reader has the line open. */
		close(slave);
		if (r < 0) {
			warnx_("cannot configure %s: %s", s->pty_name, strerror(-r));
			return r;
		}
		(void)fcntl(s->fd, F_SETFD, FD_CLOEXEC);
		r = set_nonblock(s->fd);
		if (r < 0)
			return r;
		if (s->opt.link) {
			r = make_link(s, s->pty_name);
			if (r < 0) {
				warnx_("cannot create link %s: %s", s->opt.link, strerror(-r));
				return r;
			}
		}
		printf("PTY %s\n", s->pty_name);
		if (fflush(stdout) == EOF)
			return -EIO;
	}
	return 0;
}

/* ---- output ---- */

/*
 * Writes all of buf. The line is non-blocking so that commands keep being read while the
 * reader is slow; a frame that still cannot be written after SIM_WRITE_TIMEOUT_NS is dropped.
 * Returns 0, -ETIMEDOUT (dropped), -EINTR (stop requested) or another -errno.
 */
static int write_all(struct sim *s, const uint8_t *buf, size_t len)
{
	int64_t deadline = now_ns() + SIM_WRITE_TIMEOUT_NS;

	while (len > 0) {
		ssize_t n = write(s->fd, buf, len);

		if (n > 0) {
			buf += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return -errno;
		for (;;) {
			struct pollfd p = { .fd = s->fd, .events = POLLOUT };
			int64_t left = deadline - now_ns();
			struct timespec ts;
			int r;

			if (stop_signal)
				return -EINTR;
			if (left <= 0) {
				s->st.dropped++;
				return -ETIMEDOUT;
			}
			ts = ns_to_ts(left);
			r = ppoll(&p, 1, &ts, &s->run_mask);
			if (r < 0 && errno != EINTR)
				return -errno;
			if (r > 0 && (p.revents & (POLLOUT | POLLERR | POLLHUP)))
				break;
		}
	}
	return 0;
}

static int emit_noise(struct sim *s)
{
	uint8_t buf[SIM_NOISE_MAX + 2];
	size_t n = 1 + rng_below(&s->rng, SIM_NOISE_MAX), len = 0;

	if (s->opt.framing == FRAMING_BINARY) {
		for (size_t i = 0; i < n; i++) {
			/* Mostly non-zero bytes (they look like a packet in progress), now and
			 * then a stray delimiter that ends an empty or bogus packet. */
			if (rng_chance(&s->rng, 0.05))
				buf[len++] = 0x00;
			else
				buf[len++] = (uint8_t)(1 + rng_below(&s->rng, 255));
		}
		/* A node that knows it sent junk resynchronises the receiver with a lone
		 * delimiter (sgw_node.h allows it any time); without it the next real frame
		 * would be glued to the junk and lost, which is not what --noise promises. */
		buf[len++] = 0x00;
	} else {
		for (size_t i = 0; i < n; i++) {
			/* Printable, but never '=' or '{': junk must not parse as a record. */
			char c;

			do {
				c = (char)(0x20 + rng_below(&s->rng, 0x7f - 0x20));
			} while (c == '=' || c == '{');
			buf[len++] = (uint8_t)c;
		}
		buf[len++] = '\n';
	}
	s->st.noise++;
	return write_all(s, buf, len);
}

static uint8_t text_checksum(const char *p, size_t len)
{
	uint8_t x = 0;

	for (size_t i = 0; i < len; i++)
		x ^= (uint8_t)p[i];
	return x;
}

/* Appends "*HH\r\n" to a text record in buf (length *len); a wrong checksum when corrupt. */
static int text_finish(char *buf, size_t cap, size_t *len, bool corrupt)
{
	uint8_t sum = text_checksum(buf, *len);
	int n;

	if (corrupt)
		sum ^= 0x5a;
	n = snprintf(buf + *len, cap - *len, "*%02X\r\n", sum);
	if (n < 0 || (size_t)n >= cap - *len)
		return -ENOBUFS;
	*len += (size_t)n;
	return 0;
}

static bool text_has_addr(const struct sim *s)
{
	return s->opt.addr >= 0 || s->opt.nodes > 1;
}

static int text_prefix(const struct sim *s, const struct node *nd, char *buf, size_t cap)
{
	if (!text_has_addr(s)) {
		buf[0] = '\0';
		return 0;
	}
	return snprintf(buf, cap, "@%u ", nd->addr);
}

static void uid_hex(const uint8_t uid[SGW_UID_SIZE], char *out)
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < SGW_UID_SIZE; i++) {
		out[2 * i] = hex[uid[i] >> 4];
		out[2 * i + 1] = hex[uid[i] & 0xf];
	}
	out[2 * SGW_UID_SIZE] = '\0';
}

/* Flips one byte of an encoded frame after its CRC was computed: the frame is decoded, one
 * packet byte changed, and encoded again, so the result is a well-formed COBS frame whose CRC
 * no longer matches, which is what electrical noise inside a frame looks like. */
static int binary_corrupt(struct sim *s, uint8_t *wire, int len)
{
	uint8_t pkt[SGW_MAX_PACKET];
	int n = sgw_cobs_decode(wire, (size_t)len - 1, pkt, sizeof(pkt));

	if (n <= 0)
		return n < 0 ? n : SGW_E_SHORT;
	pkt[rng_below(&s->rng, (uint32_t)n)] ^= (uint8_t)(1 + rng_below(&s->rng, 255));
	n = sgw_cobs_encode(pkt, (size_t)n, wire, SGW_MAX_ENCODED);
	if (n < 0)
		return n;
	wire[n++] = 0x00;
	return n;
}

static int send_packet(struct sim *s, struct sgw_builder *b)
{
	uint8_t wire[SGW_MAX_WIRE];
	int n = sgw_finish(b, wire, sizeof(wire));

	if (n < 0) {
		warnx_("cannot encode a frame (error %d)", n);
		return -EINVAL;
	}
	return write_all(s, wire, (size_t)n);
}

static int send_hello(struct sim *s, struct node *nd)
{
	if (s->opt.framing == FRAMING_BINARY) {
		uint8_t wire[SGW_MAX_WIRE];
		int n = sgw_encode_hello(nd->addr, nd->seq++, nd->uid, nd->boot, SIM_FW_VERSION,
					 wire, sizeof(wire));

		if (n < 0) {
			warnx_("cannot encode a hello (error %d)", n);
			return -EINVAL;
		}
		s->st.hellos++;
		return write_all(s, wire, (size_t)n);
	} else {
		char line[SIM_TEXT_MAX], hex[2 * SGW_UID_SIZE + 1];
		size_t len;
		int r;

		uid_hex(nd->uid, hex);
		r = text_prefix(s, nd, line, sizeof(line));
		r += snprintf(line + r, sizeof(line) - (size_t)r,
			      "hello uid=%s fw=%s boot=%" PRIu32, hex, SIM_FW_VERSION, nd->boot);
		len = (size_t)r;
		if (text_finish(line, sizeof(line), &len, false) < 0)
			return -ENOBUFS;
		s->st.hellos++;
		return write_all(s, (const uint8_t *)line, len);
	}
}

/* One mean-reverting random-walk step per sensor: values wander but stay in range. */
static void node_step(struct sim *s, struct node *nd)
{
	for (int i = 0; i < S_COUNT; i++) {
		const struct sensor_model *m = &sensors[i];
		double v = nd->val[i];

		v += 0.05 * (nd->center[i] - v) + m->step * rng_gauss(&s->rng);
		if (v < m->min)
			v = m->min + (m->min - v);
		if (v > m->max)
			v = m->max - (v - m->max);
		if (v < m->min || v > m->max)
			v = nd->center[i];
		nd->val[i] = v;
	}
}

static int32_t ival(const struct node *nd, enum sensor i)
{
	return (int32_t)lround(nd->val[i]);
}

/* DHT11 resolution is 0.1 degC in the later revisions; keep the float to that step. */
static double temp_val(const struct node *nd)
{
	return round(nd->val[S_DHT11_T] * 10.0) / 10.0;
}

static int send_telemetry(struct sim *s, struct node *nd)
{
	bool corrupt = rng_chance(&s->rng, s->opt.crc_errors);
	int r;

	node_step(s, nd);
	if (s->opt.framing == FRAMING_BINARY) {
		struct sgw_builder b;
		uint8_t wire[SGW_MAX_WIRE];
		int n;

		sgw_begin(&b, SGW_TYPE_TELEMETRY, nd->addr, nd->seq++);
		sgw_put_i32(&b, "MQ2", ival(nd, S_MQ2));
		sgw_put_i32(&b, "MQ135", ival(nd, S_MQ135));
		sgw_put_i32(&b, "MQ4", ival(nd, S_MQ4));
		sgw_put_i32(&b, "MQ7", ival(nd, S_MQ7));
		sgw_put_f32(&b, "DHT11_T", (float)temp_val(nd));
		sgw_put_i32(&b, "DHT11_H", ival(nd, S_DHT11_H));
		n = sgw_finish(&b, wire, sizeof(wire));
		if (n < 0) {
			warnx_("cannot encode a frame (error %d)", n);
			return -EINVAL;
		}
		if (corrupt) {
			n = binary_corrupt(s, wire, n);
			if (n < 0) {
				warnx_("cannot corrupt a frame (error %d)", n);
				return -EINVAL;
			}
		}
		r = write_all(s, wire, (size_t)n);
	} else {
		char line[SIM_TEXT_MAX];
		size_t len;
		int n;

		n = text_prefix(s, nd, line, sizeof(line));
		n += snprintf(line + n, sizeof(line) - (size_t)n,
			      "MQ2=%" PRId32 ",MQ135=%" PRId32 ",MQ4=%" PRId32 ",MQ7=%" PRId32
			      ",DHT11_T=%.1f,DHT11_H=%" PRId32,
			      ival(nd, S_MQ2), ival(nd, S_MQ135), ival(nd, S_MQ4), ival(nd, S_MQ7),
			      temp_val(nd), ival(nd, S_DHT11_H));
		len = (size_t)n;
		if (text_finish(line, sizeof(line), &len, corrupt) < 0)
			return -ENOBUFS;
		r = write_all(s, (const uint8_t *)line, len);
	}
	if (r == -ETIMEDOUT)
		return 0; /* dropped and counted: the line is stuck, keep simulating */
	if (r < 0)
		return r;
	s->st.frames++;
	nd->sent++;
	if (corrupt)
		s->st.corrupted++;
	if (rng_chance(&s->rng, s->opt.noise)) {
		r = emit_noise(s);
		if (r == -ETIMEDOUT)
			return 0;
	}
	return r;
}

/* ---- commands (binary framing) ---- */

static const char *kind_name(uint8_t kind)
{
	switch ((enum sgw_cmd_kind)kind) {
	case SGW_CMD_PROPERTY_SET:
		return "property-set";
	case SGW_CMD_SERVICE:
		return "service";
	case SGW_CMD_CONTROL:
		return "control";
	}
	return "unknown";
}

static bool key_is(const struct sgw_field *f, const char *k)
{
	return f->key_len == strlen(k) && !memcmp(f->key, k, f->key_len);
}

static bool field_int(const struct sgw_field *f, int64_t *ret)
{
	switch ((enum sgw_vtype)f->vtype) {
	case SGW_VT_I32:
		*ret = f->v.i32;
		return true;
	case SGW_VT_I64:
		*ret = f->v.i64;
		return true;
	case SGW_VT_BOOL:
	case SGW_VT_F32:
	case SGW_VT_F64:
	case SGW_VT_STR:
		break;
	}
	return false;
}

/* Appends "key=value" for the stderr log line. */
static void log_field(char *buf, size_t cap, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void log_field(char *buf, size_t cap, const char *key, const char *fmt, ...)
{
	size_t len = strlen(buf);
	va_list ap;
	int n;

	n = snprintf(buf + len, cap - len, "%s%s=", len ? " " : "", key);
	if (n < 0 || (size_t)n >= cap - len)
		return;
	len += (size_t)n;
	va_start(ap, fmt);
	vsnprintf(buf + len, cap - len, fmt, ap);
	va_end(ap);
}

/* Applies a property-set to nd, adding every applied field to the reply. Returns the code. */
static uint16_t apply_properties(struct node *nd, struct sgw_reader *r, struct sgw_builder *reply,
				 char *log, size_t logcap)
{
	struct sgw_field f;
	unsigned applied = 0, rejected = 0;
	int k;

	while ((k = sgw_get_field(r, &f)) > 0) {
		int64_t v;

		if (key_is(&f, "report_interval_ms") && field_int(&f, &v) && v >= 1 &&
		    v <= 86400000) {
			int64_t old = nd->period_ns;

			nd->period_ns = v * 1000000;
			/* The next frame moves with the new interval, measured from the last
			 * scheduled one, so the pace changes at once and stays exact. */
			nd->next_ns += nd->period_ns - old;
			sgw_put_i32(reply, "report_interval_ms", (int32_t)v);
			log_field(log, logcap, "report_interval_ms", "%" PRId64, v);
			applied++;
		} else if (key_is(&f, "led") && f.vtype == SGW_VT_BOOL) {
			nd->led = f.v.b;
			sgw_put_bool(reply, "led", nd->led);
			log_field(log, logcap, "led", "%s", nd->led ? "on" : "off");
			applied++;
		} else {
			log_field(log, logcap, "rejected", "%.*s", (int)f.key_len, f.key);
			rejected++;
		}
	}
	if (k < 0)
		return 400;
	if (applied == 0)
		return rejected ? 422 : 400;
	return 200;
}

static void handle_command(struct sim *s, struct node *nd, const struct sgw_packet *pkt)
{
	struct sgw_reader r;
	struct sgw_builder reply;
	uint16_t cmd_id = 0, code;
	uint8_t kind = 0;
	const char *name = NULL;
	size_t name_len = 0;
	char log[256] = "";
	bool reboot = false;

	sgw_reader_init(&r, pkt->payload, pkt->payload_len);
	if (sgw_read_command(&r, &cmd_id, &kind, &name, &name_len) < 0) {
		warnx_("node %u: malformed command (seq %u)", nd->addr, pkt->seq);
		return;
	}
	s->st.commands++;

	sgw_begin(&reply, SGW_TYPE_COMMAND_REPLY, nd->addr, nd->seq++);
	sgw_put_u16(&reply, cmd_id);
	/* The code is not known until the command ran; reserve it and patch it below. */
	sgw_put_u16(&reply, 0);

	switch ((enum sgw_cmd_kind)kind) {
	case SGW_CMD_PROPERTY_SET:
		code = apply_properties(nd, &r, &reply, log, sizeof(log));
		break;
	case SGW_CMD_SERVICE:
		if (name_len == 4 && !memcmp(name, "ping", 4)) {
			int64_t up = (now_ns() - s->start_ns) / 1000000;

			sgw_put_i64(&reply, "uptime_ms", up);
			sgw_put_i64(&reply, "frames", (int64_t)nd->sent);
			log_field(log, sizeof(log), "uptime_ms", "%" PRId64, up);
			code = 200;
		} else {
			code = 404;
		}
		break;
	case SGW_CMD_CONTROL:
		if (name_len == 8 && !memcmp(name, "identify", 8)) {
			code = 200;
		} else if (name_len == 6 && !memcmp(name, "reboot", 6)) {
			reboot = true;
			code = 200;
		} else {
			code = 404;
		}
		break;
	default:
		code = 400;
		break;
	}
	/* The code sits right after the 5-byte header and the 2-byte command id. */
	reply.buf[SGW_HEADER_SIZE + 2] = (uint8_t)(code >> 8);
	reply.buf[SGW_HEADER_SIZE + 3] = (uint8_t)code;
	if (code != 200) {
		/* A failed command applies nothing, so the reply carries no fields. */
		reply.len = SGW_HEADER_SIZE + 4;
	}

	fprintf(stderr, "sensorgw-sim: command node=%u id=%u %s '%.*s' -> %u%s%s\n", nd->addr,
		cmd_id, kind_name(kind), (int)name_len, name ? name : "", code, *log ? " " : "",
		log);
	if (send_packet(s, &reply) < 0)
		warnx_("node %u: reply to command %u was not sent", nd->addr, cmd_id);
	if (reboot) {
		/* A rebooted node starts counting again and introduces itself anew. */
		nd->boot++;
		nd->seq = 0;
		(void)send_hello(s, nd);
	}
}

static void handle_packet(struct sim *s, const struct sgw_packet *pkt)
{
	if (pkt->type != SGW_TYPE_COMMAND)
		return; /* acks and anything else a gateway may send need no answer */
	for (unsigned i = 0; i < s->opt.nodes; i++) {
		struct node *nd = &s->nodes[i];

		if (pkt->addr == nd->addr || pkt->addr == SGW_ADDR_BROADCAST)
			handle_command(s, nd, pkt);
	}
}

static void handle_input(struct sim *s)
{
	uint8_t buf[512];

	for (;;) {
		ssize_t n = read(s->fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		if (s->opt.framing != FRAMING_BINARY)
			continue; /* a text node has no command channel: drain and forget */
		for (ssize_t i = 0; i < n; i++) {
			struct sgw_packet pkt;
			int r = sgw_rx_byte(&s->rx, buf[i], &pkt);

			if (r > 0)
				handle_packet(s, &pkt);
			else if (r < 0)
				s->st.rx_errors++;
		}
	}
}

/* --pty: whether some process has the slave end open. */
static bool reader_present(struct sim *s)
{
	struct pollfd p = { .fd = s->fd, .events = POLLIN };

	if (!s->is_pty)
		return true;
	if (poll(&p, 1, 0) < 0)
		return !s->no_reader;
	return !(p.revents & POLLHUP);
}

static void set_reader(struct sim *s, bool present)
{
	if (present && s->no_reader) {
		s->attachments++;
		fprintf(stderr, "sensorgw-sim: %s: reader attached\n", s->pty_name);
	} else if (!present && !s->no_reader) {
		fprintf(stderr, "sensorgw-sim: %s: reader detached\n", s->pty_name);
	}
	s->no_reader = !present;
}

/*
 * Waits until the absolute CLOCK_MONOTONIC deadline, serving commands meanwhile. ppoll()
 * replaces clock_nanosleep() so input is read the moment it arrives and SIGINT/SIGTERM are
 * unblocked only inside the wait (no lost-wakeup race); the deadline itself is absolute, so
 * time spent handling input never shifts the schedule. Returns 0, or -EINTR on a stop signal.
 */
static int wait_until(struct sim *s, int64_t deadline)
{
	for (;;) {
		struct pollfd p = { .fd = s->fd, .events = POLLIN };
		int64_t left;
		struct timespec ts;
		int r;

		if (stop_signal)
			return -EINTR;
		left = deadline - now_ns();
		if (left <= 0)
			return 0;
		if (s->no_reader && left > SIM_NO_READER_STEP_NS)
			left = SIM_NO_READER_STEP_NS;
		ts = ns_to_ts(left);
		r = ppoll(s->no_reader ? NULL : &p, s->no_reader ? 0 : 1, &ts, &s->run_mask);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (s->no_reader) {
			set_reader(s, reader_present(s));
			continue;
		}
		if (r > 0) {
			if (p.revents & POLLIN)
				handle_input(s);
			if (p.revents & (POLLHUP | POLLERR | POLLNVAL)) {
				if (s->is_pty) {
					set_reader(s, false);
					continue;
				}
				/* A real or socat tty hung up: the device went away under us. */
				warnx_("%s: the line hung up", s->opt.tty);
				return -EIO;
			}
		}
	}
}

/* Announces every node: binary framing always, text framing when a UID was given. */
static int announce(struct sim *s)
{
	int r;

	if (s->opt.framing == FRAMING_BINARY) {
		/* A lone delimiter first, as a node does at boot: whatever half-packet the
		 * receiver holds from before is dropped instead of swallowing our hello. */
		static const uint8_t zero = 0x00;

		r = write_all(s, &zero, 1);
		if (r < 0 && r != -ETIMEDOUT)
			return r;
	}
	if (s->opt.framing == FRAMING_BINARY || s->opt.have_uid) {
		for (unsigned i = 0; i < s->opt.nodes; i++) {
			r = send_hello(s, &s->nodes[i]);
			if (r < 0 && r != -ETIMEDOUT)
				return r;
		}
	}
	return 0;
}

/*
 * --pty: waits until a reader opens the line, then gives it SIM_SETTLE_NS to set the port up.
 * Like a node wired to the gateway, the simulator is quiet until someone listens, so --count
 * frames all reach the gateway however late it starts.
 */
static int wait_reader(struct sim *s)
{
	int r;

	s->no_reader = !reader_present(s);
	if (s->no_reader)
		fprintf(stderr, "sensorgw-sim: %s: waiting for a reader\n", s->pty_name);
	while (s->no_reader) {
		r = wait_until(s, now_ns() + SIM_NO_READER_STEP_NS);
		if (r < 0)
			return r;
	}
	return wait_until(s, now_ns() + SIM_SETTLE_NS);
}

/*
 * Closing a pty master discards whatever the reader has not read yet, so before exiting wait
 * (up to two seconds) until the slave's input queue is empty. It is looked at through a
 * short-lived slave descriptor of our own; a tty is simply drained.
 */
static void drain(struct sim *s)
{
	int64_t end = now_ns() + 2 * NSEC_PER_SEC;
	int fd;

	if (!s->is_pty) {
		(void)tcdrain(s->fd);
		return;
	}
	if (s->no_reader || !reader_present(s))
		return;
	fd = open(s->pty_name, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return;
	/* The last bytes may still be on their way from the master into the slave's queue, so
	 * the queue must be seen empty twice, 20 ms apart. */
	for (int empty = 0; empty < 2 && now_ns() < end && !stop_signal;) {
		int queued = 0;

		if (ioctl(fd, FIONREAD, &queued) < 0)
			break;
		empty = queued ? 0 : empty + 1;
		if (wait_until(s, now_ns() + 20000000) < 0)
			break;
	}
	close(fd);
}

/* ---- setup ---- */

static void init_nodes(struct sim *s)
{
	unsigned first = s->opt.addr < 0 ? 1 : (unsigned)s->opt.addr;
	int64_t slot = (int64_t)llround((double)NSEC_PER_SEC / s->opt.rate);

	for (unsigned i = 0; i < s->opt.nodes; i++) {
		struct node *nd = &s->nodes[i];

		nd->addr = (uint8_t)(first + i);
		if (s->opt.have_uid) {
			/* Consecutive nodes get consecutive UIDs, as from one production lot. */
			unsigned carry = i;

			memcpy(nd->uid, s->opt.uid, SGW_UID_SIZE);
			for (int b = SGW_UID_SIZE - 1; b >= 0 && carry; b--) {
				carry += nd->uid[b];
				nd->uid[b] = (uint8_t)carry;
				carry >>= 8;
			}
		} else {
			uint64_t st = s->opt.seed ^ (0x5157e11a0000ULL + i);
			uint64_t a = rng_next(&st), b = rng_next(&st);

			memcpy(nd->uid, &a, 8);
			memcpy(nd->uid + 8, &b, 4);
		}
		nd->boot = 1 + rng_below(&s->rng, 500);
		for (int k = 0; k < S_COUNT; k++) {
			const struct sensor_model *m = &sensors[k];
			double span = m->max - m->min;

			nd->center[k] = m->min + span * (0.3 + 0.4 * rng_unit(&s->rng));
			nd->val[k] = nd->center[k];
		}
		nd->led = false;
		/* Each node reports every nodes/rate seconds, staggered by one slot, so the
		 * frames interleave round-robin at exactly --rate in total. */
		nd->period_ns = slot * (int64_t)s->opt.nodes;
		nd->next_ns = s->start_ns + slot * (int64_t)i;
	}
}

static struct node *next_node(struct sim *s)
{
	struct node *best = &s->nodes[0];

	for (unsigned i = 1; i < s->opt.nodes; i++)
		if (s->nodes[i].next_ns < best->next_ns)
			best = &s->nodes[i];
	return best;
}

static int run(struct sim *s)
{
	int r;

	if (s->is_pty) {
		r = wait_reader(s);
		if (r < 0)
			return r;
	}
	s->start_ns = now_ns();
	init_nodes(s);
	r = announce(s);
	if (r < 0)
		return r;

	for (uint64_t n = 0; !s->opt.count || n < s->opt.count; n++) {
		struct node *nd = next_node(s);
		unsigned attachments = s->attachments;
		int64_t now;

		r = wait_until(s, nd->next_ns);
		if (r < 0)
			return r;
		if (s->is_pty)
			set_reader(s, reader_present(s));
		if (s->no_reader) {
			/* Nobody listens: the frame is lost on the wire, as on a real UART. */
			node_step(s, nd);
			s->st.dropped++;
		} else {
			if (attachments != s->attachments) {
				/* A reader came (back): give it time to set up, and introduce
				 * the nodes again, since it may have forgotten them. */
				r = wait_until(s, now_ns() + SIM_SETTLE_NS);
				if (r == 0)
					r = announce(s);
				if (r < 0)
					return r;
			}
			r = send_telemetry(s, nd);
			if (r < 0)
				return r;
		}
		nd->next_ns += nd->period_ns;
		now = now_ns();
		if (now - nd->next_ns > SIM_MAX_LAG_NS)
			nd->next_ns = now;
	}
	drain(s);
	return 0;
}

int main(int argc, char **argv)
{
	struct sim s = { .fd = -1 };
	struct sigaction sa = { .sa_handler = on_signal };
	sigset_t block;
	int r;

	if (parse_args(argc, argv, &s.opt) < 0)
		return 2;
	if (!s.opt.have_seed) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		s.opt.seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^
			     ((uint64_t)getpid() << 40);
	}
	s.rng = s.opt.seed;
	s.nodes = calloc(s.opt.nodes, sizeof(*s.nodes));
	if (!s.nodes) {
		warnx_("out of memory");
		return 1;
	}
	sgw_rx_init(&s.rx);

	/* Stop signals stay blocked except inside ppoll(), which unblocks them atomically. */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigprocmask(SIG_BLOCK, &block, &s.run_mask);
	sigdelset(&s.run_mask, SIGINT);
	sigdelset(&s.run_mask, SIGTERM);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	/* A vanished reader must surface as EIO from write(), not kill us. */
	signal(SIGPIPE, SIG_IGN);

	r = open_line(&s);
	if (r >= 0) {
		fprintf(stderr,
			"sensorgw-sim: %s framing, %u node(s) from address %u, %g frame(s)/s, "
			"seed %" PRIu64 "\n",
			s.opt.framing == FRAMING_BINARY ? "binary" : "text", s.opt.nodes,
			s.opt.addr < 0 ? 1u : (unsigned)s.opt.addr, s.opt.rate,
			s.opt.seed);
		r = run(&s);
		if (r == -EINTR)
			r = 0;
		else if (r < 0)
			warnx_("stopped: %s", strerror(-r));
	}

	fprintf(stderr,
		"sensorgw-sim: frames sent %" PRIu64 ", noise bursts %" PRIu64
		", corrupted frames %" PRIu64 ", dropped %" PRIu64 ", hellos %" PRIu64
		", commands %" PRIu64 "\n",
		s.st.frames, s.st.noise, s.st.corrupted, s.st.dropped, s.st.hellos,
		s.st.commands);
	remove_link(&s);
	if (s.fd >= 0)
		close(s.fd);
	free(s.nodes);
	return r < 0 ? 1 : 0;
}
