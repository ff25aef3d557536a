/* float32 RNNPool (docs/quantization.md, section 10): the structure of the
 * int8 kernel in float arithmetic, through the same streaming driver. */
#include <math.h>
#include <string.h>

#include "rnnpool_internal.h"

#define F32_MAGIC 0x52503346u /* "F3PR" */

typedef struct {
  uint32_t w, u, bias; /* offsets: w [h][in], u [h][h], bias [2][h] */
  int32_t h, in;
  float zeta, nu; /* sigmoid(zeta), sigmoid(nu) */
} f32_cell_offsets;

typedef struct {
  uint32_t magic;
  int32_t hard_gate, hard_update;
  rnnpool_layout layout;
  f32_cell_offsets rnn1, rnn2;
  uint32_t work_pre; /* [2][hm] U.h of two states */
  uint32_t work_g;   /* [2][h2] RNN2 forward and backward states */
  uint32_t work_bytes;
} f32_prepared;

/* 32-bit fields only: the same layout (and buffer sizes) on every ABI. */
typedef char f32_header_fits[sizeof(f32_prepared) <= RNNPOOL_PREPARED_HEADER_BYTES ? 1 : -1];

typedef struct {
  const float *w, *u, *bias;
  int32_t h, in;
  float zeta, nu;
} f32_cell;

typedef struct {
  const f32_prepared* p;
  f32_cell rnn1, rnn2;
} f32_view;

#define WORK(view, work, field) ((float*)(void*)((uint8_t*)(work) + (view)->p->field))

static float dot(const float* a, const float* b, int32_t n) {
  float acc = 0.0f;
  int32_t i;
  for (i = 0; i < n; ++i) acc += a[i] * b[i];
  return acc;
}

static void matvec(const float* w, int32_t rows, int32_t n, const float* x, float* out) {
  int32_t j;
  for (j = 0; j < rows; ++j) out[j] = dot(w + (size_t)j * (size_t)n, x, n);
}

static float gate(float v, int hard) {
  if (hard) {
    const float g = (v + 1.0f) * 0.5f;
    return g < 0.0f ? 0.0f : (g > 1.0f ? 1.0f : g);
  }
  return 1.0f / (1.0f + expf(-v));
}

static float update(float v, int hard) {
  if (hard) return v < -1.0f ? -1.0f : (v > 1.0f ? 1.0f : v);
  return tanhf(v);
}

/* h = z*h + (zeta*(1 - z) + nu)*h~ for one state; pre = U.h (NULL: h = 0). */
static void cell_update(const f32_view* v, const f32_cell* c, const float* px, const float* pre, float* state) {
  int32_t j;
  for (j = 0; j < c->h; ++j) {
    const float a = pre != NULL ? px[j] + pre[j] : px[j];
    const float z = gate(a + c->bias[j], v->p->hard_gate);
    const float hh = update(a + c->bias[c->h + j], v->p->hard_update);
    const float keep = pre != NULL ? z * state[j] : 0.0f;
    state[j] = keep + (c->zeta * (1.0f - z) + c->nu) * hh;
  }
}

static void f32_project(const void* prepared, const void* pixel, void* input, void* work) {
  const f32_view* v = (const f32_view*)prepared;
  float* px = (float*)input;
  (void)work;
  if (pixel == NULL) {
    memset(px, 0, (size_t)v->rnn1.h * sizeof(float));
    return;
  }
  matvec(v->rnn1.w, v->rnn1.h, v->rnn1.in, (const float*)pixel, px);
}

static void f32_fresh(const void* prepared, const void* input, void* state, void* work) {
  const f32_view* v = (const f32_view*)prepared;
  (void)work;
  cell_update(v, &v->rnn1, (const float*)input, NULL, (float*)state);
}

