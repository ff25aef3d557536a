/* Fuzz target for the InvertedResidual kernel's validator, size functions,
 * prepare and eval.
 *
 * The fuzz input is read as a stream of choices: each config field and each
 * quantization parameter is either a raw 32-bit value (anything, including
 * negative, huge, NaN, infinities) or a value from a small plausible range, so
 * that both the rejections and the deep paths (prepare and eval on small maps)
 * are reached. Whatever the validator accepts is prepared and evaluated with
 * buffers of exactly the requested sizes (ASan finds any overrun), and
 * prepare/eval must accept what the validator accepted.
 *
 * libFuzzer: clang -fsanitize=fuzzer,address,undefined ...; without it,
 * -DINVRES_FUZZ_STANDALONE adds a main() that feeds pseudo-random inputs:
 *   ./fuzz <iterations> <seed> */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "inverted_residual.h"

static unsigned long g_evaluated; /* how far the inputs got (the standalone driver reports it) */

static uint32_t xorshift(uint32_t* state) {
  uint32_t x = *state;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  return *state = x;
}

typedef struct {
  const uint8_t* data;
  size_t size, at;
  int plausible; /* parameters from plausible ranges only (to reach prepare and eval) */
  uint32_t tail; /* past the input's end the choices continue pseudo-randomly (seeded by the input) */
} stream;

static uint32_t next_u32(stream* s) {
  uint32_t v = 0;
  int i;
  if (s->at >= s->size) return xorshift(&s->tail);
  for (i = 0; i < 4; ++i) v = (v << 8) | (s->at < s->size ? s->data[s->at++] : 0u);
  return v;
}

static int32_t next_dim(stream* s, int32_t small_max) {
  const uint32_t mode = next_u32(s) & 7u, raw = next_u32(s);
  switch (mode) {
    case 0:
      return s->plausible ? (int32_t)(raw % (uint32_t)small_max) + 1 : (int32_t)raw; /* anything */
    case 1:
      return (int32_t)(raw % 4u) - 1; /* -1, 0, 1, 2 */
    case 2:
      return (int32_t)(raw % 5000u);
    default:
      return (int32_t)(raw % (uint32_t)small_max) + 1; /* small, valid */
  }
}

static int32_t next_in(stream* s, int32_t lo, int32_t hi) {
  const uint32_t mode = next_u32(s) & 7u, raw = next_u32(s);
  if (mode == 0 && !s->plausible) return (int32_t)raw;
  return lo + (int32_t)(raw % (uint32_t)(hi - lo + 1));
}

static float next_scale(stream* s) {
  const uint32_t mode = next_u32(s) & 7u, raw = next_u32(s);
  float f;
  if (mode == 0 && !s->plausible) {
    memcpy(&f, &raw, 4); /* any bit pattern */
    return f;
  }
  f = 1.0f;
  for (uint32_t e = raw % 16u; e > 0; --e) f *= 0.5f;
  return f * (1.0f + (float)(raw >> 24) / 256.0f) * (mode == 1 ? 0.001f : 0.05f);
}

static void* filled(size_t bytes, uint32_t* seed) {
  uint8_t* p = (uint8_t*)malloc(bytes ? bytes : 1);
  size_t i;
  for (i = 0; i < bytes; ++i) p[i] = (uint8_t)xorshift(seed);
  return p;
}

#define MAX_CHANNELS 48

