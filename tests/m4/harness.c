/* See harness.h. */
#include "harness.h"

#include <string.h>

/* In place: where the input and the output start in the output buffer
 * (input_start - output_start = lag) and the bytes the two span. */
static rnnpool_status inplace_layout(const harness_case* c, size_t* in_at, size_t* out_at, size_t* in_bytes_out,
                                     size_t* span) {
  const int is_float = c->variant == HARNESS_FLOAT32;
  const size_t element = is_float ? sizeof(float) : sizeof(int8_t);
  const size_t in_bytes =
      (size_t)c->cfg.batch * (size_t)c->cfg.in_rows * (size_t)c->cfg.in_cols * (size_t)c->cfg.channels * element;
  const size_t out_bytes = c->output_elements * element;
  int64_t lag;
  const rnnpool_status st = is_float ? rnnpool_f32_inplace_lag(&c->cfg, &lag) : rnnpool_s8_inplace_lag(&c->cfg, &lag);
  if (st != RNNPOOL_OK) return st;
  *out_at = lag < 0 ? (size_t)-lag : 0;
  *in_at = (size_t)((int64_t)*out_at + lag);
  *in_bytes_out = in_bytes;
  *span = *in_at + in_bytes > *out_at + out_bytes ? *in_at + in_bytes : *out_at + out_bytes;
  return RNNPOOL_OK;
}

void harness_case_bytes(const harness_case* c, size_t* prepared, size_t* scratch, size_t* output) {
  const int is_float = c->variant == HARNESS_FLOAT32;
  size_t in_at, out_at, in_bytes;
  *prepared = is_float ? rnnpool_f32_prepared_bytes(&c->cfg) : rnnpool_s8_prepared_bytes(&c->cfg);
  *scratch = is_float ? rnnpool_f32_scratch_bytes(&c->cfg) : rnnpool_s8_scratch_bytes(&c->cfg);
  *output = c->output_elements * (is_float ? sizeof(float) : sizeof(int8_t));
  if (c->inplace && inplace_layout(c, &in_at, &out_at, &in_bytes, output) != RNNPOOL_OK) *output = 0;
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
  size_t output_bytes, in_at = 0, out_at = 0, in_bytes, span;
  const void* input = c->input;
  void* output;
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
  output = b->output;
  if (c->inplace) { /* the input copied to where it overlaps the output at the lag */
    if (fail(r, inplace_layout(c, &in_at, &out_at, &in_bytes, &span), "inplace lag")) return;
    memcpy((uint8_t*)b->output + in_at, c->input, in_bytes);
    input = (uint8_t*)b->output + in_at;
    output = (uint8_t*)b->output + out_at;
  }
  if (b->clock != NULL) start = b->clock();
  status = is_float ? rnnpool_f32_eval(b->prepared, (const float*)input, (float*)output, b->scratch, r->scratch_bytes)
                    : rnnpool_s8_eval(b->prepared, (const int8_t*)input, (int8_t*)output, b->scratch, r->scratch_bytes);
  if (b->clock != NULL) r->eval_ticks = b->clock() - start;
  if (fail(r, status, "eval")) return;
  r->mismatches = compare(c, output);
}
