#include "cycle_counter.h"

#define REG(addr) (*(volatile uint32_t*)(addr))

#ifdef RNNPOOL_QEMU
/* SysTick counts down from 2^24 - 1; each wrap is counted by the interrupt. */
#define SYST_CSR REG(0xE000E010)
#define SYST_RVR REG(0xE000E014)
#define SYST_CVR REG(0xE000E018)
#define SYST_RELOAD 0x00FFFFFFu

static volatile uint32_t wraps;

void SysTick_Handler(void) { ++wraps; }

void cycle_counter_start(void) {
  SYST_CSR = 0;
  wraps = 0;
  SYST_RVR = SYST_RELOAD;
  SYST_CVR = 0;
  SYST_CSR = 0x7; /* enable, interrupt, processor clock */
  /* The counter shows 0 until its first clock edge reloads it; a read before
   * that would look like a whole wrap has passed. */
  while (SYST_CVR == 0) {
  }
}

uint64_t cycle_counter_read(void) {
  uint32_t before, value;
  do { /* re-read if a wrap lands between the two reads */
    before = wraps;
    value = SYST_CVR;
  } while (before != wraps);
  return (uint64_t)before * (SYST_RELOAD + 1u) + (SYST_RELOAD - value);
}
#else
#define DEMCR REG(0xE000EDFC)
#define DWT_CTRL REG(0xE0001000)
#define DWT_CYCCNT REG(0xE0001004)

static uint32_t last;
static uint64_t high;

void cycle_counter_start(void) {
  DEMCR |= 1u << 24; /* TRCENA */
  DWT_CYCCNT = 0;
  DWT_CTRL |= 1u;
  last = 0;
  high = 0;
}

/* Correct as long as it is read at least once per 2^32 cycles. */
uint64_t cycle_counter_read(void) {
  uint32_t now = DWT_CYCCNT;
  if (now < last) high += 1ull << 32;
  last = now;
  return high | now;
}
#endif
