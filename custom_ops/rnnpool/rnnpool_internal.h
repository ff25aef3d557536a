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

static inline int rnnpool_is_aligned(const void* p, size_t alignment) {
  return ((uintptr_t)p & (alignment - 1u)) == 0;
}

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

/* What one patch's RNN2 reads: its r W2-projected row summaries (ring slots
 * row_first, row_first + 1, ... modulo r, already offset to the patch's
 * column) and its c projected column summaries (slots modulo c). */
typedef struct {
  const uint8_t* row_ring;
  size_t row_slot_bytes;
  int32_t row_first;
  int32_t rows;
  const uint8_t* col_ring;
  size_t col_slot_bytes;
  int32_t col_first;
  int32_t cols;
} rnnpool_patch_view;

static inline const void* rnnpool_view_row(const rnnpool_patch_view* v, int32_t t) {
  int32_t slot = v->row_first + t;
  if (slot >= v->rows) slot -= v->rows;
  return v->row_ring + (size_t)slot * v->row_slot_bytes;
}

static inline const void* rnnpool_view_col(const rnnpool_patch_view* v, int32_t t) {
  int32_t slot = v->col_first + t;
  if (slot >= v->cols) slot -= v->cols;
  return v->col_ring + (size_t)slot * v->col_slot_bytes;
}

/* The element-type specific work, called by the driver. `work` is the
 * variant's own scratch area (work_bytes at the start of the scratch). */
typedef struct {
  size_t state_bytes;     /* one RNN1 state (a multiple of 4) */
  size_t proj_bytes;      /* one W2-projected summary */
  size_t in_pixel_bytes;  /* k input elements */
  size_t out_pixel_bytes; /* 4*h2 output elements */
  size_t work_bytes;
  /* W1-projects one input pixel (NULL: padding) into the work area. */
  void (*project)(const void* prepared, const void* pixel, void* work);
  /* The first step of a segment (from state 0) on the projected pixel. */
  void (*fresh)(const void* prepared, void* state, void* work);
  /* One step of each of two segments (b may be NULL) on the projected pixel. */
  void (*step)(const void* prepared, void* a, void* b, void* work);
  /* W2-projects a finished RNN1 summary. */
  void (*summarize)(const void* prepared, const void* state, void* proj, void* work);
  /* RNN2 over one patch's summaries -> one output pixel. */
  void (*patch)(const void* prepared, const rnnpool_patch_view* view, void* out_pixel, void* work);
} rnnpool_stream_ops;

/* Scratch bytes of the driver's regions plus ops->work_bytes; 0 on overflow. */
size_t rnnpool_stream_scratch_bytes(const rnnpool_layout* layout, const rnnpool_stream_ops* ops);

/* Runs the whole layer over all N (see docs/kernel.md, "Work organisation"). */
rnnpool_status rnnpool_stream_run(const rnnpool_layout* layout, const rnnpool_stream_ops* ops,
                                  const void* prepared, const void* input, void* output, void* scratch,
                                  size_t scratch_bytes);

/* TFLite QuantizeMultiplier (docs/quantization.md, section 3) with exact
 * arithmetic and no libm. Returns RNNPOOL_OK, RNNPOOL_ERR_BAD_SCALE (m
 * negative or not finite) or RNNPOOL_ERR_MULTIPLIER_RANGE (exponent > 30). */
rnnpool_status rnnpool_quantize_multiplier(double m, int32_t* multiplier, int32_t* shift);

/* 2^e as a double, exactly (|e| < 1000). */
double rnnpool_pow2(int e);

/* A positive finite float32. */
static inline int rnnpool_scale_ok(float s) { return s > 0.0f && s - s == 0.0f; }

#endif /* RNNPOOL_INTERNAL_H_ */
