/* SPDX-License-Identifier: MIT */
/*
 * HTTPS on the event loop: libcurl's multi socket API driven by sd-event. See
 * include/gw/http.h for the contract.
 */

#include <curl/curl.h>
#include <dlfcn.h>
#include <errno.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "gw-build.h"
#include "gw/http.h"
#include "gw/util.h"

struct gw_http {
	sd_event *event;
	CURLM *multi;
	sd_event_source *timer;
	size_t running;
	struct gw_http_request *requests; /* libcurl 7.88 cannot list its handles */
};

struct gw_http_request {
	struct gw_http *h;
	struct gw_http_request *prev, *next;
	CURL *easy;
	struct curl_slist *headers;
	gw_http_done_fn done;
	void *user_data;
	char *body;
	size_t len;
	size_t max_body;
	bool overflow;
	char errbuf[CURL_ERROR_SIZE];
	char host[256];  /* the URL's host, for the line about a peer that was not verified */
	char *ca_file;   /* a copy of the options' ca_file, or NULL: the system's CA bundle */
	char untrusted[1024]; /* that line */
};

/*
 * libcurl is opened when a cloud uplink needs it (gw_http_lib_init), not linked: linked, it
 * and the thirty libraries it pulls in (GnuTLS, Kerberos, LDAP, SSH, ...) were loaded and
 * relocated in every gateway, about 3 MiB of resident memory and a slower start for the
 * MQTT-only ones. The calls go through this table, filled once by dlsym.
 */
static struct {
	void *dl;
	CURLcode (*global_init)(long flags);
	void (*global_cleanup)(void);
	CURL *(*easy_init)(void);
	CURLcode (*easy_setopt)(CURL *e, CURLoption option, ...);
	CURLcode (*easy_getinfo)(CURL *e, CURLINFO info, ...);
	void (*easy_cleanup)(CURL *e);
	const char *(*easy_strerror)(CURLcode c);
	CURLM *(*multi_init)(void);
	CURLMcode (*multi_setopt)(CURLM *m, CURLMoption option, ...);
	CURLMcode (*multi_add_handle)(CURLM *m, CURL *e);
	CURLMcode (*multi_remove_handle)(CURLM *m, CURL *e);
	CURLMcode (*multi_assign)(CURLM *m, curl_socket_t s, void *p);
	CURLMcode (*multi_socket_action)(CURLM *m, curl_socket_t s, int ev, int *running);
	CURLMsg *(*multi_info_read)(CURLM *m, int *left);
	CURLMcode (*multi_cleanup)(CURLM *m);
	struct curl_slist *(*slist_append)(struct curl_slist *l, const char *s);
	void (*slist_free_all)(struct curl_slist *l);
	CURLU *(*url)(void);
	CURLUcode (*url_set)(CURLU *u, CURLUPart what, const char *part, unsigned int flags);
	CURLUcode (*url_get)(const CURLU *u, CURLUPart what, char **part, unsigned int flags);
	void (*url_cleanup)(CURLU *u);
	void (*free)(void *p);
	curl_version_info_data *(*version_info)(CURLversion v);
	bool openssl; /* the TLS backend is OpenSSL: its verify codes are X509_V_ERR_* */
} lc;
static char lc_error[256];

_Static_assert(sizeof(void *) == sizeof(lc.global_init), "dlsym results fit function pointers");

