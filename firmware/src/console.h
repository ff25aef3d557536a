/* Where the firmware's text goes and how it stops.
 * QEMU (RNNPOOL_QEMU): ARM semihosting; the exit status becomes QEMU's.
 * Boards: the ST-LINK virtual COM port's USART (firmware/platform/boards),
 * then a halt (the status is printed, the core sleeps in a loop). */
#ifndef RNNPOOL_FIRMWARE_CONSOLE_H_
#define RNNPOOL_FIRMWARE_CONSOLE_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

void console_init(void);
void console_write(const char* text);
/* printf-style into a fixed buffer (newlib-nano: no %ll, no %f). */
void console_printf(const char* format, ...) __attribute__((format(printf, 1, 2)));
/* An unsigned 64-bit value in decimal (nano printf has no %llu). */
void console_write_u64(uint64_t value);
/* Ends the program with this status: QEMU exits with it, a board halts. */
void console_halt(int status) __attribute__((noreturn));

#ifdef __cplusplus
}
#endif

#endif /* RNNPOOL_FIRMWARE_CONSOLE_H_ */
