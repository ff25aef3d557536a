/* int8 RNNPool, bit-exact with docs/quantization.md.
 *
 * Prepare widens the weights to int16 so that every dot product runs over
 * int16 pairs (SMLAD, two 16x16 MACs per instruction, on Cortex-M4 with the
 * DSP extension; plain C elsewhere). Integer sums are exact in any order, so
 * every path gives the same integers. The streaming driver (rnnpool_stream.c)
 * decides what is computed when; this file says how. */
#include <string.h>

#include "rnnpool_internal.h"
#include "rnnpool_s8_math.h"

#define S8_MAGIC 0x52503853u /* "S8PR" */

/* Weight matrices are stored widened to int16 with the rows padded to an
 * even count (zero rows) and interleaved by row pairs: for rows 2p, 2p+1 and
 * columns 2m, 2m+1 the four values are consecutive,
 *   [row 2p: col 2m, col 2m+1][row 2p+1: col 2m, col 2m+1],
 * so one 64-bit load feeds two SMLADs per input pair. W1's columns are also
 * permuted within each full group of four channels as (0, 2, 1, 3): the
 * order in which SXTB16 widens four int8 channels. Padding rows have a zero
 * multiplier and zero biases, so the padding unit of an odd h stays 0.
 * U's multipliers are stored with the biases, one rnnpool_urow per unit. */
typedef struct {
  uint32_t w, u, wq, ur; /* offsets of the cell's arrays in the prepared buffer */
  int32_t h, hp, inp;
  int32_t a, b, q;
  int32_t w_class, u_class;    /* RNNPOOL_RQ_*: how W's and U's multipliers are applied */
} s8_cell_offsets;

typedef struct {
  uint32_t magic;
  int32_t activations; /* 2*hard_gate + hard_update */
  rnnpool_layout layout;
  s8_cell_offsets rnn1, rnn2;
  uint32_t x1_offset;  /* [hp1] int32: -zp_x * sum_i w1[j][i] (the zero point folded, docs section 4) */
  int32_t input_zero_point, output_zero_point;
  rnnpool_rq y;        /* RNN2 state -> output */
  /* Work area (start of the scratch) */
  uint32_t work_pixel; /* [kp] int16: the input pixel, widened and permuted like W1's columns */
  uint32_t work_gv;    /* [hm][4] int32: (g_a, v_a, g_b, v_b) pre-activations of a step pair */
  uint32_t work_g;     /* [2][hp2] int16: RNN2 forward and backward states */
  uint32_t work_bytes;
} s8_prepared;

/* Only 32-bit integers: the same layout on every ABI the kernel targets, so
 * buffer sizes do not depend on the pointer width. */
typedef char s8_header_fits[sizeof(s8_prepared) <= RNNPOOL_PREPARED_HEADER_BYTES ? 1 : -1];

/* One FastGRNN cell as eval uses it (offsets resolved). */
typedef struct {
  const int16_t* w;     /* [hp][inp] input weights, interleaved */
  const int16_t* u;     /* [hp][hp] recurrent weights, interleaved */
  const rnnpool_rq* wq; /* [hp] input projection -> Q12 */
  const rnnpool_urow* ur; /* [hp] U.h -> Q12, and the biases */
  int32_t h, hp, inp;
  int32_t w_class, u_class; /* RNNPOOL_RQ_*: how W's and U's multipliers are applied */
  rnnpool_unit_consts k;
} s8_cell;

/* Eval's view: the prepared header with its offsets resolved. */
typedef struct {
  const s8_prepared* p;
  s8_cell rnn1, rnn2;
  const int32_t* x1_offset;
} s8_view;

#define WORK(view, work, field, type) ((type*)(void*)((uint8_t*)(work) + (view)->p->field))

/* ---- kernels -------------------------------------------------------------------- */

/* out[j] = sat25(rq(offset[j] + W[j] . x)) for all hp rows (offset may be
 * NULL); two rows per pass, multipliers applied as `cls` allows. */
RNNPOOL_INLINE void project_rows(const int16_t* w, int32_t hp, int32_t inp, const rnnpool_rq* q,
                                 const int32_t* offset, const int16_t* x, int32_t* out, const int cls) {
  int32_t j;
  for (j = 0; j < hp; j += 2) {
    int32_t acc[2];
    acc[0] = offset != NULL ? offset[j] : 0;
    acc[1] = offset != NULL ? offset[j + 1] : 0;
    w = rnnpool_dot2x1(w, x, inp >> 1, acc);
    out[j] = rnnpool_requant_class(acc[0], &q[j], cls);
    out[j + 1] = rnnpool_requant_class(acc[1], &q[j + 1], cls);
  }
}

/* project_rows for inputs of one or two int16 pairs (W1 of a map with
 * k <= 4): the input pairs stay in registers across all rows. */
RNNPOOL_INLINE void project_rows_short(const int16_t* w, int32_t hp, const rnnpool_rq* q, const int32_t* offset,
                                       const int16_t* x, int32_t* out, const int words, const int cls) {
  rnnpool_pair xv[2];
  int32_t j, m;
  for (m = 0; m < words; ++m) xv[m] = rnnpool_load_pair(x + 2 * m);
  for (j = 0; j < hp; j += 2, w += 4 * words) {
    int32_t a0 = offset != NULL ? offset[j] : 0, a1 = offset != NULL ? offset[j + 1] : 0;
    for (m = 0; m < words; ++m) {
      rnnpool_pair w0, w1;
      rnnpool_load_pairs(w + 4 * m, &w0, &w1);
      a0 = rnnpool_mac2(w0, xv[m], a0);
      a1 = rnnpool_mac2(w1, xv[m], a1);
    }
    out[j] = rnnpool_requant_class(a0, &q[j], cls);
    out[j + 1] = rnnpool_requant_class(a1, &q[j + 1], cls);
  }
}

