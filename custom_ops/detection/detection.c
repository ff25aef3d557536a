/* Detector post-processing (detection.h); the arithmetic is docs/detection.md's. */
#include "detection.h"

#include <math.h>
#include <string.h>

/* Every float operation is rounded on its own: no a*b+c fused into an FMA (Cortex-M4F and
 * most hosts have one; GCC fuses by default in its GNU modes, Clang within expressions). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#define DETECTION_STATUS_LIST(X)                                                                  \
  X(DETECTION_OK, "ok")                                                                           \
  X(DETECTION_ERR_NULL_POINTER, "a required pointer is NULL")                                     \
  X(DETECTION_ERR_BAD_IMAGE, "image rows or cols outside 1..DETECTION_MAX_IMAGE_SIDE")            \
  X(DETECTION_ERR_BAD_HEAD_COUNT, "head count outside 1..DETECTION_MAX_HEADS")                    \
  X(DETECTION_ERR_BAD_CLASSES, "class count outside 2..DETECTION_MAX_CLASSES or bad maxout flag") \
  X(DETECTION_ERR_BAD_HEAD, "a head's map, stride or anchor is invalid")                          \
  X(DETECTION_ERR_TOO_MANY_PRIORS, "more than DETECTION_MAX_PRIORS priors")                       \
  X(DETECTION_ERR_BAD_VARIANCE, "a variance is not a positive finite number")                     \
  X(DETECTION_ERR_BAD_THRESHOLD, "a threshold is outside [0, 1]")                                 \
  X(DETECTION_ERR_BAD_TOP_K, "a top-k outside 1..DETECTION_MAX_TOP_K")                            \
  X(DETECTION_ERR_BAD_TENSOR_TYPE, "a tensor type is neither int8 nor float32")                   \
  X(DETECTION_ERR_TENSOR_SIZE, "a tensor's element count does not match its head")                \
  X(DETECTION_ERR_BAD_SCALE, "a tensor scale is not a positive finite number")                    \
  X(DETECTION_ERR_BAD_ZERO_POINT, "a tensor zero point is outside [-128, 127]")                   \
  X(DETECTION_ERR_BUFFER_TOO_SMALL, "scratch or box buffer too small")                            \
  X(DETECTION_ERR_MISALIGNED, "scratch or float32 data not 4-byte aligned")

const char* detection_status_str(detection_status status) {
#define DETECTION_STATUS_TEXT_(code, text) \
  case code:                               \
    return text;
  switch (status) {
    DETECTION_STATUS_LIST(DETECTION_STATUS_TEXT_)
    default:
      return "unknown status";
  }
#undef DETECTION_STATUS_TEXT_
}

const char* detection_status_name(detection_status status) {
#define DETECTION_STATUS_NAME_(code, text) \
  case code:                               \
    return #code;
  switch (status) {
    DETECTION_STATUS_LIST(DETECTION_STATUS_NAME_)
    default:
      return NULL;
  }
#undef DETECTION_STATUS_NAME_
}

/* ---- exp ------------------------------------------------------------------------------------ */

/* Hex literals: the constants are float32 values exactly, on every compiler. */
#define EXP_MIN_X (-87.0f)       /* exp(-87) > FLT_MIN: results below are flushed to 0 */
#define EXP_MAX_X 88.0f          /* exp(88) < FLT_MAX: results above saturate to +inf */
#define EXP_LOG2E 0x1.715476p+0f /* 1/ln 2 */
#define EXP_LN2_HI 0x1.63p-1f    /* ln 2 = LN2_HI + LN2_LO; k * LN2_HI is exact for |k| <= 2^15 */
#define EXP_LN2_LO (-0x1.bd0106p-13f)
#define EXP_ROUNDER 0x1.8p+23f /* (v + 1.5 * 2^23) - 1.5 * 2^23 rounds v to an integer, ties to even */

float detection_expf(float x) {
  if (x != x) return x;
  if (x < EXP_MIN_X) return 0.0f;
  if (x > EXP_MAX_X) return INFINITY;
  const float k = (x * EXP_LOG2E + EXP_ROUNDER) - EXP_ROUNDER; /* round(x / ln 2), in [-126, 127] */
  const float r = (x - k * EXP_LN2_HI) - k * EXP_LN2_LO;       /* |r| <= about ln(2)/2 */
  /* exp(r) by Taylor to degree 7 (truncation below 1e-8 relative), Horner. */
  float p = 0x1.a01a02p-13f;   /* 1/7! */
  p = p * r + 0x1.6c16c2p-10f; /* 1/6! */
  p = p * r + 0x1.111112p-7f;  /* 1/5! */
  p = p * r + 0x1.555556p-5f;  /* 1/4! */
  p = p * r + 0x1.555556p-3f;  /* 1/3! */
  p = p * r + 0x1.0p-1f;       /* 1/2! */
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const uint32_t bits = (uint32_t)((int32_t)k + 127) << 23; /* 2^k, a normal float for k in [-126, 127] */
  float two_k;
  memcpy(&two_k, &bits, sizeof two_k);
  return p * two_k;
}

