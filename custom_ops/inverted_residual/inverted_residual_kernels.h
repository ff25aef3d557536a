/* The InvertedResidual kernel's inner loops (docs/inverted_residual.md, section 5):
 * widening pixels, the 1x1 dot products over four pixels, the depthwise 3x3
 * taps. Each has a Cortex-M4 body (__ARM_FEATURE_DSP: SXTB16, SMLAD,
 * SMLABB/SMLATT) and a portable body that computes the same integers.
 *
 * The widened-pixel buffer: four pixels' channels as int16, grouped by four
 * channels; group g holds, for pixel p = 0..3, the two words
 *   (x[4g], x[4g+2]) and (x[4g+1], x[4g+3])        (low half first)
 * at int16 offset 16g + 4p. That is the order in which SXTB16 and
 * SXTB16 ROR #8 widen a word of four int8 weights, so one SMLAD per word
 * multiplies two channels: no per-MAC reordering. */
#ifndef INVERTED_RESIDUAL_KERNELS_H_
#define INVERTED_RESIDUAL_KERNELS_H_

#include <stdint.h>
#include <string.h>

#include "inverted_residual_internal.h"

#if defined(__ARM_FEATURE_DSP) && defined(__GNUC__)
#define INVRES_DSP 1
#include <arm_acle.h>
#else
#define INVRES_DSP 0
#endif

/* The int16 offset of channel c of pixel p in a widened buffer. */
INVRES_INLINE int32_t invres_lane(int32_t c, int32_t p) { return 16 * (c >> 2) + 4 * p + 2 * (c & 1) + ((c >> 1) & 1); }

INVRES_INLINE uint32_t invres_load32(const void* p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}

INVRES_INLINE void invres_store32(void* p, uint32_t v) { memcpy(p, &v, 4); }

#if INVRES_DSP
INVRES_INLINE uint32_t invres_sxtb16(uint32_t v) { return (uint32_t)__sxtb16((int8x4_t)v); }
INVRES_INLINE uint32_t invres_sxtb16_ror8(uint32_t v) {
  uint32_t r;
  __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
  return r;
}
#endif

/* Writes pixel p's `channels` int8 values into the widened buffer. */
INVRES_INLINE void invres_widen_pixel(const int8_t* x, int32_t channels, int16_t* buffer, int32_t p) {
  int32_t c = 0;
  for (; c + 4 <= channels; c += 4) {
    int16_t* dst = buffer + 16 * (c >> 2) + 4 * p;
#if INVRES_DSP
    const uint32_t v = invres_load32(x + c);
    invres_store32(dst, invres_sxtb16(v));
    invres_store32(dst + 2, invres_sxtb16_ror8(v));
#else
    dst[0] = x[c];
    dst[1] = x[c + 2];
    dst[2] = x[c + 1];
    dst[3] = x[c + 3];
#endif
  }
  for (; c < channels; ++c) buffer[invres_lane(c, p)] = x[c];
}

/* Hand-scheduled Cortex-M4 loop for invres_dot4 (optimised builds; -DINVRES_NO_ASM or -O0
 * use the C loop): per group of four channels one LDR of the weights, two SXTB16, two LDM
 * of two widened pixels each and eight SMLADs. LDM needs an ascending register list, so
 * the pixel words live in fixed registers r8-r11. */
#if INVRES_DSP && defined(__OPTIMIZE__) && !defined(INVRES_NO_ASM)
#define INVRES_ASM 1
#define INVRES_DOT4_GROUP              \
  "ldr %[wb], [%[w]], #4\n\t"          \
  "ldm %[b]!, {r8, r9, r10, r11}\n\t"  \
  "sxtb16 %[wa], %[wb]\n\t"            \
  "sxtb16 %[wb], %[wb], ror #8\n\t"    \
  "smlad %[a0], %[wa], r8, %[a0]\n\t"  \
  "smlad %[a0], %[wb], r9, %[a0]\n\t"  \
  "smlad %[a1], %[wa], r10, %[a1]\n\t" \
  "smlad %[a1], %[wb], r11, %[a1]\n\t" \
  "ldm %[b]!, {r8, r9, r10, r11}\n\t"  \
  "smlad %[a2], %[wa], r8, %[a2]\n\t"  \
  "smlad %[a2], %[wb], r9, %[a2]\n\t"  \
  "smlad %[a3], %[wa], r10, %[a3]\n\t" \
  "smlad %[a3], %[wb], r11, %[a3]\n\t"
