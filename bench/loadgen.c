/* SPDX-License-Identifier: MIT */
/*
 * bench-loadgen: drives a serial-to-MQTT bridge (sensorgwd, or anything else reading a tty)
 * from a pty and measures what comes out at a broker. It writes numbered sensor frames into
 * the pty at a given rate, subscribes to the broker, and matches each message to its frame by
 * the number ("i") in its payload. It prints one RESULT line of key=value figures:
 *
 *   sent, received, duplicates, missing: counts; seconds: first write to last message;
 *   fps: received / seconds; p50_us, p90_us, p99_us, max_us: frame written -> message at the
 *   subscriber (an upper bound of frame -> PUBACK: the broker forwards and acknowledges the
 *   same PUBLISH); frame_bytes: the average size of a measured frame on the wire.
 *
 * With --pid PID, over the measured window (from just before the first measured frame to the
 * last message, or the end of --drain) also: cpu_s and cpu_pct (user + system time of PID and
 * its waited-for children, /proc/PID/stat, in clock ticks), ctxsw (voluntary + nonvoluntary
 * context switches summed over every thread in /proc/PID/task/), write_bytes (the difference
 * of /proc/PID/io write_bytes: page-cache pages the process dirtied, 4 KiB each, that the
 * block layer writes back, plus direct I/O), and at the window's end rss_kb, hwm_kb (VmRSS,
 * VmHWM) and from /proc/PID/smaps_rollup smaps_rss_kb, pss_kb and uss_kb (Private_Clean +
 * Private_Dirty + Private_Hugetlb). With --disk DEV also disk_bytes: sectors written to block
 * device DEV (/sys/class/block/DEV/stat) over the window, by every process on the machine.
 * With --perf-ctl CTL,ACK it writes "enable" into perf stat's control FIFO CTL at the window's
 * start and "disable" at its end, each time waiting for perf's "ack" on ACK (perf stat -D -1
 * --control fifo:CTL,ACK -p PID), so perf counts exactly the window.
 *
 * With --events FILE the messages are not taken from a broker but from the event log of the
 * Aliyun test cloud (tests/cloud/aliyun_cloud.py, DIR/events.jsonl): each "mqtt_publish_in"
 * line not "throttled" counts, at the time this program reads the line (inotify), so the
 * latency includes the test cloud's TLS read and its logging.
 *
 * Before the measured frames it writes warm-up frames until one from every node has arrived
 * (each node again every 500 ms while it has not), then waits until no warm-up message has
 * arrived for 500 ms, so the bridge has opened the pty and connected every node's session.
 * Frames: text "i=N,MQ2=..,...\r\n" or binary (COBS, protocol v1) telemetry after one
 * hello. With --nodes N > 1 they go round robin to node addresses 1..N (text: an "@A " prefix;
 * binary: the packet's address, a sequence number and a hello per node). A rate of 0 writes as
 * fast as the pty takes them: the bridge's reading speed then sets the pace.
 */

#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <getopt.h>
#include <inttypes.h>
#include <mosquitto.h>
#include <poll.h>
#include <pthread.h>
#include <sys/inotify.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "sgw_node.h"

#define WARMUP_BASE 1000000000u /* numbers of warm-up frames: never a measured one */

struct opts {
	const char *link;
	const char *host;
	int port;
	const char *topic;
	bool binary;
	double rate;
	uint32_t count;
	int drain_s;
	int pid;
	unsigned nodes;
	const char *events;
	const char *disk;
	const char *perf_ctl;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t *t_write; /* ns, 0 = not written */
static uint64_t *t_recv;  /* ns, 0 = not received */
static uint32_t n_count;
static uint64_t received, duplicates, warmups_seen, warmup_last_ns;
static uint8_t node_seen[256]; /* by node index: a warm-up frame of it has arrived */
static unsigned n_nodes = 1;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_until(uint64_t ns)
{
	struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000u),
			       .tv_nsec = (long)(ns % 1000000000u) };

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

/* Counts frame number i as arrived at time t. */
static void arrived(unsigned long i, uint64_t t)
{
	pthread_mutex_lock(&lock);
	if (i >= WARMUP_BASE) {
		warmups_seen++;
		warmup_last_ns = t;
		node_seen[(i - WARMUP_BASE) % n_nodes] = 1;
	} else if (i < n_count) {
		if (t_recv[i])
			duplicates++;
		else {
			t_recv[i] = t;
			received++;
		}
	}
	pthread_mutex_unlock(&lock);
}

