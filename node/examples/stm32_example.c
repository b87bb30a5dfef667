#include "sgw_node.h"
void sgw_example_entry(void);
void sgw_example_entry(void)
{
	for (;;)
		;
}
