// TFLM registration of the RNNPool custom op (see rnnpool_tflm.h).
//
// Everything the model supplies is checked before the kernel sees it: the
// options (Init: a flexbuffer map holding the contract's keys, those with a
// default optional, each an integer in range), then in Prepare the input/output counts, the types (the
// int8 or the float32 column of the contract, never mixed), ranks and dims,
// that the weights are constant, the quantization (per tensor for input and
// output, 1 or one-per-row symmetric scales for the matrices), and the options
// against the shapes. The C core's own validator then checks values (scales,
// zero points, biases, scalars, multipliers, overflow-safe sizes). Any problem
// is one MicroPrintf line naming it and kTfLiteError.
#include "rnnpool_tflm.h"

#include <stddef.h>
#include <stdint.h>

#include "flatbuffers/flexbuffers.h"
#include "rnnpool.h"
#include "rnnpool_op_contract.h"
#include "rnnpool_options.h"
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
#define RNNPOOL_X_ENUM(ENUM, INDEX, NAME, INT8_TYPE, FLOAT_TYPE, SHAPE) kInput##ENUM = INDEX,
  RNNPOOL_INPUTS(RNNPOOL_X_ENUM)
#undef RNNPOOL_X_ENUM
};

#define RNNPOOL_TYPE_INT8 kTfLiteInt8
#define RNNPOOL_TYPE_INT16 kTfLiteInt16
#define RNNPOOL_TYPE_INT32 kTfLiteInt32
#define RNNPOOL_TYPE_FLOAT32 kTfLiteFloat32

struct TensorRule {
  const char* name;
  TfLiteType int8_type;   // in the int8 op
  TfLiteType float_type;  // in the float32 op
  const char* shape;
};

