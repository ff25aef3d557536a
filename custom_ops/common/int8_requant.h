/* TFLM's int8 requantization arithmetic, exactly (gemmlowp's fixed-point
 * primitives as TFLM's reference kernels and CMSIS-NN apply them), shared by
 * the custom ops that must reproduce TFLM's int8 convolutions byte for byte:
 * the InvertedResidual op and the narrow CONV_2D kernel. Header only, C99. */
#ifndef RNNPOOL_TFLM_INT8_REQUANT_H_
#define RNNPOOL_TFLM_INT8_REQUANT_H_

#include <stdint.h>

#if defined(__GNUC__)
#define I8_INLINE static inline __attribute__((always_inline))
#else
#define I8_INLINE static inline
#endif

I8_INLINE int32_t i8_wrap_add(int32_t a, int32_t b) { return (int32_t)((uint32_t)a + (uint32_t)b); }

/* gemmlowp's RoundingDivideByPOT: round half away from zero, e in [0, 31]. */
I8_INLINE int32_t i8_rounding_divide_by_pot(int32_t x, int32_t e) {
  const int32_t mask = (int32_t)(((uint32_t)1 << e) - 1u);
  const int32_t remainder = x & mask;
  const int32_t threshold = (mask >> 1) + (x < 0);
  return (x >> e) + (remainder > threshold);
}

/* gemmlowp's SaturatingRoundingDoublingHighMul for b >= 0 (no saturation case). */
I8_INLINE int32_t i8_srdhm(int32_t a, int32_t b) {
  const int64_t ab = (int64_t)a * b;
  const int64_t nudge = ab >= 0 ? (1 << 30) : (1 - (1 << 30));
  return (int32_t)((ab + nudge) / ((int64_t)1 << 31)); /* C division truncates toward zero */
}

/* TFLM's MultiplyByQuantizedMultiplier (double rounding); the left shift wraps like
 * the compiled `x * (1 << left_shift)`. */
I8_INLINE int32_t i8_mbqm(int32_t x, int32_t multiplier, int32_t shift) {
  const int32_t left = shift > 0 ? shift : 0;
  const int32_t right = shift > 0 ? 0 : -shift;
  return i8_rounding_divide_by_pot(i8_srdhm((int32_t)((uint32_t)x << left), multiplier), right);
}

/* SMMLAR: (a*b + c*2^32 + 2^31) >> 32, the high word rounded, plus c. */
I8_INLINE int32_t i8_smmlar(int32_t a, int32_t b, int32_t c) {
#if defined(__ARM_FEATURE_DSP) && defined(__GNUC__)
  int32_t r;
  __asm__("smmlar %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(c));
  return r;
#else
  return (int32_t)(((int64_t)a * b + (int64_t)c * 4294967296LL + 0x80000000LL) >> 32);
#endif
}

/* The SMMLAR form of MBQM, exact for shift n <= -1 and |x| < 2^30
 * (docs/inverted_residual.md, section 5.2): with e = -n and round = 2^(e-1),
 *   MBQM(x, M, n) = SMMLAR(2x, M, round - [x < 0]) >> e. */
I8_INLINE int32_t i8_requant_smmlar(int32_t x, int32_t multiplier, int32_t e, int32_t round) {
  return i8_smmlar((int32_t)((uint32_t)x << 1), multiplier, round + (x >> 31)) >> e;
}

/* TFLite's QuantizeMultiplier (quantization_util.cc, the double-rounding build) with exact
 * arithmetic and no libm: m = M * 2^(n - 31), M in [2^30, 2^31) or 0 (m == 0 or below
 * 2^-32); n > 30 is out of range. */
typedef enum { I8_QM_OK = 0, I8_QM_BAD_SCALE = 1, I8_QM_OUT_OF_RANGE = 2 } i8_qm_status;

static inline i8_qm_status i8_quantize_multiplier(double m, int32_t* multiplier, int32_t* shift) {
  int exponent = 0;
  int64_t q;
  if (!(m >= 0.0) || m - m != 0.0) return I8_QM_BAD_SCALE; /* negative, NaN or infinite */
  if (m == 0.0) {
    *multiplier = 0;
    *shift = 0;
    return I8_QM_OK;
  }
  /* frexp by exact scaling with powers of two: m = f * 2^exponent, f in [0.5, 1). */
  while (m >= 18446744073709551616.0) {
    m *= 1.0 / 18446744073709551616.0;
    exponent += 64;
  }
  while (m >= 1.0) {
    m *= 0.5;
    ++exponent;
  }
  while (m < 1.0 / 18446744073709551616.0) {
    m *= 18446744073709551616.0;
    exponent -= 64;
  }
  while (m < 0.5) {
    m *= 2.0;
    --exponent;
  }
  /* f * 2^31 is exact; + 0.5 then truncation rounds half away from zero (TfLiteRound). */
  q = (int64_t)(m * 2147483648.0 + 0.5);
  if (q == ((int64_t)1 << 31)) {
    q /= 2;
    ++exponent;
  }
  if (exponent < -31) { /* underflows to zero */
    *multiplier = 0;
    *shift = 0;
    return I8_QM_OK;
  }
  if (exponent > 30) return I8_QM_OUT_OF_RANGE;
  *multiplier = (int32_t)q;
  *shift = exponent;
  return I8_QM_OK;
}

#endif /* RNNPOOL_TFLM_INT8_REQUANT_H_ */
