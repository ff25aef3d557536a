// Register_CONV_2D_NARROW (narrow_conv_tflm.h).
//
// The wrapped kernel's Prepare fills an OpDataConv (kernels/conv.h) at the
// start of its user data: TFLM's reference CONV_2D uses OpDataConv itself and
// CMSIS-NN's conv.cc an OpData whose first member is one. Eval reads the
// padding, zero points, per-channel multipliers and clamp from there, as the
// wrapped Eval does; Prepare checks them against the tensors, so a TFLM whose
// layout differs fails Prepare with a message instead of computing wrong bytes.
#include "narrow_conv_tflm.h"

#include <stdint.h>

#include "narrow_conv_s8.h"
#include "tensorflow/lite/c/builtin_op_data.h"
#include "tensorflow/lite/c/common.h"
#include "tensorflow/lite/micro/kernels/conv.h"
#include "tensorflow/lite/micro/kernels/kernel_util.h"
#include "tensorflow/lite/micro/micro_context.h"
#include "tensorflow/lite/micro/micro_log.h"
#include "tensorflow/lite/micro/micro_utils.h"

namespace tflite {
namespace {

const OpDataConv& WrappedOpData(const TfLiteNode* node) { return *static_cast<const OpDataConv*>(node->user_data); }

bool Rank4(const TfLiteIntArray* dims) { return dims != nullptr && dims->size == 4; }

narrow_conv_dims Dims(const TfLiteIntArray* dims) {
  return {dims->data[0], dims->data[1], dims->data[2], dims->data[3]};
}

// The narrow kernel's description of this node, or false when it does not take it.
bool Describe(const TfLiteNode* node, const TfLiteEvalTensor* input, const TfLiteEvalTensor* filter,
              const TfLiteEvalTensor* bias, const TfLiteEvalTensor* output, narrow_conv_params* p, narrow_conv_dims* id,
              narrow_conv_dims* fd, narrow_conv_dims* od) {
  const auto* conv = static_cast<const TfLiteConvParams*>(node->builtin_data);
  if (conv == nullptr || input == nullptr || filter == nullptr || output == nullptr) return false;
  if (input->type != kTfLiteInt8 || filter->type != kTfLiteInt8 || output->type != kTfLiteInt8) return false;
  if (bias != nullptr && bias->type != kTfLiteInt32) return false;
  if (conv->dilation_height_factor != 1 || conv->dilation_width_factor != 1) return false;
  if (!Rank4(input->dims) || !Rank4(filter->dims) || !Rank4(output->dims)) return false;
  const OpDataConv& data = WrappedOpData(node);
  *id = Dims(input->dims);
  *fd = Dims(filter->dims);
  *od = Dims(output->dims);
  p->input_offset = -data.input_zero_point;
  p->output_offset = data.output_zero_point;
  p->stride_h = conv->stride_height;
  p->stride_w = conv->stride_width;
  p->pad_h = data.padding.height;
  p->pad_w = data.padding.width;
  p->act_min = data.output_activation_min;
  p->act_max = data.output_activation_max;
  if (bias != nullptr && (bias->dims == nullptr || ElementCount(*bias->dims) != od->c)) return false;
  return narrow_conv_s8_check(p, id, fd, od) == NARROW_CONV_OK;
}

TfLiteStatus Prepare(TfLiteContext* context, TfLiteNode* node) {
  TF_LITE_ENSURE_OK(context, Register_CONV_2D().prepare(context, node));
  MicroContext* micro_context = GetMicroContext(context);
  TfLiteTensor* input = micro_context->AllocateTempInputTensor(node, kConvInputTensor);
  TfLiteTensor* output = micro_context->AllocateTempOutputTensor(node, kConvOutputTensor);
  TF_LITE_ENSURE(context, input != nullptr && output != nullptr);
  bool consistent = true;
  if (input->type == kTfLiteInt8) {  // what the wrapped Prepare must have stored for Eval to read
    const OpDataConv& data = WrappedOpData(node);
    consistent = data.input_zero_point == input->params.zero_point &&
                 data.output_zero_point == output->params.zero_point && data.output_activation_min >= -128 &&
                 data.output_activation_max <= 127 && data.output_activation_min <= data.output_activation_max &&
                 data.per_channel_output_multiplier != nullptr && data.per_channel_output_shift != nullptr;
  }
  micro_context->DeallocateTempTfLiteTensor(input);
  micro_context->DeallocateTempTfLiteTensor(output);
  if (!consistent) {
    MicroPrintf(
        "CONV_2D (narrow): the wrapped kernel's OpDataConv disagrees with the tensors; "
        "this TFLM is not the pinned one, register Register_CONV_2D() instead");
    return kTfLiteError;
  }
  return kTfLiteOk;
}

TfLiteStatus Eval(TfLiteContext* context, TfLiteNode* node) {
  const TfLiteEvalTensor* input = micro::GetEvalInput(context, node, kConvInputTensor);
  const TfLiteEvalTensor* filter = micro::GetEvalInput(context, node, kConvWeightsTensor);
  const TfLiteEvalTensor* bias =
      node->inputs->size > kConvBiasTensor ? micro::GetEvalInput(context, node, kConvBiasTensor) : nullptr;
  TfLiteEvalTensor* output = micro::GetEvalOutput(context, node, kConvOutputTensor);
  narrow_conv_params params;
  narrow_conv_dims id, fd, od;
  if (!Describe(node, input, filter, bias, output, &params, &id, &fd, &od)) {
    return Register_CONV_2D().invoke(context, node);
  }
  const OpDataConv& data = WrappedOpData(node);
  const narrow_conv_quant quant = {data.per_channel_output_multiplier, data.per_channel_output_shift};
  const narrow_conv_status status = narrow_conv_s8(
      &params, &quant, &id, micro::GetTensorData<int8_t>(input), &fd, micro::GetTensorData<int8_t>(filter),
      bias != nullptr ? micro::GetOptionalTensorData<int32_t>(bias) : nullptr, &od,
      micro::GetTensorData<int8_t>(output));
  if (status != NARROW_CONV_OK) {
    MicroPrintf("CONV_2D (narrow): %s", narrow_conv_status_str(status));
    return kTfLiteError;
  }
  return kTfLiteOk;
}

}  // namespace

TFLMRegistration Register_CONV_2D_NARROW() {
  TFLMRegistration registration = Register_CONV_2D();
  registration.prepare = Prepare;
  registration.invoke = Eval;
  return registration;
}

}  // namespace tflite