static void on_message(struct mosquitto *m, void *ud, const struct mosquitto_message *msg)
{
	const char *p = msg->payload ? memmem(msg->payload, (size_t)msg->payloadlen, "\"i\":", 4)
				     : NULL;
	uint64_t t = now_ns();

	(void)m;
	(void)ud;
	if (p)
		arrived(strtoul(p + 4, NULL, 10), t);
}

/* One line of the test cloud's event log: a PUBLISH that reached it, with a frame number in
 * its (JSON-escaped) payload: "i":N or "i":{"value":N,...}. */
static void event_line(const char *l, size_t len, uint64_t t)
{
	static const char key[] = "\\\"i\\\":", val[] = "{\\\"value\\\":";
	static const char pub[] = "\"ev\": \"mqtt_publish_in\"", thr[] = "\"throttled\": true";
	const char *p;

	if (!memmem(l, len, pub, sizeof(pub) - 1) || memmem(l, len, thr, sizeof(thr) - 1))
		return;
	p = memmem(l, len, key, sizeof(key) - 1);
	if (!p)
		return;
	p += sizeof(key) - 1;
	if ((size_t)(l + len - p) > sizeof(val) && memcmp(p, val, sizeof(val) - 1) == 0)
		p += sizeof(val) - 1;
	arrived(strtoul(p, NULL, 10), t);
}

static volatile int events_stop;

/* Follows the event log from its current end: reads each new line as inotify reports it. */
static void *events_thread(void *arg)
{
	const char *path = arg;
	static char buf[1 << 20];
	size_t have = 0;
	int in = inotify_init1(IN_CLOEXEC), fd = open(path, O_RDONLY | O_CLOEXEC);

	if (in < 0 || fd < 0 || inotify_add_watch(in, path, IN_MODIFY) < 0) {
		fprintf(stderr, "bench-loadgen: cannot follow %s\n", path);
		exit(1);
	}
	(void)lseek(fd, 0, SEEK_END);
	while (!events_stop) {
		struct pollfd pfd = { .fd = in, .events = POLLIN };
		char ev[4096];
		ssize_t n;

		if (poll(&pfd, 1, 100) > 0)
			(void)read(in, ev, sizeof(ev));
		while ((n = read(fd, buf + have, sizeof(buf) - have)) > 0) {
			uint64_t t = now_ns();
			char *start = buf, *nl, *end = buf + have + n;

			while ((nl = memchr(start, '\n', (size_t)(end - start)))) {
				event_line(start, (size_t)(nl - start), t);
				start = nl + 1;
			}
			have = (size_t)(end - start);
			if (have == sizeof(buf))
				have = 0; /* a line longer than the buffer: dropped */
			memmove(buf, start, have);
		}
	}
	close(fd);
	close(in);
	return NULL;
}

static int make_pty(const char *link)
{
	struct termios tio;
	int fd = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	const char *name;
	int s;

	if (fd < 0 || grantpt(fd) < 0 || unlockpt(fd) < 0 || !(name = ptsname(fd)))
		return -1;
	/* raw on the slave side, so binary frames pass untouched */
	s = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (s < 0 || tcgetattr(s, &tio) < 0)
		return -1;
	cfmakeraw(&tio);
	if (tcsetattr(s, TCSANOW, &tio) < 0)
		return -1;
	close(s);
	(void)unlink(link);
	if (symlink(name, link) < 0)
		return -1;
	return fd;
}

static uint16_t node_seq[256];

