/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * HTTPS requests on the event loop: libcurl's multi socket API driven by sd-event (socket
 * callback -> io sources, timer callback -> one time source), so a registration request never
 * stalls serial reading. HTTPS only, peer and host verification on, redirects not followed,
 * the response body capped in the write callback (libcurl 7.88's MAXFILESIZE does not stop a
 * chunked body) and wiped when the request is freed (it can carry a secret), a connect timeout,
 * a total timeout and a low-speed limit against slow drips.
 *
 * An adapter: it never logs above debug; the caller decides.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#define GW_HTTP_MAX_BODY_DEFAULT (64 * 1024)

struct gw_http;
struct gw_http_request;

struct gw_http_options {
	const char *ca_file;     /* the trust anchors (PEM); NULL: libcurl's default, the system's
				  * CA bundle (CURLOPT_CAINFO is not set) */
	uint32_t timeout_ms;     /* whole request; default 15000 */
	uint32_t connect_timeout_ms; /* default 5000 */
	size_t max_body;         /* default GW_HTTP_MAX_BODY_DEFAULT */
};

struct gw_http_response {
	int err;          /* 0, or -errno: -ETIMEDOUT, -EMSGSIZE (body over max_body), -ECONNREFUSED,
			   * -EPROTO (TLS or protocol failure), -EPERM (not https), -EIO */
	const char *error; /* libcurl's message when err != 0 (never holds request data); when
			    * untrusted, one line that names the host, the trust used and the
			    * cause */
	bool untrusted;    /* err: the peer was not verified against the trust in use (its chain,
			    * its name, or the CA file that could not be used): a matter of
			    * configuration that asking again soon does not change */
	long verify_result; /* untrusted: CURLINFO_SSL_VERIFYRESULT, the TLS backend's verify code
			     * (OpenSSL: X509_V_ERR_*; 1, "unspecified", for a name
			     * mismatch) */
	long status;       /* HTTP status, 0 when no response */
	const char *location; /* the target of a redirect reply (not followed), else NULL */
	const char *body;  /* NUL-terminated, valid during the callback */
	size_t len;
};

/* Called exactly once per request, from the loop, unless the request was cancelled. */
typedef void (*gw_http_done_fn)(struct gw_http_request *req, const struct gw_http_response *resp,
				void *user_data);

/* Call gw_http_lib_init() once before; -ELIBACC when it was not (or failed). */
int gw_http_new(sd_event *event, struct gw_http **ret);
/* Cancels every request still running (their callbacks are not called). Returns NULL. */
struct gw_http *gw_http_free(struct gw_http *h);

/* Starts a POST of body (copied) with the given Content-Type and extra headers (NULL-terminated
 * "Name: value" strings, copied; may be NULL). Returns 0 and the request in *ret (may be
 * NULL), or -EINVAL for a URL that is not https://, -ENOMEM. */
int gw_http_post(struct gw_http *h, const char *url, const char *content_type,
		 const char *const *headers, const void *body, size_t len,
		 const struct gw_http_options *o, gw_http_done_fn done, void *user_data,
		 struct gw_http_request **ret);
/* Cancels a running request; its callback is not called. */
void gw_http_cancel(struct gw_http_request *req);
size_t gw_http_running(const struct gw_http *h);

/*
 * Opens libcurl (GW_LIBCURL_SONAME, with dlopen: only gateways with a cloud uplink load it and
 * its dependencies) and runs curl_global_init(). Returns 0, also when it is open already, or
 * -ELIBACC; then gw_http_lib_error() says why (dlerror's text).
 */
int gw_http_lib_init(void);
const char *gw_http_lib_error(void);
/*
 * The host of an https:// URL as libcurl parses it, into buf. -EINVAL for another scheme, no
 * host, or user info (it could hold a password, and URLs are logged); -ENOBUFS when buf is too
 * small; -ELIBACC before gw_http_lib_init(). Returns the host's length.
 */
int gw_http_url_host(const char *url, char *buf, size_t size);
void gw_http_lib_cleanup(void);
