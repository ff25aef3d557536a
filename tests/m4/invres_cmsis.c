/* Benchmark: the fused InvertedResidual kernel against the CMSIS-NN kernels TFLM
 * runs for the unfused block, on the bare-metal Cortex-M4 (QEMU mps2-an386:
 * the unfused block's whole maps need more RAM than the F405 has).
 *
 * For every case of the generated invres_cases.h the program runs
 *   1. the unfused block exactly as TFLM's cmsis_nn kernels call CMSIS-NN
 *      (tensorflow/lite/micro/kernels/cmsis_nn/{conv,depthwise_conv,add}.cc:
 *      arm_convolve_wrapper_s8 1x1, arm_depthwise_conv_wrapper_s8 3x3,
 *      arm_convolve_wrapper_s8 1x1, arm_elementwise_add_s8, with the dims,
 *      offsets, per-channel multipliers/shifts, clamps and scratch sizes their
 *      Prepare/Eval compute -- given here by invres_cmsis_cases.h, computed
 *      like TFLM does by rnnpool_tflm.reference), timing each call;
 *   2. the fused kernel (invres_harness_run), timed;
 * and checks both outputs against the expected bytes. Lines:
 *   calibration instructions=<n> ticks=<t>
 *   cmsis <i> <ok|FAIL> expand=<t> depthwise=<t> project=<t> add=<t> mismatches=<n>
 *   case <i> ... (invres_main.c's format: the fused kernel)
 * The CMSIS-NN objects are TFLM's library build (libtflm.a, TFLM's flags). */
#include <stdio.h>
#include <string.h>

#include "arm_nnfunctions.h"
#include "cycle_counter.h"
#include "invres_cases.h"
#include "invres_cmsis_cases.h"
#include "invres_harness.h"

static uint8_t g_prepared[INVRES_HARNESS_PREPARED_BYTES] __attribute__((aligned(8)));
static uint8_t g_scratch[INVRES_HARNESS_SCRATCH_BYTES] __attribute__((aligned(8)));
static int8_t g_output[INVRES_HARNESS_OUTPUT_BYTES] __attribute__((aligned(8)));
/* The unfused graph's tensors and CMSIS-NN's scratch. */
static int8_t g_expanded[INVRES_CMSIS_EXPANDED_BYTES] __attribute__((aligned(16)));
static int8_t g_depthwise[INVRES_CMSIS_DEPTHWISE_BYTES] __attribute__((aligned(16)));
static int8_t g_projected[INVRES_HARNESS_OUTPUT_BYTES] __attribute__((aligned(16)));
static int8_t g_unfused_output[INVRES_HARNESS_OUTPUT_BYTES] __attribute__((aligned(16)));
static uint8_t g_cmsis_scratch[INVRES_CMSIS_SCRATCH_BYTES] __attribute__((aligned(16)));

#define CALIBRATION_ITERATIONS 1000000u /* two instructions each: subs, bne */

static uint64_t calibration_ticks(void) {
  uint64_t start = cycle_counter_read();
  __asm__ volatile(
      "mov r4, %0\n"
      "1: subs r4, r4, #1\n"
      "bne 1b\n"
      :
      : "r"(CALIBRATION_ITERATIONS)
      : "r4", "cc");
  return cycle_counter_read() - start;
}

static cmsis_nn_dims dims(int32_t n, int32_t h, int32_t w, int32_t c) {
  cmsis_nn_dims d;
  d.n = n;
  d.h = h;
  d.w = w;
  d.c = c;
  return d;
}

/* CONV_2D 1x1 stride 1 VALID as cmsis_nn/conv.cc runs it. */
static arm_cmsis_nn_status conv1x1(const invres_cmsis_stage* s, const int8_t* in, cmsis_nn_dims in_dims,
                                   const invres_filter* f, int8_t* out, int32_t out_channels) {
  cmsis_nn_conv_params p;
  cmsis_nn_per_channel_quant_params q;
  cmsis_nn_context ctx;
  const cmsis_nn_dims filter = dims(1, 1, 1, in_dims.c), bias = dims(1, 1, 1, out_channels);
  const cmsis_nn_dims out_dims = dims(in_dims.n, in_dims.h, in_dims.w, out_channels);
  p.input_offset = -s->input_zero_point;
  p.output_offset = s->output_zero_point;
  p.stride.h = p.stride.w = 1;
  p.padding.h = p.padding.w = 0;
  p.dilation.h = p.dilation.w = 1;
  p.activation.min = s->activation_min;
  p.activation.max = s->activation_max;
  q.multiplier = (int32_t*)s->multipliers;
  q.shift = (int32_t*)s->shifts;
  ctx.size = arm_convolve_wrapper_s8_get_buffer_size(&p, &in_dims, &filter, &out_dims);
  ctx.buf = ctx.size > 0 ? g_cmsis_scratch : NULL;
  if (ctx.size > (int32_t)sizeof(g_cmsis_scratch)) return ARM_CMSIS_NN_ARG_ERROR;
  return arm_convolve_wrapper_s8(&ctx, &p, &q, &in_dims, in, &filter, f->weights, &bias, f->bias, &out_dims, out);
}