#define PROJECT_SHORT(cls)                                                              \
  switch (inp >> 1) {                                                                   \
    case 1: project_rows_short(w, hp, q, offset, x, out, 1, cls); return;               \
    case 2: project_rows_short(w, hp, q, offset, x, out, 2, cls); return;               \
    default: project_rows(w, hp, inp, q, offset, x, out, cls); return;                  \
  }

static void project(const int16_t* w, int32_t hp, int32_t inp, const rnnpool_rq* q, const int32_t* offset,
                    const int16_t* x, int32_t* out, int32_t cls) {
  switch (cls) {
    case RNNPOOL_RQ_SMALL: PROJECT_SHORT(RNNPOOL_RQ_SMALL)
    case RNNPOOL_RQ_UNCLAMPED: PROJECT_SHORT(RNNPOOL_RQ_UNCLAMPED)
    default: project_rows(w, hp, inp, q, offset, x, out, RNNPOOL_RQ_MIXED); return;
  }
}

/* U[j] . h_a (and . h_b when `two`) for all hp rows, two rows by two states
 * per pass over the weights, stored as acc[2j] = a, acc[2j + 1] = b. */
RNNPOOL_INLINE void recurrent_dots(const int16_t* w, int32_t hp, const int16_t* sa, const int16_t* sb, int32_t* acc,
                                   const int two) {
  int32_t j;
  for (j = 0; j < hp; j += 2, acc += 4) {
    int32_t d[4] = {0, 0, 0, 0};
    if (two) {
      w = rnnpool_dot2x2(w, sa, sb, hp >> 1, d);
      acc[1] = d[2];
      acc[3] = d[3];
    } else {
      w = rnnpool_dot2x1(w, sa, hp >> 1, d);
    }
    acc[0] = d[0];
    acc[2] = d[1];
  }
}

/* gv[4j .. 4j+3] = (g_a, v_a, g_b, v_b): pre + gate bias, pre + update bias
 * with pre = px[j] + sat25(rq(acc)), for state a (and b when `two`). The
 * accumulators are read from acc = gv + 2*hp, the buffer's upper half:
 * unit j writes gv[4j + 3] < gv + 2*hp + 2j' for every unit j' > j still to
 * be read. */
RNNPOOL_INLINE void gate_inputs(const s8_cell* cell, const int32_t* pxa, const int32_t* pxb, int32_t* gv,
                                const int two, const int cls) {
  const rnnpool_urow* row = cell->ur;
  const rnnpool_urow* const end = row + cell->hp;
  const int32_t* acc = gv + 2 * cell->hp;
  for (; row < end; ++row, acc += 2, gv += 4, ++pxa, ++pxb) {
    /* Everything is read before the first store: gv could alias the records
     * as far as the compiler knows, and would force reloads. */
    const rnnpool_rq q = row->q;
    const int32_t bg = row->bias_gate, bu = row->bias_update;
    const int32_t ra = rnnpool_requant_class(acc[0], &q, cls) + *pxa;
    const int32_t rb = two ? rnnpool_requant_class(acc[1], &q, cls) + *pxb : 0;
    gv[0] = ra + bg;
    gv[1] = ra + bu;
    if (two) {
      gv[2] = rb + bg;
      gv[3] = rb + bu;
    }
  }
}

#define GATE_INPUTS(two)                                                                 \
  switch (cell->u_class) {                                                               \
    case RNNPOOL_RQ_SMALL: gate_inputs(cell, pxa, pxb, gv, two, RNNPOOL_RQ_SMALL); break; \
    default: gate_inputs(cell, pxa, pxb, gv, two, RNNPOOL_RQ_MIXED); break;              \
  }

/* Phase 1 of a step: the (gate, update) pre-activations of state a (input
 * pxa) and, if sb is not NULL, of state b (input pxb), into gv. */
static void pre_activations(const s8_cell* cell, const int32_t* pxa, const int32_t* pxb, const int16_t* sa,
                            const int16_t* sb, int32_t* gv) {
  if (sb != NULL) {
    recurrent_dots(cell->u, cell->hp, sa, sb, gv + 2 * cell->hp, 1);
    GATE_INPUTS(1)
  } else {
    recurrent_dots(cell->u, cell->hp, sa, sa, gv + 2 * cell->hp, 0);
    GATE_INPUTS(0)
  }
}

/* h' of one unit (section 6) from its (gate, update) pre-activations g, v
 * and its old state h; the constants come in registers (see update_units). */
RNNPOOL_INLINE int32_t unit_update(int32_t g, int32_t v, int32_t h, const int32_t* sig, const int32_t* tnh,
                                   int32_t a, int32_t b, int32_t a_round, int32_t half14, int32_t h128, int32_t h64,
                                   int32_t c_round, int32_t c_shift, const int gate_hard, const int update_hard,
                                   const int q14) {
  const int32_t z = gate_hard ? rnnpool_hard_sigmoid_q(g) : rnnpool_sigmoid_at(g, sig, h128);
  const int32_t c = update_hard ? rnnpool_hard_tanh_q(v) : rnnpool_tanh_at(v, tnh, h64);
  const int32_t coef = b + ((a_round - a * z) >> 14);
  const int32_t keep = (z * h + half14) >> 14;
  const int32_t add = q14 ? (coef * c + half14) >> 14 : (coef * c + c_round) >> c_shift;
  return rnnpool_sat16(keep + add);
}

/* Phase 2: the unit updates of one state, in place (U.h was formed from the
 * old state in phase 1), two units per iteration (hp is even); the state's
 * (g, v) pairs are every fourth value of gv. q14: the
 * state format is Q14 (the usual case), both roundings are (x + 8192) >> 14. */
