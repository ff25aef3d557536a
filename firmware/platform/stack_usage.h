/* The stack's high-water mark: the start-up code (startup_cm4.c) paints the stack
 * region [_sstack, sp) before main; the bytes between the region's top and the lowest
 * word written since are what the firmware has used so far, interrupts included. */
#ifndef RNNPOOL_STACK_USAGE_H_
#define RNNPOOL_STACK_USAGE_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

uint32_t stack_used_bytes(void);

#ifdef __cplusplus
}
#endif

#endif /* RNNPOOL_STACK_USAGE_H_ */
