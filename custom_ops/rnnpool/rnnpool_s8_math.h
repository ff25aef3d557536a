/* The integer arithmetic of docs/quantization.md as inline primitives:
 * dot products over int16 pairs (section 4), requantization (3),
 * nonlinearities (5) and the FastGRNN unit update (6).
 *
 * Two implementations of the same integers: portable C99, and Cortex-M4
 * DSP instructions (SMLAD, SMMUL, SMMULR, SMLATB, SSAT, SXTB16) selected by
 * __ARM_FEATURE_DSP. The kernels (rnnpool_s8.c) are written once on top. */
#ifndef RNNPOOL_S8_MATH_H_
#define RNNPOOL_S8_MATH_H_

#include <stdint.h>
#include <string.h>

#include "rnnpool_lut.h"

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#include <arm_acle.h>
#define RNNPOOL_DSP 1
#else
#define RNNPOOL_DSP 0
#endif

#if defined(__GNUC__)
#define RNNPOOL_INLINE static inline __attribute__((always_inline))
#else
#define RNNPOOL_INLINE static inline
#endif

#define RNNPOOL_Q14_ONE 16384
#define RNNPOOL_SAT25_MIN (-(1 << 24))
#define RNNPOOL_SAT25_MAX ((1 << 24) - 1)

/* ---- saturation ------------------------------------------------------------- */

RNNPOOL_INLINE int32_t rnnpool_clamp(int32_t v, int32_t lo, int32_t hi) { return v < lo ? lo : (v > hi ? hi : v); }

#if RNNPOOL_DSP
#define rnnpool_sat25(v) __ssat((v), 25)
#define rnnpool_sat16(v) __ssat((v), 16)
#define rnnpool_sat8(v) __ssat((v), 8)
#else
#define rnnpool_sat25(v) rnnpool_clamp((v), RNNPOOL_SAT25_MIN, RNNPOOL_SAT25_MAX)
#define rnnpool_sat16(v) rnnpool_clamp((v), -32768, 32767)
#define rnnpool_sat8(v) rnnpool_clamp((v), -128, 127)
#endif

/* ---- dot products over int16 pairs ------------------------------------------------ */

#if RNNPOOL_DSP
typedef uint32_t rnnpool_pair; /* two int16, loaded as one word */
RNNPOOL_INLINE rnnpool_pair rnnpool_load_pair(const int16_t* p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}
RNNPOOL_INLINE int32_t rnnpool_mac2(rnnpool_pair w, rnnpool_pair x, int32_t acc) {
  return (int32_t)__smlad((int32_t)w, (int32_t)x, acc);
}
/* Two consecutive pairs with one 64-bit load (LDRD). */
RNNPOOL_INLINE void rnnpool_load_pairs(const int16_t* p, rnnpool_pair* first, rnnpool_pair* second) {
  uint64_t v;
  memcpy(&v, p, 8);
  *first = (uint32_t)v;
  *second = (uint32_t)(v >> 32);
}
#else
typedef const int16_t* rnnpool_pair;
RNNPOOL_INLINE rnnpool_pair rnnpool_load_pair(const int16_t* p) { return p; }
RNNPOOL_INLINE void rnnpool_load_pairs(const int16_t* p, rnnpool_pair* first, rnnpool_pair* second) {
  *first = p;
  *second = p + 2;
}
RNNPOOL_INLINE int32_t rnnpool_mac2(rnnpool_pair w, rnnpool_pair x, int32_t acc) {
  return acc + (int32_t)w[0] * x[0] + (int32_t)w[1] * x[1];
}
#endif

/* Dot products of two interleaved weight rows (layout in rnnpool_s8.c) with
 * one or two int16 vectors over `words` int16 pairs (words >= 1); the
 * accumulators are updated, the weight pointer advanced past the two rows.
 * Cortex-M4: hand-scheduled loops (one LDRD feeds two or four SMLADs,
 * unrolled twice); elsewhere, and unoptimised builds, the same sums in C. */
#if RNNPOOL_DSP && defined(__OPTIMIZE__) && !defined(RNNPOOL_NO_ASM)
#define RNNPOOL_ASM 1
#else
#define RNNPOOL_ASM 0
#endif

