/* Fuzz target for the kernel's validator, size functions, prepare and eval.
 *
 * The fuzz input is read as a stream of choices: each config field and each
 * quantization parameter is either a raw 32-bit value (anything, including
 * negative, huge, NaN, infinities) or a value from a small plausible range, so
 * that both the rejections and the deep paths (prepare and eval on small maps)
 * are reached. Whatever the validator accepts is prepared and evaluated with
 * buffers of exactly the requested sizes (ASan finds any overrun).
 *
 * libFuzzer: clang -fsanitize=fuzzer,address,undefined ...; without it,
 * -DRNNPOOL_FUZZ_STANDALONE adds a main() that feeds pseudo-random inputs:
 *   ./fuzz <iterations> <seed> */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rnnpool.h"

/* How far the inputs got (the standalone driver reports them). */
static unsigned long g_evaluated_s8, g_evaluated_f32;

typedef struct {
  const uint8_t* data;
  size_t size, at;
  int plausible; /* parameters from plausible ranges only (to reach prepare and eval) */
} stream;

static uint32_t next_u32(stream* s) {
  uint32_t v = 0;
  int i;
  for (i = 0; i < 4; ++i) v = (v << 8) | (s->at < s->size ? s->data[s->at++] : 0u);
  return v;
}

static int32_t next_dim(stream* s) {
  const uint32_t mode = next_u32(s) & 7u, raw = next_u32(s);
  switch (mode) {
    case 0:
      return (int32_t)raw; /* anything */
    case 1:
      return (int32_t)(raw % 4u) - 1; /* -1, 0, 1, 2 */
    case 2:
      return (int32_t)(raw % 300u);
    default:
      return (int32_t)(raw % 9u) + 1; /* small and valid */
  }
}

static float next_scale(stream* s) {
  const uint32_t mode = next_u32(s) & 3u, raw = next_u32(s);
  float f;
  if (mode == 0 && !s->plausible) {
    memcpy(&f, &raw, 4); /* any bit pattern */
    return f;
  }
  f = 1.0f;
  for (uint32_t e = raw % 24u; e > 0; --e) f *= 0.5f;
  return f * (1.0f + (float)(raw >> 24) / 256.0f);
}

static int32_t next_in(stream* s, int32_t lo, int32_t hi) {
  const uint32_t mode = next_u32(s) & 7u, raw = next_u32(s);
  if (mode == 0 && !s->plausible) return (int32_t)raw;
  return lo + (int32_t)(raw % (uint32_t)(hi - lo + 1));
}

static uint32_t xorshift(uint32_t* state) {
  uint32_t x = *state;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  return *state = x;
}

static void* filled(size_t bytes, uint32_t* seed) {
  uint8_t* p = (uint8_t*)malloc(bytes ? bytes : 1);
  size_t i;
  for (i = 0; i < bytes; ++i) p[i] = (uint8_t)xorshift(seed);
  return p;
}

/* Small enough to evaluate inside one fuzz iteration. */
static int small(const rnnpool_config* c, size_t prepared, size_t scratch) {
  const int64_t in = (int64_t)c->batch * c->in_rows * c->in_cols * c->channels;
  return in <= 4096 && prepared <= (1u << 20) && scratch <= (1u << 22) && c->hidden1 <= 32 && c->hidden2 <= 32;
}

/* The op run with its output overlapping its input at the in-place lag, in a
 * buffer of exactly the bytes the two span, gives the separate run's output. */
static void check_inplace(const rnnpool_config* cfg, const void* prep, const int8_t* in, size_t in_n, const int8_t* out,
                          size_t out_n, void* scr, size_t scratch) {
  int64_t lag;
  size_t in_at, out_at, span;
  uint8_t* both;
  if (rnnpool_s8_inplace_lag(cfg, &lag) != RNNPOOL_OK) abort();
  if (lag < -(int64_t)in_n) abort(); /* documented floor */
  out_at = lag < 0 ? (size_t)-lag : 0;
  in_at = (size_t)((int64_t)out_at + lag);
  span = in_at + in_n > out_at + out_n ? in_at + in_n : out_at + out_n;
  both = (uint8_t*)malloc(span);
  memcpy(both + in_at, in, in_n);
  if (rnnpool_s8_eval(prep, (const int8_t*)(both + in_at), (int8_t*)(both + out_at), scr, scratch) != RNNPOOL_OK) {
    abort();
  }
  if (memcmp(both + out_at, out, out_n) != 0) abort();
  free(both);
}