constexpr TensorRule kInputRules[RNNPOOL_NUM_INPUTS] = {
#define RNNPOOL_X_RULE(ENUM, INDEX, NAME, INT8_TYPE, FLOAT_TYPE, SHAPE) \
  {NAME, RNNPOOL_TYPE_##INT8_TYPE, RNNPOOL_TYPE_##FLOAT_TYPE, SHAPE},
    RNNPOOL_INPUTS(RNNPOOL_X_RULE)};
constexpr TensorRule kOutputRules[RNNPOOL_NUM_OUTPUTS] = {RNNPOOL_OUTPUTS(RNNPOOL_X_RULE)};
#undef RNNPOOL_X_RULE

// The option tables and parser: rnnpool_options.h (shared with the fuzz target).
using rnnpool_options::kOptionGATE_ACTIVATION;
using rnnpool_options::kOptionOUTPUT_PAD_BOTTOM;
using rnnpool_options::kOptionOUTPUT_PAD_RIGHT;
using rnnpool_options::kOptionPADDING;
using rnnpool_options::kOptionPATCH_COLS;
using rnnpool_options::kOptionPATCH_ROWS;
using rnnpool_options::kOptionRNN1_MODE;
using rnnpool_options::kOptionSTRIDE_COLS;
using rnnpool_options::kOptionSTRIDE_ROWS;
using rnnpool_options::kOptionUPDATE_ACTIVATION;

// ---- per-node state ---------------------------------------------------------

struct OpData {
  int32_t options[RNNPOOL_NUM_OPTIONS];
  bool options_ok;
  char options_error[96];  // why Init rejected the options (printed by Prepare)
  bool is_int8;
  const void* prepared;  // the C core's prepared buffer (persistent)
  size_t scratch_bytes;
  int scratch_index;
};

// Fills data->options from the op's flexbuffer map, or records why not.
void ParseOptions(const uint8_t* buffer, size_t length, OpData* data) {
  data->options_ok =
      rnnpool_options::Parse(buffer, length, data->options, data->options_error, sizeof(data->options_error));
}

void* Init(TfLiteContext* context, const char* buffer, size_t length) {
  void* raw = context->AllocatePersistentBuffer(context, sizeof(OpData));
  if (raw == nullptr) return nullptr;  // Prepare reports it
  OpData* data = static_cast<OpData*>(raw);
  data->is_int8 = false;
  data->prepared = nullptr;
  data->scratch_bytes = 0;
  data->scratch_index = -1;
  ParseOptions(reinterpret_cast<const uint8_t*>(buffer), length, data);
  return data;
}

// ---- Prepare ----------------------------------------------------------------

const char* TypeName(TfLiteType type) { return TfLiteTypeGetName(type); }

using TempTensors = tflm_op_checks::TempTensors<RNNPOOL_NUM_INPUTS>;
using tflm_op_checks::Affine;
using tflm_op_checks::Dim;

TfLiteStatus Fail(const char* what, const char* tensor) { return tflm_op_checks::Fail("RNNPool", what, tensor); }

TfLiteStatus CheckShape(const TfLiteTensor* t, const char* name, int rank, const int* expected) {
  return tflm_op_checks::CheckShape("RNNPool", t, name, rank, expected);
}

// Input/output: one scale, one zero point (the values are the core's to judge).
TfLiteStatus PerTensorParams(const TfLiteTensor* t, const char* name, float* scale, int32_t* zero_point) {
  return tflm_op_checks::PerTensor("RNNPool", t, name, scale, zero_point);
}

// A weight matrix [rows][cols]: symmetric, 1 or `rows` scales along dimension 0.
TfLiteStatus MatrixParams(const TfLiteTensor* t, const char* name, const float** scales, int32_t* count) {
  return tflm_op_checks::SymmetricScales("RNNPool", t, name, 0, "row", scales, count);
}

// Biases (Q12) and scalars (Q14) carry fixed formats; a quantization, if any, must not shift them.
TfLiteStatus FixedFormatParams(const TfLiteTensor* t, const char* name) {
  const TfLiteAffineQuantization* q = Affine(t);
  if (q == nullptr) return kTfLiteOk;
  for (int i = 0; i < q->zero_point->size; ++i) {
    if (q->zero_point->data[i] != 0) return Fail("fixed-point tensor must have zero point 0", name);
  }
  return kTfLiteOk;
}

// How each tensor is quantized, from the contract (RNNPOOL_QUANTIZATION); the Python
// validator reads the same lines.
enum QuantKind { kQuantPER_TENSOR, kQuantSYMMETRIC_ROWS, kQuantFIXED_POINT };
struct QuantRule {
  const char* name;
  QuantKind kind;
};
constexpr QuantRule kQuantRules[] = {
#define RNNPOOL_X_QUANT(NAME, KIND) {NAME, kQuant##KIND},
    RNNPOOL_QUANTIZATION(RNNPOOL_X_QUANT)
#undef RNNPOOL_X_QUANT
};
static_assert(sizeof(kQuantRules) / sizeof(kQuantRules[0]) == RNNPOOL_NUM_INPUTS + RNNPOOL_NUM_OUTPUTS,
              "RNNPOOL_QUANTIZATION must list every input and output");

// Checks a tensor of the int8 op against its contract quantization kind.
TfLiteStatus CheckQuantization(const TfLiteTensor* t, const char* name) {
  for (const QuantRule& rule : kQuantRules) {
    if (!rnnpool_options::KeyEquals(rule.name, name)) continue;
    switch (rule.kind) {
      case kQuantPER_TENSOR: {
        float scale;
        int32_t zero_point;
        return PerTensorParams(t, name, &scale, &zero_point);
      }
      case kQuantSYMMETRIC_ROWS: {
        const float* scales;
        int32_t count;
        return MatrixParams(t, name, &scales, &count);
      }
      case kQuantFIXED_POINT:
        return FixedFormatParams(t, name);
    }
  }
  return Fail("the contract gives no quantization for the tensor", name);
}

TfLiteStatus CoreStatus(rnnpool_status status, const char* stage) {
  if (status == RNNPOOL_OK) return kTfLiteOk;
  const char* name = rnnpool_status_name(status);
  MicroPrintf("RNNPool: %s: %s (%s)", stage, rnnpool_status_str(status), name != nullptr ? name : "?");
  return kTfLiteError;
}

TfLiteStatus Prepare(TfLiteContext* context, TfLiteNode* node) {
  OpData* data = static_cast<OpData*>(node->user_data);
  if (data == nullptr) return Fail("no memory for the op's data (arena too small)", nullptr);
  if (!data->options_ok) {
    MicroPrintf("RNNPool: bad options: %s", data->options_error);
    return kTfLiteError;
  }
  if (node->inputs == nullptr || node->inputs->size != RNNPOOL_NUM_INPUTS) {
    MicroPrintf("RNNPool: needs %d inputs, has %d", RNNPOOL_NUM_INPUTS, node->inputs ? node->inputs->size : 0);
    return kTfLiteError;
  }
  if (node->outputs == nullptr || node->outputs->size != RNNPOOL_NUM_OUTPUTS) {
    MicroPrintf("RNNPool: needs %d output, has %d", RNNPOOL_NUM_OUTPUTS, node->outputs ? node->outputs->size : 0);
    return kTfLiteError;
  }
  MicroContext* micro_context = GetMicroContext(context);
  TempTensors tensors(micro_context, node);
  for (int i = 0; i < RNNPOOL_NUM_INPUTS; ++i) {
    if (tensors.input(i) == nullptr) return Fail("input missing", kInputRules[i].name);
  }
  if (tensors.output() == nullptr) return Fail("output missing", kOutputRules[0].name);

  // Types: the int8 column or the float32 column of the contract, chosen by the input.
  const TfLiteTensor* input = tensors.input(kInputINPUT);
  const TfLiteTensor* output = tensors.output();
  if (input->type != kTfLiteInt8 && input->type != kTfLiteFloat32) {
    MicroPrintf("RNNPool: input type %s not supported (int8 or float32)", TypeName(input->type));
    return kTfLiteError;
  }
  data->is_int8 = input->type == kTfLiteInt8;
  for (int i = 0; i < RNNPOOL_NUM_INPUTS; ++i) {
    const TfLiteType want = data->is_int8 ? kInputRules[i].int8_type : kInputRules[i].float_type;
    if (tensors.input(i)->type != want) {
      MicroPrintf("RNNPool: tensor '%s' is %s, the %s op needs %s", kInputRules[i].name,
                  TypeName(tensors.input(i)->type), data->is_int8 ? "int8" : "float32", TypeName(want));
      return kTfLiteError;
    }
    if (i != kInputINPUT && (!IsConstantTensor(tensors.input(i)) || tensors.input(i)->data.raw == nullptr)) {
      return Fail("weights must be constant tensors", kInputRules[i].name);
    }
#ifdef USE_TFLM_COMPRESSION
    if (micro_context->IsTensorCompressed(node, i))
      return Fail("compressed tensors are not supported", kInputRules[i].name);
#endif
  }
  const TfLiteType out_want = data->is_int8 ? kOutputRules[0].int8_type : kOutputRules[0].float_type;
  if (output->type != out_want) {
    MicroPrintf("RNNPool: output is %s, needs %s", TypeName(output->type), TypeName(out_want));
    return kTfLiteError;
  }

  // Shapes: [N,H,W,k], [h1,k], [h1,h1], [2,h1], [h2,h1], [h2,h2], [2,h2], [2,2] -> [N,Ho,Wo,4*h2].
  TF_LITE_ENSURE_OK(context, CheckShape(input, kInputRules[kInputINPUT].name, 4, nullptr));
  TF_LITE_ENSURE_OK(context, CheckShape(tensors.input(kInputW1), kInputRules[kInputW1].name, 2, nullptr));
  const int k = Dim(input, 3);
  const int h1 = Dim(tensors.input(kInputW1), 0);
  if (h1 > RNNPOOL_MAX_HIDDEN) return Fail("hidden size h1 exceeds RNNPOOL_MAX_HIDDEN", "w1");
  if (k > RNNPOOL_MAX_CHANNELS) return Fail("channel count exceeds RNNPOOL_MAX_CHANNELS", "input");
  const int w1_shape[] = {h1, k};
  TF_LITE_ENSURE_OK(context, CheckShape(tensors.input(kInputW1), "w1", 2, w1_shape));
  TF_LITE_ENSURE_OK(context, CheckShape(tensors.input(kInputW2), "w2", 2, nullptr));
  const int h2 = Dim(tensors.input(kInputW2), 0);
  if (h2 > RNNPOOL_MAX_HIDDEN) return Fail("hidden size h2 exceeds RNNPOOL_MAX_HIDDEN", "w2");
  const int u1_shape[] = {h1, h1}, bias1_shape[] = {2, h1}, w2_shape[] = {h2, h1}, u2_shape[] = {h2, h2},
            bias2_shape[] = {2, h2}, scalars_shape[] = {2, 2};
  TF_LITE_ENSURE_OK(context, CheckShape(tensors.input(kInputU1), "u1", 2, u1_shape));
  TF_LITE_ENSURE_OK(context, CheckShape(tensors.input(kInputBIAS1), "bias1", 2, bias1_shape));
  TF_LITE_ENSURE_OK(context, CheckShape(tensors.input(kInputW2), "w2", 2, w2_shape));
  TF_LITE_ENSURE_OK(context, CheckShape(tensors.input(kInputU2), "u2", 2, u2_shape));
  TF_LITE_ENSURE_OK(context, CheckShape(tensors.input(kInputBIAS2), "bias2", 2, bias2_shape));
  TF_LITE_ENSURE_OK(context, CheckShape(tensors.input(kInputSCALARS), "fastgrnn_scalars", 2, scalars_shape));

  // Options against shapes: the core validates geometry and sizes (overflow-safe).
  const int32_t* o = data->options;
  rnnpool_config cfg;
  cfg.batch = Dim(input, 0);
  cfg.in_rows = Dim(input, 1);
  cfg.in_cols = Dim(input, 2);
  cfg.channels = k;
  cfg.patch_rows = o[kOptionPATCH_ROWS];
  cfg.patch_cols = o[kOptionPATCH_COLS];
  cfg.stride_rows = o[kOptionSTRIDE_ROWS];
  cfg.stride_cols = o[kOptionSTRIDE_COLS];
  cfg.padding = o[kOptionPADDING];
  cfg.hidden1 = h1;
  cfg.hidden2 = h2;
  cfg.gate_activation = o[kOptionGATE_ACTIVATION];
  cfg.update_activation = o[kOptionUPDATE_ACTIVATION];
  cfg.output_pad_bottom = o[kOptionOUTPUT_PAD_BOTTOM];
  cfg.output_pad_right = o[kOptionOUTPUT_PAD_RIGHT];
  cfg.rnn1_mode = o[kOptionRNN1_MODE];
  rnnpool_geometry geo;
  TF_LITE_ENSURE_OK(context, CoreStatus(rnnpool_validate_config(&cfg, &geo), "options do not fit the input"));
  if (4 * h2 > INT32_MAX / 4) return Fail("output channel count overflows", "output");
  const int output_shape[] = {cfg.batch, geo.padded_out_rows, geo.padded_out_cols, 4 * h2};
  if (CheckShape(output, "output", 4, output_shape) != kTfLiteOk) {
    MicroPrintf("RNNPool: the options give an output of [%d, %d, %d, %d]", output_shape[0], output_shape[1],
                output_shape[2], output_shape[3]);
    return kTfLiteError;
  }

  size_t prepared_bytes, scratch_bytes;
  void* prepared;
  if (data->is_int8) {
    for (int i = 0; i < RNNPOOL_NUM_INPUTS; ++i) {
      TF_LITE_ENSURE_OK(context, CheckQuantization(tensors.input(i), kInputRules[i].name));
    }
    TF_LITE_ENSURE_OK(context, CheckQuantization(output, kOutputRules[0].name));
    rnnpool_s8_params params;  // the checked quantizations, read below
    TF_LITE_ENSURE_OK(context, PerTensorParams(input, "input", &params.input_scale, &params.input_zero_point));
    TF_LITE_ENSURE_OK(context, PerTensorParams(output, "output", &params.output_scale, &params.output_zero_point));
    TF_LITE_ENSURE_OK(context, MatrixParams(tensors.input(kInputW1), "w1", &params.w1_scale, &params.w1_scale_count));
    TF_LITE_ENSURE_OK(context, MatrixParams(tensors.input(kInputU1), "u1", &params.u1_scale, &params.u1_scale_count));
    TF_LITE_ENSURE_OK(context, MatrixParams(tensors.input(kInputW2), "w2", &params.w2_scale, &params.w2_scale_count));
    TF_LITE_ENSURE_OK(context, MatrixParams(tensors.input(kInputU2), "u2", &params.u2_scale, &params.u2_scale_count));
    params.w1 = tensors.input(kInputW1)->data.int8;
    params.u1 = tensors.input(kInputU1)->data.int8;
    params.bias1 = tensors.input(kInputBIAS1)->data.i32;
    params.w2 = tensors.input(kInputW2)->data.int8;
    params.u2 = tensors.input(kInputU2)->data.int8;
    params.bias2 = tensors.input(kInputBIAS2)->data.i32;
    params.scalars = tensors.input(kInputSCALARS)->data.i16;
    TF_LITE_ENSURE_OK(context, CoreStatus(rnnpool_s8_validate(&cfg, &params), "invalid int8 parameters"));
    prepared_bytes = rnnpool_s8_prepared_bytes(&cfg);
    scratch_bytes = rnnpool_s8_scratch_bytes(&cfg);
    if (prepared_bytes == 0) return Fail("the kernel rejects the configuration", nullptr);
    prepared = micro_context->AllocatePersistentBuffer(prepared_bytes);
    if (prepared == nullptr) return Fail("no arena left for the prepared weights", nullptr);
    TF_LITE_ENSURE_OK(context, CoreStatus(rnnpool_s8_prepare(&cfg, &params, prepared, prepared_bytes), "prepare"));
  } else {
    rnnpool_f32_params params;
    params.w1 = tensors.input(kInputW1)->data.f;
    params.u1 = tensors.input(kInputU1)->data.f;
    params.bias1 = tensors.input(kInputBIAS1)->data.f;
    params.w2 = tensors.input(kInputW2)->data.f;
    params.u2 = tensors.input(kInputU2)->data.f;
    params.bias2 = tensors.input(kInputBIAS2)->data.f;
    params.scalars = tensors.input(kInputSCALARS)->data.f;
    TF_LITE_ENSURE_OK(context, CoreStatus(rnnpool_f32_validate(&cfg, &params), "invalid float32 parameters"));
    prepared_bytes = rnnpool_f32_prepared_bytes(&cfg);
    scratch_bytes = rnnpool_f32_scratch_bytes(&cfg);
    if (prepared_bytes == 0) return Fail("the kernel rejects the configuration", nullptr);
    prepared = micro_context->AllocatePersistentBuffer(prepared_bytes);
    if (prepared == nullptr) return Fail("no arena left for the prepared weights", nullptr);
    TF_LITE_ENSURE_OK(context, CoreStatus(rnnpool_f32_prepare(&cfg, &params, prepared, prepared_bytes), "prepare"));
  }
  data->prepared = prepared;
  data->scratch_bytes = scratch_bytes;
  data->scratch_index = -1;
  if (scratch_bytes > 0 &&
      micro_context->RequestScratchBufferInArena(scratch_bytes, &data->scratch_index) != kTfLiteOk) {
    return Fail("could not request the scratch buffer", nullptr);
  }
  return kTfLiteOk;
}

// ---- Eval -------------------------------------------------------------------

TfLiteStatus Eval(TfLiteContext* context, TfLiteNode* node) {
  const OpData* data = static_cast<const OpData*>(node->user_data);
  if (data == nullptr || data->prepared == nullptr) return Fail("evaluated without a successful Prepare", nullptr);
  const TfLiteEvalTensor* input = micro::GetEvalInput(context, node, kInputINPUT);
  TfLiteEvalTensor* output = micro::GetEvalOutput(context, node, 0);
  void* scratch = data->scratch_index >= 0 ? context->GetScratchBuffer(context, data->scratch_index) : nullptr;
  const rnnpool_status status =
      data->is_int8 ? rnnpool_s8_eval(data->prepared, micro::GetTensorData<int8_t>(input),
                                      micro::GetTensorData<int8_t>(output), scratch, data->scratch_bytes)
                    : rnnpool_f32_eval(data->prepared, micro::GetTensorData<float>(input),
                                       micro::GetTensorData<float>(output), scratch, data->scratch_bytes);
  return CoreStatus(status, "eval");
}

}  // namespace

TFLMRegistration Register_RNNPOOL() { return micro::RegisterOp(Init, Prepare, Eval); }

}  // namespace tflite