RNNPOOL_INLINE void update_units(const s8_cell* cell, const int32_t* gv, int16_t* state, const int gate_hard,
                                 const int update_hard, const int q14) {
  const int32_t* sig = rnnpool_sigmoid_lut_packed + 256;
  const int32_t* tnh = rnnpool_tanh_lut_packed + 256;
  int32_t a = cell->k.a, b = cell->k.b, a_round = cell->k.a_round, half14 = 8192, h128 = 128, h64 = 64;
  const int32_t c_round = cell->k.c_round, c_shift = cell->k.c_shift;
  int16_t* const end = state + cell->hp;
  RNNPOOL_IN_REGISTER(sig);
  RNNPOOL_IN_REGISTER(tnh);
  RNNPOOL_IN_REGISTER(half14);
  RNNPOOL_IN_REGISTER(h128);
  RNNPOOL_IN_REGISTER(h64);
  for (; state < end; state += 2, gv += 8) {
    const int32_t h0 = state[0], h1 = state[1];
    state[0] = (int16_t)unit_update(gv[0], gv[1], h0, sig, tnh, a, b, a_round, half14, h128, h64, c_round, c_shift,
                                    gate_hard, update_hard, q14);
    state[1] = (int16_t)unit_update(gv[4], gv[5], h1, sig, tnh, a, b, a_round, half14, h128, h64, c_round, c_shift,
                                    gate_hard, update_hard, q14);
  }
}

static void update_any(const s8_cell* cell, const int32_t* gv, int16_t* state, int32_t activations) {
  if (cell->k.c_shift == 14) {
    switch (activations) {
      case 0: update_units(cell, gv, state, 0, 0, 1); break;
      case 1: update_units(cell, gv, state, 0, 1, 1); break;
      case 2: update_units(cell, gv, state, 1, 0, 1); break;
      default: update_units(cell, gv, state, 1, 1, 1); break;
    }
  } else {
    switch (activations) {
      case 0: update_units(cell, gv, state, 0, 0, 0); break;
      case 1: update_units(cell, gv, state, 0, 1, 0); break;
      case 2: update_units(cell, gv, state, 1, 0, 0); break;
      default: update_units(cell, gv, state, 1, 1, 0); break;
    }
  }
}

/* One FastGRNN step (section 6) of state a (input pxa) and, if b is not
 * NULL, of state b (input pxb). gv: work of 4*hp values. */
static void step_any(const s8_cell* cell, const int32_t* pxa, const int32_t* pxb, int16_t* sa, int16_t* sb,
                     int32_t* gv, int32_t activations) {
  pre_activations(cell, pxa, pxb, sa, sb, gv);
  update_any(cell, gv, sa, activations);
  if (sb != NULL) update_any(cell, gv + 2, sb, activations);
}

/* The first step of a sequence (h = 0: U.h = 0 and z*h = 0), in place. */
RNNPOOL_INLINE void first(const s8_cell* cell, const int32_t* px, int16_t* state, const int gate_hard,
                          const int update_hard) {
  int32_t j;
  for (j = 0; j < cell->hp; ++j) {
    state[j] = (int16_t)rnnpool_unit_first(px[j], &cell->ur[j], &cell->k, gate_hard, update_hard);
  }
}

static void first_any(const s8_cell* cell, const int32_t* px, int16_t* state, int32_t activations) {
  switch (activations) {
    case 0: first(cell, px, state, 0, 0); break;
    case 1: first(cell, px, state, 0, 1); break;
    case 2: first(cell, px, state, 1, 0); break;
    default: first(cell, px, state, 1, 1); break;
  }
}

/* ---- prepared buffer --------------------------------------------------------------- */

static void resolve_cell(const uint8_t* base, const s8_cell_offsets* o, s8_cell* c) {
  c->w = (const int16_t*)(const void*)(base + o->w);
  c->u = (const int16_t*)(const void*)(base + o->u);
  c->wq = (const rnnpool_rq*)(const void*)(base + o->wq);
  c->ur = (const rnnpool_urow*)(const void*)(base + o->ur);
  c->h = o->h;
  c->hp = o->hp;
  c->inp = o->inp;
  c->w_class = o->w_class;
  c->u_class = o->u_class;
  c->k.a = o->a;
  c->k.b = o->b;
  c->k.a_round = o->a * RNNPOOL_Q14_ONE + 8192;
  c->k.c_round = 1 << (27 - o->q);
  c->k.c_shift = 28 - o->q;
}

static void make_view(const s8_prepared* p, s8_view* v) {
  const uint8_t* base = (const uint8_t*)p;
  v->p = p;
  resolve_cell(base, &p->rnn1, &v->rnn1);
  resolve_cell(base, &p->rnn2, &v->rnn2);
  v->x1_offset = (const int32_t*)(const void*)(base + p->x1_offset);
}

/* ---- driver callbacks ------------------------------------------------------------------ */

/* Widens k int8 channels into int16, permuted like W1's columns. */
static void widen_pixel(const int8_t* x, int32_t k, int16_t* out) {
  int32_t i = 0;
#if RNNPOOL_DSP
  for (; i + 4 <= k; i += 4) {
    uint32_t word, pair[2];
    memcpy(&word, x + i, 4);
    pair[0] = (uint32_t)__sxtb16((int32_t)word);                     /* channels 0, 2 */
    pair[1] = (uint32_t)__sxtb16((int32_t)((word >> 8) | (word << 24))); /* channels 1, 3 */
    memcpy(out + i, pair, 8);
  }
#else
  for (; i + 4 <= k; i += 4) {
    out[i] = x[i];
    out[i + 1] = x[i + 2];
    out[i + 2] = x[i + 1];
    out[i + 3] = x[i + 3];
  }
#endif
  for (; i < k; ++i) out[i] = x[i];
  if (k & 1) out[k] = 0;
}

