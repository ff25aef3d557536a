/* Runs the cases of the generated invres_cases.h
 * (rnnpool_tflm.runtime.invres_harness.cases_header) through the
 * InvertedResidual kernel and prints one line per case:
 *   case <i> <ok|FAIL> status=<name> stage=<s> mismatches=<n> ticks=<t> prepared=<b> scratch=<b>
 * On the bare-metal Cortex-M4 (RNNPOOL_QEMU: QEMU netduinoplus2, semihosting)
 * a calibration line comes first -- a loop of known length timed with the
 * same SysTick counter, so that ticks convert to instructions under
 * `-icount shift=0` -- and the buffers are static, sized for the largest case.
 * On the host (the sanitizer build) every buffer is allocated with exactly the
 * size the kernel asks for, so AddressSanitizer sees any overrun.
 * Exit status: the number of failed cases. */
#include <stdio.h>
#include <stdlib.h>

#include "invres_cases.h"
#include "invres_harness.h"

#ifdef RNNPOOL_QEMU
#include "cycle_counter.h"

static uint8_t g_prepared[INVRES_HARNESS_PREPARED_BYTES] __attribute__((aligned(8)));
static uint8_t g_scratch[INVRES_HARNESS_SCRATCH_BYTES] __attribute__((aligned(8)));
static int8_t g_output[INVRES_HARNESS_OUTPUT_BYTES] __attribute__((aligned(8)));

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
#endif

int main(void) {
  int failures = 0, i;
#ifdef RNNPOOL_QEMU
  const invres_buffers buffers = {g_prepared, sizeof(g_prepared), g_scratch,         sizeof(g_scratch),
                                  g_output,   sizeof(g_output),   cycle_counter_read};
  cycle_counter_start();
  printf("calibration instructions=%lu ticks=%lu\n", 2ul * CALIBRATION_ITERATIONS, (unsigned long)calibration_ticks());
#endif
  for (i = 0; i < INVRES_HARNESS_CASE_COUNT; ++i) {
    invres_result r;
    const invres_case* c = &g_invres_cases[i];
#ifndef RNNPOOL_QEMU
    const size_t pb = invres_s8_prepared_bytes(&c->cfg), sb = invres_s8_scratch_bytes(&c->cfg);
    /* exactly sized (malloc's blocks are 16-byte aligned on the hosts this runs on) */
    void* prepared = malloc(pb ? pb : 1);
    void* scratch = malloc(sb ? sb : 1);
    int8_t* output = (int8_t*)malloc(c->output_elements ? c->output_elements : 1);
    const invres_buffers buffers = {prepared, pb, scratch, sb, output, c->output_elements, NULL};
#endif
    invres_harness_run(c, &buffers, &r);
    const int ok = r.status == INVRES_OK && r.mismatches == 0;
    failures += !ok;
    printf("case %d %s status=%s stage=%s mismatches=%lu ticks=%lu prepared=%lu scratch=%lu\n", i, ok ? "ok" : "FAIL",
           invres_status_name(r.status), r.stage[0] ? r.stage : "-", (unsigned long)r.mismatches,
           (unsigned long)r.eval_ticks, (unsigned long)r.prepared_bytes, (unsigned long)r.scratch_bytes);
#ifndef RNNPOOL_QEMU
    free(prepared);
    free(scratch);
    free(output);
#endif
  }
  printf("done failures=%d\n", failures);
  return failures;
}
