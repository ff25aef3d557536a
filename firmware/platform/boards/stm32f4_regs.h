/* The few STM32F4 peripheral registers the board code touches, as register blocks.
 *
 * The core's own peripherals (SysTick, SCB, DWT, ...) go by CMSIS-Core's names through
 * ../cortex_m4_core.h (core_cm4.h from TFLM's downloads, or its checked fallback). ST's
 * device header (stm32f4xx.h) is not among TFLM's downloads, so the RCC, PWR, FLASH, GPIO
 * and USART blocks are declared here: only the registers used, with reserved words
 * keeping every offset, each checked against the reference manual (RM0090 for the
 * F405/407/429/439, RM0390 for the F446; the offsets and bits used here are the same on
 * both). Section numbers are RM0090's. */
#ifndef RNNPOOL_STM32F4_REGS_H_
#define RNNPOOL_STM32F4_REGS_H_

#include <stddef.h>
#include <stdint.h>

/* RCC, RM0090 7.3 (register map 7.3.24). */
typedef struct {
  volatile uint32_t CR;         /* 0x00 */
  volatile uint32_t PLLCFGR;    /* 0x04 */
  volatile uint32_t CFGR;       /* 0x08 */
  volatile uint32_t CIR;        /* 0x0C */
  volatile uint32_t RSTR[4];    /* 0x10 AHB1RSTR, AHB2RSTR, AHB3RSTR, reserved */
  volatile uint32_t APBRSTR[2]; /* 0x20 APB1RSTR, APB2RSTR */
  volatile uint32_t RESERVED0[2];
  volatile uint32_t AHB1ENR; /* 0x30 */
  volatile uint32_t AHB2ENR; /* 0x34 */
  volatile uint32_t AHB3ENR; /* 0x38 */
  volatile uint32_t RESERVED1;
  volatile uint32_t APB1ENR; /* 0x40 */
} Stm32Rcc;

/* PWR, RM0090 5.4. */
typedef struct {
  volatile uint32_t CR;  /* 0x00 */
  volatile uint32_t CSR; /* 0x04 */
} Stm32Pwr;

/* Embedded flash interface, RM0090 3.9. */
typedef struct {
  volatile uint32_t ACR; /* 0x00 */
} Stm32Flash;

/* GPIO port, RM0090 8.4. */
typedef struct {
  volatile uint32_t MODER;   /* 0x00 */
  volatile uint32_t OTYPER;  /* 0x04 */
  volatile uint32_t OSPEEDR; /* 0x08 */
  volatile uint32_t PUPDR;   /* 0x0C */
  volatile uint32_t IDR;     /* 0x10 */
  volatile uint32_t ODR;     /* 0x14 */
  volatile uint32_t BSRR;    /* 0x18 */
  volatile uint32_t LCKR;    /* 0x1C */
  volatile uint32_t AFR[2];  /* 0x20 AFRL, 0x24 AFRH */
} Stm32Gpio;

/* USART, RM0090 30.6. */
typedef struct {
  volatile uint32_t SR;  /* 0x00 */
  volatile uint32_t DR;  /* 0x04 */
  volatile uint32_t BRR; /* 0x08 */
  volatile uint32_t CR1; /* 0x0C */
} Stm32Usart;

_Static_assert(offsetof(Stm32Rcc, AHB1ENR) == 0x30 && offsetof(Stm32Rcc, APB1ENR) == 0x40, "RCC layout");
_Static_assert(offsetof(Stm32Gpio, AFR) == 0x20, "GPIO layout");
_Static_assert(offsetof(Stm32Usart, CR1) == 0x0C, "USART layout");

/* Memory map, RM0090 2.3 Table 1. */
#define STM32_RCC ((Stm32Rcc*)0x40023800u)
#define STM32_PWR ((Stm32Pwr*)0x40007000u)
#define STM32_FLASH ((Stm32Flash*)0x40023C00u)
#define STM32_GPIO(port) ((Stm32Gpio*)(0x40020000u + 0x400u * (port))) /* GPIOA, GPIOB, ... 0x400 apart */
#define STM32_USART2 ((Stm32Usart*)0x40004400u)
#define STM32_USART3 ((Stm32Usart*)0x40004800u)

/* Bits used (RM0090 5.4.1, 5.4.2, 7.3.1-7.3.3, 7.3.10, 7.3.13, 3.9.1, 30.6.1, 30.6.4). */
#define RCC_CR_PLLON (1u << 24)
#define RCC_CR_PLLRDY (1u << 25)
#define RCC_APB1ENR_PWREN (1u << 28)
#define RCC_APB1ENR_USART_EN(n) (1u << (15u + (n))) /* USART2EN bit 17, USART3EN bit 18 */
#define PWR_CR_VOS_Pos 14u
#define PWR_CR_ODEN (1u << 16)
#define PWR_CR_ODSWEN (1u << 17)
#define PWR_CSR_ODRDY (1u << 16)
#define PWR_CSR_ODSWRDY (1u << 17)
#define FLASH_ACR_LATENCY_Msk 0xFu
#define FLASH_ACR_PRFTEN (1u << 8)
#define FLASH_ACR_ICEN (1u << 9)
#define FLASH_ACR_DCEN (1u << 10)
#define USART_SR_TC (1u << 6)
#define USART_SR_TXE (1u << 7)
#define USART_CR1_TE (1u << 3)
#define USART_CR1_UE (1u << 13)
#define GPIO_MODE_ALTERNATE 2u
#define GPIO_AF_USART1_3 7u

#endif /* RNNPOOL_STM32F4_REGS_H_ */
