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
#if RNNPOOL_ASM
#include "rnnpool_s8_m4.h"
#endif

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
  int32_t w_class, u_class; /* RNNPOOL_RQ_*: how W's and U's multipliers are applied */
  int32_t fast;             /* Q14 states, U in form S that never saturates: the specialised step */
} s8_cell_offsets;

typedef struct {
  uint32_t magic;
  int32_t activations; /* 2*hard_gate + hard_update */
  rnnpool_layout layout;
  s8_cell_offsets rnn1, rnn2;
  int32_t input_zero_point, output_zero_point;
  rnnpool_rq y; /* RNN2 state -> output */
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
  const int16_t* w;       /* [hp][inp] input weights, interleaved */
  const int16_t* u;       /* [hp][hp] recurrent weights, interleaved */
  const rnnpool_rq* wq;   /* [hp] input projection -> Q12 */
  const rnnpool_urow* ur; /* [hp] U.h -> Q12, and the biases */
  int32_t h, hp, inp;
  int32_t w_class, u_class; /* RNNPOOL_RQ_*: how W's and U's multipliers are applied */
  int32_t fast;             /* see s8_cell_offsets */
  rnnpool_unit_consts k;
#if RNNPOOL_ASM
  void (*pair_m4)(rnnpool_step_ctx*);   /* the assembly pair step that covers the cell, or NULL */
  void (*single_m4)(rnnpool_step_ctx*); /* RNN1's one-state step, where pair_m4 is set */
  void (*apart_m4)(rnnpool_step_ctx*);  /* RNN1's pairs on two pixels, where pair_m4 is set */
  rnnpool_step_consts m4;               /* its constants */
#endif
} s8_cell;

/* Eval's view: the prepared header with its offsets resolved. */
typedef struct {
  const s8_prepared* p;
  s8_cell rnn1, rnn2;
} s8_view;

#define WORK(view, work, field, type) ((type*)(void*)((uint8_t*)(work) + (view)->p->field))

/* ---- kernels -------------------------------------------------------------------- */

/* out[j] = sat25(rq(W[j] . x)) for all hp rows; two rows per pass,
 * multipliers applied as `cls` allows. With `bias`
 * (RNN1's pixel projection) the output is the pair (out + gate bias, out +
 * update bias) per unit: the pre-activations of a first step, and the input
 * half of every later one (the biases are added once per pixel, not per step). */
RNNPOOL_INLINE void store_projection(int32_t v, const rnnpool_urow* bias, int32_t* out, int32_t j) {
  if (bias != NULL) {
    out[2 * j] = v + bias[j].bias_gate;
    out[2 * j + 1] = v + bias[j].bias_update;
  } else {
    out[j] = v;
  }
}

RNNPOOL_INLINE void project_rows(const int16_t* w, int32_t hp, int32_t inp, const rnnpool_rq* q,
                                 const rnnpool_urow* bias, const int16_t* x, int32_t* out, const int cls) {
  int32_t j;
  for (j = 0; j < hp; j += 2) {
    int32_t acc[2] = {0, 0};
    w = rnnpool_dot2x1(w, x, inp >> 1, acc);
    store_projection(rnnpool_requant_class(acc[0], &q[j], cls), bias, out, j);
    store_projection(rnnpool_requant_class(acc[1], &q[j + 1], cls), bias, out, j + 1);
  }
}

/* project_rows for inputs of one or two int16 pairs (W1 of a map with
 * k <= 4): the input pairs stay in registers across all rows. */
RNNPOOL_INLINE void project_rows_short(const int16_t* w, int32_t hp, const rnnpool_rq* q, const rnnpool_urow* bias,
                                       const int16_t* x, int32_t* out, const int words, const int cls) {
  rnnpool_pair xv[2];
  int32_t j, m;
  for (m = 0; m < words; ++m) xv[m] = rnnpool_load_pair(x + 2 * m);
  for (j = 0; j < hp; j += 2, w += 4 * words) {
    int32_t a0 = 0, a1 = 0;
    for (m = 0; m < words; ++m) {
      rnnpool_pair w0, w1;
      rnnpool_load_pairs(w + 4 * m, &w0, &w1);
      a0 = rnnpool_mac2(w0, xv[m], a0);
      a1 = rnnpool_mac2(w1, xv[m], a1);
    }
    store_projection(rnnpool_requant_class(a0, &q[j], cls), bias, out, j);
    store_projection(rnnpool_requant_class(a1, &q[j + 1], cls), bias, out, j + 1);
  }
}

