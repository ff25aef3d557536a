// Instructions (QEMU) or cycles (boards) per operator: a TFLM MicroProfilerInterface
// that the interpreter calls around every operator's Invoke
// (micro_interpreter_graph.cc, ScopedMicroProfiler). It reads the same counter as
// the whole-Invoke measurement (cycle_counter.h) and keeps one record per event,
// with no heap: events past kMaxOperators are counted but not stored.
#ifndef RNNPOOL_OP_PROFILER_H_
#define RNNPOOL_OP_PROFILER_H_

#include <stdint.h>

#include "cycle_counter.h"
#include "tensorflow/lite/micro/micro_profiler_interface.h"

class OpProfiler : public tflite::MicroProfilerInterface {
 public:
  static constexpr uint32_t kMaxOperators = 256;

  uint32_t BeginEvent(const char* tag) override {
    const uint32_t handle = count_++;
    if (handle < kMaxOperators) {
      tags_[handle] = tag;
      ticks_[handle] = 0;
      start_[handle] = cycle_counter_read();
    }
    return handle;
  }

  void EndEvent(uint32_t handle) override {
    const uint64_t now = cycle_counter_read();
    if (handle < kMaxOperators) ticks_[handle] = now - start_[handle];
  }

  void Reset() { count_ = 0; }
  uint32_t events() const { return count_; }
  uint32_t stored() const { return count_ < kMaxOperators ? count_ : kMaxOperators; }
  const char* tag(uint32_t i) const { return tags_[i] != nullptr ? tags_[i] : "?"; }
  uint64_t ticks(uint32_t i) const { return ticks_[i]; }

 private:
  uint32_t count_ = 0;
  const char* tags_[kMaxOperators] = {};
  uint64_t start_[kMaxOperators] = {};
  uint64_t ticks_[kMaxOperators] = {};
};

#endif  // RNNPOOL_OP_PROFILER_H_
