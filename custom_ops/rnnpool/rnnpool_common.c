/* Status texts, configuration checks, geometry and multipliers shared by the
 * int8 and float32 RNNPool kernels. */
#include "int8_requant.h"
#include "rnnpool_internal.h"

#define RNNPOOL_STATUS_LIST(X)                                                          \
  X(RNNPOOL_OK, "ok")                                                                   \
  X(RNNPOOL_ERR_NULL_POINTER, "a required pointer is NULL")                             \
  X(RNNPOOL_ERR_BAD_DIMS, "batch, rows or cols is not positive")                        \
  X(RNNPOOL_ERR_BAD_CHANNELS, "channels outside 1..RNNPOOL_MAX_CHANNELS")               \
  X(RNNPOOL_ERR_BAD_HIDDEN, "hidden size outside 1..RNNPOOL_MAX_HIDDEN")                \
  X(RNNPOOL_ERR_BAD_PATCH, "patch or stride side outside 1..255")                       \
  X(RNNPOOL_ERR_BAD_PADDING, "unknown padding")                                         \
  X(RNNPOOL_ERR_BAD_ACTIVATION, "unknown gate or update activation")                    \
  X(RNNPOOL_ERR_SIZE_OVERFLOW, "a tensor or buffer size is too large")                  \
  X(RNNPOOL_ERR_PATCH_TOO_LARGE, "patch larger than the input with padding 'valid'")    \
  X(RNNPOOL_ERR_BAD_SCALE, "a scale is not a positive finite number")                   \
  X(RNNPOOL_ERR_BAD_ZERO_POINT, "a zero point is outside [-128, 127]")                  \
  X(RNNPOOL_ERR_BAD_SCALE_COUNT, "a weight scale count is neither 1 nor the row count") \
  X(RNNPOOL_ERR_BAD_SCALARS, "a FastGRNN scalar is out of range")                       \
  X(RNNPOOL_ERR_BAD_BIAS, "a bias is out of range")                                     \
  X(RNNPOOL_ERR_MULTIPLIER_RANGE, "a derived requantization multiplier is too large")   \
  X(RNNPOOL_ERR_BUFFER_TOO_SMALL, "prepared or scratch buffer too small")               \
  X(RNNPOOL_ERR_MISALIGNED, "buffer not aligned")                                       \
  X(RNNPOOL_ERR_NOT_PREPARED, "buffer was not filled by this variant's prepare")        \
  X(RNNPOOL_ERR_BAD_OUTPUT_PAD, "output padding outside the contract's range")          \
  X(RNNPOOL_ERR_BAD_RNN1_MODE, "unknown RNN1 mode")

const char* rnnpool_status_str(rnnpool_status status) {
#define RNNPOOL_STATUS_TEXT_(code, text) \
  case code:                             \
    return text;
  switch (status) {
    RNNPOOL_STATUS_LIST(RNNPOOL_STATUS_TEXT_)
    default:
      return "unknown status";
  }
#undef RNNPOOL_STATUS_TEXT_
}

const char* rnnpool_status_name(rnnpool_status status) {
#define RNNPOOL_STATUS_NAME_(code, text) \
  case code:                             \
    return #code;
  switch (status) {
    RNNPOOL_STATUS_LIST(RNNPOOL_STATUS_NAME_)
    default:
      return NULL;
  }
#undef RNNPOOL_STATUS_NAME_
}

static int in_range(int32_t v, int32_t lo, int32_t hi) { return v >= lo && v <= hi; }

/* a*b*c*d <= RNNPOOL_MAX_ELEMENTS for non-negative factors, without overflow. */
static int elements_ok(int64_t a, int64_t b, int64_t c, int64_t d) {
  const int64_t limit = RNNPOOL_MAX_ELEMENTS;
  int64_t v = a;
  if (b != 0 && v > limit / b) return 0;
  v *= b;
  if (c != 0 && v > limit / c) return 0;
  v *= c;
  if (d != 0 && v > limit / d) return 0;
  return v * d <= limit;
}