#define PROJECT_SHORT(cls)                                \
  switch (inp >> 1) {                                     \
    case 1:                                               \
      project_rows_short(w, hp, q, bias, x, out, 1, cls); \
      return;                                             \
    case 2:                                               \
      project_rows_short(w, hp, q, bias, x, out, 2, cls); \
      return;                                             \
    default:                                              \
      project_rows(w, hp, inp, q, bias, x, out, cls);     \
      return;                                             \
  }

static void project(const int16_t* w, int32_t hp, int32_t inp, const rnnpool_rq* q, const rnnpool_urow* bias,
                    const int16_t* x, int32_t* out, int32_t cls) {
  switch (cls) {
    case RNNPOOL_RQ_SMALL:
      PROJECT_SHORT(RNNPOOL_RQ_SMALL)
    case RNNPOOL_RQ_UNCLAMPED:
      PROJECT_SHORT(RNNPOOL_RQ_UNCLAMPED)
    default:
      project_rows(w, hp, inp, q, bias, x, out, RNNPOOL_RQ_MIXED);
      return;
  }
}

/* Phase 1 of a step of state a (input ia) and, if `two`, of state b (input
 * ib): per pair of U rows the dot products with the states (one weight load
 * feeds both), requantized and added to the input halves of the
 * pre-activations, stored as gv[4u .. 4u+3] = (g_a, v_a, g_b, v_b). Inputs are
 * `biased` pairs (RNN1's pixel projections, the biases already added) or one
 * projected value per unit (RNN2's summaries: the biases come with the row's
 * multiplier). `fast`: every U row in form S and unable to saturate (checked
 * when prepared): no clamp, no saturation. */
RNNPOOL_INLINE void pre_activations(const s8_cell* cell, const int16_t* sa, const int32_t* ia, const int16_t* sb,
                                    const int32_t* ib, int32_t* gv, const int two, const int biased, const int shared,
                                    const int fast, const int fixed_words) {
  const int16_t* w = cell->u;
  const rnnpool_urow* row = cell->ur;
  const rnnpool_urow* const end = row + cell->hp;
  const int32_t words = fixed_words ? fixed_words : cell->hp >> 1; /* fixed: the unrolled kernels */
  for (; row < end; row += 2, gv += 8, ia += biased ? 4 : 2, ib += biased ? 4 : 2) {
    int32_t acc[4];
    int32_t t;
    if (two) {
      w = rnnpool_dot2x2_zero(w, sa, sb, words, acc);
    } else {
      acc[0] = acc[1] = 0;
      w = rnnpool_dot2x1(w, sa, words, acc);
    }
    for (t = 0; t < 2; ++t) { /* acc: row j.a, row j+1.a, row j.b, row j+1.b */
      const rnnpool_rq q = row[t].q;
      const int32_t ra = fast ? rnnpool_rq_small(acc[t], &q) : rnnpool_requant_sat25(acc[t], &q);
      const int32_t rb = two ? (fast ? rnnpool_rq_small(acc[2 + t], &q) : rnnpool_requant_sat25(acc[2 + t], &q)) : 0;
      int32_t ga, ua, gb, ub; /* input halves of (gate, update) for a and b */
      if (biased) {
        ga = ia[2 * t];
        ua = ia[2 * t + 1];
        gb = shared ? ga : ib[2 * t];
        ub = shared ? ua : ib[2 * t + 1];
      } else {
        const int32_t bg = row[t].bias_gate, bu = row[t].bias_update;
        ga = ia[t] + bg;
        ua = ia[t] + bu;
        gb = ib[t] + bg;
        ub = ib[t] + bu;
      }
      gv[4 * t] = ra + ga;
      gv[4 * t + 1] = ra + ua;
      if (two) {
        gv[4 * t + 2] = rb + gb;
        gv[4 * t + 3] = rb + ub;
      }
    }
  }
}

/* h' of one unit (section 6) from its (gate, update) pre-activations g, v
 * and its old state h; the constants come in registers (see update_units). */
