// TFLM registration of the InvertedResidual custom op (see inverted_residual_tflm.h).
//
// Everything the model supplies is checked before the kernel sees it: the
// options (Init: inverted_residual_options.cc), then in Prepare the input and
// output counts, which optional inputs are present against the options, the
// types, that everything but the input is constant, ranks and dims against
// each other and the options, the quantization (per tensor for activations
// and the quantization carriers; 1 or one-per-channel symmetric scales along
// the contract's dimension for filters). The C core's validator then checks
// values (scales, zero points, multipliers, activation ranges, the ADD's
// rescaling, overflow-safe sizes). Any problem is one MicroPrintf line naming
// it and kTfLiteError; Eval only runs what Prepare accepted.
#include "inverted_residual_tflm.h"

#include <stddef.h>
#include <stdint.h>

#include "inverted_residual.h"
#include "inverted_residual_op_contract.h"
#include "inverted_residual_options.h"
#include "tflm_op_checks.h"
#include "tensorflow/lite/c/common.h"
#include "tensorflow/lite/kernels/kernel_util.h"
#include "tensorflow/lite/micro/kernels/kernel_util.h"
#include "tensorflow/lite/micro/micro_context.h"
#include "tensorflow/lite/micro/micro_log.h"

namespace tflite {
namespace {

// ---- the contract, as tables ------------------------------------------------

enum InputIndex {
#define INVRES_X_ENUM(ENUM, INDEX, NAME, INT8_TYPE, FLOAT_TYPE, SHAPE, PRESENCE) kInput##ENUM = INDEX,
  INVRES_INPUTS(INVRES_X_ENUM)
#undef INVRES_X_ENUM
};

#define INVRES_TYPE_INT8 kTfLiteInt8
#define INVRES_TYPE_INT32 kTfLiteInt32
#define INVRES_PRESENCE_REQUIRED false
#define INVRES_PRESENCE_OPTIONAL true

struct TensorRule {
  const char* name;
  TfLiteType type;
  bool optional;
};

constexpr TensorRule kInputRules[INVRES_NUM_INPUTS] = {
#define INVRES_X_RULE(ENUM, INDEX, NAME, INT8_TYPE, FLOAT_TYPE, SHAPE, PRESENCE) \
  {NAME, INVRES_TYPE_##INT8_TYPE, INVRES_PRESENCE_##PRESENCE},
    INVRES_INPUTS(INVRES_X_RULE)
#undef INVRES_X_RULE
};

// ---- per-node state ---------------------------------------------------------

struct OpData {
  invres::Options options;
  const void* prepared;  // the C core's prepared buffer (persistent)
  size_t scratch_bytes;
  int scratch_index;
};

void* Init(TfLiteContext* context, const char* buffer, size_t length) {
  void* raw = context->AllocatePersistentBuffer(context, sizeof(OpData));
  if (raw == nullptr) return nullptr;  // Prepare reports it
  OpData* data = static_cast<OpData*>(raw);
  data->prepared = nullptr;
  data->scratch_bytes = 0;
  data->scratch_index = -1;
  invres::ParseOptions(reinterpret_cast<const uint8_t*>(buffer), length, &data->options);
  return data;
}

// ---- Prepare ----------------------------------------------------------------

using TempTensors = tflm_op_checks::TempTensors<INVRES_NUM_INPUTS>;
using tflm_op_checks::Dim;

TfLiteStatus Fail(const char* what, const char* tensor) {
  return tflm_op_checks::Fail("InvertedResidual", what, tensor);
}

// Rank `rank`, positive dims, and `expected` (may be null; -1 = any) sizes.
TfLiteStatus CheckShape(const TfLiteTensor* t, const char* name, int rank, const int* expected) {
  return tflm_op_checks::CheckShape("InvertedResidual", t, name, rank, expected);
}

// An activation (or a quantization carrier): one scale, one zero point (the core judges the values).
TfLiteStatus Activation(const TfLiteTensor* t, const char* name, invres_quantization* out) {
  return tflm_op_checks::PerTensor("InvertedResidual", t, name, &out->scale, &out->zero_point);
}

// A filter: symmetric, 1 scale or one per output channel along dimension `dim`.
TfLiteStatus Filter(const TfLiteTensor* t, const TfLiteTensor* bias, const char* name, int dim, invres_filter* out) {
  const float* scales = nullptr;
  int32_t count = 0;
  if (tflm_op_checks::SymmetricScales("InvertedResidual", t, name, dim, "channel", &scales, &count) != kTfLiteOk) {
    return kTfLiteError;
  }
  out->weights = t->data.int8;
  out->bias = bias != nullptr ? bias->data.i32 : nullptr;
  out->scales = scales;
  out->scale_count = count;
  return kTfLiteOk;
}

TfLiteStatus CoreStatus(invres_status status, const char* stage) {
  if (status == INVRES_OK) return kTfLiteOk;
  const char* name = invres_status_name(status);
  MicroPrintf("InvertedResidual: %s: %s (%s)", stage, invres_status_str(status), name != nullptr ? name : "?");
  return kTfLiteError;
}

// Which optional inputs must be present follows from the options.
TfLiteStatus CheckPresence(const TempTensors& t, const int32_t* o) {
  const bool expand = o[invres::kOptionEXPAND] != 0, residual = o[invres::kOptionRESIDUAL] != 0;
  struct Rule {
    bool ok;
    const char* message;
  };
  const Rule rules[] = {
      {(t.input(kInputEXPAND_FILTER) != nullptr) == expand, "option expand disagrees with the expand_filter input"},
      {(t.input(kInputEXPANDED_QUANTIZATION) != nullptr) == expand,
       "option expand disagrees with the expanded_quantization input"},
      {expand || t.input(kInputEXPAND_BIAS) == nullptr, "expand_bias without an expansion"},
      {expand || o[invres::kOptionEXPAND_ACTIVATION] == 0, "expand_activation without an expansion"},
      {(t.input(kInputPROJECTED_QUANTIZATION) != nullptr) == residual,
       "option residual disagrees with the projected_quantization input"},
      {residual || o[invres::kOptionADD_ACTIVATION] == 0, "add_activation without the residual ADD"},
  };
  for (const Rule& rule : rules) {
    if (!rule.ok) return Fail(rule.message, nullptr);
  }
  return kTfLiteOk;
}

TfLiteStatus Prepare(TfLiteContext* context, TfLiteNode* node) {
  OpData* data = static_cast<OpData*>(node->user_data);
  if (data == nullptr) return Fail("no memory for the op's data (arena too small)", nullptr);
  if (!data->options.ok) {
    MicroPrintf("InvertedResidual: bad options: %s", data->options.error);
    return kTfLiteError;
  }
  if (node->inputs == nullptr || node->inputs->size != INVRES_NUM_INPUTS) {
    MicroPrintf("InvertedResidual: needs %d inputs, has %d", INVRES_NUM_INPUTS, node->inputs ? node->inputs->size : 0);
    return kTfLiteError;
  }
  if (node->outputs == nullptr || node->outputs->size != INVRES_NUM_OUTPUTS) {
    MicroPrintf("InvertedResidual: needs %d output, has %d", INVRES_NUM_OUTPUTS,
                node->outputs ? node->outputs->size : 0);
    return kTfLiteError;
  }
  MicroContext* micro_context = GetMicroContext(context);
  TempTensors tensors(micro_context, node);
  for (int i = 0; i < INVRES_NUM_INPUTS; ++i) {
    if (tensors.input(i) == nullptr) {
      if (kInputRules[i].optional && node->inputs->data[i] == kTfLiteOptionalTensor) continue;
      return Fail("input missing", kInputRules[i].name);
    }
    if (tensors.input(i)->type != kInputRules[i].type) {
      MicroPrintf("InvertedResidual: tensor '%s' is %s, the contract needs %s", kInputRules[i].name,
                  TfLiteTypeGetName(tensors.input(i)->type), TfLiteTypeGetName(kInputRules[i].type));
      return kTfLiteError;
    }
    if (i != kInputINPUT && (!IsConstantTensor(tensors.input(i)) || tensors.input(i)->data.raw == nullptr)) {
      return Fail("must be a constant tensor", kInputRules[i].name);
    }
#ifdef USE_TFLM_COMPRESSION
    if (micro_context->IsTensorCompressed(node, i))
      return Fail("compressed tensors are not supported", kInputRules[i].name);
#endif
  }
  if (tensors.output() == nullptr) return Fail("output missing", "output");
  if (tensors.output()->type != kTfLiteInt8) {
    MicroPrintf("InvertedResidual: output is %s, needs int8", TfLiteTypeGetName(tensors.output()->type));
    return kTfLiteError;
  }
  const int32_t* o = data->options.values;
  TF_LITE_ENSURE_OK(context, CheckPresence(tensors, o));

  // Shapes: [N,H,W,Ci], [Ce,1,1,Ci], [1,3,3,Ce], [Co,1,1,Ce], biases [C], carriers [1] -> [N,Ho,Wo,Co].
  const TfLiteTensor* input = tensors.input(kInputINPUT);
  const TfLiteTensor* dw = tensors.input(kInputDEPTHWISE_FILTER);
  const TfLiteTensor* project = tensors.input(kInputPROJECT_FILTER);
  const TfLiteTensor* expand = tensors.input(kInputEXPAND_FILTER);
  TF_LITE_ENSURE_OK(context, CheckShape(input, "input", 4, nullptr));
  TF_LITE_ENSURE_OK(context, CheckShape(dw, "depthwise_filter", 4, nullptr));
  TF_LITE_ENSURE_OK(context, CheckShape(project, "project_filter", 4, nullptr));
  if (Dim(dw, 0) != 1 || Dim(dw, 1) != INVRES_KERNEL_SIZE || Dim(dw, 2) != INVRES_KERNEL_SIZE) {
    return Fail("the depthwise filter must be [1, 3, 3, Ce] (only 3x3 kernels are supported)", "depthwise_filter");
  }
  const int ci = Dim(input, 3), ce = Dim(dw, 3), co = Dim(project, 0);
  if (ci > INVRES_MAX_CHANNELS || ce > INVRES_MAX_CHANNELS || co > INVRES_MAX_CHANNELS) {
    return Fail("a channel count exceeds INVRES_MAX_CHANNELS", nullptr);
  }
  if (expand != nullptr) {
    const int shape[] = {ce, 1, 1, ci};
    TF_LITE_ENSURE_OK(context, CheckShape(expand, "expand_filter", 4, shape));
  } else if (ce != ci) {
    return Fail("without expansion the depthwise filter needs the input's channel count", "depthwise_filter");
  }
  const int project_shape[] = {co, 1, 1, ce};
  TF_LITE_ENSURE_OK(context, CheckShape(project, "project_filter", 4, project_shape));
  const int expand_bias[] = {ce}, dw_bias[] = {ce}, project_bias[] = {co}, carrier[] = {1};
  const struct {
    int index;
    const int* shape;
  } vectors[] = {{kInputEXPAND_BIAS, expand_bias},        {kInputDEPTHWISE_BIAS, dw_bias},
                 {kInputPROJECT_BIAS, project_bias},      {kInputEXPANDED_QUANTIZATION, carrier},
                 {kInputDEPTHWISE_QUANTIZATION, carrier}, {kInputPROJECTED_QUANTIZATION, carrier}};
  for (const auto& v : vectors) {
    if (tensors.input(v.index) != nullptr) {
      TF_LITE_ENSURE_OK(context, CheckShape(tensors.input(v.index), kInputRules[v.index].name, 1, v.shape));
    }
  }
  const invres_config cfg = invres::MakeConfig(data->options, Dim(input, 0), Dim(input, 1), Dim(input, 2), ci, ce, co);
  invres_geometry geo;
  TF_LITE_ENSURE_OK(context, CoreStatus(invres_validate_config(&cfg, &geo), "options do not fit the tensors"));
  const int output_shape[] = {cfg.batch, geo.out_rows, geo.out_cols, co};
  if (CheckShape(tensors.output(), "output", 4, output_shape) != kTfLiteOk) {
    MicroPrintf("InvertedResidual: the options give an output of [%d, %d, %d, %d]", output_shape[0], output_shape[1],
                output_shape[2], output_shape[3]);
    return kTfLiteError;
  }

  // Quantization.
  invres_s8_params params = {};
  TF_LITE_ENSURE_OK(context, Activation(input, "input", &params.input));
  TF_LITE_ENSURE_OK(context, Activation(tensors.output(), "output", &params.output));
  TF_LITE_ENSURE_OK(
      context, Activation(tensors.input(kInputDEPTHWISE_QUANTIZATION), "depthwise_quantization", &params.depthwise));
  if (cfg.expand) {
    TF_LITE_ENSURE_OK(
        context, Activation(tensors.input(kInputEXPANDED_QUANTIZATION), "expanded_quantization", &params.expanded));
    TF_LITE_ENSURE_OK(context, Filter(expand, tensors.input(kInputEXPAND_BIAS), "expand_filter", 0, &params.expand));
  }
  if (cfg.residual) {
    TF_LITE_ENSURE_OK(
        context, Activation(tensors.input(kInputPROJECTED_QUANTIZATION), "projected_quantization", &params.projected));
  }
  TF_LITE_ENSURE_OK(context,
                    Filter(dw, tensors.input(kInputDEPTHWISE_BIAS), "depthwise_filter", 3, &params.depthwise_filter));
  TF_LITE_ENSURE_OK(context, Filter(project, tensors.input(kInputPROJECT_BIAS), "project_filter", 0, &params.project));
  TF_LITE_ENSURE_OK(context, CoreStatus(invres_s8_validate(&cfg, &params), "invalid parameters"));

  const size_t prepared_bytes = invres_s8_prepared_bytes(&cfg);
  const size_t scratch_bytes = invres_s8_scratch_bytes(&cfg);
  if (prepared_bytes == 0 || scratch_bytes == 0) return Fail("the kernel rejects the configuration", nullptr);
  void* prepared = micro_context->AllocatePersistentBuffer(prepared_bytes);
  if (prepared == nullptr) return Fail("no arena left for the prepared data", nullptr);
  TF_LITE_ENSURE_OK(context, CoreStatus(invres_s8_prepare(&cfg, &params, prepared, prepared_bytes), "prepare"));
  data->prepared = prepared;
  data->scratch_bytes = scratch_bytes;
  data->scratch_index = -1;
  if (micro_context->RequestScratchBufferInArena(scratch_bytes, &data->scratch_index) != kTfLiteOk) {
    return Fail("could not request the scratch buffer", nullptr);
  }
  return kTfLiteOk;
}

// ---- Eval -------------------------------------------------------------------

template <typename T>
const T* OptionalData(TfLiteContext* context, TfLiteNode* node, int index) {
  const TfLiteEvalTensor* t = micro::GetEvalInput(context, node, index);
  return t != nullptr ? micro::GetTensorData<T>(t) : nullptr;
}

TfLiteStatus Eval(TfLiteContext* context, TfLiteNode* node) {
  const OpData* data = static_cast<const OpData*>(node->user_data);
  if (data == nullptr || data->prepared == nullptr) return Fail("evaluated without a successful Prepare", nullptr);
  const TfLiteEvalTensor* input = micro::GetEvalInput(context, node, kInputINPUT);
  TfLiteEvalTensor* output = micro::GetEvalOutput(context, node, 0);
  void* scratch = context->GetScratchBuffer(context, data->scratch_index);
  invres_s8_constants constants;
  constants.expand_weights = OptionalData<int8_t>(context, node, kInputEXPAND_FILTER);
  constants.expand_bias = OptionalData<int32_t>(context, node, kInputEXPAND_BIAS);
  constants.depthwise_weights = OptionalData<int8_t>(context, node, kInputDEPTHWISE_FILTER);
  constants.depthwise_bias = OptionalData<int32_t>(context, node, kInputDEPTHWISE_BIAS);
  constants.project_weights = OptionalData<int8_t>(context, node, kInputPROJECT_FILTER);
  constants.project_bias = OptionalData<int32_t>(context, node, kInputPROJECT_BIAS);
  return CoreStatus(invres_s8_eval(data->prepared, &constants, micro::GetTensorData<int8_t>(input),
                                   micro::GetTensorData<int8_t>(output), scratch, data->scratch_bytes),
                    "eval");
}

}  // namespace

TFLMRegistration Register_INVERTED_RESIDUAL() { return micro::RegisterOp(Init, Prepare, Eval); }

}  // namespace tflite
