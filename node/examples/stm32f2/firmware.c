/* SPDX-License-Identifier: MIT */
/*
 * A real STM32F205 firmware built on the node library (node/), for the board QEMU emulates as
 * netduino2 and for the real chip: register access only, no HAL and no CMSIS, the start-up in
 * startup.c and the memory map in stm32f2.ld. Built with arm-none-eabi-gcc -Os (node/meson.build).
 *
 * Binary framing (the default build):
 *   - a lone 0x00 and a hello (UID, boot counter, firmware version) at boot, and the hello
 *     again every 16th report, so a gateway that opens the line late still learns who it is;
 *   - telemetry every report_interval_ms (1000 at boot): MQ2, MQ135 (ADC counts) and DHT11_T
 *     (°C, f32), DHT11_H (%), from a simple sensor model that drifts with time;
 *   - commands: property set report_interval_ms (1..86400000) and led (bool, drives PA5, the
 *     board's LED), each applied value echoed in the reply (200), a property set with none it
 *     knows refused with 422, a malformed one with 400; service ping answers uptime_ms and
 *     frames (200), any other service 404; control identify 200, others 404. Broadcast
 *     commands are obeyed without a reply.
 * Text framing (-DFW_TEXT): the same model as "MQ2=...,MQ135=...,DHT11_T=...,DHT11_H=..."
 * lines, as the seed tutorials print them; a text line has no command channel.
 *
 * Time comes from SysTick at 1 kHz off the 120 MHz core clock (QEMU's netduino2 runs its
 * SysTick from that clock as the chip does).
 */
#include "sgw_node.h"

/* RM0033: USART1 at 0x40011000 (SR, DR, BRR, CR1), RCC at 0x40023800, GPIOA at 0x40020000. */
#define USART1_SR (*(volatile uint32_t *)0x40011000u)
#define USART1_DR (*(volatile uint32_t *)0x40011004u)
#define USART1_BRR (*(volatile uint32_t *)0x40011008u)
#define USART1_CR1 (*(volatile uint32_t *)0x4001100Cu)
#define USART_SR_RXNE (1u << 5)
#define USART_SR_TXE (1u << 7)
#define USART_CR1_UE (1u << 13)
#define USART_CR1_TE (1u << 3)
#define USART_CR1_RE (1u << 2)
#define RCC_AHB1ENR (*(volatile uint32_t *)0x40023830u)
#define RCC_APB2ENR (*(volatile uint32_t *)0x40023844u)
#define GPIOA_MODER (*(volatile uint32_t *)0x40020000u)
#define GPIOA_BSRR (*(volatile uint32_t *)0x40020018u)
/* ARMv7-M SysTick */
#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)

#define CORE_HZ 120000000u
#define NODE_ADDR 1
#define FW_VERSION "f2-qemu-1.0"

static volatile uint32_t ms_now; /* SysTick count */
static uint32_t report_interval_ms = 1000;
static uint32_t reports;

void systick_handler(void);
void systick_handler(void)
{
	ms_now++;
}

static void uart_write(const uint8_t *buf, int len)
{
	for (int i = 0; i < len; i++) {
		while (!(USART1_SR & USART_SR_TXE))
			;
		USART1_DR = buf[i];
	}
}

static void hw_init(void)
{
	RCC_AHB1ENR |= 1u << 0;  /* GPIOA */
	RCC_APB2ENR |= 1u << 4;  /* USART1 */
	GPIOA_MODER = (GPIOA_MODER & ~(3u << 10)) | (1u << 10); /* PA5 output */
	USART1_BRR = CORE_HZ / 2 / 115200; /* APB2 at 60 MHz */
	USART1_CR1 = USART_CR1_UE | USART_CR1_TE | USART_CR1_RE;
	SYST_RVR = CORE_HZ / 1000 - 1;
	SYST_CVR = 0;
	SYST_CSR = 7; /* processor clock, interrupt, enable */
}

/* ---- the sensor model: slow drifts that stay within the sensors' ranges ---- */

