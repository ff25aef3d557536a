/* Internal to the InvertedResidual kernel: the prepared buffer's layout, the
 * per-channel records eval builds in its scratch, and the arithmetic
 * primitives (docs/inverted_residual.md, sections 4 and 5). */
#ifndef INVERTED_RESIDUAL_INTERNAL_H_
#define INVERTED_RESIDUAL_INTERNAL_H_

#include <stddef.h>
#include <stdint.h>

#include "int8_requant.h"
#include "inverted_residual.h"

#if defined(__GNUC__)
#define INVRES_INLINE static inline __attribute__((always_inline))
#else
#define INVRES_INLINE static inline
#endif

#define INVRES_MAGIC 0x31535249u /* "IRS1" */

/* How a stage turns an accumulator into its output (docs section 5.2). */
#define INVRES_FORM_SMMLAR 0  /* every channel: shift <= -1, |accumulator| < 2^30 */
#define INVRES_FORM_GENERAL 1 /* TFLM's formula, step by step, with int32 wrap-around */
#define INVRES_FORM_ABSENT (-1)

/* One stage (a convolution) as prepared. */
typedef struct {
  int32_t channels;      /* output channels */
  int32_t zero_point_in; /* folded into the biases (eval) */
  int32_t zero_point_out;
  int32_t lo, hi;        /* clamp (CalculateActivationRangeQuantized) */
  int32_t full_range;    /* lo == -128 && hi == 127: the clamp is one saturation */
  int32_t form;          /* INVRES_FORM_* */
  uint32_t quant_offset; /* byte offset of its [channels][2] (multiplier, shift) pairs in the prepared buffer */
} invres_stage_info;

/* The ADD (docs section 4.5) as prepared. */
typedef struct {
  int32_t multiplier1, shift1, multiplier2, shift2, multiplier_out, shift_out;
  int32_t zero_point1, zero_point2, zero_point_out, lo, hi, form;
} invres_add_info;

/* Where eval puts things in its scratch (byte offsets; 0 size = absent). */
typedef struct {
  uint32_t records[3];     /* invres_record [channels] per stage */
  uint32_t tables;         /* int32 [2][256]: the ADD's rescaled inputs */
  uint32_t ring;           /* int8 [3][ring_cols][Ce] */
  uint32_t expand_buffer;  /* int16: four widened input pixels */
  uint32_t project_buffer; /* int16: four widened depthwise pixels */
  uint32_t total;
} invres_scratch_layout;

typedef struct {
  uint32_t magic;
  uint32_t prepared_bytes;
  invres_config cfg;
  invres_geometry geo;
  int32_t ring_cols; /* (Wo - 1)*stride + 3 */
  invres_stage_info stage[3];
  invres_add_info add;
  invres_scratch_layout scratch;
} invres_prepared;

typedef char invres_prepared_header_fits[(sizeof(invres_prepared) <= INVRES_PREPARED_HEADER_BYTES) ? 1 : -1];

/* Built by eval in its scratch, one per output channel of a stage (16 bytes: one LDM). */
typedef struct {
  int32_t bias;       /* bias - zp_in * sum(w), int32 wrap-around */
  int32_t multiplier; /* M */
  int32_t shift;      /* SMMLAR form: the right shift e = -n >= 1; general form: TFLM's n */
  int32_t round;      /* SMMLAR form: 2^(e-1); general form: unused */
} invres_record;

/* ---- shared helpers (inverted_residual_common.c) --------------------------------------- */

invres_status invres_layout(const invres_config* cfg, invres_geometry* geo, int32_t* ring_cols,
                            invres_scratch_layout* scratch, uint32_t* prepared_bytes);
/* TFLM's QuantizeMultiplier (double rounding build): m = M * 2^(n - 31); n > 30 is an error. */
invres_status invres_quantize_multiplier(double m, int32_t* multiplier, int32_t* shift);
/* CalculateActivationRangeQuantized for an int8 output. */
invres_status invres_activation_range(int32_t activation, float scale, int32_t zero_point, int32_t* lo, int32_t* hi);

/* The SMMLAR form of MBQM for shift n <= -1 and |x| < 2^30 (docs section 5.2):
 * SRDHM(x, M) = SMMULR(2x, M), and for e >= 1, with [x < 0] in place of [h < 0],
 * RDBPOT(h, e) = (h + 2^(e-1) - [x < 0]) >> e, so the whole step is
 * SMMLAR(2x, M, 2^(e-1) - [x < 0]) >> e. */
INVRES_INLINE int32_t invres_requant_smmlar(int32_t x, const invres_record* r) {
  return i8_requant_smmlar(x, r->multiplier, r->shift, r->round);
}

INVRES_INLINE int32_t invres_requant_general(int32_t x, const invres_record* r) {
  return i8_mbqm(x, r->multiplier, r->shift);
}

/* + zero point, then the clamp. */
INVRES_INLINE int32_t invres_clamp(int32_t v, int32_t lo, int32_t hi) { return v < lo ? lo : (v > hi ? hi : v); }

#endif /* INVERTED_RESIDUAL_INTERNAL_H_ */
