#pragma once
// Annotators: anything that writes chain-of-thought relevance judgements (the
// CoT line format of text/cot.h) for query–item pairs. `ellm annotate` runs
// any number of them over the same pairs and keeps the self-consistent CoTs
// (annotate/consistency.h).
//
// Three kinds, chosen by a spec string:
//   attribute                 rule system over item fields and lexicons (annotate/attribute.h); no LLM
//   attribute:LEXICON.json    the same with another lexicon file
//   file:PATH                 CoTs produced elsewhere, JSONL joined by pair id (annotate/file_annotator.h)
//   openai:BASE_URL[,k=v...]  an OpenAI-compatible chat-completions server (annotate/openai.h)
//   openai:CONFIG.json[,k=v...]  the same, options from a JSON file (then the k=v overrides)
#include <memory>
#include <string>
#include <vector>

#include "ellm/data/pairs.h"

namespace ellm {

// One annotator's answer for one pair: k samples of raw CoT text (not yet
// parsed; parsing and voting happen in the consistency step), or a failure.
struct AnnotatorAnswer {
  std::vector<std::string> samples;
  bool failed = false;  // no answer: the request failed after all tries, or the file lacks the pair
  std::string error;    // why, when failed
};

class Annotator {
 public:
  virtual ~Annotator() = default;
  // Recorded in annotations.jsonl: "attribute", "file:cots.jsonl", "openai:qwen2-72b".
  virtual std::string name() const = 0;
  // "rule", "file" or "llm".
  virtual std::string kind() const = 0;
  // One answer per pair, in order. Per-pair failures are answers, not exceptions.
  virtual std::vector<AnnotatorAnswer> annotate(const std::vector<Pair>& pairs) = 0;
  // Counters worth reporting (requests, retries, cache hits, ...); {} when none.
  virtual json stats() const { return json::object(); }
};

struct AnnotatorContext {
  GradeScale grades;
  std::vector<Pair> catalogue;  // every pair read (all splits): the rule annotator mines lexicons from it
  std::string lexicon = "configs/lexicons/attributes.json";
  std::string cache_dir;        // where LLM annotators keep their resumable caches
  json openai = json::object(); // defaults for openai specs (annotate config "openai")
};

std::unique_ptr<Annotator> make_annotator(const std::string& spec, const AnnotatorContext& ctx);

}  // namespace ellm