static void s8_project(const void* prepared, const void* pixel, void* input, void* work) {
  const s8_view* v = (const s8_view*)prepared;
  int32_t* px = (int32_t*)input;
  int16_t* x16 = WORK(v, work, work_pixel, int16_t);
  if (pixel == NULL) { /* padding is x = zp: its projection is exactly 0 */
    memset(px, 0, (size_t)v->rnn1.hp * sizeof(int32_t));
    return;
  }
  widen_pixel((const int8_t*)pixel, v->p->layout.cfg.channels, x16);
  project(v->rnn1.w, v->rnn1.hp, v->rnn1.inp, v->rnn1.wq, v->x1_offset, x16, px, v->rnn1.w_class);
}

static void s8_fresh(const void* prepared, const void* input, void* state, void* work) {
  const s8_view* v = (const s8_view*)prepared;
  (void)work;
  first_any(&v->rnn1, (const int32_t*)input, (int16_t*)state, v->p->activations);
}

static void s8_step(const void* prepared, void* a, const void* ia, void* b, const void* ib, void* work) {
  const s8_view* v = (const s8_view*)prepared;
  step_any(&v->rnn1, (const int32_t*)ia, (const int32_t*)(b != NULL ? ib : ia), (int16_t*)a, (int16_t*)b,
           WORK(v, work, work_gv, int32_t), v->p->activations);
}

static void s8_summarize(const void* prepared, const void* state, void* proj, void* work) {
  const s8_view* v = (const s8_view*)prepared;
  (void)work;
  project(v->rnn2.w, v->rnn2.hp, v->rnn2.inp, v->rnn2.wq, NULL, (const int16_t*)state, (int32_t*)proj,
          v->rnn2.w_class);
}

/* RNN2 forward (state g) and backward (g + hp2) over one sequence, stepped as a
 * pair; the final states requantized to 2*h2 int8 outputs. */
static void s8_pool(const void* prepared, const rnnpool_sequence* seq, void* out_half, void* work) {
  const s8_view* v = (const s8_view*)prepared;
  const s8_cell* c2 = &v->rnn2;
  const int32_t h2 = c2->h, hp2 = c2->hp, n = seq->steps, act = v->p->activations;
  int16_t* g = WORK(v, work, work_g, int16_t);
  int32_t* tmp = WORK(v, work, work_gv, int32_t);
  int8_t* out = (int8_t*)out_half;
  int32_t t, m;
  first_any(c2, (const int32_t*)rnnpool_sequence_at(seq, 0), g, act);
  first_any(c2, (const int32_t*)rnnpool_sequence_at(seq, n - 1), g + hp2, act);
  for (t = 1; t < n; ++t) {
    step_any(c2, (const int32_t*)rnnpool_sequence_at(seq, t), (const int32_t*)rnnpool_sequence_at(seq, n - 1 - t), g,
             g + hp2, tmp, act);
  }
  for (t = 0; t < 2; ++t) {
    for (m = 0; m < h2; ++m) {
      out[t * h2 + m] = (int8_t)rnnpool_sat8(rnnpool_requant(g[t * hp2 + m], &v->p->y) + v->p->output_zero_point);
    }
  }
}

static void s8_ops(const s8_prepared* p, rnnpool_stream_ops* ops) {
  ops->state_bytes = (size_t)p->rnn1.hp * sizeof(int16_t);
  ops->input_bytes = (size_t)p->rnn1.hp * sizeof(int32_t);
  ops->proj_bytes = (size_t)p->rnn2.hp * sizeof(int32_t);
  ops->in_pixel_bytes = (size_t)p->layout.cfg.channels;
  ops->out_pixel_bytes = 4u * (size_t)p->rnn2.h;
  ops->work_bytes = p->work_bytes;
  ops->project = s8_project;
  ops->fresh = s8_fresh;
  ops->step = s8_step;
  ops->summarize = s8_summarize;
  ops->pool = s8_pool;
}

/* ---- sizes (the formulas in rnnpool.h) ------------------------------------------------ */

typedef struct {
  size_t w1, u1, w2, u2, x1_offset, wq1, ur1, wq2, ur2, total;
  size_t work_pixel, work_gv, work_g, work_bytes;
  int ok;
} s8_sizes;

static s8_sizes sizes(const rnnpool_config* cfg) {
  s8_sizes s;
  size_t cursor = 0, work = 0;
  const size_t hp1 = (size_t)rnnpool_even(cfg->hidden1), hp2 = (size_t)rnnpool_even(cfg->hidden2);
  const size_t kp = (size_t)rnnpool_even(cfg->channels), hm = hp1 > hp2 ? hp1 : hp2;
  s.ok = 1;
  (void)rnnpool_take(&cursor, RNNPOOL_PREPARED_HEADER_BYTES, &s.ok);
  s.w1 = rnnpool_take(&cursor, 2 * hp1 * kp, &s.ok);
  s.u1 = rnnpool_take(&cursor, 2 * hp1 * hp1, &s.ok);
  s.w2 = rnnpool_take(&cursor, 2 * hp2 * hp1, &s.ok);
  s.u2 = rnnpool_take(&cursor, 2 * hp2 * hp2, &s.ok);
  s.x1_offset = rnnpool_take(&cursor, 4 * hp1, &s.ok);
  s.wq1 = rnnpool_take(&cursor, hp1 * sizeof(rnnpool_rq), &s.ok);   /* 16 bytes each */
  s.ur1 = rnnpool_take(&cursor, hp1 * sizeof(rnnpool_urow), &s.ok); /* 32 bytes each */
  s.wq2 = rnnpool_take(&cursor, hp2 * sizeof(rnnpool_rq), &s.ok);
  s.ur2 = rnnpool_take(&cursor, hp2 * sizeof(rnnpool_urow), &s.ok);
  s.total = cursor;
#if SIZE_MAX > UINT32_MAX
  if (cursor > UINT32_MAX) s.ok = 0; /* offsets are 32-bit */
#endif
  s.work_pixel = rnnpool_take(&work, 2 * kp, &s.ok);
  s.work_gv = rnnpool_take(&work, 16 * hm, &s.ok);
  s.work_g = rnnpool_take(&work, 4 * hp2, &s.ok);
  s.work_bytes = work;
  return s;
}

