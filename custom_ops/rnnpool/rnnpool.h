/* RNNPool kernel: portable C99, no heap, no TensorFlow dependency.
 *
 * Pools a whole NHWC feature map with the RNNPool operator (Saha et al.,
 * NeurIPS 2020). The int8 variant follows docs/quantization.md bit for bit
 * (on every platform, with or without the Cortex-M4 DSP path); the float32
 * variant evaluates the same structure in float32 (within 1e-5 of
 * rnnpool_tflm.reference.rnnpool_float for weights of moderate size).
 * docs/kernel.md describes the API, the buffers and how the work is organised.
 *
 * Use, CMSIS-NN style (the float32 trio rnnpool_f32_* works the same way):
 *   1. fill an rnnpool_config and an rnnpool_s8_params;
 *      rnnpool_s8_validate(cfg, params) says whether they are usable;
 *   2. prepare once: P = rnnpool_s8_prepared_bytes(cfg) bytes, persistent,
 *      8-byte aligned, passed to rnnpool_s8_prepare(cfg, params, buf, P).
 *      Prepare validates, computes the requantization multipliers and state
 *      formats, and copies the weights widened to int16; the params arrays
 *      are not read after it returns. The prepared buffer holds no pointers,
 *      so it may be copied or moved;
 *   3. evaluate as often as needed: rnnpool_s8_eval(prepared, input, output,
 *      scratch, S) with S = rnnpool_s8_scratch_bytes(cfg) bytes of 8-byte
 *      aligned scratch. Eval allocates nothing, only reads `prepared` (one
 *      prepared buffer may serve concurrent evals with separate scratch) and
 *      leaves nothing in the scratch that a later call needs.
 * A size function returns 0 when the config is invalid (see the validator
 * for the reason); every other function returns an rnnpool_status.
 *
 * Buffer sizes (bytes). A(v) rounds v up to a multiple of 8; hp1, hp2, kp
 * are h1, h2, k rounded up to even; hm = max(hp1, hp2); Ac = ceil(c/sc) and
 * Ar = ceil(r/sr) (segments alive at once); Wo = output columns and
 * Wu = (Wo - 1)*sc + c (input columns the patches reach, padding included).
 *
 * The scratch is a work area, then the driver's regions (rnn1_mode):
 *   int8 work     = A(2*kp) + A(16*hm) + A(4*hp2);   S = 2*hp1, I = 8*hp1, P = 4*hp2
 *   float work    = A(8*hm) + A(8*h2);               S = 4*h1,  I = 4*h1,  P = 4*h2
 *   cached        = work + A(I) + A(S*Ac) + A(S*Ar*Wu) + A(P*r*Wo) + A(P*c)
 *   recompute     = work + A(2*S) + A(2*I) + A(P*max(r, c)) + A(O/2)
 * (S: one RNN1 state, I: one projected pixel, P: one projected summary,
 * O: one output pixel, 4*h2 elements.)
 *
 * In cached mode the dominant terms are the column-segment states (Ar*Wu
 * states) and the ring of W2-projected row summaries (r*Wo of them):
 * O(W*h1 + r*Wo*h2), independent of the number of input rows and of the
 * batch. Recompute mode is independent of the map: about 1 KB for h = 16.
 *
 *   int8 prepared  = RNNPOOL_PREPARED_HEADER_BYTES + A(2*hp1*kp) + A(2*hp1*hp1)
 *                  + A(2*hp2*hp1) + A(2*hp2*hp2) + 48*hp1 + 48*hp2
 *   float prepared = RNNPOOL_PREPARED_HEADER_BYTES + A(4*h1*k) + A(4*h1*h1)
 *                  + A(8*h1) + A(4*h2*h1) + A(4*h2*h2) + A(8*h2)
 *
 * Neither buffer holds pointers or size_t, so every size above is the same
 * on a 64-bit host and on a 32-bit microcontroller. */
#ifndef RNNPOOL_H_
#define RNNPOOL_H_

#include <stddef.h>
#include <stdint.h>

#include "rnnpool_op_contract.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes. The validator reports the first problem in this order:
 * pointers, dims, channels, hidden sizes, patch/stride, padding, activations,
 * output padding, RNN1 mode, input size, patch vs input, output size, then (params) pointers, scales,
 * zero points, scale counts, scalars, biases, multipliers, buffer sizes. */
