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
 *   same PUBLISH). With --pid PID, also cpu_s and cpu_pct (user + system time of PID and its
 *   waited-for children, from the first measured frame to the last message) and rss_kb,
 *   hwm_kb (VmRSS and VmHWM of PID at the end).
 *
 * Before the measured frames it writes a warm-up frame every 100 ms until one arrives, so the
 * bridge has opened the pty and connected. Frames: text "i=N,MQ2=..,...\r\n" or binary
 * (COBS, protocol v1) telemetry after one hello. A rate of 0 writes as fast as the pty takes
 * them: the bridge's reading speed then sets the pace.
 */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <mosquitto.h>
#include <pthread.h>
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
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t *t_write; /* ns, 0 = not written */
static uint64_t *t_recv;  /* ns, 0 = not received */
static uint32_t n_count;
static uint64_t received, duplicates, warmups_seen;

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

static void on_message(struct mosquitto *m, void *ud, const struct mosquitto_message *msg)
{
	const char *p = msg->payload ? memmem(msg->payload, (size_t)msg->payloadlen, "\"i\":", 4)
				     : NULL;
	uint64_t t = now_ns();
	unsigned long i;

	(void)m;
	(void)ud;
	if (!p)
		return;
	i = strtoul(p + 4, NULL, 10);
	pthread_mutex_lock(&lock);
	if (i >= WARMUP_BASE) {
		warmups_seen++;
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

static size_t encode(const struct opts *o, uint32_t i, uint16_t seq, uint8_t *out, size_t cap)
{
	if (!o->binary) {
		int n = snprintf((char *)out, cap, "i=%" PRIu32 ",MQ2=%u,MQ135=%u,MQ4=%u,MQ7=%u,"
				 "DHT11_T=%.1f,DHT11_H=%u\r\n", i, 30 + i % 7, 90 + i % 11,
				 20 + i % 5, 10 + i % 3, 20.0 + (i % 50) / 10.0, 40 + i % 20);
		return n > 0 ? (size_t)n : 0;
	} else {
		struct sgw_builder b;
		int n;

		sgw_begin(&b, SGW_TYPE_TELEMETRY, 1, seq);
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
		"  -P, --pid PID       also measure the CPU time and memory of the bridge PID\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "link", required_argument, NULL, 'l' },  { "host", required_argument, NULL, 'H' },
		{ "port", required_argument, NULL, 'p' },  { "topic", required_argument, NULL, 't' },
		{ "framing", required_argument, NULL, 'f' }, { "rate", required_argument, NULL, 'r' },
		{ "count", required_argument, NULL, 'c' }, { "drain", required_argument, NULL, 'd' },
		{ "pid", required_argument, NULL, 'P' },   { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { .host = "127.0.0.1", .topic = "#", .count = 10000, .drain_s = 30 };
	struct mosquitto *mosq;
	uint8_t buf[SGW_MAX_ENCODED + 64];
	uint64_t start, first_write = 0, last_recv = 0, *lat;
	uint16_t seq = 0;
	size_t n_lat = 0;
	double cpu0 = -1, cpu1 = -1;
	int fd, c;

	while ((c = getopt_long(argc, argv, "l:H:p:t:f:r:c:d:P:h", longopts, NULL)) != -1) {
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
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!o.link || o.port <= 0 || o.count == 0 || o.count >= WARMUP_BASE) {
		usage(stderr);
		return 2;
	}
	n_count = o.count;
	t_write = calloc(o.count, sizeof(*t_write));
	t_recv = calloc(o.count, sizeof(*t_recv));
	lat = calloc(o.count, sizeof(*lat));
	if (!t_write || !t_recv || !lat)
		return 1;
	fd = make_pty(o.link);
	if (fd < 0) {
		perror("bench-loadgen: pty");
		return 1;
	}
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

	/* warm-up: until the bridge is reading and publishing (at most 30 s) */
	start = now_ns();
	for (uint32_t w = 0;; w++) {
		size_t n;
		bool seen;

		if (o.binary && w % 10 == 0) {
			static const uint8_t uid[SGW_UID_SIZE] = { 0xbe, 0x4c, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 };
			int h = sgw_encode_hello(1, seq++, uid, 1, "bench", buf, sizeof(buf));

			if (h > 0)
				(void)write_all(fd, buf, (size_t)h);
		}
		n = encode(&o, WARMUP_BASE + w, seq++, buf, sizeof(buf));
		(void)write_all(fd, buf, n);
		usleep(100000);
		pthread_mutex_lock(&lock);
		seen = warmups_seen > 0;
		pthread_mutex_unlock(&lock);
		if (seen)
			break;
		if (now_ns() - start > 30000000000ull) {
			fprintf(stderr, "bench-loadgen: nothing arrived within 30 s\n");
			return 1;
		}
	}

	if (o.pid > 0)
		cpu0 = cpu_seconds(o.pid);
	start = now_ns();
	for (uint32_t i = 0; i < o.count; i++) {
		size_t n = encode(&o, i, seq++, buf, sizeof(buf));

		if (o.rate > 0)
			sleep_until(start + (uint64_t)((double)i * 1e9 / o.rate));
		t_write[i] = now_ns();
		if (!first_write)
			first_write = t_write[i];
		if (write_all(fd, buf, n) < 0) {
			perror("bench-loadgen: write");
			return 1;
		}
	}
	for (int k = 0; k < o.drain_s * 10; k++) {
		bool done;

		pthread_mutex_lock(&lock);
		done = received >= o.count;
		pthread_mutex_unlock(&lock);
		if (done)
			break;
		usleep(100000);
	}
	if (o.pid > 0)
		cpu1 = cpu_seconds(o.pid);
	mosquitto_disconnect(mosq);
	mosquitto_loop_stop(mosq, true);

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
		       " p50_us=%" PRIu64 " p90_us=%" PRIu64 " p99_us=%" PRIu64 " max_us=%" PRIu64 "\n",
		       o.binary ? "binary" : "text", o.rate, o.count, received, duplicates,
		       (uint64_t)o.count - received, secs, secs > 0 ? (double)n_lat / secs : 0,
		       n_lat ? lat[n_lat / 2] : 0, n_lat ? lat[n_lat * 9 / 10] : 0,
		       n_lat ? lat[n_lat * 99 / 100] : 0, n_lat ? lat[n_lat - 1] : 0);
		if (o.pid > 0 && cpu0 >= 0 && cpu1 >= 0) {
			/* over the wall time of the whole measured phase, drain included */
			double wall = (double)(now_ns() - start) / 1e9;

			printf("RESULT cpu_s=%.3f cpu_pct=%.2f wall_s=%.3f rss_kb=%lu hwm_kb=%lu\n",
			       cpu1 - cpu0, 100.0 * (cpu1 - cpu0) / wall, wall,
			       status_kb(o.pid, "VmRSS:"), status_kb(o.pid, "VmHWM:"));
		}
	}
	mosquitto_destroy(mosq);
	mosquitto_lib_cleanup();
	(void)unlink(o.link);
	close(fd);
	free(t_write);
	free(t_recv);
	free(lat);
	return received == o.count ? 0 : 3;
}
