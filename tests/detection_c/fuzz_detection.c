/* Fuzz target for the detector post-processing (custom_ops/detection/detection.h).
 *
 * The input is a stream of choices: each field of the dims, params and tensors is
 * either a raw 32-bit value (anything: negative, huge, NaN, infinities) or a value
 * from a small plausible range, so both the rejections and detection_run's deep
 * paths (heaps, NMS, top-k) are reached. Tensors are allocated with exactly the
 * element count they claim, the scratch with exactly the bytes passed, the boxes
 * with exactly the capacity passed: ASan reports any access beyond them. float32
 * maps hold arbitrary bit patterns (NaN and infinities included).
 *
 * libFuzzer: clang -fsanitize=fuzzer,address,undefined ...; without it,
 * -DDETECTION_FUZZ_STANDALONE adds a main() feeding pseudo-random inputs:
 *   ./fuzz <iterations> <seed>   prints how many runs reached each outcome. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "detection.h"

static unsigned long g_ran_ok, g_boxes_found, g_rejected;

typedef struct {
  const uint8_t* data;
  size_t size, at;
} stream;

static uint32_t next_u32(stream* s) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | (s->at < s->size ? s->data[s->at++] : 0u);
  return v;
}

/* mode 0: raw; 1: around the edges; else lo..hi. */
static int32_t next_int(stream* s, int32_t lo, int32_t hi) {
  const uint32_t mode = next_u32(s) % 16u, raw = next_u32(s);
  if (mode == 0) return (int32_t)raw;
  if (mode == 1) return lo - 1 + (int32_t)(raw % 3u);
  return lo + (int32_t)(raw % (uint32_t)(hi - lo + 1));
}