typedef enum {
  RNNPOOL_OK = 0,
  RNNPOOL_ERR_NULL_POINTER = 1,      /* a required pointer (argument or params array) is NULL */
  RNNPOOL_ERR_BAD_DIMS = 2,          /* batch, in_rows or in_cols < 1 */
  RNNPOOL_ERR_BAD_CHANNELS = 3,      /* channels outside 1..RNNPOOL_MAX_CHANNELS */
  RNNPOOL_ERR_BAD_HIDDEN = 4,        /* hidden1 or hidden2 outside 1..RNNPOOL_MAX_HIDDEN */
  RNNPOOL_ERR_BAD_PATCH = 5,         /* a patch or stride side outside the contract's 1..255 */
  RNNPOOL_ERR_BAD_PADDING = 6,       /* padding not RNNPOOL_PADDING_VALID/_SAME */
  RNNPOOL_ERR_BAD_ACTIVATION = 7,    /* gate/update activation not a contract value */
  RNNPOOL_ERR_SIZE_OVERFLOW = 8,     /* a tensor larger than RNNPOOL_MAX_ELEMENTS, or a buffer size beyond size_t */
  RNNPOOL_ERR_PATCH_TOO_LARGE = 9,   /* "valid" padding and a patch larger than the input */
  RNNPOOL_ERR_BAD_SCALE = 10,        /* a scale that is not positive and finite */
  RNNPOOL_ERR_BAD_ZERO_POINT = 11,   /* input/output zero point outside [-128, 127] */
  RNNPOOL_ERR_BAD_SCALE_COUNT = 12,  /* a weight scale count other than 1 or the matrix's rows */
  RNNPOOL_ERR_BAD_SCALARS = 13,      /* int8: A or B outside [0, 16384]; float: outside [0, 1] */
  RNNPOOL_ERR_BAD_BIAS = 14,         /* int8: bias outside [-2^24, 2^24 - 1]; float: not finite */
  RNNPOOL_ERR_MULTIPLIER_RANGE = 15, /* a derived multiplier >= 2^30 (exponent above 30) */
  RNNPOOL_ERR_BUFFER_TOO_SMALL = 16, /* prepared or scratch buffer smaller than its size function says */
  RNNPOOL_ERR_MISALIGNED = 17,       /* prepared/scratch not 8-byte aligned, or float data not 4-byte aligned */
  RNNPOOL_ERR_NOT_PREPARED = 18,     /* eval on a buffer that prepare did not fill (or of the other variant) */
  RNNPOOL_ERR_BAD_OUTPUT_PAD = 19,   /* output_pad_bottom/right outside the contract's range */
  RNNPOOL_ERR_BAD_RNN1_MODE = 20,    /* rnn1_mode not RNNPOOL_RNN1_CACHED/_RECOMPUTE */
  RNNPOOL_STATUS_COUNT = 21
} rnnpool_status;

/* The fixed part of a prepared buffer (an internal header). */
#define RNNPOOL_PREPARED_HEADER_BYTES 320

/* Limits: every tensor (input and output) holds at most this many elements,
 * so its float32 byte count fits int32 (TFLM sizes tensors in int). */
#define RNNPOOL_MAX_ELEMENTS (INT32_MAX / 4)

/* One RNNPool layer applied to a fixed input shape. Geometry as
 * rnnpool_tflm/core/config.py: "valid" gives Ho = (H - r)/sr + 1; "same" gives
 * Ho = ceil(H/sr) with max((Ho - 1)*sr + r - H, 0) padding rows, the smaller
 * half on top (columns alike); padding is real zero (x = zero point).
 * The output tensor is [N, Ho + output_pad_bottom, Wo + output_pad_right, 4*h2]:
 * the Ho x Wo pooled pixels, then copies of the last column and of the last
 * (padded) row. Fields added after update_activation are zero when a caller
 * initialises the struct positionally with the older field list, which is
 * their default. */
