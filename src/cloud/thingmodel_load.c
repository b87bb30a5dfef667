/* SPDX-License-Identifier: MIT */
/*
 * gw_thingmodel_load(): a thing-model file read under the rules of gw/fileio.h and handed to the
 * pure parser (src/cloud/thingmodel.c). In library gwfile, as the only I/O of the module.
 */

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gw/fileio.h"
#include "gw/thingmodel.h"
#include "gw/util.h"

int gw_thingmodel_load(const char *path, struct gw_thingmodel **ret,
		       struct gw_thingmodel_error *err)
{
	_cleanup_free_ char *buf = NULL;
	const char *step = "open";
	struct stat st;
	size_t len = 0;
	int fd, r;

	if (err)
		*err = (struct gw_thingmodel_error){ 0 };
	fd = gw_file_open_read(AT_FDCWD, path, false);
	if (fd < 0) {
		r = fd;
		goto fail;
	}
	step = "fstat";
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		if (err)
			gw_why_set(err->text, sizeof(err->text), "not a regular file");
		return -EINVAL;
	}
	step = "read";
	/* one byte more than allowed tells a file that is too long (or grew since fstat) */
	buf = gw_malloc0((size_t)GW_THINGMODEL_FILE_MAX + 1);
	r = st.st_size > GW_THINGMODEL_FILE_MAX ?
		    0 :
		    gw_file_read_fd(fd, buf, (size_t)GW_THINGMODEL_FILE_MAX + 1, &len);
	if (r < 0)
		goto fail;
	close(fd);
	if (st.st_size > GW_THINGMODEL_FILE_MAX || len > GW_THINGMODEL_FILE_MAX) {
		if (err)
			gw_why_set(err->text, sizeof(err->text),
				   "longer than the %d bytes a model may have",
				   GW_THINGMODEL_FILE_MAX);
		return -EFBIG;
	}
	return gw_thingmodel_parse(buf, len, ret, err);
fail:
	if (fd >= 0)
		close(fd);
	if (err)
		gw_why_set(err->text, sizeof(err->text), "%s: %s", step, strerror(-r));
	return r;
}
