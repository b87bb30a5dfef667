/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * CRC-32C (Castagnoli, reflected polynomial 0x82f63b78), the checksum of the spool's segment
 * headers, records, cursor and reservation files (gw/spool.h) and of the credential files
 * (gw/credstore.h). Pure: no I/O, no allocation.
 */

#include <stddef.h>
#include <stdint.h>

/*
 * The CRC-32C of len bytes at data, continuing from crc (0 to start): so that
 * gw_crc32c(gw_crc32c(0, a, n), b, m) is the CRC of a followed by b. gw_crc32c(0, "123456789",
 * 9) is 0xe3069283.
 */
uint32_t gw_crc32c(uint32_t crc, const void *data, size_t len);