static float next_float(stream* s, float lo, float hi) {
  const uint32_t mode = next_u32(s) % 16u, raw = next_u32(s);
  float f;
  if (mode == 0) {
    memcpy(&f, &raw, sizeof f);
    return f;
  }
  return lo + (hi - lo) * (float)(raw % 1001u) / 1000.0f;
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  stream s = {data, size, 0};
  detection_dims dims;
  memset(&dims, 0, sizeof dims);
  dims.image_rows = next_int(&s, 1, 64);
  dims.image_cols = next_int(&s, 1, 64);
  dims.num_heads = next_int(&s, 1, 3);
  dims.num_classes = next_int(&s, 2, 4);
  dims.maxout_first = next_int(&s, 0, 1);
  for (int h = 0; h < DETECTION_MAX_HEADS; ++h) {
    dims.heads[h].rows = next_int(&s, 1, 6);
    dims.heads[h].cols = next_int(&s, 1, 6);
    dims.heads[h].stride = next_int(&s, 1, 16);
    dims.heads[h].anchor = next_float(&s, 1.0f, 64.0f);
  }
  detection_params params;
  params.variance_center = next_float(&s, 0.05f, 0.3f);
  params.variance_size = next_float(&s, 0.05f, 0.3f);
  params.conf_threshold = next_float(&s, 0.0f, 0.6f);
  params.nms_iou = next_float(&s, 0.0f, 1.0f);
  params.nms_top_k = next_int(&s, 1, 40);
  params.top_k = next_int(&s, 1, 40);

  (void)detection_status_str((detection_status)next_u32(&s));
  (void)detection_status_name((detection_status)next_u32(&s));
  const detection_status valid = detection_validate(&dims, &params);
  const size_t needed = detection_scratch_bytes(&dims, &params);
  const int32_t priors = detection_num_priors(&dims);
  float prior[4];
  (void)detection_prior(&dims, next_int(&s, 0, priors), prior);
  if ((valid == DETECTION_OK) != (needed > 0)) abort(); /* the size function agrees with the validator */
  if (valid != DETECTION_OK || priors > 4096 || needed > (1u << 20)) {
    ++g_rejected;
    return 0;
  }

  /* Tensors of the claimed sizes; the claims are right most of the time. */
  detection_tensor tensors[2 * DETECTION_MAX_HEADS];
  void* owned[2 * DETECTION_MAX_HEADS] = {0};
  const int32_t count = 2 * dims.num_heads;
  for (int32_t i = 0; i < count; ++i) {
    const detection_head* head = &dims.heads[i / 2];
    const int32_t channels = (i % 2 == 0) ? 4 : dims.num_classes + ((i == 1 && dims.maxout_first) ? 2 : 0);
    int32_t elements = head->rows * head->cols * channels;
    if (next_u32(&s) % 16u == 0) { /* a wrong claim: one less, one more, none, negative */
      const int32_t wrong[4] = {elements - 1, elements + 1, 0, -5};
      elements = wrong[next_u32(&s) % 4u];
    }
    const int32_t type = next_u32(&s) % 32u == 0 ? (int32_t)next_u32(&s) : (int32_t)(next_u32(&s) & 1u);
    const size_t bytes = (size_t)(elements > 0 ? elements : 0) * (type == DETECTION_FLOAT32 ? 4u : 1u);
    uint8_t* buffer = (uint8_t*)malloc(bytes ? bytes : 1);
    for (size_t b = 0; b < bytes; ++b) buffer[b] = (uint8_t)next_u32(&s);
    if (type == DETECTION_FLOAT32 && next_u32(&s) % 2u) { /* mostly small floats, sometimes raw bits */
      for (size_t e = 0; e < bytes / 4; ++e) ((float*)(void*)buffer)[e] = next_float(&s, -8.0f, 8.0f);
    }
    owned[i] = buffer;
    tensors[i].data = next_u32(&s) % 64u == 0 ? NULL : buffer;
    tensors[i].type = type;
    tensors[i].elements = elements;
    tensors[i].scale = next_float(&s, 0.01f, 0.5f);
    tensors[i].zero_point = next_int(&s, -128, 127);
  }
  const size_t scratch_bytes = next_u32(&s) % 16u == 0 ? needed - (next_u32(&s) % (needed + 1)) : needed;
  void* scratch = malloc(scratch_bytes ? scratch_bytes : 1);
  const int32_t capacity = next_u32(&s) % 16u == 0 ? (int32_t)(next_u32(&s) % (uint32_t)params.top_k) : params.top_k;
  detection_box* boxes = (detection_box*)malloc(sizeof(detection_box) * (size_t)(capacity > 0 ? capacity : 1));
  int32_t found = -1;
  const detection_status status =
      detection_run(&dims, &params, tensors, scratch, scratch_bytes, boxes, capacity, &found);
  if (status == DETECTION_OK) {
    if (found < 0 || found > params.top_k) abort();
    for (int32_t i = 0; i < found; ++i) { /* labels and priors in range, scores above the threshold, in order */
      if (boxes[i].label < 1 || boxes[i].label >= dims.num_classes || boxes[i].prior < 0 || boxes[i].prior >= priors)
        abort();
      if (!(boxes[i].score > params.conf_threshold)) abort();
      if (i > 0 && boxes[i].score > boxes[i - 1].score) abort();
    }
    ++g_ran_ok;
    g_boxes_found += (unsigned long)found;
  } else if (found != 0) {
    abort();
  }
  free(boxes);
  free(scratch);
  for (int32_t i = 0; i < count; ++i) free(owned[i]);
  return 0;
}

#ifdef DETECTION_FUZZ_STANDALONE
#include <stdio.h>

static uint32_t xorshift(uint32_t* state) {
  uint32_t x = *state;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  return *state = x;
}

int main(int argc, char** argv) {
  const long iterations = argc > 1 ? atol(argv[1]) : 10000;
  uint32_t seed = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 10) : 1u;
  static uint8_t buffer[8192];
  if (seed == 0) seed = 1;
  for (long it = 0; it < iterations; ++it) {
    const size_t n = xorshift(&seed) % sizeof(buffer);
    for (size_t i = 0; i < n; ++i) buffer[i] = (uint8_t)xorshift(&seed);
    LLVMFuzzerTestOneInput(buffer, n);
  }
  printf("done iterations=%ld ran_ok=%lu boxes=%lu rejected=%lu\n", iterations, g_ran_ok, g_boxes_found, g_rejected);
  return 0;
}
#endif
