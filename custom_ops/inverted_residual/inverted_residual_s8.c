/* InvertedResidual int8: parameter validation, prepare and the streaming eval
 * (docs/inverted_residual.md, sections 4 and 5). */
#include <string.h>

#include "inverted_residual_internal.h"
#include "inverted_residual_kernels.h"

/* ---- validation ------------------------------------------------------------------------- */

static int scale_ok(float s) { return s > 0.0f && s - s == 0.0f; } /* positive and finite (NaN fails) */

static int zero_point_ok(int32_t zp) { return zp >= -128 && zp <= 127; }

/* The stage's inputs and outputs as the unfused graph sees them. */
typedef struct {
  const invres_filter* filter;
  invres_quantization in, out;
  int32_t channels; /* output channels */
  int32_t fan_in;   /* products per output */
  int32_t activation;
  int present;
} stage_view;

static void stage_views(const invres_config* cfg, const invres_s8_params* p, stage_view v[3]) {
  const invres_quantization expanded = cfg->expand ? p->expanded : p->input;
  const invres_quantization projected = cfg->residual ? p->projected : p->output;
  v[INVRES_STAGE_EXPAND] = (stage_view){
      &p->expand, p->input, p->expanded, cfg->expanded_channels, cfg->in_channels, cfg->expand_activation, cfg->expand};
  v[INVRES_STAGE_DEPTHWISE] = (stage_view){&p->depthwise_filter,      expanded, p->depthwise, cfg->expanded_channels, 9,
                                           cfg->depthwise_activation, 1};
  v[INVRES_STAGE_PROJECT] = (stage_view){
      &p->project, p->depthwise, projected, cfg->out_channels, cfg->expanded_channels, cfg->project_activation, 1};
}

/* The ADD's three multipliers (docs section 4.5): each must be in (0, 1) with shift <= 0. */
static invres_status add_multipliers(const invres_s8_params* p, int32_t m[3], int32_t n[3]) {
  const float s_max = p->input.scale > p->projected.scale ? p->input.scale : p->projected.scale;
  const double twice_max = 2.0 * (double)s_max;
  const double real[3] = {(double)p->input.scale / twice_max, (double)p->projected.scale / twice_max,
                          twice_max / ((double)(1 << 20) * (double)p->output.scale)};
  int k;
  for (k = 0; k < 3; ++k) {
    if (!(real[k] > 0.0 && real[k] < 1.0)) return INVRES_ERR_MULTIPLIER_RANGE;
    if (invres_quantize_multiplier(real[k], &m[k], &n[k]) != INVRES_OK || n[k] > 0) {
      return INVRES_ERR_MULTIPLIER_RANGE;
    }
  }
  return INVRES_OK;
}

invres_status invres_s8_validate(const invres_config* cfg, const invres_s8_params* p) {
  stage_view v[3];
  invres_status st;
  int k;
  int32_t c, m, n, lo, hi, am[3], an[3];
  if ((st = invres_validate_config(cfg, NULL)) != INVRES_OK) return st;
  if (p == NULL) return INVRES_ERR_NULL_POINTER;
  stage_views(cfg, p, v);
  for (k = 0; k < 3; ++k) {
    if (v[k].present && (v[k].filter->weights == NULL || v[k].filter->scales == NULL)) {
      return INVRES_ERR_NULL_POINTER;
    }
  }
  /* Activation scales, then zero points (the absent ones are not read). */
  if (!scale_ok(p->input.scale) || (cfg->expand && !scale_ok(p->expanded.scale)) || !scale_ok(p->depthwise.scale) ||
      (cfg->residual && !scale_ok(p->projected.scale)) || !scale_ok(p->output.scale)) {
    return INVRES_ERR_BAD_SCALE;
  }
  if (!zero_point_ok(p->input.zero_point) || (cfg->expand && !zero_point_ok(p->expanded.zero_point)) ||
      !zero_point_ok(p->depthwise.zero_point) || (cfg->residual && !zero_point_ok(p->projected.zero_point)) ||
      !zero_point_ok(p->output.zero_point)) {
    return INVRES_ERR_BAD_ZERO_POINT;
  }
  for (k = 0; k < 3; ++k) {
    if (!v[k].present) continue;
    if (v[k].filter->scale_count != 1 && v[k].filter->scale_count != v[k].channels) return INVRES_ERR_BAD_SCALE_COUNT;
    for (c = 0; c < v[k].filter->scale_count; ++c) {
      if (!scale_ok(v[k].filter->scales[c])) return INVRES_ERR_BAD_SCALE;
    }
  }
  for (k = 0; k < 3; ++k) {
    if (!v[k].present) continue;
    for (c = 0; c < v[k].channels; ++c) {
      const float s_w = v[k].filter->scales[v[k].filter->scale_count > 1 ? c : 0];
      const double real = (double)v[k].in.scale * (double)s_w / (double)v[k].out.scale;
      if (invres_quantize_multiplier(real, &m, &n) != INVRES_OK) return INVRES_ERR_MULTIPLIER_RANGE;
    }
  }
  for (k = 0; k < 3; ++k) {
    if (!v[k].present) continue;
    if ((st = invres_activation_range(v[k].activation, v[k].out.scale, v[k].out.zero_point, &lo, &hi)) != INVRES_OK) {
      return st;
    }
  }
  if (cfg->residual) {
    if ((st = add_multipliers(p, am, an)) != INVRES_OK) return st;
    if ((st = invres_activation_range(cfg->add_activation, p->output.scale, p->output.zero_point, &lo, &hi)) !=
        INVRES_OK) {
      return st;
    }
  }
  return INVRES_OK;
}

