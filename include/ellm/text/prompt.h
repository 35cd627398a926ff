#pragma once
// Prompt templates: how a query–item pair is shown to an LLM that writes a CoT
// (annotator LLMs in `ellm annotate`, and the teacher's fine-tuning prompts).
//
// A template is a JSON file (configs/prompts/annotate-cot.json):
//   {"system": "...", "user": "... {query} ... {item_fields} ...",
//    "examples": [{"query": "...", "item": {Item fields}, "cot": "..." or ["line", ...]}],
//    "max_description_chars": 300}
// Placeholders in system and user: {query}, {title}, {item_text} (text/item_text.h),
// {item_fields} (one "name: value" line per non-empty field, description cut to
// max_description_chars), {grades} (the grade labels, "a, b, c"). "{{" and "}}"
// are literal braces. An unknown placeholder is an error at load time, and so is a
// few-shot CoT that does not parse with the dataset's grades.
#include <string>
#include <vector>

#include "ellm/data/pairs.h"

namespace ellm {

struct FewShotExample {
  Pair pair;        // query and item
  std::string cot;  // the answer, in the CoT format (text/cot.h)
};

struct PromptTemplate {
  std::string source;  // file it came from, for messages
  std::string system;
  std::string user;
  std::vector<FewShotExample> examples;
  int max_description_chars = 300;
};

struct ChatMessage {
  std::string role;  // "system", "user", "assistant"
  std::string content;
};

// Reads and validates a template. A relative path that does not exist from the
// working directory is looked up under the source tree (ellm::source_dir()).
PromptTemplate load_prompt_template(const std::string& path, const GradeScale& grades);
PromptTemplate prompt_template_from_json(const json& j, const std::string& source, const GradeScale& grades);

// The user turn for one pair (the teacher's fine-tuning prompt).
std::string render_prompt(const PromptTemplate& tpl, const Pair& pair, const GradeScale& grades);
// The system text with its placeholders filled (grades only; no pair fields).
std::string render_system(const PromptTemplate& tpl, const GradeScale& grades);
// system, then (user, assistant) per few-shot example, then the pair's user turn.
std::vector<ChatMessage> render_chat(const PromptTemplate& tpl, const Pair& pair, const GradeScale& grades);

// "name: value" lines of an item's non-empty fields (the {item_fields} placeholder).
std::string item_fields(const Item& item, int max_description_chars);

}  // namespace ellm
