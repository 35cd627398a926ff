#pragma once
// The canonical labelled pair (DESIGN §2) and its grade scale.
//
// pairs.jsonl, one object per line:
//   {"id", "query_id", "query", "item": {"id", "title", "category", "brand",
//    "model", "attributes": {name: value}, "description"}, "label", "split",
//    "truth": {dimension: verdict}  (optional: ground-truth verdicts, synthetic data)}
// Only id, query and item.title are required; label -1 means unlabelled.
//
// The grade scale (labels, their values, which grades count as relevant for
// binary metrics) is dataset metadata: `ellm prepare` writes it as
// dataset.json beside the pairs, and every stage reads it from there.
#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <vector>

namespace ellm {

using json = nlohmann::json;

struct Item {
  std::string id;
  std::string title;
  std::string category;  // "A / B / C" path, may be empty
  std::string brand;
  std::string model;
  std::map<std::string, std::string> attributes;
  std::string description;
};

struct Pair {
  std::string id;
  std::string query_id;
  std::string query;
  Item item;
  int label = -1;  // grade index into GradeScale::labels; -1 = unlabelled
  std::string split;
  std::map<std::string, std::string> truth;  // ground-truth verdict per dimension, when known
  json extra = json::object();               // other fields, kept verbatim (e.g. "relevance")
};

// Parses and validates one record; errors name `where` ("file:line") and the field.
Pair pair_from_json(const json& j, const std::string& where);
json pair_to_json(const Pair& p);
json item_to_json(const Item& item);
Item item_from_json(const json& j, const std::string& where);

// Reads a pairs.jsonl file (JSONL rules of io/jsonl.h). With `split` non-empty,
// keeps only pairs of that split.
std::vector<Pair> read_pairs(const std::string& path, const std::string& split = "", int64_t max_bad_lines = 0);
void write_pairs(const std::string& path, const std::vector<Pair>& pairs);

struct GradeScale {
  std::vector<std::string> labels{"irrelevant", "partial", "exact"};
  std::vector<double> values{0.0, 0.5, 1.0};
  int positive_from = 1;  // grades >= this count as relevant for binary metrics

  int size() const { return static_cast<int>(labels.size()); }
  // Index of a grade name (case-insensitive); -1 if unknown.
  int index_of(const std::string& name) const;
  bool positive(int grade) const { return grade >= positive_from; }
  json to_json() const;
  static GradeScale from_json(const json& j, const std::string& where);
};

// dataset.json next to `pairs_path` if present, else the default 3-grade scale.
GradeScale grade_scale_for(const std::string& pairs_path);
void write_dataset_info(const std::string& dir, const GradeScale& scale, const json& extra = json::object());

}  // namespace ellm