/* The driver's view of a config alone (for the scratch size before prepare). */
static int config_ops(const rnnpool_config* cfg, rnnpool_layout* layout, rnnpool_stream_ops* ops) {
  s8_prepared p;
  s8_sizes s;
  if (rnnpool_layout_init(cfg, layout) != RNNPOOL_OK) return 0;
  s = sizes(cfg);
  if (!s.ok) return 0;
  memset(&p, 0, sizeof(p));
  p.layout = *layout;
  p.rnn1.hp = rnnpool_even(cfg->hidden1);
  p.rnn2.h = cfg->hidden2;
  p.rnn2.hp = rnnpool_even(cfg->hidden2);
  p.work_bytes = (uint32_t)s.work_bytes;
  s8_ops(&p, ops);
  return 1;
}

size_t rnnpool_s8_prepared_bytes(const rnnpool_config* cfg) {
  s8_sizes s;
  if (rnnpool_validate_config(cfg, NULL) != RNNPOOL_OK) return 0;
  s = sizes(cfg);
  return s.ok ? s.total : 0;
}

size_t rnnpool_s8_scratch_bytes(const rnnpool_config* cfg) {
  rnnpool_layout layout;
  rnnpool_stream_ops ops;
  if (!config_ops(cfg, &layout, &ops)) return 0;
  return rnnpool_stream_scratch_bytes(&layout, &ops);
}

/* ---- validation and prepare ---------------------------------------------------- */

/* Docs section 2: q = 14 - e, e the smallest e >= 0 with A + T*B <= 32767 * 2^e. */
static int32_t state_frac_bits(int32_t a, int32_t b, int32_t steps) {
  const int64_t bound = (int64_t)a + (int64_t)steps * b;
  int32_t e = 0;
  while (bound > ((int64_t)32767 << e)) ++e;
  return 14 - e;
}

/* (M, n) in the form eval applies (rnnpool_s8_math.h). */
static rnnpool_rq to_rq(int32_t mult, int32_t shift) {
  rnnpool_rq q;
  if (mult == 0) { /* (0 + 1) >> 1 = 0 */
    q.mult = 0;
    q.post = 1;
    q.round_or_lo = 1;
    q.hi = 0;
    return q;
  }
  if (shift == 30) { /* any nonzero input saturates, as with (2^30, 29) */
    mult = 1 << 30;
    shift = 29;
  }
  q.mult = mult;
  q.post = -1 - shift;
  if (q.post > 0) {
    q.round_or_lo = 1 << (q.post - 1);
    q.hi = 0;
  } else {
    q.round_or_lo = (int32_t)-((int64_t)1 << (30 - shift));
    q.hi = (int32_t)(((int64_t)1 << (30 - shift)) - 1);
  }
  return q;
}

/* The rnnpool_rq of row j in an array of records `stride` bytes apart. */
static rnnpool_rq* rq_at(rnnpool_rq* first, size_t stride, int32_t j) {
  return (rnnpool_rq*)(void*)((uint8_t*)first + (size_t)j * stride);
}

/* Scales -> per-channel multipliers scale[j] * factor into the records at
 * out, stride bytes apart (out may be NULL: check only). */
static rnnpool_status channel_multipliers(const float* scale, int32_t count, int32_t h, double factor,
                                          rnnpool_rq* out, size_t stride) {
  int32_t j;
  for (j = 0; j < count; ++j) {
    if (!rnnpool_scale_ok(scale[j])) return RNNPOOL_ERR_BAD_SCALE;
  }
  for (j = 0; j < h; ++j) {
    int32_t mult, shift;
    /* float32 * (float32 or 2^n) is exact in double: the order does not matter. */
    const rnnpool_status st = rnnpool_quantize_multiplier((double)scale[count == 1 ? 0 : j] * factor, &mult, &shift);
    if (st != RNNPOOL_OK) return st;
    if (out != NULL) *rq_at(out, stride, j) = to_rq(mult, shift);
  }
  return RNNPOOL_OK;
}

typedef struct {
  int32_t q1, q2;
  double x1_factor, u1_factor, x2_factor, u2_factor;
} s8_formats;

static s8_formats formats(const rnnpool_config* cfg, const rnnpool_s8_params* params) {
  s8_formats f;
  const int32_t steps = cfg->patch_rows > cfg->patch_cols ? cfg->patch_rows : cfg->patch_cols;
  f.q1 = state_frac_bits(params->scalars[0], params->scalars[1], steps);
  f.q2 = state_frac_bits(params->scalars[2], params->scalars[3], steps);
  f.x1_factor = (double)params->input_scale * 4096.0;
  f.u1_factor = rnnpool_pow2(12 - f.q1);
  f.x2_factor = rnnpool_pow2(12 - f.q1);
  f.u2_factor = rnnpool_pow2(12 - f.q2);
  return f;
}

static int count_ok(int32_t count, int32_t h) { return count == 1 || count == h; }

