/* The tensor arena, the model's name and the profile's storage: the only app code that reads the generated
 * model_config.h, so main.cc (TFLM's interpreter and resolver, slow to compile) builds once
 * per operator set and board, not once per model. */
#ifndef RNNPOOL_FIRMWARE_ARENA_H_
#define RNNPOOL_FIRMWARE_ARENA_H_

#include <stddef.h>
#include <stdint.h>

/* 16-byte aligned start of the arena and its size in bytes. */
uint8_t* ArenaStart();
size_t ArenaBytes();
/* The exported model's name (RNNPOOL_MODEL_NAME). */
const char* ModelName();

/* Storage for the per-operator profile (op_profiler.h): one record per operator of the
 * model (RNNPOOL_MODEL_OPERATORS). */
typedef struct {
  const char** tags;
  uint64_t* start;
  uint64_t* ticks;
  uint32_t capacity;
} ProfileRecords;
ProfileRecords ProfilerRecords();

#endif /* RNNPOOL_FIRMWARE_ARENA_H_ */