static int run_cmsis(int index, const invres_case* c, const invres_cmsis_case* k, uint64_t ticks[4]) {
  const invres_config* cfg = &c->cfg;
  const int32_t n = cfg->batch, h = cfg->in_rows, w = cfg->in_cols;
  const int32_t ho = (h + cfg->stride - 1) / cfg->stride, wo = (w + cfg->stride - 1) / cfg->stride;
  const int8_t* expanded = c->input;
  int8_t* projected = cfg->residual ? g_projected : g_unfused_output;
  uint64_t start;
  size_t i, mismatches = 0;
  int ok = 1;
  memset(ticks, 0, 4 * sizeof(uint64_t));
  if (cfg->expand) {
    start = cycle_counter_read();
    ok &= conv1x1(&k->expand, c->input, dims(n, h, w, cfg->in_channels), &c->params.expand, g_expanded,
                  cfg->expanded_channels) == ARM_CMSIS_NN_SUCCESS;
    ticks[0] = cycle_counter_read() - start;
    expanded = g_expanded;
  }
  { /* DEPTHWISE_CONV_2D 3x3 SAME as cmsis_nn/depthwise_conv.cc runs it */
    cmsis_nn_dw_conv_params p;
    cmsis_nn_per_channel_quant_params q;
    cmsis_nn_context ctx;
    const cmsis_nn_dims in_dims = dims(n, h, w, cfg->expanded_channels);
    const cmsis_nn_dims filter = dims(1, 3, 3, cfg->expanded_channels), bias = dims(1, 1, 1, cfg->expanded_channels);
    const cmsis_nn_dims out_dims = dims(n, ho, wo, cfg->expanded_channels);
    p.input_offset = -k->depthwise.input_zero_point;
    p.output_offset = k->depthwise.output_zero_point;
    p.ch_mult = 1;
    p.stride.h = p.stride.w = cfg->stride;
    p.padding.h = k->pad_top;
    p.padding.w = k->pad_left;
    p.dilation.h = p.dilation.w = 1;
    p.activation.min = k->depthwise.activation_min;
    p.activation.max = k->depthwise.activation_max;
    q.multiplier = (int32_t*)k->depthwise.multipliers;
    q.shift = (int32_t*)k->depthwise.shifts;
    ctx.size = arm_depthwise_conv_wrapper_s8_get_buffer_size(&p, &in_dims, &filter, &out_dims);
    ctx.buf = ctx.size > 0 ? g_cmsis_scratch : NULL;
    ok &= ctx.size <= (int32_t)sizeof(g_cmsis_scratch);
    start = cycle_counter_read();
    ok &= arm_depthwise_conv_wrapper_s8(&ctx, &p, &q, &in_dims, expanded, &filter, c->params.depthwise_filter.weights,
                                        &bias, c->params.depthwise_filter.bias, &out_dims,
                                        g_depthwise) == ARM_CMSIS_NN_SUCCESS;
    ticks[1] = cycle_counter_read() - start;
  }
  start = cycle_counter_read();
  ok &= conv1x1(&k->project, g_depthwise, dims(n, ho, wo, cfg->expanded_channels), &c->params.project, projected,
                cfg->out_channels) == ARM_CMSIS_NN_SUCCESS;
  ticks[2] = cycle_counter_read() - start;
  if (cfg->residual) { /* ADD as cmsis_nn/add.cc runs it (same shapes) */
    const int32_t* a = k->add;
    start = cycle_counter_read();
    ok &= arm_elementwise_add_s8(c->input, g_projected, a[0], a[1], a[2], a[3], a[4], a[5], a[6], g_unfused_output,
                                 a[7], a[8], a[9], a[10], a[11], (int32_t)c->output_elements) == ARM_CMSIS_NN_SUCCESS;
    ticks[3] = cycle_counter_read() - start;
  }
  for (i = 0; i < c->output_elements; ++i) mismatches += g_unfused_output[i] != c->expected[i];
  ok &= mismatches == 0;
  printf("cmsis %d %s expand=%lu depthwise=%lu project=%lu add=%lu mismatches=%lu\n", index, ok ? "ok" : "FAIL",
         (unsigned long)ticks[0], (unsigned long)ticks[1], (unsigned long)ticks[2], (unsigned long)ticks[3],
         (unsigned long)mismatches);
  return ok;
}

int main(void) {
  const invres_buffers buffers = {g_prepared, sizeof(g_prepared), g_scratch,         sizeof(g_scratch),
                                  g_output,   sizeof(g_output),   cycle_counter_read};
  int failures = 0, i;
  cycle_counter_start();
  printf("calibration instructions=%lu ticks=%lu\n", 2ul * CALIBRATION_ITERATIONS, (unsigned long)calibration_ticks());
  for (i = 0; i < INVRES_HARNESS_CASE_COUNT; ++i) {
    invres_result r;
    uint64_t ticks[4];
    const invres_case* c = &g_invres_cases[i];
    failures += !run_cmsis(i, c, &g_invres_cmsis_cases[i], ticks);
    invres_harness_run(c, &buffers, &r);
    const int ok = r.status == INVRES_OK && r.mismatches == 0;
    failures += !ok;
    printf("case %d %s status=%s stage=%s mismatches=%lu ticks=%lu prepared=%lu scratch=%lu\n", i, ok ? "ok" : "FAIL",
           invres_status_name(r.status), r.stage[0] ? r.stage : "-", (unsigned long)r.mismatches,
           (unsigned long)r.eval_ticks, (unsigned long)r.prepared_bytes, (unsigned long)r.scratch_bytes);
  }
  printf("done failures=%d\n", failures);
  return failures;
}
