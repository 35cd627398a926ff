#include "ellm/util/config.h"

#include <fstream>
#include <sstream>

#include "ellm/util/error.h"
#include "ellm/util/strings.h"

namespace ellm {

json read_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot open '{}'", path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    // Translate the byte offset into a line and column for the user.
    size_t offset = std::min<size_t>(e.byte == 0 ? 0 : e.byte - 1, text.size());
    size_t line = 1, col = 1;
    for (size_t i = 0; i < offset; ++i) {
      if (text[i] == '\n') ++line, col = 1; else ++col;
    }
    fail("{}:{}:{}: invalid JSON: {}", path, line, col, e.what());
  }
}

static std::string join_path(const std::string& path, const std::string& key) {
  return path.empty() ? key : path + "." + key;
}

static bool types_compatible(const json& def, const json& val) {
  if (def.is_null() || val.is_null()) return true;
  if (def.is_number() && val.is_number()) return def.is_number_float() || !val.is_number_float();
  return def.type() == val.type();
}

static std::vector<std::string> known_keys(const json& obj, const std::string& path) {
  std::vector<std::string> keys;
  for (auto it = obj.begin(); it != obj.end(); ++it) keys.push_back(join_path(path, it.key()));
  return keys;
}

void merge_config(json& base, const json& layer, const std::string& origin, const std::string& path) {
  if (!layer.is_object()) fail("{}: '{}' must be a JSON object", origin, path.empty() ? "<top level>" : path);
  bool open_map = base.is_object() && base.empty();
  for (auto it = layer.begin(); it != layer.end(); ++it) {
    const std::string& key = it.key();
    std::string full = join_path(path, key);
    if (!key.empty() && key[0] == '_') continue;  // comment
    if (!base.contains(key)) {
      if (open_map) {
        base[key] = it.value();
        continue;
      }
      std::string hint = closest_match(full, known_keys(base, path));
      fail("{}: unknown config key '{}'{}", origin, full, hint.empty() ? "" : fmt::format(" (did you mean '{}'?)", hint));
    }
    json& slot = base[key];
    if (slot.is_object() && it.value().is_object()) {
      merge_config(slot, it.value(), origin, full);
    } else {
      if (!types_compatible(slot, it.value()))
        fail("{}: config key '{}' must be {} (got {})", origin, full, slot.type_name(), it.value().type_name());
      // An integer default given a float stays float-typed; an int into a float default becomes float.
      if (slot.is_number_float() && it.value().is_number_integer())
        slot = it.value().get<double>();
      else
        slot = it.value();
    }
  }
}

void apply_override(json& config, const std::string& assignment) {
  auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) fail("--set '{}': expected key.path=value", assignment);
  std::string dotted = assignment.substr(0, eq), raw = assignment.substr(eq + 1);
  auto parts = split(dotted, '.');
  // Walk the defaults to find the declared type of the target.
  const json* node = &config;
  for (const auto& p : parts) {
    if (!node->is_object() || !node->contains(p)) {
      node = nullptr;
      break;
    }
    node = &(*node)[p];
  }
  json value;
  if (node && node->is_string()) {
    value = raw;
    // Allow an explicitly quoted JSON string too.
    if (raw.size() >= 2 && raw.front() == '"' && raw.back() == '"') {
      try { value = json::parse(raw); } catch (...) {}
    }
  } else {
    try {
      value = json::parse(raw);
    } catch (...) {
      value = raw;  // a bare word for an open map or a null default
    }
  }
  // Build a nested layer and merge it so that unknown keys and types are checked the same way.
  json layer = value;
  for (auto it = parts.rbegin(); it != parts.rend(); ++it) layer = json{{*it, layer}};
  merge_config(config, layer, fmt::format("--set {}", assignment));
}

json resolve_config(const json& defaults, const std::string& config_file, const std::vector<std::string>& overrides) {
  json config = defaults;
  if (!config_file.empty()) merge_config(config, read_json_file(config_file), config_file);
  for (const auto& o : overrides) apply_override(config, o);
  return config;
}

const json& config_at(const json& config, const std::string& dotted) {
  const json* node = &config;
  for (const auto& p : split(dotted, '.')) {
    if (!node->is_object() || !node->contains(p)) fail("config has no key '{}'", dotted);
    node = &(*node)[p];
  }
  return *node;
}

}  // namespace ellm
