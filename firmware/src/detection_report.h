// The detector post-processing on the model's outputs, when the exported model is a
// detector (generated/detector_config.h; docs/detection.md, "On the device").
#ifndef RNNPOOL_DETECTION_REPORT_H_
#define RNNPOOL_DETECTION_REPORT_H_

#include <stdint.h>

#include "tensorflow/lite/micro/micro_interpreter.h"

namespace detection_report {

// Whether export found a detector (else Run and Print do nothing).
bool Enabled();

// Runs custom_ops/detection on the interpreter's outputs; `ticks`: the cycle counter
// across the call. On failure prints "error: detection: ..." and returns false.
bool Run(tflite::MicroInterpreter& interpreter, uint64_t* ticks);

// "detections: N", then one "box: x1 y1 x2 y2 score label prior (px ..., score ...)"
// line per box of the last Run, best first; the five floats as IEEE bit patterns.
void Print();

}  // namespace detection_report

#endif  // RNNPOOL_DETECTION_REPORT_H_