RNNPOOL_INLINE int32_t unit_update(int32_t g, int32_t v, int32_t h, const int32_t* sig, const int32_t* tnh, int32_t a,
                                   int32_t b, int32_t a_round, int32_t half14, int32_t h128, int32_t h64,
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
 * (g, v) pairs are every fourth value of gv. q14: the state format is Q14
 * (the usual case), both roundings are (x + 8192) >> 14. */
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

/* Phase 2 of one state, specialised on the activations and the state format
 * (one copy of each loop, shared by every kind of step). */
static void update_any(const s8_cell* cell, const int32_t* gv, int16_t* state, int32_t activations, int q14) {
#define RNNPOOL_UPDATE(g, u)                \
  if (q14) {                                \
    update_units(cell, gv, state, g, u, 1); \
  } else {                                  \
    update_units(cell, gv, state, g, u, 0); \
  }
  switch (activations) {
    case 0:
      RNNPOOL_UPDATE(0, 0) break;
    case 1:
      RNNPOOL_UPDATE(0, 1) break;
    case 2:
      RNNPOOL_UPDATE(1, 0) break;
    default:
      RNNPOOL_UPDATE(1, 1) break;
  }
#undef RNNPOOL_UPDATE
}

/* One FastGRNN step (section 6) of state a on input ia and, unless sb is
 * NULL, of state b on ib; gv: work of 4*hp values. Phase 1 is specialised
 * on `fast` (and, for the cached driver's same-pixel pairs, on h = 16, 8). */
RNNPOOL_INLINE void step_cell(const s8_cell* cell, int16_t* sa, const int32_t* ia, int16_t* sb, const int32_t* ib,
                              int32_t* gv, int32_t activations, const int biased, const int fast) {
  if (sb == NULL) {
    pre_activations(cell, sa, ia, sa, ia, gv, 0, biased, 1, fast, 0);
    update_any(cell, gv, sa, activations, fast);
    return;
  }
  if (biased && ia == ib) {        /* cached mode: two segments through the same pixel, the hottest loop */
    switch (fast ? cell->hp : 0) { /* the unrolled dot kernels' sizes (h = 16, 8) get their own loops */
      case 16:
        pre_activations(cell, sa, ia, sb, ia, gv, 1, 1, 1, fast, 8);
        break;
      case 8:
        pre_activations(cell, sa, ia, sb, ia, gv, 1, 1, 1, fast, 4);
        break;
      default:
        pre_activations(cell, sa, ia, sb, ia, gv, 1, 1, 1, fast, 0);
        break;
    }
  } else {
    pre_activations(cell, sa, ia, sb, ib, gv, 1, biased, 0, fast, 0);
  }
  update_any(cell, gv, sa, activations, fast);
  update_any(cell, gv + 2, sb, activations, fast);
}

/* The first step of a sequence (h = 0: U.h = 0 and z*h = 0), in place, from
 * biased pairs or (RNN2) raw inputs. */
RNNPOOL_INLINE void first_cell(const s8_cell* cell, const int32_t* in, int16_t* state, const int biased,
                               const int gate_hard, const int update_hard) {
  const rnnpool_urow* row = cell->ur;
  const int32_t* sig = rnnpool_sigmoid_lut_packed + 256;
  const int32_t* tnh = rnnpool_tanh_lut_packed + 256;
  int32_t a = cell->k.a, b = cell->k.b, a_round = cell->k.a_round, h128 = 128, h64 = 64;
  const int32_t c_round = cell->k.c_round, c_shift = cell->k.c_shift;
  int16_t* const end = state + cell->hp;
  RNNPOOL_IN_REGISTER(sig);
  RNNPOOL_IN_REGISTER(tnh);
  RNNPOOL_IN_REGISTER(h128);
  RNNPOOL_IN_REGISTER(h64);
  for (; state < end; ++state, ++row, in += biased ? 2 : 1) {
    const int32_t g = biased ? in[0] : in[0] + row->bias_gate;
    const int32_t v = biased ? in[1] : in[0] + row->bias_update;
    const int32_t z = gate_hard ? rnnpool_hard_sigmoid_q(g) : rnnpool_sigmoid_at(g, sig, h128);
    const int32_t c = update_hard ? rnnpool_hard_tanh_q(v) : rnnpool_tanh_at(v, tnh, h64);
    const int32_t coef = b + ((a_round - a * z) >> 14);
    *state = (int16_t)rnnpool_sat16((coef * c + c_round) >> c_shift);
  }
}

/* First steps specialised on the activations (2*hard_gate + hard_update). */
#define RNNPOOL_ACTIVATION_CASES(call) \
  switch (activations) {               \
    case 0:                            \
      call(0, 0);                      \
      break;                           \
    case 1:                            \
      call(0, 1);                      \
      break;                           \
    case 2:                            \
      call(1, 0);                      \
      break;                           \
    default:                           \
      call(1, 1);                      \
      break;                           \
  }

static void rnn1_step(const s8_cell* cell, int16_t* sa, const int32_t* ia, int16_t* sb, const int32_t* ib, int32_t* gv,
                      int32_t activations) {
  if (cell->fast) {
    step_cell(cell, sa, ia, sb, ib, gv, activations, 1, 1);
  } else {
    step_cell(cell, sa, ia, sb, ib, gv, activations, 1, 0);
  }
}

static void rnn2_step(const s8_cell* cell, int16_t* sa, const int32_t* ia, int16_t* sb, const int32_t* ib, int32_t* gv,
                      int32_t activations) {
  if (cell->fast) {
    step_cell(cell, sa, ia, sb, ib, gv, activations, 0, 1);
  } else {
    step_cell(cell, sa, ia, sb, ib, gv, activations, 0, 0);
  }
}

static void first_any(const s8_cell* cell, const int32_t* in, int16_t* state, int biased, int32_t activations) {
#define RNNPOOL_FIRST(g, u)               \
  if (biased) {                           \
    first_cell(cell, in, state, 1, g, u); \
  } else {                                \
    first_cell(cell, in, state, 0, g, u); \
  }
  RNNPOOL_ACTIVATION_CASES(RNNPOOL_FIRST)
#undef RNNPOOL_FIRST
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
  c->fast = o->fast;
  c->k.a = o->a;
  c->k.b = o->b;
  c->k.a_round = o->a * RNNPOOL_Q14_ONE + 8192;
  c->k.c_round = 1 << (27 - o->q);
  c->k.c_shift = 28 - o->q;
}

#if RNNPOOL_ASM
/* The assembly steps (rnnpool_s8_m4.h) cover fast cells with the smooth
 * activations and h = 16 or 8: RNN1 (`shared`: same-pixel pairs, one state,
 * pairs on two pixels) or RNN2. */
static void resolve_m4(s8_cell* c, int32_t activations, int shared) {
  c->pair_m4 = c->single_m4 = c->apart_m4 = NULL;
  if (!c->fast || activations != 0 || (c->hp != 16 && c->hp != 8)) return;
  if (shared) {
    c->pair_m4 = c->hp == 16 ? rnnpool_step_pair_shared_16 : rnnpool_step_pair_shared_8;
    c->single_m4 = c->hp == 16 ? rnnpool_step_single_16 : rnnpool_step_single_8;
    c->apart_m4 = c->hp == 16 ? rnnpool_step_pair_apart_16 : rnnpool_step_pair_apart_8;
  } else {
    c->pair_m4 = c->hp == 16 ? rnnpool_step_pair_raw_16 : rnnpool_step_pair_raw_8;
  }
  c->m4.sig = rnnpool_sigmoid_lut_packed + 256;
  c->m4.tnh = rnnpool_tanh_lut_packed + 256;
  c->m4.k128 = 128;
  c->m4.k64 = 64;
  c->m4.a = c->k.a;
  c->m4.a_round = c->k.a_round;
  c->m4.b = c->k.b;
  c->m4.k8192 = 8192;
  c->m4.x = NULL; /* the asm's */
  c->m4.u = c->u;
  c->m4.ur = c->ur;
}
#endif

static void make_view(const s8_prepared* p, s8_view* v) {
  const uint8_t* base = (const uint8_t*)p;
  v->p = p;
  resolve_cell(base, &p->rnn1, &v->rnn1);
  resolve_cell(base, &p->rnn2, &v->rnn2);
#if RNNPOOL_ASM
  resolve_m4(&v->rnn1, p->activations, 1);
  resolve_m4(&v->rnn2, p->activations, 0);
#endif
}

/* ---- driver callbacks ------------------------------------------------------------------ */

#if RNNPOOL_DSP
/* Four int8 channels minus the zero point (zp2: zp in both halves) as the
 * int16 pairs (0, 2) and (1, 3). */
RNNPOOL_INLINE void widen_word(const int8_t* x, uint32_t zp2, uint32_t pair[2]) {
  uint32_t word;
  memcpy(&word, x, 4);
  pair[0] = __ssub16(__sxtb16((int32_t)word), zp2);
  pair[1] = __ssub16(__sxtb16((int32_t)((word >> 8) | (word << 24))), zp2);
}
#endif

/* x - zp for k int8 channels, in int16 (|x - zp| <= 255, docs section 4),
 * permuted like W1's columns; the padding channel of an odd k is 0. */
static void widen_pixel(const int8_t* x, int32_t k, int32_t zp, int16_t* out) {
  int32_t i = 0;
#if RNNPOOL_DSP
  const uint32_t zp2 = ((uint32_t)zp & 0xFFFFu) | ((uint32_t)zp << 16);
  for (; i + 4 <= k; i += 4) {
    uint32_t pair[2];
    widen_word(x + i, zp2, pair);
    memcpy(out + i, pair, 8);
  }
#else
  for (; i + 4 <= k; i += 4) {
    out[i] = (int16_t)(x[i] - zp);
    out[i + 1] = (int16_t)(x[i + 2] - zp);
    out[i + 2] = (int16_t)(x[i + 1] - zp);
    out[i + 3] = (int16_t)(x[i + 3] - zp);
  }
#endif
  for (; i < k; ++i) out[i] = (int16_t)(x[i] - zp);
  if (k & 1) out[k] = 0;
}

/* RNN1's input: per unit the pair (W1 projection + gate bias, + update bias). */
static void s8_project(const void* prepared, const void* pixel, void* input, void* work) {
  const s8_view* v = (const s8_view*)prepared;
  const s8_cell* c1 = &v->rnn1;
  int32_t* in = (int32_t*)input;
  int16_t* x16 = WORK(v, work, work_pixel, int16_t);
  if (pixel == NULL) { /* padding is x = zp: its projection is exactly 0, leaving the biases */
    int32_t j;
    for (j = 0; j < c1->hp; ++j) store_projection(0, c1->ur, in, j);
    return;
  }
#if RNNPOOL_ASM
  if (c1->inp <= 4 && c1->w_class != RNNPOOL_RQ_MIXED) { /* k <= 4: rnnpool_s8_m4.h, the pixel in registers */
    const int32_t k = v->p->layout.cfg.channels, zp = v->p->input_zero_point;
    uint32_t pair[2] = {0, 0};
    if (k == 4) {
      widen_word((const int8_t*)pixel, ((uint32_t)zp & 0xFFFFu) | ((uint32_t)zp << 16), pair);
    } else {
      widen_pixel((const int8_t*)pixel, k, zp, x16);
      memcpy(pair, x16, 2 * (size_t)c1->inp);
    }
    rnnpool_project_biased_m4(c1->w, c1->wq, c1->ur, pair[0], pair[1], in, c1->hp, c1->inp >> 1,
                              c1->w_class == RNNPOOL_RQ_UNCLAMPED);
    return;
  }
#endif
  widen_pixel((const int8_t*)pixel, v->p->layout.cfg.channels, v->p->input_zero_point, x16);
  project(c1->w, c1->hp, c1->inp, c1->wq, c1->ur, x16, in, c1->w_class);
}

static void s8_fresh(const void* prepared, const void* input, void* state, void* work) {
  const s8_view* v = (const s8_view*)prepared;
  (void)work;
#if RNNPOOL_ASM
  if (v->rnn1.pair_m4 != NULL) { /* the same cells: Q14, sigmoid/tanh, h = 16 or 8 */
    rnnpool_step_ctx ctx;
    ctx.k = v->rnn1.m4;
    ctx.ia = (const int32_t*)input;
    ctx.sa = (int16_t*)state;
    ctx.x_end = ctx.sa + v->rnn1.hp;
    rnnpool_first_biased_m4(&ctx);
    return;
  }
#endif
  first_any(&v->rnn1, (const int32_t*)input, (int16_t*)state, 1, v->p->activations);
}

static void s8_step(const void* prepared, void* a, const void* ia, void* b, const void* ib, void* work) {
  const s8_view* v = (const s8_view*)prepared;
#if RNNPOOL_ASM
  if (v->rnn1.pair_m4 != NULL) {
    rnnpool_step_ctx ctx;
    ctx.k = v->rnn1.m4;
    ctx.base = WORK(v, work, work_gv, int16_t); /* 8*hp bytes of the 16*hm */
    ctx.ia = (const int32_t*)ia;
    ctx.ib = (const int32_t*)ib;
    ctx.sa = (int16_t*)a;
    ctx.sb = (int16_t*)b;
    (b == NULL ? v->rnn1.single_m4 : ia == ib ? v->rnn1.pair_m4 : v->rnn1.apart_m4)(&ctx);
    return;
  }
#endif
  rnn1_step(&v->rnn1, (int16_t*)a, (const int32_t*)ia, (int16_t*)b, (const int32_t*)ib, WORK(v, work, work_gv, int32_t),
            v->p->activations);
}

static void s8_summarize(const void* prepared, const void* state, void* proj, void* work) {
  const s8_view* v = (const s8_view*)prepared;
  const s8_cell* c2 = &v->rnn2;
  (void)work;
#if RNNPOOL_ASM
  if ((c2->inp == 16 || c2->inp == 8) && c2->w_class != RNNPOOL_RQ_MIXED) { /* rnnpool_s8_m4.h */
    rnnpool_summarize_m4(c2->w, c2->wq, (const int16_t*)state, (int32_t*)proj, c2->hp, c2->inp >> 1,
                         c2->w_class == RNNPOOL_RQ_UNCLAMPED);
    return;
  }
#endif
  project(c2->w, c2->hp, c2->inp, c2->wq, NULL, (const int16_t*)state, (int32_t*)proj, c2->w_class);
}

/* The final RNN2 states (forward at g, backward at g + hp2) as 2*h2 int8
 * outputs; the multiplier's form is chosen once, not per value. */
static void requant_output(const int16_t* g, int32_t hp2, int32_t h2, const rnnpool_rq* y, int32_t zp, int8_t* out) {
  int32_t t, m;
  for (t = 0; t < 2; ++t, g += hp2, out += h2) {
    if (y->post > 0) {
      for (m = 0; m < h2; ++m) out[m] = (int8_t)rnnpool_sat8(rnnpool_rq_small(g[m], y) + zp);
    } else {
      for (m = 0; m < h2; ++m) out[m] = (int8_t)rnnpool_sat8(rnnpool_requant(g[m], y) + zp);
    }
  }
}

/* RNN2 forward (state g) and backward (g + hp2) over one sequence, stepped as a
 * pair; the final states requantized to 2*h2 int8 outputs. */
static void s8_pool(const void* prepared, const rnnpool_sequence* seq, void* out_half, void* work) {
  const s8_view* v = (const s8_view*)prepared;
  const s8_cell* c2 = &v->rnn2;
  const int32_t h2 = c2->h, hp2 = c2->hp, n = seq->steps, act = v->p->activations;
  int16_t* g = WORK(v, work, work_g, int16_t);
  int32_t* gv = WORK(v, work, work_gv, int32_t);
  int32_t t;
#if RNNPOOL_ASM
  if (c2->pair_m4 != NULL) {
    rnnpool_step_ctx ctx;
    ctx.k = c2->m4;
    ctx.ia = (const int32_t*)rnnpool_sequence_at(seq, 0);
    ctx.sa = g;
    ctx.x_end = g + hp2;
    rnnpool_first_raw_m4(&ctx);
    ctx.ia = (const int32_t*)rnnpool_sequence_at(seq, n - 1);
    ctx.sa = g + hp2;
    ctx.x_end = g + 2 * hp2;
    rnnpool_first_raw_m4(&ctx);
    ctx.base = (int16_t*)(void*)gv; /* 8*hp2 bytes of the 16*hm */
    ctx.sa = g;
    ctx.sb = g + hp2;
    for (t = 1; t < n; ++t) {
      ctx.ia = (const int32_t*)rnnpool_sequence_at(seq, t);
      ctx.ib = (const int32_t*)rnnpool_sequence_at(seq, n - 1 - t);
      c2->pair_m4(&ctx);
    }
    requant_output(g, hp2, h2, &v->p->y, v->p->output_zero_point, (int8_t*)out_half);
    return;
  }
#endif
  first_any(c2, (const int32_t*)rnnpool_sequence_at(seq, 0), g, 0, act);
  first_any(c2, (const int32_t*)rnnpool_sequence_at(seq, n - 1), g + hp2, 0, act);
  for (t = 1; t < n; ++t) {
    rnn2_step(c2, g, (const int32_t*)rnnpool_sequence_at(seq, t), g + hp2,
              (const int32_t*)rnnpool_sequence_at(seq, n - 1 - t), gv, act);
  }
  requant_output(g, hp2, h2, &v->p->y, v->p->output_zero_point, (int8_t*)out_half);
}

static void s8_ops(const s8_prepared* p, rnnpool_stream_ops* ops) {
  ops->state_bytes = (size_t)p->rnn1.hp * sizeof(int16_t);
  ops->input_bytes = 2u * (size_t)p->rnn1.hp * sizeof(int32_t);
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
  size_t w1, u1, w2, u2, wq1, ur1, wq2, ur2, total;
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
static rnnpool_status channel_multipliers(const float* scale, int32_t count, int32_t h, double factor, rnnpool_rq* out,
                                          size_t stride) {
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
  if (!count_ok(pr->w1_scale_count, h1) || !count_ok(pr->u1_scale_count, h1) || !count_ok(pr->w2_scale_count, h2) ||
      !count_ok(pr->u2_scale_count, h2)) {
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
      const size_t at =
          (((size_t)(r / 2) * (size_t)(cols_p / 2) + (size_t)(t / 2)) * 2 + (size_t)(r % 2)) * 2 + (size_t)(t % 2);
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

/* Form S applied to v exactly (64-bit): (floor(v*M / 2^32) + round) >> post. */
static int64_t rq_small_exact(int64_t v, const rnnpool_rq* q) {
  return (((v * q->mult) >> 32) + q->round_or_lo) >> q->post; /* as rnnpool_smmla's portable form */
}

/* Whether a form-S matrix (class RNNPOOL_RQ_SMALL) applied to inputs of
 * magnitude <= x_max can reach the 25-bit saturation: rq is monotonic, so
 * the accumulator bounds +-sum|w|*x_max of each row decide. */
static int never_saturates(const rnnpool_rq* first, size_t stride, const int8_t* w, int32_t rows, int32_t cols,
                           int64_t x_max) {
  int32_t j;
  for (j = 0; j < rows; ++j) {
    const rnnpool_rq* q = rq_at((rnnpool_rq*)(uintptr_t)first, stride, j);
    const int64_t bound = row_bound(w, cols, j, x_max, NULL);
    if (rq_small_exact(bound, q) > RNNPOOL_SAT25_MAX || rq_small_exact(-bound, q) < RNNPOOL_SAT25_MIN) return 0;
  }
  return 1;
}

/* The specialised step applies to the cell: Q14 states and U rows that form S
 * serves without the saturation. */
static int32_t fast_cell(const s8_cell_offsets* c, const rnnpool_rq* first, const int8_t* u) {
  return c->q == 14 && c->u_class == RNNPOOL_RQ_SMALL &&
         never_saturates(first, sizeof(rnnpool_urow), u, c->h, c->h, 32768);
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
  rnnpool_status st;
  int32_t h1, h2, j;

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
  p.activations =
      2 * (cfg->gate_activation == RNNPOOL_GATE_HARD_SIGMOID) + (cfg->update_activation == RNNPOOL_UPDATE_HARD_TANH);
  f = formats(cfg, params);
  set_cell(&p.rnn1, s.w1, s.u1, s.wq1, s.ur1, h1, cfg->channels, params->scalars[0], params->scalars[1], f.q1);
  set_cell(&p.rnn2, s.w2, s.u2, s.wq2, s.ur2, h2, h1, params->scalars[2], params->scalars[3], f.q2);
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
  p.rnn1.w_class = classify(wq1, sizeof(rnnpool_rq), p.rnn1.hp, params->w1, h1, cfg->channels, 255, NULL);
  p.rnn1.u_class = classify(&ur1[0].q, sizeof(rnnpool_urow), p.rnn1.hp, params->u1, h1, h1, 32768, NULL);
  p.rnn2.w_class = classify(wq2, sizeof(rnnpool_rq), p.rnn2.hp, params->w2, h2, h1, 32768, NULL);
  p.rnn2.u_class = classify(&ur2[0].q, sizeof(rnnpool_urow), p.rnn2.hp, params->u2, h2, h2, 32768, NULL);
  p.rnn1.fast = fast_cell(&p.rnn1, &ur1[0].q, params->u1);
  p.rnn2.fast = fast_cell(&p.rnn2, &ur2[0].q, params->u2);
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

rnnpool_status rnnpool_s8_inplace_lag(const rnnpool_config* cfg, int64_t* lag_bytes) {
  rnnpool_layout layout;
  const rnnpool_status st = rnnpool_layout_init(cfg, &layout);
  if (st != RNNPOOL_OK) return st;
  return rnnpool_stream_inplace_lag(&layout, (size_t)cfg->channels, 4u * (size_t)cfg->hidden2, lag_bytes);
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
