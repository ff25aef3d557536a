/* See invres_harness.h. */
#include "invres_harness.h"

#include <string.h>

invres_s8_constants invres_case_constants(const invres_case* c) {
  invres_s8_constants k;
  k.expand_weights = c->cfg.expand ? c->params.expand.weights : NULL;
  k.expand_bias = c->cfg.expand ? c->params.expand.bias : NULL;
  k.depthwise_weights = c->params.depthwise_filter.weights;
  k.depthwise_bias = c->params.depthwise_filter.bias;
  k.project_weights = c->params.project.weights;
  k.project_bias = c->params.project.bias;
  return k;
}

static int fail(invres_result* r, invres_status status, const char* stage) {
  if (status == INVRES_OK) return 0;
  r->status = status;
  r->stage = stage;
  return 1;
}

void invres_harness_run(const invres_case* c, const invres_buffers* b, invres_result* r) {
  const invres_s8_constants k = invres_case_constants(c);
  uint64_t start = 0;
  size_t i;
  memset(r, 0, sizeof(*r));
  r->stage = "";
  r->prepared_bytes = invres_s8_prepared_bytes(&c->cfg);
  r->scratch_bytes = invres_s8_scratch_bytes(&c->cfg);
  if (r->prepared_bytes == 0 || r->scratch_bytes == 0) {
    fail(r, invres_s8_validate(&c->cfg, &c->params), "sizes");
    if (r->status == INVRES_OK) fail(r, INVRES_ERR_SIZE_OVERFLOW, "sizes");
    return;
  }
  if (r->prepared_bytes > b->prepared_capacity || r->scratch_bytes > b->scratch_capacity ||
      c->output_elements > b->output_capacity) {
    fail(r, INVRES_ERR_BUFFER_TOO_SMALL, "harness buffers");
    return;
  }
  if (fail(r, invres_s8_prepare(&c->cfg, &c->params, b->prepared, r->prepared_bytes), "prepare")) return;
  memset(b->output, 0x5A, c->output_elements);
  if (b->clock != NULL) start = b->clock();
  const invres_status st = invres_s8_eval(b->prepared, &k, c->input, b->output, b->scratch, r->scratch_bytes);
  if (b->clock != NULL) r->eval_ticks = b->clock() - start;
  if (fail(r, st, "eval")) return;
  for (i = 0; i < c->output_elements; ++i) r->mismatches += b->output[i] != c->expected[i];
}
