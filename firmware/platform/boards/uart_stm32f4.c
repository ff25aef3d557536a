/* Clock and console for the STM32F4 boards (see board.h; registers in stm32f4_regs.h).
 * Sequences: RM0090 (F405/407/429/439) and RM0390 (F446), sections "RCC", "PWR",
 * "Embedded flash" (ACR), "GPIO" and "USART". */
#include <stdint.h>

#include "boards/board.h"
#include "boards/stm32f4_regs.h"

#if !defined(RNNPOOL_CORE_CLOCK_HZ) || !defined(RNNPOOL_STM32_OVERDRIVE) || !defined(RNNPOOL_CONSOLE_USART) || \
    !defined(RNNPOOL_CONSOLE_TX_PORT) || !defined(RNNPOOL_CONSOLE_TX_PIN)
#error "board defines missing: build through rnnpool_tflm.deploy.build or PlatformIO (tools/pio_tflm.py)"
#endif
#if RNNPOOL_CONSOLE_USART != 2 && RNNPOOL_CONSOLE_USART != 3
#error "the console must be USART2 or USART3 (APB1, alternate function 7)"
#endif
#if RNNPOOL_CORE_CLOCK_HZ % 1000000u != 0u || RNNPOOL_CORE_CLOCK_HZ > 180000000u || \
    (RNNPOOL_CORE_CLOCK_HZ > 168000000u && !RNNPOOL_STM32_OVERDRIVE)
#error "unsupported core clock: whole MHz, at most 168 MHz (180 MHz with over-drive)"
#endif

/* HSI 16 MHz / M=8 = 2 MHz into the VCO, * N, / P=2: N = the clock in MHz. Q brings the
 * 48 MHz domain to at most 48 MHz (unused: no USB). */
#define PLL_M 8u
#define PLL_N (RNNPOOL_CORE_CLOCK_HZ / 1000000u)
#define PLL_Q ((2u * PLL_N + 47u) / 48u)
#define NEEDS_OVERDRIVE (RNNPOOL_CORE_CLOCK_HZ > 168000000u)
/* Regulator scale 1 (RM0090 5.1.4): VOS = 1 on the F405/F407, 0b11 on the over-drive chips. */
#define VOS_SCALE1 (RNNPOOL_STM32_OVERDRIVE ? 3u : 1u)
#define FLASH_WAIT_STATES 5u /* 150 < HCLK <= 180 MHz at 2.7-3.6 V (RM0090 Table 11) */
#define APB1_HZ (RNNPOOL_CORE_CLOCK_HZ / 4u)
#define CONSOLE_BAUD 115200u
#define CONSOLE_USART (RNNPOOL_CONSOLE_USART == 2 ? STM32_USART2 : STM32_USART3)

static void clock_init(void) {
  Stm32Rcc* const rcc = STM32_RCC;
  Stm32Pwr* const pwr = STM32_PWR;
  rcc->APB1ENR |= RCC_APB1ENR_PWREN;
  (void)rcc->APB1ENR;
  pwr->CR = (pwr->CR & ~(3u << PWR_CR_VOS_Pos)) | (VOS_SCALE1 << PWR_CR_VOS_Pos);
  /* PLLCFGR: M [5:0], N [14:6], P [17:16] (0 = /2), source [22] (0 = HSI), Q [27:24];
   * bits 31:28 kept (PLLR on the F446, reserved elsewhere). */
  rcc->PLLCFGR = (rcc->PLLCFGR & 0xF0000000u) | (PLL_Q << 24) | (PLL_N << 6) | PLL_M;
  rcc->CR |= RCC_CR_PLLON;
  while ((rcc->CR & RCC_CR_PLLRDY) == 0u) {
  }
  if (NEEDS_OVERDRIVE) {
    pwr->CR |= PWR_CR_ODEN;
    while ((pwr->CSR & PWR_CSR_ODRDY) == 0u) {
    }
    pwr->CR |= PWR_CR_ODSWEN;
    while ((pwr->CSR & PWR_CSR_ODSWRDY) == 0u) {
    }
  }
  Stm32Flash* const flash = STM32_FLASH;
  flash->ACR = FLASH_WAIT_STATES | FLASH_ACR_PRFTEN | FLASH_ACR_ICEN | FLASH_ACR_DCEN;
  while ((flash->ACR & FLASH_ACR_LATENCY_Msk) != FLASH_WAIT_STATES) {
  }
  /* CFGR: HPRE [7:4] = /1, PPRE1 [12:10] = /4 (0b101), PPRE2 [15:13] = /2 (0b100); then SW = PLL. */
  rcc->CFGR = (rcc->CFGR & ~0xFCF0u) | (5u << 10) | (4u << 13);
  rcc->CFGR = (rcc->CFGR & ~3u) | 2u;
  while ((rcc->CFGR & (3u << 2)) != (2u << 2)) { /* SWS: the PLL drives the system clock */
  }
}

static void uart_init(void) {
  Stm32Rcc* const rcc = STM32_RCC;
  Stm32Gpio* const gpio = STM32_GPIO(RNNPOOL_CONSOLE_TX_PORT);
  Stm32Usart* const usart = CONSOLE_USART;
  const uint32_t pin = RNNPOOL_CONSOLE_TX_PIN;
  rcc->AHB1ENR |= 1u << RNNPOOL_CONSOLE_TX_PORT; /* GPIOxEN: bit = port index */
  rcc->APB1ENR |= RCC_APB1ENR_USART_EN(RNNPOOL_CONSOLE_USART);
  (void)rcc->APB1ENR;
  gpio->MODER = (gpio->MODER & ~(3u << (2u * pin))) | (GPIO_MODE_ALTERNATE << (2u * pin));
  gpio->AFR[pin / 8u] = (gpio->AFR[pin / 8u] & ~(0xFu << (4u * (pin % 8u)))) | (GPIO_AF_USART1_3 << (4u * (pin % 8u)));
  usart->BRR = (APB1_HZ + CONSOLE_BAUD / 2u) / CONSOLE_BAUD; /* oversampling by 16: BRR = f / baud */
  usart->CR1 = USART_CR1_UE | USART_CR1_TE;
}

void board_init(void) {
  clock_init();
  uart_init();
}

static void put(Stm32Usart* usart, char c) {
  while ((usart->SR & USART_SR_TXE) == 0u) {
  }
  usart->DR = (uint8_t)c;
}

void board_uart_write(const char* text) {
  Stm32Usart* const usart = CONSOLE_USART;
  for (; *text != '\0'; ++text) {
    if (*text == '\n') put(usart, '\r');
    put(usart, *text);
  }
  while ((usart->SR & USART_SR_TC) == 0u) { /* the last byte has left */
  }
}

void board_halt(int status) {
  (void)status; /* already printed as "status: N" */
  __asm__ volatile("cpsid i");
  for (;;) {
    __asm__ volatile("wfi");
  }
}