/* Frame number i (its node: index k, address k + 1) into out. */
static size_t encode(const struct opts *o, uint32_t i, unsigned k, uint8_t *out, size_t cap)
{
	if (!o->binary) {
		int a = o->nodes > 1 ? snprintf((char *)out, cap, "@%u ", k + 1) : 0;
		int n = snprintf((char *)out + a, cap - (size_t)a, "i=%" PRIu32 ",MQ2=%u,MQ135=%u,"
				 "MQ4=%u,MQ7=%u,DHT11_T=%.1f,DHT11_H=%u\r\n", i, 30 + i % 7,
				 90 + i % 11, 20 + i % 5, 10 + i % 3, 20.0 + (i % 50) / 10.0,
				 40 + i % 20);
		return n > 0 ? (size_t)(a + n) : 0;
	} else {
		struct sgw_builder b;
		int n;

		sgw_begin(&b, SGW_TYPE_TELEMETRY, (uint8_t)(k + 1), node_seq[k]++);
		sgw_put_i64(&b, "i", i);
		sgw_put_i32(&b, "MQ2", (int32_t)(30 + i % 7));
		sgw_put_i32(&b, "MQ135", (int32_t)(90 + i % 11));
		sgw_put_i32(&b, "MQ4", (int32_t)(20 + i % 5));
		sgw_put_i32(&b, "MQ7", (int32_t)(10 + i % 3));
		sgw_put_f32(&b, "DHT11_T", 20.0f + (float)(i % 50) / 10.0f);
		sgw_put_i32(&b, "DHT11_H", (int32_t)(40 + i % 20));
		n = sgw_finish(&b, out, cap);
		return n > 0 ? (size_t)n : 0;
	}
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* CPU seconds used so far by pid and its waited-for children; < 0 when unknown. */
static double cpu_seconds(int pid)
{
	char path[64], buf[1024];
	unsigned long long ut, st, cut, cst;
	const char *p;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')'); /* the command name may hold spaces */
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %llu %llu",
			 &ut, &st, &cut, &cst) != 4)
		return -1;
	return (double)(ut + st + cut + cst) / (double)sysconf(_SC_CLK_TCK);
}

/* A "VmRSS:"-style field of /proc/pid/status in kB, 0 when unknown. */
static unsigned long status_kb(int pid, const char *field)
{
	char path[64], line[256];
	unsigned long v = 0;
	size_t len = strlen(field);
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, field, len) == 0)
			v = strtoul(line + len, NULL, 10);
	fclose(f);
	return v;
}

/* Voluntary + nonvoluntary context switches summed over every thread of pid. */
static unsigned long long ctx_switches(int pid)
{
	char path[300], line[256];
	unsigned long long sum = 0;
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	d = opendir(path);
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/status", pid, de->d_name);
		f = fopen(path, "re");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f))
			if (strncmp(line, "voluntary_ctxt_switches:", 24) == 0 ||
			    strncmp(line, "nonvoluntary_ctxt_switches:", 27) == 0)
				sum += strtoull(strchr(line, ':') + 1, NULL, 10);
		fclose(f);
	}
	closedir(d);
	return sum;
}

/* The sum of the fields named (each with its colon) in a "Name: value" file; 0 if absent. */
static unsigned long long file_fields(const char *path, const char *const *names)
{
	unsigned long long sum = 0;
	char line[256];
	FILE *f = fopen(path, "re");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		for (const char *const *n = names; *n; n++)
			if (strncmp(line, *n, strlen(*n)) == 0)
				sum += strtoull(line + strlen(*n), NULL, 10);
	fclose(f);
	return sum;
}

static unsigned long long pid_field(int pid, const char *file, const char *const *names)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/%s", pid, file);
	return file_fields(path, names);
}

/* Bytes written to block device dev so far (sectors written, field 7 of its stat). */
static unsigned long long disk_written(const char *dev)
{
	char path[256];
	unsigned long long v[7] = { 0 };
	FILE *f;

	if (!dev)
		return 0;
	snprintf(path, sizeof(path), "/sys/class/block/%s/stat", dev);
	f = fopen(path, "re");
	if (!f)
		return 0;
	if (fscanf(f, "%llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4],
		   &v[5], &v[6]) != 7)
		v[6] = 0;
	fclose(f);
	return v[6] * 512;
}

