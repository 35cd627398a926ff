#include "ellm/text/cot.h"

#include <fmt/format.h>

#include <set>

#include "ellm/util/strings.h"

namespace ellm {

const char* verdict_name(Verdict v) {
  switch (v) {
    case Verdict::match: return "match";
    case Verdict::partial: return "partial";
    case Verdict::mismatch: return "mismatch";
    case Verdict::absent: return "absent";
  }
  return "?";
}

bool parse_verdict(std::string_view name, Verdict& out) {
  std::string n = to_lower_ascii(trim(name));
  for (Verdict v : {Verdict::match, Verdict::partial, Verdict::mismatch, Verdict::absent})
    if (n == verdict_name(v)) {
      out = v;
      return true;
    }
  return false;
}

CotParseError::CotParseError(int line, std::string reason, const std::string& detail)
    : Error(fmt::format("CoT line {}: {}: {}", line, reason, detail)), line_(line), reason_(std::move(reason)) {}

namespace {

// Spaces within a line (a newline ends a CoT step, so it is not one of them).
bool is_inline_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }

std::string quote_term(const std::string& term) {
  if (term.empty()) return "-";
  std::string out = "\"";
  for (char c : term) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c == '\n' || c == '\r' || c == '\t' ? ' ' : c);
  }
  out.push_back('"');
  return out;
}

// A cursor over one line of CoT text.
struct LineParser {
  std::string_view s;
  size_t i = 0;
  int line;

  [[noreturn]] void error(const char* reason, const std::string& detail) const { throw CotParseError(line, reason, detail); }
  void skip_ws() {
    while (i < s.size() && is_inline_space(s[i])) ++i;
  }
  bool at_end() {
    skip_ws();
    return i >= s.size();
  }
  // Case-insensitive keyword, then optional spaces and ':'.
  bool keyword_colon(std::string_view word) {
    skip_ws();
    size_t save = i;
    if (to_lower_ascii(s.substr(i, word.size())) != word) return false;
    i += word.size();
    skip_ws();
    if (i < s.size() && s[i] == ':') {
      ++i;
      return true;
    }
    i = save;
    return false;
  }
  bool separator() {
    skip_ws();
    if (i < s.size() && s[i] == '|') {
      ++i;
      return true;
    }
    return false;
  }
  // A closing quote is one followed by optional spaces and then '|' or the end of the line.
  bool closes_here(size_t quote) const {
    size_t j = quote + 1;
    while (j < s.size() && is_inline_space(s[j])) ++j;
    return j >= s.size() || s[j] == '|';
  }
  std::string term(const char* side) {
    skip_ws();
    if (i >= s.size()) error("bad_term", fmt::format("the {} term is missing (use - or a \"quoted\" term)", side));
    if (s[i] == '-') {
      ++i;
      skip_ws();
      if (i < s.size() && s[i] != '|')
        error("bad_term", fmt::format("the {} term starts with '-' but is not just '-' (quote it)", side));
      return "";
    }
    if (s[i] != '"') error("bad_term", fmt::format("the {} term must be - or a \"quoted\" string", side));
    // Pass 1: the quote that closes is one followed by '|' or the end of the line, so
    // bare inch marks inside the term survive. Pass 2 (no such quote): the first bare
    // quote closes, and whatever follows is judged by the line's structure.
    for (int pass = 0; pass < 2; ++pass) {
      std::string out;
      for (size_t k = i + 1; k < s.size(); ++k) {
        char c = s[k];
        if (c == '\\' && k + 1 < s.size() && (s[k + 1] == '"' || s[k + 1] == '\\')) {
          out.push_back(s[++k]);
        } else if (c == '"' && (pass == 1 || closes_here(k))) {
          i = k + 1;
          std::string t = trim(out);
          if (t.empty()) error("empty_term", fmt::format("the {} term is \"\" (write - when the side does not state it)", side));
          return t;
        } else {
          out.push_back(c);
        }
      }
    }
    error("bad_term", fmt::format("the {} term's quote is not closed", side));
  }
};

}  // namespace

bool normalise_dimension(std::string_view tag, std::string& out) {
  std::string t = to_lower_ascii(trim(tag));
  if (t == "category" || t == "brand" || t == "model") {
    out = t;
    return true;
  }
  if (!starts_with(t, "attribute")) return false;
  std::string rest = trim(std::string_view(t).substr(9));
  if (rest.empty() || rest[0] != ':') return false;
  std::string name = collapse_whitespace(std::string_view(rest).substr(1));
  if (name.empty()) return false;
  for (char& c : name) {
    if (c == ' ') c = '_';
    if (c == '[' || c == ']' || c == '|' || c == '"') return false;
  }
  out = "attribute:" + name;
  return true;
}

std::string write_cot(const Cot& cot) {
  ELLM_CHECK(!cot.conclusion.empty(), "write_cot: the CoT has no conclusion");
  std::string out;
  for (const auto& step : cot.steps) {
    out += fmt::format("[{}] query: {} | item: {} | {}\n", step.dimension, quote_term(step.query_term),
                       quote_term(step.item_term), verdict_name(step.verdict));
  }
  out += fmt::format("[conclusion] {}\n", cot.conclusion);
  return out;
}

