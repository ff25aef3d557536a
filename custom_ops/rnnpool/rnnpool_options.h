// The RNNPool op's flexbuffer options (rnnpool_op_contract.h): parsed and
// range-checked here, on their own, so the TFLM registration (rnnpool_tflm.cc,
// in Init) and the fuzz target (tests/m4/fuzz_rnnpool_options.cc) run the same
// code. Header-only (inline), needs only flatbuffers' header-only flexbuffers.h;
// no heap, exceptions or RTTI.
//
// A model's bytes are untrusted: flexbuffers::VerifyBuffer checks offsets and
// sizes, but not that a key's NUL lies inside the buffer (its VerifyKey accepts
// the first non-zero byte), so every key is checked before it is compared.
#ifndef RNNPOOL_OPTIONS_H_
#define RNNPOOL_OPTIONS_H_

#include <stddef.h>
#include <stdint.h>

#include "flatbuffers/flexbuffers.h"
#include "rnnpool_op_contract.h"

namespace rnnpool_options {

enum OptionIndex {
#define RNNPOOL_X_OPTION_ENUM(ENUM, KEY, MIN, MAX) kOption##ENUM,
  RNNPOOL_OPTIONS(RNNPOOL_X_OPTION_ENUM)
#undef RNNPOOL_X_OPTION_ENUM
      kOptionCount
};
static_assert(kOptionCount == RNNPOOL_NUM_OPTIONS, "RNNPOOL_OPTIONS and RNNPOOL_NUM_OPTIONS disagree");

struct OptionRule {
  const char* key;
  int32_t minimum;
  int32_t maximum;
};

constexpr OptionRule kOptionRules[RNNPOOL_NUM_OPTIONS] = {
#define RNNPOOL_X_OPTION_RULE(ENUM, KEY, MIN, MAX) {KEY, MIN, MAX},
    RNNPOOL_OPTIONS(RNNPOOL_X_OPTION_RULE)
#undef RNNPOOL_X_OPTION_RULE
};

// Options a model may omit (RNNPOOL_OPTION_DEFAULTS), and their values.
struct OptionDefault {
  int index;
  int32_t value;
};
constexpr OptionDefault kOptionDefaults[] = {
#define RNNPOOL_X_OPTION_DEFAULT(ENUM, VALUE) {kOption##ENUM, VALUE},
    RNNPOOL_OPTION_DEFAULTS(RNNPOOL_X_OPTION_DEFAULT)
#undef RNNPOOL_X_OPTION_DEFAULT
};

// A bounded string append for error messages (no snprintf dependence).
inline void Append(char* dst, size_t cap, const char* text) {
  size_t n = 0;
  while (n + 1 < cap && dst[n] != '\0') ++n;
  while (n + 1 < cap && *text != '\0') dst[n++] = *text++;
  dst[n] = '\0';
}

// Records why the options are refused; returns false.
inline bool Refuse(char* error, size_t cap, const char* what, const char* key) {
  error[0] = '\0';
  Append(error, cap, what);
  if (key != nullptr) {
    Append(error, cap, " '");
    Append(error, cap, key);
    Append(error, cap, "'");
  }
  return false;
}

// Whether `text` starts inside [buffer, buffer + length) and has its NUL there too.
inline bool TerminatedInside(const char* text, const uint8_t* buffer, size_t length) {
  const uint8_t* p = reinterpret_cast<const uint8_t*>(text);
  if (p < buffer || p >= buffer + length) return false;
  for (; p < buffer + length; ++p) {
    if (*p == 0) return true;
  }
  return false;
}

inline bool KeyEquals(const char* a, const char* b) {
  while (*a != '\0' && *a == *b) {
    ++a;
    ++b;
  }
  return *a == *b;
}

// Fills options[] (by OptionIndex) from a flexbuffer map holding the contract's
// keys, those with a default optional, each once and an integer within its
// range; otherwise returns false with `error` (capacity `cap`) saying why.
inline bool Parse(const uint8_t* buffer, size_t length, int32_t options[RNNPOOL_NUM_OPTIONS], char* error, size_t cap) {
  error[0] = '\0';
  for (int k = 0; k < RNNPOOL_NUM_OPTIONS; ++k) options[k] = 0;
  if (buffer == nullptr || length == 0) return Refuse(error, cap, "the op has no options (a flexbuffer map)", nullptr);
  if (!flexbuffers::VerifyBuffer(buffer, length)) {
    return Refuse(error, cap, "the options are not a valid flexbuffer", nullptr);
  }
  const flexbuffers::Reference root = flexbuffers::GetRoot(buffer, length);
  if (!root.IsMap()) return Refuse(error, cap, "the options are not a flexbuffer map", nullptr);
  const flexbuffers::Map map = root.AsMap();
  const flexbuffers::TypedVector keys = map.Keys();
  const flexbuffers::Vector values = map.Values();
  if (keys.size() != values.size()) return Refuse(error, cap, "the options map is malformed", nullptr);
  bool seen[RNNPOOL_NUM_OPTIONS] = {};
  for (size_t i = 0; i < keys.size(); ++i) {
    const flexbuffers::Reference key_ref = keys[i];
    if (!key_ref.IsKey()) return Refuse(error, cap, "an option key is not a string", nullptr);
    const char* key = key_ref.AsKey();
    if (!TerminatedInside(key, buffer, length))
      return Refuse(error, cap, "an option key runs past the options", nullptr);
    int index = -1;
    for (int k = 0; k < RNNPOOL_NUM_OPTIONS; ++k) {
      if (KeyEquals(key, kOptionRules[k].key)) index = k;
    }
    if (index < 0) return Refuse(error, cap, "unknown option", key);
    if (seen[index]) return Refuse(error, cap, "option given twice:", key);
    seen[index] = true;
    const flexbuffers::Reference value = values[i];
    if (!(value.IsInt() || value.IsUInt())) return Refuse(error, cap, "option is not an integer:", key);
    const int64_t v = value.IsUInt()
                          ? (value.AsUInt64() > INT64_MAX ? INT64_MAX : static_cast<int64_t>(value.AsUInt64()))
                          : value.AsInt64();
    if (v < kOptionRules[index].minimum || v > kOptionRules[index].maximum) {
      return Refuse(error, cap, "option out of range:", key);
    }
    options[index] = static_cast<int32_t>(v);
  }
  for (const OptionDefault& d : kOptionDefaults) {
    if (!seen[d.index]) {
      options[d.index] = d.value;
      seen[d.index] = true;
    }
  }
  for (int k = 0; k < RNNPOOL_NUM_OPTIONS; ++k) {
    if (!seen[k]) return Refuse(error, cap, "missing option", kOptionRules[k].key);
  }
  return true;
}

}  // namespace rnnpool_options

#endif  // RNNPOOL_OPTIONS_H_