/* Sends one command to perf stat's control FIFO and waits (at most 10 s) for its "ack". */
static void perf_command(int ctl, int ack, const char *cmd)
{
	struct pollfd pfd = { .fd = ack, .events = POLLIN };
	char buf[64];

	if (ctl < 0)
		return;
	if (write(ctl, cmd, strlen(cmd)) < 0 || poll(&pfd, 1, 10000) <= 0 ||
	    read(ack, buf, sizeof(buf)) <= 0)
		fprintf(stderr, "bench-loadgen: perf did not acknowledge %s", cmd);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: bench-loadgen --link PATH --port P [OPTION]...\n"
		"  -l, --link PATH     create a pty and a symlink PATH to it (the bridge opens PATH)\n"
		"  -H, --host H        broker host (127.0.0.1)\n"
		"  -p, --port P        broker port\n"
		"  -t, --topic T       subscription (#)\n"
		"  -f, --framing M     text (default) or binary\n"
		"  -r, --rate R        frames per second, 0 = as fast as the pty takes them (0)\n"
		"  -c, --count N       measured frames (10000)\n"
		"  -d, --drain S       seconds to wait for the last messages (30)\n"
		"  -P, --pid PID       also measure the CPU time and memory of the bridge PID\n"
		"  -n, --nodes N       frames round robin to node addresses 1..N (1: no address)\n"
		"  -e, --events FILE   take messages from the Aliyun test cloud's events.jsonl\n"
		"  -D, --disk DEV      also count bytes written to block device DEV\n"
		"  -C, --perf-ctl C,A  enable/disable perf stat over the window (its control FIFOs)\n"
		"  -w, --warmup S      seconds the warm-up may take (30)\n");
}

/* Writes frame number i of node k; exits on a write error. */
static void write_frame(int fd, const struct opts *o, uint32_t i, unsigned k, uint64_t *bytes)
{
	uint8_t buf[SGW_MAX_ENCODED + 64];
	size_t n = encode(o, i, k, buf, sizeof(buf));

	if (write_all(fd, buf, n) < 0) {
		perror("bench-loadgen: write");
		exit(1);
	}
	if (bytes)
		*bytes += n;
}

static void write_hello(int fd, unsigned k)
{
	uint8_t buf[SGW_MAX_ENCODED + 64];
	uint8_t uid[SGW_UID_SIZE] = { 0xbe, 0x4c, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 };
	int h;

	uid[SGW_UID_SIZE - 1] = (uint8_t)(10 + k);
	h = sgw_encode_hello((uint8_t)(k + 1), node_seq[k]++, uid, 1, "bench", buf, sizeof(buf));
	if (h > 0)
		(void)write_all(fd, buf, (size_t)h);
}

struct sample {
	double cpu;
	unsigned long long ctxsw, write_bytes, disk;
};

