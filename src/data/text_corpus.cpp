#include "ellm/data/text_corpus.h"

#include <fstream>
#include <unordered_set>

#include "ellm/io/utf8.h"
#include "ellm/text/item_text.h"
#include "ellm/util/error.h"
#include "ellm/util/strings.h"

namespace ellm {

namespace {

// Appends `text` unless it is empty or already there.
void add_unique(std::vector<std::string>& out, std::unordered_set<std::string>& seen, std::string text) {
  if (text.empty() || !seen.insert(text).second) return;
  out.push_back(std::move(text));
}

}  // namespace

std::vector<std::string> corpus_from_pairs(const std::vector<Pair>& pairs) {
  std::vector<std::string> out;
  std::unordered_set<std::string> seen;
  for (const Pair& p : pairs) {
    add_unique(out, seen, trim(p.query));
    add_unique(out, seen, item_text(p.item));
  }
  return out;
}

std::vector<std::string> corpus_from_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  ELLM_CHECK(in.good(), "{}: cannot open the text corpus", path);
  std::vector<std::string> out;
  std::unordered_set<std::string> seen;
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n) {
    size_t bad = 0;
    ELLM_CHECK(is_valid_utf8(line, &bad), "{}:{}: invalid UTF-8 at byte {}", path, n, bad);
    add_unique(out, seen, trim(line));
  }
  return out;
}

}  // namespace ellm