static int biases_ok(const int32_t* bias, int32_t count) {
  int32_t i;
  for (i = 0; i < count; ++i) {
    if (bias[i] < RNNPOOL_SAT25_MIN || bias[i] > RNNPOOL_SAT25_MAX) return 0;
  }
  return 1;
}

/* Where check_params puts the multipliers (all NULL: check only): x1, x2
 * are rnnpool_rq arrays, u1, u2 the q fields of rnnpool_urow arrays. */
typedef struct {
  rnnpool_rq *x1, *u1, *x2, *u2, *y;
} s8_multiplier_out;

/* Everything except the buffers, in the order documented in rnnpool.h. */
static rnnpool_status check_params(const rnnpool_config* cfg, const rnnpool_s8_params* pr,
                                   const s8_multiplier_out* out) {
  const int32_t h1 = cfg->hidden1, h2 = cfg->hidden2;
  s8_formats f;
  rnnpool_status st;
  int32_t i, mult, shift;
  if (pr == NULL || pr->w1 == NULL || pr->w1_scale == NULL || pr->u1 == NULL || pr->u1_scale == NULL ||
      pr->bias1 == NULL || pr->w2 == NULL || pr->w2_scale == NULL || pr->u2 == NULL || pr->u2_scale == NULL ||
      pr->bias2 == NULL || pr->scalars == NULL) {
    return RNNPOOL_ERR_NULL_POINTER;
  }
  if (!rnnpool_scale_ok(pr->input_scale) || !rnnpool_scale_ok(pr->output_scale)) return RNNPOOL_ERR_BAD_SCALE;
  if (pr->input_zero_point < -128 || pr->input_zero_point > 127 || pr->output_zero_point < -128 ||
      pr->output_zero_point > 127) {
    return RNNPOOL_ERR_BAD_ZERO_POINT;
  }
  if (!count_ok(pr->w1_scale_count, h1) || !count_ok(pr->u1_scale_count, h1) ||
      !count_ok(pr->w2_scale_count, h2) || !count_ok(pr->u2_scale_count, h2)) {
    return RNNPOOL_ERR_BAD_SCALE_COUNT;
  }
  for (i = 0; i < 4; ++i) {
    if (pr->scalars[i] < 0 || pr->scalars[i] > RNNPOOL_Q14_ONE) return RNNPOOL_ERR_BAD_SCALARS;
  }
  if (!biases_ok(pr->bias1, 2 * h1) || !biases_ok(pr->bias2, 2 * h2)) return RNNPOOL_ERR_BAD_BIAS;
  f = formats(cfg, pr);
  /* Section 3, in the table's order. */
  if ((st = channel_multipliers(pr->w1_scale, pr->w1_scale_count, h1, f.x1_factor, out->x1, sizeof(rnnpool_rq))) !=
          RNNPOOL_OK ||
      (st = channel_multipliers(pr->u1_scale, pr->u1_scale_count, h1, f.u1_factor, out->u1, sizeof(rnnpool_urow))) !=
          RNNPOOL_OK ||
      (st = channel_multipliers(pr->w2_scale, pr->w2_scale_count, h2, f.x2_factor, out->x2, sizeof(rnnpool_rq))) !=
          RNNPOOL_OK ||
      (st = channel_multipliers(pr->u2_scale, pr->u2_scale_count, h2, f.u2_factor, out->u2, sizeof(rnnpool_urow))) !=
          RNNPOOL_OK) {
    return st;
  }
  /* One correctly rounded division. */
  st = rnnpool_quantize_multiplier(rnnpool_pow2(-f.q2) / (double)pr->output_scale, &mult, &shift);
  if (st != RNNPOOL_OK) return st;
  if (out->y != NULL) *out->y = to_rq(mult, shift);
  return RNNPOOL_OK;
}

rnnpool_status rnnpool_s8_validate(const rnnpool_config* cfg, const rnnpool_s8_params* params) {
  const s8_multiplier_out none = {NULL, NULL, NULL, NULL, NULL};
  rnnpool_status st = rnnpool_validate_config(cfg, NULL);
  if (st != RNNPOOL_OK) return st;
  if ((st = check_params(cfg, params, &none)) != RNNPOOL_OK) return st;
  if (rnnpool_s8_prepared_bytes(cfg) == 0 || rnnpool_s8_scratch_bytes(cfg) == 0) return RNNPOOL_ERR_SIZE_OVERFLOW;
  return RNNPOOL_OK;
}

/* Column t of W1's storage holds channel perm(t): (0, 2, 1, 3) within each
 * full group of four (the order of SXTB16, see widen_pixel). */
static int32_t w1_column(int32_t t, int32_t k) {
  static const int8_t order[4] = {0, 2, 1, 3};
  const int32_t group = t - t % 4;
  return group + 4 <= k ? group + order[t % 4] : t;
}

/* int8 [rows][cols] -> int16, rows padded to rows_p and columns to cols_p
 * with zeros, interleaved by row pairs (see s8_cell_offsets). */
static void widen(const int8_t* src, int32_t rows, int32_t cols, int32_t rows_p, int32_t cols_p, int permute,
                  int16_t* dst) {
  int32_t r, t;
  for (r = 0; r < rows_p; ++r) {
    for (t = 0; t < cols_p; ++t) {
      const int32_t col = permute ? w1_column(t, cols) : t;
      const size_t at = (((size_t)(r / 2) * (size_t)(cols_p / 2) + (size_t)(t / 2)) * 2 + (size_t)(r % 2)) * 2 +
                        (size_t)(t % 2);
      dst[at] = r < rows && col < cols ? src[(size_t)r * (size_t)cols + (size_t)col] : 0;
    }
  }
}

