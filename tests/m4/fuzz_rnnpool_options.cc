// Fuzz target for the RNNPool op's flexbuffer option parser
// (custom_ops/rnnpool/rnnpool_options.h), the code the TFLM registration runs
// on a model's custom options in Init.
//
// Each input is either raw bytes handed to the parser (odd first byte), or a
// recipe for a flexbuffer map built with flexbuffers::Builder: keys drawn from
// the contract's keys and a few wrong ones, values of several flexbuffer types,
// duplicates and omissions; the built buffer is parsed, then parsed again after
// one byte is corrupted, after truncation, and with its last NUL turned into a
// letter (an unterminated key). Whatever the parser accepts must hold every
// contract key with its value in range, and a rejection must say why.
//
// libFuzzer: clang++ -fsanitize=fuzzer,address,undefined ...; without it,
// -DRNNPOOL_FUZZ_STANDALONE adds a main() feeding pseudo-random inputs:
//   ./fuzz_options <iterations> <seed>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <vector>

#include "flatbuffers/flexbuffers.h"
#include "rnnpool_options.h"

namespace {

unsigned long g_accepted = 0, g_parsed = 0;

using rnnpool_options::kOptionRules;
const char* const kWrongKeys[] = {"", "patch_row", "padding ", "Padding", "stride", "version2"};

struct Reader {
  const uint8_t* data;
  size_t size, at;
  uint32_t next() {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = (v << 8) | (at < size ? data[at++] : 0u);
    return v;
  }
};

void Check(const uint8_t* buffer, size_t length) {
  int32_t options[RNNPOOL_NUM_OPTIONS];
  char error[96];
  // A copy of exactly `length` bytes, so the sanitizer sees any read past it.
  std::vector<uint8_t> exact(buffer, buffer + length);
  const bool ok = rnnpool_options::Parse(length ? exact.data() : nullptr, length, options, error, sizeof(error));
  ++g_parsed;
  if (!ok) {
    if (error[0] == '\0') abort();  // a rejection always says why
    return;
  }
  ++g_accepted;
  for (int k = 0; k < RNNPOOL_NUM_OPTIONS; ++k) {
    if (options[k] < kOptionRules[k].minimum || options[k] > kOptionRules[k].maximum) abort();
  }
}

void BuildMap(Reader& r, flexbuffers::Builder& fbb) {
  const size_t start = fbb.StartMap();
  const uint32_t entries = r.next() % 14u;
  for (uint32_t e = 0; e < entries; ++e) {
    const uint32_t pick = r.next();
    const auto& rule = kOptionRules[(pick >> 3) % RNNPOOL_NUM_OPTIONS];
    const char* key =
        (pick & 7u) != 0 ? rule.key : kWrongKeys[(pick >> 3) % (sizeof(kWrongKeys) / sizeof(kWrongKeys[0]))];
    const uint32_t kind = r.next() % 10u, raw = r.next();
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
    Check(nullptr, 0);
    return 0;
  }
  Reader r{data, size, 1};
  if (data[0] & 1u) {
    Check(data + 1, size - 1);
    return 0;
  }
  flexbuffers::Builder fbb;
  if (r.next() % 6u == 0) {  // a valid map of every key, in range: the accepting path
    const size_t start = fbb.StartMap();
    for (int k = 0; k < RNNPOOL_NUM_OPTIONS; ++k) {
      const uint32_t span = static_cast<uint32_t>(kOptionRules[k].maximum - kOptionRules[k].minimum + 1);
      fbb.Int(kOptionRules[k].key, kOptionRules[k].minimum + static_cast<int32_t>(r.next() % span));
    }
    fbb.EndMap(start);
  } else {
    BuildMap(r, fbb);
  }
  fbb.Finish();
  std::vector<uint8_t> buffer = fbb.GetBuffer();
  Check(buffer.data(), buffer.size());
  if (!buffer.empty()) {
    std::vector<uint8_t> corrupt = buffer;
    corrupt[r.next() % corrupt.size()] ^= static_cast<uint8_t>(1u + r.next() % 255u);
    Check(corrupt.data(), corrupt.size());
    Check(buffer.data(), r.next() % buffer.size());  // truncated
    // Keys are stored first, each NUL-terminated: a key cut off at the end of the buffer.
    size_t cut = 0;
    for (size_t i = 0; i < buffer.size() && i < 64; ++i) {
      if (buffer[i] == 0 && i > 0) cut = i;
    }
    if (cut > 0) Check(buffer.data(), cut);
  }
  return 0;
}

#ifdef RNNPOOL_FUZZ_STANDALONE
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
