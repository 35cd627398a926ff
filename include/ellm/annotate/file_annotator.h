#pragma once
// The offline annotator: CoTs produced elsewhere (e.g. Qwen2-72B or LLaMA3-70B
// runs on a cluster), read from a JSONL file and joined to the pairs by id.
//
// One object per line: {"id": "<pair id>", "cot": "<CoT text>" | ["<line>", ...]}
// or {"id", "samples": ["<CoT text>", ...]}. Several lines with the same id add
// samples. Other fields are ignored. A pair with no line is a failed answer
// ("no CoT for this pair"); a line whose id is not among the pairs is counted
// (unmatched) and otherwise ignored. Malformed lines are errors naming file:line.
#include <map>
#include <string>
#include <vector>

#include "ellm/annotate/annotator.h"

namespace ellm {

class FileAnnotator : public Annotator {
 public:
  explicit FileAnnotator(std::string path);
  std::string name() const override { return "file:" + path_; }
  std::string kind() const override { return "file"; }
  std::vector<AnnotatorAnswer> annotate(const std::vector<Pair>& pairs) override;
  json stats() const override { return {{"lines", lines_}, {"ids", samples_.size()}, {"unmatched_ids", unmatched_}}; }

 private:
  std::string path_;
  std::map<std::string, std::vector<std::string>> samples_;
  int64_t lines_ = 0, unmatched_ = 0;
};

}  // namespace ellm
