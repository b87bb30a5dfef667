/* SPDX-License-Identifier: MIT */
/*
 * bench-floor: the least any serial-to-network bridge does per frame, to tell what a frame
 * costs on a machine before sensorgwd does anything: wait on the tty with epoll, read what is
 * there, send it over loopback TCP. No parsing, no spool, no MQTT, no acknowledgement. With
 * --window MS it sleeps that long after each read, so that the next read takes what came
 * meanwhile: the same batching as sensorgwd's batch_ms, in its simplest form.
 *
 *   bench-floor [--window MS] TTY PORT
 *
 * bench/floor.sh runs it beside a line writer and a TCP sink and prints its CPU per frame.
 */

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct epoll_event ev = { .events = EPOLLIN };
	struct timespec window = { 0, 0 };
	struct termios t;
	char buf[4096];
	int fd = -1, s, ep;

	if (argc == 5 && strcmp(argv[1], "--window") == 0) {
		window.tv_nsec = atol(argv[2]) * 1000000L;
		argv += 2;
		argc -= 2;
	}
	if (argc != 3) {
		fprintf(stderr, "usage: bench-floor [--window MS] TTY PORT\n");
		return 2;
	}
	/* the writer may make the tty a moment after us: up to 10 s */
	for (int i = 0; i < 100 && fd < 0; i++) {
		fd = open(argv[1], O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0)
			usleep(100000);
	}
	s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ep = epoll_create1(EPOLL_CLOEXEC);
	sa.sin_port = htons((uint16_t)atoi(argv[2]));
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	if (fd < 0 || s < 0 || ep < 0 || connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    tcgetattr(fd, &t) < 0) {
		perror("bench-floor");
		return 1;
	}
	cfmakeraw(&t);
	(void)tcsetattr(fd, TCSANOW, &t);
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
		return 1;
	for (;;) {
		ssize_t n;

		if (epoll_wait(ep, &ev, 1, -1) < 0)
			continue;
		if (window.tv_nsec)
			nanosleep(&window, NULL);
		n = read(fd, buf, sizeof(buf));
		if (n == 0 || (n < 0 && ev.events & EPOLLHUP))
			return 0;
		if (n > 0 && write(s, buf, (size_t)n) != n)
			return 1;
	}
}
