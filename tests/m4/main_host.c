/* Host program for the sanitizer tests: reads vector files written by
 * tests/test_kernel_sanitizers.py and runs each through the harness with
 * every buffer (parameters, input, prepared, scratch, output) allocated at
 * exactly the size the kernel asks for, so AddressSanitizer sees any access
 * outside them. Prints one line per file; exit status 1 if any case fails.
 *
 * File format (little-endian): "RPV2", int32 variant, the rnnpool_config (16 int32 fields);
 * int8: float s_x, int32 zp_x, float s_y, int32 zp_y, then arrays w1, w1_scale,
 * u1, u1_scale, bias1, w2, w2_scale, u2, u2_scale, bias2, scalars, input,
 * expected; float32: float tolerance, then arrays w1, u1, bias1, w2, u2,
 * bias2, scalars, input, expected. Each array: int32 element count, data. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

typedef struct {
  const uint8_t* data;
  size_t size, at;
  int ok;
} reader;

static void take(reader* r, void* out, size_t n) {
  if (!r->ok || n > r->size - r->at) {
    r->ok = 0;
    memset(out, 0, n);
    return;
  }
  memcpy(out, r->data + r->at, n);
  r->at += n;
}

static int32_t take_i32(reader* r) {
  int32_t v;
  take(r, &v, 4);
  return v;
}

static float take_f32(reader* r) {
  float v;
  take(r, &v, 4);
  return v;
}

/* Copies the next array into its own allocation of exactly count*size bytes. */
static void* take_array(reader* r, size_t element_size, size_t expected_count, void** owned, int* n_owned) {
  const int32_t count = take_i32(r);
  void* p;
  if (!r->ok || count < 0 || (size_t)count != expected_count) {
    r->ok = 0;
    return NULL;
  }
  p = malloc(count ? (size_t)count * element_size : 1);
  take(r, p, (size_t)count * element_size);
  owned[(*n_owned)++] = p;
  return p;
}