int gw_http_lib_init(void)
{
	void *dl;

	if (lc.dl)
		return 0;
	dl = dlopen(GW_LIBCURL_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (!dl) {
		snprintf(lc_error, sizeof(lc_error), "%s", dlerror());
		return -ELIBACC;
	}
	/* a union: ISO C has no conversion from an object pointer to a function pointer (a
	 * memcpy does the same, but gcc -fanalyzer then sees the copy as uninitialised) */
#define LOAD(field, name)                                                       \
	do {                                                                    \
		union {                                                         \
			void *obj;                                              \
			__typeof__(lc.field) fn;                                \
		} sym_ = { .obj = dlsym(dl, name) };                            \
		if (!sym_.obj) {                                                \
			snprintf(lc_error, sizeof(lc_error), "%s", dlerror());  \
			goto fail;                                              \
		}                                                               \
		lc.field = sym_.fn;                                             \
	} while (0)
	LOAD(global_init, "curl_global_init");
	LOAD(global_cleanup, "curl_global_cleanup");
	LOAD(easy_init, "curl_easy_init");
	LOAD(easy_setopt, "curl_easy_setopt");
	LOAD(easy_getinfo, "curl_easy_getinfo");
	LOAD(easy_cleanup, "curl_easy_cleanup");
	LOAD(easy_strerror, "curl_easy_strerror");
	LOAD(multi_init, "curl_multi_init");
	LOAD(multi_setopt, "curl_multi_setopt");
	LOAD(multi_add_handle, "curl_multi_add_handle");
	LOAD(multi_remove_handle, "curl_multi_remove_handle");
	LOAD(multi_assign, "curl_multi_assign");
	LOAD(multi_socket_action, "curl_multi_socket_action");
	LOAD(multi_info_read, "curl_multi_info_read");
	LOAD(multi_cleanup, "curl_multi_cleanup");
	LOAD(slist_append, "curl_slist_append");
	LOAD(slist_free_all, "curl_slist_free_all");
	LOAD(url, "curl_url");
	LOAD(url_set, "curl_url_set");
	LOAD(url_get, "curl_url_get");
	LOAD(url_cleanup, "curl_url_cleanup");
	LOAD(free, "curl_free");
	LOAD(version_info, "curl_version_info");
#undef LOAD
	if (lc.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		snprintf(lc_error, sizeof(lc_error), "curl_global_init failed");
		goto fail;
	}
	lc.dl = dl;
	{
		const curl_version_info_data *v = lc.version_info(CURLVERSION_NOW);

		/* Debian's libcurl.so.4 is the OpenSSL build ("OpenSSL/3.0.x"); another backend's
		 * verify codes are shown as numbers only */
		lc.openssl = v && v->ssl_version && strncmp(v->ssl_version, "OpenSSL/", 8) == 0;
	}
	return 0;
fail:
	dlclose(dl);
	memset(&lc, 0, sizeof(lc));
	return -ELIBACC;
}

const char *gw_http_lib_error(void)
{
	return lc_error;
}

void gw_http_lib_cleanup(void)
{
	if (!lc.dl)
		return;
	lc.global_cleanup();
	/* not dlclose(): libcurl's TLS backends keep atexit handlers and thread keys */
	memset(&lc, 0, sizeof(lc));
}

int gw_http_url_host(const char *url, char *buf, size_t size)
{
	CURLU *u;
	char *scheme = NULL, *host = NULL, *user = NULL;
	int r = -EINVAL;

	if (!url || strncmp(url, "https://", 8) != 0)
		return -EINVAL;
	if (!lc.dl)
		return -ELIBACC;
	u = lc.url();
	if (!u)
		return -ENOMEM;
	/* libcurl's own parser: the host named is the host libcurl connects to and sends */
	if (lc.url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    lc.url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    strcmp(scheme, "https") != 0 ||
	    lc.url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host[0])
		goto out;
	/* user info could hold a password, and the URL is logged */
	if (lc.url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK)
		goto out;
	r = gw_bprintf(buf, size, "%s", host);
out:
	lc.free(scheme);
	lc.free(host);
	lc.free(user);
	lc.url_cleanup(u);
	return r;
}

static void request_free(struct gw_http_request *req)
{
	if (!req)
		return;
	if (req->easy) {
		lc.multi_remove_handle(req->h->multi, req->easy);
		lc.easy_cleanup(req->easy);
		req->h->running--;
	}
	if (req->prev)
		req->prev->next = req->next;
	else if (req->h->requests == req)
		req->h->requests = req->next;
	if (req->next)
		req->next->prev = req->prev;
	lc.slist_free_all(req->headers);
	free(req->ca_file);
	if (req->body)
		explicit_bzero(req->body, req->len);
	free(req->body);
	free(req);
}

static size_t write_cb(char *data, size_t size, size_t n, void *ud)
{
	struct gw_http_request *req = ud;
	size_t len = size * n;
	char *p;

	/* Cap the body here: a peer can send a chunked body of any size. Returning less than
	 * len makes libcurl abort the transfer. */
	if (req->len + len > req->max_body) {
		req->overflow = true;
		return 0;
	}
	/* One buffer of the largest size, never moved: a reply can carry a secret (a DeviceSecret,
	 * an encrypted PSK), and realloc() would leave copies behind that nobody wipes. */
	if (!req->body) {
		p = malloc(req->max_body + 1);
		if (!p)
			return 0;
		req->body = p;
	}
	memcpy(req->body + req->len, data, len);
	req->len += len;
	req->body[req->len] = '\0';
	return len;
}

/* libcurl's error space is foreign and large: an if-chain, not a switch over its enum. */
static int map_error(const struct gw_http_request *req, CURLcode c)
{
	if (c == CURLE_OK)
		return 0;
	if (c == CURLE_OPERATION_TIMEDOUT)
		return -ETIMEDOUT;
	if (c == CURLE_COULDNT_CONNECT)
		return -ECONNREFUSED;
	if (c == CURLE_COULDNT_RESOLVE_HOST)
		return -EHOSTUNREACH;
	if (c == CURLE_UNSUPPORTED_PROTOCOL)
		return -EPERM;
	if (c == CURLE_WRITE_ERROR)
		return req->overflow ? -EMSGSIZE : -EIO;
	if (c == CURLE_PEER_FAILED_VERIFICATION || c == CURLE_SSL_CONNECT_ERROR ||
	    c == CURLE_SSL_CERTPROBLEM || c == CURLE_SSL_CACERT_BADFILE || c == CURLE_SSL_CIPHER)
		return -EPROTO;
	return -EIO;
}

/*
 * The peer was not verified against the trust in use (curl 7.62+ reports an unknown issuer as
 * CURLE_PEER_FAILED_VERIFICATION too), or the CA file could not be used: one line that names
 * the host, the trust and the cause, the verify code from CURLINFO_SSL_VERIFYRESULT. libcurl's
 * own message ("SSL certificate problem: ...") names neither the host nor the file.
 */
static void explain_untrusted(struct gw_http_request *req, CURLcode c, struct gw_http_response *resp)
{
	const char *host = req->host[0] ? req->host : "the server";
	const char *trust = req->ca_file ? req->ca_file : "the system's CA bundle";
	const char *cause = req->errbuf[0] ? req->errbuf : lc.easy_strerror(c);
	long vr = 0;

	resp->untrusted = true;
	if (lc.easy_getinfo(req->easy, CURLINFO_SSL_VERIFYRESULT, &vr) != CURLE_OK)
		vr = 0;
	resp->verify_result = vr;
	if (c == CURLE_SSL_CACERT_BADFILE) {
		snprintf(req->untrusted, sizeof(req->untrusted),
			 "TLS: cannot verify %s: the CA file %s cannot be used (%s)", host, trust,
			 cause);
	} else if (vr > X509_V_ERR_UNSPECIFIED) {
		char code[64];

		snprintf(code, sizeof(code), "verify error %ld", vr);
		snprintf(req->untrusted, sizeof(req->untrusted),
			 "TLS: the certificate of %s does not verify against %s: %s (%s)", host, trust,
			 lc.openssl ? X509_verify_cert_error_string(vr) : cause, code);
	} else {
		/* a name mismatch: the chain verified, the name did not (libcurl checks it after
		 * the handshake, with the verify result still at its "not OK" placeholder, 1, and
		 * its message says which name) */
		snprintf(req->untrusted, sizeof(req->untrusted),
			 "TLS: the certificate of %s does not verify against %s: %s", host, trust,
			 cause);
	}
	resp->error = req->untrusted;
}

static void check_done(struct gw_http *h)
{
	CURLMsg *msg;
	int left;

	while ((msg = lc.multi_info_read(h->multi, &left))) {
		struct gw_http_request *req = NULL;
		struct gw_http_response resp = { 0 };

		if (msg->msg != CURLMSG_DONE)
			continue;
		lc.easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&req);
		lc.easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &resp.status);
		/* where a redirect would have led: the caller names it in its log line */
		lc.easy_getinfo(msg->easy_handle, CURLINFO_REDIRECT_URL, (char **)&resp.location);
		resp.err = map_error(req, msg->data.result);
		if (resp.err)
			resp.error = req->errbuf[0] ? req->errbuf : lc.easy_strerror(msg->data.result);
		if (msg->data.result == CURLE_PEER_FAILED_VERIFICATION ||
		    msg->data.result == CURLE_SSL_CACERT_BADFILE)
			explain_untrusted(req, msg->data.result, &resp);
		if (msg->data.result == CURLE_OPERATION_TIMEDOUT) {
			/* libcurl's "Operation too slow" reads the same for a silent peer and a
			 * dripping one: say which */
			char detail[CURL_ERROR_SIZE];

			snprintf(detail, sizeof(detail), "%s", resp.error);
			snprintf(req->errbuf, sizeof(req->errbuf), "timed out %s: %.200s",
				 resp.status ? "during the reply" : "before any reply", detail);
			resp.error = req->errbuf;
		}
		if (req->overflow) {
			snprintf(req->errbuf, sizeof(req->errbuf),
				 "response body over %zu bytes, cut off", req->max_body);
			resp.error = req->errbuf;
		}
		resp.body = req->body ? req->body : "";
		resp.len = req->len;
		req->done(req, &resp, req->user_data);
		request_free(req);
	}
}

