#include "ellm/text/prompt.h"

#include <filesystem>

#include "ellm/io/utf8.h"
#include "ellm/text/cot.h"
#include "ellm/text/item_text.h"
#include "ellm/util/config.h"
#include "ellm/util/strings.h"
#include "ellm/util/build_paths.h"

namespace ellm {
namespace {

const char* kPlaceholders[] = {"query", "title", "item_text", "item_fields", "grades"};

// Fills {name} placeholders; `value` returns the text for a known name.
template <typename Fn>
std::string substitute(const std::string& text, const std::string& where, Fn value) {
  std::string out;
  out.reserve(text.size() + 256);
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '{' && i + 1 < text.size() && text[i + 1] == '{') {
      out.push_back('{');
      ++i;
    } else if (c == '}' && i + 1 < text.size() && text[i + 1] == '}') {
      out.push_back('}');
      ++i;
    } else if (c == '{') {
      size_t close = text.find('}', i);
      if (close == std::string::npos) fail("{}: '{{' without '}}' at offset {} (write {{{{ for a literal brace)", where, i);
      std::string name = text.substr(i + 1, close - i - 1);
      bool known = false;
      for (const char* p : kPlaceholders) known |= name == p;
      if (!known) {
        std::vector<std::string> names(std::begin(kPlaceholders), std::end(kPlaceholders));
        std::string near = closest_match(name, names);
        fail("{}: unknown placeholder {{{}}}{} (known: {})", where, name, near.empty() ? "" : " (did you mean {" + near + "}?)",
             join(names, ", "));
      }
      out += value(name);
      i = close;
    } else if (c == '}') {
      fail("{}: stray '}}' at offset {} (write }}}} for a literal brace)", where, i);
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string cut_utf8(const std::string& s, size_t max_bytes) {
  if (s.size() <= max_bytes) return s;
  size_t end = max_bytes;
  while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
  return s.substr(0, end) + "…";
}

std::string fill(const std::string& text, const std::string& where, const PromptTemplate& tpl, const Pair* pair,
                 const GradeScale& grades) {
  return substitute(text, where, [&](const std::string& name) -> std::string {
    if (name == "grades") return join(grades.labels, ", ");
    if (!pair) fail("{}: the system text may only use {{grades}}, not {{{}}}", where, name);
    if (name == "query") return pair->query;
    if (name == "title") return pair->item.title;
    if (name == "item_text") return item_text(pair->item);
    return item_fields(pair->item, tpl.max_description_chars);
  });
}

}  // namespace

std::string item_fields(const Item& item, int max_description_chars) {
  std::string s = "title: " + item.title;
  auto field = [&](const std::string& name, const std::string& value) {
    if (!value.empty()) s += "\n" + name + ": " + value;
  };
  field("category", item.category);
  field("brand", item.brand);
  field("model", item.model);
  for (const auto& [name, value] : item.attributes) field(name, value);
  if (max_description_chars > 0) field("description", cut_utf8(collapse_whitespace(item.description), static_cast<size_t>(max_description_chars)));
  return s;
}

PromptTemplate prompt_template_from_json(const json& j, const std::string& source, const GradeScale& grades) {
  if (!j.is_object()) fail("{}: a prompt template must be a JSON object", source);
  PromptTemplate tpl;
  tpl.source = source;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    if (!k.empty() && k[0] == '_') continue;
    if (k != "system" && k != "user" && k != "examples" && k != "max_description_chars")
      fail("{}: unknown key '{}' (expected system, user, examples, max_description_chars)", source, k);
  }
  if (!j.contains("user") || !j["user"].is_string()) fail("{}: 'user' (a string with {{query}} etc.) is required", source);
  tpl.user = j["user"].get<std::string>();
  if (j.contains("system")) {
    if (!j["system"].is_string()) fail("{}: 'system' must be a string", source);
    tpl.system = j["system"].get<std::string>();
  }
  if (j.contains("max_description_chars")) {
    if (!j["max_description_chars"].is_number_integer()) fail("{}: 'max_description_chars' must be an integer", source);
    tpl.max_description_chars = j["max_description_chars"].get<int>();
  }
  if (j.contains("examples")) {
    if (!j["examples"].is_array()) fail("{}: 'examples' must be an array", source);
    int k = 0;
    for (const auto& e : j["examples"]) {
      std::string where = fmt::format("{}: examples[{}]", source, k++);
      if (!e.is_object() || !e.contains("cot")) fail("{}: an example needs query, item and cot", where);
      FewShotExample ex;
      json pj = {{"id", fmt::format("example-{}", k)}, {"query", e.value("query", json())}, {"item", e.value("item", json())}};
      ex.pair = pair_from_json(pj, where);
      if (e["cot"].is_string()) ex.cot = e["cot"].get<std::string>();
      else if (e["cot"].is_array()) {
        for (const auto& line : e["cot"]) {
          if (!line.is_string()) fail("{}: 'cot' lines must be strings", where);
          ex.cot += line.get<std::string>() + "\n";
        }
      } else {
        fail("{}: 'cot' must be a string or an array of lines", where);
      }
      try {
        parse_cot(ex.cot, grades);
      } catch (const CotParseError& err) {
        fail("{}: the example's CoT does not parse with the grades ({}): {}", where, join(grades.labels, ", "), err.what());
      }
      tpl.examples.push_back(std::move(ex));
    }
  }
  // Validate placeholders now, not at the first request.
  Pair probe;
  probe.query = "q";
  probe.item.title = "t";
  fill(tpl.system, source + ": system", tpl, nullptr, grades);
  fill(tpl.user, source + ": user", tpl, &probe, grades);
  return tpl;
}

PromptTemplate load_prompt_template(const std::string& path, const GradeScale& grades) {
  std::filesystem::path p(path);
  if (!std::filesystem::exists(p) && p.is_relative()) {
    auto in_tree = std::filesystem::path(ellm::source_dir()) / p;
    if (std::filesystem::exists(in_tree)) p = in_tree;
  }
  if (!std::filesystem::exists(p)) fail("prompt template '{}' not found (relative paths are tried from the working directory, then {})", path, ellm::source_dir());
  return prompt_template_from_json(read_json_file(p.string()), p.string(), grades);
}

std::string render_system(const PromptTemplate& tpl, const GradeScale& grades) {
  return fill(tpl.system, tpl.source + ": system", tpl, nullptr, grades);
}

std::string render_prompt(const PromptTemplate& tpl, const Pair& pair, const GradeScale& grades) {
  return fill(tpl.user, tpl.source + ": user", tpl, &pair, grades);
}

std::vector<ChatMessage> render_chat(const PromptTemplate& tpl, const Pair& pair, const GradeScale& grades) {
  std::vector<ChatMessage> msgs;
  if (!tpl.system.empty()) msgs.push_back({"system", render_system(tpl, grades)});
  for (const auto& ex : tpl.examples) {
    msgs.push_back({"user", render_prompt(tpl, ex.pair, grades)});
    msgs.push_back({"assistant", ex.cot});
  }
  msgs.push_back({"user", render_prompt(tpl, pair, grades)});
  return msgs;
}

}  // namespace ellm
