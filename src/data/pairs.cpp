#include "ellm/data/pairs.h"

#include <filesystem>

#include "ellm/io/atomic_file.h"
#include "ellm/io/jsonl.h"
#include "ellm/util/config.h"
#include "ellm/util/error.h"
#include "ellm/util/strings.h"

namespace ellm {

static std::string get_string(const json& j, const char* key, const std::string& where, bool required) {
  if (!j.contains(key) || j[key].is_null()) {
    if (required) fail("{}: missing required field '{}'", where, key);
    return "";
  }
  if (j[key].is_string()) return j[key].get<std::string>();
  if (j[key].is_number_integer()) return std::to_string(j[key].get<int64_t>());
  fail("{}: field '{}' must be a string", where, key);
}

Item item_from_json(const json& j, const std::string& where) {
  if (!j.is_object()) fail("{}: field 'item' must be an object", where);
  Item it;
  it.id = get_string(j, "id", where + ": item", false);
  it.title = get_string(j, "title", where + ": item", true);
  it.category = get_string(j, "category", where + ": item", false);
  it.brand = get_string(j, "brand", where + ": item", false);
  it.model = get_string(j, "model", where + ": item", false);
  it.description = get_string(j, "description", where + ": item", false);
  if (j.contains("attributes") && !j["attributes"].is_null()) {
    if (!j["attributes"].is_object()) fail("{}: field 'item.attributes' must be an object", where);
    for (auto a = j["attributes"].begin(); a != j["attributes"].end(); ++a) {
      if (a.value().is_string()) it.attributes[a.key()] = a.value().get<std::string>();
      else if (a.value().is_number() || a.value().is_boolean()) it.attributes[a.key()] = a.value().dump();
      else fail("{}: item.attributes['{}'] must be a string", where, a.key());
    }
  }
  return it;
}

json item_to_json(const Item& it) {
  json j = {{"id", it.id}, {"title", it.title}};
  if (!it.category.empty()) j["category"] = it.category;
  if (!it.brand.empty()) j["brand"] = it.brand;
  if (!it.model.empty()) j["model"] = it.model;
  if (!it.attributes.empty()) j["attributes"] = it.attributes;
  if (!it.description.empty()) j["description"] = it.description;
  return j;
}

Pair pair_from_json(const json& j, const std::string& where) {
  if (!j.is_object()) fail("{}: a pair must be a JSON object", where);
  Pair p;
  p.id = get_string(j, "id", where, true);
  p.query = get_string(j, "query", where, true);
  p.query_id = get_string(j, "query_id", where, false);
  if (p.query_id.empty()) p.query_id = "q:" + to_lower_ascii(collapse_whitespace(p.query));
  if (!j.contains("item")) fail("{}: missing required field 'item'", where);
  p.item = item_from_json(j["item"], where);
  if (j.contains("label") && !j["label"].is_null()) {
    if (!j["label"].is_number_integer()) fail("{}: field 'label' must be an integer grade index", where);
    p.label = j["label"].get<int>();
    if (p.label < -1) fail("{}: field 'label' must be >= 0 (or -1 for unlabelled)", where);
  }
  p.split = get_string(j, "split", where, false);
  if (j.contains("truth") && !j["truth"].is_null()) {
    if (!j["truth"].is_object()) fail("{}: field 'truth' must be an object of dimension → verdict", where);
    for (auto t = j["truth"].begin(); t != j["truth"].end(); ++t) {
      if (!t.value().is_string()) fail("{}: truth['{}'] must be a string", where, t.key());
      p.truth[t.key()] = t.value().get<std::string>();
    }
  }
  for (auto it = j.begin(); it != j.end(); ++it) {
    static const char* known[] = {"id", "query", "query_id", "item", "label", "split", "truth"};
    bool is_known = false;
    for (auto k : known) is_known |= it.key() == k;
    if (!is_known) p.extra[it.key()] = it.value();
  }
  return p;
}

json pair_to_json(const Pair& p) {
  json j = {{"id", p.id}, {"query_id", p.query_id}, {"query", p.query}, {"item", item_to_json(p.item)},
            {"label", p.label}};
  if (!p.split.empty()) j["split"] = p.split;
  if (!p.truth.empty()) j["truth"] = p.truth;
  for (auto it = p.extra.begin(); it != p.extra.end(); ++it) j[it.key()] = it.value();
  return j;
}

std::vector<Pair> read_pairs(const std::string& path, const std::string& split, int64_t max_bad_lines) {
  std::vector<Pair> out;
  JsonlOptions opts;
  opts.max_bad_lines = max_bad_lines;
  for_each_jsonl(
      path,
      [&](const json& j, const JsonlReader& r) {
        Pair p = pair_from_json(j, r.where());
        if (split.empty() || p.split == split) out.push_back(std::move(p));
      },
      opts);
  return out;
}

void write_pairs(const std::string& path, const std::vector<Pair>& pairs) {
  JsonlWriter w(path);
  for (const auto& p : pairs) w.write(pair_to_json(p));
  w.commit();
}

int GradeScale::index_of(const std::string& name) const {
  std::string n = to_lower_ascii(trim(name));
  for (size_t i = 0; i < labels.size(); ++i)
    if (to_lower_ascii(labels[i]) == n) return static_cast<int>(i);
  return -1;
}

json GradeScale::to_json() const { return {{"labels", labels}, {"values", values}, {"positive_from", positive_from}}; }

GradeScale GradeScale::from_json(const json& j, const std::string& where) {
  GradeScale g;
  try {
    g.labels = j.at("labels").get<std::vector<std::string>>();
    g.values = j.at("values").get<std::vector<double>>();
    g.positive_from = j.value("positive_from", 1);
  } catch (const json::exception& e) {
    fail("{}: grades need 'labels' (strings) and 'values' (numbers): {}", where, e.what());
  }
  if (g.labels.size() < 2) fail("{}: at least two grade labels are needed", where);
  if (g.labels.size() != g.values.size())
    fail("{}: {} grade labels but {} values", where, g.labels.size(), g.values.size());
  if (g.positive_from < 1 || g.positive_from >= g.size())
    fail("{}: positive_from must be in [1, {}]", where, g.size() - 1);
  for (size_t i = 0; i < g.labels.size(); ++i)
    for (size_t k = 0; k < i; ++k)
      if (to_lower_ascii(g.labels[i]) == to_lower_ascii(g.labels[k])) fail("{}: duplicate grade label '{}'", where, g.labels[i]);
  return g;
}

GradeScale grade_scale_for(const std::string& pairs_path) {
  auto info = std::filesystem::path(pairs_path).parent_path() / "dataset.json";
  if (!std::filesystem::exists(info)) return GradeScale{};
  json j = read_json_file(info.string());
  if (!j.contains("grades")) fail("{}: missing 'grades'", info.string());
  return GradeScale::from_json(j["grades"], info.string());
}

void write_dataset_info(const std::string& dir, const GradeScale& scale, const json& extra) {
  json j = extra;
  j["grades"] = scale.to_json();
  write_file_atomic((std::filesystem::path(dir) / "dataset.json").string(), j.dump(2) + "\n");
}

}  // namespace ellm