static int io_cb(sd_event_source *s, int fd, uint32_t revents, void *ud)
{
	struct gw_http *h = ud;
	int flags = 0, running;

	if (revents & EPOLLIN)
		flags |= CURL_CSELECT_IN;
	if (revents & EPOLLOUT)
		flags |= CURL_CSELECT_OUT;
	if (revents & (EPOLLERR | EPOLLHUP))
		flags |= CURL_CSELECT_ERR;
	lc.multi_socket_action(h->multi, fd, flags, &running);
	check_done(h);
	return 0;
}

static int timer_cb(sd_event_source *s, uint64_t usec, void *ud)
{
	struct gw_http *h = ud;
	int running;

	lc.multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(h);
	return 0;
}

/* libcurl tells which sockets to watch; the io source is stored with the socket. */
static int socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct gw_http *h = userp;
	sd_event_source *src = socketp;
	uint32_t events = 0;

	if (what == CURL_POLL_REMOVE) {
		/* libcurl has not closed the socket yet, so the epoll removal is clean. */
		sd_event_source_disable_unref(src);
		lc.multi_assign(h->multi, s, NULL);
		return 0;
	}
	if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
		events |= EPOLLIN;
	if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
		events |= EPOLLOUT;
	if (!src) {
		if (sd_event_add_io(h->event, &src, s, events, io_cb, h) < 0)
			return -1;
		lc.multi_assign(h->multi, s, src);
		return 0;
	}
	return sd_event_source_set_io_events(src, events) < 0 ? -1 : 0;
}

