/* The cycle counter (cycle_counter.h) on the core's own timers, under CMSIS-Core's names
 * (cortex_m4_core.h: CMSIS-Core from TFLM's downloads when present, else its own definitions). */
#include "cycle_counter.h"

#include "cortex_m4_core.h"

#ifdef RNNPOOL_QEMU
/* SysTick counts down from 2^24 - 1; each wrap is counted by the interrupt. */
#define SYST_RELOAD SysTick_LOAD_RELOAD_Msk

static volatile uint32_t wraps;

void SysTick_Handler(void) { ++wraps; }

void cycle_counter_start(void) {
  SysTick->CTRL = 0;
  wraps = 0;
  SysTick->LOAD = SYST_RELOAD;
  SysTick->VAL = 0;
  SysTick->CTRL = SysTick_CTRL_ENABLE_Msk | SysTick_CTRL_TICKINT_Msk | SysTick_CTRL_CLKSOURCE_Msk;
  /* The counter shows 0 until its first clock edge reloads it; a read before
   * that would look like a whole wrap has passed. */
  while (SysTick->VAL == 0) {
  }
}

uint64_t cycle_counter_read(void) {
  uint32_t before, value;
  do { /* re-read if a wrap lands between the two reads */
    before = wraps;
    value = SysTick->VAL;
  } while (before != wraps);
  return (uint64_t)before * (SYST_RELOAD + 1u) + (SYST_RELOAD - value);
}
#else
static uint32_t last;
static uint64_t high;

void cycle_counter_start(void) {
  DCB->DEMCR |= DCB_DEMCR_TRCENA_Msk; /* trace on: DWT clocks */
  DWT->CYCCNT = 0;
  DWT->CTRL |= DWT_CTRL_CYCCNTENA_Msk;
  last = 0;
  high = 0;
}

/* Correct as long as it is read at least once per 2^32 cycles. */
uint64_t cycle_counter_read(void) {
  uint32_t now = DWT->CYCCNT;
  if (now < last) high += 1ull << 32;
  last = now;
  return high | now;
}
#endif
