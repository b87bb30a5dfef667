/* SPDX-License-Identifier: MIT */
/*
 * A TLS-PSK front for the loopback Tencent test cloud (tests/cloud/TENCENT.md, listener `mqttpsk`).
 * Python 3.11's ssl cannot serve TLS-PSK (docs/protocols/tencent.md §1.4: the C SDK's 8883 mode),
 * so the integration tests put this in front of the cloud: it accepts TLS with PSK cipher suites
 * only, and no certificate at all, finds the key for the client's identity, and relays the
 * decrypted bytes to the cloud after one line naming the identity the handshake proved:
 *
 * tcloud-pskfront --port-file FILE --backend PORT --identity ID --psk HEX [--tls13]
 *
 * It listens on 127.0.0.1 (a free port, written to FILE once it listens) and serves each connection
 * in a child process. Like the platform (docs/protocols/tencent.md §1.1: TLS 1.0 to 1.2) it speaks
 * at most TLS 1.2 with PSK-AES128-CBC-SHA:PSK-AES256-CBC-SHA, unless --tls13 also allows TLS 1.3
 * (then the PSK is used with a TLS 1.3 suite, OpenSSL's way for these callbacks). Every handshake,
 * good or not, is one line on stderr: "handshake ok identity=.. cipher=.. version=.." or "handshake
 * failed: ..". A test tool: not installed, no secrets of the product's.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *want_identity;
/* the identity the callback accepted: with TLS 1.3, OpenSSL 3's SSL_get_psk_identity() does
 * not report the one of a PSK found through the TLS 1.2 style callback */
static char seen_identity[256];
static unsigned char key[64];
static size_t key_len;

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

static unsigned int psk_cb(SSL *ssl, const char *identity, unsigned char *psk,
			   unsigned int max_len)
{
	(void)ssl;
	if (!identity || strcmp(identity, want_identity) != 0) {
		fprintf(stderr, "unknown identity '%s'\n", identity ? identity : "(none)");
		return 0;
	}
	if (key_len > max_len)
		return 0;
	snprintf(seen_identity, sizeof(seen_identity), "%s", identity);
	memcpy(psk, key, key_len);
	return (unsigned int)key_len;
}

static void ssl_error(const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256];

	ERR_error_string_n(e, buf, sizeof(buf));
	fprintf(stderr, "%s: %s\n", what, e ? buf : "peer closed");
}

/* Relays between the TLS session and the cloud until either side ends. */
static void relay(SSL *ssl, int tls_fd, int back)
{
	char buf[16384];

	for (;;) {
		struct pollfd p[2] = { { .fd = tls_fd, .events = POLLIN },
				       { .fd = back, .events = POLLIN } };
		int n;

		/* OpenSSL may hold decrypted bytes the socket no longer shows */
		if (SSL_pending(ssl) == 0 && poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		if (SSL_pending(ssl) > 0 || p[0].revents) {
			n = SSL_read(ssl, buf, sizeof(buf));
			if (n <= 0)
				return;
			if (write(back, buf, (size_t)n) != n)
				return;
		}
		if (p[1].revents) {
			ssize_t m = read(back, buf, sizeof(buf));

			if (m <= 0 || SSL_write(ssl, buf, (int)m) != (int)m)
				return;
		}
	}
}

static void serve(SSL_CTX *ctx, int fd, int backend_port)
{
	SSL *ssl = SSL_new(ctx);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(backend_port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	char line[512];
	int back, n;

	SSL_set_fd(ssl, fd);
	if (SSL_accept(ssl) != 1) {
		ssl_error("handshake failed");
		return;
	}
	if (!seen_identity[0]) {
		fprintf(stderr, "handshake failed: no PSK was used\n");
		return;
	}
	fprintf(stderr, "handshake ok identity=%s cipher=%s version=%s\n", seen_identity,
		SSL_get_cipher_name(ssl), SSL_get_version(ssl));
	back = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (back < 0 || connect(back, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "cannot reach the cloud: %s\n", strerror(errno));
		return;
	}
	n = snprintf(line, sizeof(line), "TLS-PSK identity=%s cipher=%s version=%s\n",
		     seen_identity, SSL_get_cipher_name(ssl), SSL_get_version(ssl));
	if (write(back, line, (size_t)n) != n)
		return;
	relay(ssl, fd, back);
	SSL_shutdown(ssl);
}

int main(int argc, char **argv)
{
	const char *port_file = NULL, *hex = NULL;
	int backend = 0, tls13 = 0, lfd, one = 1;
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	SSL_CTX *ctx;
	FILE *f;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--tls13"))
			tls13 = 1;
		else if (i + 1 < argc && !strcmp(argv[i], "--port-file"))
			port_file = argv[++i];
		else if (i + 1 < argc && !strcmp(argv[i], "--backend"))
			backend = atoi(argv[++i]);
		else if (i + 1 < argc && !strcmp(argv[i], "--identity"))
			want_identity = argv[++i];
		else if (i + 1 < argc && !strcmp(argv[i], "--psk"))
			hex = argv[++i];
		else {
			fprintf(stderr, "usage: %s --port-file F --backend PORT --identity ID "
				"--psk HEX [--tls13]\n", argv[0]);
			return 2;
		}
	}
	if (!port_file || backend <= 0 || !want_identity || !hex || strlen(hex) % 2 ||
	    strlen(hex) / 2 > sizeof(key)) {
		fprintf(stderr, "missing or bad arguments\n");
		return 2;
	}
	for (size_t i = 0; i < strlen(hex) / 2; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);

		if (hi < 0 || lo < 0) {
			fprintf(stderr, "--psk is not hex\n");
			return 2;
		}
		key[key_len++] = (unsigned char)(hi << 4 | lo);
	}
	signal(SIGCHLD, SIG_IGN); /* children reap themselves */
	signal(SIGPIPE, SIG_IGN);
	ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx || SSL_CTX_set_cipher_list(ctx, "PSK-AES128-CBC-SHA:PSK-AES256-CBC-SHA") != 1 ||
	    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(ctx, tls13 ? TLS1_3_VERSION : TLS1_2_VERSION) != 1) {
		ssl_error("cannot set up TLS");
		return 1;
	}
	SSL_CTX_set_psk_server_callback(ctx, psk_cb);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 16) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&sa, &sl) < 0) {
		fprintf(stderr, "cannot listen: %s\n", strerror(errno));
		return 1;
	}
	f = fopen(port_file, "we");
	if (!f || fprintf(f, "%d\n", ntohs(sa.sin_port)) < 0 || fclose(f) != 0) {
		fprintf(stderr, "cannot write %s\n", port_file);
		return 1;
	}
	fprintf(stderr, "listening on 127.0.0.1:%d for %s%s\n", ntohs(sa.sin_port), want_identity,
		tls13 ? " (TLS 1.2 and 1.3)" : " (TLS 1.2)");
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		pid_t pid;

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			fprintf(stderr, "accept: %s\n", strerror(errno));
			return 1;
		}
		pid = fork();
		if (pid == 0) {
			close(lfd);
			serve(ctx, fd, backend);
			_exit(0);
		}
		close(fd);
	}
}
