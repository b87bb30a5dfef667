/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Alibaba Cloud IoT Platform (阿里云物联网平台), the pure half of the driver: MQTT CONNECT
 * parameters for every login mode, the HTTPS dynamic-registration request and its reply, the
 * MQTT dynamic-registration pushes, and the Alink thing-model messages and topics.
 *
 * Pure: no sockets, no files, no event loop, no globals. The only system call is getrandom(2)
 * in gw_aliyun_make_random(). Every protocol rule here comes from docs/protocols/aliyun.md
 * (section numbers cited as §N); docs/aliyun.md describes how sensorgw uses them.
 *
 * The module comes in four parts, one header and one source file each; this header includes
 * them all:
 *   gw/aliyun_login.h   MQTT login: CONNECT parameters, host, signing     (aliyun_login.c)
 *   gw/aliyun_regmsg.h  dynamic registration: HTTPS request and reply,
 *                       MQTT registration pushes                          (aliyun_regmsg.c)
 *   gw/aliyun_msg.h     Alink messages: topics, posts, downlink, replies  (aliyun_msg.c)
 *   gw/aliyun_gateway.h gateway mode: sub-device sign, topology, sessions,
 *                       registration through the gateway (docs/protocols/
 *                       gateway.md)                                       (aliyun_gateway.c)
 * and gw/aliyun_common.h holds what they share: conventions, sizes, ports and enums.
 */

#include "gw/aliyun_common.h"
#include "gw/aliyun_gateway.h"
#include "gw/aliyun_login.h"
#include "gw/aliyun_msg.h"
#include "gw/aliyun_regmsg.h"
