// Registers the InvertedResidual op with the tflite-micro Python interpreter.
//
// Built on the host by rnnpool_tflm/runtime/registerer.py into the same shared
// library as the RNNPool registerer (loaded with RTLD_GLOBAL), then named in
//   runtime.Interpreter.from_bytes(model, custom_op_registerers=["InvertedResidualRegisterer", ...])
// The interpreter finds the function with dlsym(RTLD_DEFAULT, name) and calls it
// with its PythonOpsResolver (a MicroMutableOpResolver<200>).
#include "inverted_residual_tflm.h"
#include "python/tflite_micro/python_ops_resolver.h"

extern "C" __attribute__((visibility("default"))) bool InvertedResidualRegisterer(tflite::PythonOpsResolver* resolver) {
  if (resolver == nullptr) return false;
  const TFLMRegistration registration = tflite::Register_INVERTED_RESIDUAL();
  return resolver->AddCustom(INVRES_CUSTOM_CODE, &registration) == kTfLiteOk;
}
