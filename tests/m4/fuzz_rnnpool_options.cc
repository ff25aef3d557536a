// Fuzz target for the RNNPool op's flexbuffer option parser
// (custom_ops/rnnpool/rnnpool_options.h), the code the TFLM registration runs
// on a model's custom options in Init. The inputs: fuzz_option_maps.h.
// Whatever the parser accepts must hold every contract key with its value in
// range, and a rejection must say why.
//
// libFuzzer: clang++ -fsanitize=fuzzer,address,undefined ...; without it,
// -DRNNPOOL_FUZZ_STANDALONE adds a main() feeding pseudo-random inputs:
//   ./fuzz_options <iterations> <seed>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <vector>

#include "fuzz_option_maps.h"
#include "rnnpool_options.h"

namespace {

fuzz_option_maps::Counts g_counts;

using rnnpool_options::kOptionRules;
const char* const kWrongKeys[] = {"", "patch_row", "padding ", "Padding", "stride", "version2"};

void Check(const uint8_t* buffer, size_t length) {
  int32_t options[RNNPOOL_NUM_OPTIONS];
  char error[96];
  // A copy of exactly `length` bytes, so the sanitizer sees any read past it.
  std::vector<uint8_t> exact(buffer, buffer + length);
  const bool ok = rnnpool_options::Parse(length ? exact.data() : nullptr, length, options, error, sizeof(error));
  ++g_counts.parsed;
  if (!ok) {
    if (error[0] == '\0') abort();  // a rejection always says why
    return;
  }
  ++g_counts.accepted;
  for (int k = 0; k < RNNPOOL_NUM_OPTIONS; ++k) {
    if (options[k] < kOptionRules[k].minimum || options[k] > kOptionRules[k].maximum) abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return fuzz_option_maps::Run(data, size, fuzz_option_maps::Reader{data, size, 1}, kOptionRules, kWrongKeys, Check);
}

#ifdef RNNPOOL_FUZZ_STANDALONE
int main(int argc, char** argv) {
  return fuzz_option_maps::StandaloneMain(argc, argv, LLVMFuzzerTestOneInput, g_counts);
}
#endif
