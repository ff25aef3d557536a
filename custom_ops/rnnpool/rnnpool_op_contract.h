/* The RNNPool custom-op contract: its name, inputs (in order), outputs and
 * options. This header is the single definition: the C/TFLM kernel includes
 * it, and the Python converter and checker parse it
 * (rnnpool_tflm/op_contract.py), so neither side can drift.
 * Documented in docs/custom_op.md; the arithmetic in docs/quantization.md.
 *
 * Keep the X-macro lines one per entry, in the exact form below: the Python
 * parser reads them with a strict pattern and fails loudly on anything else. */
#ifndef RNNPOOL_OP_CONTRACT_H_
#define RNNPOOL_OP_CONTRACT_H_

#define RNNPOOL_CUSTOM_CODE "RNNPool"
#define RNNPOOL_OP_VERSION 1

/* X(ENUM, index, "name", int8-op type, float-op type, "shape") */
#define RNNPOOL_INPUTS(X)                             \
  X(INPUT, 0, "input", INT8, FLOAT32, "[N, H, W, k]") \
  X(W1, 1, "w1", INT8, FLOAT32, "[h1, k]")            \
  X(U1, 2, "u1", INT8, FLOAT32, "[h1, h1]")           \
  X(BIAS1, 3, "bias1", INT32, FLOAT32, "[2, h1]")     \
  X(W2, 4, "w2", INT8, FLOAT32, "[h2, h1]")           \
  X(U2, 5, "u2", INT8, FLOAT32, "[h2, h2]")           \
  X(BIAS2, 6, "bias2", INT32, FLOAT32, "[2, h2]")     \
  X(SCALARS, 7, "fastgrnn_scalars", INT16, FLOAT32, "[2, 2]")

/* X(ENUM, index, "name", int8-op type, float-op type, "shape") */
#define RNNPOOL_OUTPUTS(X) X(OUTPUT, 0, "output", INT8, FLOAT32, "[N, Ho + pad_b, Wo + pad_r, 4*h2]")

#define RNNPOOL_NUM_INPUTS 8
#define RNNPOOL_NUM_OUTPUTS 1

/* How each tensor of the int8 op is quantized; the TFLM Prepare and the Python
 * validator both check every tensor against its kind:
 *   PER_TENSOR      one scale and one zero point (the zero point in [-128, 127]);
 *   SYMMETRIC_ROWS  1 scale or one per row (dimension 0), zero points 0;
 *   FIXED_POINT     a fixed Q format (Q12 biases, Q14 scalars): unquantized, or
 *                   zero points 0 (a scale is informative only).
 * X("name", KIND), one line per input and output. */
#define RNNPOOL_QUANTIZATION(X)      \
  X("input", PER_TENSOR)             \
  X("w1", SYMMETRIC_ROWS)            \
  X("u1", SYMMETRIC_ROWS)            \
  X("bias1", FIXED_POINT)            \
  X("w2", SYMMETRIC_ROWS)            \
  X("u2", SYMMETRIC_ROWS)            \
  X("bias2", FIXED_POINT)            \
  X("fastgrnn_scalars", FIXED_POINT) \
  X("output", PER_TENSOR)

/* Options: a flexbuffer map of integers.
 * X(ENUM, "key", minimum, maximum) */
#define RNNPOOL_OPTIONS(X)                        \
  X(VERSION, "version", 1, 1)                     \
  X(PATCH_ROWS, "patch_rows", 1, 255)             \
  X(PATCH_COLS, "patch_cols", 1, 255)             \
  X(STRIDE_ROWS, "stride_rows", 1, 255)           \
  X(STRIDE_COLS, "stride_cols", 1, 255)           \
  X(PADDING, "padding", 0, 1)                     \
  X(GATE_ACTIVATION, "gate_activation", 0, 1)     \
  X(UPDATE_ACTIVATION, "update_activation", 0, 1) \
  X(OUTPUT_PAD_BOTTOM, "output_pad_bottom", 0, 4) \
  X(OUTPUT_PAD_RIGHT, "output_pad_right", 0, 4)   \
  X(RNN1_MODE, "rnn1_mode", 0, 1)

#define RNNPOOL_NUM_OPTIONS 11

/* Options a model may leave out, and the value they then take; every other
 * option is required. Writers omit an option that equals its default, so a
 * model that does not use a later option still loads where it is unknown.
 * X(ENUM, default) */
#define RNNPOOL_OPTION_DEFAULTS(X) \
  X(OUTPUT_PAD_BOTTOM, 0)          \
  X(OUTPUT_PAD_RIGHT, 0)           \
  X(RNN1_MODE, 0)

/* Values of the enumerated options. */
#define RNNPOOL_PADDING_VALID 0
#define RNNPOOL_PADDING_SAME 1
#define RNNPOOL_GATE_SIGMOID 0
#define RNNPOOL_GATE_HARD_SIGMOID 1
#define RNNPOOL_UPDATE_TANH 0
#define RNNPOOL_UPDATE_HARD_TANH 1
/* output_pad_bottom / output_pad_right: that many copies of the last output
 * row / column appended (replicate padding, as PyTorch's F.pad(x, (0, pad_r,
 * 0, pad_b), mode="replicate")); the output is [N, Ho + pad_b, Wo + pad_r, 4*h2]. */
/* rnn1_mode: how the kernel organises RNN1, never what it computes (same output
 * bytes): CACHED keeps RNN1 results shared by overlapping patches in scratch
 * (fewest instructions), RECOMPUTE recomputes them per patch (scratch of about
 * a kilobyte, independent of the map width). */
#define RNNPOOL_RNN1_CACHED 0
#define RNNPOOL_RNN1_RECOMPUTE 1

/* Limits that keep every int32 accumulator exact (docs/quantization.md, 4). */
#define RNNPOOL_MAX_CHANNELS 16384
#define RNNPOOL_MAX_HIDDEN 256

#endif /* RNNPOOL_OP_CONTRACT_H_ */
