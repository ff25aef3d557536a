// The InvertedResidual custom operator for TensorFlow Lite Micro.
//
//   tflite::MicroMutableOpResolver<N> resolver;
//   const TFLMRegistration r = tflite::Register_INVERTED_RESIDUAL();
//   resolver.AddCustom(INVRES_CUSTOM_CODE, &r);
//
// Inputs, options: inverted_residual_op_contract.h (docs/inverted_residual.md);
// the kernel: inverted_residual.h. Init parses the flexbuffer options, Prepare
// validates every tensor the model supplies, prepares the kernel into a
// persistent buffer (OpData filled once) and requests its scratch from the
// arena; Eval runs it and allocates nothing. No heap, exceptions or RTTI.
#ifndef INVERTED_RESIDUAL_TFLM_H_
#define INVERTED_RESIDUAL_TFLM_H_

#include "inverted_residual_op_contract.h"
#include "tensorflow/lite/micro/micro_common.h"

namespace tflite {

TFLMRegistration Register_INVERTED_RESIDUAL();

}  // namespace tflite

#endif  // INVERTED_RESIDUAL_TFLM_H_