rnnpool_status rnnpool_validate_config(const rnnpool_config* cfg, rnnpool_geometry* geo) {
  rnnpool_geometry g;
  if (cfg == NULL) return RNNPOOL_ERR_NULL_POINTER;
  if (cfg->batch < 1 || cfg->in_rows < 1 || cfg->in_cols < 1) return RNNPOOL_ERR_BAD_DIMS;
  if (!in_range(cfg->channels, 1, RNNPOOL_MAX_CHANNELS)) return RNNPOOL_ERR_BAD_CHANNELS;
  if (!in_range(cfg->hidden1, 1, RNNPOOL_MAX_HIDDEN) || !in_range(cfg->hidden2, 1, RNNPOOL_MAX_HIDDEN)) {
    return RNNPOOL_ERR_BAD_HIDDEN;
  }
  if (!in_range(cfg->patch_rows, RNNPOOL_OPTION_MIN_PATCH_ROWS, RNNPOOL_OPTION_MAX_PATCH_ROWS) ||
      !in_range(cfg->patch_cols, RNNPOOL_OPTION_MIN_PATCH_COLS, RNNPOOL_OPTION_MAX_PATCH_COLS) ||
      !in_range(cfg->stride_rows, RNNPOOL_OPTION_MIN_STRIDE_ROWS, RNNPOOL_OPTION_MAX_STRIDE_ROWS) ||
      !in_range(cfg->stride_cols, RNNPOOL_OPTION_MIN_STRIDE_COLS, RNNPOOL_OPTION_MAX_STRIDE_COLS)) {
    return RNNPOOL_ERR_BAD_PATCH;
  }
  if (cfg->padding != RNNPOOL_PADDING_VALID && cfg->padding != RNNPOOL_PADDING_SAME) {
    return RNNPOOL_ERR_BAD_PADDING;
  }
  if ((cfg->gate_activation != RNNPOOL_GATE_SIGMOID && cfg->gate_activation != RNNPOOL_GATE_HARD_SIGMOID) ||
      (cfg->update_activation != RNNPOOL_UPDATE_TANH && cfg->update_activation != RNNPOOL_UPDATE_HARD_TANH)) {
    return RNNPOOL_ERR_BAD_ACTIVATION;
  }
  if (!in_range(cfg->output_pad_bottom, RNNPOOL_OPTION_MIN_OUTPUT_PAD_BOTTOM, RNNPOOL_OPTION_MAX_OUTPUT_PAD_BOTTOM) ||
      !in_range(cfg->output_pad_right, RNNPOOL_OPTION_MIN_OUTPUT_PAD_RIGHT, RNNPOOL_OPTION_MAX_OUTPUT_PAD_RIGHT)) {
    return RNNPOOL_ERR_BAD_OUTPUT_PAD;
  }
  if (cfg->rnn1_mode != RNNPOOL_RNN1_CACHED && cfg->rnn1_mode != RNNPOOL_RNN1_RECOMPUTE) {
    return RNNPOOL_ERR_BAD_RNN1_MODE;
  }
  if (!elements_ok(cfg->batch, cfg->in_rows, cfg->in_cols, cfg->channels)) return RNNPOOL_ERR_SIZE_OVERFLOW;
  /* From here every size is below 2^29: no int32 expression below overflows. */
  if (cfg->padding == RNNPOOL_PADDING_VALID) {
    if (cfg->in_rows < cfg->patch_rows || cfg->in_cols < cfg->patch_cols) return RNNPOOL_ERR_PATCH_TOO_LARGE;
    g.out_rows = (cfg->in_rows - cfg->patch_rows) / cfg->stride_rows + 1;
    g.out_cols = (cfg->in_cols - cfg->patch_cols) / cfg->stride_cols + 1;
    g.pad_top = g.pad_bottom = g.pad_left = g.pad_right = 0;
  } else { /* TensorFlow SAME: ceil(H/s), the smaller half of the padding first */
    int32_t pad_r, pad_c;
    g.out_rows = (cfg->in_rows + cfg->stride_rows - 1) / cfg->stride_rows;
    g.out_cols = (cfg->in_cols + cfg->stride_cols - 1) / cfg->stride_cols;
    pad_r = (g.out_rows - 1) * cfg->stride_rows + cfg->patch_rows - cfg->in_rows;
    pad_c = (g.out_cols - 1) * cfg->stride_cols + cfg->patch_cols - cfg->in_cols;
    if (pad_r < 0) pad_r = 0;
    if (pad_c < 0) pad_c = 0;
    g.pad_top = pad_r / 2;
    g.pad_bottom = pad_r - g.pad_top;
    g.pad_left = pad_c / 2;
    g.pad_right = pad_c - g.pad_left;
  }
  g.padded_out_rows = g.out_rows + cfg->output_pad_bottom;
  g.padded_out_cols = g.out_cols + cfg->output_pad_right;
  if (!elements_ok(cfg->batch, g.padded_out_rows, g.padded_out_cols, 4 * (int64_t)cfg->hidden2)) {
    return RNNPOOL_ERR_SIZE_OVERFLOW;
  }
  if (geo != NULL) *geo = g;
  return RNNPOOL_OK;
}

rnnpool_status rnnpool_layout_init(const rnnpool_config* cfg, rnnpool_layout* layout) {
  const rnnpool_status status = rnnpool_validate_config(cfg, &layout->geo);
  if (status != RNNPOOL_OK) return status;
  layout->cfg = *cfg;
  layout->used_rows = (layout->geo.out_rows - 1) * cfg->stride_rows + cfg->patch_rows;
  layout->used_cols = (layout->geo.out_cols - 1) * cfg->stride_cols + cfg->patch_cols;
  layout->row_slots = (cfg->patch_cols + cfg->stride_cols - 1) / cfg->stride_cols;
  layout->col_slots = (cfg->patch_rows + cfg->stride_rows - 1) / cfg->stride_rows;
  return RNNPOOL_OK;
}

double rnnpool_pow2(int e) {
  double v = 1.0;
  for (; e > 0; --e) v *= 2.0;
  for (; e < 0; ++e) v *= 0.5;
  return v;
}

rnnpool_status rnnpool_quantize_multiplier(double m, int32_t* multiplier, int32_t* shift) {
  switch (i8_quantize_multiplier(m, multiplier, shift)) {
    case I8_QM_OK:
      return RNNPOOL_OK;
    case I8_QM_BAD_SCALE:
      return RNNPOOL_ERR_BAD_SCALE;
    default:
      return RNNPOOL_ERR_MULTIPLIER_RANGE;
  }
}
