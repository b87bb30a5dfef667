/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * A Tencent Cloud IoT Explorer uplink ([uplink NAME] type = tencent): one MQTT session per
 * node device (the device name of its records), each with its own credential, all fed from
 * one spool reader with a persistent cursor (gw/cloudfeed.h), as an Aliyun uplink is. The
 * driver is gw_tencent_uplink_ops (gw/uplink.h); the protocol is gw/tencent.h.
 *
 * Per device: credential from the credential store (auth = psk: a PSK; certificate: the certificate
 * and key, used as the TLS client certificate in a TLS context of the driver's own) -> CONNECT
 * (gw_tencent_build_connect, TLS with host name verification unless tls = no; tls = psk: TLS-PSK
 * keyed with the PSK, no password, docs/protocols/tencent.md §1.4; expiry = auto: now + 600 s while
 * the system clock is synchronised) -> one SUBSCRIBE each for $thing/down/property, event and
 * action (docs/protocols/tencent.md §1.7: one filter per SUBSCRIBE) -> when all three are granted:
 * get_status (controls issued while the device was offline) and report_info with the node's
 * firmware version (once known from its hello) -> online.
 *
 * Limits (docs/protocols/tencent.md §1.7): a device's CONNECTs are at least
 * GW_TENCENT_UPLINK_CONNECT_GAP_MS apart, even when a session is closed right after its CONNACK; at
 * most max_rate (<= 30) records a second per device; a message over 16 KB goes to the dead-letter
 * file (logged with its size, counted as too_large), never to the platform. New sessions are
 * started at most one per GW_TENCENT_UPLINK_PACE_MS, and at most max_devices devices get one.
 *
 * A telemetry record goes out as a `report` (QoS 1) with clientToken "<ProductId>-<spool seq>",
 * carrying its reading time when it is older than GW_TENCENT_UPLINK_REPLAY_MS; an event
 * record as an `event_post` of type info. The PUBACK acknowledges it; a report_reply or
 * event_reply with a code other than 0 (406: the data template refused it) is logged and
 * counted as rejected, never resent.
 *
 * Commands: a `control` becomes a property set for the node and is answered with
 * control_reply, an `action` a service call named by its actionId answered with action_reply
 * and the node's reply fields as response. Code 0 when the node answered 200, the node's own
 * code otherwise, or one of the GW_TENCENT_UPLINK_CODE_* below when no node could answer. A
 * control fetched by get_status goes to the node the same way and is then cleared with
 * clear_control. Commands are never spooled.
 *
 * topology = gateway (docs/protocols/gateway.md §G15-§G18, src/cloud/tencent_subdev.c): one
 * session, the gateway device's (gateway_product_id, gateway_device_name, its PSK from
 * gateway_secret_file, in any of the TLS modes above), subscribed to its operation results; each
 * node is a sub-device of product_id, bound once (bind signed with its PSK text and the wall
 * clock, remembered in the topology file) and put online in every gateway session, one device
 * per operation and at most one attach per 300 ms; then its $thing topics, reports, commands
 * and answers are the direct device's, on the gateway's session. The platform's change,
 * search_devices and unbind_all are acknowledged; an unbinding refuses the sub-device (its
 * records are dead-lettered until its retry), a binding in the console lets it attach at once.
 *
 * A login the platform refuses (CONNACK 4/5, or a TLS alert about the client certificate or,
 * with tls = psk, the PSK) marks the credential as refused: retried slowly, shown by status.
 * The driver implements the optional status (devices, backlog, counters) and preview
 * (sensorgwctl decode) ops.
 */

/* between two new sessions of different devices */
#define GW_TENCENT_UPLINK_PACE_MS 200
/* docs/protocols/tencent.md §1.7 answers one CONNECT per 5 s per device; the extra second
 * covers TLS handshakes of different lengths, which move the moment the platform sees the
 * CONNECT */
#define GW_TENCENT_UPLINK_CONNECT_GAP_MS 6000
#define GW_TENCENT_UPLINK_REPLAY_MS 5000   /* older records carry their reading time */
/* a missing or unusable credential is looked for again */
#define GW_TENCENT_UPLINK_RECHECK_MS 60000
#define GW_TENCENT_UPLINK_STABLE_S 30      /* a session up this long resets its backoff */
#define GW_TENCENT_UPLINK_COMMAND_TIMEOUT_MS 5000

/* Reply codes for commands no node answered (sensorgw's own: docs/protocols/tencent.md lists
 * none). */
#define GW_TENCENT_UPLINK_CODE_BAD_REQUEST 400 /* malformed, or params a frame cannot carry */
#define GW_TENCENT_UPLINK_CODE_NOT_FOUND 404   /* no live node behind the device */
#define GW_TENCENT_UPLINK_CODE_THROTTLED 429   /* too many commands pending */
#define GW_TENCENT_UPLINK_CODE_FAILED 500      /* the gateway could not send it */
#define GW_TENCENT_UPLINK_CODE_NO_CHANNEL 501  /* the node has no command channel (text) */
#define GW_TENCENT_UPLINK_CODE_TIMEOUT 504     /* no answer in time: the outcome is unknown */
