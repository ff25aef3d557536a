// See inverted_residual_options.h.
#include "inverted_residual_options.h"

#include "flatbuffers/flexbuffers.h"

namespace invres {
namespace {

struct OptionRule {
  const char* key;
  int32_t minimum;
  int32_t maximum;
};

constexpr OptionRule kOptionRules[INVRES_NUM_OPTIONS] = {
#define INVRES_X_OPTION_RULE(ENUM, KEY, MIN, MAX) {KEY, MIN, MAX},
    INVRES_OPTIONS(INVRES_X_OPTION_RULE)
#undef INVRES_X_OPTION_RULE
};

// A bounded string append for error messages (no snprintf dependence).
void Append(char* dst, size_t cap, const char* text) {
  size_t n = 0;
  while (n + 1 < cap && dst[n] != '\0') ++n;
  while (n + 1 < cap && *text != '\0') dst[n++] = *text++;
  dst[n] = '\0';
}

void SetError(Options* out, const char* what, const char* key) {
  out->ok = false;
  out->error[0] = '\0';
  Append(out->error, sizeof(out->error), what);
  if (key != nullptr) {
    Append(out->error, sizeof(out->error), " '");
    Append(out->error, sizeof(out->error), key);
    Append(out->error, sizeof(out->error), "'");
  }
}

// Whether `text` starts inside [buffer, buffer + length) and has its NUL there too.
bool TerminatedInside(const char* text, const uint8_t* buffer, size_t length) {
  const uint8_t* p = reinterpret_cast<const uint8_t*>(text);
  if (p < buffer || p >= buffer + length) return false;
  for (; p < buffer + length; ++p) {
    if (*p == 0) return true;
  }
  return false;
}

bool KeyEquals(const char* a, const char* b) {
  while (*a != '\0' && *a == *b) {
    ++a;
    ++b;
  }
  return *a == *b;
}

}  // namespace

void ParseOptions(const uint8_t* buffer, size_t length, Options* out) {
  out->ok = true;
  out->error[0] = '\0';
  for (int k = 0; k < INVRES_NUM_OPTIONS; ++k) out->values[k] = 0;
  if (buffer == nullptr || length == 0) return SetError(out, "the op has no options (a flexbuffer map)", nullptr);
  if (!flexbuffers::VerifyBuffer(buffer, length))
    return SetError(out, "the options are not a valid flexbuffer", nullptr);
  const flexbuffers::Reference root = flexbuffers::GetRoot(buffer, length);
  if (!root.IsMap()) return SetError(out, "the options are not a flexbuffer map", nullptr);
  const flexbuffers::Map map = root.AsMap();
  const flexbuffers::TypedVector keys = map.Keys();
  const flexbuffers::Vector values = map.Values();
  if (keys.size() != values.size()) return SetError(out, "the options map is malformed", nullptr);
  bool seen[INVRES_NUM_OPTIONS] = {};
  for (size_t i = 0; i < keys.size(); ++i) {
    const flexbuffers::Reference key_ref = keys[i];
    if (!key_ref.IsKey()) return SetError(out, "an option key is not a string", nullptr);
    const char* key = key_ref.AsKey();
    // flexbuffers::VerifyBuffer does not make sure a key is NUL-terminated inside the
    // buffer (its VerifyKey accepts the first non-zero byte), so check it here before any
    // string function reads the key.
    if (!TerminatedInside(key, buffer, length)) return SetError(out, "an option key runs past the options", nullptr);
    int index = -1;
    for (int k = 0; k < INVRES_NUM_OPTIONS; ++k) {
      if (KeyEquals(key, kOptionRules[k].key)) index = k;
    }
    if (index < 0) return SetError(out, "unknown option", key);
    if (seen[index]) return SetError(out, "option given twice:", key);
    seen[index] = true;
    const flexbuffers::Reference value = values[i];
    if (!(value.IsInt() || value.IsUInt())) return SetError(out, "option is not an integer:", key);
    const int64_t v = value.IsUInt()
                          ? (value.AsUInt64() > INT64_MAX ? INT64_MAX : static_cast<int64_t>(value.AsUInt64()))
                          : value.AsInt64();
    if (v < kOptionRules[index].minimum || v > kOptionRules[index].maximum) {
      return SetError(out, "option out of range:", key);
    }
    out->values[index] = static_cast<int32_t>(v);
  }
  for (int k = 0; k < INVRES_NUM_OPTIONS; ++k) {
    if (!seen[k]) return SetError(out, "missing option", kOptionRules[k].key);
  }
}

invres_config MakeConfig(const Options& options, int32_t batch, int32_t rows, int32_t cols, int32_t in_channels,
                         int32_t expanded_channels, int32_t out_channels) {
  const int32_t* o = options.values;
  invres_config cfg;
  cfg.batch = batch;
  cfg.in_rows = rows;
  cfg.in_cols = cols;
  cfg.in_channels = in_channels;
  cfg.expanded_channels = expanded_channels;
  cfg.out_channels = out_channels;
  cfg.stride = o[kOptionSTRIDE];
  cfg.expand = o[kOptionEXPAND];
  cfg.residual = o[kOptionRESIDUAL];
  cfg.expand_activation = o[kOptionEXPAND_ACTIVATION];
  cfg.depthwise_activation = o[kOptionDEPTHWISE_ACTIVATION];
  cfg.project_activation = o[kOptionPROJECT_ACTIVATION];
  cfg.add_activation = o[kOptionADD_ACTIVATION];
  return cfg;
}

}  // namespace invres
