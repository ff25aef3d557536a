// Fuzz target for the InvertedResidual op's flexbuffer option parser
// (custom_ops/inverted_residual/inverted_residual_options.cc), the code the TFLM
// registration runs on a model's custom options in Init.
//
// Each input is either raw bytes handed to the parser (odd first byte), or a
// recipe for a flexbuffer map built with flexbuffers::Builder: keys drawn from
// the contract's keys and a few wrong ones, values of every flexbuffer type
// (ints in and out of range, uints, floats, strings, vectors, booleans),
// duplicates, omissions; the built buffer is parsed, then parsed again after
// one byte is corrupted and after truncation. Whatever the parser accepts
// must hold exactly the contract's keys with values in range, and the options
// then meet the kernel's config validator with fuzzed tensor dimensions.
//
// libFuzzer: clang++ -fsanitize=fuzzer,address,undefined ...; without it,
// -DINVRES_FUZZ_STANDALONE adds a main() feeding pseudo-random inputs:
//   ./fuzz_options <iterations> <seed>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <vector>

#include "flatbuffers/flexbuffers.h"
#include "inverted_residual.h"
#include "inverted_residual_options.h"

namespace {

unsigned long g_accepted = 0, g_parsed = 0;

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

struct Reader {
  const uint8_t* data;
  size_t size, at;
  uint32_t next() {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = (v << 8) | (at < size ? data[at++] : 0u);
    return v;
  }
};

void Check(const uint8_t* buffer, size_t length, int32_t dims[6]) {
  invres::Options options;
  invres::ParseOptions(buffer, length, &options);
  ++g_parsed;
  if (!options.ok) {
    if (options.error[0] == '\0') abort();  // a rejection always says why
    return;
  }
  ++g_accepted;
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

void BuildMap(Reader& r, flexbuffers::Builder& fbb) {
  const size_t start = fbb.StartMap();
  const uint32_t entries = r.next() % 12u;
  for (uint32_t e = 0; e < entries; ++e) {
    const uint32_t pick = r.next();
    const char* key = (pick & 7u) != 0 ? kRules[(pick >> 3) % INVRES_NUM_OPTIONS].key
                                       : kWrongKeys[(pick >> 3) % (sizeof(kWrongKeys) / sizeof(kWrongKeys[0]))];
    const uint32_t kind = r.next() % 10u, raw = r.next();
    const Rule& rule = kRules[(pick >> 3) % INVRES_NUM_OPTIONS];
    switch (kind) {
      case 0:
        fbb.Int(key, static_cast<int64_t>(static_cast<int32_t>(raw)));
        break;
      case 1:
        fbb.Int(key, (static_cast<int64_t>(raw) << 32) | raw);
        break;
      case 2:
        fbb.UInt(key, raw);
        break;
      case 3:
        fbb.Float(key, static_cast<float>(raw % 5u) * 0.5f);
        break;
      case 4:
        fbb.String(key, "1");
        break;
      case 5:
        fbb.Bool(key, raw & 1u);
        break;
      case 6:
        fbb.Vector(key, [&]() {
          fbb.Int(1);
          fbb.Int(2);
        });
        break;
      default:
        fbb.Int(key, rule.minimum + static_cast<int32_t>(raw % static_cast<uint32_t>(rule.maximum - rule.minimum + 1)));
        break;
    }
  }
  fbb.EndMap(start);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) {
    invres::Options options;
    invres::ParseOptions(nullptr, 0, &options);
    if (options.ok) abort();
    return 0;
  }
  Reader r{data, size, 1};
  int32_t dims[6];
  for (int i = 0; i < 6; ++i) dims[i] = static_cast<int32_t>(r.next() % 70u) - 2;
  if (data[0] & 1u) {
    Check(data + 1, size - 1, dims);
    return 0;
  }
  flexbuffers::Builder fbb;
  if (r.next() % 8u == 0) {  // a valid map of every key, in range: the accepting path
    const size_t start = fbb.StartMap();
    for (int k = 0; k < INVRES_NUM_OPTIONS; ++k) {
      const uint32_t span = static_cast<uint32_t>(kRules[k].maximum - kRules[k].minimum + 1);
      fbb.Int(kRules[k].key, kRules[k].minimum + static_cast<int32_t>(r.next() % span));
    }
    fbb.EndMap(start);
  } else {
    BuildMap(r, fbb);
  }
  fbb.Finish();
  std::vector<uint8_t> buffer = fbb.GetBuffer();
  Check(buffer.data(), buffer.size(), dims);
  if (!buffer.empty()) {
    std::vector<uint8_t> corrupt = buffer;
    corrupt[r.next() % corrupt.size()] ^= static_cast<uint8_t>(1u + r.next() % 255u);
    Check(corrupt.data(), corrupt.size(), dims);
    Check(buffer.data(), r.next() % buffer.size(), dims);  // truncated
  }
  return 0;
}

#ifdef INVRES_FUZZ_STANDALONE
#include <stdio.h>

int main(int argc, char** argv) {
  const long iterations = argc > 1 ? atol(argv[1]) : 10000;
  uint32_t seed = argc > 2 ? static_cast<uint32_t>(strtoul(argv[2], nullptr, 10)) : 1u;
  uint8_t buffer[512];
  if (seed == 0) seed = 1;
  for (long it = 0; it < iterations; ++it) {
    seed ^= seed << 13;
    seed ^= seed >> 17;
    seed ^= seed << 5;
    const size_t n = seed % sizeof(buffer);
    for (size_t i = 0; i < n; ++i) {
      seed ^= seed << 13;
      seed ^= seed >> 17;
      seed ^= seed << 5;
      buffer[i] = static_cast<uint8_t>(seed);
    }
    LLVMFuzzerTestOneInput(buffer, n);
  }
  printf("done iterations=%ld parsed=%lu accepted=%lu\n", iterations, g_parsed, g_accepted);
  return 0;
}
#endif
