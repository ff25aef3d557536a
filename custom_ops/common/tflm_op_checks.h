// What the custom ops' TFLM registrations (rnnpool_tflm.cc, inverted_residual_tflm.cc)
// check of the tensors a model supplies, in Prepare, before any value reaches a C core:
// the temporary tensors, shapes, and the form of each tensor's quantization. Every
// refusal is one MicroPrintf line that starts with the op's name and names the tensor.
// Header only (the registrations are the only users), TFLM's C++ dialect: no heap,
// exceptions or RTTI.
#ifndef RNNPOOL_TFLM_OP_CHECKS_H_
#define RNNPOOL_TFLM_OP_CHECKS_H_

#include <stdint.h>

#include "tensorflow/lite/c/common.h"
#include "tensorflow/lite/micro/micro_context.h"
#include "tensorflow/lite/micro/micro_log.h"

namespace tflm_op_checks {

// The temporary TfLiteTensors Prepare looks at (nullptr for an absent optional input),
// released on every path.
template <int kInputs>
class TempTensors {
 public:
  TempTensors(tflite::MicroContext* micro_context, TfLiteNode* node) : micro_context_(micro_context) {
    for (int i = 0; i < kInputs; ++i) inputs_[i] = micro_context->AllocateTempInputTensor(node, i);
    output_ = micro_context->AllocateTempOutputTensor(node, 0);
  }
  ~TempTensors() {
    for (int i = 0; i < kInputs; ++i) {
      if (inputs_[i] != nullptr) micro_context_->DeallocateTempTfLiteTensor(inputs_[i]);
    }
    if (output_ != nullptr) micro_context_->DeallocateTempTfLiteTensor(output_);
  }
  TempTensors(const TempTensors&) = delete;
  TempTensors& operator=(const TempTensors&) = delete;

  TfLiteTensor* input(int i) const { return inputs_[i]; }
  TfLiteTensor* output() const { return output_; }

 private:
  tflite::MicroContext* micro_context_;
  TfLiteTensor* inputs_[kInputs];
  TfLiteTensor* output_;
};

inline TfLiteStatus Fail(const char* op, const char* what, const char* tensor) {
  if (tensor != nullptr) {
    MicroPrintf("%s: %s (tensor '%s')", op, what, tensor);
  } else {
    MicroPrintf("%s: %s", op, what);
  }
  return kTfLiteError;
}

inline int Dim(const TfLiteTensor* t, int i) { return t->dims->data[i]; }

// Rank `rank`, positive dims, and `expected` (may be null; -1 = any) sizes.
inline TfLiteStatus CheckShape(const char* op, const TfLiteTensor* t, const char* name, int rank, const int* expected) {
  if (t->dims == nullptr || t->dims->size != rank) {
    MicroPrintf("%s: tensor '%s' must have rank %d, has %d", op, name, rank, t->dims ? t->dims->size : -1);
    return kTfLiteError;
  }
  for (int i = 0; i < rank; ++i) {
    if (Dim(t, i) < 1) {
      MicroPrintf("%s: tensor '%s' has a dimension %d < 1 (dim %d)", op, name, Dim(t, i), i);
      return kTfLiteError;
    }
    if (expected != nullptr && expected[i] >= 0 && Dim(t, i) != expected[i]) {
      MicroPrintf("%s: tensor '%s' dim %d is %d, the contract needs %d", op, name, i, Dim(t, i), expected[i]);
      return kTfLiteError;
    }
  }
  return kTfLiteOk;
}

// The tensor's affine quantization with its arrays present, or nullptr.
inline const TfLiteAffineQuantization* Affine(const TfLiteTensor* t) {
  if (t->quantization.type != kTfLiteAffineQuantization) return nullptr;
  const auto* q = static_cast<const TfLiteAffineQuantization*>(t->quantization.params);
  if (q == nullptr || q->scale == nullptr || q->zero_point == nullptr) return nullptr;
  return q;
}

// An activation: one scale, one zero point (the values are the core's to judge).
inline TfLiteStatus PerTensor(const char* op, const TfLiteTensor* t, const char* name, float* scale,
                              int32_t* zero_point) {
  const TfLiteAffineQuantization* q = Affine(t);
  if (q == nullptr) return Fail(op, "int8 tensor without affine quantization", name);
  if (q->scale->size != 1 || q->zero_point->size != 1) {
    return Fail(op, "needs per-tensor quantization (one scale, one zero point)", name);
  }
  *scale = q->scale->data[0];
  *zero_point = q->zero_point->data[0];
  return kTfLiteOk;
}

// Weights: symmetric (every zero point 0), one scale or one per `unit` ("row", "channel")
// along dimension `dim`.
inline TfLiteStatus SymmetricScales(const char* op, const TfLiteTensor* t, const char* name, int dim, const char* unit,
                                    const float** scales, int32_t* count) {
  const TfLiteAffineQuantization* q = Affine(t);
  if (q == nullptr) return Fail(op, "int8 weights without affine quantization", name);
  const int units = Dim(t, dim);
  const int n = q->scale->size;
  if (n != 1 && n != units) {
    MicroPrintf("%s: tensor '%s' has %d scales; needs 1 or one per %s (%d)", op, name, n, unit, units);
    return kTfLiteError;
  }
  if (n > 1 && q->quantized_dimension != dim) {
    MicroPrintf("%s: tensor '%s' is quantized along dimension %d, the contract's is %d", op, name,
                q->quantized_dimension, dim);
    return kTfLiteError;
  }
  if (q->zero_point->size != n && q->zero_point->size != 1) {
    return Fail(op, "zero point count differs from the scale count", name);
  }
  for (int i = 0; i < q->zero_point->size; ++i) {
    if (q->zero_point->data[i] != 0) return Fail(op, "weights must be symmetric (zero point 0)", name);
  }
  *scales = q->scale->data;
  *count = n;
  return kTfLiteOk;
}

}  // namespace tflm_op_checks

#endif  // RNNPOOL_TFLM_OP_CHECKS_H_