#if RNNPOOL_ASM
#define RNNPOOL_DOT2X2_BODY             \
  "ldrd %[w0], %[w1], [%[w]], #8\n\t"   \
  "ldr %[x], [%[xa]], #4\n\t"           \
  "ldr %[y], [%[xb]], #4\n\t"           \
  "smlad %[a0], %[w0], %[x], %[a0]\n\t" \
  "smlad %[a1], %[w1], %[x], %[a1]\n\t" \
  "smlad %[b0], %[w0], %[y], %[b0]\n\t" \
  "smlad %[b1], %[w1], %[y], %[b1]\n\t"
#define RNNPOOL_DOT2X1_BODY             \
  "ldrd %[w0], %[w1], [%[w]], #8\n\t"   \
  "ldr %[x], [%[xa]], #4\n\t"           \
  "smlad %[a0], %[w0], %[x], %[a0]\n\t" \
  "smlad %[a1], %[w1], %[x], %[a1]\n\t"
#endif

#if RNNPOOL_ASM
/* Fully unrolled kernels for the common sizes (4 and 8 words: h = 8, 16).
 * The repetitions are spelled out (not .rept) so that compilers see the
 * real size of the asm when they choose branch encodings around it. */
#define RNNPOOL_REPEAT_4(body) body body body body
#define RNNPOOL_REPEAT_8(body) RNNPOOL_REPEAT_4(body) RNNPOOL_REPEAT_4(body)
#define RNNPOOL_DOT2X2_FIXED(words)                                                                            \
  RNNPOOL_INLINE const int16_t* rnnpool_dot2x2_##words(const int16_t* w, const int16_t* xa, const int16_t* xb, \
                                                       int32_t acc[4]) {                                       \
    int32_t a0 = acc[0], a1 = acc[1], b0 = acc[2], b1 = acc[3];                                                \
    uint32_t w0, w1, x, y;                                                                                     \
    __asm__ volatile(RNNPOOL_REPEAT_##words(RNNPOOL_DOT2X2_BODY)                                               \
                     : [w] "+r"(w), [xa] "+r"(xa), [xb] "+r"(xb), [a0] "+r"(a0), [a1] "+r"(a1), [b0] "+r"(b0), \
                       [b1] "+r"(b1), [w0] "=&r"(w0), [w1] "=&r"(w1), [x] "=&r"(x), [y] "=&r"(y)               \
                     :                                                                                         \
                     : "memory");                                                                              \
    acc[0] = a0;                                                                                               \
    acc[1] = a1;                                                                                               \
    acc[2] = b0;                                                                                               \
    acc[3] = b1;                                                                                               \
    return w;                                                                                                  \
  }
#define RNNPOOL_DOT2X1_FIXED(words)                                                                              \
  RNNPOOL_INLINE const int16_t* rnnpool_dot2x1_##words(const int16_t* w, const int16_t* xa, int32_t acc[2]) {    \
    int32_t a0 = acc[0], a1 = acc[1];                                                                            \
    uint32_t w0, w1, x;                                                                                          \
    __asm__ volatile(                                                                                            \
        RNNPOOL_REPEAT_##words(RNNPOOL_DOT2X1_BODY)                                                              \
        : [w] "+r"(w), [xa] "+r"(xa), [a0] "+r"(a0), [a1] "+r"(a1), [w0] "=&r"(w0), [w1] "=&r"(w1), [x] "=&r"(x) \
        :                                                                                                        \
        : "memory");                                                                                             \
    acc[0] = a0;                                                                                                 \
    acc[1] = a1;                                                                                                 \
    return w;                                                                                                    \
  }
RNNPOOL_DOT2X2_FIXED(4)
RNNPOOL_DOT2X2_FIXED(8)
RNNPOOL_DOT2X1_FIXED(4)
RNNPOOL_DOT2X1_FIXED(8)
#endif

#if RNNPOOL_ASM
/* U.h from zero (no accumulator to start from) for 4 or 8 words: the first
 * products are SMUAD, the state words come two at a time by LDRD at fixed
 * offsets (no pointer updates), and two weight rows feed both states: per
 * two words 2 + 2 weight/state loads and 8 SMLADs. 13 registers. */
