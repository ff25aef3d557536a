/* The InvertedResidual custom-op contract: its name, inputs (in order),
 * outputs and options. This header is the single definition: the C core and
 * its TFLM registration include it, and the Python side parses it
 * (rnnpool_tflm/core/contract.py, the same parser as the RNNPool contract's),
 * so neither side can drift.
 * Documented in docs/inverted_residual.md (tensors, options, the arithmetic).
 *
 * Keep the X-macro lines one per entry, in the exact form below: the Python
 * parser reads them with a strict pattern and fails loudly on anything else. */
#ifndef INVRES_OP_CONTRACT_H_
#define INVRES_OP_CONTRACT_H_

#define INVRES_CUSTOM_CODE "InvertedResidual"
#define INVRES_OP_VERSION 1

/* X(ENUM, index, "name", int8-op type, float-op type, "shape", presence)
 * The op is int8 only (float-op type NONE). presence OPTIONAL: the operator
 * may list -1 in that position (which ones must be present follows from the
 * options, docs/inverted_residual.md). The *_quantization inputs are constant
 * INT8 [1] tensors whose quantization (one float32 scale, one zero point) is
 * that of the unfused graph's intermediate activation; their value is unused. */
#define INVRES_INPUTS(X)                                                              \
  X(INPUT, 0, "input", INT8, NONE, "[N, H, W, Ci]", REQUIRED)                         \
  X(EXPAND_FILTER, 1, "expand_filter", INT8, NONE, "[Ce, 1, 1, Ci]", OPTIONAL)        \
  X(EXPAND_BIAS, 2, "expand_bias", INT32, NONE, "[Ce]", OPTIONAL)                     \
  X(EXPANDED_QUANTIZATION, 3, "expanded_quantization", INT8, NONE, "[1]", OPTIONAL)   \
  X(DEPTHWISE_FILTER, 4, "depthwise_filter", INT8, NONE, "[1, 3, 3, Ce]", REQUIRED)   \
  X(DEPTHWISE_BIAS, 5, "depthwise_bias", INT32, NONE, "[Ce]", OPTIONAL)               \
  X(DEPTHWISE_QUANTIZATION, 6, "depthwise_quantization", INT8, NONE, "[1]", REQUIRED) \
  X(PROJECT_FILTER, 7, "project_filter", INT8, NONE, "[Co, 1, 1, Ce]", REQUIRED)      \
  X(PROJECT_BIAS, 8, "project_bias", INT32, NONE, "[Co]", OPTIONAL)                   \
  X(PROJECTED_QUANTIZATION, 9, "projected_quantization", INT8, NONE, "[1]", OPTIONAL)

/* X(ENUM, index, "name", int8-op type, float-op type, "shape", presence) */
#define INVRES_OUTPUTS(X) X(OUTPUT, 0, "output", INT8, NONE, "[N, Ho, Wo, Co]", REQUIRED)

#define INVRES_NUM_INPUTS 10
#define INVRES_NUM_OUTPUTS 1

/* Options: a flexbuffer map of integers.
 * X(ENUM, "key", minimum, maximum) */
#define INVRES_OPTIONS(X)                               \
  X(VERSION, "version", 1, 1)                           \
  X(STRIDE, "stride", 1, 2)                             \
  X(EXPAND, "expand", 0, 1)                             \
  X(RESIDUAL, "residual", 0, 1)                         \
  X(EXPAND_ACTIVATION, "expand_activation", 0, 3)       \
  X(DEPTHWISE_ACTIVATION, "depthwise_activation", 0, 3) \
  X(PROJECT_ACTIVATION, "project_activation", 0, 3)     \
  X(ADD_ACTIVATION, "add_activation", 0, 3)

#define INVRES_NUM_OPTIONS 8

/* Activation values: TFLite's ActivationFunctionType, so the fused activation
 * of each unfused operator is copied unchanged. */
#define INVRES_ACTIVATION_NONE 0
#define INVRES_ACTIVATION_RELU 1
#define INVRES_ACTIVATION_RELU_N1_TO_1 2
#define INVRES_ACTIVATION_RELU6 3

/* The depthwise kernel is 3x3 ('same' padding as TFLite: ceil(H/stride)
 * output rows, the smaller half of the padding on top/left). */
#define INVRES_KERNEL_SIZE 3

/* Channel limit (Ci, Ce, Co): keeps every sum of products below 2^27 in
 * magnitude (docs/inverted_residual.md, "Accumulators"). */
#define INVRES_MAX_CHANNELS 4096

#endif /* INVRES_OP_CONTRACT_H_ */
