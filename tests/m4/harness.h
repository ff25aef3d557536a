/* Test and benchmark harness of the RNNPool C kernel: runs one vector case
 * (configuration, parameters, input, expected output) through prepare and
 * eval and compares the result. Shared by the bare-metal Cortex-M4 program
 * (main_m4.c, cases embedded as C arrays) and the host program run under
 * AddressSanitizer/UBSan (main_host.c, cases read from files). */
#ifndef RNNPOOL_HARNESS_H_
#define RNNPOOL_HARNESS_H_

#include <stddef.h>
#include <stdint.h>

#include "rnnpool.h"

#define HARNESS_INT8 0
#define HARNESS_FLOAT32 1

typedef struct {
  rnnpool_config cfg;
  int32_t variant;        /* HARNESS_INT8 or HARNESS_FLOAT32 */
  rnnpool_s8_params s8;   /* int8 cases */
  rnnpool_f32_params f32; /* float32 cases */
  const void* input;      /* [N, H, W, k] */
  const void* expected;   /* [N, Ho, Wo, 4*h2] */
  size_t output_elements;
  float tolerance; /* float32: largest accepted absolute difference */
  int32_t inplace; /* 1: run with the output overlapping the input at the op's in-place lag
                      (the input copied into the output buffer first) */
} harness_case;

typedef struct {
  void* prepared;
  size_t prepared_capacity;
  void* scratch;
  size_t scratch_capacity;
  void* output;
  size_t output_capacity;  /* bytes */
  uint64_t (*clock)(void); /* optional: times eval */
} harness_buffers;

typedef struct {
  rnnpool_status status; /* the first status other than RNNPOOL_OK */
  const char* stage;     /* where it came from */
  size_t mismatches;     /* output elements that differ */
  size_t prepared_bytes;
  size_t scratch_bytes;
  uint64_t eval_ticks;
} harness_result;

/* Sizes the buffers must have for this case (the kernel's size functions;
 * an in-place case needs its input and output overlapped at the lag in the
 * output buffer). */
void harness_case_bytes(const harness_case* c, size_t* prepared, size_t* scratch, size_t* output);

/* Prepares, evaluates and compares; fills *result. */
void harness_run(const harness_case* c, const harness_buffers* buffers, harness_result* result);

#endif /* RNNPOOL_HARNESS_H_ */