/* ---- prepare ------------------------------------------------------------------------------ */

/* The weights of output channel c of a stage: `count` values, `step` apart. */
static void channel_weights(const int8_t* w, invres_stage stage, int32_t fan_in, int32_t channels, int32_t c,
                            const int8_t** first, int32_t* step) {
  if (stage == INVRES_STAGE_DEPTHWISE) {
    *first = w + c;
    *step = channels;
  } else {
    *first = w + (size_t)c * (size_t)fan_in;
    *step = 1;
  }
}

/* bias - zp_in * sum(w), wrapped to int32, and sum |w|. */
static int32_t folded_bias(const int8_t* w, int32_t step, int32_t count, const int32_t* bias, int32_t c,
                           int32_t zero_point_in, int64_t* abs_sum) {
  int32_t k, sum = 0, abs_total = 0;
  for (k = 0; k < count; ++k) {
    sum += w[k * step];
    abs_total += w[k * step] < 0 ? -w[k * step] : w[k * step];
  }
  if (abs_sum != NULL) *abs_sum = abs_total;
  return i8_wrap_add(bias != NULL ? bias[c] : 0, -zero_point_in * sum);
}

invres_status invres_s8_prepare(const invres_config* cfg, const invres_s8_params* p, void* prepared,
                                size_t prepared_bytes) {
  invres_prepared h;
  stage_view v[3];
  invres_status st;
  uint32_t need, at;
  int k;
  int32_t c, m, n;
  if (prepared == NULL) return INVRES_ERR_NULL_POINTER;
  if ((st = invres_s8_validate(cfg, p)) != INVRES_OK) return st;
  memset(&h, 0, sizeof(h));
  if ((st = invres_layout(cfg, &h.geo, &h.ring_cols, &h.scratch, &need)) != INVRES_OK) return st;
  if (((uintptr_t)prepared & 7u) != 0) return INVRES_ERR_MISALIGNED;
  if (prepared_bytes < need) return INVRES_ERR_BUFFER_TOO_SMALL;
  h.magic = INVRES_MAGIC;
  h.prepared_bytes = need;
  h.cfg = *cfg;
  stage_views(cfg, p, v);
  at = INVRES_PREPARED_HEADER_BYTES;
  for (k = 0; k < 3; ++k) {
    invres_stage_info* s = &h.stage[k];
    int32_t* pairs = (int32_t*)((uint8_t*)prepared + at);
    int smmlar = 1;
    s->channels = v[k].present ? v[k].channels : 0;
    s->zero_point_in = v[k].in.zero_point;
    s->zero_point_out = v[k].out.zero_point;
    s->quant_offset = at;
    if (!v[k].present) {
      s->form = INVRES_FORM_ABSENT;
      continue;
    }
    invres_activation_range(v[k].activation, v[k].out.scale, v[k].out.zero_point, &s->lo, &s->hi);
    s->full_range = s->lo == -128 && s->hi == 127;
    for (c = 0; c < v[k].channels; ++c) {
      const float s_w = v[k].filter->scales[v[k].filter->scale_count > 1 ? c : 0];
      const int8_t* w;
      int32_t step;
      int64_t abs_sum, bias;
      invres_quantize_multiplier((double)v[k].in.scale * (double)s_w / (double)v[k].out.scale, &m, &n);
      pairs[2 * c] = m;
      pairs[2 * c + 1] = n;
      /* The SMMLAR form needs a right shift of at least 1 and |accumulator| < 2^30, where the
       * accumulator is the folded bias plus products of int8 values: |sum| <= 128 * sum|w|. */
      channel_weights(v[k].filter->weights, (invres_stage)k, v[k].fan_in, v[k].channels, c, &w, &step);
      bias = folded_bias(w, step, v[k].fan_in, v[k].filter->bias, c, v[k].in.zero_point, &abs_sum);
      if (n > -1 || 128 * abs_sum + (bias < 0 ? -bias : bias) >= ((int64_t)1 << 30)) smmlar = 0;
    }
    s->form = smmlar ? INVRES_FORM_SMMLAR : INVRES_FORM_GENERAL;
    at += 8u * (uint32_t)v[k].channels;
  }
  if (cfg->residual) {
    int32_t am[3], an[3];
    add_multipliers(p, am, an);
    h.add.multiplier1 = am[0];
    h.add.shift1 = an[0];
    h.add.multiplier2 = am[1];
    h.add.shift2 = an[1];
    h.add.multiplier_out = am[2];
    h.add.shift_out = an[2];
    h.add.zero_point1 = p->input.zero_point;
    h.add.zero_point2 = p->projected.zero_point;
    h.add.zero_point_out = p->output.zero_point;
    invres_activation_range(cfg->add_activation, p->output.scale, p->output.zero_point, &h.add.lo, &h.add.hi);
    /* The rescaled inputs are below 2^28 in magnitude: the SMMLAR form needs only a right shift. */
    h.add.form = an[2] <= -1 ? INVRES_FORM_SMMLAR : INVRES_FORM_GENERAL;
  } else {
    h.add.form = INVRES_FORM_ABSENT;
  }
  memcpy(prepared, &h, sizeof(h));
  return INVRES_OK;
}

