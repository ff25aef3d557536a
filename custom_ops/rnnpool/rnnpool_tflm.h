// The RNNPool custom operator for TensorFlow Lite Micro.
//
//   tflite::MicroMutableOpResolver<N> resolver;
//   resolver.AddCustom(RNNPOOL_CUSTOM_CODE, tflite::Register_RNNPOOL());
//
// Inputs, types, options: rnnpool_op_contract.h (docs/custom_op.md); the
// arithmetic: docs/quantization.md; the kernel: rnnpool.h. Init parses the
// flexbuffer options, Prepare validates the model's tensors and prepares the
// kernel into a persistent buffer and requests its scratch, Eval runs it.
// No heap, exceptions or RTTI.
#ifndef RNNPOOL_TFLM_H_
#define RNNPOOL_TFLM_H_

#include "rnnpool_op_contract.h"
#include "tensorflow/lite/micro/micro_common.h"

namespace tflite {

TFLMRegistration Register_RNNPOOL();

}  // namespace tflite

#endif  // RNNPOOL_TFLM_H_
