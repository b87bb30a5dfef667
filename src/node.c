/* SPDX-License-Identifier: MIT */
#include "gw/util.h"