static void set_cell(s8_cell_offsets* c, size_t w, size_t u, size_t wq, size_t ur, int32_t h, int32_t in, int32_t a,
                     int32_t b, int32_t q) {
  /* sizes() checked that every offset fits 32 bits */
  c->w = (uint32_t)w;
  c->u = (uint32_t)u;
  c->wq = (uint32_t)wq;
  c->ur = (uint32_t)ur;
  c->h = h;
  c->hp = rnnpool_even(h);
  c->inp = rnnpool_even(in);
  c->a = a;
  c->b = b;
  c->q = q;
}

/* Biases [2][h] (gate, update) into the unit records (padding stays zero). */
static void set_biases(const int32_t* src, int32_t h, rnnpool_urow* rows) {
  int32_t j;
  for (j = 0; j < h; ++j) {
    rows[j].bias_gate = src[j];
    rows[j].bias_update = src[h + j];
  }
}

/* |accumulator| bound of row j of an int8 [rows][cols] matrix applied to
 * inputs of magnitude <= x_max, plus |offset[j]| (offset may be NULL). */
static int64_t row_bound(const int8_t* w, int32_t cols, int32_t j, int64_t x_max, const int32_t* offset) {
  int64_t sum = 0;
  int32_t i;
  for (i = 0; i < cols; ++i) {
    const int32_t v = w[(size_t)j * (size_t)cols + (size_t)i];
    sum += v < 0 ? -v : v;
  }
  sum *= x_max;
  if (offset != NULL) sum += offset[j] < 0 ? -(int64_t)offset[j] : offset[j];
  return sum;
}

/* The RNNPOOL_RQ_* class of the multipliers q[0..rows_p) of the int8 matrix
 * w [rows][cols]: form L rows need no clamp when their accumulator bound is
 * at most 2^(30-n) - 1. Zero multipliers (padding rows) fit any class and
 * are rewritten to the form of the class. */
static int32_t classify(rnnpool_rq* first, size_t stride, int32_t rows_p, const int8_t* w, int32_t rows, int32_t cols,
                        int64_t x_max, const int32_t* offset) {
  int32_t j, small = 1, unclamped = 1;
  for (j = 0; j < rows; ++j) {
    const rnnpool_rq* q = rq_at(first, stride, j);
    if (q->mult == 0) continue;
    if (q->post > 0) {
      unclamped = 0;
    } else {
      small = 0;
      if (row_bound(w, cols, j, x_max, offset) > q->hi) unclamped = 0;
    }
  }
  if (small) return RNNPOOL_RQ_SMALL;
  if (!unclamped) return RNNPOOL_RQ_MIXED;
  for (j = 0; j < rows_p; ++j) {
    rnnpool_rq* q = rq_at(first, stride, j);
    if (q->mult == 0) { /* form L with M = 0: SMMULR(v, 0) = 0 */
      q->post = 0;
      q->round_or_lo = INT32_MIN;
      q->hi = INT32_MAX;
    }
  }
  return RNNPOOL_RQ_UNCLAMPED;
}

rnnpool_status rnnpool_s8_prepare(const rnnpool_config* cfg, const rnnpool_s8_params* params, void* prepared,
                                  size_t prepared_bytes) {
  rnnpool_layout layout;
  s8_multiplier_out mult_out;
  s8_prepared p;
  s8_sizes s;
  s8_formats f;
  uint8_t* base = (uint8_t*)prepared;
  rnnpool_rq *wq1, *wq2;
  rnnpool_urow *ur1, *ur2;
  int32_t* offset;
  rnnpool_status st;
  int32_t h1, h2, j, i;

  if ((st = rnnpool_s8_validate(cfg, params)) != RNNPOOL_OK) return st;
  if (prepared == NULL) return RNNPOOL_ERR_NULL_POINTER;
  s = sizes(cfg);
  if (prepared_bytes < s.total) return RNNPOOL_ERR_BUFFER_TOO_SMALL;
  if (!rnnpool_is_aligned(prepared, RNNPOOL_ALIGN)) return RNNPOOL_ERR_MISALIGNED;
  (void)rnnpool_layout_init(cfg, &layout);
  h1 = cfg->hidden1;
  h2 = cfg->hidden2;

  memset(&p, 0, sizeof(p));
  p.layout = layout;
  p.activations = 2 * (cfg->gate_activation == RNNPOOL_GATE_HARD_SIGMOID) +
                  (cfg->update_activation == RNNPOOL_UPDATE_HARD_TANH);
  f = formats(cfg, params);
  set_cell(&p.rnn1, s.w1, s.u1, s.wq1, s.ur1, h1, cfg->channels, params->scalars[0], params->scalars[1], f.q1);
  set_cell(&p.rnn2, s.w2, s.u2, s.wq2, s.ur2, h2, h1, params->scalars[2], params->scalars[3], f.q2);
  p.x1_offset = (uint32_t)s.x1_offset;
  p.input_zero_point = params->input_zero_point;
  p.output_zero_point = params->output_zero_point;
  p.work_pixel = (uint32_t)s.work_pixel;
  p.work_gv = (uint32_t)s.work_gv;
  p.work_g = (uint32_t)s.work_g;
  p.work_bytes = (uint32_t)s.work_bytes;
  p.magic = S8_MAGIC;

  memset(base, 0, s.total);
  widen(params->w1, h1, cfg->channels, p.rnn1.hp, p.rnn1.inp, 1, (int16_t*)(void*)(base + s.w1));
  widen(params->u1, h1, h1, p.rnn1.hp, p.rnn1.hp, 0, (int16_t*)(void*)(base + s.u1));
  widen(params->w2, h2, h1, p.rnn2.hp, p.rnn2.inp, 0, (int16_t*)(void*)(base + s.w2));
  widen(params->u2, h2, h2, p.rnn2.hp, p.rnn2.hp, 0, (int16_t*)(void*)(base + s.u2));
  offset = (int32_t*)(void*)(base + s.x1_offset);
  for (j = 0; j < h1; ++j) {
    int32_t sum = 0;
    for (i = 0; i < cfg->channels; ++i) sum += params->w1[(size_t)j * (size_t)cfg->channels + (size_t)i];
    offset[j] = -params->input_zero_point * sum; /* |.| <= 128 * 128 * 16384 = 2^28 */
  }
  wq1 = (rnnpool_rq*)(void*)(base + s.wq1);
  wq2 = (rnnpool_rq*)(void*)(base + s.wq2);
  ur1 = (rnnpool_urow*)(void*)(base + s.ur1);
  ur2 = (rnnpool_urow*)(void*)(base + s.ur2);
  for (j = 0; j < p.rnn1.hp; ++j) wq1[j] = ur1[j].q = to_rq(0, 0); /* padding rows: zero multiplier */
  for (j = 0; j < p.rnn2.hp; ++j) wq2[j] = ur2[j].q = to_rq(0, 0);
  set_biases(params->bias1, h1, ur1);
  set_biases(params->bias2, h2, ur2);
  mult_out.x1 = wq1;
  mult_out.u1 = &ur1[0].q;
  mult_out.x2 = wq2;
  mult_out.u2 = &ur2[0].q;
  mult_out.y = &p.y;
  (void)check_params(cfg, params, &mult_out); /* validated above: cannot fail now */
  p.rnn1.w_class = classify(wq1, sizeof(rnnpool_rq), p.rnn1.hp, params->w1, h1, cfg->channels, 128, offset);
  p.rnn1.u_class = classify(&ur1[0].q, sizeof(rnnpool_urow), p.rnn1.hp, params->u1, h1, h1, 32768, NULL);
  p.rnn2.w_class = classify(wq2, sizeof(rnnpool_rq), p.rnn2.hp, params->w2, h2, h1, 32768, NULL);
  p.rnn2.u_class = classify(&ur2[0].q, sizeof(rnnpool_urow), p.rnn2.hp, params->u2, h2, h2, 32768, NULL);
  memcpy(base, &p, sizeof(p));
  return RNNPOOL_OK;
}

