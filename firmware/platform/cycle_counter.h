/* A 64-bit cycle counter. Real boards: the DWT cycle counter (CYCCNT).
 * QEMU (RNNPOOL_QEMU): SysTick, whose count under `-icount shift=0` advances
 * deterministically with executed instructions (calibrate once against a loop
 * of known length; see cycle_counter_calibrate in the M4 tests). */
#ifndef RNNPOOL_CYCLE_COUNTER_H_
#define RNNPOOL_CYCLE_COUNTER_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

void cycle_counter_start(void);
uint64_t cycle_counter_read(void);

#ifdef __cplusplus
}
#endif

#endif /* RNNPOOL_CYCLE_COUNTER_H_ */
