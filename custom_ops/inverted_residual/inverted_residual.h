/* InvertedResidual kernel: portable C99, no heap, no TensorFlow dependency.
 *
 * One MobileNetV2 inverted-residual block in int8 -- [1x1 expansion] -> 3x3
 * depthwise 'same', stride 1 or 2 -> 1x1 projection -> [residual ADD] --
 * bit-exact with TFLM's int8 CONV_2D / DEPTHWISE_CONV_2D / ADD kernels (and
 * CMSIS-NN's) on the unfused graph: docs/inverted_residual.md, section 4, is
 * the arithmetic; section 5 how this kernel organises it. Output rows are
 * computed from a ring of three expanded rows: the expanded map is never
 * materialised. On Cortex-M4 (__ARM_FEATURE_DSP) the dot products use
 * SMLAD/SXTB16 and the requantization SMMLAR; elsewhere plain C computes the
 * same integers.
 *
 * Use, CMSIS-NN style:
 *   1. fill an invres_config and an invres_s8_params;
 *      invres_s8_validate(cfg, params) says whether they are usable;
 *   2. prepare once: P = invres_s8_prepared_bytes(cfg) bytes, persistent,
 *      8-byte aligned: invres_s8_prepare(cfg, params, buf, P) validates and
 *      stores the derived integers (per-channel multipliers and shifts,
 *      clamps, the ADD's rescaling, the requantization forms). The params'
 *      scale arrays are not read after it returns; the weights and biases are
 *      read again by eval (TFLM: constant tensors in flash);
 *   3. evaluate: invres_s8_eval(prepared, constants, input, output, scratch,
 *      S) with S = invres_s8_scratch_bytes(cfg) bytes of 8-byte aligned
 *      scratch; `constants` must hold the weight and bias arrays prepare saw.
 *      Eval allocates nothing and leaves nothing in the scratch that a later
 *      call needs. Input and output must not overlap.
 * A size function returns 0 when the config is invalid; every other function
 * returns an invres_status.
 *
 * Buffer sizes (bytes). A(v) rounds v up to a multiple of 8; Ci4, Ce4 are
 * Ci, Ce rounded up to a multiple of 4; Wr = (Wo - 1)*stride + 3 (the ring's
 * columns, padding included); E = Ce if expand else 0; R = 1 if residual:
 *
 *   prepared = INVRES_PREPARED_HEADER_BYTES + 8*(E + Ce + Co)
 *   scratch  = A(16*(E + Ce + Co))            per-channel records (folded biases, multipliers)
 *            + R*2048                         the ADD's two 256-entry tables
 *            + A(3*Wr*Ce)                     the ring of expanded rows (int8)
 *            + A(8*Ci4)*expand + A(8*Ce4)     four widened pixels, expansion / projection input
 *
 * Neither buffer holds pointers or size_t, so the sizes are the same on a
 * 64-bit host and on a 32-bit microcontroller. */
#ifndef INVERTED_RESIDUAL_H_
#define INVERTED_RESIDUAL_H_

#include <stddef.h>
#include <stdint.h>

#include "inverted_residual_op_contract.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes. The validator reports the first problem in this order:
 * pointers, dims, channels, stride, structure flags, activations, sizes, then
 * (params) pointers, scales, zero points, scale counts, multipliers,
 * activation ranges. */
typedef enum {
  INVRES_OK = 0,
  INVRES_ERR_NULL_POINTER = 1,      /* a required pointer (argument or params array) is NULL */
  INVRES_ERR_BAD_DIMS = 2,          /* batch, in_rows or in_cols < 1 */
  INVRES_ERR_BAD_CHANNELS = 3,      /* a channel count outside 1..INVRES_MAX_CHANNELS, or Ce != Ci without expansion */
  INVRES_ERR_BAD_STRIDE = 4,        /* stride not 1 or 2 */
  INVRES_ERR_BAD_STRUCTURE = 5,     /* expand/residual not 0/1; residual with stride 2 or Co != Ci; an activation
                                       of a stage that is absent */
  INVRES_ERR_BAD_ACTIVATION = 6,    /* an activation outside 0..3 (TFLite ActivationFunctionType) */
  INVRES_ERR_SIZE_OVERFLOW = 7,     /* a tensor larger than INVRES_MAX_ELEMENTS, or a buffer size beyond 4 GB */
  INVRES_ERR_BAD_SCALE = 8,         /* a scale that is not positive and finite */
  INVRES_ERR_BAD_ZERO_POINT = 9,    /* an activation zero point outside [-128, 127] */
  INVRES_ERR_BAD_SCALE_COUNT = 10,  /* a filter scale count other than 1 or the filter's output channels */
  INVRES_ERR_MULTIPLIER_RANGE = 11, /* a conv multiplier >= 2^30, or an ADD multiplier not in (0, 1) */
  INVRES_ERR_ACTIVATION_RANGE = 12, /* an activation bound of 2^30 or more output steps (scale too small) */
  INVRES_ERR_BUFFER_TOO_SMALL = 13, /* prepared or scratch buffer smaller than its size function says */
  INVRES_ERR_MISALIGNED = 14,       /* prepared or scratch not 8-byte aligned */
  INVRES_ERR_NOT_PREPARED = 15,     /* eval on a buffer that prepare did not fill */
  INVRES_STATUS_COUNT = 16
} invres_status;

/* The fixed part of a prepared buffer (an internal header). */
#define INVRES_PREPARED_HEADER_BYTES 256

/* Every tensor (input, expanded map, output) holds at most this many
 * elements, so every index fits int32 and TFLM's int-sized byte counts too. */
