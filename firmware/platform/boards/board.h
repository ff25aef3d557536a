/* The real STM32F4 boards: clock, serial console, halt (bare metal, no HAL).
 *
 * Everything that differs between the boards comes from the board record
 * (rnnpool_tflm/core/boards.py) as defines, set by rnnpool_tflm.deploy.build.board_defines
 * and, under PlatformIO, by tools/pio_tflm.py from the same function:
 *   RNNPOOL_CORE_CLOCK_HZ      core clock board_init() sets (HSI -> PLL): 168 or 180 MHz
 *   RNNPOOL_STM32_OVERDRIVE    1 on the F42x/F43x/F446 (PWR over-drive, 2-bit VOS), else 0
 *   RNNPOOL_CONSOLE_USART      2 or 3: the console USART (both on APB1, AF7)
 *   RNNPOOL_CONSOLE_TX_PORT    its TX pin's GPIO port, 0 = A, 1 = B, ...
 *   RNNPOOL_CONSOLE_TX_PIN     its TX pin number
 * The console runs at 115200 8N1 (TX only). */
#ifndef RNNPOOL_BOARD_H_
#define RNNPOOL_BOARD_H_

#ifdef __cplusplus
extern "C" {
#endif

void board_init(void);
void board_uart_write(const char* text);
void board_halt(int status) __attribute__((noreturn));

#ifdef __cplusplus
}
#endif

#endif /* RNNPOOL_BOARD_H_ */