/* ---- validation ------------------------------------------------------------------------------ */

static int finite_positive(float v) { return v > 0.0f && v <= 3.402823466e38f; }
static int in_unit_interval(float v) { return v >= 0.0f && v <= 1.0f; } /* false for NaN */

static int32_t conf_channels(const detection_dims* dims, int32_t head) {
  return dims->num_classes + ((head == 0 && dims->maxout_first) ? DETECTION_MAXOUT_BACKGROUND - 1 : 0);
}

static detection_status validate_dims(const detection_dims* dims) {
  if (dims == NULL) return DETECTION_ERR_NULL_POINTER;
  if (dims->image_rows < 1 || dims->image_rows > DETECTION_MAX_IMAGE_SIDE || dims->image_cols < 1 ||
      dims->image_cols > DETECTION_MAX_IMAGE_SIDE)
    return DETECTION_ERR_BAD_IMAGE;
  if (dims->num_heads < 1 || dims->num_heads > DETECTION_MAX_HEADS) return DETECTION_ERR_BAD_HEAD_COUNT;
  if (dims->num_classes < 2 || dims->num_classes > DETECTION_MAX_CLASSES ||
      (dims->maxout_first != 0 && dims->maxout_first != 1))
    return DETECTION_ERR_BAD_CLASSES;
  int64_t priors = 0;
  for (int32_t h = 0; h < dims->num_heads; ++h) {
    const detection_head* head = &dims->heads[h];
    if (head->rows < 1 || head->cols < 1 || head->stride < 1 || head->rows > dims->image_rows ||
        head->cols > dims->image_cols || !finite_positive(head->anchor))
      return DETECTION_ERR_BAD_HEAD;
    /* (j + 0.5) * stride exact in float32: (2 cols - 1) * stride < 2^24. */
    if ((int64_t)head->cols * head->stride > (1 << 22) || (int64_t)head->rows * head->stride > (1 << 22))
      return DETECTION_ERR_BAD_HEAD;
    priors += (int64_t)head->rows * head->cols;
  }
  if (priors > DETECTION_MAX_PRIORS) return DETECTION_ERR_TOO_MANY_PRIORS;
  return DETECTION_OK;
}

static detection_status validate_params(const detection_params* params) {
  if (params == NULL) return DETECTION_ERR_NULL_POINTER;
  if (!finite_positive(params->variance_center) || !finite_positive(params->variance_size))
    return DETECTION_ERR_BAD_VARIANCE;
  if (!in_unit_interval(params->conf_threshold) || !in_unit_interval(params->nms_iou))
    return DETECTION_ERR_BAD_THRESHOLD;
  if (params->nms_top_k < 1 || params->nms_top_k > DETECTION_MAX_TOP_K || params->top_k < 1 ||
      params->top_k > DETECTION_MAX_TOP_K)
    return DETECTION_ERR_BAD_TOP_K;
  return DETECTION_OK;
}

detection_status detection_validate(const detection_dims* dims, const detection_params* params) {
  if (dims == NULL || params == NULL) return DETECTION_ERR_NULL_POINTER;
  const detection_status status = validate_dims(dims);
  return status != DETECTION_OK ? status : validate_params(params);
}

int32_t detection_num_priors(const detection_dims* dims) {
  if (validate_dims(dims) != DETECTION_OK) return 0;
  int32_t priors = 0;
  for (int32_t h = 0; h < dims->num_heads; ++h) priors += dims->heads[h].rows * dims->heads[h].cols;
  return priors;
}

/* ---- scratch layout ---------------------------------------------------------------------------- */

typedef struct {
  float score;
  int32_t prior;
} candidate;

typedef struct {
  size_t heaps; /* offset of the (C - 1) candidate arrays of K entries */
  size_t boxes; /* offset of K decoded boxes (4 floats each) */
  size_t flags; /* offset of K suppression flags */
  size_t total;
  int32_t k; /* min(nms_top_k, priors) */
} scratch_layout;

