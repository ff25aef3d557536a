// Instructions (QEMU) or cycles (boards) per operator: a TFLM MicroProfilerInterface
// that the interpreter calls around every operator's Invoke
// (micro_interpreter_graph.cc, ScopedMicroProfiler). It reads the same counter as
// the whole-Invoke measurement (cycle_counter.h) and keeps one record per event,
// with no heap: events past the records' capacity are counted but not stored. The
// records come from arena.cc, sized to the model's operator count (model_config.h):
// a 14-operator model spends 280 B of RAM on them, not a fixed table's 5 KB.
#ifndef RNNPOOL_OP_PROFILER_H_
#define RNNPOOL_OP_PROFILER_H_

#include <stdint.h>

#include "arena.h"
#include "cycle_counter.h"
#include "tensorflow/lite/micro/micro_profiler_interface.h"

class OpProfiler : public tflite::MicroProfilerInterface {
 public:
  explicit OpProfiler(const ProfileRecords& records) : records_(records) {}

  uint32_t BeginEvent(const char* tag) override {
    const uint32_t handle = count_++;
    if (handle < records_.capacity) {
      records_.tags[handle] = tag;
      records_.ticks[handle] = 0;
      records_.start[handle] = cycle_counter_read();
    }
    return handle;
  }

  void EndEvent(uint32_t handle) override {
    const uint64_t now = cycle_counter_read();
    if (handle < records_.capacity) records_.ticks[handle] = now - records_.start[handle];
  }

  void Reset() { count_ = 0; }
  uint32_t events() const { return count_; }
  uint32_t stored() const { return count_ < records_.capacity ? count_ : records_.capacity; }
  const char* tag(uint32_t i) const { return records_.tags[i] != nullptr ? records_.tags[i] : "?"; }
  uint64_t ticks(uint32_t i) const { return records_.ticks[i]; }

 private:
  ProfileRecords records_;
  uint32_t count_ = 0;
};

#endif  // RNNPOOL_OP_PROFILER_H_
