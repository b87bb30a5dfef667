/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The node table: every STM32 node the gateway has heard, keyed by (port, bus address).
 * A node is known by its 96-bit UID once it sent a hello, otherwise by "<port>" (text frames
 * without an address) or "<port>-<addr>". Its device name comes from the [gateway]
 * device_name template ({uid} {port} {addr}), so each node can become its own cloud device.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gw/frame.h"

#define GW_NODE_ID_MAX 48
#define GW_DEVICE_NAME_MAX 128
/* The node table's bound: a peer that invents addresses cannot grow it without bound. It is
 * also the most [gateway] max_nodes may be: 255 bus addresses and the address-less node fill
 * one port, a cloud uplink has at most 256 device sessions (max_devices), and every frame
 * looks its node up in this table, one by one. */
#define GW_NODES_MAX 256

struct gw_node {
	char id[GW_NODE_ID_MAX];          /* UID hex, or "<port>" / "<port>-<addr>" */
	char device[GW_DEVICE_NAME_MAX]; /* from the template */
	char port[GW_KEY_MAX];
	bool has_addr;
	uint8_t addr;
	bool has_uid;
	uint8_t uid[GW_UID_SIZE];
	bool has_boot;
	uint32_t boot_counter;
	char fw_version[GW_NAME_MAX];
	/* link health, per node */
	uint64_t frames;
	uint64_t errors; /* bad frames whose address byte pointed at this node */
	uint64_t seq_gaps; /* frames missing according to the 16-bit sequence */
	uint64_t duplicates; /* retransmissions dropped */
	bool has_last_seq;
	uint16_t last_seq;
	int64_t last_seen_ms;
};

struct gw_nodes;

/* template is copied; max (1..GW_NODES_MAX, larger is taken as GW_NODES_MAX) is how many
 * nodes the table takes. Returns 0 or -ENOMEM. */
int gw_nodes_new(const char *device_template, size_t max, struct gw_nodes **ret);
struct gw_nodes *gw_nodes_free(struct gw_nodes *n);

/* Finds or creates the node at (port, addr). Returns 0, or -ENOSPC when the table is full,
 * or -EINVAL when the device name template cannot be expanded. *ret stays valid until the
 * table is freed. *ret_created tells whether it is new (may be NULL); with -ENOSPC, whether
 * this (port, addr) was refused for the first time. Refusals are counted (gw_nodes_stats). */
int gw_nodes_get(struct gw_nodes *n, const char *port, bool has_addr, uint8_t addr,
		 struct gw_node **ret, bool *ret_created);
/* Records a hello: the node is now known by its UID; its device name is recomputed.
 * Returns 1 when the identity changed, 0 when it is the same node again (a reboot), or
 * -EINVAL when the template cannot be expanded. */
int gw_node_hello(struct gw_nodes *n, struct gw_node *node, const struct gw_frame *hello);
/* Records a received sequence number; returns how many were missing before it (0 for the
 * first frame, a duplicate or an in-order frame). *ret_duplicate tells whether the node sent
 * this frame before (its own retransmission): the same seq again, or one up to
 * GW_NODE_DUP_WINDOW behind the newest. Further behind counts as the node starting over. */
#define GW_NODE_DUP_WINDOW 256
uint32_t gw_node_seq(struct gw_node *node, uint16_t seq, bool *ret_duplicate);

size_t gw_nodes_count(const struct gw_nodes *n);

struct gw_nodes_stats {
	size_t known;          /* nodes in the table */
	size_t max;            /* how many it takes */
	uint64_t refused;      /* different (port, addr) refused because the table was full */
	uint64_t frames_refused; /* their frames, all dropped */
};
void gw_nodes_stats(const struct gw_nodes *n, struct gw_nodes_stats *ret);
struct gw_node *gw_nodes_at(const struct gw_nodes *n, size_t i);