#define RNNPOOL_Z2X2_MAC(op, x, y, acc0, acc1, acc2, acc3)                                                         \
  #op " %[a0], %[w0], %[" #x "]" acc0 "\n\t" #op " %[a1], %[w1], %[" #x "]" acc1 "\n\t" #op " %[b0], %[w0], %[" #y \
      "]" acc2 "\n\t" #op " %[b1], %[w1], %[" #y "]" acc3 "\n\t"
#define RNNPOOL_Z2X2_ACC RNNPOOL_Z2X2_MAC(smlad, x0, y0, ", %[a0]", ", %[a1]", ", %[b0]", ", %[b1]")
#define RNNPOOL_Z2X2_ACC1 RNNPOOL_Z2X2_MAC(smlad, x1, y1, ", %[a0]", ", %[a1]", ", %[b0]", ", %[b1]")
#define RNNPOOL_Z2X2_LOADS(off)       \
  "ldrd %[w0], %[w1], [%[w]], #8\n\t" \
  "ldrd %[x0], %[x1], [%[xa], #" #off \
  "]\n\t"                             \
  "ldrd %[y0], %[y1], [%[xb], #" #off "]\n\t"
#define RNNPOOL_Z2X2_FIRST \
  RNNPOOL_Z2X2_LOADS(0)    \
  RNNPOOL_Z2X2_MAC(smuad, x0, y0, "", "", "", "") "ldrd %[w0], %[w1], [%[w]], #8\n\t" RNNPOOL_Z2X2_ACC1
#define RNNPOOL_Z2X2_NEXT(off) \
  RNNPOOL_Z2X2_LOADS(off) RNNPOOL_Z2X2_ACC "ldrd %[w0], %[w1], [%[w]], #8\n\t" RNNPOOL_Z2X2_ACC1
#define RNNPOOL_Z2X2_BODY_4 RNNPOOL_Z2X2_FIRST RNNPOOL_Z2X2_NEXT(8)
#define RNNPOOL_Z2X2_BODY_8 RNNPOOL_Z2X2_BODY_4 RNNPOOL_Z2X2_NEXT(16) RNNPOOL_Z2X2_NEXT(24)
#define RNNPOOL_DOT2X2_ZERO_FIXED(words)                                                                            \
  RNNPOOL_INLINE const int16_t* rnnpool_dot2x2_zero_##words(const int16_t* w, const int16_t* xa, const int16_t* xb, \
                                                            int32_t acc[4]) {                                       \
    int32_t a0, a1, b0, b1;                                                                                         \
    uint32_t w0, w1, x0, x1, y0, y1;                                                                                \
    __asm__ volatile(RNNPOOL_Z2X2_BODY_##words                                                                      \
                     : [w] "+r"(w), [a0] "=&r"(a0), [a1] "=&r"(a1), [b0] "=&r"(b0), [b1] "=&r"(b1), [w0] "=&r"(w0), \
                       [w1] "=&r"(w1), [x0] "=&r"(x0), [x1] "=&r"(x1), [y0] "=&r"(y0), [y1] "=&r"(y1)               \
                     : [xa] "r"(xa), [xb] "r"(xb)                                                                   \
                     : "memory");                                                                                   \
    acc[0] = a0;                                                                                                    \
    acc[1] = a1;                                                                                                    \
    acc[2] = b0;                                                                                                    \
    acc[3] = b1;                                                                                                    \
    return w;                                                                                                       \
  }
RNNPOOL_DOT2X2_ZERO_FIXED(4)
RNNPOOL_DOT2X2_ZERO_FIXED(8)
#endif

