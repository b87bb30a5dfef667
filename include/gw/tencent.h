/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Tencent Cloud IoT Explorer (物联网开发平台), the pure half of the driver: MQTT CONNECT
 * parameters of a key (PSK) device, the HTTPS dynamic-registration request and its encrypted
 * reply, and the data-template ($thing) messages and topics.
 *
 * Pure: no sockets, no files, no event loop, no globals. The only system call is getrandom(2)
 * in gw_tencent_make_connid() and gw_tencent_make_nonce(). Every protocol rule here comes from
 * docs/protocols/tencent.md (cited as §N); docs/tencent.md describes how sensorgw uses them.
 *
 * The module comes in four parts, one header and one source file each; this header includes
 * them all:
 *   gw/tencent_login.h   MQTT login: CONNECT parameters, regions, checks    (tencent_login.c)
 *   gw/tencent_regmsg.h  dynamic registration: request, reply, decryption  (tencent_regmsg.c)
 *   gw/tencent_msg.h     data template: topics, messages up and down        (tencent_msg.c)
 *   gw/tencent_gateway.h gateway mode: bind signature, $gateway operations
 *                        and results (docs/protocols/gateway.md)           (tencent_gateway.c)
 * and gw/tencent_common.h holds what they share: conventions, sizes, ports, sign methods.
 */

#include "gw/tencent_common.h"
#include "gw/tencent_gateway.h"
#include "gw/tencent_login.h"
#include "gw/tencent_msg.h"
#include "gw/tencent_regmsg.h"
