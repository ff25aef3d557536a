#include "arena.h"

#include "model_config.h"

#if defined(RNNPOOL_ARENA_FILL_SRAM)
// The arena is the rest of the SRAM block after .data/.bss (linker symbols,
// firmware/platform/sections.ld): emulation measures a model with as much arena as the
// chip has.
extern "C" uint8_t _sarena[];
extern "C" uint8_t _heap_limit[];
uint8_t* ArenaStart() {
  uintptr_t p = (reinterpret_cast<uintptr_t>(_sarena) + 15u) & ~static_cast<uintptr_t>(15u);
  return reinterpret_cast<uint8_t*>(p);
}
size_t ArenaBytes() { return static_cast<size_t>(_heap_limit - ArenaStart()); }
#else
// The size export chose (the check's figure plus a margin), in the SRAM block the linker
// script reserves for section .arena.
namespace {
alignas(16) uint8_t g_arena[RNNPOOL_ARENA_BYTES] __attribute__((section(".arena")));
}  // namespace
uint8_t* ArenaStart() { return g_arena; }
size_t ArenaBytes() { return sizeof(g_arena); }
#endif

const char* ModelName() { return RNNPOOL_MODEL_NAME; }

namespace {
const char* g_profile_tags[RNNPOOL_MODEL_OPERATORS];
uint64_t g_profile_start[RNNPOOL_MODEL_OPERATORS];
uint64_t g_profile_ticks[RNNPOOL_MODEL_OPERATORS];
}  // namespace

ProfileRecords ProfilerRecords() { return {g_profile_tags, g_profile_start, g_profile_ticks, RNNPOOL_MODEL_OPERATORS}; }
