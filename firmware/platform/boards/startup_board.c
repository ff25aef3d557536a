/* Cortex-M4F start-up for the real STM32F4 boards: vector table (core
 * exceptions; the firmware enables no peripheral interrupt), .data/.bss
 * initialisation, FPU enable, constructors, main(), then a halt that keeps
 * main's status. Faults print one line on the console and halt. */
#include <stdint.h>

#include "boards/board.h"

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
extern int main(void);
extern void __libc_init_array(void);

void Reset_Handler(void);
void Default_Handler(void);
void HardFault_Handler(void);
void SysTick_Handler(void) __attribute__((weak, alias("Default_Handler")));
void NMI_Handler(void) __attribute__((weak, alias("Default_Handler")));
void MemManage_Handler(void) __attribute__((weak, alias("HardFault_Handler")));
void BusFault_Handler(void) __attribute__((weak, alias("HardFault_Handler")));
void UsageFault_Handler(void) __attribute__((weak, alias("HardFault_Handler")));

__attribute__((section(".isr_vector"), used)) void (*const g_vectors[16])(void) = {
    (void (*)(void))(&_estack), Reset_Handler, NMI_Handler, HardFault_Handler,
    MemManage_Handler, BusFault_Handler, UsageFault_Handler, 0, 0, 0, 0,
    Default_Handler, Default_Handler, 0, Default_Handler, SysTick_Handler,
};

void Reset_Handler(void) {
  uint32_t* src = &_sidata;
  for (uint32_t* dst = &_sdata; dst < &_edata;) *dst++ = *src++;
  for (uint32_t* dst = &_sbss; dst < &_ebss;) *dst++ = 0;
  *(volatile uint32_t*)0xE000ED88 |= 0xFu << 20; /* CP10/CP11: the FPU */
  __asm__ volatile("dsb\n isb");
  __libc_init_array();
  board_halt(main());
}

void HardFault_Handler(void) {
  board_uart_write("FATAL: hard fault\nstatus: 3\n");
  board_halt(3);
}

void Default_Handler(void) {
  board_uart_write("FATAL: unexpected interrupt\nstatus: 3\n");
  board_halt(3);
}