static void quant(stream* s, invres_quantization* q) {
  q->scale = next_scale(s);
  q->zero_point = next_in(s, -128, 127);
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  stream s = {data, size, 0, 0, 0};
  invres_config cfg;
  invres_geometry geo;
  invres_s8_params p;
  invres_s8_constants k;
  float scales[3][MAX_CHANNELS];
  int32_t* biases[3];
  int8_t *we, *wd, *wp;
  uint32_t seed = 0x9E3779B9u;
  size_t i, prepared, scratch;
  int j, c;
  invres_status st;
  for (i = 0; i < size; ++i) seed = seed * 31u + data[i];
  if (seed == 0) seed = 1;
  s.tail = seed;
  s.plausible = (int)(next_u32(&s) & 1u);
  cfg.batch = next_dim(&s, 2);
  cfg.in_rows = next_dim(&s, 9);
  cfg.in_cols = next_dim(&s, 9);
  cfg.in_channels = next_dim(&s, 12);
  cfg.expanded_channels = next_dim(&s, MAX_CHANNELS);
  cfg.out_channels = next_dim(&s, 12);
  cfg.stride = next_in(&s, 1, 2);
  cfg.expand = next_in(&s, 0, 1);
  cfg.residual = next_in(&s, 0, 1);
  cfg.expand_activation = next_in(&s, 0, 3);
  cfg.depthwise_activation = next_in(&s, 0, 3);
  cfg.project_activation = next_in(&s, 0, 3);
  cfg.add_activation = next_in(&s, 0, 3);
  if (next_u32(&s) & 1u) { /* steer towards consistent structures */
    if (!cfg.expand) cfg.expanded_channels = cfg.in_channels, cfg.expand_activation = 0;
    if (cfg.residual)
      cfg.out_channels = cfg.in_channels, cfg.stride = 1;
    else
      cfg.add_activation = 0;
  }
  (void)invres_validate_config(&cfg, &geo);
  (void)invres_validate_config(&cfg, NULL);
  (void)invres_status_name((invres_status)next_u32(&s));
  (void)invres_status_str((invres_status)next_u32(&s));

  memset(&p, 0, sizeof(p));
  quant(&s, &p.input);
  quant(&s, &p.expanded);
  quant(&s, &p.depthwise);
  quant(&s, &p.projected);
  quant(&s, &p.output);
  for (j = 0; j < 3; ++j) {
    for (c = 0; c < MAX_CHANNELS; ++c) scales[j][c] = next_scale(&s);
    biases[j] = (int32_t*)malloc(MAX_CHANNELS * sizeof(int32_t));
    for (c = 0; c < MAX_CHANNELS; ++c) biases[j][c] = next_in(&s, -(1 << 20), 1 << 20);
  }
  we = (int8_t*)filled(MAX_CHANNELS * MAX_CHANNELS, &seed);
  wd = (int8_t*)filled(9 * MAX_CHANNELS, &seed);
  wp = (int8_t*)filled(MAX_CHANNELS * MAX_CHANNELS, &seed);
  /* Per-channel scale arrays only where the harness's arrays hold them (the kernel reads
   * scale_count values, as documented). */
  {
    const int32_t ce_count = cfg.expanded_channels <= MAX_CHANNELS ? cfg.expanded_channels : 1;
    const int32_t co_count = cfg.out_channels <= MAX_CHANNELS ? cfg.out_channels : 1;
    p.expand = (invres_filter){we, biases[0], scales[0], next_u32(&s) & 1u ? ce_count : 1};
    p.depthwise_filter =
        (invres_filter){wd, next_u32(&s) & 1u ? biases[1] : NULL, scales[1], next_u32(&s) & 1u ? ce_count : 1};
    p.project = (invres_filter){wp, biases[2], scales[2], next_u32(&s) & 3u ? co_count : 2};
  }
  if ((next_u32(&s) & 15u) == 0) p.project.weights = NULL;

  st = invres_s8_validate(&cfg, &p);
  (void)invres_status_str(st);
  prepared = invres_s8_prepared_bytes(&cfg);
  scratch = invres_s8_scratch_bytes(&cfg);
  /* The arrays above hold at most MAX_CHANNELS channels: evaluate only configs that fit them. */
  if (st == INVRES_OK && cfg.in_channels <= MAX_CHANNELS && cfg.expanded_channels <= MAX_CHANNELS &&
      cfg.out_channels <= MAX_CHANNELS && invres_validate_config(&cfg, &geo) == INVRES_OK &&
      (int64_t)cfg.batch * cfg.in_rows * cfg.in_cols <= 4096) {
    void* prep = malloc(prepared);
    void* scr = malloc(scratch);
    const size_t in_n = (size_t)cfg.batch * (size_t)cfg.in_rows * (size_t)cfg.in_cols * (size_t)cfg.in_channels;
    const size_t out_n = (size_t)cfg.batch * (size_t)geo.out_rows * (size_t)geo.out_cols * (size_t)cfg.out_channels;
    int8_t* in = (int8_t*)filled(in_n, &seed);
    int8_t* out = (int8_t*)malloc(out_n);
    k = (invres_s8_constants){cfg.expand ? we : NULL, p.expand.bias, wd, p.depthwise_filter.bias, wp, p.project.bias};
    if (invres_s8_prepare(&cfg, &p, prep, prepared) != INVRES_OK) abort(); /* validate said OK */
    if (invres_s8_eval(prep, &k, in, out, scr, scratch) != INVRES_OK) abort();
    if (invres_s8_eval(prep, &k, in, out, scr, scratch - 1) != INVRES_ERR_BUFFER_TOO_SMALL) abort();
    ++g_evaluated;
    free(prep);
    free(scr);
    free(in);
    free(out);
  } else if (st != INVRES_OK && prepared > 0) {
    /* A rejected parameter set must not prepare either (the buffer stays untouched). */
    void* prep = calloc(1, prepared);
    if (invres_s8_prepare(&cfg, &p, prep, prepared) != st) abort();
    for (i = 0; i < prepared; ++i) {
      if (((const uint8_t*)prep)[i] != 0) abort();
    }
    free(prep);
  }
  free(we);
  free(wd);
  free(wp);
  for (j = 0; j < 3; ++j) free(biases[j]);
  return 0;
}

#ifdef INVRES_FUZZ_STANDALONE
#include <stdio.h>

int main(int argc, char** argv) {
  const long iterations = argc > 1 ? atol(argv[1]) : 10000;
  uint32_t seed = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 10) : 1u;
  uint8_t buffer[2048];
  long it;
  if (seed == 0) seed = 1;
  for (it = 0; it < iterations; ++it) {
    const size_t n = xorshift(&seed) % sizeof(buffer);
    size_t i;
    for (i = 0; i < n; ++i) buffer[i] = (uint8_t)xorshift(&seed);
    LLVMFuzzerTestOneInput(buffer, n);
  }
  printf("done iterations=%ld evaluated=%lu\n", iterations, g_evaluated);
  return 0;
}
#endif
