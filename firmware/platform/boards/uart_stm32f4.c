/* Clock and console for the STM32F4 boards (see board.h). Register addresses and
 * sequences: RM0090 (F405/407/429/439) and RM0390 (F446), sections "RCC", "PWR",
 * "Embedded flash" (ACR), "GPIO" and "USART". */
#include <stdint.h>

#include "boards/board.h"

#define REG(addr) (*(volatile uint32_t*)(addr))

#define RCC_CR REG(0x40023800u)
#define RCC_PLLCFGR REG(0x40023804u)
#define RCC_CFGR REG(0x40023808u)
#define RCC_AHB1ENR REG(0x40023830u)
#define RCC_APB1ENR REG(0x40023840u)
#define PWR_CR REG(0x40007000u)
#define PWR_CSR REG(0x40007004u)
#define FLASH_ACR REG(0x40023C00u)

#if defined(RNNPOOL_BOARD_DISCO_F407VG)
#define PLL_N 168u     /* HSI 16 MHz / 8 * 168 / 2 = 168 MHz */
#define PLL_Q 7u
#define OVERDRIVE 0
#define VOS_BITS (1u << 14)
#else /* F429, F439, F446: 180 MHz needs scale 1 + over-drive */
#define PLL_N 180u
#define PLL_Q 8u
#define OVERDRIVE 1
#define VOS_BITS (3u << 14)
#endif
#define APB1_HZ (RNNPOOL_CORE_CLOCK_HZ / 4u)

#if defined(RNNPOOL_BOARD_NUCLEO_F429ZI) || defined(RNNPOOL_BOARD_NUCLEO_F439ZI)
#define GPIO_BASE 0x40020C00u /* GPIOD */
#define GPIO_EN (1u << 3)
#define TX_PIN 8u             /* PD8 = USART3_TX, AF7, ST-LINK VCP */
#define USART_BASE 0x40004800u
#define USART_EN (1u << 18)
#else
#define GPIO_BASE 0x40020000u /* GPIOA */
#define GPIO_EN (1u << 0)
#define TX_PIN 2u             /* PA2 = USART2_TX, AF7 */
#define USART_BASE 0x40004400u
#define USART_EN (1u << 17)
#endif
#define GPIO_MODER REG(GPIO_BASE + 0x00u)
#define GPIO_AFR(n) REG(GPIO_BASE + 0x20u + 4u * (n))
#define USART_SR REG(USART_BASE + 0x00u)
#define USART_DR REG(USART_BASE + 0x04u)
#define USART_BRR REG(USART_BASE + 0x08u)
#define USART_CR1 REG(USART_BASE + 0x0Cu)

static void clock_init(void) {
  RCC_APB1ENR |= 1u << 28; /* PWREN */
  (void)RCC_APB1ENR;
  PWR_CR = (PWR_CR & ~(3u << 14)) | VOS_BITS;
  /* HSI (on after reset) / M=8 = 2 MHz, * N, / P=2; keep bits 31:28 (PLLR on F446, reserved elsewhere). */
  RCC_PLLCFGR = (RCC_PLLCFGR & 0xF0000000u) | (PLL_Q << 24) | (0u << 22) | (0u << 16) | (PLL_N << 6) | 8u;
  RCC_CR |= 1u << 24; /* PLLON */
  while ((RCC_CR & (1u << 25)) == 0u) {
  }
#if OVERDRIVE
  PWR_CR |= 1u << 16; /* ODEN */
  while ((PWR_CSR & (1u << 16)) == 0u) {
  }
  PWR_CR |= 1u << 17; /* ODSWEN */
  while ((PWR_CSR & (1u << 17)) == 0u) {
  }
#endif
  FLASH_ACR = 5u | (1u << 8) | (1u << 9) | (1u << 10); /* 5 wait states, prefetch, I- and D-cache */
  while ((FLASH_ACR & 0xFu) != 5u) {
  }
  RCC_CFGR = (RCC_CFGR & ~0xFCF0u) | (5u << 10) | (4u << 13); /* AHB /1, APB1 /4, APB2 /2 */
  RCC_CFGR = (RCC_CFGR & ~3u) | 2u;                           /* system clock = PLL */
  while ((RCC_CFGR & (3u << 2)) != (2u << 2)) {
  }
}

static void uart_init(void) {
  RCC_AHB1ENR |= GPIO_EN;
  RCC_APB1ENR |= USART_EN;
  (void)RCC_APB1ENR;
  GPIO_MODER = (GPIO_MODER & ~(3u << (2u * TX_PIN))) | (2u << (2u * TX_PIN)); /* alternate function */
  GPIO_AFR(TX_PIN / 8u) = (GPIO_AFR(TX_PIN / 8u) & ~(0xFu << (4u * (TX_PIN % 8u)))) | (7u << (4u * (TX_PIN % 8u)));
  USART_BRR = (APB1_HZ + 115200u / 2u) / 115200u; /* oversampling by 16: BRR = f / baud */
  USART_CR1 = (1u << 13) | (1u << 3);             /* UE, TE */
}

void board_init(void) {
  clock_init();
  uart_init();
}

void board_uart_write(const char* text) {
  for (; *text != '\0'; ++text) {
    if (*text == '\n') {
      while ((USART_SR & (1u << 7)) == 0u) {
      }
      USART_DR = '\r';
    }
    while ((USART_SR & (1u << 7)) == 0u) { /* TXE */
    }
    USART_DR = (uint8_t)*text;
  }
  while ((USART_SR & (1u << 6)) == 0u) { /* TC: the last byte has left */
  }
}

void board_halt(int status) {
  (void)status; /* already printed as "status: N" */
  __asm__ volatile("cpsid i");
  for (;;) {
    __asm__ volatile("wfi");
  }
}
