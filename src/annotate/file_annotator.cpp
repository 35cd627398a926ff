#include "ellm/annotate/file_annotator.h"

#include <set>

#include "ellm/io/jsonl.h"
#include "ellm/util/error.h"
#include "ellm/util/strings.h"

namespace ellm {

static std::string cot_text(const json& v, const std::string& where) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_array()) {
    std::string text;
    for (const auto& line : v) {
      if (!line.is_string()) fail("{}: 'cot' lines must be strings", where);
      text += line.get<std::string>() + "\n";
    }
    return text;
  }
  fail("{}: 'cot' must be a string or an array of lines", where);
}

FileAnnotator::FileAnnotator(std::string path) : path_(std::move(path)) {
  for_each_jsonl(path_, [&](const json& j, const JsonlReader& r) {
    ++lines_;
    if (!j.is_object() || !j.contains("id") || !j["id"].is_string())
      fail("{}: each line needs a string 'id' (the pair id)", r.where());
    auto& out = samples_[j["id"].get<std::string>()];
    if (j.contains("cot")) out.push_back(cot_text(j["cot"], r.where()));
    else if (j.contains("samples") && j["samples"].is_array())
      for (const auto& s : j["samples"]) out.push_back(cot_text(s, r.where()));
    else fail("{}: each line needs 'cot' (text or lines) or 'samples' (array)", r.where());
  });
}

std::vector<AnnotatorAnswer> FileAnnotator::annotate(const std::vector<Pair>& pairs) {
  std::vector<AnnotatorAnswer> out(pairs.size());
  std::set<std::string> asked;
  for (size_t i = 0; i < pairs.size(); ++i) {
    asked.insert(pairs[i].id);
    auto it = samples_.find(pairs[i].id);
    if (it == samples_.end()) {
      out[i].failed = true;
      out[i].error = "no CoT for this pair in " + path_;
    } else {
      out[i].samples = it->second;
    }
  }
  unmatched_ = 0;
  for (const auto& [id, s] : samples_) unmatched_ += !asked.count(id);
  return out;
}

}  // namespace ellm