/* Only arms our timer: libcurl must not be called from inside this callback. */
static int multi_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct gw_http *h = userp;

	if (timeout_ms < 0)
		return sd_event_source_set_enabled(h->timer, SD_EVENT_OFF) < 0 ? -1 : 0;
	if (sd_event_source_set_time_relative(h->timer, (uint64_t)timeout_ms * 1000) < 0)
		return -1;
	return sd_event_source_set_enabled(h->timer, SD_EVENT_ONESHOT) < 0 ? -1 : 0;
}

int gw_http_new(sd_event *event, struct gw_http **ret)
{
	struct gw_http *h;
	int r;

	if (!lc.dl)
		return -ELIBACC; /* gw_http_lib_init() first */
	h = gw_new0(struct gw_http, 1);
	h->event = sd_event_ref(event);
	h->multi = lc.multi_init();
	if (!h->multi) {
		r = -ENOMEM;
		goto fail;
	}
	r = sd_event_add_time_relative(event, &h->timer, CLOCK_MONOTONIC, 0, 1000, timer_cb, h);
	if (r < 0)
		goto fail;
	(void)sd_event_source_set_enabled(h->timer, SD_EVENT_OFF);
	lc.multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
	lc.multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
	lc.multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, multi_timer_cb);
	lc.multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
	*ret = h;
	return 0;
