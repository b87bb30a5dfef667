/* SPDX-License-Identifier: MIT */
/*
 * The minimum start-up of a Cortex-M3 with no vendor code: the vector table (initial stack
 * pointer, reset, the faults, SysTick), the copy of .data from flash and the zeroing of .bss
 * (symbols from stm32f2.ld), then main(). A fault stops in a loop a debugger can find.
 * memcpy and memset are here because the compiler may call them for struct copies even in a
 * freestanding build, and there is no libc to provide them.
 */
#include <stddef.h>
#include <stdint.h>

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
int main(void);
void systick_handler(void);

void reset_handler(void);
void reset_handler(void)
{
	const uint32_t *src = &_sidata;

	for (uint32_t *dst = &_sdata; dst < &_edata;)
		*dst++ = *src++;
	for (uint32_t *dst = &_sbss; dst < &_ebss;)
		*dst++ = 0;
	(void)main();
	for (;;)
		;
}

static void fault_handler(void)
{
	for (;;)
		;
}

__attribute__((section(".isr_vector"), used)) static void (*const vectors[16])(void) = {
	(void (*)(void))(uintptr_t)&_estack,
	reset_handler,
	fault_handler, /* NMI */
	fault_handler, /* HardFault */
	fault_handler, /* MemManage */
	fault_handler, /* BusFault */
	fault_handler, /* UsageFault */
	0, 0, 0, 0,
	fault_handler, /* SVCall */
	fault_handler, /* DebugMonitor */
	0,
	fault_handler, /* PendSV */
	systick_handler,
};

void *memcpy(void *dst, const void *src, size_t n);
void *memcpy(void *dst, const void *src, size_t n)
{
	uint8_t *d = dst;
	const uint8_t *s = src;

	while (n--)
		*d++ = *s++;
	return dst;
}

void *memset(void *dst, int c, size_t n);
void *memset(void *dst, int c, size_t n)
{
	uint8_t *d = dst;

	while (n--)
		*d++ = (uint8_t)c;
	return dst;
}
