/* SPDX-License-Identifier: MIT */
/* Atomic replacement, safe reads and the trusted-file rule (gw/fileio.h). */

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <unistd.h>

#include "gw/fileio.h"
#include "gw/util.h"

const char *gw_file_step_name(enum gw_file_step step)
{
	switch (step) {
	case GW_FILE_STEP_NONE:
		return "none";
	case GW_FILE_STEP_UNLINK_STALE:
		return "unlink";
	case GW_FILE_STEP_CREATE:
		return "create";
	case GW_FILE_STEP_FCHMOD:
		return "fchmod";
	case GW_FILE_STEP_WRITE:
		return "write";
	case GW_FILE_STEP_FSYNC:
		return "fsync";
	case GW_FILE_STEP_CLOSE:
		return "close";
	case GW_FILE_STEP_RENAME:
		return "rename";
	case GW_FILE_STEP_FSYNC_DIR:
		return "fsync of the directory";
	}
	return "?";
}

int gw_file_writev_full(int fd, struct iovec *iov, int cnt)
{
	while (cnt > 0) {
		ssize_t k = writev(fd, iov, cnt);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (k == 0)
			return -EIO;
		while (cnt > 0 && (size_t)k >= iov->iov_len) {
			k -= (ssize_t)iov->iov_len;
			iov++;
			cnt--;
		}
		if (cnt > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + k;
			iov->iov_len -= (size_t)k;
		}
	}
	return 0;
}

int gw_file_write_full(int fd, const void *buf, size_t len)
{
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };

	return gw_file_writev_full(fd, &iov, 1);
}

static int fail(enum gw_file_step *ret_step, enum gw_file_step step, int r)
{
	if (ret_step)
		*ret_step = step;
	return r;
}

/* The temporary file of both recipes: mode exactly `mode`, fsync'ed when sync. */
static int write_tmp(int dfd, const char *tmp, const void *buf, size_t len, mode_t mode, bool sync,
		     enum gw_file_step *ret_step)
{
	enum gw_file_step step;
	int fd, r;

	/* a stale tmp may be a hard link to something live: never write through it */
	if (unlinkat(dfd, tmp, 0) < 0 && errno != ENOENT)
		return fail(ret_step, GW_FILE_STEP_UNLINK_STALE, -errno);
	fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return fail(ret_step, GW_FILE_STEP_CREATE, -errno);
	/* the umask can only remove bits; this makes the mode exact whatever it is */
	step = GW_FILE_STEP_FCHMOD;
	r = fchmod(fd, mode) < 0 ? -errno : 0;
	if (r == 0) {
		step = GW_FILE_STEP_WRITE;
		r = gw_file_write_full(fd, buf, len);
	}
	if (r == 0 && sync) {
		step = GW_FILE_STEP_FSYNC;
		r = fsync(fd) < 0 ? -errno : 0;
	}
	if (close(fd) < 0 && r == 0) {
		step = GW_FILE_STEP_CLOSE;
		r = -errno;
	}
	if (r < 0) {
		(void)unlinkat(dfd, tmp, 0);
		return fail(ret_step, step, r);
	}
	return 0;
}

int gw_file_write_tmp(int dfd, const char *tmp, const void *buf, size_t len,
		      enum gw_file_step *ret_step)
{
	return write_tmp(dfd, tmp, buf, len, 0600, true, ret_step);
}

/* tmp renamed over name (tmp removed when that fails), then dfd fsync'ed when sync. */
static int commit(int dfd, const char *tmp, const char *name, bool sync,
		  enum gw_file_step *ret_step)
{
	if (renameat(dfd, tmp, dfd, name) < 0) {
		int r = -errno;

		(void)unlinkat(dfd, tmp, 0);
		return fail(ret_step, GW_FILE_STEP_RENAME, r);
	}
	if (sync && fsync(dfd) < 0)
		return fail(ret_step, GW_FILE_STEP_FSYNC_DIR, -errno);
	return 0;
}

int gw_file_publish(int dfd, const char *name, const char *tmp, const void *buf, size_t len,
		    enum gw_file_step *ret_step)
{
	int r = write_tmp(dfd, tmp, buf, len, 0644, false, ret_step);

	return r < 0 ? r : commit(dfd, tmp, name, false, ret_step);
}

int gw_file_commit(int dfd, const char *tmp, const char *name, enum gw_file_step *ret_step)
{
	return commit(dfd, tmp, name, true, ret_step);
}

int gw_file_write_atomic(int dfd, const char *name, const char *tmp, const void *buf, size_t len,
			 enum gw_file_step *ret_step)
{
	int r = gw_file_write_tmp(dfd, tmp, buf, len, ret_step);

	return r < 0 ? r : gw_file_commit(dfd, tmp, name, ret_step);
}

int gw_file_fsync_dir(int dfd)
{
	return fsync(dfd) < 0 ? -errno : 0;
}

int gw_file_fsync_parent(const char *path)
{
	char *copy = gw_strdup(path);
	int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r;

	free(copy);
	if (fd < 0)
		return -errno;
	r = gw_file_fsync_dir(fd);
	close(fd);
	return r;
}

int gw_file_open_read(int dfd, const char *name, bool nofollow)
{
	int fd = openat(dfd, name,
			O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC | (nofollow ? O_NOFOLLOW : 0));

	return fd < 0 ? -errno : fd;
}

int gw_file_read_fd(int fd, void *buf, size_t size, size_t *ret_len)
{
	uint8_t *p = buf;
	size_t n = 0;

	while (n < size) {
		ssize_t k = read(fd, p + n, size - n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		if (k == 0)
			break;
		n += (size_t)k;
	}
	*ret_len = n;
	return 0;
}

int gw_file_read_small(int dfd, const char *name, void *buf, size_t size, size_t *ret_len)
{
	int fd = gw_file_open_read(dfd, name, true);
	int r;

	if (fd < 0)
		return fd;
	r = gw_file_read_fd(fd, buf, size, ret_len);
	close(fd);
	return r;
}

enum gw_file_trust gw_file_check(const struct stat *st, const struct gw_file_rule *rule)
{
	bool owner_ok = st->st_uid == geteuid() || (rule->root_ok && st->st_uid == 0) ||
			(rule->also_uid != (uid_t)-1 && st->st_uid == rule->also_uid);

	if (!owner_ok)
		return GW_FILE_FOREIGN_OWNER;
	if (st->st_mode & rule->forbidden)
		return GW_FILE_OPEN_MODE;
	return GW_FILE_TRUSTED;
}