#define INVRES_MAX_ELEMENTS (INT32_MAX / 4)

/* One block applied to a fixed input shape: the op's options plus the
 * tensors' channel counts. */
typedef struct {
  int32_t batch;             /* N >= 1 */
  int32_t in_rows;           /* H >= 1 */
  int32_t in_cols;           /* W >= 1 */
  int32_t in_channels;       /* Ci, 1..INVRES_MAX_CHANNELS */
  int32_t expanded_channels; /* Ce, 1..INVRES_MAX_CHANNELS; equals Ci without expansion */
  int32_t out_channels;      /* Co, 1..INVRES_MAX_CHANNELS; equals Ci with the residual */
  int32_t stride;            /* 1 or 2 (the depthwise conv's, rows and columns) */
  int32_t expand;            /* 1: a 1x1 expansion conv runs first */
  int32_t residual;          /* 1: the input is added to the projection (TFLM's ADD) */
  int32_t expand_activation; /* INVRES_ACTIVATION_*; NONE without expansion */
  int32_t depthwise_activation;
  int32_t project_activation;
  int32_t add_activation; /* NONE without the residual */
} invres_config;

/* TFLite 'same': Ho = ceil(H/stride), pad_top = max((Ho-1)*stride + 3 - H, 0) / 2. */
typedef struct {
  int32_t out_rows;
  int32_t out_cols;
  int32_t pad_top;
  int32_t pad_left;
} invres_geometry;

/* A per-tensor int8 quantization: real = scale * (q - zero_point). */
typedef struct {
  float scale;
  int32_t zero_point;
} invres_quantization;

/* One convolution's constant tensors, in the TFLite layouts of the unfused graph. */
typedef struct {
  const int8_t* weights; /* expansion/projection [out][in]; depthwise [3][3][C] */
  const int32_t* bias;   /* [out], or NULL (no bias) */
  const float* scales;   /* [scale_count] symmetric filter scales */
  int32_t scale_count;   /* 1 or the output channels */
} invres_filter;

/* The quantizations of every activation of the unfused graph and its three
 * convolutions. `expanded` and `expand` are read only with expansion,
 * `projected` (the projection's output) only with the residual; without it
 * the projection writes `output`. */
typedef struct {
  invres_quantization input;
  invres_quantization expanded;
  invres_quantization depthwise;
  invres_quantization projected;
  invres_quantization output;
  invres_filter expand;
  invres_filter depthwise_filter;
  invres_filter project;
} invres_s8_params;

/* What eval reads besides the prepared buffer: the same arrays prepare saw. */
typedef struct {
  const int8_t* expand_weights; /* NULL without expansion */
  const int32_t* expand_bias;   /* NULL: none */
  const int8_t* depthwise_weights;
  const int32_t* depthwise_bias;
  const int8_t* project_weights;
  const int32_t* project_bias;
} invres_s8_constants;

/* Checks cfg alone; fills *geo (if not NULL) when it is valid. */
invres_status invres_validate_config(const invres_config* cfg, invres_geometry* geo);
/* Checks cfg and params (everything prepare checks, without a buffer). */
invres_status invres_s8_validate(const invres_config* cfg, const invres_s8_params* params);
/* Bytes of the persistent prepared buffer; 0 if cfg is invalid. */
size_t invres_s8_prepared_bytes(const invres_config* cfg);
/* Bytes of the per-call scratch buffer; 0 if cfg is invalid. */
size_t invres_s8_scratch_bytes(const invres_config* cfg);
/* Validates, then fills `prepared` (8-byte aligned, at least
 * invres_s8_prepared_bytes(cfg) bytes). Nothing is written on failure. */
invres_status invres_s8_prepare(const invres_config* cfg, const invres_s8_params* params, void* prepared,
                                size_t prepared_bytes);
/* input int8 [N, H, W, Ci] -> output int8 [N, Ho, Wo, Co], NHWC. */
invres_status invres_s8_eval(const void* prepared, const invres_s8_constants* constants, const int8_t* input,
                             int8_t* output, void* scratch, size_t scratch_bytes);

/* A short English description of a status; the enumerator's name (NULL for an unknown value). */
const char* invres_status_str(invres_status status);
const char* invres_status_name(invres_status status);

/* Diagnostics (tests, tools). Stages: */
typedef enum { INVRES_STAGE_EXPAND = 0, INVRES_STAGE_DEPTHWISE = 1, INVRES_STAGE_PROJECT = 2 } invres_stage;
/* TFLM's (multiplier, shift) of one output channel of a stage. */
invres_status invres_s8_multiplier(const void* prepared, invres_stage stage, int32_t channel, int32_t* multiplier,
                                   int32_t* shift);
/* The stage's clamp [lo, hi] (CalculateActivationRangeQuantized). */
invres_status invres_s8_activation_range(const void* prepared, invres_stage stage, int32_t* lo, int32_t* hi);
/* The ADD's (M1, n1, M2, n2, Mo, no, lo, hi); NOT_PREPARED without the residual. */
invres_status invres_s8_add_params(const void* prepared, int32_t values[8]);
/* How each stage requantizes (docs section 5): forms[stage] is 0 (the
 * SMMLAR form: every channel's shift <= -1 and no accumulator can reach
 * 2^30), 1 (the general form), or -1 (no expansion); forms[3] likewise for
 * the ADD's output step. */
invres_status invres_s8_requant_forms(const void* prepared, int32_t forms[4]);

#ifdef __cplusplus
}
#endif

#endif /* INVERTED_RESIDUAL_H_ */
