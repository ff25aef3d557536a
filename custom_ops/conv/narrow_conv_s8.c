/* The narrow int8 CONV_2D kernel (narrow_conv_s8.h).
 *
 * Why it is faster than CMSIS-NN's arm_convolve_s8 on few output channels:
 * no im2col copy and no widening pass; each output pixel reads its window
 * straight from the input (a window row of kw*C bytes is contiguous in NHWC)
 * and feeds every output channel from one load, with the input offset folded
 * into the biases for windows inside the image. Windows that cross the border
 * take the plain loop, which skips the taps outside (TFLM's rule). */
#include "narrow_conv_s8.h"

#include <stddef.h>
#include <string.h>

#include "int8_requant.h"

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#include <arm_acle.h>
#define NARROW_DSP 1
#else
#define NARROW_DSP 0
#endif

#define NARROW_MAX_DIM 65535
#define NARROW_MAX_STRIDE 255

/* Per output channel, built by eval on its stack. */
typedef struct {
  int32_t bias;          /* bias (border windows add the offset tap by tap) */
  int32_t bias_interior; /* bias + input_offset * sum(w): windows inside the image read raw x */
  int32_t multiplier;
  int32_t shift; /* SMMLAR form: the right shift e = -n >= 1; general form: TFLM's n */
  int32_t round; /* SMMLAR form: 2^(e-1); general form: -1 */
  /* A 3x3 filter on one input channel (a stem), widened once per call: the int16 pairs
   * (w0, w2) (w1, w3) (w4, w6) (w5, w7) as SMLAD takes them, and w8. */
  int32_t stem[5];
} narrow_record;

typedef char
    narrow_records_fit[sizeof(narrow_record) * NARROW_CONV_MAX_CHANNELS + 64 <= NARROW_CONV_STACK_BYTES ? 1 : -1];

static const char* const kStatusText[] = {
    "ok",
    "a required pointer is NULL",
    "a dimension is below 1 or too large, the batch is not 1, or the shapes disagree",
    "more output channels than the narrow kernel takes",
    "a stride, padding, offset or activation bound is out of range",
    "a per-channel multiplier or shift is out of range",
};

const char* narrow_conv_status_str(narrow_conv_status status) {
  return (unsigned)status < sizeof(kStatusText) / sizeof(kStatusText[0]) ? kStatusText[status] : "unknown status";
}

static int dims_ok(const narrow_conv_dims* d) {
  return d->n >= 1 && d->h >= 1 && d->w >= 1 && d->c >= 1 && d->n <= NARROW_MAX_DIM && d->h <= NARROW_MAX_DIM &&
         d->w <= NARROW_MAX_DIM && d->c <= NARROW_MAX_DIM;
}

narrow_conv_status narrow_conv_s8_check(const narrow_conv_params* p, const narrow_conv_dims* input,
                                        const narrow_conv_dims* filter, const narrow_conv_dims* output) {
  if (p == NULL || input == NULL || filter == NULL || output == NULL) return NARROW_CONV_ERR_NULL_POINTER;
  if (!dims_ok(input) || !dims_ok(filter) || !dims_ok(output)) return NARROW_CONV_ERR_BAD_DIMS;
  if (input->n != 1 || output->n != 1 || filter->c != input->c || output->c != filter->n) {
    return NARROW_CONV_ERR_BAD_DIMS;
  }
  if (output->c > NARROW_CONV_MAX_CHANNELS) return NARROW_CONV_ERR_TOO_WIDE;
  if (p->stride_h < 1 || p->stride_w < 1 || p->stride_h > NARROW_MAX_STRIDE || p->stride_w > NARROW_MAX_STRIDE ||
      p->pad_h < 0 || p->pad_w < 0 || p->pad_h > NARROW_MAX_DIM || p->pad_w > NARROW_MAX_DIM ||
      p->input_offset < -127 || p->input_offset > 128 || p->output_offset < -128 || p->output_offset > 127 ||
      p->act_min < -128 || p->act_max > 127 || p->act_min > p->act_max) {
    return NARROW_CONV_ERR_BAD_PARAMS;
  }
  return NARROW_CONV_OK;
}

/* A 3x3 filter on one input channel (a grayscale stem): its own inside-window path. */
static int is_stem(const narrow_conv_dims* fd) { return fd->h == 3 && fd->w == 3 && fd->c == 1; }

/* Two int16 as one pair (a low, b high): PKHBT. */
static int32_t pack16(int32_t a, int32_t b) { return (int32_t)(((uint32_t)a & 0xFFFFu) | ((uint32_t)b << 16)); }

