/* SPDX-License-Identifier: MIT */
/* The control socket's request parser: whatever a local client writes. */
#include "fuzz.h"
#include "gw/control.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gw_control_request req;
	char why[128];

	(void)gw_control_parse_request((const char *)data, size, &req, why, sizeof(why));
	return 0;
}