/* ---- eval ----------------------------------------------------------------------------------- */

typedef struct {
  const invres_prepared* h;
  const invres_s8_constants* k;
  uint8_t* scratch;
  const invres_record* records[3];
  const int32_t* tables; /* [2][256] */
  int8_t* ring;
  int16_t* expand_buffer;
  int16_t* project_buffer;
  int32_t row_bytes;   /* ring_cols * Ce */
  int32_t expanded_zp; /* the ring's padding value */
} invres_run;

/* Per-channel records (folded biases, multipliers) and the ADD's tables, built for this call. */
static void build_records(invres_run* r) {
  const invres_prepared* h = r->h;
  const int8_t* weights[3] = {r->k->expand_weights, r->k->depthwise_weights, r->k->project_weights};
  const int32_t* biases[3] = {r->k->expand_bias, r->k->depthwise_bias, r->k->project_bias};
  const int32_t fan_in[3] = {h->cfg.in_channels, 9, h->cfg.expanded_channels};
  int k, i;
  int32_t c;
  for (k = 0; k < 3; ++k) {
    const invres_stage_info* s = &h->stage[k];
    const int32_t* pairs = (const int32_t*)((const uint8_t*)h + s->quant_offset);
    invres_record* rec = (invres_record*)(r->scratch + h->scratch.records[k]);
    r->records[k] = rec;
    if (s->form == INVRES_FORM_ABSENT) continue;
    for (c = 0; c < s->channels; ++c) {
      const int8_t* w;
      int32_t step;
      channel_weights(weights[k], (invres_stage)k, fan_in[k], s->channels, c, &w, &step);
      rec[c].bias = folded_bias(w, step, fan_in[k], biases[k], c, s->zero_point_in, NULL);
      rec[c].multiplier = pairs[2 * c];
      if (s->form == INVRES_FORM_SMMLAR) {
        rec[c].shift = -pairs[2 * c + 1];
        rec[c].round = (int32_t)(1u << (rec[c].shift - 1));
      } else {
        rec[c].shift = pairs[2 * c + 1];
        rec[c].round = 0;
      }
    }
  }
  if (h->add.form != INVRES_FORM_ABSENT) {
    int32_t* t = (int32_t*)(r->scratch + h->scratch.tables);
    for (i = 0; i < 256; ++i) {
      const int32_t q = i - 128;
      t[i] =
          i8_rounding_divide_by_pot(i8_srdhm((q - h->add.zero_point1) * (1 << 20), h->add.multiplier1), -h->add.shift1);
      t[256 + i] =
          i8_rounding_divide_by_pot(i8_srdhm((q - h->add.zero_point2) * (1 << 20), h->add.multiplier2), -h->add.shift2);
    }
    r->tables = t;
  }
}

/* A stage's output step (zero point, clamp), held in registers: the int8 stores of a row may
 * alias anything, so values read from the records or the prepared buffer are copied into these
 * before the stores, not re-read after each one. */
typedef struct {
  int32_t zero_point, lo, hi;
} invres_clamp_info;