static rnnpool_status view_of(const void* prepared, s8_view* v) {
  const s8_prepared* p = (const s8_prepared*)prepared;
  if (p == NULL) return RNNPOOL_ERR_NULL_POINTER;
  if (!rnnpool_is_aligned(prepared, RNNPOOL_ALIGN)) return RNNPOOL_ERR_MISALIGNED;
  if (p->magic != S8_MAGIC) return RNNPOOL_ERR_NOT_PREPARED;
  make_view(p, v);
  return RNNPOOL_OK;
}

rnnpool_status rnnpool_s8_eval(const void* prepared, const int8_t* input, int8_t* output, void* scratch,
                               size_t scratch_bytes) {
  rnnpool_stream_ops ops;
  s8_view v;
  const rnnpool_status st = view_of(prepared, &v);
  if (st != RNNPOOL_OK) return st;
  s8_ops(v.p, &ops);
  return rnnpool_stream_run(&v.p->layout, &ops, &v, input, output, scratch, scratch_bytes);
}

rnnpool_status rnnpool_s8_state_formats(const void* prepared, int32_t* q1, int32_t* q2) {
  s8_view v;
  const rnnpool_status st = view_of(prepared, &v);
  if (st != RNNPOOL_OK) return st;
  if (q1 == NULL || q2 == NULL) return RNNPOOL_ERR_NULL_POINTER;
  *q1 = v.p->rnn1.q;
  *q2 = v.p->rnn2.q;
  return RNNPOOL_OK;
}

rnnpool_status rnnpool_s8_multiplier(const void* prepared, rnnpool_multiplier_kind kind, int32_t channel,
                                     int32_t* multiplier, int32_t* shift) {
  const rnnpool_rq* q;
  s8_view v;
  const rnnpool_status st = view_of(prepared, &v);
  if (st != RNNPOOL_OK) return st;
  if (multiplier == NULL || shift == NULL) return RNNPOOL_ERR_NULL_POINTER;
  if (channel < 0) return RNNPOOL_ERR_BAD_DIMS;
  if (kind == RNNPOOL_MULT_Y && channel == 0) {
    q = &v.p->y;
  } else if ((kind == RNNPOOL_MULT_X1 || kind == RNNPOOL_MULT_U1) && channel < v.rnn1.h) {
    q = kind == RNNPOOL_MULT_X1 ? &v.rnn1.wq[channel] : &v.rnn1.ur[channel].q;
  } else if ((kind == RNNPOOL_MULT_X2 || kind == RNNPOOL_MULT_U2) && channel < v.rnn2.h) {
    q = kind == RNNPOOL_MULT_X2 ? &v.rnn2.wq[channel] : &v.rnn2.ur[channel].q;
  } else {
    return RNNPOOL_ERR_BAD_DIMS;
  }
  /* As applied: n = 30 is applied as (2^30, 29), with the same saturated results. */
  *multiplier = q->mult;
  *shift = q->mult == 0 ? 0 : -1 - q->post;
  return RNNPOOL_OK;
}

rnnpool_status rnnpool_s8_requant_forms(const void* prepared, int32_t forms[4]) {
  s8_view v;
  const rnnpool_status st = view_of(prepared, &v);
  if (st != RNNPOOL_OK) return st;
  if (forms == NULL) return RNNPOOL_ERR_NULL_POINTER;
  forms[0] = v.rnn1.w_class;
  forms[1] = v.rnn1.u_class;
  forms[2] = v.rnn2.w_class;
  forms[3] = v.rnn2.u_class;
  return RNNPOOL_OK;
}
