/* Cortex-M4F start-up for QEMU and the STM32F4 boards: vector table (core
 * exceptions; the firmware enables no peripheral interrupt), .data/.bss
 * initialisation, FPU enable, C/C++ constructors, then main(). Faults print one
 * line and stop instead of hanging silently.
 * RNNPOOL_QEMU: output and exit status over semihosting (QEMU's exit status is
 * main's). Boards: the UART console and a halt that keeps the status, which the
 * firmware prints as "status: N" before it returns (a fault prints its own).
 * Core registers under CMSIS-Core's names (cortex_m4_core.h). */
#include <stdint.h>

#include "cortex_m4_core.h"
#include "stack_usage.h"

#ifdef RNNPOOL_QEMU
#include "semihosting.h"
#define PLATFORM_WRITE(text) semihost_write(text)
#define PLATFORM_EXIT(status) semihost_exit(status)
#define FAULT_STATUS_LINE ""
#else
#include "boards/board.h"
#define PLATFORM_WRITE(text) board_uart_write(text)
#define PLATFORM_EXIT(status) board_halt(status)
#define FAULT_STATUS_LINE "status: 3\n"
#endif

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _sstack, _estack;
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
    (void (*)(void))(&_estack),
    Reset_Handler,
    NMI_Handler,
    HardFault_Handler,
    MemManage_Handler,
    BusFault_Handler,
    UsageFault_Handler,
    0,
    0,
    0,
    0,
    Default_Handler,
    Default_Handler,
    0,
    Default_Handler,
    SysTick_Handler,
};

/* What the unused stack holds until something writes it (stack_used_bytes). */
#define STACK_PAINT 0xC5AC5AC5u

/* Paints the stack below the start-up code's own frame: [_sstack, sp - 64). */
static void paint_stack(void) {
  uint32_t* sp;
  __asm__ volatile("mov %0, sp" : "=r"(sp));
  for (uint32_t* p = &_sstack; p < sp - 16; ++p) *p = STACK_PAINT;
}

uint32_t stack_used_bytes(void) {
  const uint32_t* p = &_sstack;
  while (p < &_estack && *p == STACK_PAINT) ++p;
  return (uint32_t)((uintptr_t)&_estack - (uintptr_t)p);
}

void Reset_Handler(void) {
  uint32_t* src = &_sidata;
  paint_stack();
  for (uint32_t* dst = &_sdata; dst < &_edata;) *dst++ = *src++;
  for (uint32_t* dst = &_sbss; dst < &_ebss;) *dst++ = 0;
  /* CP10/CP11 full access: the FPU (fpv4-sp-d16, hard-float ABI). */
  SCB->CPACR |= (3UL << 20) | (3UL << 22);
  __DSB();
  __ISB();
  __libc_init_array();
  PLATFORM_EXIT(main());
}

void HardFault_Handler(void) {
  PLATFORM_WRITE("FATAL: hard fault\n" FAULT_STATUS_LINE);
  PLATFORM_EXIT(3);
}

void Default_Handler(void) {
  PLATFORM_WRITE("FATAL: unexpected interrupt\n" FAULT_STATUS_LINE);
  PLATFORM_EXIT(3);
}