Cot parse_cot(std::string_view text, const GradeScale& grades) {
  Cot cot;
  std::set<std::string> seen;
  bool concluded = false;
  int line_no = 0, last_line = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view raw = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() + 1 : nl + 1;
    ++line_no;
    std::string line = trim(raw);
    if (line.empty()) continue;
    last_line = line_no;
    if (concluded) throw CotParseError(line_no, "text_after_conclusion", "nothing may follow the [conclusion] line");
    if (line[0] != '[') throw CotParseError(line_no, "missing_tag", "a line must start with [dimension] or [conclusion]");
    size_t close = line.find(']');
    if (close == std::string::npos) throw CotParseError(line_no, "unclosed_tag", "'[' without ']'");
    std::string tag = line.substr(1, close - 1);
    LineParser p{std::string_view(line), close + 1, line_no};

    if (to_lower_ascii(trim(tag)) == "conclusion") {
      if (cot.steps.empty()) throw CotParseError(line_no, "no_steps", "the conclusion comes before any step");
      std::string name = trim(std::string_view(line).substr(close + 1));
      int g = grades.index_of(name);
      if (g < 0)
        throw CotParseError(line_no, "unknown_grade",
                            fmt::format("'{}' is not a grade (expected one of: {})", name, join(grades.labels, ", ")));
      cot.conclusion = grades.labels[static_cast<size_t>(g)];
      cot.grade = g;
      concluded = true;
      continue;
    }

    CotStep step;
    step.line = line_no;
    if (!normalise_dimension(tag, step.dimension)) {
      std::string t = to_lower_ascii(trim(tag));
      if (starts_with(t, "attribute") && trim(std::string_view(t).substr(9)) == ":")
        throw CotParseError(line_no, "empty_attribute_name", "write [attribute:<name>]");
      throw CotParseError(line_no, "unknown_dimension",
                          fmt::format("'{}' is not category, brand, model, attribute:<name> or conclusion", tag));
    }
    if (!seen.insert(step.dimension).second)
      throw CotParseError(line_no, "duplicate_dimension", fmt::format("'{}' was already stated", step.dimension));
    if (!p.keyword_colon("query")) p.error("missing_query", "expected 'query:' after the tag");
    step.query_term = p.term("query");
    if (!p.separator() || !p.keyword_colon("item")) p.error("missing_item", "expected '| item:' after the query term");
    step.item_term = p.term("item");
    if (!p.separator()) p.error("missing_verdict", "expected '| <verdict>' after the item term");
    p.skip_ws();
    size_t vb = p.i;
    while (p.i < line.size() && !is_inline_space(line[p.i])) ++p.i;
    std::string verdict = line.substr(vb, p.i - vb);
    if (verdict.empty()) p.error("missing_verdict", "expected a verdict after the last '|'");
    if (!parse_verdict(verdict, step.verdict))
      p.error("unknown_verdict", fmt::format("'{}' is not a verdict (match, partial, mismatch, absent)", verdict));
    if (!p.at_end()) p.error("trailing_text", fmt::format("unexpected '{}' after the verdict", line.substr(p.i)));
    bool one_side_missing = step.query_term.empty() || step.item_term.empty();
    if (step.verdict == Verdict::absent && !one_side_missing)
      p.error("absent_needs_missing_term", "'absent' means one side does not state the dimension: write - for it");
    if (step.verdict != Verdict::absent && one_side_missing)
      p.error("verdict_needs_both_terms",
              fmt::format("'{}' compares two terms; a side written - can only be 'absent'", verdict_name(step.verdict)));
    cot.steps.push_back(std::move(step));
  }
  if (!concluded) {
    if (last_line == 0) throw CotParseError(1, "empty", "the CoT is empty");
    throw CotParseError(last_line, "missing_conclusion", "no [conclusion] line");
  }
  return cot;
}

void locate_terms(Cot& cot, const std::string& query, const std::string& item_text) {
  for (auto& step : cot.steps) {
    TermLocation q = locate_term(query, step.query_term);
    TermLocation it = locate_term(item_text, step.item_term);
    step.query_spans = std::move(q.spans);
    step.query_located = q.located;
    step.item_spans = std::move(it.spans);
    step.item_located = it.located;
  }
}

int unlocated_terms(const Cot& cot) {
  int n = 0;
  for (const auto& s : cot.steps) {
    n += !s.query_term.empty() && !s.query_located;
    n += !s.item_term.empty() && !s.item_located;
  }
  return n;
}

json cot_to_json(const Cot& cot) {
  auto spans = [](const std::vector<Span>& v) {
    json a = json::array();
    for (const auto& s : v) a.push_back({s.begin, s.end});
    return a;
  };
  auto term = [](const std::string& t) { return t.empty() ? json(nullptr) : json(t); };
  json steps = json::array();
  for (const auto& s : cot.steps)
    steps.push_back({{"dimension", s.dimension},
                     {"query", term(s.query_term)},
                     {"item", term(s.item_term)},
                     {"verdict", verdict_name(s.verdict)},
                     {"query_spans", spans(s.query_spans)},
                     {"item_spans", spans(s.item_spans)},
                     {"query_located", s.query_located},
                     {"item_located", s.item_located}});
  return {{"conclusion", cot.conclusion}, {"grade", cot.grade}, {"steps", steps}};
}

}  // namespace ellm
