#pragma once
// The lexical-overlap rule: the control row of every results table (DESIGN §6).
// No training: score = fraction of the query's words that occur in the item text.
// Words are maximal runs of ASCII letters/digits (other bytes, e.g. CJK, each
// form a word), lower-cased, with a trailing plural "s" stripped from words of
// four or more letters ("sofas" = "sofa"). An empty query scores 0.
#include <string>
#include <string_view>
#include <vector>

namespace ellm {

std::vector<std::string> overlap_words(std::string_view text);
double overlap_score(std::string_view query, std::string_view item_text);

}  // namespace ellm