fail:
	gw_http_free(h);
	return r;
}

struct gw_http *gw_http_free(struct gw_http *h)
{
	if (!h)
		return NULL;
	/* request_free() unlinks the head (prev is NULL there); clang-analyzer assumes a prev
	 * and so a head that stays */
	while (h->requests)
		request_free(h->requests); /* NOLINT(clang-analyzer-unix.Malloc) */
	if (h->multi)
		lc.multi_cleanup(h->multi);
	h->timer = sd_event_source_disable_unref(h->timer);
	sd_event_unref(h->event);
	free(h);
	return NULL;
}

int gw_http_post(struct gw_http *h, const char *url, const char *content_type,
		 const char *const *headers, const void *body, size_t len,
		 const struct gw_http_options *o, gw_http_done_fn done, void *user_data,
		 struct gw_http_request **ret)
{
	struct gw_http_request *req;
	char ct[128];
	CURL *e;

	if (strncmp(url, "https://", 8) != 0)
		return -EINVAL;
	req = gw_new0(struct gw_http_request, 1);
	req->h = h;
	req->done = done;
	req->user_data = user_data;
	req->max_body = o && o->max_body ? o->max_body : GW_HTTP_MAX_BODY_DEFAULT;
	e = req->easy = lc.easy_init();
	if (!e) {
		free(req);
		return -ENOMEM;
	}
	h->running++;
	snprintf(ct, sizeof(ct), "Content-Type: %s", content_type);
	req->headers = lc.slist_append(NULL, ct);
	for (size_t i = 0; headers && headers[i]; i++)
		req->headers = lc.slist_append(req->headers, headers[i]);
	lc.easy_setopt(e, CURLOPT_URL, url);
	lc.easy_setopt(e, CURLOPT_PRIVATE, req);
	lc.easy_setopt(e, CURLOPT_ERRORBUFFER, req->errbuf);
	lc.easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	lc.easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https");
	lc.easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "https");
	lc.easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	lc.easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
			 (long)(o && o->connect_timeout_ms ? o->connect_timeout_ms : 5000));
	lc.easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(o && o->timeout_ms ? o->timeout_ms : 15000));
	/* A peer that trickles a byte now and then is cut off, not waited for. */
	lc.easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 16L);
	lc.easy_setopt(e, CURLOPT_LOW_SPEED_TIME, 5L);
	/* without a file CURLOPT_CAINFO stays unset: libcurl's default, the system's bundle */
	if (o && o->ca_file) {
		req->ca_file = gw_strdup(o->ca_file);
		lc.easy_setopt(e, CURLOPT_CAINFO, o->ca_file);
	}
	if (gw_http_url_host(url, req->host, sizeof(req->host)) < 0)
		req->host[0] = '\0';
	lc.easy_setopt(e, CURLOPT_HTTPHEADER, req->headers);
	lc.easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)len);
	lc.easy_setopt(e, CURLOPT_COPYPOSTFIELDS, body);
	lc.easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
	lc.easy_setopt(e, CURLOPT_WRITEDATA, req);
	if (lc.multi_add_handle(h->multi, e) != CURLM_OK) {
		lc.easy_cleanup(e);
		req->easy = NULL;
		h->running--;
		request_free(req);
		return -ENOMEM;
	}
	req->next = h->requests;
	if (h->requests)
		h->requests->prev = req;
	h->requests = req;
	if (ret)
		*ret = req;
	return 0;
}

void gw_http_cancel(struct gw_http_request *req)
{
	request_free(req);
}

size_t gw_http_running(const struct gw_http *h)
{
	return h->running;
}