static void f32_step(const void* prepared, void* a, const void* ia, void* b, const void* ib, void* work) {
  const f32_view* v = (const f32_view*)prepared;
  float* pre = WORK(v, work, work_pre);
  matvec(v->rnn1.u, v->rnn1.h, v->rnn1.h, (const float*)a, pre);
  cell_update(v, &v->rnn1, (const float*)ia, pre, (float*)a);
  if (b != NULL) {
    matvec(v->rnn1.u, v->rnn1.h, v->rnn1.h, (const float*)b, pre);
    cell_update(v, &v->rnn1, (const float*)ib, pre, (float*)b);
  }
}

static void f32_summarize(const void* prepared, const void* state, void* proj, void* work) {
  const f32_view* v = (const f32_view*)prepared;
  (void)work;
  matvec(v->rnn2.w, v->rnn2.h, v->rnn2.in, (const float*)state, (float*)proj);
}

/* RNN2 step on one sweep: g from the projected summary p. */
static void rnn2_step(const f32_view* v, const float* p, float* g, int first, float* pre) {
  if (first) {
    cell_update(v, &v->rnn2, p, NULL, g);
  } else {
    matvec(v->rnn2.u, v->rnn2.h, v->rnn2.h, g, pre);
    cell_update(v, &v->rnn2, p, pre, g);
  }
}

/* RNN2 forward and backward over one sequence -> 2*h2 outputs. */
static void f32_pool(const void* prepared, const rnnpool_sequence* seq, void* out_half, void* work) {
  const f32_view* v = (const f32_view*)prepared;
  const int32_t h2 = v->rnn2.h, n = seq->steps;
  float* g = WORK(v, work, work_g);
  float* pre = WORK(v, work, work_pre);
  int32_t t;
  for (t = 0; t < n; ++t) {
    rnn2_step(v, (const float*)rnnpool_sequence_at(seq, t), g, t == 0, pre);
    rnn2_step(v, (const float*)rnnpool_sequence_at(seq, n - 1 - t), g + h2, t == 0, pre);
  }
  memcpy(out_half, g, 2u * (size_t)h2 * sizeof(float));
}

static void f32_ops(const f32_prepared* p, rnnpool_stream_ops* ops) {
  ops->state_bytes = (size_t)p->rnn1.h * sizeof(float);
  ops->input_bytes = (size_t)p->rnn1.h * sizeof(float);
  ops->proj_bytes = (size_t)p->rnn2.h * sizeof(float);
  ops->in_pixel_bytes = (size_t)p->layout.cfg.channels * sizeof(float);
  ops->out_pixel_bytes = 4u * (size_t)p->rnn2.h * sizeof(float);
  ops->work_bytes = p->work_bytes;
  ops->project = f32_project;
  ops->fresh = f32_fresh;
  ops->step = f32_step;
  ops->summarize = f32_summarize;
  ops->pool = f32_pool;
}

typedef struct {
  size_t w1, u1, bias1, w2, u2, bias2, total;
  size_t work_pre, work_g, work_bytes;
  int ok;
} f32_sizes;

static f32_sizes sizes(const rnnpool_config* cfg) {
  f32_sizes s;
  size_t cursor = 0, work = 0;
  const size_t k = (size_t)cfg->channels, h1 = (size_t)cfg->hidden1, h2 = (size_t)cfg->hidden2;
  const size_t hp1 = (size_t)rnnpool_even(cfg->hidden1), hp2 = (size_t)rnnpool_even(cfg->hidden2);
  const size_t hm = hp1 > hp2 ? hp1 : hp2;
  s.ok = 1;
  (void)rnnpool_take(&cursor, RNNPOOL_PREPARED_HEADER_BYTES, &s.ok);
  s.w1 = rnnpool_take(&cursor, 4 * h1 * k, &s.ok);
  s.u1 = rnnpool_take(&cursor, 4 * h1 * h1, &s.ok);
  s.bias1 = rnnpool_take(&cursor, 8 * h1, &s.ok);
  s.w2 = rnnpool_take(&cursor, 4 * h2 * h1, &s.ok);
  s.u2 = rnnpool_take(&cursor, 4 * h2 * h2, &s.ok);
  s.bias2 = rnnpool_take(&cursor, 8 * h2, &s.ok);
  s.total = cursor;
#if SIZE_MAX > UINT32_MAX
  if (cursor > UINT32_MAX) s.ok = 0; /* offsets are 32-bit */
#endif
  s.work_pre = rnnpool_take(&work, 8 * hm, &s.ok);
  s.work_g = rnnpool_take(&work, 8 * h2, &s.ok);
  s.work_bytes = work;
  return s;
}

