// Fuzz target for the InvertedResidual op's flexbuffer option parser
// (custom_ops/inverted_residual/inverted_residual_options.cc), the code the TFLM
// registration runs on a model's custom options in Init.
//
// The inputs: fuzz_option_maps.h, after six words of tensor dimensions.
// Whatever the parser accepts must hold exactly the contract's keys with values
// in range, and the options then meet the kernel's config validator with the
// fuzzed dimensions.
//
// libFuzzer: clang++ -fsanitize=fuzzer,address,undefined ...; without it,
// -DINVRES_FUZZ_STANDALONE adds a main() feeding pseudo-random inputs:
//   ./fuzz_options <iterations> <seed>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <vector>

#include "fuzz_option_maps.h"
#include "inverted_residual.h"
#include "inverted_residual_options.h"

namespace {

fuzz_option_maps::Counts g_counts;

struct Rule {
  const char* key;
  int32_t minimum, maximum;
};
const Rule kRules[INVRES_NUM_OPTIONS] = {
#define INVRES_X_OPTION_RULE(ENUM, KEY, MIN, MAX) {KEY, MIN, MAX},
    INVRES_OPTIONS(INVRES_X_OPTION_RULE)
#undef INVRES_X_OPTION_RULE
};
const char* const kWrongKeys[] = {"", "strid", "stride ", "Stride", "padding", "version2"};

void Check(const uint8_t* buffer, size_t length, int32_t dims[6]) {
  invres::Options options;
  // A copy of exactly `length` bytes, so the sanitizer sees any read past it.
  std::vector<uint8_t> exact(buffer, buffer + length);
  invres::ParseOptions(length ? exact.data() : nullptr, length, &options);
  if (length == 0 && options.ok) abort();  // no options is not a valid block
  ++g_counts.parsed;
  if (!options.ok) {
    if (options.error[0] == '\0') abort();  // a rejection always says why
    return;
  }
  ++g_counts.accepted;
  for (int k = 0; k < INVRES_NUM_OPTIONS; ++k) {
    if (options.values[k] < kRules[k].minimum || options.values[k] > kRules[k].maximum) abort();
  }
  const invres_config cfg = invres::MakeConfig(options, dims[0], dims[1], dims[2], dims[3], dims[4], dims[5]);
  invres_geometry geo;
  if (invres_validate_config(&cfg, &geo) == INVRES_OK) {
    if (geo.out_rows < 1 || geo.out_cols < 1 || geo.pad_top < 0 || geo.pad_top > 1 || geo.pad_left < 0 ||
        geo.pad_left > 1) {
      abort();
    }
    if (invres_s8_prepared_bytes(&cfg) == 0 || invres_s8_scratch_bytes(&cfg) == 0) abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz_option_maps::Reader r{data, size, 1};
  int32_t dims[6];
  for (int i = 0; i < 6; ++i) dims[i] = static_cast<int32_t>(r.next() % 70u) - 2;
  return fuzz_option_maps::Run(data, size, r, kRules, kWrongKeys,
                               [&](const uint8_t* buffer, size_t length) { Check(buffer, length, dims); });
}

#ifdef INVRES_FUZZ_STANDALONE
int main(int argc, char** argv) {
  return fuzz_option_maps::StandaloneMain(argc, argv, LLVMFuzzerTestOneInput, g_counts);
}
#endif
