#include "ellm/data/prepare.h"

#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "ellm/io/jsonl.h"
#include "ellm/io/utf8.h"
#include "ellm/util/error.h"
#include "ellm/util/strings.h"

namespace fs = std::filesystem;

namespace ellm {

json prepare_default_config() {
  return json::parse(R"({
    "grades": {"labels": ["irrelevant", "partial", "exact"], "values": [0.0, 0.5, 1.0], "positive_from": 1},
    "columns": {"id": "", "query_id": "", "query": "query", "item_id": "", "title": "title", "category": "",
                "brand": "", "description": "", "label": "label", "split": ""},
    "label_map": {},
    "split": {"seed": "ellm-split-v1", "dev_pct": 10, "test_pct": 10}
  })");
}

std::string normalise_query(const std::string& q) { return to_lower_ascii(collapse_whitespace(q)); }

static uint64_t fnv1a64(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

std::string split_for_query(const std::string& normalised_query, const std::string& seed, int dev_pct, int test_pct) {
  int bucket = static_cast<int>(fnv1a64(seed + "\t" + normalised_query) % 100);
  if (bucket < test_pct) return "test";
  if (bucket < test_pct + dev_pct) return "dev";
  return "train";
}

namespace {

// A delimited text table with a header. TSV: no quoting. CSV: RFC 4180 quoting.
struct Table {
  std::string path;
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  std::vector<int64_t> lines;  // source line of each row
  int column(const std::string& name, bool required = true) const {
    for (size_t i = 0; i < header.size(); ++i)
      if (header[i] == name) return static_cast<int>(i);
    if (required) fail("{}: no column '{}' (columns: {})", path, name, join(header, ", "));
    return -1;
  }
};

std::vector<std::string> parse_csv_record(std::istream& in, int64_t& line, bool& ok, const std::string& path) {
  std::vector<std::string> fields;
  std::string field;
  bool quoted = false, any = false;
  char c;
  while (in.get(c)) {
    any = true;
    if (quoted) {
      if (c == '"') {
        if (in.peek() == '"') {
          in.get(c);
          field += '"';
        } else {
          quoted = false;
        }
      } else {
        if (c == '\n') ++line;
        field += c;
      }
    } else if (c == '"' && field.empty()) {
      quoted = true;
    } else if (c == ',') {
      fields.push_back(std::move(field));
      field.clear();
    } else if (c == '\n') {
      ++line;
      if (!field.empty() && field.back() == '\r') field.pop_back();
      fields.push_back(std::move(field));
      ok = true;
      return fields;
    } else {
      field += c;
    }
  }
  if (quoted) fail("{}:{}: unterminated quoted field", path, line);
  if (any) {
    if (!field.empty() && field.back() == '\r') field.pop_back();
    fields.push_back(std::move(field));
  }
  ok = any;
  return fields;
}

Table read_table(const std::string& path, char sep) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot open '{}'", path);
  Table t;
  t.path = path;
  int64_t line = 0;
  auto next = [&](std::vector<std::string>& fields) -> bool {
    if (sep == ',') {
      bool ok = false;
      int64_t start = line + 1;
      fields = parse_csv_record(in, line, ok, path);
      if (ok && line < start) line = start;
      return ok;
    }
    std::string l;
    if (!std::getline(in, l)) return false;
    ++line;
    if (!l.empty() && l.back() == '\r') l.pop_back();
    fields = split(l, sep);
    return true;
  };
  std::vector<std::string> fields;
  if (!next(fields)) fail("{}: empty file (expected a header row)", path);
  if (!fields.empty() && starts_with(fields[0], "\xEF\xBB\xBF")) fields[0] = fields[0].substr(3);
  t.header = fields;
  while (next(fields)) {
    if (fields.size() == 1 && trim(fields[0]).empty()) continue;
    if (fields.size() != t.header.size())
      fail("{}:{}: {} fields but the header has {}", path, line, fields.size(), t.header.size());
    for (auto& f : fields) {
      size_t bad;
      if (!is_valid_utf8(f, &bad)) fail("{}:{}: invalid UTF-8", path, line);
    }
    t.rows.push_back(fields);
    t.lines.push_back(line);
  }
  return t;
}

int parse_grade(const std::string& raw, const GradeScale& grades, const json& label_map, const std::string& where) {
  std::string v = trim(raw);
  if (label_map.contains(v)) {
    const json& m = label_map[v];
    if (m.is_number_integer()) return m.get<int>();
    if (m.is_string()) {
      int g = grades.index_of(m.get<std::string>());
      if (g < 0) fail("{}: label_map['{}'] names unknown grade '{}'", where, v, m.get<std::string>());
      return g;
    }
    fail("{}: label_map['{}'] must be a grade name or index", where, v);
  }
  int g = grades.index_of(v);
  if (g >= 0) return g;
  char* end = nullptr;
  long n = std::strtol(v.c_str(), &end, 10);
  if (!v.empty() && end && *end == 0 && n >= 0 && n < grades.size()) return static_cast<int>(n);
  fail("{}: label '{}' is neither a grade name ({}) nor an index; map it with label_map", where, v,
       join(grades.labels, ", "));
}

PreparedDataset prepare_home_depot(const std::string& dir, const GradeScale& grades) {
  PreparedDataset data;
  data.grades = grades;
  bool any = false;
  for (const char* split : {"train", "dev", "test"}) {
    fs::path file = fs::path(dir) / (std::string(split) + ".tsv");
    if (!fs::exists(file)) continue;
    any = true;
    Table t = read_table(file.string(), '\t');
    int c_id = t.column("id"), c_qid = t.column("query_id"), c_q = t.column("query"), c_pid = t.column("product_uid"),
        c_title = t.column("product_title"), c_rel = t.column("relevance", false), c_grade = t.column("grade");
    auto& out = data.splits[split];
    for (size_t r = 0; r < t.rows.size(); ++r) {
      const auto& row = t.rows[r];
      std::string where = fmt::format("{}:{}", t.path, t.lines[r]);
      Pair p;
      p.id = row[c_id];
      p.query_id = row[c_qid];
      p.query = row[c_q];
      p.item.id = row[c_pid];
      p.item.title = row[c_title];
      p.label = parse_grade(row[c_grade], grades, json::object(), where);
      if (p.label >= grades.size()) fail("{}: grade {} outside the {} grades", where, p.label, grades.size());
      p.split = split;
      if (c_rel >= 0 && !row[c_rel].empty()) {
        char* end = nullptr;
        double relevance = std::strtod(row[c_rel].c_str(), &end);
        if (!end || *end != 0) fail("{}: field 'relevance' is not a number: '{}'", where, row[c_rel]);
        p.extra["relevance"] = relevance;
      }
      out.push_back(std::move(p));
    }
  }
  if (!any) fail("{}: no train.tsv, dev.tsv or test.tsv (expected the Home Depot layout)", dir);
  return data;
}

PreparedDataset prepare_wands(const std::string& dir, const GradeScale& grades, const json& config) {
  Table queries = read_table((fs::path(dir) / "query.csv").string(), '\t');
  Table products = read_table((fs::path(dir) / "product.csv").string(), '\t');
  Table labels = read_table((fs::path(dir) / "label.csv").string(), '\t');
  std::map<std::string, std::string> query_text;
  int q_id = queries.column("query_id"), q_text = queries.column("query");
  for (const auto& row : queries.rows) query_text[row[q_id]] = row[q_text];
  std::map<std::string, Item> items;
  int p_id = products.column("product_id"), p_name = products.column("product_name"),
      p_class = products.column("product_class", false), p_cat = products.column("category hierarchy", false),
      p_desc = products.column("product_description", false), p_feat = products.column("product_features", false);
  for (const auto& row : products.rows) {
    Item it;
    it.id = row[p_id];
    it.title = row[p_name];
    if (p_cat >= 0) {
      auto parts = split(row[p_cat], '/');
      for (auto& x : parts) x = trim(x);
      it.category = join(parts, " / ");
    }
    if (it.category.empty() && p_class >= 0) it.category = row[p_class];
    if (p_desc >= 0) it.description = row[p_desc];
    if (p_feat >= 0) {
      for (const auto& kv : split(row[p_feat], '|')) {
        auto colon = kv.find(':');
        if (colon == std::string::npos) continue;
        std::string k = trim(kv.substr(0, colon)), v = trim(kv.substr(colon + 1));
        if (k.empty() || v.empty()) continue;
        if (to_lower_ascii(k) == "brand" || to_lower_ascii(k) == "manufacturer") it.brand = v;
        else it.attributes[k] = v;
      }
    }
    items[it.id] = std::move(it);
  }
  json label_map = config["label_map"];
  for (auto [raw, grade] : {std::pair<const char*, const char*>{"Exact", "exact"}, {"Partial", "partial"},
                            {"Irrelevant", "irrelevant"}})
    if (!label_map.contains(raw)) label_map[raw] = grade;
  PreparedDataset data;
  data.grades = grades;
  int l_id = labels.column("id"), l_q = labels.column("query_id"), l_p = labels.column("product_id"),
      l_label = labels.column("label");
  const auto& sc = config["split"];
  for (size_t r = 0; r < labels.rows.size(); ++r) {
    const auto& row = labels.rows[r];
    std::string where = fmt::format("{}:{}", labels.path, labels.lines[r]);
    auto q = query_text.find(row[l_q]);
    if (q == query_text.end()) fail("{}: query_id '{}' is not in query.csv", where, row[l_q]);
    auto it = items.find(row[l_p]);
    if (it == items.end()) fail("{}: product_id '{}' is not in product.csv", where, row[l_p]);
    Pair p;
    p.id = "wands-" + row[l_id];
    p.query_id = "q" + row[l_q];
    p.query = q->second;
    p.item = it->second;
    p.label = parse_grade(row[l_label], grades, label_map, where);
    p.split = split_for_query(normalise_query(p.query), sc["seed"], sc["dev_pct"], sc["test_pct"]);
    data.splits[p.split].push_back(std::move(p));
  }
  return data;
}

PreparedDataset prepare_generic(const std::string& format, const std::string& file, const GradeScale& grades,
                                const json& config) {
  const json& cols = config["columns"];
  const json& sc = config["split"];
  auto col_name = [&](const char* key) { return cols[key].get<std::string>(); };
  PreparedDataset data;
  data.grades = grades;
  auto add = [&](const std::function<std::string(const std::string&)>& get, const std::string& where, size_t row) {
    Pair p;
    p.query = get(col_name("query"));
    if (trim(p.query).empty()) fail("{}: empty query", where);
    p.item.title = get(col_name("title"));
    p.item.id = get(col_name("item_id"));
    p.item.category = get(col_name("category"));
    p.item.brand = get(col_name("brand"));
    p.item.description = get(col_name("description"));
    std::string qid = get(col_name("query_id"));
    p.query_id = qid.empty() ? fmt::format("q{:012x}", fnv1a64(normalise_query(p.query)) & 0xffffffffffffull) : qid;
    std::string id = get(col_name("id"));
    p.id = id.empty() ? fmt::format("row-{}", row) : id;
    std::string raw_label = get(col_name("label"));
    p.label = raw_label.empty() ? -1 : parse_grade(raw_label, grades, config["label_map"], where);
    if (p.label >= grades.size()) fail("{}: grade {} outside the {} grades", where, p.label, grades.size());
    std::string split = get(col_name("split"));
    p.split = split.empty() ? split_for_query(normalise_query(p.query), sc["seed"], sc["dev_pct"], sc["test_pct"]) : split;
    data.splits[p.split].push_back(std::move(p));
  };
  if (format == "jsonl") {
    size_t row = 0;
    for_each_jsonl(file, [&](const json& j, const JsonlReader& r) {
      auto get = [&](const std::string& key) -> std::string {
        if (key.empty() || !j.contains(key) || j[key].is_null()) return "";
        return j[key].is_string() ? j[key].get<std::string>() : j[key].dump();
      };
      add(get, r.where(), ++row);
    });
  } else {
    Table t = read_table(file, format == "csv" ? ',' : '\t');
    for (const char* required : {"query", "title"}) t.column(col_name(required));
    for (size_t r = 0; r < t.rows.size(); ++r) {
      auto get = [&](const std::string& key) -> std::string {
        if (key.empty()) return "";
        int c = t.column(key);
        return t.rows[r][c];
      };
      add(get, fmt::format("{}:{}", file, t.lines[r]), r + 1);
    }
  }
  return data;
}

}  // namespace

