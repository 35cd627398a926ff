// Chat templates as data (configs/chat_templates/<name>.json): render, then tokenize whole.
#include "ellm/text/chat_template.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <set>

#include "ellm/util/error.h"
#include "ellm/util/strings.h"
#include "ellm/util/build_paths.h"

namespace ellm {
namespace {

namespace fs = std::filesystem;

std::string find_template_file(const std::string& name_or_path) {
  if (fs::is_regular_file(name_or_path)) return name_or_path;
  std::vector<fs::path> tried;
  if (name_or_path.find('/') == std::string::npos && !ends_with(name_or_path, ".json")) {
    tried.push_back(fs::path("configs/chat_templates") / (name_or_path + ".json"));
    tried.push_back(fs::path(ellm::source_dir()) / "configs/chat_templates" / (name_or_path + ".json"));
  } else if (fs::path(name_or_path).is_relative()) {
    tried.push_back(fs::path(ellm::source_dir()) / name_or_path);
  }
  for (const auto& p : tried)
    if (fs::is_regular_file(p)) return p.string();
  std::string where;
  for (const auto& p : tried) where += " " + p.string();
  fail("chat template '{}' not found (tried{}{})", name_or_path, where.empty() ? " it as a file" : "", where);
}

std::string trim_whitespace(std::string_view s) {
  // Jinja's trim: Python str.strip() — ASCII whitespace is what matters in practice.
  auto ws = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; };
  size_t b = 0, e = s.size();
  while (b < e && ws(s[b])) ++b;
  while (e > b && ws(s[e - 1])) --e;
  return std::string(s.substr(b, e - b));
}

struct Rendered {
  std::string text;
  std::vector<std::pair<size_t, size_t>> response;  // byte ranges that the loss covers
};

}  // namespace

ChatTemplate ChatTemplate::load(const std::string& name_or_path) {
  std::string path = find_template_file(name_or_path);
  std::ifstream in(path);
  json j = json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.is_object()) fail("chat template {}: not a JSON object", path);
  static const std::set<std::string> known = {"_comment",         "name",        "bos",          "default_system",
                                              "turn_prefix",      "turn_suffix", "end_of_turn",  "generation_prompt",
                                              "trim_content",     "stop_tokens"};
  for (auto it = j.begin(); it != j.end(); ++it)
    if (!known.count(it.key())) fail("chat template {}: unknown key '{}'", path, it.key());
  auto str = [&](const char* key, bool required) -> std::string {
    if (!j.contains(key)) {
      if (required) fail("chat template {}: missing key '{}'", path, key);
      return "";
    }
    if (!j[key].is_string()) fail("chat template {}: '{}' must be a string", path, key);
    return j[key].get<std::string>();
  };
  ChatTemplate t;
  t.name_ = str("name", true);
  t.bos = str("bos", false);
  t.default_system = str("default_system", false);
  t.turn_prefix = str("turn_prefix", true);
  t.turn_suffix = str("turn_suffix", true);
  t.end_of_turn = str("end_of_turn", true);
  t.generation_prompt = str("generation_prompt", true);
  if (j.contains("trim_content")) {
    if (!j["trim_content"].is_boolean()) fail("chat template {}: 'trim_content' must be true or false", path);
    t.trim_content = j["trim_content"].get<bool>();
  }
  if (t.turn_prefix.find("{role}") == std::string::npos)
    fail("chat template {}: turn_prefix must contain {{role}}", path);
  if (t.end_of_turn.empty() || t.turn_suffix.find(t.end_of_turn) == std::string::npos)
    fail("chat template {}: end_of_turn '{}' must be non-empty and occur in turn_suffix '{}'", path, t.end_of_turn,
         t.turn_suffix);
  if (j.contains("stop_tokens")) {
    if (!j["stop_tokens"].is_array()) fail("chat template {}: 'stop_tokens' must be an array of strings", path);
    for (const auto& s : j["stop_tokens"]) {
      if (!s.is_string()) fail("chat template {}: 'stop_tokens' must be an array of strings", path);
      t.stop_tokens_.push_back(s.get<std::string>());
    }
  }
  if (t.stop_tokens_.empty()) t.stop_tokens_.push_back(t.end_of_turn);
  return t;
}

namespace {

Rendered render_impl(const ChatTemplate& t, const std::string& bos, const std::string& default_system,
                     const std::string& prefix, const std::string& suffix, const std::string& eot, bool trim,
                     const std::string& gen, const std::vector<ChatMessage>& messages, bool add_generation_prompt) {
  Rendered r;
  r.text = bos;
  auto turn = [&](const std::string& role, const std::string& raw) {
    ELLM_CHECK(!role.empty(), "chat template {}: a message has an empty role", t.name());
    std::string p = prefix;
    p.replace(p.find("{role}"), 6, role);
    r.text += p;
    std::string content = trim ? trim_whitespace(raw) : raw;
    size_t cb = r.text.size();
    r.text += content;
    size_t ce = r.text.size();
    size_t eb = ce + suffix.find(eot);
    r.text += suffix;
    if (role == "assistant") {
      r.response.emplace_back(cb, ce);
      r.response.emplace_back(eb, eb + eot.size());
    }
  };
  if (!default_system.empty() && (messages.empty() || messages.front().role != "system"))
    turn("system", default_system);
  for (const auto& m : messages) turn(m.role, m.content);
  if (add_generation_prompt) r.text += gen;
  return r;
}

void check_markers(const ChatTemplate& t, const std::string& bos, const std::string& eot, const Tokenizer& tok) {
  for (const auto* marker : {&bos, &eot}) {
    if (marker->empty()) continue;
    auto enc = tok.encode(*marker, false);
    if (enc.size() != 1)
      fail("chat template {}: tokenizer {} does not have '{}' as one token (it makes {} tokens); use a tokenizer "
           "trained with it as a user symbol",
           t.name(), tok.describe(), *marker, enc.size());
  }
}

}  // namespace

std::string ChatTemplate::render(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const {
  return render_impl(*this, bos, default_system, turn_prefix, turn_suffix, end_of_turn, trim_content,
                     generation_prompt, messages, add_generation_prompt)
      .text;
}

ChatEncoding ChatTemplate::encode(const std::vector<ChatMessage>& messages, const Tokenizer& tok) const {
  check_markers(*this, bos, end_of_turn, tok);
  Rendered r = render_impl(*this, bos, default_system, turn_prefix, turn_suffix, end_of_turn, trim_content,
                           generation_prompt, messages, false);
  Encoding enc = tok.encode(r.text, false);
  ChatEncoding out;
  out.ids = std::move(enc.ids);
  out.response_mask.assign(out.ids.size(), 0);
  size_t k = 0;  // ranges and token offsets are both increasing
  for (size_t i = 0; i < out.ids.size(); ++i) {
    size_t b = enc.offsets[i].first;
    while (k < r.response.size() && r.response[k].second <= b) ++k;
    if (k < r.response.size() && r.response[k].first <= b && b < r.response[k].second) out.response_mask[i] = 1;
  }
  return out;
}

std::vector<int64_t> ChatTemplate::encode_prompt(const std::vector<ChatMessage>& messages, const Tokenizer& tok) const {
  check_markers(*this, bos, end_of_turn, tok);
  return tok.encode(render(messages, true), false).ids;
}

}  // namespace ellm