size_t rnnpool_f32_prepared_bytes(const rnnpool_config* cfg) {
  f32_sizes s;
  if (rnnpool_validate_config(cfg, NULL) != RNNPOOL_OK) return 0;
  s = sizes(cfg);
  return s.ok ? s.total : 0;
}

size_t rnnpool_f32_scratch_bytes(const rnnpool_config* cfg) {
  f32_prepared p;
  rnnpool_stream_ops ops;
  f32_sizes s;
  if (rnnpool_layout_init(cfg, &p.layout) != RNNPOOL_OK) return 0;
  s = sizes(cfg);
  if (!s.ok) return 0;
  p.rnn1.h = cfg->hidden1;
  p.rnn2.h = cfg->hidden2;
  p.work_bytes = (uint32_t)s.work_bytes;
  f32_ops(&p, &ops);
  return rnnpool_stream_scratch_bytes(&p.layout, &ops);
}

static int finite_range(float v, float lo, float hi) { return v >= lo && v <= hi; }

static int all_finite(const float* v, int32_t n) {
  int32_t i;
  for (i = 0; i < n; ++i) {
    if (!(v[i] - v[i] == 0.0f)) return 0;
  }
  return 1;
}

rnnpool_status rnnpool_f32_validate(const rnnpool_config* cfg, const rnnpool_f32_params* pr) {
  rnnpool_status st = rnnpool_validate_config(cfg, NULL);
  int32_t i;
  if (st != RNNPOOL_OK) return st;
  if (pr == NULL || pr->w1 == NULL || pr->u1 == NULL || pr->bias1 == NULL || pr->w2 == NULL || pr->u2 == NULL ||
      pr->bias2 == NULL || pr->scalars == NULL) {
    return RNNPOOL_ERR_NULL_POINTER;
  }
  for (i = 0; i < 4; ++i) {
    if (!finite_range(pr->scalars[i], 0.0f, 1.0f)) return RNNPOOL_ERR_BAD_SCALARS;
  }
  if (!all_finite(pr->bias1, 2 * cfg->hidden1) || !all_finite(pr->bias2, 2 * cfg->hidden2)) {
    return RNNPOOL_ERR_BAD_BIAS;
  }
  if (rnnpool_f32_prepared_bytes(cfg) == 0 || rnnpool_f32_scratch_bytes(cfg) == 0) return RNNPOOL_ERR_SIZE_OVERFLOW;
  return RNNPOOL_OK;
}

static void set_cell(f32_cell_offsets* c, size_t w, size_t u, size_t bias, int32_t h, int32_t in, float zeta,
                     float nu) {
  c->w = (uint32_t)w; /* sizes() checked that offsets fit 32 bits */
  c->u = (uint32_t)u;
  c->bias = (uint32_t)bias;
  c->h = h;
  c->in = in;
  c->zeta = zeta;
  c->nu = nu;
}

