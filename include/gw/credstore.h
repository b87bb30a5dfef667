/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Credential store: the on-disk cache of the per-device credentials a cloud issued at dynamic
 * registration, shared by the Aliyun and Tencent uplinks. Losing an issued secret can brick
 * the device (Aliyun refuses a second registration until a cloud-side ResetThing), so a
 * credential is stored durably before its first use and a damaged cache never crash-loops the
 * daemon. Design: ../shared/design/reliability.md §3; formats and rules: docs/credentials.md.
 *
 * On disk, in one directory per uplink (e.g. <state_dir>/credentials/<uplink>/, mode 0700):
 *   <device>.json              the credential (0600), JSON with a CRC-32C over its own bytes
 *   <device>.json.bak          the previous verified copy, kept by every save
 *   <device>.state             "needs provisioning" marker (no secrets): refusal reason,
 *                              attempts, next retry time; removed by a successful save
 *   <name>.corrupt-<N>         a damaged file moved aside for inspection (N = 1, 2, ...)
 *   .<name>.tmp                files being written; stale ones are removed at open
 *
 * Writes follow the atomic recipe: temporary file (O_EXCL, 0600), write, fsync, close,
 * hard-link the current file to .bak, rename over the file, fsync the directory. A crash at
 * any point leaves either the old or the new credential in place, never a torn one.
 *
 * Reads refuse (-EPERM) a file that is a symlink, not a regular file (a FIFO does not block),
 * not owned by the effective uid, or has any group/other permission bit: those are usually an
 * operator's mistake, so the file is left where it is. A file whose content is damaged (bad
 * JSON, wrong types, unknown version, checksum mismatch, empty, over 16 KiB) is moved aside
 * as .corrupt-N and the .bak copy used instead (-EBADMSG when there is none).
 *
 * Errors are -errno. The module never logs: every call that can fail takes an error-text
 * buffer, why and why_size (gw/util.h; may be NULL; GW_CREDSTORE_REASON_MAX bytes never
 * truncate), and fills it with a one-line explanation for the caller's log, or with "" when
 * there is nothing to say. It names files, fields and steps, never any credential value;
 * device and product names are not secret.
 *
 * Secrets live in heap strings that gw_credstore_wipe() zeroes before freeing; the file
 * buffers are zeroed too. While parsing, jansson's free() is temporarily replaced by one that
 * zeroes, so its scratch copies do not linger either (the daemon is single-threaded).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An error-text buffer of this size never truncates. */
#define GW_CREDSTORE_REASON_MAX 512
/* Device and product names: 1..64 characters of [A-Za-z0-9_.@-]. */
#define GW_CREDSTORE_NAME_MAX 64
/* Largest credential or state file accepted. */
#define GW_CREDSTORE_FILE_MAX 16384
/* Largest single secret value (a PEM certificate or key). */
#define GW_CREDSTORE_VALUE_MAX 8192
/* Longest refusal reason kept in a state file (longer ones are cut). */
#define GW_CREDSTORE_WHY_MAX 200
/* A refused device is retried at most this long after its last attempt (1 h). */
#define GW_CREDSTORE_RETRY_MAX_MS INT64_C(3600000)

struct gw_credstore;

enum gw_cred_cloud {
	GW_CRED_CLOUD_ALIYUN,  /* "aliyun" */
	GW_CRED_CLOUD_TENCENT, /* "tencent" */
};

enum gw_cred_kind {
	GW_CRED_DEVICE_SECRET, /* "device_secret": secret (Aliyun one-type-one-secret) */
	GW_CRED_DEVICE_TOKEN,  /* "device_token": token + client_id (Aliyun regnwl) */
	GW_CRED_PSK,           /* "psk": psk (Tencent key authentication) */
	GW_CRED_CERTIFICATE,   /* "certificate": cert + key, both PEM (Tencent certificates) */
};

/*
 * One device's credential. All strings are heap-allocated and owned by the struct; exactly
 * the fields of its kind are set, the others are NULL. Values are printable ASCII, plus
 * newline, carriage return and tab (PEM), at most GW_CREDSTORE_VALUE_MAX bytes.
 */
struct gw_cred {
	enum gw_cred_cloud cloud;
	enum gw_cred_kind kind;
	char *product;     /* product key (Aliyun) or product id (Tencent) */
	char *device;      /* device name */
	char *secret;      /* GW_CRED_DEVICE_SECRET */
	char *token;       /* GW_CRED_DEVICE_TOKEN */
	char *client_id;   /* GW_CRED_DEVICE_TOKEN; not secret, but only useful with the token */
	char *psk;         /* GW_CRED_PSK */
	char *cert;        /* GW_CRED_CERTIFICATE */
	char *key;         /* GW_CRED_CERTIFICATE: the private key */
	int64_t obtained_at_ms; /* wall clock; 0 when saving means "now" */
};