static size_t round8(size_t v) { return (v + 7u) & ~(size_t)7u; }

/* Sizes stay far below 2^32: K <= 2^16, C <= 32. */
static scratch_layout layout_of(const detection_dims* dims, const detection_params* params) {
  scratch_layout s;
  const int32_t priors = detection_num_priors(dims);
  s.k = params->nms_top_k < priors ? params->nms_top_k : priors;
  const size_t k = (size_t)s.k;
  s.heaps = 0;
  s.boxes = round8(sizeof(candidate) * k * (size_t)(dims->num_classes - 1));
  s.flags = s.boxes + round8(4u * sizeof(float) * k);
  s.total = s.flags + round8(k);
  return s;
}

size_t detection_scratch_bytes(const detection_dims* dims, const detection_params* params) {
  if (detection_validate(dims, params) != DETECTION_OK) return 0;
  return layout_of(dims, params).total;
}

/* ---- priors and decoding ------------------------------------------------------------------------ */

/* Head and cell of a prior index (validated dims, index in range). */
static void locate(const detection_dims* dims, int32_t index, int32_t* head, int32_t* row, int32_t* col) {
  int32_t h = 0;
  while (index >= dims->heads[h].rows * dims->heads[h].cols) {
    index -= dims->heads[h].rows * dims->heads[h].cols;
    ++h;
  }
  *head = h;
  *row = index / dims->heads[h].cols;
  *col = index % dims->heads[h].cols;
}

static void prior_box(const detection_dims* dims, int32_t head, int32_t row, int32_t col, float out[4]) {
  const detection_head* hd = &dims->heads[head];
  const float stride = (float)hd->stride;
  out[0] = ((float)col + 0.5f) * stride / (float)dims->image_cols;
  out[1] = ((float)row + 0.5f) * stride / (float)dims->image_rows;
  out[2] = hd->anchor / (float)dims->image_cols;
  out[3] = hd->anchor / (float)dims->image_rows;
}

detection_status detection_prior(const detection_dims* dims, int32_t index, float out[4]) {
  if (dims == NULL || out == NULL) return DETECTION_ERR_NULL_POINTER;
  const detection_status status = validate_dims(dims);
  if (status != DETECTION_OK) return status;
  if (index < 0 || index >= detection_num_priors(dims)) return DETECTION_ERR_BAD_HEAD;
  int32_t head, row, col;
  locate(dims, index, &head, &row, &col);
  prior_box(dims, head, row, col, out);
  return DETECTION_OK;
}

/* Element i of a head tensor as a real number: scale * (q - zero_point) for int8. */
static float tensor_value(const detection_tensor* t, int32_t i) {
  if (t->type == DETECTION_INT8) return t->scale * (float)((int32_t)((const int8_t*)t->data)[i] - t->zero_point);
  return ((const float*)t->data)[i];
}

/* Corner box of prior `index` decoded with its loc offsets (t_x, t_y, t_w, t_h). */
static void decode(const detection_dims* dims, const detection_params* params, const detection_tensor* tensors,
                   int32_t index, float box[4]) {
  int32_t head, row, col;
  locate(dims, index, &head, &row, &col);
  float prior[4];
  prior_box(dims, head, row, col, prior);
  const detection_tensor* loc = &tensors[2 * head];
  const int32_t at = (row * dims->heads[head].cols + col) * 4;
  const float cx = prior[0] + tensor_value(loc, at + 0) * params->variance_center * prior[2];
  const float cy = prior[1] + tensor_value(loc, at + 1) * params->variance_center * prior[3];
  const float w = prior[2] * detection_expf(tensor_value(loc, at + 2) * params->variance_size);
  const float h = prior[3] * detection_expf(tensor_value(loc, at + 3) * params->variance_size);
  box[0] = cx - w / 2.0f;
  box[1] = cy - h / 2.0f;
  box[2] = cx + w / 2.0f;
  box[3] = cy + h / 2.0f;
}

/* max/min that return NaN when either argument is NaN (NumPy's maximum/minimum). */
static float max_nan(float a, float b) { return (a >= b || a != a) ? a : b; }
static float min_nan(float a, float b) { return (a <= b || a != a) ? a : b; }

static float area(const float* b) { return max_nan(b[2] - b[0], 0.0f) * max_nan(b[3] - b[1], 0.0f); }