static void run_s8(const rnnpool_config* cfg, stream* s, uint32_t seed) {
  rnnpool_s8_params p;
  rnnpool_geometry geo;
  const int32_t h1 = cfg->hidden1 > 0 && cfg->hidden1 <= 256 ? cfg->hidden1 : 1;
  const int32_t h2 = cfg->hidden2 > 0 && cfg->hidden2 <= 256 ? cfg->hidden2 : 1;
  const int32_t k = cfg->channels > 0 && cfg->channels <= 64 ? cfg->channels : 1;
  float scales[4][256];
  int32_t bias1[512], bias2[512], i, j;
  int16_t scalars[4];
  size_t prepared, scratch;
  int8_t *w1, *u1, *w2, *u2;
  rnnpool_status st;
  memset(&p, 0, sizeof(p));
  p.input_scale = next_scale(s);
  p.output_scale = next_scale(s);
  p.input_zero_point = next_in(s, -128, 127);
  p.output_zero_point = next_in(s, -128, 127);
  for (i = 0; i < 4; ++i) {
    for (j = 0; j < 256; ++j) scales[i][j] = next_scale(s);
  }
  for (i = 0; i < 512; ++i) {
    bias1[i] = next_in(s, -(1 << 24), (1 << 24) - 1);
    bias2[i] = next_in(s, -(1 << 24), (1 << 24) - 1);
  }
  for (i = 0; i < 4; ++i) scalars[i] = (int16_t)next_in(s, 0, 16384);
  w1 = (int8_t*)filled((size_t)h1 * (size_t)k, &seed);
  u1 = (int8_t*)filled((size_t)h1 * (size_t)h1, &seed);
  w2 = (int8_t*)filled((size_t)h2 * (size_t)h1, &seed);
  u2 = (int8_t*)filled((size_t)h2 * (size_t)h2, &seed);
  p.w1 = w1;
  p.u1 = u1;
  p.w2 = w2;
  p.u2 = u2;
  p.w1_scale = scales[0];
  p.u1_scale = scales[1];
  p.w2_scale = scales[2];
  p.u2_scale = scales[3];
  p.w1_scale_count = next_in(s, 1, 1) == 1 ? (next_u32(s) & 1u ? h1 : 1) : 2; /* 2: wrong unless h1 = 2 */
  p.u1_scale_count = next_u32(s) & 1u ? h1 : 1;
  p.w2_scale_count = next_u32(s) & 1u ? h2 : 1;
  p.u2_scale_count = next_u32(s) & 1u ? h2 : 1;
  p.bias1 = bias1;
  p.bias2 = bias2;
  p.scalars = scalars;

  st = rnnpool_s8_validate(cfg, &p);
  (void)rnnpool_status_str(st);
  prepared = rnnpool_s8_prepared_bytes(cfg);
  scratch = rnnpool_s8_scratch_bytes(cfg);
  /* The validator's verdict and the buffers must agree with the arrays we built. */
  if (st == RNNPOOL_OK && cfg->hidden1 == h1 && cfg->hidden2 == h2 && cfg->channels == k &&
      rnnpool_validate_config(cfg, &geo) == RNNPOOL_OK && small(cfg, prepared, scratch)) {
    void* prep = malloc(prepared);
    void* scr = malloc(scratch);
    const size_t in_n = (size_t)cfg->batch * (size_t)cfg->in_rows * (size_t)cfg->in_cols * (size_t)k;
    const size_t out_n =
        (size_t)cfg->batch * (size_t)geo.padded_out_rows * (size_t)geo.padded_out_cols * 4u * (size_t)h2;
    int8_t* in = (int8_t*)filled(in_n, &seed);
    int8_t* out = (int8_t*)malloc(out_n);
    if (rnnpool_s8_prepare(cfg, &p, prep, prepared) != RNNPOOL_OK) abort(); /* validate said OK */
    if (rnnpool_s8_eval(prep, in, out, scr, scratch) != RNNPOOL_OK) abort();
    if (rnnpool_s8_eval(prep, in, out, scr, scratch - 1) != RNNPOOL_ERR_BUFFER_TOO_SMALL) abort();
    check_inplace(cfg, prep, in, in_n, out, out_n, scr, scratch);
    ++g_evaluated_s8;
    free(prep);
    free(scr);
    free(in);
    free(out);
  }
  free(w1);
  free(u1);
  free(w2);
  free(u2);
}

