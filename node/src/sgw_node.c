#include "sgw_node.h"