static float iou(const float* a, const float* b) {
  const float w = max_nan(min_nan(a[2], b[2]) - max_nan(a[0], b[0]), 0.0f);
  const float h = max_nan(min_nan(a[3], b[3]) - max_nan(a[1], b[1]), 0.0f);
  const float inter = w * h;
  const float uni = area(a) + area(b) - inter;
  return uni > 0.0f ? inter / max_nan(uni, 0x1.197998p-40f /* 1e-12 as float32 */) : 0.0f;
}

/* ---- ranking -------------------------------------------------------------------------------------- */

/* The order of detections within a class: higher score first, then lower prior. */
static int ranks_before(const candidate* a, const candidate* b) {
  return a->score > b->score || (a->score == b->score && a->prior < b->prior);
}

/* A bounded heap keeping the best `capacity` candidates; its root is the worst kept. */
static void sift_down(candidate* heap, int32_t count, int32_t i) {
  for (;;) {
    const int32_t left = 2 * i + 1, right = left + 1;
    int32_t worst = i;
    if (left < count && ranks_before(&heap[worst], &heap[left])) worst = left;
    if (right < count && ranks_before(&heap[worst], &heap[right])) worst = right;
    if (worst == i) return;
    const candidate tmp = heap[i];
    heap[i] = heap[worst];
    heap[worst] = tmp;
    i = worst;
  }
}

static void heap_offer(candidate* heap, int32_t* count, int32_t capacity, candidate c) {
  if (*count < capacity) {
    int32_t i = (*count)++;
    heap[i] = c;
    while (i > 0) { /* sift up: a parent must rank after its children */
      const int32_t parent = (i - 1) / 2;
      if (!ranks_before(&heap[parent], &heap[i])) break;
      const candidate tmp = heap[i];
      heap[i] = heap[parent];
      heap[parent] = tmp;
      i = parent;
    }
  } else if (ranks_before(&c, &heap[0])) {
    heap[0] = c;
    sift_down(heap, *count, 0);
  }
}

/* Heap sort: afterwards heap[0 .. count-1] is in rank order, best first. */
static void heap_sort(candidate* heap, int32_t count) {
  for (int32_t end = count - 1; end > 0; --end) {
    const candidate tmp = heap[0];
    heap[0] = heap[end];
    heap[end] = tmp;
    sift_down(heap, end, 0);
  }
}

/* The order of the final detections: score, then label, then prior. */
static int box_before(const detection_box* a, const detection_box* b) {
  if (a->score != b->score) return a->score > b->score;
  if (a->label != b->label) return a->label < b->label;
  return a->prior < b->prior;
}

/* Inserts into boxes[0 .. *count-1] (kept in order), keeping at most top_k. */
static void insert_box(detection_box* boxes, int32_t* count, int32_t top_k, const detection_box* box) {
  int32_t at = *count;
  while (at > 0 && box_before(box, &boxes[at - 1])) --at;
  if (at >= top_k) return;
  const int32_t last = *count < top_k ? *count : top_k - 1;
  for (int32_t i = last; i > at; --i) boxes[i] = boxes[i - 1];
  boxes[at] = *box;
  if (*count < top_k) ++*count;
}

/* ---- scores ---------------------------------------------------------------------------------------- */

/* Softmax of the prior's class logits (head 0 with max-out: background = max of its first 3 channels). */
static void class_scores(const detection_dims* dims, const detection_tensor* conf, int32_t head, int32_t cell,
                         float* scores) {
  const int32_t channels = conf_channels(dims, head);
  const int32_t base = cell * channels;
  const int32_t extra = channels - dims->num_classes; /* 2 with max-out, else 0 */
  float logits[DETECTION_MAX_CLASSES];
  if (extra > 0) {
    float background = tensor_value(conf, base);
    for (int32_t c = 1; c <= extra; ++c) background = max_nan(background, tensor_value(conf, base + c));
    logits[0] = background;
  } else {
    logits[0] = tensor_value(conf, base);
  }
  for (int32_t c = 1; c < dims->num_classes; ++c) logits[c] = tensor_value(conf, base + extra + c);
  float top = logits[0];
  for (int32_t c = 1; c < dims->num_classes; ++c) top = max_nan(top, logits[c]);
  float total = 0.0f;
  for (int32_t c = 0; c < dims->num_classes; ++c) {
    scores[c] = detection_expf(logits[c] - top);
    total = c == 0 ? scores[0] : total + scores[c];
  }
  for (int32_t c = 0; c < dims->num_classes; ++c) scores[c] = scores[c] / total;
}

/* ---- run --------------------------------------------------------------------------------------------- */

