#pragma once
// The text a catalogue offers, as a list of distinct texts: what `ellm pretrain`
// trains a student encoder on with masked language modelling.
//
//   from pairs:      every query and every item_text(item) (text/item_text.h, the
//                    rendering the students read), each distinct text once
//   from a text file one text per line; surrounding whitespace trimmed, empty
//                    lines skipped, each distinct text once; invalid UTF-8 is an
//                    error naming the line
// Order: first occurrence, so the corpus (and hence training) is deterministic.
#include <string>
#include <vector>

#include "ellm/data/pairs.h"

namespace ellm {

std::vector<std::string> corpus_from_pairs(const std::vector<Pair>& pairs);
std::vector<std::string> corpus_from_text_file(const std::string& path);

}  // namespace ellm