/* Records of every output channel; the SMMLAR form where it is exact
 * (shift <= -1 and |acc| < 2^30, bounded by |bias| + 255 * sum|w|). */
static narrow_conv_status make_records(const narrow_conv_params* p, const narrow_conv_quant* q,
                                       const narrow_conv_dims* fd, const int8_t* filter, const int32_t* bias,
                                       narrow_record* records) {
  const int32_t taps = fd->h * fd->w * fd->c;
  int32_t o, i;
  for (o = 0; o < fd->n; ++o) {
    const int8_t* w = filter + (size_t)o * (size_t)taps;
    const int32_t b = bias != NULL ? bias[o] : 0;
    const int32_t m = q->multiplier[o], n = q->shift[o];
    int64_t sum = 0, abs_sum = 0;
    narrow_record* r = &records[o];
    if (m < 0 || n < -31 || n > 30) return NARROW_CONV_ERR_BAD_SHIFT;
    for (i = 0; i < taps; ++i) {
      sum += w[i];
      abs_sum += w[i] < 0 ? -w[i] : w[i];
    }
    if (is_stem(fd)) {
      r->stem[0] = pack16(w[0], w[2]);
      r->stem[1] = pack16(w[1], w[3]);
      r->stem[2] = pack16(w[4], w[6]);
      r->stem[3] = pack16(w[5], w[7]);
      r->stem[4] = w[8];
    }
    r->bias = b;
    r->bias_interior = i8_wrap_add(b, (int32_t)(uint32_t)((uint64_t)(int64_t)p->input_offset * (uint64_t)sum));
    r->multiplier = m;
    if (n <= -1 && (b < 0 ? -(int64_t)b : (int64_t)b) + 255 * abs_sum < ((int64_t)1 << 30)) {
      r->shift = -n;
      r->round = (int32_t)(1u << (uint32_t)(-n - 1));
    } else {
      r->shift = n;
      r->round = -1;
    }
  }
  return NARROW_CONV_OK;
}

static inline __attribute__((always_inline)) int32_t requantize(uint32_t acc, const narrow_record* r) {
  return r->round >= 0 ? i8_requant_smmlar((int32_t)acc, r->multiplier, r->shift, r->round)
                       : i8_mbqm((int32_t)acc, r->multiplier, r->shift);
}

#if NARROW_DSP
/* Four int8 as two int16 pairs (0, 2) and (1, 3): SXTB16, and SXTB16 with its
 * built-in rotation (the intrinsic of a rotated word costs a separate ROR). */
#define NARROW_EVEN(v) __sxtb16((int32_t)(v))
static inline __attribute__((always_inline)) int32_t narrow_odd(uint32_t v) {
  int32_t r;
  __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
  return r;
}
#define NARROW_ODD(v) narrow_odd(v)
/* Two int16 as one pair (a low, b high). */
static inline __attribute__((always_inline)) int32_t narrow_pack(int32_t a, int32_t b) {
  return (int32_t)(((uint32_t)a & 0xFFFFu) | ((uint32_t)b << 16)); /* PKHBT */
}
#endif

/* Window rows are contiguous in NHWC: kw*C bytes for an inside window, the
 * columns inside the image for a border one. The dot products below run over
 * one such row for two output channels (w0, w1 = w0 + taps) and one or two
 * pixels (xb = xa + dx); each loaded word feeds every accumulator it can.
 * `offset`: add the input offset to x (border windows); inside windows read
 * raw x, the offset being in their biases. */
#if NARROW_DSP
static inline __attribute__((always_inline)) int32_t widen_even(uint32_t v, uint32_t off2, const int offset) {
  return offset ? (int32_t)__sadd16(NARROW_EVEN(v), (int32_t)off2) : NARROW_EVEN(v);
}
static inline __attribute__((always_inline)) int32_t widen_odd(uint32_t v, uint32_t off2, const int offset) {
  return offset ? (int32_t)__sadd16(NARROW_ODD(v), (int32_t)off2) : NARROW_ODD(v);
}
#endif