enum gw_cred_status {
	GW_CRED_STATUS_OK,                 /* no refusal recorded */
	GW_CRED_STATUS_NEEDS_PROVISIONING, /* the cloud refused registration; retry slowly */
};

struct gw_cred_state {
	enum gw_cred_status status;
	char why[GW_CREDSTORE_WHY_MAX + 1]; /* the refusal as the uplink reported it */
	uint32_t attempts;                  /* refusals recorded since the last success */
	int64_t last_attempt_ms;            /* wall clock of the last refusal */
	int64_t next_retry_ms;              /* do not contact the registration endpoint before */
};

/*
 * Opens (creating it and any missing parents, mode 0700) the store in dir and removes stale
 * temporary files. The directory must be owned by the effective uid and have no group/other
 * permission bits, otherwise -EPERM. *ret is set only on success; why may be NULL.
 */
int gw_credstore_open(const char *dir, struct gw_credstore **ret, char *why,
		      size_t why_size);
/* Accepts NULL; returns NULL. */
struct gw_credstore *gw_credstore_close(struct gw_credstore *store);

/* True for 1..GW_CREDSTORE_NAME_MAX characters of [A-Za-z0-9_.@-]. */
bool gw_credstore_name_valid(const char *name);

/*
 * Loads the credential of device into *ret (which the caller later passes to
 * gw_credstore_wipe()). The caller compares cloud and product with its configuration.
 *   0        loaded; why is empty, or says that the file was damaged or missing and the
 *            backup was used (the file is then restored from the backup): log it
 *   -ENOENT  no credential (and no backup): register the device
 *   -EBADMSG the file was damaged and no good backup exists; every damaged file was moved
 *            aside as .corrupt-N: log why, then register the device once
 *   -EPERM   unsafe file (symlink, not regular, foreign owner, group/other bits); nothing moved
 *   -EINVAL  invalid device name; other -errno from I/O
 * *ret is untouched on failure.
 */
int gw_credstore_load(struct gw_credstore *store, const char *device, struct gw_cred *ret,
		      char *why, size_t why_size);

/*
 * Stores cred durably under cred->device, keeping the previous file, if it verifies, as .bak;
 * on success also removes the device's needs-provisioning marker. Returns 0 once the
 * new file is renamed into place and the directory fsynced. -EPERM when the existing file is
 * unsafe (as for load; it is not replaced). -EINVAL for an invalid credential
 * (a missing, stray or malformed field; why names it), -EFBIG when it would exceed
 * GW_CREDSTORE_FILE_MAX, else -errno of the failed step: the previous credential is then
 * still in place (if only the final directory fsync failed, the new one is in place but may
 * not survive a power cut).
 */
int gw_credstore_save(struct gw_credstore *store, const struct gw_cred *cred, char *why,
		      size_t why_size);

/* Zeroes and frees every string of cred and zeroes the struct. Accepts NULL. */
void gw_credstore_wipe(struct gw_cred *cred);

/*
 * Records that the cloud refused to register device (e.g. "already activated"), so that no
 * restart hammers the registration endpoint: attempts is incremented and next_retry_ms, or
 * when it is <= 0 now + gw_credstore_retry_after(attempts), is kept, clamped to
 * [now, now + GW_CREDSTORE_RETRY_MAX_MS]. why must not contain secrets; it is stored with
 * non-printable characters replaced by '?', cut to GW_CREDSTORE_WHY_MAX. The state written
 * is returned in *ret when ret is not NULL. -EINVAL for an invalid device name, -EPERM when
 * the existing marker is unsafe, else -errno of the write.
 */
int gw_credstore_mark_refused(struct gw_credstore *store, const char *device, const char *why,
			      int64_t next_retry_ms, struct gw_cred_state *ret);

/*
 * Reads device's marker into *ret: GW_CRED_STATUS_OK when there is none. next_retry_ms is
 * clamped to at most now + GW_CREDSTORE_RETRY_MAX_MS, so a wall clock set back does not
 * postpone the retry. A damaged marker is moved aside and -EBADMSG returned (treat as OK);
 * an unsafe one gives -EPERM. Only meaningful while the device has no credential.
 */
int gw_credstore_get_state(struct gw_credstore *store, const char *device,
			   struct gw_cred_state *ret, char *why, size_t why_size);

/*
 * Retry policy for refused registrations: the delay in ms after the given number of refusals
 * (1 → 1 min, 2 → 5 min, 3 → 15 min, then 1 h). Deterministic; callers may add jitter.
 */
int64_t gw_credstore_retry_after(uint32_t attempts);

/* "aliyun"/"tencent" and "device_secret"/"device_token"/"psk"/"certificate"; "?" if invalid. */
const char *gw_credstore_cloud_name(enum gw_cred_cloud cloud);
const char *gw_credstore_kind_name(enum gw_cred_kind kind);