struct reading {
	int32_t mq2, mq135, humidity;
	int32_t deci_celsius;
};

static int32_t triangle(uint32_t t, int32_t period, int32_t amplitude)
{
	int32_t p = (int32_t)(t % (uint32_t)period);

	return p < period / 2 ? p * 2 * amplitude / period : (period - p) * 2 * amplitude / period;
}

static void sense(struct reading *r)
{
	uint32_t s = ms_now / 1000;

	r->mq2 = 300 + triangle(s, 60, 40);
	r->mq135 = 110 + triangle(s + 17, 90, 25);
	r->deci_celsius = 215 + triangle(s, 120, 30);
	r->humidity = 45 + triangle(s + 31, 80, 10);
}

#ifdef FW_TEXT

/* ---- text framing ---- */

static char *put_int(char *p, int32_t v)
{
	char tmp[12];
	int n = 0;
	uint32_t u = v < 0 ? (uint32_t)-v : (uint32_t)v;

	if (v < 0)
		*p++ = '-';
	do {
		tmp[n++] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	while (n)
		*p++ = tmp[--n];
	return p;
}

static char *put_str(char *p, const char *s)
{
	while (*s)
		*p++ = *s++;
	return p;
}

static void report(void)
{
	struct reading r;
	char line[96], *p = line;

	sense(&r);
	p = put_str(p, "MQ2=");
	p = put_int(p, r.mq2);
	p = put_str(p, ",MQ135=");
	p = put_int(p, r.mq135);
	p = put_str(p, ",DHT11_T=");
	p = put_int(p, r.deci_celsius / 10);
	*p++ = '.';
	p = put_int(p, r.deci_celsius % 10);
	p = put_str(p, ",DHT11_H=");
	p = put_int(p, r.humidity);
	p = put_str(p, "\r\n");
	uart_write((const uint8_t *)line, (int)(p - line));
}

static void hello(void)
{
}

static void poll_uart(void)
{
	while (USART1_SR & USART_SR_RXNE)
		(void)USART1_DR; /* a text line has no command channel */
}

#else

/* ---- binary framing ---- */

/* Read from the chip's unique-ID registers (0x1FFF7A10) on a real board; QEMU does not model
 * that region, so this build carries a fixed one. */
static const uint8_t uid[SGW_UID_SIZE] = { 0x53, 0x47, 0x57, 0x00, 0xf2, 0x05,
					   0x51, 0x45, 0x4d, 0x55, 0x00, 0x01 };

static uint8_t wire[SGW_MAX_WIRE];
static uint16_t tx_seq;
static bool led;

static void set_led(bool on)
{
	led = on;
	GPIOA_BSRR = on ? 1u << 5 : 1u << (5 + 16);
}


static void send(struct sgw_builder *b)
{
	int n = sgw_finish(b, wire, sizeof(wire));

	if (n > 0)
		uart_write(wire, n);
}

static void hello(void)
{
	int n = sgw_encode_hello(NODE_ADDR, tx_seq++, uid, 1, FW_VERSION, wire, sizeof(wire));

	if (n > 0)
		uart_write(wire, n);
}

static void report(void)
{
	struct sgw_builder b;
	struct reading r;

	sense(&r);
	sgw_begin(&b, SGW_TYPE_TELEMETRY, NODE_ADDR, tx_seq++);
	sgw_put_i32(&b, "MQ2", r.mq2);
	sgw_put_i32(&b, "MQ135", r.mq135);
	sgw_put_f32(&b, "DHT11_T", (float)r.deci_celsius / 10.0f);
	sgw_put_i32(&b, "DHT11_H", r.humidity);
	send(&b);
}

static bool name_is(const char *s, size_t len, const char *lit)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (lit[i] == '\0' || lit[i] != s[i])
			return false;
	return lit[len] == '\0';
}

static bool field_int(const struct sgw_field *f, int64_t *ret)
{
	if (f->vtype == SGW_VT_I32)
		*ret = f->v.i32;
	else if (f->vtype == SGW_VT_I64)
		*ret = f->v.i64;
	else
		return false;
	return true;
}