INVRES_INLINE invres_clamp_info clamp_info(const invres_stage_info* s) {
  invres_clamp_info c;
  c.zero_point = s->zero_point_out;
  c.lo = s->lo;
  c.hi = s->hi;
  return c;
}

/* MBQM in the stage's form, + the output zero point, the clamp. */
INVRES_INLINE int32_t finish(int32_t acc, const invres_record rec, const invres_clamp_info k, int form,
                             int full_range) {
  int32_t v;
  if (form == INVRES_FORM_SMMLAR) {
    v = invres_requant_smmlar(acc, &rec) + k.zero_point;
  } else {
    v = i8_wrap_add(invres_requant_general(acc, &rec), k.zero_point);
  }
#if INVRES_DSP
  if (full_range) return __ssat(v, 8);
#else
  if (full_range) return invres_clamp(v, -128, 127);
#endif
  return invres_clamp(v, k.lo, k.hi);
}

/* Four pixels' results of one output channel, `step` bytes apart (count of them stored). */
INVRES_INLINE void store4(int8_t* out, int32_t step, const int32_t acc[4], int32_t count, const invres_record rec,
                          const invres_clamp_info k, int form, int full_range) {
  if (count == 4) {
    const int32_t v0 = finish(acc[0], rec, k, form, full_range), v1 = finish(acc[1], rec, k, form, full_range);
    const int32_t v2 = finish(acc[2], rec, k, form, full_range), v3 = finish(acc[3], rec, k, form, full_range);
    out[0] = (int8_t)v0;
    out[step] = (int8_t)v1;
    out[2 * step] = (int8_t)v2;
    out[3 * step] = (int8_t)v3;
  } else {
    int32_t p;
    for (p = 0; p < count; ++p) out[p * step] = (int8_t)finish(acc[p], rec, k, form, full_range);
  }
}

/* The ADD's output step, held in registers (see invres_clamp_info). */
typedef struct {
  invres_record step; /* multiplier, shift and round as a record of the add's form */
  invres_clamp_info clamp;
  int form;
} invres_add_step;

INVRES_INLINE invres_add_step add_step(const invres_add_info* a) {
  invres_add_step q;
  q.form = a->form;
  q.step.bias = 0;
  q.step.multiplier = a->multiplier_out;
  q.step.shift = a->form == INVRES_FORM_SMMLAR ? -a->shift_out : a->shift_out;
  q.step.round = a->form == INVRES_FORM_SMMLAR ? (int32_t)(1u << (-a->shift_out - 1)) : 0;
  q.clamp.zero_point = a->zero_point_out;
  q.clamp.lo = a->lo;
  q.clamp.hi = a->hi;
  return q;
}

/* The ADD's output for the rescaled inputs' sum (|sum| < 2^28: the SMMLAR form needs only a right
 * shift; the general form is TFLM's MultiplyByQuantizedMultiplierSmallerThanOneExp). */
INVRES_INLINE int32_t add_output(const invres_add_step q, int32_t sum, int form) {
  const int32_t v = form == INVRES_FORM_SMMLAR
                        ? invres_requant_smmlar(sum, &q.step)
                        : i8_rounding_divide_by_pot(i8_srdhm(sum, q.step.multiplier), -q.step.shift);
  return invres_clamp(v + q.clamp.zero_point, q.clamp.lo, q.clamp.hi);
}

/* One expanded row: the 1x1 expansion of `x` (W pixels) into `dst` (W * Ce int8). */
INVRES_INLINE void expand_row_form(const invres_run* r, const int8_t* x, int8_t* dst, int form, int full_range) {
  const invres_config* cfg = &r->h->cfg;
  const invres_clamp_info k = clamp_info(&r->h->stage[INVRES_STAGE_EXPAND]);
  const invres_record* rec = r->records[INVRES_STAGE_EXPAND];
  const int32_t ci = cfg->in_channels, ce = cfg->expanded_channels, width = cfg->in_cols;
  int32_t x0, p, c, acc[4];
  for (x0 = 0; x0 < width; x0 += 4) {
    const int32_t count = width - x0 < 4 ? width - x0 : 4;
    for (p = 0; p < 4; ++p) {
      if (p < count) {
        invres_widen_pixel(x + (size_t)(x0 + p) * (size_t)ci, ci, r->expand_buffer, p);
      } else { /* past the row's end: zeros (their results are not stored) */
        for (c = 0; c < ci; ++c) r->expand_buffer[invres_lane(c, p)] = 0;
      }
    }
    for (c = 0; c < ce; ++c) {
      invres_dot4(r->k->expand_weights + (size_t)c * (size_t)ci, r->expand_buffer, ci, rec[c].bias, acc);
      store4(dst + (size_t)x0 * (size_t)ce + c, ce, acc, count, rec[c], k, form, full_range);
    }
  }
}