static void run_f32(const rnnpool_config* cfg, stream* s, uint32_t seed) {
  rnnpool_f32_params p;
  rnnpool_geometry geo;
  float scalars[4], *arrays[6];
  size_t prepared, scratch, counts[6];
  int i;
  if (rnnpool_validate_config(cfg, &geo) != RNNPOOL_OK || cfg->channels > 64) return;
  prepared = rnnpool_f32_prepared_bytes(cfg);
  scratch = rnnpool_f32_scratch_bytes(cfg);
  if (!small(cfg, prepared, scratch)) return;
  counts[0] = (size_t)cfg->hidden1 * (size_t)cfg->channels;
  counts[1] = (size_t)cfg->hidden1 * (size_t)cfg->hidden1;
  counts[2] = 2u * (size_t)cfg->hidden1;
  counts[3] = (size_t)cfg->hidden2 * (size_t)cfg->hidden1;
  counts[4] = (size_t)cfg->hidden2 * (size_t)cfg->hidden2;
  counts[5] = 2u * (size_t)cfg->hidden2;
  for (i = 0; i < 6; ++i) {
    size_t j;
    arrays[i] = (float*)malloc(counts[i] * sizeof(float));
    for (j = 0; j < counts[i]; ++j) arrays[i][j] = (float)(int32_t)(xorshift(&seed) % 2001u) / 1000.0f - 1.0f;
  }
  for (i = 0; i < 4; ++i) scalars[i] = next_scale(s);
  p.w1 = arrays[0];
  p.u1 = arrays[1];
  p.bias1 = arrays[2];
  p.w2 = arrays[3];
  p.u2 = arrays[4];
  p.bias2 = arrays[5];
  p.scalars = scalars;
  if (rnnpool_f32_validate(cfg, &p) == RNNPOOL_OK) {
    void* prep = malloc(prepared);
    void* scr = malloc(scratch);
    const size_t in_n = (size_t)cfg->batch * (size_t)cfg->in_rows * (size_t)cfg->in_cols * (size_t)cfg->channels;
    const size_t out_n =
        (size_t)cfg->batch * (size_t)geo.padded_out_rows * (size_t)geo.padded_out_cols * 4u * (size_t)cfg->hidden2;
    float* in = (float*)malloc(in_n * sizeof(float));
    float* out = (float*)malloc(out_n * sizeof(float));
    size_t j;
    for (j = 0; j < in_n; ++j) in[j] = (float)(int32_t)(xorshift(&seed) % 2001u) / 500.0f - 2.0f;
    if (rnnpool_f32_prepare(cfg, &p, prep, prepared) != RNNPOOL_OK) abort();
    if (rnnpool_f32_eval(prep, in, out, scr, scratch) != RNNPOOL_OK) abort();
    ++g_evaluated_f32;
    free(prep);
    free(scr);
    free(in);
    free(out);
  }
  for (i = 0; i < 6; ++i) free(arrays[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  stream s = {data, size, 0, 0};
  rnnpool_config cfg;
  rnnpool_geometry geo;
  uint32_t seed = 0x9E3779B9u;
  size_t i;
  for (i = 0; i < size; ++i) seed = seed * 31u + data[i];
  if (seed == 0) seed = 1;
  s.plausible = (int)(next_u32(&s) & 1u);
  cfg.batch = next_dim(&s);
  cfg.in_rows = next_dim(&s);
  cfg.in_cols = next_dim(&s);
  cfg.channels = next_dim(&s);
  cfg.patch_rows = next_dim(&s);
  cfg.patch_cols = next_dim(&s);
  cfg.stride_rows = next_dim(&s);
  cfg.stride_cols = next_dim(&s);
  cfg.padding = next_in(&s, 0, 1);
  cfg.hidden1 = next_dim(&s);
  cfg.hidden2 = next_dim(&s);
  cfg.gate_activation = next_in(&s, 0, 1);
  cfg.update_activation = next_in(&s, 0, 1);
  cfg.output_pad_bottom = next_in(&s, 0, 2);
  cfg.output_pad_right = next_in(&s, 0, 2);
  cfg.rnn1_mode = next_in(&s, 0, 1);
  (void)rnnpool_validate_config(&cfg, &geo);
  (void)rnnpool_validate_config(&cfg, NULL);
  {
    int64_t lag;
    const rnnpool_status a = rnnpool_s8_inplace_lag(&cfg, &lag), b = rnnpool_validate_config(&cfg, NULL);
    if (a != b) abort(); /* the lag is defined exactly for the valid configurations */
    (void)rnnpool_f32_inplace_lag(&cfg, &lag);
  }
  (void)rnnpool_status_name((rnnpool_status)next_u32(&s));
  (void)rnnpool_status_str((rnnpool_status)next_u32(&s));
  if (next_u32(&s) & 1u) {
    run_f32(&cfg, &s, seed);
  } else {
    run_s8(&cfg, &s, seed);
  }
  return 0;
}

#ifdef RNNPOOL_FUZZ_STANDALONE
#include <stdio.h>

int main(int argc, char** argv) {
  const long iterations = argc > 1 ? atol(argv[1]) : 10000;
  uint32_t seed = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 10) : 1u;
  uint8_t buffer[4096];
  long it;
  if (seed == 0) seed = 1;
  for (it = 0; it < iterations; ++it) {
    const size_t n = xorshift(&seed) % sizeof(buffer);
    size_t i;
    for (i = 0; i < n; ++i) buffer[i] = (uint8_t)xorshift(&seed);
    LLVMFuzzerTestOneInput(buffer, n);
  }
  printf("done iterations=%ld evaluated_s8=%lu evaluated_f32=%lu\n", iterations, g_evaluated_s8, g_evaluated_f32);
  return 0;
}
#endif
