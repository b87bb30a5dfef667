/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Small files the daemon keeps or trusts, under one set of rules, for the spool's cursor and
 * reservation files (gw/spool.h), the credential store (gw/credstore.h) and the files the
 * configuration names (gw/config.h):
 *
 *  - Atomic replacement (the atomic recipe, docs/spool-format.md "Cursor file"): a fresh
 *    temporary file in the same directory (a stale one is removed first: it may be a hard
 *    link to something live, never written through), mode exactly 0600, written, fsync'ed,
 *    closed, renamed over the name, then the directory fsync'ed. A failure before the rename
 *    leaves the name as it was and removes the temporary file; after a crash the name holds
 *    the old or the new bytes, never a mix.
 *  - Safe reads: opened without following a symbolic link in the last component (when asked),
 *    without blocking on a FIFO and without becoming a controlling terminal; read to its end
 *    or to the caller's bound.
 *  - The trusted-file rule: who may own a file and which mode bits it must not have, judged
 *    on the fstat of what was opened.
 *
 * Library code: -errno returns, no logging; the callers word the messages.
 */

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>

/* Where an atomic write failed, for the caller's message. */
enum gw_file_step {
	GW_FILE_STEP_NONE,
	GW_FILE_STEP_UNLINK_STALE, /* removing a stale temporary file */
	GW_FILE_STEP_CREATE,       /* creating the temporary file */
	GW_FILE_STEP_FCHMOD,
	GW_FILE_STEP_WRITE,
	GW_FILE_STEP_FSYNC,
	GW_FILE_STEP_CLOSE,
	GW_FILE_STEP_RENAME,
	GW_FILE_STEP_FSYNC_DIR, /* the rename is done: the new bytes are in place */
};
/* "fchmod", "write", "fsync", ...: the system call of a step. */
const char *gw_file_step_name(enum gw_file_step step);

/*
 * The first half of the recipe: tmp (a name in dfd) created 0600 with len bytes of buf,
 * fsync'ed and closed. Returns 0, or -errno with *ret_step (may be NULL) set and tmp removed.
 */
int gw_file_write_tmp(int dfd, const char *tmp, const void *buf, size_t len,
		      enum gw_file_step *ret_step);
/*
 * The second half: tmp renamed over name, then dfd fsync'ed. Returns 0, or -errno with
 * *ret_step set: GW_FILE_STEP_RENAME (tmp removed, name untouched) or GW_FILE_STEP_FSYNC_DIR.
 */
int gw_file_commit(int dfd, const char *tmp, const char *name, enum gw_file_step *ret_step);
/* Both halves: name in dfd atomically replaced by len bytes of buf, through tmp. */
int gw_file_write_atomic(int dfd, const char *name, const char *tmp, const void *buf, size_t len,
			 enum gw_file_step *ret_step);
/*
 * For a file other programs read and nothing depends on after a crash (the metrics file):
 * the same recipe with mode 0644 and without the two fsyncs, so a reader sees the old or the
 * new bytes, never a mix, and flash memory is not worn by syncs. 0, or -errno with *ret_step
 * set and tmp removed.
 */
int gw_file_publish(int dfd, const char *name, const char *tmp, const void *buf, size_t len,
		    enum gw_file_step *ret_step);

/* write(2) until all len bytes are written (EINTR retried). 0, or -errno (-EIO when write
 * writes nothing). */
int gw_file_write_full(int fd, const void *buf, size_t len);
/* The same with writev(2) for cnt buffers; iov is consumed (changed) on the way. */
int gw_file_writev_full(int fd, struct iovec *iov, int cnt);

/* fsync of an open directory: its entries (a rename, a new file) survive a power cut. */
int gw_file_fsync_dir(int dfd);
/* The same for the directory that holds path (after a mkdir of path). */
int gw_file_fsync_parent(const char *path);

/*
 * Opens name (relative to dfd, or AT_FDCWD) read-only, close-on-exec, without blocking on a
 * FIFO and without becoming a controlling terminal; with nofollow, a symbolic link as the last
 * component fails with -ELOOP. Returns the fd or -errno. The fd is O_NONBLOCK: for a regular
 * file that changes nothing.
 */
int gw_file_open_read(int dfd, const char *name, bool nofollow);
/* Reads from fd until its end or size bytes; *ret_len gets the count. 0 or -errno. */
int gw_file_read_fd(int fd, void *buf, size_t size, size_t *ret_len);
/* gw_file_open_read(dfd, name, true), gw_file_read_fd and close: a small file such as a
 * cursor. A longer file gives its first size bytes. 0 or -errno (-ENOENT: no such file). */
int gw_file_read_small(int dfd, const char *name, void *buf, size_t size, size_t *ret_len);

/*
 * The trusted-file rule. A file (or directory) is trusted when it is owned by the daemon's
 * effective user, by root (root_ok) or by also_uid ((uid_t)-1: nobody else), and has none of
 * the mode bits in forbidden: 077 for a private file (a secret, the credential store), 022 for
 * one others may read but not change (the configuration, certificates).
 */
struct gw_file_rule {
	bool root_ok;
	uid_t also_uid;
	mode_t forbidden;
};
enum gw_file_trust {
	GW_FILE_TRUSTED,
	GW_FILE_FOREIGN_OWNER, /* owned by someone else */
	GW_FILE_OPEN_MODE,     /* a forbidden mode bit is set */
};
enum gw_file_trust gw_file_check(const struct stat *st, const struct gw_file_rule *rule);