static void expand_row(const invres_run* r, const int8_t* x, int8_t* dst) {
  const invres_stage_info* s = &r->h->stage[INVRES_STAGE_EXPAND];
  if (s->form == INVRES_FORM_SMMLAR) {
    if (s->full_range)
      expand_row_form(r, x, dst, INVRES_FORM_SMMLAR, 1);
    else
      expand_row_form(r, x, dst, INVRES_FORM_SMMLAR, 0);
  } else {
    expand_row_form(r, x, dst, INVRES_FORM_GENERAL, 0);
  }
}

/* The ring row that holds (padded) input row `row`: computed now, or the padding value. */
static void materialize(const invres_run* r, const int8_t* image, int32_t row) {
  const invres_config* cfg = &r->h->cfg;
  const int32_t ce = cfg->expanded_channels, left = r->h->geo.pad_left;
  int8_t* dst = r->ring + (size_t)(((row % 3) + 3) % 3) * (size_t)r->row_bytes;
  const int32_t right = r->h->ring_cols - left - cfg->in_cols;
  if (row < 0 || row >= cfg->in_rows) {
    memset(dst, r->expanded_zp, (size_t)r->row_bytes);
    return;
  }
  memset(dst, r->expanded_zp, (size_t)left * (size_t)ce);
  memset(dst + (size_t)(left + cfg->in_cols) * (size_t)ce, r->expanded_zp, (size_t)right * (size_t)ce);
  {
    const int8_t* x = image + (size_t)row * (size_t)cfg->in_cols * (size_t)cfg->in_channels;
    if (cfg->expand) {
      expand_row(r, x, dst + (size_t)left * (size_t)ce);
    } else {
      memcpy(dst + (size_t)left * (size_t)ce, x, (size_t)cfg->in_cols * (size_t)ce);
    }
  }
}

#if INVRES_ASM
/* The depthwise pixel on Cortex-M4 in the SMMLAR form: four channels per step, the three kernel
 * rows as hand-scheduled taps (bias loaded straight from the records), the four results packed
 * into the two words of the widened buffer. `full_range` is a constant at each call: the clamp
 * is one saturation or two comparisons. */
INVRES_INLINE void depthwise_groups_smmlar(const int8_t* const taps[3], const int8_t* w, int32_t ce,
                                           const invres_record* rec, const invres_stage_info* s, int16_t* out,
                                           int32_t groups, int full_range) {
  const int32_t zp = s->zero_point_out, lo = s->lo, hi = s->hi;
  int32_t g, ky;
  for (g = 0; g < groups; ++g, rec += 4, w += 4, out += 16) {
    int32_t a0 = rec[0].bias, a1 = rec[1].bias, a2 = rec[2].bias, a3 = rec[3].bias, v0, v1, v2, v3;
    for (ky = 0; ky < 3; ++ky) {
      const int8_t* in = taps[ky] + 4 * g;
      const int8_t* wt = w + 3 * ky * ce;
      uint32_t vi, vw, ti, tw;
      __asm__ volatile(INVRES_DEPTHWISE_TAP("") INVRES_DEPTHWISE_TAP(", %[ce]") INVRES_DEPTHWISE_TAP(", %[ce], lsl #1")
                       : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [vi] "=&r"(vi), [vw] "=&r"(vw),
                         [ti] "=&r"(ti), [tw] "=&r"(tw)
                       : [in] "r"(in), [wt] "r"(wt), [ce] "r"(ce)
                       : "memory");
    }
    v0 = __ssat(invres_requant_smmlar(a0, &rec[0]) + zp, 8);
    v1 = __ssat(invres_requant_smmlar(a1, &rec[1]) + zp, 8);
    v2 = __ssat(invres_requant_smmlar(a2, &rec[2]) + zp, 8);
    v3 = __ssat(invres_requant_smmlar(a3, &rec[3]) + zp, 8);
    if (!full_range) {
      v0 = invres_clamp(v0, lo, hi);
      v1 = invres_clamp(v1, lo, hi);
      v2 = invres_clamp(v2, lo, hi);
      v3 = invres_clamp(v3, lo, hi);
    }
    invres_store32(out, (uint32_t)(v0 & 0xFFFF) | ((uint32_t)v2 << 16));
    invres_store32(out + 2, (uint32_t)(v1 & 0xFFFF) | ((uint32_t)v3 << 16));
  }
}

