/* InvertedResidual: status texts, validation, geometry, buffer layout,
 * QuantizeMultiplier and the activation range (docs/inverted_residual.md). */
#include <string.h>

#include "inverted_residual_internal.h"

static const char* const kStatusText[INVRES_STATUS_COUNT] = {
    "ok",
    "a required pointer is NULL",
    "batch, rows or columns below 1",
    "a channel count is outside 1..4096, or differs from the input's without expansion",
    "the stride is not 1 or 2",
    "the block's structure is inconsistent (expand/residual flags, residual shape, an activation of an absent "
    "stage)",
    "an activation is not NONE, RELU, RELU_N1_TO_1 or RELU6",
    "a tensor or buffer is too large",
    "a scale is not positive and finite",
    "a zero point is outside [-128, 127]",
    "a filter has neither one scale nor one per output channel",
    "a derived multiplier is out of range",
    "an activation bound is out of range (scale too small)",
    "a buffer is smaller than its size function says",
    "a buffer is not 8-byte aligned",
    "the buffer was not filled by prepare",
};

static const char* const kStatusName[INVRES_STATUS_COUNT] = {
    "INVRES_OK",
    "INVRES_ERR_NULL_POINTER",
    "INVRES_ERR_BAD_DIMS",
    "INVRES_ERR_BAD_CHANNELS",
    "INVRES_ERR_BAD_STRIDE",
    "INVRES_ERR_BAD_STRUCTURE",
    "INVRES_ERR_BAD_ACTIVATION",
    "INVRES_ERR_SIZE_OVERFLOW",
    "INVRES_ERR_BAD_SCALE",
    "INVRES_ERR_BAD_ZERO_POINT",
    "INVRES_ERR_BAD_SCALE_COUNT",
    "INVRES_ERR_MULTIPLIER_RANGE",
    "INVRES_ERR_ACTIVATION_RANGE",
    "INVRES_ERR_BUFFER_TOO_SMALL",
    "INVRES_ERR_MISALIGNED",
    "INVRES_ERR_NOT_PREPARED",
};

const char* invres_status_str(invres_status status) {
  return ((unsigned)status < (unsigned)INVRES_STATUS_COUNT) ? kStatusText[status] : "unknown status";
}

const char* invres_status_name(invres_status status) {
  return ((unsigned)status < (unsigned)INVRES_STATUS_COUNT) ? kStatusName[status] : NULL;
}

static int in_range(int32_t v, int32_t lo, int32_t hi) { return v >= lo && v <= hi; }

/* a*b*c*d <= INVRES_MAX_ELEMENTS, all positive, without overflow. */
static int elements_ok(int64_t a, int64_t b, int64_t c, int64_t d) {
  const int64_t limit = INVRES_MAX_ELEMENTS;
  int64_t v = a;
  if (v > limit || b > limit / v) return 0;
  v *= b;
  if (c > limit / v) return 0;
  v *= c;
  return d <= limit / v;
}

static uint64_t align8(uint64_t v) { return (v + 7u) & ~(uint64_t)7u; }

invres_status invres_validate_config(const invres_config* cfg, invres_geometry* geo) {
  invres_geometry g;
  int32_t pad_rows, pad_cols, max_channels;
  if (cfg == NULL) return INVRES_ERR_NULL_POINTER;
  if (cfg->batch < 1 || cfg->in_rows < 1 || cfg->in_cols < 1) return INVRES_ERR_BAD_DIMS;
  if (!in_range(cfg->in_channels, 1, INVRES_MAX_CHANNELS) ||
      !in_range(cfg->expanded_channels, 1, INVRES_MAX_CHANNELS) ||
      !in_range(cfg->out_channels, 1, INVRES_MAX_CHANNELS)) {
    return INVRES_ERR_BAD_CHANNELS;
  }
  if (cfg->stride != 1 && cfg->stride != 2) return INVRES_ERR_BAD_STRIDE;
  if (!in_range(cfg->expand, 0, 1) || !in_range(cfg->residual, 0, 1)) return INVRES_ERR_BAD_STRUCTURE;
  if (!cfg->expand && cfg->expanded_channels != cfg->in_channels) return INVRES_ERR_BAD_CHANNELS;
  if (cfg->residual && (cfg->stride != 1 || cfg->out_channels != cfg->in_channels)) {
    return INVRES_ERR_BAD_STRUCTURE;
  }
  if (!in_range(cfg->expand_activation, 0, 3) || !in_range(cfg->depthwise_activation, 0, 3) ||
      !in_range(cfg->project_activation, 0, 3) || !in_range(cfg->add_activation, 0, 3)) {
    return INVRES_ERR_BAD_ACTIVATION;
  }
  if ((!cfg->expand && cfg->expand_activation != INVRES_ACTIVATION_NONE) ||
      (!cfg->residual && cfg->add_activation != INVRES_ACTIVATION_NONE)) {
    return INVRES_ERR_BAD_STRUCTURE;
  }
  max_channels = cfg->expanded_channels > cfg->in_channels ? cfg->expanded_channels : cfg->in_channels;
  if (!elements_ok(cfg->batch, cfg->in_rows, cfg->in_cols, max_channels)) return INVRES_ERR_SIZE_OVERFLOW;
  /* From here every size is below 2^29: no int32 expression below overflows. */
  g.out_rows = (cfg->in_rows + cfg->stride - 1) / cfg->stride;
  g.out_cols = (cfg->in_cols + cfg->stride - 1) / cfg->stride;
  pad_rows = (g.out_rows - 1) * cfg->stride + INVRES_KERNEL_SIZE - cfg->in_rows;
  pad_cols = (g.out_cols - 1) * cfg->stride + INVRES_KERNEL_SIZE - cfg->in_cols;
  g.pad_top = (pad_rows > 0 ? pad_rows : 0) / 2;
  g.pad_left = (pad_cols > 0 ? pad_cols : 0) / 2;
  if (!elements_ok(cfg->batch, g.out_rows, g.out_cols, cfg->out_channels)) return INVRES_ERR_SIZE_OVERFLOW;
  if (geo != NULL) *geo = g;
  return INVRES_OK;
}

