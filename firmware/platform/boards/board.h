/* The real STM32F4 boards: clock, serial console, halt (bare metal, no HAL).
 * One of RNNPOOL_BOARD_NUCLEO_F446RE, _DISCO_F407VG, _NUCLEO_F429ZI or
 * _NUCLEO_F439ZI selects the pins and the clock; RNNPOOL_CORE_CLOCK_HZ is the
 * core clock board_init() sets (HSI -> PLL: 168 MHz on the F407, 180 MHz on the
 * F429/F439/F446). Console: 115200 8N1 on the ST-LINK virtual COM port (Nucleo:
 * USART2 PA2 / USART3 PD8); the STM32F4DISCOVERY's ST-LINK has no VCP, so its
 * console is USART2 TX on PA2 (connect a 3.3 V USB-serial adapter). */
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