RNNPOOL_INLINE const int16_t* rnnpool_dot2x2(const int16_t* w, const int16_t* xa, const int16_t* xb, int32_t words,
                                             int32_t acc[4]) {
#if RNNPOOL_ASM
  if (words == 8) return rnnpool_dot2x2_8(w, xa, xb, acc);
  if (words == 4) return rnnpool_dot2x2_4(w, xa, xb, acc);
  {
    int32_t a0 = acc[0], a1 = acc[1], b0 = acc[2], b1 = acc[3];
    uint32_t w0, w1, x, y;
    __asm__ volatile(
        "tst %[n], #1\n\t"
        "beq 2f\n\t" RNNPOOL_DOT2X2_BODY
        "2:\n\t"
        "lsrs %[n], %[n], #1\n\t"
        "beq 4f\n"
        "3:\n\t" RNNPOOL_DOT2X2_BODY RNNPOOL_DOT2X2_BODY
        "subs %[n], %[n], #1\n\t"
        "bne 3b\n"
        "4:\n"
        : [w] "+r"(w), [xa] "+r"(xa), [xb] "+r"(xb), [n] "+r"(words), [a0] "+r"(a0), [a1] "+r"(a1), [b0] "+r"(b0),
          [b1] "+r"(b1), [w0] "=&r"(w0), [w1] "=&r"(w1), [x] "=&r"(x), [y] "=&r"(y)
        :
        : "cc", "memory");
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = b0;
    acc[3] = b1;
  }
#else
  for (; words > 0; --words, w += 4, xa += 2, xb += 2) {
    rnnpool_pair w0, w1;
    const rnnpool_pair x = rnnpool_load_pair(xa), y = rnnpool_load_pair(xb);
    rnnpool_load_pairs(w, &w0, &w1);
    acc[0] = rnnpool_mac2(w0, x, acc[0]);
    acc[1] = rnnpool_mac2(w1, x, acc[1]);
    acc[2] = rnnpool_mac2(w0, y, acc[2]);
    acc[3] = rnnpool_mac2(w1, y, acc[3]);
  }
#endif
  return w;
}

RNNPOOL_INLINE const int16_t* rnnpool_dot2x1(const int16_t* w, const int16_t* xa, int32_t words, int32_t acc[2]) {
#if RNNPOOL_ASM
  if (words == 8) return rnnpool_dot2x1_8(w, xa, acc);
  if (words == 4) return rnnpool_dot2x1_4(w, xa, acc);
  {
    int32_t a0 = acc[0], a1 = acc[1];
    uint32_t w0, w1, x;
    __asm__ volatile(
        "tst %[n], #1\n\t"
        "beq 2f\n\t" RNNPOOL_DOT2X1_BODY
        "2:\n\t"
        "lsrs %[n], %[n], #1\n\t"
        "beq 4f\n"
        "3:\n\t" RNNPOOL_DOT2X1_BODY RNNPOOL_DOT2X1_BODY
        "subs %[n], %[n], #1\n\t"
        "bne 3b\n"
        "4:\n"
        : [w] "+r"(w), [xa] "+r"(xa), [n] "+r"(words), [a0] "+r"(a0), [a1] "+r"(a1), [w0] "=&r"(w0), [w1] "=&r"(w1),
          [x] "=&r"(x)
        :
        : "cc", "memory");
    acc[0] = a0;
    acc[1] = a1;
  }
#else
  for (; words > 0; --words, w += 4, xa += 2) {
    rnnpool_pair w0, w1;
    const rnnpool_pair x = rnnpool_load_pair(xa);
    rnnpool_load_pairs(w, &w0, &w1);
    acc[0] = rnnpool_mac2(w0, x, acc[0]);
    acc[1] = rnnpool_mac2(w1, x, acc[1]);
  }
#endif
  return w;
}

/* rnnpool_dot2x2 from zero accumulators (U.h: nothing to start from). */
RNNPOOL_INLINE const int16_t* rnnpool_dot2x2_zero(const int16_t* w, const int16_t* xa, const int16_t* xb, int32_t words,
                                                  int32_t acc[4]) {
#if RNNPOOL_ASM
  if (words == 8) return rnnpool_dot2x2_zero_8(w, xa, xb, acc);
  if (words == 4) return rnnpool_dot2x2_zero_4(w, xa, xb, acc);
#endif
  acc[0] = acc[1] = acc[2] = acc[3] = 0;
  return rnnpool_dot2x2(w, xa, xb, words, acc);
}

/* ---- requantization (section 3) -------------------------------------------------------- */

/* The high word of a 32x32-bit product: SMMUL (truncating), SMMLA (plus an
 * addend), SMMULR (rounding, + 2^31). */