static void take_sample(const struct opts *o, struct sample *s)
{
	static const char *const wb[] = { "write_bytes:", NULL };

	s->cpu = cpu_seconds(o->pid);
	s->ctxsw = ctx_switches(o->pid);
	s->write_bytes = pid_field(o->pid, "io", wb);
	s->disk = disk_written(o->disk);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "link", required_argument, NULL, 'l' },  { "host", required_argument, NULL, 'H' },
		{ "port", required_argument, NULL, 'p' },  { "topic", required_argument, NULL, 't' },
		{ "framing", required_argument, NULL, 'f' }, { "rate", required_argument, NULL, 'r' },
		{ "count", required_argument, NULL, 'c' }, { "drain", required_argument, NULL, 'd' },
		{ "pid", required_argument, NULL, 'P' },   { "nodes", required_argument, NULL, 'n' },
		{ "events", required_argument, NULL, 'e' }, { "disk", required_argument, NULL, 'D' },
		{ "perf-ctl", required_argument, NULL, 'C' }, { "warmup", required_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' },        { NULL, 0, NULL, 0 },
	};
	struct opts o = { .host = "127.0.0.1", .topic = "#", .count = 10000, .drain_s = 30,
			  .nodes = 1 };
	struct mosquitto *mosq = NULL;
	pthread_t ev_thread;
	uint64_t start, first_write = 0, last_recv = 0, *lat, frame_bytes = 0;
	uint64_t next_try[256] = { 0 };
	unsigned tries[256] = { 0 };
	size_t n_lat = 0;
	struct sample s0 = { 0 }, s1 = { 0 };
	int fd, c, warmup_s = 30, perf_ctl = -1, perf_ack = -1;

	while ((c = getopt_long(argc, argv, "l:H:p:t:f:r:c:d:P:n:e:D:C:w:h", longopts, NULL)) !=
	       -1) {
		switch (c) {
		case 'l': o.link = optarg; break;
		case 'H': o.host = optarg; break;
		case 'p': o.port = atoi(optarg); break;
		case 't': o.topic = optarg; break;
		case 'f': o.binary = strcmp(optarg, "binary") == 0; break;
		case 'r': o.rate = atof(optarg); break;
		case 'c': o.count = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'd': o.drain_s = atoi(optarg); break;
		case 'P': o.pid = atoi(optarg); break;
		case 'n': o.nodes = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'e': o.events = optarg; break;
		case 'D': o.disk = optarg; break;
		case 'C': o.perf_ctl = optarg; break;
		case 'w': warmup_s = atoi(optarg); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!o.link || (o.port <= 0 && !o.events) || o.count == 0 || o.count >= WARMUP_BASE ||
	    o.nodes < 1 || o.nodes > 254) {
		usage(stderr);
		return 2;
	}
	n_count = o.count;
	n_nodes = o.nodes;
	t_write = calloc(o.count, sizeof(*t_write));
	t_recv = calloc(o.count, sizeof(*t_recv));
	lat = calloc(o.count, sizeof(*lat));
	if (!t_write || !t_recv || !lat)
		return 1;
	if (o.perf_ctl) {
		char ctl[256], *comma;

		snprintf(ctl, sizeof(ctl), "%s", o.perf_ctl);
		comma = strchr(ctl, ',');
		if (!comma) {
			usage(stderr);
			return 2;
		}
		*comma = '\0';
		/* neither open may block: perf may not have opened its ends yet (at most 10 s) */
		perf_ack = open(comma + 1, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		for (int k = 0; k < 1000 && perf_ctl < 0; k++) {
			perf_ctl = open(ctl, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
			if (perf_ctl < 0 && errno == ENXIO)
				usleep(10000);
			else if (perf_ctl < 0)
				break;
		}
		if (perf_ctl < 0 || perf_ack < 0) {
			perror("bench-loadgen: perf control FIFOs");
			return 1;
		}
	}
	fd = make_pty(o.link);
	if (fd < 0) {
		perror("bench-loadgen: pty");
		return 1;
	}
	if (o.events) {
		if (pthread_create(&ev_thread, NULL, events_thread, (void *)o.events) != 0)
			return 1;
	} else {
		mosquitto_lib_init();
		mosq = mosquitto_new(NULL, true, NULL);
		if (!mosq)
			return 1;
		mosquitto_message_callback_set(mosq, on_message);
		if (mosquitto_connect(mosq, o.host, o.port, 60) != MOSQ_ERR_SUCCESS ||
		    mosquitto_subscribe(mosq, NULL, o.topic, 0) != MOSQ_ERR_SUCCESS ||
		    mosquitto_loop_start(mosq) != MOSQ_ERR_SUCCESS) {
			fprintf(stderr, "bench-loadgen: cannot subscribe at %s:%d\n", o.host, o.port);
			return 1;
		}
	}

	/* warm-up: until the bridge is reading and every node's frames are published */
	start = now_ns();
	for (uint32_t round = 0;; round++) {
		unsigned missing = 0;
		uint64_t t = now_ns();

		for (unsigned k = 0; k < o.nodes; k++) {
			bool seen;

			pthread_mutex_lock(&lock);
			seen = node_seen[k];
			pthread_mutex_unlock(&lock);
			if (seen)
				continue;
			missing++;
			if (t < next_try[k])
				continue;
			next_try[k] = t + 500000000u;
			if (o.binary && tries[k]++ % 4 == 0)
				write_hello(fd, k);
			write_frame(fd, &o, WARMUP_BASE + round * o.nodes + k, k, NULL);
		}
		if (!missing)
			break;
		if (t - start > (uint64_t)warmup_s * 1000000000u) {
			fprintf(stderr, "bench-loadgen: not every node's frames arrived within %d s "
				"(%u missing)\n", warmup_s, missing);
			return 1;
		}
		usleep(20000);
	}
	/* ... and until the warm-up messages have stopped arriving (queued ones drained) */
	for (int k = 0; k < 100; k++) {
		uint64_t last;

		pthread_mutex_lock(&lock);
		last = warmup_last_ns;
		pthread_mutex_unlock(&lock);
		if (now_ns() - last > 500000000u)
			break;
		usleep(50000);
	}

	if (o.pid > 0)
		take_sample(&o, &s0);
	perf_command(perf_ctl, perf_ack, "enable\n");
	start = now_ns();
	for (uint32_t i = 0; i < o.count; i++) {
		if (o.rate > 0)
			sleep_until(start + (uint64_t)((double)i * 1e9 / o.rate));
		t_write[i] = now_ns();
		if (!first_write)
			first_write = t_write[i];
		write_frame(fd, &o, i, i % o.nodes, &frame_bytes);
	}
	for (int k = 0; k < o.drain_s * 100; k++) {
		bool done;

		pthread_mutex_lock(&lock);
		done = received >= o.count;
		pthread_mutex_unlock(&lock);
		if (done)
			break;
		usleep(10000);
	}
	perf_command(perf_ctl, perf_ack, "disable\n");
	if (o.pid > 0)
		take_sample(&o, &s1);
	if (mosq) {
		mosquitto_disconnect(mosq);
		mosquitto_loop_stop(mosq, true);
	} else {
		events_stop = 1;
		pthread_join(ev_thread, NULL);
	}

	for (uint32_t i = 0; i < o.count; i++) {
		if (!t_recv[i])
			continue;
		if (t_recv[i] > last_recv)
			last_recv = t_recv[i];
		lat[n_lat++] = t_recv[i] > t_write[i] ? (t_recv[i] - t_write[i]) / 1000 : 0;
	}
	qsort(lat, n_lat, sizeof(*lat), cmp_u64);
	{
		double secs = n_lat ? (double)(last_recv - first_write) / 1e9 : 0;

		printf("RESULT framing=%s rate=%g sent=%" PRIu32 " received=%" PRIu64
		       " duplicates=%" PRIu64 " missing=%" PRIu64 " seconds=%.3f fps=%.0f"
		       " p50_us=%" PRIu64 " p90_us=%" PRIu64 " p99_us=%" PRIu64 " max_us=%" PRIu64
		       " frame_bytes=%.1f nodes=%u\n",
		       o.binary ? "binary" : "text", o.rate, o.count, received, duplicates,
		       (uint64_t)o.count - received, secs, secs > 0 ? (double)n_lat / secs : 0,
		       n_lat ? lat[n_lat / 2] : 0, n_lat ? lat[n_lat * 9 / 10] : 0,
		       n_lat ? lat[n_lat * 99 / 100] : 0, n_lat ? lat[n_lat - 1] : 0,
		       (double)frame_bytes / o.count, o.nodes);
		if (o.pid > 0 && s0.cpu >= 0 && s1.cpu >= 0) {
			static const char *const rss[] = { "Rss:", NULL }, *const pss[] = { "Pss:", NULL },
					  *const uss[] = { "Private_Clean:", "Private_Dirty:",
							   "Private_Hugetlb:", NULL };
			/* over the wall time of the whole measured phase, drain included */
			double wall = (double)(now_ns() - start) / 1e9;

			printf("RESULT cpu_s=%.3f cpu_pct=%.2f wall_s=%.3f rss_kb=%lu hwm_kb=%lu"
			       " ctxsw=%llu write_bytes=%llu smaps_rss_kb=%llu pss_kb=%llu uss_kb=%llu",
			       s1.cpu - s0.cpu, 100.0 * (s1.cpu - s0.cpu) / wall, wall,
			       status_kb(o.pid, "VmRSS:"), status_kb(o.pid, "VmHWM:"),
			       s1.ctxsw - s0.ctxsw, s1.write_bytes - s0.write_bytes,
			       pid_field(o.pid, "smaps_rollup", rss), pid_field(o.pid, "smaps_rollup", pss),
			       pid_field(o.pid, "smaps_rollup", uss));
			if (o.disk)
				printf(" disk_bytes=%llu", s1.disk - s0.disk);
			printf("\n");
		}
	}
	if (mosq) {
		mosquitto_destroy(mosq);
		mosquitto_lib_cleanup();
	}
	(void)unlink(o.link);
	close(fd);
	free(t_write);
	free(t_recv);
	free(lat);
	return received == o.count ? 0 : 3;
}