/* Applies what it knows, echoing each applied value; 422 when it knew none, 400 when the
 * fields cannot be read. */
static uint16_t property_set(struct sgw_reader *r, struct sgw_builder *reply)
{
	unsigned applied = 0, rejected = 0;
	struct sgw_field f;
	int64_t v;
	int k;

	while ((k = sgw_get_field(r, &f)) > 0) {
		if (name_is(f.key, f.key_len, "report_interval_ms") && field_int(&f, &v) &&
		    v >= 1 && v <= 86400000) {
			report_interval_ms = (uint32_t)v;
			sgw_put_i32(reply, "report_interval_ms", (int32_t)v);
			applied++;
		} else if (name_is(f.key, f.key_len, "led") && f.vtype == SGW_VT_BOOL) {
			set_led(f.v.b);
			sgw_put_bool(reply, "led", led);
			applied++;
		} else {
			rejected++;
		}
	}
	if (k < 0)
		return 400;
	return applied ? 200 : rejected ? 422 : 400;
}

static void command(const struct sgw_packet *pkt)
{
	struct sgw_builder reply;
	struct sgw_reader r;
	const char *name;
	size_t name_len;
	uint16_t cmd_id, code;
	uint8_t kind;

	if (pkt->addr != NODE_ADDR && pkt->addr != SGW_ADDR_BROADCAST)
		return;
	sgw_reader_init(&r, pkt->payload, pkt->payload_len);
	if (sgw_read_command(&r, &cmd_id, &kind, &name, &name_len) != SGW_OK)
		return;
	sgw_begin(&reply, SGW_TYPE_COMMAND_REPLY, NODE_ADDR, tx_seq);
	sgw_put_u16(&reply, cmd_id);
	sgw_put_u16(&reply, 0); /* the code, patched below */
	if (kind == SGW_CMD_PROPERTY_SET) {
		code = property_set(&r, &reply);
	} else if (kind == SGW_CMD_SERVICE && name_is(name, name_len, "ping")) {
		sgw_put_i64(&reply, "uptime_ms", ms_now);
		sgw_put_i64(&reply, "frames", tx_seq);
		code = 200;
	} else if (kind == SGW_CMD_CONTROL && name_is(name, name_len, "identify")) {
		set_led(!led);
		code = 200;
	} else {
		code = kind == SGW_CMD_SERVICE || kind == SGW_CMD_CONTROL ? 404 : 400;
	}
	if (pkt->addr == SGW_ADDR_BROADCAST)
		return;
	reply.buf[SGW_HEADER_SIZE + 2] = (uint8_t)(code >> 8);
	reply.buf[SGW_HEADER_SIZE + 3] = (uint8_t)code;
	if (code != 200)
		reply.len = SGW_HEADER_SIZE + 4; /* a refused command applied nothing */
	tx_seq++;
	send(&reply);
}

static struct sgw_rx rx;

static void poll_uart(void)
{
	struct sgw_packet pkt;

	while (USART1_SR & USART_SR_RXNE)
		if (sgw_rx_byte(&rx, (uint8_t)USART1_DR, &pkt) == 1 &&
		    pkt.type == SGW_TYPE_COMMAND)
			command(&pkt);
}

#endif

int main(void)
{
	uint32_t next;

	hw_init();
#ifndef FW_TEXT
	sgw_rx_init(&rx);
	wire[0] = 0; /* a lone delimiter: the gateway drops any half packet from before */
	uart_write(wire, 1);
#endif
	hello();
	next = ms_now;
	for (;;) {
		poll_uart();
		if ((int32_t)(ms_now - next) >= 0) {
			next += report_interval_ms;
			if ((int32_t)(ms_now - next) > 0)
				next = ms_now + report_interval_ms; /* after a long stall, no burst */
			if (++reports % 16 == 0)
				hello();
			report();
		}
	}
}
