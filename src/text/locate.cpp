#include "ellm/text/locate.h"

#include <algorithm>
#include <string>

namespace ellm {
namespace {

bool is_ascii_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
// Bytes of UTF-8 sequences count as word characters: "café" is one word.
bool is_word(unsigned char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80; }
char lower(unsigned char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : static_cast<char>(c); }

// The text without whitespace, lower-cased, with each kept byte's original offset.
struct Folded {
  std::string bytes;
  std::vector<int64_t> offset;
};

Folded fold(std::string_view s) {
  Folded f;
  f.bytes.reserve(s.size());
  f.offset.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (is_ascii_space(c)) continue;
    f.bytes.push_back(lower(c));
    f.offset.push_back(static_cast<int64_t>(i));
  }
  return f;
}

struct Occurrence {
  Span span;
  int tier;  // 0: word boundaries both sides, 1: at the start only, 2: inside a word
};

std::vector<Occurrence> occurrences(std::string_view text, const Folded& t, const std::string& folded_term) {
  std::vector<Occurrence> out;
  if (folded_term.empty()) return out;
  for (size_t at = t.bytes.find(folded_term); at != std::string::npos; at = t.bytes.find(folded_term, at + 1)) {
    int64_t b = t.offset[at], e = t.offset[at + folded_term.size() - 1] + 1;
    auto ub = [&](int64_t i) { return static_cast<unsigned char>(text[static_cast<size_t>(i)]); };
    bool start_ok = b == 0 || !is_word(ub(b - 1)) || !is_word(ub(b));
    bool end_ok = e == static_cast<int64_t>(text.size()) || !is_word(ub(e)) || !is_word(ub(e - 1));
    // A UTF-8 continuation byte is never a start: a match there would split a character.
    if ((ub(b) & 0xC0) == 0x80) continue;
    out.push_back({{b, e}, start_ok && end_ok ? 0 : (start_ok ? 1 : 2)});
  }
  return out;
}

int best_tier(const std::vector<Occurrence>& occ) {
  int best = 3;
  for (const auto& o : occ) best = std::min(best, o.tier);
  return best;
}

}  // namespace

TermLocation locate_term(std::string_view text, std::string_view term) {
  TermLocation loc;
  Folded t = fold(text);
  std::string folded_term = fold(term).bytes;
  if (folded_term.empty()) return loc;

  auto phrase = occurrences(text, t, folded_term);
  if (!phrase.empty()) {
    int tier = best_tier(phrase);
    int64_t last_end = -1;
    for (const auto& o : phrase) {
      if (o.tier != tier || o.span.begin < last_end) continue;
      loc.spans.push_back(o.span);
      last_end = o.span.end;
    }
    loc.located = true;
    return loc;
  }

  std::vector<std::string> words;
  std::string word;
  for (char c : term) {
    if (is_ascii_space(static_cast<unsigned char>(c))) {
      if (!word.empty()) words.push_back(word), word.clear();
    } else {
      word.push_back(c);
    }
  }
  if (!word.empty()) words.push_back(word);
  if (words.size() < 2) return loc;

  int64_t prev_end = 0;
  std::vector<Span> spans;
  for (const auto& w : words) {
    auto occ = occurrences(text, t, fold(w).bytes);
    if (occ.empty()) return loc;  // one word missing: the term is not located
    int tier = best_tier(occ);
    const Occurrence* chosen = nullptr;
    for (const auto& o : occ)
      if (o.tier == tier && o.span.begin >= prev_end) {
        chosen = &o;
        break;
      }
    if (!chosen)
      for (const auto& o : occ)
        if (o.tier == tier) {
          chosen = &o;
          break;
        }
    spans.push_back(chosen->span);
    prev_end = chosen->span.end;
  }
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) { return a.begin < b.begin || (a.begin == b.begin && a.end < b.end); });
  for (const auto& s : spans)
    if (loc.spans.empty() || s.begin >= loc.spans.back().end) loc.spans.push_back(s);
  loc.located = true;
  loc.by_words = true;
  return loc;
}

}  // namespace ellm
