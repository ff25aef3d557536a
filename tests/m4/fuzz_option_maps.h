// The fuzz driver the custom ops' option-parser targets share
// (fuzz_rnnpool_options.cc, fuzz_invres_options.cc): each input is either raw
// bytes handed to the parser (odd first byte), or a recipe for a flexbuffer map
// built with flexbuffers::Builder: keys drawn from the contract's keys and a few
// wrong ones, values of several flexbuffer types (ints in and out of range,
// uints, floats, strings, vectors, booleans), duplicates and omissions, or now
// and then a valid map of every key. The built buffer is checked, then checked
// again after one byte is corrupted, after truncation, and cut after a key's NUL
// (an unterminated key). A target supplies its rules ({key, minimum, maximum}
// per option), wrong keys and a check(buffer, length) that parses an exact-length
// copy and aborts on anything the parser must not do.
#ifndef RNNPOOL_TESTS_FUZZ_OPTION_MAPS_H_
#define RNNPOOL_TESTS_FUZZ_OPTION_MAPS_H_

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <vector>

#include "flatbuffers/flexbuffers.h"

namespace fuzz_option_maps {

// Consumes the fuzz input four bytes at a time (zeros past its end).
struct Reader {
  const uint8_t* data;
  size_t size, at;
  uint32_t next() {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = (v << 8) | (at < size ? data[at++] : 0u);
    return v;
  }
};

struct Counts {
  unsigned long parsed = 0, accepted = 0;
};

template <typename Rule, size_t kRules, size_t kWrong>
void BuildMap(Reader& r, flexbuffers::Builder& fbb, const Rule (&rules)[kRules], const char* const (&wrong)[kWrong]) {
  const size_t start = fbb.StartMap();
  const uint32_t entries = r.next() % static_cast<uint32_t>(2 * kRules + 4);
  for (uint32_t e = 0; e < entries; ++e) {
    const uint32_t pick = r.next();
    const Rule& rule = rules[(pick >> 3) % kRules];
    const char* key = (pick & 7u) != 0 ? rule.key : wrong[(pick >> 3) % kWrong];
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

// One fuzz input (LLVMFuzzerTestOneInput's body); r starts after any bytes the target used.
template <typename Rule, size_t kRules, size_t kWrong, typename Check>
int Run(const uint8_t* data, size_t size, Reader r, const Rule (&rules)[kRules], const char* const (&wrong)[kWrong],
        Check check) {
  if (size == 0) {
    check(nullptr, 0);
    return 0;
  }
  if (data[0] & 1u) {
    check(data + 1, size - 1);
    return 0;
  }
  flexbuffers::Builder fbb;
  if (r.next() % 6u == 0) {  // a valid map of every key, in range: the accepting path
    const size_t start = fbb.StartMap();
    for (size_t k = 0; k < kRules; ++k) {
      const uint32_t span = static_cast<uint32_t>(rules[k].maximum - rules[k].minimum + 1);
      fbb.Int(rules[k].key, rules[k].minimum + static_cast<int32_t>(r.next() % span));
    }
    fbb.EndMap(start);
  } else {
    BuildMap(r, fbb, rules, wrong);
  }
  fbb.Finish();
  std::vector<uint8_t> buffer = fbb.GetBuffer();
  check(buffer.data(), buffer.size());
  if (!buffer.empty()) {
    std::vector<uint8_t> corrupt = buffer;
    corrupt[r.next() % corrupt.size()] ^= static_cast<uint8_t>(1u + r.next() % 255u);
    check(corrupt.data(), corrupt.size());
    check(buffer.data(), r.next() % buffer.size());  // truncated
    // Keys are stored first, each NUL-terminated: a key cut off at the end of the buffer.
    size_t cut = 0;
    for (size_t i = 0; i < buffer.size() && i < 64; ++i) {
      if (buffer[i] == 0 && i > 0) cut = i;
    }
    if (cut > 0) check(buffer.data(), cut);
  }
  return 0;
}

// main() of a standalone build (no libFuzzer): pseudo-random inputs.
//   ./fuzz_options <iterations> <seed>
inline int StandaloneMain(int argc, char** argv, int (*fuzz)(const uint8_t*, size_t), const Counts& counts) {
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
    fuzz(buffer, n);
  }
  printf("done iterations=%ld parsed=%lu accepted=%lu\n", iterations, counts.parsed, counts.accepted);
  return 0;
}

}  // namespace fuzz_option_maps

#endif  // RNNPOOL_TESTS_FUZZ_OPTION_MAPS_H_
