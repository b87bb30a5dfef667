/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * An Alibaba Cloud IoT Platform uplink ([uplink NAME] type = aliyun): one MQTT session per
 * node device (the device name of its records), each with its own DeviceSecret, all fed from
 * one spool reader with a persistent cursor, as an MQTT uplink is. The driver is
 * gw_aliyun_uplink_ops (gw/uplink.h), a driver of the cloud core (gw/cloud.h); credentials
 * live in <state_dir>/credentials/<uplink name>/.
 *
 * Per device: needs credential -> (auth = register or regnwl: dynamic registration over HTTPS
 * or MQTT, aliyun_register.h, the DeviceSecret or ClientID + DeviceToken stored in the
 * credential store before it is ever used) -> CONNECT (signed as gw_aliyun_build_connect()
 * says; authType=connwl with a DeviceToken) -> SUBSCRIBE thing/event/+/post_reply -> online. New
 * sessions are started at most one per GW_ALIYUN_UPLINK_PACE_MS, and at most max_devices
 * devices get one; records of further devices go to the dead-letter file.
 *
 * A record goes out as an Alink property post (an event post for event frames) at QoS 1 with
 * id = spool seq mod 2^32; a record older than GW_ALIYUN_UPLINK_REPLAY_MS carries its reading
 * time per property. The PUBACK acknowledges it: that is the platform taking it, and the only
 * answer that always comes (a post_reply depends on a subscription and may be lost with the
 * session). A post_reply with a code other than 200 is logged and counted as rejected, never
 * resent: the platform refuses that same message again.
 *
 * A record whose device is not online waits in the spool and never blocks other devices'
 * records: the reader moves past it, remembers the lowest such record (which holds the cursor
 * back) and reads again from there when a device comes online or loses its session.
 * Acknowledged records above the cursor are kept in a skip set, as in mqtt.c.
 *
 * Rate: the platform takes about 30 messages a second per device and drops the excess
 * (docs/protocols/aliyun.md §4.7, code 429), so each device has its own window: at most max_rate
 * messages in any GW_ALIYUN_UPLINK_RATE_WINDOW_MS. A record whose device used its window up waits
 * exactly as one whose device is offline, so a device replaying a backlog never holds back the
 * others; one timer reads again from the lowest waiting record when the first such window frees.
 * Answers to commands count against the same window but come first: one that finds the window full
 * is queued (never dropped) and sent before that device's next record.
 *
 * Commands from the cloud: each session also subscribes to thing/service/property/set,
 * thing/service/+ and rrpc/request/+ (docs/protocols/aliyun.md §5). A property set, a service call
 * or an RRPC request (whose payload is an Alink request naming its method) is handed to the command
 * path of the uplink (gw_uplink_env), and its result answered on set_reply, <id>_reply or
 * rrpc/response/<msgId> at QoS 0: the node's code and values, or an error code with a message
 * (docs/aliyun.md "Commands from the cloud" lists them). Each command is one log line. Commands are
 * never spooled: one that cannot be carried out now is answered with an error, and none is replayed
 * after a restart.
 *
 * Registration failures: a refusal (an HTTPS reply code other than 200, CONNACK 4/5 on the
 * registration connection) is recorded with gw_credstore_mark_refused() and retried slowly
 * (1 min, 5 min, 15 min, then hourly, across restarts); a transport error or a malformed reply
 * writes nothing and is retried with backoff (reconnect_min_ms .. reconnect_max_ms). Each
 * failure is one log line.
 *
 * A stored credential refused at login (CONNACK 4/5: reset or replaced in the console) is
 * never retried in a fast loop: the refusal goes into the same marker, on the same schedule;
 * a credential obtained before the marker's last refusal counts as refused. With register or
 * regnwl the device then registers again (the new credential's save keeps the old as .bak);
 * with device-secret it waits for a newer credential in the store, or retries the old one
 * when the retry is due.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "gw/command.h"
#include "gw/config.h"
#include "gw/spool.h"
#include "gw/uplink.h"

/* answers to cloud commands waiting for room within max_rate, per device; more are dropped */
#define GW_ALIYUN_UPLINK_REPLIES_MAX 64
#define GW_ALIYUN_UPLINK_PACE_MS 200      /* between two new sessions or registrations */
#define GW_ALIYUN_UPLINK_REPLAY_MS 5000   /* older records carry their reading time */
#define GW_ALIYUN_UPLINK_RECHECK_MS 60000 /* a missing or unusable credential is looked for again */
#define GW_ALIYUN_UPLINK_STABLE_S 30      /* a session up this long resets its backoff */
/* max_rate counts a device's messages in this window: the platform counts them per second,
 * and the tenth more keeps a burst of max_rate within its count when the network delays the
 * first message of a second more than the last. */
#define GW_ALIYUN_UPLINK_RATE_WINDOW_MS 1100
/* How long a node gets to answer a command: below the 8 s in which an RRPC must be answered
 * (docs/protocols/aliyun.md §5), with room for the serial line and the publish. */
#define GW_ALIYUN_UPLINK_COMMAND_TIMEOUT_MS 5000

/* Reply codes for commands the node did not answer itself (D120329's meanings). */
#define GW_ALIYUN_CODE_BAD_REQUEST 400   /* processing error: the node has no command channel */
#define GW_ALIYUN_CODE_THROTTLED 429     /* too many commands pending */
#define GW_ALIYUN_CODE_BAD_PARAMS 460    /* malformed request, params a frame cannot carry */
#define GW_ALIYUN_CODE_UNKNOWN 500       /* no answer in time: the outcome is unknown */
#define GW_ALIYUN_CODE_NOT_FOUND 6100    /* no live node behind the device */
