#include "ellm/eval/overlap.h"

#include <cctype>
#include <unordered_set>

#include "ellm/io/utf8.h"

namespace ellm {

static std::string normalise_word(std::string w) {
  for (char& c : w) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (w.size() >= 4 && w.back() == 's' && w[w.size() - 2] != 's') w.pop_back();
  return w;
}

std::vector<std::string> overlap_words(std::string_view text) {
  std::vector<std::string> words;
  std::string cur;
  for (size_t i = 0; i < text.size();) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (std::isalnum(c)) {
      cur += static_cast<char>(c);
      ++i;
      continue;
    }
    if (!cur.empty()) words.push_back(normalise_word(std::move(cur))), cur.clear();
    if (c >= 0x80) {  // a non-ASCII character is a word of its own
      size_t n = std::min(utf8_sequence_length(c), text.size() - i);
      words.emplace_back(text.substr(i, n));
      i += n;
    } else {
      ++i;
    }
  }
  if (!cur.empty()) words.push_back(normalise_word(std::move(cur)));
  return words;
}

double overlap_score(std::string_view query, std::string_view item_text) {
  auto q = overlap_words(query);
  if (q.empty()) return 0.0;
  auto t = overlap_words(item_text);
  std::unordered_set<std::string> have(t.begin(), t.end());
  size_t hit = 0;
  for (const auto& w : q) hit += have.count(w);
  return static_cast<double>(hit) / static_cast<double>(q.size());
}

}  // namespace ellm