#if RNNPOOL_DSP
RNNPOOL_INLINE int32_t rnnpool_smmla(int32_t a, int32_t b, int32_t acc) {
  int32_t r;
  __asm__("smmla %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
  return r;
}
RNNPOOL_INLINE int32_t rnnpool_smmulr(int32_t a, int32_t b) {
  int32_t r;
  __asm__("smmulr %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
  return r;
}
#else
RNNPOOL_INLINE int32_t rnnpool_smmla(int32_t a, int32_t b, int32_t acc) {
  return (int32_t)((uint32_t)acc + (uint32_t)(int32_t)(((int64_t)a * b) >> 32));
}
RNNPOOL_INLINE int32_t rnnpool_smmulr(int32_t a, int32_t b) {
  return (int32_t)(((int64_t)a * b + ((int64_t)1 << 31)) >> 32);
}
#endif

/* A multiplier (M, n) in the form eval applies it. Two exact 32-bit forms
 * (docs/kernel.md derives them), picked per channel when prepared:
 *   S ("small", post = -1 - n > 0, multipliers below 1/4):
 *     rq(v) = (SMMUL(v, M) + 2^(post-1)) >> post        round_or_lo = 2^(post-1)
 *   L ("large", post <= 0, n in [-1, 29]):
 *     rq(v) = SMMULR(clamp(v, lo, hi) << (n+1), M)       lo = -2^(30-n), hi = 2^(30-n) - 1
 *     the clamp only changes inputs whose result saturates to 25 bits anyway.
 * n = 30 (where any nonzero input saturates) is stored as (2^30, 29), and a
 * zero multiplier as (0, post 1): both give the same saturated results.
 * Portable C and the DSP instructions compute the same integers. */
typedef struct {
  int32_t mult;
  int32_t post;
  int32_t round_or_lo;
  int32_t hi;
} rnnpool_rq;

/* One row of a recurrent matrix U as its step applies it: the multiplier
 * and the unit's two biases (Q12), together so that one pointer walks them. */
typedef struct {
  rnnpool_rq q;
  int32_t bias_gate;
  int32_t bias_update;
  int32_t reserved[2]; /* 32 bytes */
} rnnpool_urow;

/* How the multipliers of one matrix are applied (decided when prepared). */
#define RNNPOOL_RQ_SMALL 0     /* every row in form S */
#define RNNPOOL_RQ_UNCLAMPED 1 /* every row in form L, and no accumulator can reach the clamp */
#define RNNPOOL_RQ_MIXED 2     /* anything else: per row */

RNNPOOL_INLINE int32_t rnnpool_rq_small(int32_t v, const rnnpool_rq* q) {
  return rnnpool_smmla(v, q->mult, q->round_or_lo) >> q->post;
}

RNNPOOL_INLINE int32_t rnnpool_rq_unclamped(int32_t v, const rnnpool_rq* q) {
  return rnnpool_smmulr((int32_t)((uint32_t)v << (uint32_t)(-q->post)), q->mult);
}

/* rq(v), exact while |rq(v)| < 2^24; beyond it a value past +-2^24 of the
 * right sign and below 2^30 in magnitude (the callers saturate). */
RNNPOOL_INLINE int32_t rnnpool_requant(int32_t v, const rnnpool_rq* q) {
  if (q->post > 0) return rnnpool_rq_small(v, q);
  return rnnpool_rq_unclamped(rnnpool_clamp(v, q->round_or_lo, q->hi), q);
}

RNNPOOL_INLINE int32_t rnnpool_requant_sat25(int32_t v, const rnnpool_rq* q) {
  return rnnpool_sat25(rnnpool_requant(v, q));
}

/* sat25(rq(v)) in the form the matrix's class allows. */
RNNPOOL_INLINE int32_t rnnpool_requant_class(int32_t v, const rnnpool_rq* q, const int cls) {
  if (cls == RNNPOOL_RQ_SMALL) return rnnpool_sat25(rnnpool_rq_small(v, q));
  if (cls == RNNPOOL_RQ_UNCLAMPED) return rnnpool_sat25(rnnpool_rq_unclamped(v, q));
  return rnnpool_requant_sat25(v, q);
}

/* Keeps a value in a register the optimiser cannot rematerialise (LUT base
 * pointers, rounding constants in hot loops). */
#if defined(__GNUC__)
#define RNNPOOL_IN_REGISTER(x) __asm__("" : "+r"(x))
#else
#define RNNPOOL_IN_REGISTER(x) (void)0
#endif

/* ---- nonlinearities (section 5), Q12 in, Q14 out ------------------------------------------ */

/* The tables are packed: entry i = S[i] (low half) | (S[i+1] - S[i]) << 16,
 * steps non-negative; S[i] + ((step*f + half) >> bits), half = 2^(bits-1). */
/* sigmoid: u = clamp(g, -2^16, 2^16 - 1) + 2^16, i = u >> 8, f = u & 255.
 * `mid` is the table offset by 256 entries, so that i = clamp(g) >> 8;
 * `half` = 128 (a parameter so that hot loops keep it in a register). */
RNNPOOL_INLINE int32_t rnnpool_sigmoid_at(int32_t g, const int32_t* mid, int32_t half) {
#if RNNPOOL_DSP
  const int32_t s = __ssat(g, 17);
  const int32_t w = mid[s >> 8];
  return (int32_t)(int16_t)w + (__smlatb(w, s & 255, half) >> 8);
#else
  const int32_t s = rnnpool_clamp(g, -65536, 65535);
  const int32_t w = mid[s >> 8];
  return (((w & 0xFFFF) ^ 0x8000) - 0x8000) + (((w >> 16) * (s & 255) + half) >> 8);
#endif
}

/* tanh: u = clamp(v, -2^15, 2^15 - 1) + 2^15, i = u >> 7, f = u & 127; half = 64. */
RNNPOOL_INLINE int32_t rnnpool_tanh_at(int32_t v, const int32_t* mid, int32_t half) {
  const int32_t s = rnnpool_sat16(v);
  const int32_t w = mid[s >> 7];
#if RNNPOOL_DSP
  return (int32_t)(int16_t)w + (__smlatb(w, s & 127, half) >> 7);
#else
  return (((w & 0xFFFF) ^ 0x8000) - 0x8000) + (((w >> 16) * (s & 127) + half) >> 7);
#endif
}

RNNPOOL_INLINE int32_t rnnpool_sigmoid_q(int32_t g) {
  return rnnpool_sigmoid_at(g, rnnpool_sigmoid_lut_packed + 256, 128);
}
RNNPOOL_INLINE int32_t rnnpool_tanh_q(int32_t v) { return rnnpool_tanh_at(v, rnnpool_tanh_lut_packed + 256, 64); }

RNNPOOL_INLINE int32_t rnnpool_hard_sigmoid_q(int32_t g) { return (rnnpool_clamp(g, -4096, 4096) + 4096) * 2; }
RNNPOOL_INLINE int32_t rnnpool_hard_tanh_q(int32_t v) { return rnnpool_clamp(v, -4096, 4096) * 4; }

/* ---- one FastGRNN unit (section 6) ------------------------------------------------------------- */

typedef struct {
  int32_t a;       /* A = sigmoid(zeta), Q14 */
  int32_t b;       /* B = sigmoid(nu), Q14 */
  int32_t a_round; /* A*16384 + 8192, so that A*(16384 - z) + 8192 = a_round - A*z */
  int32_t c_round; /* 2^(27 - q) */
  int32_t c_shift; /* 28 - q */
} rnnpool_unit_consts;

/* The first step of a sequence: h = 0, so U.h = 0 and z*h = 0. */
RNNPOOL_INLINE int32_t rnnpool_unit_first(int32_t px, const rnnpool_urow* row, const rnnpool_unit_consts* k,
                                          const int gate_hard, const int update_hard) {
  const int32_t g = px + row->bias_gate, v = px + row->bias_update;
  const int32_t z = gate_hard ? rnnpool_hard_sigmoid_q(g) : rnnpool_sigmoid_q(g);
  const int32_t c = update_hard ? rnnpool_hard_tanh_q(v) : rnnpool_tanh_q(v);
  const int32_t coef = k->b + ((k->a_round - k->a * z) >> 14);
  return rnnpool_sat16((coef * c + k->c_round) >> k->c_shift);
}

#endif /* RNNPOOL_S8_MATH_H_ */
