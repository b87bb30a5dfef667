/* SPDX-License-Identifier: MIT */
/*
 * A port: serial device + frame decoder; logs the device's comings and goings. A frame cut
 * off by a close (unplug, a reload that changes the device or the framing, a stop) is counted
 * as a bad frame (GW_FRAME_ERR_TRUNCATED) and reported to the owner like any other.
 */

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "gw/log.h"
#include "gw/port.h"
#include "gw/util.h"

struct gw_port {
	const struct gw_config_port *cfg;
	struct gw_serial *serial;
	struct gw_decoder *decoder;
	gw_port_frame_fn frame_fn;
	gw_port_state_fn state_fn;
	gw_port_raw_fn raw_fn;
	void *user_data;
	bool was_open;
};

static void on_frame(const struct gw_frame *f, enum gw_frame_error err, void *ud)
{
	struct gw_port *p = ud;

	p->frame_fn(p, f, err, p->user_data);
}

static void on_data(struct gw_serial *s, const uint8_t *buf, size_t len, void *ud)
{
	struct gw_port *p = ud;

	if (p->raw_fn)
		p->raw_fn(p, buf, len, p->user_data);
	gw_decoder_feed(p->decoder, buf, len, on_frame, p);
}

static void on_state(struct gw_serial *s, enum gw_serial_state state, int err, const char *device,
		     uint32_t retry_ms, void *ud)
{
	struct gw_port *p = ud;
	const struct gw_config_port *c = p->cfg;

	switch (state) {
	case GW_SERIAL_OPEN:
		/* Whatever was half-received before the device went away is gone. */
		gw_decoder_reset(p->decoder);
		gw_log_port(LOG_INFO, c->name, "opened %s at %u baud, %u%c%u, flow %s, %s framing",
			    device ? device : "?", c->baud, c->data_bits,
			    c->parity == GW_PARITY_NONE ? 'N' : c->parity == GW_PARITY_ODD ? 'O' : 'E',
			    c->stop_bits, gw_flow_to_string(c->flow), gw_framing_to_string(c->framing));
		p->was_open = true;
		break;
	case GW_SERIAL_ABSENT:
		if (p->was_open)
			(void)gw_decoder_close(p->decoder, on_frame, p);
		if (p->was_open && err == -EIO)
			gw_log_port(LOG_WARNING, c->name,
				    "device %s went away (unplugged or hung up); reopening in %.1f s",
				    device ? device : "?", retry_ms / 1000.0);
		else if (err == -EBUSY)
			gw_log_port(LOG_ERR, c->name,
				    "device %s is in use by another process (locked); retrying in %.1f s",
				    device ? device : "?", retry_ms / 1000.0);
		else
			gw_log_port(LOG_WARNING, c->name, "device %s not available: %s; retrying in %.1f s",
				    device ? device : (c->path ? c->path : "(no USB match)"),
				    strerror(err < 0 ? -err : EIO), retry_ms / 1000.0);
		p->was_open = false;
		break;
	}
	if (p->state_fn)
		p->state_fn(p, state, p->user_data);
}

int gw_port_new(sd_event *event, const struct gw_config_port *cfg, gw_port_frame_fn frame_fn,
		gw_port_state_fn state_fn, void *user_data, struct gw_port **ret)
{
	struct gw_port *p = gw_new0(struct gw_port, 1);
	int r;

	p->cfg = cfg;
	p->frame_fn = frame_fn;
	p->state_fn = state_fn;
	p->user_data = user_data;
	r = gw_decoder_new(cfg->framing, &p->decoder);
	if (r < 0)
		goto fail;
	r = gw_serial_new(event, cfg, on_data, on_state, p, &p->serial);
	if (r < 0)
		goto fail;
	*ret = p;
	return 0;
fail:
	gw_port_free(p);
	return r;
}

/* "8N1, flow none, text framing" */
static void describe(const struct gw_config_port *c, char *buf, size_t size)
{
	snprintf(buf, size, "%u baud, %u%c%u, flow %s, %s framing", c->baud, c->data_bits,
		 c->parity == GW_PARITY_NONE ? 'N' : c->parity == GW_PARITY_ODD ? 'O' : 'E',
		 c->stop_bits, gw_flow_to_string(c->flow), gw_framing_to_string(c->framing));
}

int gw_port_reconfigure(struct gw_port *p, const struct gw_config_port *cfg)
{
	bool was_open = gw_port_state(p) == GW_SERIAL_OPEN;
	char how[160];
	int r;

	if (strcmp(p->cfg->name, cfg->name) != 0)
		return -EINVAL;
	if (cfg->framing != p->cfg->framing) {
		/* what the old framing held cannot be finished by the new one */
		(void)gw_decoder_close(p->decoder, on_frame, p);
		gw_decoder_set_framing(p->decoder, cfg->framing);
	}
	p->cfg = cfg;
	r = gw_serial_reconfigure(p->serial, cfg);
	if (r == 0 && was_open) {
		describe(cfg, how, sizeof(how));
		gw_log_port(LOG_INFO, cfg->name, "settings changed: now %s; the device stayed open, "
			    "nothing was flushed", how);
	}
	return r < 0 ? r : 0;
}

struct gw_port *gw_port_free(struct gw_port *p)
{
	if (!p)
		return NULL;
	if (p->was_open)
		(void)gw_decoder_close(p->decoder, on_frame, p);
	gw_serial_free(p->serial);
	gw_decoder_free(p->decoder);
	free(p);
	return NULL;
}

void gw_port_set_raw_fn(struct gw_port *p, gw_port_raw_fn fn)
{
	p->raw_fn = fn;
}

const struct gw_config_port *gw_port_config(const struct gw_port *p)
{
	return p->cfg;
}

const char *gw_port_name(const struct gw_port *p)
{
	return p->cfg->name;
}

enum gw_serial_state gw_port_state(const struct gw_port *p)
{
	return p->serial ? gw_serial_get_state(p->serial) : GW_SERIAL_ABSENT;
}

void gw_port_hold(struct gw_port *p, bool hold)
{
	gw_serial_hold(p->serial, hold);
}

size_t gw_port_poll(struct gw_port *p)
{
	return gw_serial_poll(p->serial);
}

int gw_port_write(struct gw_port *p, const uint8_t *buf, size_t len)
{
	return gw_serial_write(p->serial, buf, len);
}

const struct gw_frame_stats *gw_port_frame_stats(const struct gw_port *p)
{
	return gw_decoder_stats(p->decoder);
}

const struct gw_serial_stats *gw_port_serial_stats(const struct gw_port *p)
{
	return gw_serial_stats(p->serial);
}