/* Out of line (own registers), one copy per clamp kind. */
static __attribute__((noinline)) void depthwise_groups_smmlar_full(const int8_t* const taps[3], const int8_t* w,
                                                                   int32_t ce, const invres_record* rec,
                                                                   const invres_stage_info* s, int16_t* out,
                                                                   int32_t groups) {
  depthwise_groups_smmlar(taps, w, ce, rec, s, out, groups, 1);
}

static __attribute__((noinline)) void depthwise_groups_smmlar_clamped(const int8_t* const taps[3], const int8_t* w,
                                                                      int32_t ce, const invres_record* rec,
                                                                      const invres_stage_info* s, int16_t* out,
                                                                      int32_t groups) {
  depthwise_groups_smmlar(taps, w, ce, rec, s, out, groups, 0);
}
#endif

/* Depthwise output pixel -> slot p of the projection's widened buffer. */
INVRES_INLINE void depthwise_pixel(const invres_run* r, const int8_t* const rows[3], int32_t p, int form,
                                   int full_range) {
  const int32_t ce = r->h->cfg.expanded_channels;
  const invres_stage_info* s = &r->h->stage[INVRES_STAGE_DEPTHWISE];
  const invres_clamp_info k = clamp_info(s);
  const invres_record* rec = r->records[INVRES_STAGE_DEPTHWISE];
  const int8_t* w = r->k->depthwise_weights;
  int16_t* out = r->project_buffer;
  int32_t c = 0, j, acc[4], init[4];
#if INVRES_ASM
  if (form == INVRES_FORM_SMMLAR) {
    if (full_range) {
      depthwise_groups_smmlar_full(rows, w, ce, rec, s, out + 4 * p, ce >> 2);
    } else {
      depthwise_groups_smmlar_clamped(rows, w, ce, rec, s, out + 4 * p, ce >> 2);
    }
    c = ce & ~3;
  }
#endif
  for (; c + 4 <= ce; c += 4) {
    int16_t* dst = out + 16 * (c >> 2) + 4 * p;
    for (j = 0; j < 4; ++j) init[j] = rec[c + j].bias;
    invres_depthwise4(rows, w, ce, c, init, acc);
    dst[0] = (int16_t)finish(acc[0], rec[c], k, form, full_range);
    dst[2] = (int16_t)finish(acc[1], rec[c + 1], k, form, full_range);
    dst[1] = (int16_t)finish(acc[2], rec[c + 2], k, form, full_range);
    dst[3] = (int16_t)finish(acc[3], rec[c + 3], k, form, full_range);
  }
  for (; c < ce; ++c) {
    out[invres_lane(c, p)] =
        (int16_t)finish(invres_depthwise1(rows, w, ce, c, rec[c].bias), rec[c], k, form, full_range);
  }
}

/* Projection and the residual ADD (TFLM's AddFunc: each input rescaled by a 256-entry table,
 * then the output step) of four depthwise pixels into output pixels ox0.. */
INVRES_INLINE void project_add(const invres_run* r, const int8_t* x_row, int8_t* out, int32_t ox0, int32_t count,
                               const invres_clamp_info k, const invres_add_step q, int form, int full_range,
                               int add_form) {
  const invres_record* rec = r->records[INVRES_STAGE_PROJECT];
  const int32_t ce = r->h->cfg.expanded_channels, co = r->h->cfg.out_channels;
  const int32_t* t1 = r->tables + 128;
  const int32_t* t2 = r->tables + 256 + 128;
  const int8_t* x = x_row + (size_t)ox0 * (size_t)co;
  int32_t o, p, acc[4], y[4];
  for (o = 0; o < co; ++o) {
    invres_dot4(r->k->project_weights + (size_t)o * (size_t)ce, r->project_buffer, ce, rec[o].bias, acc);
    {
      const invres_record step = rec[o];
      for (p = 0; p < count; ++p) {
        const int32_t projected = finish(acc[p], step, k, form, full_range);
        y[p] = add_output(q, t1[x[p * co + o]] + t2[projected], add_form);
      }
    }
    for (p = 0; p < count; ++p) out[p * co + o] = (int8_t)y[p];
  }
}

/* Projection (and the residual ADD) of four depthwise pixels into output pixels ox0.. */
INVRES_INLINE void project_pixels(const invres_run* r, const int8_t* x_row, int8_t* y_row, int32_t ox0, int32_t count,
                                  int form, int full_range) {
  const invres_config* cfg = &r->h->cfg;
  const invres_clamp_info k = clamp_info(&r->h->stage[INVRES_STAGE_PROJECT]);
  const invres_record* rec = r->records[INVRES_STAGE_PROJECT];
  const int32_t ce = cfg->expanded_channels, co = cfg->out_channels;
  int32_t o, acc[4];
  int8_t* out = y_row + (size_t)ox0 * (size_t)co;
  if (!cfg->residual) {
    for (o = 0; o < co; ++o) {
      invres_dot4(r->k->project_weights + (size_t)o * (size_t)ce, r->project_buffer, ce, rec[o].bias, acc);
      store4(out + o, co, acc, count, rec[o], k, form, full_range);
    }
  } else if (r->h->add.form == INVRES_FORM_SMMLAR) {
    project_add(r, x_row, out, ox0, count, k, add_step(&r->h->add), form, full_range, INVRES_FORM_SMMLAR);
  } else {
    project_add(r, x_row, out, ox0, count, k, add_step(&r->h->add), form, full_range, INVRES_FORM_GENERAL);
  }
}