/* (s0, s1) += x . (w0, w1) over n bytes. */
static inline __attribute__((always_inline)) void dot_row_pair(const int8_t* x, const int8_t* w0, int32_t taps,
                                                               int32_t n, int32_t in_offset, const int offset,
                                                               uint32_t* s) {
  uint32_t s0 = s[0], s1 = s[1];
  const int8_t* w1 = w0 + taps;
  int32_t i = 0;
#if NARROW_DSP
  const uint32_t off2 = ((uint32_t)in_offset & 0xFFFFu) | ((uint32_t)in_offset << 16);
  for (; i + 4 <= n; i += 4) {
    uint32_t xv, v0, v1;
    int32_t x02, x13;
    memcpy(&xv, x + i, 4);
    memcpy(&v0, w0 + i, 4);
    memcpy(&v1, w1 + i, 4);
    x02 = widen_even(xv, off2, offset);
    x13 = widen_odd(xv, off2, offset);
    s0 = (uint32_t)__smlad(NARROW_EVEN(v0), x02, (int32_t)s0);
    s0 = (uint32_t)__smlad(NARROW_ODD(v0), x13, (int32_t)s0);
    s1 = (uint32_t)__smlad(NARROW_EVEN(v1), x02, (int32_t)s1);
    s1 = (uint32_t)__smlad(NARROW_ODD(v1), x13, (int32_t)s1);
  }
#endif
  for (; i < n; ++i) {
    const int32_t xv = x[i] + (offset ? in_offset : 0);
    s0 += (uint32_t)(xv * w0[i]);
    s1 += (uint32_t)(xv * w1[i]);
  }
  s[0] = s0;
  s[1] = s1;
}

/* s0 += x . w0 over n bytes. */
static inline __attribute__((always_inline)) void dot_row_one(const int8_t* x, const int8_t* w0, int32_t n,
                                                              int32_t in_offset, const int offset, uint32_t* s) {
  uint32_t s0 = s[0];
  int32_t i = 0;
#if NARROW_DSP
  const uint32_t off2 = ((uint32_t)in_offset & 0xFFFFu) | ((uint32_t)in_offset << 16);
  for (; i + 4 <= n; i += 4) {
    uint32_t xv, v0;
    memcpy(&xv, x + i, 4);
    memcpy(&v0, w0 + i, 4);
    s0 = (uint32_t)__smlad(NARROW_EVEN(v0), widen_even(xv, off2, offset), (int32_t)s0);
    s0 = (uint32_t)__smlad(NARROW_ODD(v0), widen_odd(xv, off2, offset), (int32_t)s0);
  }
#endif
  for (; i < n; ++i) s0 += (uint32_t)((x[i] + (offset ? in_offset : 0)) * w0[i]);
  s[0] = s0;
}

/* (s[0], s[1]) += xa . (w0, w1), (s[2], s[3]) += xb . (w0, w1), xb = xa + dx,
 * over n bytes (n % 4 == 0 on the DSP): each weight word widened once feeds
 * both pixels, each input word both channels. */
static inline __attribute__((always_inline)) void dot_row_quad(const int8_t* xa, int32_t dx, const int8_t* w0,
                                                               int32_t taps, int32_t n, uint32_t* s) {
  uint32_t s0 = s[0], s1 = s[1], s2 = s[2], s3 = s[3];
  const int8_t* w1 = w0 + taps;
  const int8_t* xb = xa + dx;
  int32_t i = 0;
#if NARROW_DSP
  for (; i + 4 <= n; i += 4) {
    uint32_t v, u;
    int32_t w02, w13, v02, v13, x02, x13;
    memcpy(&v, w0 + i, 4);
    memcpy(&u, w1 + i, 4);
    w02 = NARROW_EVEN(v);
    w13 = NARROW_ODD(v);
    v02 = NARROW_EVEN(u);
    v13 = NARROW_ODD(u);
    memcpy(&v, xa + i, 4);
    x02 = NARROW_EVEN(v);
    x13 = NARROW_ODD(v);
    s0 = (uint32_t)__smlad(w02, x02, (int32_t)s0);
    s0 = (uint32_t)__smlad(w13, x13, (int32_t)s0);
    s1 = (uint32_t)__smlad(v02, x02, (int32_t)s1);
    s1 = (uint32_t)__smlad(v13, x13, (int32_t)s1);
    memcpy(&v, xb + i, 4);
    x02 = NARROW_EVEN(v);
    x13 = NARROW_ODD(v);
    s2 = (uint32_t)__smlad(w02, x02, (int32_t)s2);
    s2 = (uint32_t)__smlad(w13, x13, (int32_t)s2);
    s3 = (uint32_t)__smlad(v02, x02, (int32_t)s3);
    s3 = (uint32_t)__smlad(v13, x13, (int32_t)s3);
  }
#endif
  for (; i < n; ++i) {
    const int32_t a = xa[i], b = xb[i], c0 = w0[i], c1 = w1[i];
    s0 += (uint32_t)(a * c0);
    s1 += (uint32_t)(a * c1);
    s2 += (uint32_t)(b * c0);
    s3 += (uint32_t)(b * c1);
  }
  s[0] = s0;
  s[1] = s1;
  s[2] = s2;
  s[3] = s3;
}