static detection_status validate_tensors(const detection_dims* dims, const detection_tensor* tensors) {
  for (int32_t h = 0; h < dims->num_heads; ++h) {
    const int32_t cells = dims->heads[h].rows * dims->heads[h].cols;
    for (int32_t which = 0; which < 2; ++which) {
      const detection_tensor* t = &tensors[2 * h + which];
      if (t->data == NULL) return DETECTION_ERR_NULL_POINTER;
      if (t->type != DETECTION_INT8 && t->type != DETECTION_FLOAT32) return DETECTION_ERR_BAD_TENSOR_TYPE;
      const int64_t want = (int64_t)cells * (which == 0 ? 4 : conf_channels(dims, h));
      if ((int64_t)t->elements != want) return DETECTION_ERR_TENSOR_SIZE;
      if (t->type == DETECTION_INT8) {
        if (!finite_positive(t->scale)) return DETECTION_ERR_BAD_SCALE;
        if (t->zero_point < -128 || t->zero_point > 127) return DETECTION_ERR_BAD_ZERO_POINT;
      } else if (((uintptr_t)t->data & 3u) != 0) {
        return DETECTION_ERR_MISALIGNED;
      }
    }
  }
  return DETECTION_OK;
}

detection_status detection_run(const detection_dims* dims, const detection_params* params,
                               const detection_tensor* tensors, void* scratch, size_t scratch_bytes,
                               detection_box* boxes, int32_t box_capacity, int32_t* box_count) {
  if (box_count == NULL) return DETECTION_ERR_NULL_POINTER;
  *box_count = 0;
  if (tensors == NULL || scratch == NULL || boxes == NULL) return DETECTION_ERR_NULL_POINTER;
  detection_status status = detection_validate(dims, params);
  if (status != DETECTION_OK) return status;
  status = validate_tensors(dims, tensors);
  if (status != DETECTION_OK) return status;
  const scratch_layout layout = layout_of(dims, params);
  if (scratch_bytes < layout.total || box_capacity < params->top_k) return DETECTION_ERR_BUFFER_TOO_SMALL;
  if (((uintptr_t)scratch & 3u) != 0) return DETECTION_ERR_MISALIGNED;

  uint8_t* base = (uint8_t*)scratch;
  candidate* heaps = (candidate*)(void*)(base + layout.heaps);
  float* decoded = (float*)(void*)(base + layout.boxes);
  uint8_t* suppressed = base + layout.flags;
  const int32_t classes = dims->num_classes;
  int32_t counts[DETECTION_MAX_CLASSES] = {0};

  /* 1. Every prior's class scores; the best K above the threshold of each class. */
  int32_t prior = 0;
  for (int32_t h = 0; h < dims->num_heads; ++h) {
    const int32_t cells = dims->heads[h].rows * dims->heads[h].cols;
    for (int32_t cell = 0; cell < cells; ++cell, ++prior) {
      float scores[DETECTION_MAX_CLASSES];
      class_scores(dims, &tensors[2 * h + 1], h, cell, scores);
      for (int32_t c = 1; c < classes; ++c) {
        if (!(scores[c] > params->conf_threshold)) continue;
        const candidate cand = {scores[c], prior};
        heap_offer(heaps + (size_t)(c - 1) * (size_t)layout.k, &counts[c], layout.k, cand);
      }
    }
  }

  /* 2. Per class, in rank order: decode, greedy NMS, merge into the output. */
  int32_t kept = 0;
  for (int32_t c = 1; c < classes; ++c) {
    candidate* heap = heaps + (size_t)(c - 1) * (size_t)layout.k;
    const int32_t n = counts[c];
    heap_sort(heap, n);
    for (int32_t i = 0; i < n; ++i) {
      decode(dims, params, tensors, heap[i].prior, &decoded[4 * i]);
      suppressed[i] = 0;
    }
    for (int32_t i = 0; i < n; ++i) {
      if (suppressed[i]) continue;
      const detection_box box = {
          decoded[4 * i], decoded[4 * i + 1], decoded[4 * i + 2], decoded[4 * i + 3], heap[i].score, c, heap[i].prior};
      insert_box(boxes, &kept, params->top_k, &box);
      for (int32_t j = i + 1; j < n; ++j) {
        if (!suppressed[j] && iou(&decoded[4 * i], &decoded[4 * j]) > params->nms_iou) suppressed[j] = 1;
      }
    }
  }
  *box_count = kept;
  return DETECTION_OK;
}
