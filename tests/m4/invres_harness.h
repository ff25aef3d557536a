/* Test and benchmark harness of the InvertedResidual C kernel: runs one vector
 * case (config, parameters, input, expected output) through prepare and eval
 * and compares the result. Used by invres_main.c on the bare-metal Cortex-M4
 * (QEMU) and on the host under AddressSanitizer/UBSan, with cases embedded as
 * C arrays (rnnpool_tflm.runtime.invres_harness.cases_header). */
#ifndef INVRES_HARNESS_H_
#define INVRES_HARNESS_H_

#include <stddef.h>
#include <stdint.h>

#include "inverted_residual.h"

typedef struct {
  invres_config cfg;
  invres_s8_params params;
  const int8_t* input;    /* [N, H, W, Ci] */
  const int8_t* expected; /* [N, Ho, Wo, Co] */
  size_t output_elements;
} invres_case;

typedef struct {
  void* prepared;
  size_t prepared_capacity;
  void* scratch;
  size_t scratch_capacity;
  int8_t* output;
  size_t output_capacity;
  uint64_t (*clock)(void); /* optional: times eval */
} invres_buffers;

typedef struct {
  invres_status status; /* the first status other than INVRES_OK */
  const char* stage;    /* where it came from */
  size_t mismatches;    /* output elements that differ */
  size_t prepared_bytes;
  size_t scratch_bytes;
  uint64_t eval_ticks;
} invres_result;

/* The constants eval reads: the params' weight and bias arrays. */
invres_s8_constants invres_case_constants(const invres_case* c);

/* Prepares, evaluates and compares; fills *result. */
void invres_harness_run(const invres_case* c, const invres_buffers* buffers, invres_result* result);

#endif /* INVRES_HARNESS_H_ */
