/* SPDX-License-Identifier: MIT */
/*
 * Example STM32F4 firmware using sgw_node: a node with six gas/climate sensors on USART1.
 *
 * At boot it sends a hello (chip UID, boot counter, firmware version), then a telemetry frame
 * every few seconds, and it answers commands from the gateway with a command-reply. The ADC
 * and DHT11 drivers are faked with static functions; everything else is what a real node does.
 * No libc and no heap: sensorgw links this file with -nostdlib to prove it.
 */
#include "sgw_node.h"

/* STM32F4 USART1 registers (RM0090 section 30.6) and the 96-bit unique ID (section 39.1). */
#define USART1_SR (*(volatile uint32_t *)0x40011000u)
#define USART1_DR (*(volatile uint32_t *)0x40011004u)
#define USART_SR_RXNE (1u << 5)
#define USART_SR_TXE (1u << 7)
#define UID_BASE ((const volatile uint8_t *)0x1FFF7A10u)

#define NODE_ADDR 3
#define FW_VERSION "1.4.2"

/* Reply codes follow HTTP, as the clouds' thing models do. */
#define CODE_OK 200
#define CODE_BAD_REQUEST 400
#define CODE_NOT_FOUND 404
#define CODE_NOT_IMPLEMENTED 501

enum adc_channel { ADC_MQ2, ADC_MQ135, ADC_MQ4, ADC_MQ7 };

/* Zero-initialised by the startup code, so no initialiser (and no memset) is needed. */
static struct sgw_rx rx;
static uint8_t wire[SGW_MAX_WIRE];
static uint16_t tx_seq;
static uint32_t report_period = 5; /* seconds between telemetry frames; settable */
static bool heater_on = true;      /* MQ heater enable; settable */
static uint16_t fake_tick;

/* ---- fake hardware ---- */

static uint16_t adc_read(enum adc_channel ch)
{
	static const uint16_t base[] = { 30, 95, 12, 8 };

	/* A real driver starts a conversion and waits for EOC; this one wobbles a little. */
	return (uint16_t)(base[ch] + (fake_tick & 3u));
}

static bool dht11_read(int8_t *ret_celsius, uint8_t *ret_humidity)
{
	*ret_celsius = 14;
	*ret_humidity = (uint8_t)(61 + (fake_tick & 1u));
	return true;
}

static uint32_t boot_counter_increment(void)
{
	/* Kept in backup SRAM on a real board; a RAM counter keeps the example short. */
	static uint32_t boots;

	return ++boots;
}

static void delay_ms(uint32_t ms)
{
	volatile uint32_t spin = ms * 4000u;

	while (spin > 0)
		spin--;
}

/* ---- USART ---- */

static void uart_write(const uint8_t *buf, int len)
{
	int i;

	for (i = 0; i < len; i++) {
		while (!(USART1_SR & USART_SR_TXE))
			;
		USART1_DR = buf[i];
	}
}

static void send(struct sgw_builder *b)
{
	int n = sgw_finish(b, wire, sizeof(wire));

	/* n < 0 only if a put failed (payload full, bad key): a bug found during development. */
	if (n > 0)
		uart_write(wire, n);
}

/* ---- protocol ---- */

static void send_hello(void)
{
	uint8_t uid[SGW_UID_SIZE];
	int i, n;

	for (i = 0; i < SGW_UID_SIZE; i++)
		uid[i] = UID_BASE[i];
	n = sgw_encode_hello(NODE_ADDR, tx_seq++, uid, boot_counter_increment(), FW_VERSION, wire,
			     sizeof(wire));
	if (n > 0)
		uart_write(wire, n);
}

static void send_telemetry(void)
{
	struct sgw_builder b;
	int8_t celsius;
	uint8_t humidity;

	sgw_begin(&b, SGW_TYPE_TELEMETRY, NODE_ADDR, tx_seq++);
	sgw_put_i32(&b, "MQ2", adc_read(ADC_MQ2));
	sgw_put_i32(&b, "MQ135", adc_read(ADC_MQ135));
	sgw_put_i32(&b, "MQ4", adc_read(ADC_MQ4));
	sgw_put_i32(&b, "MQ7", adc_read(ADC_MQ7));
	if (dht11_read(&celsius, &humidity)) {
		sgw_put_f32(&b, "DHT11_T", (float)celsius);
		sgw_put_i32(&b, "DHT11_H", humidity);
	}
	send(&b);
}

static bool str_eq(const char *s, size_t len, const char *lit)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (lit[i] == '\0' || lit[i] != s[i])
			return false;
	return lit[len] == '\0';
}

/* Applies the fields of a property-set in order; stops at the first one it cannot apply. */
static uint16_t property_set(struct sgw_reader *r)
{
	struct sgw_field f;
	int ret;

	while ((ret = sgw_get_field(r, &f)) > 0) {
		if (str_eq(f.key, f.key_len, "period") && f.vtype == SGW_VT_I32 && f.v.i32 >= 1 &&
		    f.v.i32 <= 3600)
			report_period = (uint32_t)f.v.i32;
		else if (str_eq(f.key, f.key_len, "heater") && f.vtype == SGW_VT_BOOL)
			heater_on = f.v.b;
		else
			return CODE_BAD_REQUEST;
	}
	return ret < 0 ? CODE_BAD_REQUEST : CODE_OK;
}

static void handle_command(const struct sgw_packet *pkt)
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

	if (kind == SGW_CMD_PROPERTY_SET)
		code = property_set(&r);
	else if (kind == SGW_CMD_SERVICE)
		code = str_eq(name, name_len, "read_now") ? CODE_OK : CODE_NOT_FOUND;
	else
		code = CODE_NOT_IMPLEMENTED;

	/* Broadcast commands are obeyed silently: twenty nodes answering at once would collide. */
	if (pkt->addr == SGW_ADDR_BROADCAST)
		return;

	sgw_begin(&reply, SGW_TYPE_COMMAND_REPLY, NODE_ADDR, tx_seq++);
	sgw_put_u16(&reply, cmd_id);
	sgw_put_u16(&reply, code);
	if (code == CODE_OK && kind == SGW_CMD_PROPERTY_SET) {
		/* Echo the values now in force, so the cloud's shadow matches the device. */
		sgw_put_i32(&reply, "period", (int32_t)report_period);
		sgw_put_bool(&reply, "heater", heater_on);
	} else if (code == CODE_OK) {
		sgw_put_i32(&reply, "MQ2", adc_read(ADC_MQ2));
		sgw_put_i32(&reply, "MQ7", adc_read(ADC_MQ7));
	}
	send(&reply);
}

static void poll_uart(void)
{
	struct sgw_packet pkt;

	while (USART1_SR & USART_SR_RXNE) {
		/* Bad packets return < 0; the receiver has already resynchronised, so skip them. */
		if (sgw_rx_byte(&rx, (uint8_t)USART1_DR, &pkt) == 1 &&
		    pkt.type == SGW_TYPE_COMMAND)
			handle_command(&pkt);
	}
}

void sgw_example_entry(void);

void sgw_example_entry(void)
{
	uint32_t ms = 0;

	sgw_rx_init(&rx);
	/* A lone delimiter makes the gateway drop whatever half packet we sent before a reset. */
	wire[0] = 0;
	uart_write(wire, 1);
	send_hello();
	for (;;) {
		poll_uart();
		delay_ms(10);
		ms += 10;
		if (ms >= report_period * 1000u) {
			ms = 0;
			fake_tick++;
			if (heater_on)
				send_telemetry();
		}
	}
}