rnnpool_status rnnpool_f32_prepare(const rnnpool_config* cfg, const rnnpool_f32_params* params, void* prepared,
                                   size_t prepared_bytes) {
  uint8_t* base = (uint8_t*)prepared;
  f32_prepared p;
  f32_sizes s;
  const rnnpool_status st = rnnpool_f32_validate(cfg, params);
  size_t h1, h2, k;
  if (st != RNNPOOL_OK) return st;
  if (prepared == NULL) return RNNPOOL_ERR_NULL_POINTER;
  s = sizes(cfg);
  if (prepared_bytes < s.total) return RNNPOOL_ERR_BUFFER_TOO_SMALL;
  if (!rnnpool_is_aligned(prepared, RNNPOOL_ALIGN)) return RNNPOOL_ERR_MISALIGNED;
  h1 = (size_t)cfg->hidden1;
  h2 = (size_t)cfg->hidden2;
  k = (size_t)cfg->channels;
  memset(&p, 0, sizeof(p));
  (void)rnnpool_layout_init(cfg, &p.layout);
  p.hard_gate = cfg->gate_activation == RNNPOOL_GATE_HARD_SIGMOID;
  p.hard_update = cfg->update_activation == RNNPOOL_UPDATE_HARD_TANH;
  set_cell(&p.rnn1, s.w1, s.u1, s.bias1, cfg->hidden1, cfg->channels, params->scalars[0], params->scalars[1]);
  set_cell(&p.rnn2, s.w2, s.u2, s.bias2, cfg->hidden2, cfg->hidden1, params->scalars[2], params->scalars[3]);
  p.work_pre = (uint32_t)s.work_pre;
  p.work_g = (uint32_t)s.work_g;
  p.work_bytes = (uint32_t)s.work_bytes;
  p.magic = F32_MAGIC;
  memset(base, 0, s.total);
  memcpy(base + s.w1, params->w1, 4 * h1 * k);
  memcpy(base + s.u1, params->u1, 4 * h1 * h1);
  memcpy(base + s.bias1, params->bias1, 8 * h1);
  memcpy(base + s.w2, params->w2, 4 * h2 * h1);
  memcpy(base + s.u2, params->u2, 4 * h2 * h2);
  memcpy(base + s.bias2, params->bias2, 8 * h2);
  memcpy(base, &p, sizeof(p));
  return RNNPOOL_OK;
}

static void resolve(const uint8_t* base, const f32_cell_offsets* o, f32_cell* c) {
  c->w = (const float*)(const void*)(base + o->w);
  c->u = (const float*)(const void*)(base + o->u);
  c->bias = (const float*)(const void*)(base + o->bias);
  c->h = o->h;
  c->in = o->in;
  c->zeta = o->zeta;
  c->nu = o->nu;
}

rnnpool_status rnnpool_f32_eval(const void* prepared, const float* input, float* output, void* scratch,
                                size_t scratch_bytes) {
  const f32_prepared* p = (const f32_prepared*)prepared;
  rnnpool_stream_ops ops;
  f32_view v;
  if (p == NULL) return RNNPOOL_ERR_NULL_POINTER;
  if (!rnnpool_is_aligned(prepared, RNNPOOL_ALIGN) || !rnnpool_is_aligned(input, 4) || !rnnpool_is_aligned(output, 4)) {
    return RNNPOOL_ERR_MISALIGNED;
  }
  if (p->magic != F32_MAGIC) return RNNPOOL_ERR_NOT_PREPARED;
  v.p = p;
  resolve((const uint8_t*)p, &p->rnn1, &v.rnn1);
  resolve((const uint8_t*)p, &p->rnn2, &v.rnn2);
  f32_ops(p, &ops);
  return rnnpool_stream_run(&p->layout, &ops, &v, input, output, scratch, scratch_bytes);
}

rnnpool_status rnnpool_f32_inplace_lag(const rnnpool_config* cfg, int64_t* lag_bytes) {
  rnnpool_layout layout;
  const rnnpool_status st = rnnpool_layout_init(cfg, &layout);
  if (st != RNNPOOL_OK) return st;
  return rnnpool_stream_inplace_lag(&layout, (size_t)cfg->channels * sizeof(float),
                                    4u * (size_t)cfg->hidden2 * sizeof(float), lag_bytes);
}