static int run_file(const char* path) {
  FILE* f = fopen(path, "rb");
  uint8_t* data;
  long size;
  reader r;
  harness_case c;
  harness_buffers b;
  harness_result res;
  void* owned[16];
  int n_owned = 0, i, ok;
  char magic[4];
  size_t k, h1, h2, prepared, scratch, output, in_elems;
  if (f == NULL) {
    printf("%s: cannot open\n", path);
    return 0;
  }
  fseek(f, 0, SEEK_END);
  size = ftell(f);
  fseek(f, 0, SEEK_SET);
  data = (uint8_t*)malloc((size_t)size);
  if (fread(data, 1, (size_t)size, f) != (size_t)size) size = 0;
  fclose(f);
  r.data = data;
  r.size = (size_t)size;
  r.at = 0;
  r.ok = 1;
  memset(&c, 0, sizeof(c));
  take(&r, magic, 4);
  if (memcmp(magic, "RPV2", 4) != 0) r.ok = 0;
  c.variant = take_i32(&r);
  take(&r, &c.cfg, sizeof(c.cfg));
  k = (size_t)c.cfg.channels;
  h1 = (size_t)c.cfg.hidden1;
  h2 = (size_t)c.cfg.hidden2;
  in_elems = (size_t)c.cfg.batch * (size_t)c.cfg.in_rows * (size_t)c.cfg.in_cols * k;
  if (c.variant == HARNESS_INT8) {
    c.s8.input_scale = take_f32(&r);
    c.s8.input_zero_point = take_i32(&r);
    c.s8.output_scale = take_f32(&r);
    c.s8.output_zero_point = take_i32(&r);
    c.s8.w1_scale_count = take_i32(&r);
    c.s8.u1_scale_count = take_i32(&r);
    c.s8.w2_scale_count = take_i32(&r);
    c.s8.u2_scale_count = take_i32(&r);
    c.output_elements = (size_t)take_i32(&r);
    c.s8.w1 = (const int8_t*)take_array(&r, 1, h1 * k, owned, &n_owned);
    c.s8.w1_scale = (const float*)take_array(&r, 4, (size_t)c.s8.w1_scale_count, owned, &n_owned);
    c.s8.u1 = (const int8_t*)take_array(&r, 1, h1 * h1, owned, &n_owned);
    c.s8.u1_scale = (const float*)take_array(&r, 4, (size_t)c.s8.u1_scale_count, owned, &n_owned);
    c.s8.bias1 = (const int32_t*)take_array(&r, 4, 2 * h1, owned, &n_owned);
    c.s8.w2 = (const int8_t*)take_array(&r, 1, h2 * h1, owned, &n_owned);
    c.s8.w2_scale = (const float*)take_array(&r, 4, (size_t)c.s8.w2_scale_count, owned, &n_owned);
    c.s8.u2 = (const int8_t*)take_array(&r, 1, h2 * h2, owned, &n_owned);
    c.s8.u2_scale = (const float*)take_array(&r, 4, (size_t)c.s8.u2_scale_count, owned, &n_owned);
    c.s8.bias2 = (const int32_t*)take_array(&r, 4, 2 * h2, owned, &n_owned);
    c.s8.scalars = (const int16_t*)take_array(&r, 2, 4, owned, &n_owned);
    c.input = take_array(&r, 1, in_elems, owned, &n_owned);
    c.expected = take_array(&r, 1, c.output_elements, owned, &n_owned);
  } else {
    c.tolerance = take_f32(&r);
    c.output_elements = (size_t)take_i32(&r);
    c.f32.w1 = (const float*)take_array(&r, 4, h1 * k, owned, &n_owned);
    c.f32.u1 = (const float*)take_array(&r, 4, h1 * h1, owned, &n_owned);
    c.f32.bias1 = (const float*)take_array(&r, 4, 2 * h1, owned, &n_owned);
    c.f32.w2 = (const float*)take_array(&r, 4, h2 * h1, owned, &n_owned);
    c.f32.u2 = (const float*)take_array(&r, 4, h2 * h2, owned, &n_owned);
    c.f32.bias2 = (const float*)take_array(&r, 4, 2 * h2, owned, &n_owned);
    c.f32.scalars = (const float*)take_array(&r, 4, 4, owned, &n_owned);
    c.input = take_array(&r, 4, in_elems, owned, &n_owned);
    c.expected = take_array(&r, 4, c.output_elements, owned, &n_owned);
  }
  if (!r.ok || r.at != r.size) {
    printf("%s: malformed vector file\n", path);
    ok = 0;
  } else {
    harness_case_bytes(&c, &prepared, &scratch, &output);
    /* Exact sizes: one byte more would hide an overrun from ASan. */
    b.prepared = malloc(prepared ? prepared : 1);
    b.prepared_capacity = prepared;
    b.scratch = malloc(scratch ? scratch : 1);
    b.scratch_capacity = scratch;
    b.output = malloc(output ? output : 1);
    b.output_capacity = output;
    b.clock = NULL;
    harness_run(&c, &b, &res);
    ok = res.status == RNNPOOL_OK && res.mismatches == 0;
    printf("%s: %s status=%s stage=%s mismatches=%lu prepared=%lu scratch=%lu\n", path, ok ? "ok" : "FAIL",
           rnnpool_status_name(res.status), res.stage[0] ? res.stage : "-", (unsigned long)res.mismatches,
           (unsigned long)res.prepared_bytes, (unsigned long)res.scratch_bytes);
    free(b.prepared);
    free(b.scratch);
    free(b.output);
  }
  for (i = 0; i < n_owned; ++i) free(owned[i]);
  free(data);
  return ok;
}

int main(int argc, char** argv) {
  int i, failures = 0;
  for (i = 1; i < argc; ++i) failures += !run_file(argv[i]);
  printf("done files=%d failures=%d\n", argc - 1, failures);
  return failures != 0;
}
