/* SPDX-License-Identifier: MIT */
#include "gw/spool.h"