typedef struct {
  int32_t batch;             /* N >= 1 */
  int32_t in_rows;           /* H >= 1 */
  int32_t in_cols;           /* W >= 1 */
  int32_t channels;          /* k, 1..RNNPOOL_MAX_CHANNELS */
  int32_t patch_rows;        /* r, 1..255 */
  int32_t patch_cols;        /* c, 1..255 */
  int32_t stride_rows;       /* sr, 1..255 (may exceed r: rows between patches are skipped) */
  int32_t stride_cols;       /* sc, 1..255 */
  int32_t padding;           /* RNNPOOL_PADDING_VALID or RNNPOOL_PADDING_SAME */
  int32_t hidden1;           /* h1 (RNN1 state size), 1..RNNPOOL_MAX_HIDDEN */
  int32_t hidden2;           /* h2 (RNN2 state size), 1..RNNPOOL_MAX_HIDDEN; output has 4*h2 channels */
  int32_t gate_activation;   /* RNNPOOL_GATE_SIGMOID or RNNPOOL_GATE_HARD_SIGMOID */
  int32_t update_activation; /* RNNPOOL_UPDATE_TANH or RNNPOOL_UPDATE_HARD_TANH */
  int32_t output_pad_bottom; /* copies of the last output row appended, 0..4 (contract range) */
  int32_t output_pad_right;  /* copies of the last output column appended, 0..4 */
  int32_t rnn1_mode;         /* RNNPOOL_RNN1_CACHED (0) or RNNPOOL_RNN1_RECOMPUTE: scratch vs instructions */
} rnnpool_config;

typedef struct {
  int32_t out_rows; /* Ho: patches down the map */
  int32_t out_cols; /* Wo: patches across */
  int32_t pad_top;  /* input zero padding ("same" only; 0 for "valid") */
  int32_t pad_bottom;
  int32_t pad_left;
  int32_t pad_right;
  int32_t padded_out_rows; /* Ho + output_pad_bottom: the output tensor is [N, these two, 4*h2] */
  int32_t padded_out_cols; /* Wo + output_pad_right */
} rnnpool_geometry;

/* Checks cfg alone; fills *geo (if not NULL) when it is valid. */
rnnpool_status rnnpool_validate_config(const rnnpool_config* cfg, rnnpool_geometry* geo);

/* A short English description of a status ("ok", "a scale is not ..."). */
const char* rnnpool_status_str(rnnpool_status status);
/* The enumerator's name ("RNNPOOL_ERR_BAD_SCALE"); NULL for an unknown value. */
const char* rnnpool_status_name(rnnpool_status status);

/* ---- int8 ------------------------------------------------------------------ */

/* The int8 op's inputs 1..7 and quantization (docs/quantization.md, section
 * 1). Matrices are output-major [out][in]. A scale array holds 1 value (per
 * tensor) or one per output row (per channel); `*_scale_count` says which. */
typedef struct {
  float input_scale;         /* s_x > 0 */
  int32_t input_zero_point;  /* zp_x in [-128, 127] */
  float output_scale;        /* s_y > 0 */
  int32_t output_zero_point; /* zp_y in [-128, 127] */
  const int8_t* w1;          /* [h1][k] */
  const float* w1_scale;     /* [w1_scale_count] */
  int32_t w1_scale_count;    /* 1 or h1 */
  const int8_t* u1;          /* [h1][h1] */
  const float* u1_scale;
  int32_t u1_scale_count; /* 1 or h1 */
  const int32_t* bias1;   /* [2][h1]: gate bias then update bias, Q12, in [-2^24, 2^24 - 1] */
  const int8_t* w2;       /* [h2][h1] */
  const float* w2_scale;
  int32_t w2_scale_count; /* 1 or h2 */
  const int8_t* u2;       /* [h2][h2] */
  const float* u2_scale;
  int32_t u2_scale_count; /* 1 or h2 */
  const int32_t* bias2;   /* [2][h2], Q12 */
  const int16_t* scalars; /* [A1, B1, A2, B2] = round(16384*sigmoid(zeta|nu)), each in [0, 16384] */
} rnnpool_s8_params;

/* Checks cfg and params (everything prepare checks, without a buffer). */
rnnpool_status rnnpool_s8_validate(const rnnpool_config* cfg, const rnnpool_s8_params* params);
/* Bytes of the persistent prepared buffer; 0 if cfg is invalid. */
size_t rnnpool_s8_prepared_bytes(const rnnpool_config* cfg);
/* Bytes of the per-call scratch buffer; 0 if cfg is invalid. */
size_t rnnpool_s8_scratch_bytes(const rnnpool_config* cfg);
/* Validates cfg and params, then fills `prepared` (8-byte aligned, at least
 * rnnpool_s8_prepared_bytes(cfg) bytes). Nothing is written on failure. */
