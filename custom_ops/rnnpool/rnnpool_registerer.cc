// Registers the RNNPool op with the tflite-micro Python interpreter.
//
// Built on the host (rnnpool_tflm/tflm_registerer.py) into a shared library
// against the TFLM headers of the pinned commit with the wheel's defines, loaded
// with RTLD_GLOBAL, then named in
//   runtime.Interpreter.from_bytes(model, custom_op_registerers=["RNNPoolRegisterer"])
// The interpreter finds the function with dlsym(RTLD_DEFAULT, name) and calls it
// with its PythonOpsResolver (a MicroMutableOpResolver<200>).
#include "python/tflite_micro/python_ops_resolver.h"
#include "rnnpool_tflm.h"

extern "C" __attribute__((visibility("default"))) bool RNNPoolRegisterer(tflite::PythonOpsResolver* resolver) {
  if (resolver == nullptr) return false;
  const TFLMRegistration registration = tflite::Register_RNNPOOL();
  return resolver->AddCustom(RNNPOOL_CUSTOM_CODE, &registration) == kTfLiteOk;
}
