/* SPDX-License-Identifier: MIT */
/* The node table: identity (UID or port/address), device names, per-node link health. */

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "gw/node.h"
#include "gw/util.h"

/* The (port, addr) keys a full table refused on one port: bit addr, or bit 256 for the node
 * without an address. A port takes at most 257 keys, so this stays small whatever the peer
 * sends; only the ports of the configuration appear. */
#define REFUSED_BITS (GW_NODES_MAX + 1)
struct refused_port {
	char port[GW_KEY_MAX];
	uint8_t bits[(REFUSED_BITS + 7) / 8];
};

struct gw_nodes {
	char *template;
	size_t n, max;
	struct gw_node *nodes[GW_NODES_MAX];
	struct refused_port *refused;
	size_t n_refused_ports;
	uint64_t refused_keys, frames_refused;
};

int gw_nodes_new(const char *device_template, size_t max, struct gw_nodes **ret)
{
	struct gw_nodes *n = gw_new0(struct gw_nodes, 1);

	n->template = gw_strdup(device_template);
	n->max = max == 0 ? 1 : max > GW_NODES_MAX ? GW_NODES_MAX : max;
	*ret = n;
	return 0;
}

struct gw_nodes *gw_nodes_free(struct gw_nodes *n)
{
	if (!n)
		return NULL;
	for (size_t i = 0; i < n->n; i++)
		free(n->nodes[i]);
	free(n->refused);
	free(n->template);
	free(n);
	return NULL;
}

struct name_ctx {
	const struct gw_node *node;
	char addr[8];
};

static const char *name_lookup(const char *name, size_t len, void *user_data)
{
	struct name_ctx *c = user_data;

	if (len == 3 && memcmp(name, "uid", 3) == 0)
		return c->node->id;
	if (len == 4 && memcmp(name, "port", 4) == 0)
		return c->node->port;
	if (len == 4 && memcmp(name, "addr", 4) == 0)
		return c->addr;
	return NULL;
}

static int update_identity(struct gw_nodes *n, struct gw_node *node)
{
	struct name_ctx c = { .node = node };
	int r;

	if (node->has_uid)
		gw_uid_to_hex(node->uid, node->id);
	else if (node->has_addr)
		snprintf(node->id, sizeof(node->id), "%s-%u", node->port, node->addr);
	else
		snprintf(node->id, sizeof(node->id), "%s", node->port);
	if (node->has_addr)
		snprintf(c.addr, sizeof(c.addr), "%u", node->addr);
	r = gw_template_expand(n->template, name_lookup, &c, node->device, sizeof(node->device));
	return r < 0 ? r : 0;
}

/* Counts a refused frame; true when its (port, addr) was not refused before. */
static bool note_refused(struct gw_nodes *n, const char *port, bool has_addr, uint8_t addr)
{
	unsigned bit = has_addr ? addr : GW_NODES_MAX;
	struct refused_port *rp = NULL;

	n->frames_refused++;
	for (size_t i = 0; i < n->n_refused_ports && !rp; i++)
		if (strcmp(n->refused[i].port, port) == 0)
			rp = &n->refused[i];
	if (!rp) {
		n->refused = gw_realloc_array(n->refused, n->n_refused_ports + 1,
					      sizeof(*n->refused));
		rp = &n->refused[n->n_refused_ports++];
		memset(rp, 0, sizeof(*rp));
		snprintf(rp->port, sizeof(rp->port), "%s", port);
	}
	if (rp->bits[bit / 8] & (1u << (bit % 8)))
		return false;
	rp->bits[bit / 8] |= (uint8_t)(1u << (bit % 8));
	n->refused_keys++;
	return true;
}

int gw_nodes_get(struct gw_nodes *n, const char *port, bool has_addr, uint8_t addr,
		 struct gw_node **ret, bool *ret_created)
{
	struct gw_node *node;
	int r;

	for (size_t i = 0; i < n->n; i++) {
		node = n->nodes[i];
		if (node->has_addr == has_addr && (!has_addr || node->addr == addr) &&
		    strcmp(node->port, port) == 0) {
			*ret = node;
			if (ret_created)
				*ret_created = false;
			return 0;
		}
	}
	if (n->n >= n->max) {
		bool first = note_refused(n, port, has_addr, addr);

		if (ret_created)
			*ret_created = first;
		return -ENOSPC;
	}
	node = gw_new0(struct gw_node, 1);
	snprintf(node->port, sizeof(node->port), "%s", port);
	node->has_addr = has_addr;
	node->addr = addr;
	r = update_identity(n, node);
	if (r < 0) {
		free(node);
		return r;
	}
	n->nodes[n->n++] = node;
	*ret = node;
	if (ret_created)
		*ret_created = true;
	return 0;
}

int gw_node_hello(struct gw_nodes *n, struct gw_node *node, const struct gw_frame *hello)
{
	bool same = node->has_uid && memcmp(node->uid, hello->uid, GW_UID_SIZE) == 0;
	int r;

	memcpy(node->uid, hello->uid, GW_UID_SIZE);
	node->has_uid = true;
	node->has_boot = true;
	node->boot_counter = hello->boot_counter;
	snprintf(node->fw_version, sizeof(node->fw_version), "%s", hello->fw_version);
	/* A new boot restarts the node's sequence numbers: not a gap. */
	node->has_last_seq = false;
	r = update_identity(n, node);
	if (r < 0)
		return r;
	return same ? 0 : 1;
}

uint32_t gw_node_seq(struct gw_node *node, uint16_t seq, bool *ret_duplicate)
{
	uint16_t expected = (uint16_t)(node->last_seq + 1);
	uint16_t ahead = (uint16_t)(seq - expected);
	uint16_t behind = (uint16_t)(node->last_seq - seq);
	uint32_t missing = 0;

	*ret_duplicate = false;
	if (node->has_last_seq && behind < GW_NODE_DUP_WINDOW) {
		/* the newest again, or a little behind it: the node re-sent what we have */
		*ret_duplicate = true;
		node->duplicates++;
		return 0;
	}
	/* Up to half the sequence space ahead counts as a gap; far behind means the node
	 * started counting again (a reset without a hello), which is not a gap. */
	if (node->has_last_seq && ahead != 0 && ahead < 0x8000)
		missing = ahead;
	node->last_seq = seq;
	node->has_last_seq = true;
	node->seq_gaps += missing;
	return missing;
}

size_t gw_nodes_count(const struct gw_nodes *n)
{
	return n->n;
}

struct gw_node *gw_nodes_at(const struct gw_nodes *n, size_t i)
{
	return i < n->n ? n->nodes[i] : NULL;
}

void gw_nodes_stats(const struct gw_nodes *n, struct gw_nodes_stats *ret)
{
	*ret = (struct gw_nodes_stats){
		.known = n->n,
		.max = n->max,
		.refused = n->refused_keys,
		.frames_refused = n->frames_refused,
	};
}