rnnpool_status rnnpool_s8_prepare(const rnnpool_config* cfg, const rnnpool_s8_params* params, void* prepared,
                                  size_t prepared_bytes);
/* input int8 [N, H, W, k] -> output int8 [N, Ho + pad_b, Wo + pad_r, 4*h2], NHWC, all N. */
rnnpool_status rnnpool_s8_eval(const void* prepared, const int8_t* input, int8_t* output, void* scratch,
                               size_t scratch_bytes);

/* In place (docs/kernel.md, "In place"): eval may run with the output
 * overlapping the input when input_start - output_start >= *lag_bytes (the
 * output begins at least lag bytes before the input; a negative lag lets it
 * begin up to -lag bytes after), or when the two do not overlap at all. Every
 * output byte is then written after the input bytes it lands on have been
 * read for the last time. Depends on cfg only (rnn1_mode and output padding
 * included), never below -(input bytes). */
rnnpool_status rnnpool_s8_inplace_lag(const rnnpool_config* cfg, int64_t* lag_bytes);

/* Diagnostics (tests, tools): the state formats q1, q2 (docs section 2) and
 * the derived multipliers (M, n) of docs section 3. */
typedef enum {
  RNNPOOL_MULT_X1 = 0, /* [h1] W1*(x - zp) -> Q12 */
  RNNPOOL_MULT_U1 = 1, /* [h1] U1*h -> Q12 */
  RNNPOOL_MULT_X2 = 2, /* [h2] W2*p -> Q12 */
  RNNPOOL_MULT_U2 = 3, /* [h2] U2*g -> Q12 */
  RNNPOOL_MULT_Y = 4   /* [1]  RNN2 state -> output */
} rnnpool_multiplier_kind;
rnnpool_status rnnpool_s8_state_formats(const void* prepared, int32_t* q1, int32_t* q2);
/* (M, n) as applied; n = 30 is applied as (2^30, 29), which saturates alike. */
rnnpool_status rnnpool_s8_multiplier(const void* prepared, rnnpool_multiplier_kind kind, int32_t channel,
                                     int32_t* multiplier, int32_t* shift);
/* How prepare chose to apply each matrix's multipliers, forms[0..3] for
 * W1, U1, W2, U2: 0 every row below 1/4 (SMMUL form), 1 every row at or
 * above it with no accumulator able to reach the clamp (SMMULR form), 2 per
 * row (docs/kernel.md, "Requantization"). */
rnnpool_status rnnpool_s8_requant_forms(const void* prepared, int32_t forms[4]);

/* ---- float32 ----------------------------------------------------------------- */

/* The float op's inputs 1..7 (docs/quantization.md, section 10): same
 * layouts as int8; scalars are sigmoid(zeta1), sigmoid(nu1), sigmoid(zeta2),
 * sigmoid(nu2), each in [0, 1]. */
typedef struct {
  const float* w1;      /* [h1][k] */
  const float* u1;      /* [h1][h1] */
  const float* bias1;   /* [2][h1]: gate, update */
  const float* w2;      /* [h2][h1] */
  const float* u2;      /* [h2][h2] */
  const float* bias2;   /* [2][h2] */
  const float* scalars; /* [4] */
} rnnpool_f32_params;

rnnpool_status rnnpool_f32_validate(const rnnpool_config* cfg, const rnnpool_f32_params* params);
size_t rnnpool_f32_prepared_bytes(const rnnpool_config* cfg);
size_t rnnpool_f32_scratch_bytes(const rnnpool_config* cfg);
rnnpool_status rnnpool_f32_prepare(const rnnpool_config* cfg, const rnnpool_f32_params* params, void* prepared,
                                   size_t prepared_bytes);
/* input/output 4-byte aligned float32, NHWC, all N. */
rnnpool_status rnnpool_f32_eval(const void* prepared, const float* input, float* output, void* scratch,
                                size_t scratch_bytes);
/* rnnpool_s8_inplace_lag for float32 tensors (4-byte elements). */
rnnpool_status rnnpool_f32_inplace_lag(const rnnpool_config* cfg, int64_t* lag_bytes);

#ifdef __cplusplus
}
#endif

#endif /* RNNPOOL_H_ */