PreparedDataset prepare_dataset(const std::string& format, const std::string& input, const json& config) {
  GradeScale grades = GradeScale::from_json(config["grades"], "config 'grades'");
  if (!fs::exists(input)) fail("{}: no such file or directory", input);
  if (format == "home_depot") return prepare_home_depot(input, grades);
  if (format == "wands") return prepare_wands(input, grades, config);
  if (format == "tsv" || format == "csv" || format == "jsonl") return prepare_generic(format, input, grades, config);
  fail("unknown dataset format '{}' (use home_depot, wands, tsv, csv or jsonl)", format);
}

json write_prepared(const std::string& out_dir, const PreparedDataset& data, const json& provenance) {
  ensure_dir(out_dir);
  json counts = json::object();
  std::map<std::string, std::string> query_split;
  for (const auto& [split, pairs] : data.splits) {
    std::set<std::string> queries;
    std::vector<int64_t> per_grade(data.grades.size(), 0);
    int64_t unlabelled = 0;
    for (const auto& p : pairs) {
      queries.insert(p.query_id);
      auto [it, inserted] = query_split.emplace(p.query_id, split);
      if (!inserted && it->second != split)
        fail("query '{}' ({}) occurs in both the {} and {} splits", p.query, p.query_id, it->second, split);
      if (p.label >= 0) per_grade[p.label]++;
      else ++unlabelled;
    }
    json grades = json::object();
    for (int g = 0; g < data.grades.size(); ++g) grades[data.grades.labels[g]] = per_grade[g];
    counts[split] = {{"pairs", pairs.size()}, {"queries", queries.size()}, {"grades", grades}};
    if (unlabelled) counts[split]["unlabelled"] = unlabelled;
    write_pairs((fs::path(out_dir) / (split + ".pairs.jsonl")).string(), pairs);
    spdlog::info("{}: {} pairs, {} queries -> {}/{}.pairs.jsonl", split, pairs.size(), queries.size(), out_dir, split);
  }
  json info = {{"counts", counts}, {"source", provenance}};
  write_dataset_info(out_dir, data.grades, info);
  return info;
}

}  // namespace ellm