invres_status invres_layout(const invres_config* cfg, invres_geometry* geo, int32_t* ring_cols,
                            invres_scratch_layout* s, uint32_t* prepared_bytes) {
  const invres_status status = invres_validate_config(cfg, geo);
  uint64_t at = 0, channels, prepared;
  int k;
  if (status != INVRES_OK) return status;
  *ring_cols = (geo->out_cols - 1) * cfg->stride + INVRES_KERNEL_SIZE;
  channels = (uint64_t)(cfg->expand ? cfg->expanded_channels : 0) + (uint64_t)cfg->expanded_channels +
             (uint64_t)cfg->out_channels;
  prepared = INVRES_PREPARED_HEADER_BYTES + 8u * channels;
  {
    const uint64_t per_stage[3] = {cfg->expand ? (uint64_t)cfg->expanded_channels : 0u,
                                   (uint64_t)cfg->expanded_channels, (uint64_t)cfg->out_channels};
    for (k = 0; k < 3; ++k) {
      s->records[k] = (uint32_t)at;
      at += 16u * per_stage[k];
    }
    at = align8(at);
  }
  s->tables = (uint32_t)at;
  at += cfg->residual ? 2048u : 0u;
  s->ring = (uint32_t)at;
  at = align8(at + 3u * (uint64_t)*ring_cols * (uint64_t)cfg->expanded_channels);
  s->expand_buffer = (uint32_t)at;
  at = align8(at + (cfg->expand ? 8u * (((uint64_t)cfg->in_channels + 3u) & ~(uint64_t)3u) : 0u));
  s->project_buffer = (uint32_t)at;
  at = align8(at + 8u * (((uint64_t)cfg->expanded_channels + 3u) & ~(uint64_t)3u));
  if (at > 0xFFFFFFFFu || prepared > 0xFFFFFFFFu) return INVRES_ERR_SIZE_OVERFLOW;
  s->total = (uint32_t)at;
  *prepared_bytes = (uint32_t)prepared;
  return INVRES_OK;
}

invres_status invres_quantize_multiplier(double m, int32_t* multiplier, int32_t* shift) {
  switch (i8_quantize_multiplier(m, multiplier, shift)) {
    case I8_QM_OK:
      return INVRES_OK;
    case I8_QM_BAD_SCALE:
      return INVRES_ERR_BAD_SCALE;
    default:
      return INVRES_ERR_MULTIPLIER_RANGE;
  }
}

/* kernel_util.cc Quantize(): zero_point + TfLiteRound(value / scale), the division in float. */
static invres_status quantize_bound(float value, float scale, int32_t zero_point, int32_t* q) {
  const float t = value / scale;
  const double d = (double)t; /* a float plus 0.5 is exact in double: rounding half away from zero */
  double r;
  if (!(d < 1073741824.0 && d > -1073741824.0)) return INVRES_ERR_ACTIVATION_RANGE;
  r = d >= 0 ? (double)(int64_t)(d + 0.5) : -(double)(int64_t)(-d + 0.5);
  if (!(r < 1073741824.0 && r > -1073741824.0)) return INVRES_ERR_ACTIVATION_RANGE;
  *q = zero_point + (int32_t)r;
  return INVRES_OK;
}

invres_status invres_activation_range(int32_t activation, float scale, int32_t zero_point, int32_t* lo, int32_t* hi) {
  int32_t q;
  invres_status st;
  *lo = -128;
  *hi = 127;
  switch (activation) {
    case INVRES_ACTIVATION_NONE:
      return INVRES_OK;
    case INVRES_ACTIVATION_RELU:
      if ((st = quantize_bound(0.0f, scale, zero_point, &q)) != INVRES_OK) return st;
      if (q > *lo) *lo = q;
      return INVRES_OK;
    case INVRES_ACTIVATION_RELU_N1_TO_1:
      if ((st = quantize_bound(-1.0f, scale, zero_point, &q)) != INVRES_OK) return st;
      if (q > *lo) *lo = q;
      if ((st = quantize_bound(1.0f, scale, zero_point, &q)) != INVRES_OK) return st;
      if (q < *hi) *hi = q;
      return INVRES_OK;
    case INVRES_ACTIVATION_RELU6:
      if ((st = quantize_bound(0.0f, scale, zero_point, &q)) != INVRES_OK) return st;
      if (q > *lo) *lo = q;
      if ((st = quantize_bound(6.0f, scale, zero_point, &q)) != INVRES_OK) return st;
      if (q < *hi) *hi = q;
      return INVRES_OK;
    default:
      return INVRES_ERR_BAD_ACTIVATION;
  }
}

size_t invres_s8_prepared_bytes(const invres_config* cfg) {
  invres_geometry geo;
  invres_scratch_layout s;
  int32_t ring_cols;
  uint32_t prepared;
  if (invres_layout(cfg, &geo, &ring_cols, &s, &prepared) != INVRES_OK) return 0;
  return prepared;
}

size_t invres_s8_scratch_bytes(const invres_config* cfg) {
  invres_geometry geo;
  invres_scratch_layout s;
  int32_t ring_cols;
  uint32_t prepared;
  if (invres_layout(cfg, &geo, &ring_cols, &s, &prepared) != INVRES_OK) return 0;
  return s.total;
}
