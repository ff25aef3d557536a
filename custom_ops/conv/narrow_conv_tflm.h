// TFLM's CONV_2D with a faster kernel for narrow int8 convolutions.
//
//   resolver.AddConv2D(tflite::Register_CONV_2D_NARROW());
//
// The build's own CONV_2D (CMSIS-NN on the Cortex-M4) keeps its Init and
// Prepare unchanged, so the arena holds exactly what it would without this
// kernel (the estimator's CONV_2D model stays true). Eval runs
// narrow_conv_s8 (narrow_conv_s8.h) for batch-1, undilated, ungrouped int8
// convolutions with at most NARROW_CONV_MAX_CHANNELS output channels and
// hands everything else to the wrapped kernel. Same bytes either way.
#ifndef NARROW_CONV_TFLM_H_
#define NARROW_CONV_TFLM_H_

#include "tensorflow/lite/micro/micro_common.h"

namespace tflite {

TFLMRegistration Register_CONV_2D_NARROW();

}  // namespace tflite

#endif  // NARROW_CONV_TFLM_H_