/* The output bounds in registers: `out` is int8, so a store through it may
 * alias the params struct and would make the compiler reload it. */
typedef struct {
  int32_t offset, lo, hi;
} narrow_out;

static inline __attribute__((always_inline)) int8_t finish(uint32_t acc, const narrow_record* r, narrow_out q) {
  const int32_t v = requantize(acc, r) + q.offset;
  return (int8_t)(v < q.lo ? q.lo : (v > q.hi ? q.hi : v));
}

/* Two horizontally adjacent output pixels whose windows lie inside the
 * image (out: the first; the second follows it), channels in pairs. */
static void pixels_inside(const narrow_conv_dims* id, const int8_t* input, const narrow_conv_dims* fd,
                          const int8_t* filter, const narrow_record* records, int32_t iy0, int32_t ix0, int32_t dx,
                          int32_t oc, narrow_out q, int8_t* out) {
  const int32_t taps = fd->h * fd->w * fd->c, row = fd->w * fd->c;
  const size_t input_row = (size_t)id->w * (size_t)id->c;
  const int8_t* window = input + (size_t)iy0 * input_row + (size_t)ix0 * (size_t)id->c;
  int32_t o, ky;
  for (o = 0; o < oc; o += 2) {
    const int8_t* w0 = filter + (size_t)o * (size_t)taps;
    const int pair = o + 1 < oc;
    uint32_t s[4];
    s[0] = s[2] = (uint32_t)records[o].bias_interior;
    s[1] = s[3] = pair ? (uint32_t)records[o + 1].bias_interior : 0u;
    for (ky = 0; ky < fd->h; ++ky) {
      const int8_t* x = window + (size_t)ky * input_row;
      const int8_t* w = w0 + (size_t)ky * (size_t)row;
      if (pair) {
        dot_row_quad(x, dx, w, taps, row, s);
      } else {
        dot_row_one(x, w, row, 0, 0, &s[0]);
        dot_row_one(x + dx, w, row, 0, 0, &s[2]);
      }
    }
    out[o] = finish(s[0], &records[o], q);
    out[oc + o] = finish(s[2], &records[o], q);
    if (pair) {
      out[o + 1] = finish(s[1], &records[o + 1], q);
      out[oc + o + 1] = finish(s[3], &records[o + 1], q);
    }
  }
}

/* One output pixel: the window rows inside the image, clipped to its columns
 * inside (TFLM skips the taps outside); `offset` as for the dot products. */
static inline __attribute__((always_inline)) void pixel_rows(const narrow_conv_dims* id, const int8_t* input,
                                                             const narrow_conv_dims* fd, const int8_t* filter,
                                                             const narrow_record* records, int32_t iy0, int32_t ix0,
                                                             int32_t oc, int32_t in_offset, const int offset,
                                                             narrow_out q, int8_t* out) {
  const int32_t taps = fd->h * fd->w * fd->c;
  const int32_t ky0 = iy0 < 0 ? -iy0 : 0, ky1 = iy0 + fd->h > id->h ? id->h - iy0 : fd->h;
  const int32_t kx0 = ix0 < 0 ? -ix0 : 0, kx1 = ix0 + fd->w > id->w ? id->w - ix0 : fd->w;
  const int32_t n = (kx1 - kx0) * fd->c;
  int32_t o, ky;
  for (o = 0; o < oc; o += 2) {
    const int pair = o + 1 < oc;
    uint32_t s[2];
    s[0] = (uint32_t)(offset ? records[o].bias : records[o].bias_interior);
    s[1] = pair ? (uint32_t)(offset ? records[o + 1].bias : records[o + 1].bias_interior) : 0u;
    for (ky = ky0; ky < ky1; ++ky) {
      const int8_t* x = input + ((size_t)(iy0 + ky) * (size_t)id->w + (size_t)(ix0 + kx0)) * (size_t)id->c;
      const int8_t* w = filter + (size_t)o * (size_t)taps + ((size_t)ky * (size_t)fd->w + (size_t)kx0) * (size_t)fd->c;
      if (pair) {
        dot_row_pair(x, w, taps, n, in_offset, offset, s);
      } else {
        dot_row_one(x, w, n, in_offset, offset, s);
      }
    }
    out[o] = finish(s[0], &records[o], q);
    if (pair) out[o + 1] = finish(s[1], &records[o + 1], q);
  }
}

