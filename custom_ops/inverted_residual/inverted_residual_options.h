// The InvertedResidual op's flexbuffer options (inverted_residual_op_contract.h):
// parsed and range-checked here, on their own, so the parser can be fuzzed
// without TFLM (tests/m4/fuzz_invres_options.cc). Needs only flatbuffers'
// header-only flexbuffers.h; no heap, exceptions or RTTI.
#ifndef INVERTED_RESIDUAL_OPTIONS_H_
#define INVERTED_RESIDUAL_OPTIONS_H_

#include <stddef.h>
#include <stdint.h>

#include "inverted_residual.h"
#include "inverted_residual_op_contract.h"

namespace invres {

enum OptionIndex {
#define INVRES_X_OPTION_ENUM(ENUM, KEY, MIN, MAX) kOption##ENUM,
  INVRES_OPTIONS(INVRES_X_OPTION_ENUM)
#undef INVRES_X_OPTION_ENUM
      kOptionCount
};
static_assert(kOptionCount == INVRES_NUM_OPTIONS, "INVRES_OPTIONS and INVRES_NUM_OPTIONS disagree");

struct Options {
  int32_t values[INVRES_NUM_OPTIONS];  // by OptionIndex; valid when ok
  bool ok;
  char error[96];  // why not, when !ok
};

// Fills *out from a flexbuffer map holding exactly the contract's keys, each an
// integer within its range; otherwise out->ok is false and out->error says why.
void ParseOptions(const uint8_t* buffer, size_t length, Options* out);

// The kernel's config for parsed options and the tensors' dimensions
// (without expansion `expanded_channels` is the input's).
invres_config MakeConfig(const Options& options, int32_t batch, int32_t rows, int32_t cols, int32_t in_channels,
                         int32_t expanded_channels, int32_t out_channels);

}  // namespace invres

#endif  // INVERTED_RESIDUAL_OPTIONS_H_
