/* See harness.h. */
#include "harness.h"

#include <string.h>

void harness_case_bytes(const harness_case* c, size_t* prepared, size_t* scratch, size_t* output) {
  const int is_float = c->variant == HARNESS_FLOAT32;
  *prepared = is_float ? rnnpool_f32_prepared_bytes(&c->cfg) : rnnpool_s8_prepared_bytes(&c->cfg);
  *scratch = is_float ? rnnpool_f32_scratch_bytes(&c->cfg) : rnnpool_s8_scratch_bytes(&c->cfg);
  *output = c->output_elements * (is_float ? sizeof(float) : sizeof(int8_t));
}

static int fail(harness_result* r, rnnpool_status status, const char* stage) {
  if (status == RNNPOOL_OK) return 0;
  r->status = status;
  r->stage = stage;
  return 1;
}

static size_t compare(const harness_case* c, const void* output) {
  size_t i, mismatches = 0;
  if (c->variant == HARNESS_FLOAT32) {
    const float* got = (const float*)output;
    const float* want = (const float*)c->expected;
    for (i = 0; i < c->output_elements; ++i) {
      const float d = got[i] - want[i];
      mismatches += !(d <= c->tolerance && -d <= c->tolerance); /* NaN counts as a mismatch */
    }
  } else {
    const int8_t* got = (const int8_t*)output;
    const int8_t* want = (const int8_t*)c->expected;
    for (i = 0; i < c->output_elements; ++i) mismatches += got[i] != want[i];
  }
  return mismatches;
}

void harness_run(const harness_case* c, const harness_buffers* b, harness_result* r) {
  const int is_float = c->variant == HARNESS_FLOAT32;
  size_t output_bytes;
  uint64_t start = 0;
  rnnpool_status status;
  memset(r, 0, sizeof(*r));
  r->stage = "";
  harness_case_bytes(c, &r->prepared_bytes, &r->scratch_bytes, &output_bytes);
  if (r->prepared_bytes == 0 || r->scratch_bytes == 0) {
    fail(r, is_float ? rnnpool_f32_validate(&c->cfg, &c->f32) : rnnpool_s8_validate(&c->cfg, &c->s8), "sizes");
    if (r->status == RNNPOOL_OK) fail(r, RNNPOOL_ERR_SIZE_OVERFLOW, "sizes");
    return;
  }
  if (r->prepared_bytes > b->prepared_capacity || r->scratch_bytes > b->scratch_capacity ||
      output_bytes > b->output_capacity) {
    fail(r, RNNPOOL_ERR_BUFFER_TOO_SMALL, "harness buffers");
    return;
  }
  status = is_float ? rnnpool_f32_prepare(&c->cfg, &c->f32, b->prepared, r->prepared_bytes)
                    : rnnpool_s8_prepare(&c->cfg, &c->s8, b->prepared, r->prepared_bytes);
  if (fail(r, status, "prepare")) return;
  memset(b->output, 0x5A, output_bytes);
  if (b->clock != NULL) start = b->clock();
  status = is_float ? rnnpool_f32_eval(b->prepared, (const float*)c->input, (float*)b->output, b->scratch,
                                       r->scratch_bytes)
                    : rnnpool_s8_eval(b->prepared, (const int8_t*)c->input, (int8_t*)b->output, b->scratch,
                                      r->scratch_bytes);
  if (b->clock != NULL) r->eval_ticks = b->clock() - start;
  if (fail(r, status, "eval")) return;
  r->mismatches = compare(c, b->output);
}
