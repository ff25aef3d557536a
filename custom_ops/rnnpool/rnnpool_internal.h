/* Internals shared by the int8 and float32 RNNPool kernels: checked size
 * arithmetic, the layer layout and the streaming driver's interface. */
#ifndef RNNPOOL_INTERNAL_H_
#define RNNPOOL_INTERNAL_H_

#include <stddef.h>
#include <stdint.h>

#include "rnnpool.h"

#define RNNPOOL_ALIGN 8u

/* The contract's option ranges as constants: RNNPOOL_OPTION_MIN_PATCH_ROWS ... */
#define RNNPOOL_OPTION_RANGE_(name, key, lo, hi) RNNPOOL_OPTION_MIN_##name = (lo), RNNPOOL_OPTION_MAX_##name = (hi),
enum { RNNPOOL_OPTIONS(RNNPOOL_OPTION_RANGE_) RNNPOOL_OPTION_RANGE_END_ = 0 };
#undef RNNPOOL_OPTION_RANGE_

/* Overflow-checked size arithmetic: once *ok is 0 the results are meaningless. */
static inline size_t rnnpool_mul(size_t a, size_t b, int* ok) {
  if (a != 0 && b > (size_t)-1 / a) {
    *ok = 0;
    return 0;
  }
  return a * b;
}

static inline size_t rnnpool_add(size_t a, size_t b, int* ok) {
  if (b > (size_t)-1 - a) {
    *ok = 0;
    return 0;
  }
  return a + b;
}

static inline size_t rnnpool_align_up(size_t v, int* ok) {
  return rnnpool_add(v, RNNPOOL_ALIGN - 1u, ok) & ~(size_t)(RNNPOOL_ALIGN - 1u);
}

/* Appends a region of `bytes` to a buffer being laid out; returns its offset. */
static inline size_t rnnpool_take(size_t* cursor, size_t bytes, int* ok) {
  const size_t at = *cursor;
  *cursor = rnnpool_add(at, rnnpool_align_up(bytes, ok), ok);
  return at;
}

static inline int rnnpool_is_aligned(const void* p, size_t alignment) { return ((uintptr_t)p & (alignment - 1u)) == 0; }

static inline int32_t rnnpool_even(int32_t v) { return v + (v & 1); }

/* The layer as the driver walks it (padded coordinates: row y of the padded
 * map is input row y - pad_top). */
typedef struct {
  rnnpool_config cfg;
  rnnpool_geometry geo;
  int32_t used_rows; /* Hu = (Ho - 1)*sr + r: rows any patch reaches */
  int32_t used_cols; /* Wu = (Wo - 1)*sc + c */
  int32_t row_slots; /* Ac = ceil(c/sc): row segments alive at one pixel */
  int32_t col_slots; /* Ar = ceil(r/sr): patch rows alive at one image row */
} rnnpool_layout;

rnnpool_status rnnpool_layout_init(const rnnpool_config* cfg, rnnpool_layout* layout);

/* A sequence of projected summaries for RNN2: element t (t = 0..steps-1) is
 * slot (first + t) mod slots of a ring of `slots` entries `slot_bytes` apart
 * (a plain array: first = 0, slots = steps). */
typedef struct {
  const uint8_t* ring;
  size_t slot_bytes;
  int32_t first;
  int32_t slots;
  int32_t steps;
} rnnpool_sequence;

static inline const void* rnnpool_sequence_at(const rnnpool_sequence* s, int32_t t) {
  int32_t slot = s->first + t;
  if (slot >= s->slots) slot -= s->slots;
  return s->ring + (size_t)slot * s->slot_bytes;
}

/* The element-type specific work, called by the drivers. `work` is the
 * variant's own scratch area (work_bytes at the start of the scratch). */
typedef struct {
  size_t state_bytes;     /* one RNN1 state (a multiple of 4) */
  size_t input_bytes;     /* one projected pixel: RNN1's step input (a multiple of 4) */
  size_t proj_bytes;      /* one W2-projected summary: RNN2's step input (a multiple of 4) */
  size_t in_pixel_bytes;  /* k input elements */
  size_t out_pixel_bytes; /* 4*h2 output elements */
  size_t work_bytes;
  /* W1-projects one input pixel (NULL: padding) into `input`. */
  void (*project)(const void* prepared, const void* pixel, void* input, void* work);
  /* The first step of a sequence (from state 0) on a projected pixel. */
  void (*fresh)(const void* prepared, const void* input, void* state, void* work);
  /* One step of state a on input ia and, unless b is NULL, of state b on ib (ib may be ia). */
  void (*step)(const void* prepared, void* a, const void* ia, void* b, const void* ib, void* work);
  /* W2-projects a finished RNN1 summary. */
  void (*summarize)(const void* prepared, const void* state, void* proj, void* work);
  /* RNN2 forward and backward over one sequence of summaries -> 2*h2 output elements. */
  void (*pool)(const void* prepared, const rnnpool_sequence* seq, void* out_half, void* work);
} rnnpool_stream_ops;

/* Scratch bytes of the driver's regions plus ops->work_bytes; 0 on overflow.
 * The driver (and so the size) depends on cfg.rnn1_mode. */
size_t rnnpool_stream_scratch_bytes(const rnnpool_layout* layout, const rnnpool_stream_ops* ops);

/* Runs the whole layer over all N (see docs/kernel.md, "Work organisation"). */
rnnpool_status rnnpool_stream_run(const rnnpool_layout* layout, const rnnpool_stream_ops* ops, const void* prepared,
                                  const void* input, void* output, void* scratch, size_t scratch_bytes);

/* The in-place lag of the driver cfg.rnn1_mode selects (rnnpool.h,
 * rnnpool_s8_inplace_lag), for pixels of these sizes. */
rnnpool_status rnnpool_stream_inplace_lag(const rnnpool_layout* layout, size_t in_pixel_bytes, size_t out_pixel_bytes,
                                          int64_t* lag_bytes);

/* TFLite QuantizeMultiplier (docs/quantization.md, section 3) with exact
 * arithmetic and no libm. Returns RNNPOOL_OK, RNNPOOL_ERR_BAD_SCALE (m
 * negative or not finite) or RNNPOOL_ERR_MULTIPLIER_RANGE (exponent > 30). */
rnnpool_status rnnpool_quantize_multiplier(double m, int32_t* multiplier, int32_t* shift);

/* 2^e as a double, exactly (|e| < 1000). */
double rnnpool_pow2(int e);

/* A positive finite float32. */
static inline int rnnpool_scale_ok(float s) { return s > 0.0f && s - s == 0.0f; }

#endif /* RNNPOOL_INTERNAL_H_ */