#else
#define INVRES_ASM 0
#endif

/* acc[p] = init + sum_k w[k] * x_p[k] over `channels` (int32 wrap-around), for the
 * four pixels of a widened buffer. */
INVRES_INLINE void invres_dot4(const int8_t* w, const int16_t* buffer, int32_t channels, int32_t init, int32_t acc[4]) {
  const int32_t groups = channels >> 2, tail = channels & 3;
  int32_t g, k;
#if INVRES_DSP
  int32_t a0 = init, a1 = init, a2 = init, a3 = init;
  const int16_t* b = buffer;
#if INVRES_ASM
  if (groups > 0) {
    int32_t n = groups;
    uint32_t wa, wb;
    __asm__ volatile(
        "tst %[n], #1\n\t"
        "beq 2f\n\t" INVRES_DOT4_GROUP
        "2:\n\t"
        "lsrs %[n], %[n], #1\n\t"
        "beq 4f\n"
        "3:\n\t" INVRES_DOT4_GROUP INVRES_DOT4_GROUP
        "subs %[n], %[n], #1\n\t"
        "bne 3b\n"
        "4:\n"
        : [w] "+r"(w), [b] "+r"(b), [n] "+r"(n), [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3),
          [wa] "=&r"(wa), [wb] "=&r"(wb)
        :
        : "r8", "r9", "r10", "r11", "cc", "memory");
  }
  (void)g;
#else
  for (g = 0; g < groups; ++g, w += 4, b += 16) {
    const uint32_t raw = invres_load32(w);
    const int16x2_t wa = (int16x2_t)invres_sxtb16(raw), wb = (int16x2_t)invres_sxtb16_ror8(raw);
    a0 = __smlad(wa, (int16x2_t)invres_load32(b), a0);
    a0 = __smlad(wb, (int16x2_t)invres_load32(b + 2), a0);
    a1 = __smlad(wa, (int16x2_t)invres_load32(b + 4), a1);
    a1 = __smlad(wb, (int16x2_t)invres_load32(b + 6), a1);
    a2 = __smlad(wa, (int16x2_t)invres_load32(b + 8), a2);
    a2 = __smlad(wb, (int16x2_t)invres_load32(b + 10), a2);
    a3 = __smlad(wa, (int16x2_t)invres_load32(b + 12), a3);
    a3 = __smlad(wb, (int16x2_t)invres_load32(b + 14), a3);
  }
#endif
  for (k = 0; k < tail; ++k) {
    const int32_t wk = w[k];
    const int16_t* lane = buffer + invres_lane(4 * groups + k, 0);
    a0 = i8_wrap_add(a0, wk * lane[0]);
    a1 = i8_wrap_add(a1, wk * lane[4]);
    a2 = i8_wrap_add(a2, wk * lane[8]);
    a3 = i8_wrap_add(a3, wk * lane[12]);
  }
  acc[0] = a0;
  acc[1] = a1;
  acc[2] = a2;
  acc[3] = a3;
#else
  /* Each sum of products is below 2^27 (docs section 4.4): exact in int32; the bias wraps. */
  int32_t d[4] = {0, 0, 0, 0};
  int32_t p;
  const int16_t* b = buffer;
  for (g = 0; g < groups; ++g, w += 4, b += 16) {
    for (p = 0; p < 4; ++p) {
      d[p] += w[0] * b[4 * p] + w[2] * b[4 * p + 1] + w[1] * b[4 * p + 2] + w[3] * b[4 * p + 3];
    }
  }
  for (k = 0; k < tail; ++k) {
    const int16_t* lane = buffer + invres_lane(4 * groups + k, 0);
    for (p = 0; p < 4; ++p) d[p] += w[k] * lane[4 * p];
  }
  for (p = 0; p < 4; ++p) acc[p] = i8_wrap_add(init, d[p]);
#endif
}

#if INVRES_ASM
/* One tap of four channels: the input and weight words at [in OFFSET] / [wt OFFSET],
 * widened by SXTB16 (channels 0, 2) and SXTB16 ROR #8 (1, 3), four 16x16 MACs. */
