/* Bare-metal Cortex-M4 program (QEMU netduinoplus2, semihosting): runs the
 * cases of the generated cases.h (rnnpool_tflm.m4_toolchain.cases_header)
 * and prints one line per case:
 *   case <i> <ok|FAIL> status=<name> mismatches=<n> ticks=<t> prepared=<b> scratch=<b> patches=<p>
 * after a calibration line: a loop of known length timed with the same
 * SysTick counter, so that ticks convert to instructions under
 * `-icount shift=0`. Exit status: the number of failed cases. */
#include <stdio.h>

#include "cases.h"
#include "cycle_counter.h"
#include "harness.h"

static uint8_t g_prepared[HARNESS_PREPARED_BYTES] __attribute__((aligned(8)));
static uint8_t g_scratch[HARNESS_SCRATCH_BYTES] __attribute__((aligned(8)));
static uint8_t g_output[HARNESS_OUTPUT_BYTES] __attribute__((aligned(8)));

#define CALIBRATION_ITERATIONS 1000000u /* two instructions each: subs, bne */

static uint64_t calibration_ticks(void) {
  uint64_t start = cycle_counter_read();
  __asm__ volatile(
      "mov r4, %0\n"
      "1: subs r4, r4, #1\n"
      "bne 1b\n"
      :
      : "r"(CALIBRATION_ITERATIONS)
      : "r4", "cc");
  return cycle_counter_read() - start;
}

int main(void) {
  const harness_buffers buffers = {g_prepared, sizeof(g_prepared), g_scratch,         sizeof(g_scratch),
                                   g_output,   sizeof(g_output),   cycle_counter_read};
  int failures = 0, i;
  cycle_counter_start();
  printf("calibration instructions=%lu ticks=%lu\n", 2ul * CALIBRATION_ITERATIONS, (unsigned long)calibration_ticks());
  for (i = 0; i < HARNESS_CASE_COUNT; ++i) {
    harness_result r;
    const harness_case* c = &g_cases[i];
    harness_run(c, &buffers, &r);
    const int ok = r.status == RNNPOOL_OK && r.mismatches == 0;
    failures += !ok;
    printf("case %d %s status=%s stage=%s mismatches=%lu ticks=%lu prepared=%lu scratch=%lu\n", i, ok ? "ok" : "FAIL",
           rnnpool_status_name(r.status), r.stage[0] ? r.stage : "-", (unsigned long)r.mismatches,
           (unsigned long)r.eval_ticks, (unsigned long)r.prepared_bytes, (unsigned long)r.scratch_bytes);
  }
  printf("done failures=%d\n", failures);
  return failures;
}
