/* Internal to the InvertedResidual kernel: the prepared buffer's layout, the
 * per-channel records eval builds in its scratch, and the arithmetic
 * primitives (docs/inverted_residual.md, sections 4 and 5). */
#ifndef INVERTED_RESIDUAL_INTERNAL_H_
#define INVERTED_RESIDUAL_INTERNAL_H_

#include <stddef.h>
#include <stdint.h>

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

/* ---- arithmetic primitives -------------------------------------------------------------- */

INVRES_INLINE int32_t invres_wrap_add(int32_t a, int32_t b) { return (int32_t)((uint32_t)a + (uint32_t)b); }

/* gemmlowp's RoundingDivideByPOT: round half away from zero, e in [0, 31]. */
INVRES_INLINE int32_t invres_rounding_divide_by_pot(int32_t x, int32_t e) {
  const int32_t mask = (int32_t)(((uint32_t)1 << e) - 1u);
  const int32_t remainder = x & mask;
  const int32_t threshold = (mask >> 1) + (x < 0);
  return (x >> e) + (remainder > threshold);
}

/* gemmlowp's SaturatingRoundingDoublingHighMul for b >= 0 (no saturation case). */
INVRES_INLINE int32_t invres_srdhm(int32_t a, int32_t b) {
  const int64_t ab = (int64_t)a * b;
  const int64_t nudge = ab >= 0 ? (1 << 30) : (1 - (1 << 30));
  return (int32_t)((ab + nudge) / ((int64_t)1 << 31)); /* C division truncates toward zero */
}

/* TFLM's MultiplyByQuantizedMultiplier (double rounding); the left shift wraps like
 * the compiled `x * (1 << left_shift)`. */
INVRES_INLINE int32_t invres_mbqm(int32_t x, int32_t multiplier, int32_t shift) {
  const int32_t left = shift > 0 ? shift : 0;
  const int32_t right = shift > 0 ? 0 : -shift;
  return invres_rounding_divide_by_pot(invres_srdhm((int32_t)((uint32_t)x << left), multiplier), right);
}

/* SMMLAR: (a*b + c*2^32 + 2^31) >> 32, the high word rounded, plus c. */
INVRES_INLINE int32_t invres_smmlar(int32_t a, int32_t b, int32_t c) {
#if defined(__ARM_FEATURE_DSP) && defined(__GNUC__)
  int32_t r;
  __asm__("smmlar %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(c));
  return r;
#else
  return (int32_t)(((int64_t)a * b + (int64_t)c * 4294967296LL + 0x80000000LL) >> 32);
#endif
}

/* The SMMLAR form of MBQM for shift n <= -1 and |x| < 2^30 (docs section 5.2):
 * SRDHM(x, M) = SMMULR(2x, M), and for e >= 1, with [x < 0] in place of [h < 0],
 * RDBPOT(h, e) = (h + 2^(e-1) - [x < 0]) >> e, so the whole step is
 * SMMLAR(2x, M, 2^(e-1) - [x < 0]) >> e. */
INVRES_INLINE int32_t invres_requant_smmlar(int32_t x, const invres_record* r) {
  return invres_smmlar((int32_t)((uint32_t)x << 1), r->multiplier, r->round + (x >> 31)) >> r->shift;
}

INVRES_INLINE int32_t invres_requant_general(int32_t x, const invres_record* r) {
  return invres_mbqm(x, r->multiplier, r->shift);
}

/* + zero point, then the clamp. */
INVRES_INLINE int32_t invres_clamp(int32_t v, int32_t lo, int32_t hi) { return v < lo ? lo : (v > hi ? hi : v); }

#endif /* INVERTED_RESIDUAL_INTERNAL_H_ */