#if NARROW_DSP
/* An inside pixel of a 3x3 convolution on one input channel (a grayscale
 * stem): the nine taps t0..t8, loaded once, paired like the records' widened
 * weights, (t0, t2) (t1, t3) (t4, t6) (t5, t7) and t8; per output channel
 * four SMLADs and one SMLABB. */
static void pixel_inside_3x3x1(const narrow_conv_dims* id, const int8_t* input, const narrow_record* records,
                               int32_t iy0, int32_t ix0, int32_t oc, narrow_out q, int8_t* out) {
  const int8_t* r0 = input + (size_t)iy0 * (size_t)id->w + (size_t)ix0;
  const int8_t* r1 = r0 + id->w;
  const int8_t* r2 = r1 + id->w;
  const int32_t t02 = narrow_pack(r0[0], r0[2]), t13 = narrow_pack(r0[1], r1[0]);
  const int32_t t46 = narrow_pack(r1[1], r2[0]), t57 = narrow_pack(r1[2], r2[1]);
  const int32_t t8 = r2[2];
  const narrow_record* const end = records + oc;
  for (; records < end; ++records, ++out) {
    int32_t acc = __smlad(records->stem[0], t02, records->bias_interior);
    acc = __smlad(records->stem[1], t13, acc);
    acc = __smlad(records->stem[2], t46, acc);
    acc = __smlad(records->stem[3], t57, acc);
    acc = (int32_t)((uint32_t)acc + (uint32_t)(t8 * records->stem[4]));
    *out = finish((uint32_t)acc, records, q);
  }
}
#endif

/* The raster walk, row by row, each pixel written right after its window
 * was read; inside windows go two pixels at a time where their rows are whole
 * words. */
static void walk(const narrow_conv_params* p, const narrow_conv_dims* id, const int8_t* input,
                 const narrow_conv_dims* fd, const int8_t* filter, const narrow_record* records,
                 const narrow_conv_dims* od, int8_t* output) {
  const int32_t oc = od->c, sw = p->stride_w, dx = p->stride_w * id->c;
  const int stem = is_stem(fd);
  const int pairs = ((fd->w * fd->c) & 3) == 0;
  const narrow_out q = {p->output_offset, p->act_min, p->act_max};
  int32_t oy, ox;
  (void)stem;
  for (oy = 0; oy < od->h; ++oy) {
    const int32_t iy0 = oy * p->stride_h - p->pad_h;
    const int rows_inside = iy0 >= 0 && iy0 + fd->h <= id->h;
    int8_t* out = output + (size_t)oy * (size_t)od->w * (size_t)oc;
    for (ox = 0; ox < od->w; ++ox, out += oc) {
      const int32_t ix0 = ox * sw - p->pad_w;
      if (!(rows_inside && ix0 >= 0 && ix0 + fd->w <= id->w)) {
        pixel_rows(id, input, fd, filter, records, iy0, ix0, oc, p->input_offset, 1, q, out);
        continue;
      }
#if NARROW_DSP
      if (stem) {
        pixel_inside_3x3x1(id, input, records, iy0, ix0, oc, q, out);
        continue;
      }
#endif
      if (pairs && ox + 1 < od->w && ix0 + sw + fd->w <= id->w) {
        pixels_inside(id, input, fd, filter, records, iy0, ix0, dx, oc, q, out);
        ++ox;
        out += oc;
        continue;
      }
      pixel_rows(id, input, fd, filter, records, iy0, ix0, oc, 0, 0, q, out);
    }
  }
}

narrow_conv_status narrow_conv_s8(const narrow_conv_params* params, const narrow_conv_quant* quant,
                                  const narrow_conv_dims* input_dims, const int8_t* input,
                                  const narrow_conv_dims* filter_dims, const int8_t* filter, const int32_t* bias,
                                  const narrow_conv_dims* output_dims, int8_t* output) {
  narrow_record records[NARROW_CONV_MAX_CHANNELS];
  narrow_conv_status st = narrow_conv_s8_check(params, input_dims, filter_dims, output_dims);
  if (st != NARROW_CONV_OK) return st;
  if (quant == NULL || quant->multiplier == NULL || quant->shift == NULL || input == NULL || filter == NULL ||
      output == NULL) {
    return NARROW_CONV_ERR_NULL_POINTER;
  }
  st = make_records(params, quant, filter_dims, filter, bias, records);
  if (st != NARROW_CONV_OK) return st;
  walk(params, input_dims, input, filter_dims, filter, records, output_dims, output);
  return NARROW_CONV_OK;
}