/* One output row: depthwise four pixels at a time, then their projection. */
INVRES_INLINE void output_row_form(const invres_run* r, const int8_t* const rows[3], const int8_t* x_row, int8_t* y_row,
                                   int dw_form, int dw_full, int pr_form, int pr_full) {
  const int32_t out_cols = r->h->geo.out_cols, stride = r->h->cfg.stride, ce = r->h->cfg.expanded_channels;
  int32_t ox0, p;
  for (ox0 = 0; ox0 < out_cols; ox0 += 4) {
    const int32_t count = out_cols - ox0 < 4 ? out_cols - ox0 : 4;
    for (p = 0; p < count; ++p) {
      const size_t at = (size_t)(ox0 + p) * (size_t)stride * (size_t)ce;
      const int8_t* const taps[3] = {rows[0] + at, rows[1] + at, rows[2] + at};
      depthwise_pixel(r, taps, p, dw_form, dw_full);
    }
    project_pixels(r, x_row, y_row, ox0, count, pr_form, pr_full);
  }
}

/* Specialises the row loop for the two stages' forms (the common cases: SMMLAR form and a clamp
 * that is one saturation; anything else takes the general path). */
static void output_row(const invres_run* r, const int8_t* const rows[3], const int8_t* x_row, int8_t* y_row) {
  const invres_stage_info* dw = &r->h->stage[INVRES_STAGE_DEPTHWISE];
  const invres_stage_info* pr = &r->h->stage[INVRES_STAGE_PROJECT];
  const int fast_dw = dw->form == INVRES_FORM_SMMLAR, fast_pr = pr->form == INVRES_FORM_SMMLAR;
  if (fast_dw && fast_pr && dw->full_range && pr->full_range) {
    output_row_form(r, rows, x_row, y_row, INVRES_FORM_SMMLAR, 1, INVRES_FORM_SMMLAR, 1);
  } else if (fast_dw && fast_pr) {
    output_row_form(r, rows, x_row, y_row, INVRES_FORM_SMMLAR, 0, INVRES_FORM_SMMLAR, 0);
  } else {
    output_row_form(r, rows, x_row, y_row, dw->form, 0, pr->form, 0);
  }
}

invres_status invres_s8_eval(const void* prepared, const invres_s8_constants* constants, const int8_t* input,
                             int8_t* output, void* scratch, size_t scratch_bytes) {
  invres_run r;
  const invres_prepared* h = (const invres_prepared*)prepared;
  int32_t n, oy;
  if (prepared == NULL || constants == NULL || input == NULL || output == NULL || scratch == NULL) {
    return INVRES_ERR_NULL_POINTER;
  }
  if (((uintptr_t)prepared & 7u) != 0 || ((uintptr_t)scratch & 7u) != 0) return INVRES_ERR_MISALIGNED;
  if (h->magic != INVRES_MAGIC) return INVRES_ERR_NOT_PREPARED;
  if (scratch_bytes < h->scratch.total) return INVRES_ERR_BUFFER_TOO_SMALL;
  if ((h->cfg.expand && constants->expand_weights == NULL) || constants->depthwise_weights == NULL ||
      constants->project_weights == NULL) {
    return INVRES_ERR_NULL_POINTER;
  }
  memset(&r, 0, sizeof(r));
  r.h = h;
  r.k = constants;
  r.scratch = (uint8_t*)scratch;
  r.ring = (int8_t*)(r.scratch + h->scratch.ring);
  r.expand_buffer = (int16_t*)(r.scratch + h->scratch.expand_buffer);
  r.project_buffer = (int16_t*)(r.scratch + h->scratch.project_buffer);
  r.row_bytes = h->ring_cols * h->cfg.expanded_channels;
  r.expanded_zp = h->stage[INVRES_STAGE_DEPTHWISE].zero_point_in;
  /* Pixel slots past a short row's end are multiplied but never stored: keep them defined. */
  memset(r.project_buffer, 0, h->scratch.total - h->scratch.project_buffer);
  build_records(&r);
  for (n = 0; n < h->cfg.batch; ++n) {
    const size_t in_image = (size_t)h->cfg.in_rows * (size_t)h->cfg.in_cols * (size_t)h->cfg.in_channels;
    const size_t out_row = (size_t)h->geo.out_cols * (size_t)h->cfg.out_channels;
    const int8_t* image = input + (size_t)n * in_image;
    int8_t* out_image = output + (size_t)n * (size_t)h->geo.out_rows * out_row;
    int32_t have = -h->geo.pad_top - 1; /* the last input row in the ring */
    for (oy = 0; oy < h->geo.out_rows; ++oy) {
      const int32_t top = oy * h->cfg.stride - h->geo.pad_top;
      const int8_t* rows[3];
      int32_t k;
      for (k = 0; k < 3; ++k) {
        if (top + k > have) {
          materialize(&r, image, top + k);
          have = top + k;
        }
        rows[k] = r.ring + (size_t)((((top + k) % 3) + 3) % 3) * (size_t)r.row_bytes;
      }
      /* The residual reads the input pixel at the same place (stride 1, Co == Ci). */
      output_row(&r, rows, image + (size_t)oy * (size_t)h->cfg.in_cols * (size_t)h->cfg.in_channels,
                 out_image + (size_t)oy * out_row);
    }
  }
  return INVRES_OK;
}

