/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The daemon's status object (docs/status.md) as Prometheus metrics, in the text exposition
 * format 0.0.4 that Prometheus scrapes and node_exporter's textfile collector reads: every
 * counter and gauge of the status, one metric family each, with HELP and TYPE lines, labelled
 * by port, node, uplink and device (docs/metrics.md lists the series). Pure: no I/O, no
 * logging. sensorgwctl metrics prints it; the daemon writes it to [gateway] metrics_file.
 */

#include <jansson.h>
#include <stddef.h>

/*
 * Formats status as exposition text into *ret (NUL-terminated, malloc'd; its length in
 * *ret_len). A field the status lacks or holds as null gives no sample. Returns 0, -EINVAL
 * when status is not an object, or -ENOMEM; *ret is untouched on failure.
 */
int gw_metrics_format(const json_t *status, char **ret, size_t *ret_len);
