#include "console.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#ifdef RNNPOOL_QEMU
#include "semihosting.h"
#else
#include "boards/board.h"
#endif

void console_init(void) {
#ifndef RNNPOOL_QEMU
  board_init();
#endif
}

void console_write(const char* text) {
#ifdef RNNPOOL_QEMU
  semihost_write(text);
#else
  board_uart_write(text);
#endif
}

void console_printf(const char* format, ...) {
  char line[192];
  va_list args;
  va_start(args, format);
  vsnprintf(line, sizeof line, format, args);
  va_end(args);
  console_write(line);
}

void console_write_u64(uint64_t value) {
  char digits[21];
  int i = 20;
  digits[i] = '\0';
  do {
    digits[--i] = (char)('0' + (int)(value % 10u));
    value /= 10u;
  } while (value != 0u);
  console_write(&digits[i]);
}

void console_halt(int status) {
#ifdef RNNPOOL_QEMU
  semihost_exit(status);
#else
  board_halt(status);
#endif
}

/* No heap: the tensor arena may extend to the end of SRAM (RNNPOOL_ARENA_FILL_SRAM),
 * where newlib's default _sbrk would place malloc's memory. Every allocation
 * fails instead (the firmware itself never allocates). */
void* _sbrk(int increment) {
  (void)increment;
  errno = ENOMEM;
  return (void*)-1;
}