/* ---- diagnostics ---------------------------------------------------------------------------- */

static invres_status check_prepared(const void* prepared) {
  if (prepared == NULL) return INVRES_ERR_NULL_POINTER;
  if (((uintptr_t)prepared & 7u) != 0) return INVRES_ERR_MISALIGNED;
  return ((const invres_prepared*)prepared)->magic == INVRES_MAGIC ? INVRES_OK : INVRES_ERR_NOT_PREPARED;
}

invres_status invres_s8_multiplier(const void* prepared, invres_stage stage, int32_t channel, int32_t* multiplier,
                                   int32_t* shift) {
  const invres_prepared* h = (const invres_prepared*)prepared;
  const int32_t* pairs;
  invres_status st = check_prepared(prepared);
  if (st != INVRES_OK) return st;
  if (multiplier == NULL || shift == NULL) return INVRES_ERR_NULL_POINTER;
  if ((unsigned)stage > 2u || h->stage[stage].form == INVRES_FORM_ABSENT) return INVRES_ERR_NOT_PREPARED;
  if (channel < 0 || channel >= h->stage[stage].channels) return INVRES_ERR_BAD_CHANNELS;
  pairs = (const int32_t*)((const uint8_t*)prepared + h->stage[stage].quant_offset);
  *multiplier = pairs[2 * channel];
  *shift = pairs[2 * channel + 1];
  return INVRES_OK;
}

invres_status invres_s8_activation_range(const void* prepared, invres_stage stage, int32_t* lo, int32_t* hi) {
  const invres_prepared* h = (const invres_prepared*)prepared;
  invres_status st = check_prepared(prepared);
  if (st != INVRES_OK) return st;
  if (lo == NULL || hi == NULL) return INVRES_ERR_NULL_POINTER;
  if ((unsigned)stage > 2u || h->stage[stage].form == INVRES_FORM_ABSENT) return INVRES_ERR_NOT_PREPARED;
  *lo = h->stage[stage].lo;
  *hi = h->stage[stage].hi;
  return INVRES_OK;
}

invres_status invres_s8_add_params(const void* prepared, int32_t values[8]) {
  const invres_prepared* h = (const invres_prepared*)prepared;
  invres_status st = check_prepared(prepared);
  if (st != INVRES_OK) return st;
  if (values == NULL) return INVRES_ERR_NULL_POINTER;
  if (h->add.form == INVRES_FORM_ABSENT) return INVRES_ERR_NOT_PREPARED;
  values[0] = h->add.multiplier1;
  values[1] = h->add.shift1;
  values[2] = h->add.multiplier2;
  values[3] = h->add.shift2;
  values[4] = h->add.multiplier_out;
  values[5] = h->add.shift_out;
  values[6] = h->add.lo;
  values[7] = h->add.hi;
  return INVRES_OK;
}

invres_status invres_s8_requant_forms(const void* prepared, int32_t forms[4]) {
  const invres_prepared* h = (const invres_prepared*)prepared;
  int k;
  invres_status st = check_prepared(prepared);
  if (st != INVRES_OK) return st;
  if (forms == NULL) return INVRES_ERR_NULL_POINTER;
  for (k = 0; k < 3; ++k) forms[k] = h->stage[k].form;
  forms[3] = h->add.form;
  return INVRES_OK;
}