#define INVRES_DEPTHWISE_TAP(offset)      \
  "ldr %[vi], [%[in]" offset              \
  "]\n\t"                                 \
  "ldr %[vw], [%[wt]" offset              \
  "]\n\t"                                 \
  "sxtb16 %[ti], %[vi], ror #8\n\t"       \
  "sxtb16 %[tw], %[vw], ror #8\n\t"       \
  "sxtb16 %[vi], %[vi]\n\t"               \
  "sxtb16 %[vw], %[vw]\n\t"               \
  "smlabb %[a0], %[vi], %[vw], %[a0]\n\t" \
  "smlatt %[a2], %[vi], %[vw], %[a2]\n\t" \
  "smlabb %[a1], %[ti], %[tw], %[a1]\n\t" \
  "smlatt %[a3], %[ti], %[tw], %[a3]\n\t"
#endif

/* The depthwise 3x3 sums of four channels c..c+3 at one output pixel:
 * acc[j] = init[j] + sum over the taps of w[ky][kx][c+j] * row_ky[kx*channels + c + j]. */
INVRES_INLINE void invres_depthwise4(const int8_t* const rows[3], const int8_t* w, int32_t channels, int32_t c,
                                     const int32_t init[4], int32_t acc[4]) {
  int32_t ky, kx;
#if INVRES_ASM
  int32_t a0 = init[0], a1 = init[1], a2 = init[2], a3 = init[3];
  (void)kx;
  for (ky = 0; ky < 3; ++ky) {
    const int8_t* in = rows[ky] + c;
    const int8_t* wt = w + 3 * ky * channels + c;
    uint32_t vi, vw, ti, tw;
    __asm__ volatile(INVRES_DEPTHWISE_TAP("") INVRES_DEPTHWISE_TAP(", %[ce]") INVRES_DEPTHWISE_TAP(", %[ce], lsl #1")
                     : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [vi] "=&r"(vi), [vw] "=&r"(vw),
                       [ti] "=&r"(ti), [tw] "=&r"(tw)
                     : [in] "r"(in), [wt] "r"(wt), [ce] "r"(channels)
                     : "memory");
  }
  acc[0] = a0;
  acc[1] = a1;
  acc[2] = a2;
  acc[3] = a3;
#elif INVRES_DSP
  int32_t a0 = init[0], a1 = init[1], a2 = init[2], a3 = init[3];
  for (ky = 0; ky < 3; ++ky) {
    const int8_t* in = rows[ky] + c;
    const int8_t* wt = w + 3 * ky * channels + c;
    for (kx = 0; kx < 3; ++kx, in += channels, wt += channels) {
      const uint32_t vi = invres_load32(in), vw = invres_load32(wt);
      const int32_t i02 = (int32_t)invres_sxtb16(vi), i13 = (int32_t)invres_sxtb16_ror8(vi);
      const int32_t w02 = (int32_t)invres_sxtb16(vw), w13 = (int32_t)invres_sxtb16_ror8(vw);
      a0 = __smlabb(i02, w02, a0);
      a2 = __smlatt(i02, w02, a2);
      a1 = __smlabb(i13, w13, a1);
      a3 = __smlatt(i13, w13, a3);
    }
  }
  acc[0] = a0;
  acc[1] = a1;
  acc[2] = a2;
  acc[3] = a3;
#else
  int32_t j, d[4] = {0, 0, 0, 0};
  for (ky = 0; ky < 3; ++ky) {
    for (kx = 0; kx < 3; ++kx) {
      const int8_t* in = rows[ky] + kx * channels + c;
      const int8_t* wt = w + (3 * ky + kx) * channels + c;
      for (j = 0; j < 4; ++j) d[j] += wt[j] * in[j];
    }
  }
  for (j = 0; j < 4; ++j) acc[j] = i8_wrap_add(init[j], d[j]);
#endif
}

/* One channel's depthwise sum (the channels past the last group of four). */
INVRES_INLINE int32_t invres_depthwise1(const int8_t* const rows[3], const int8_t* w, int32_t channels, int32_t c,
                                        int32_t init) {
  int32_t ky, kx, d = 0;
  for (ky = 0; ky < 3; ++ky) {
    for (kx = 0; kx < 3; ++kx) d += w[(3 * ky + kx) * channels + c] * rows[ky][kx * channels + c];
  }
  return i8_wrap_add(init, d);
}

#endif /* INVERTED_RESIDUAL_KERNELS_H_ */
