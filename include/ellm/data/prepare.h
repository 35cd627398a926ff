#pragma once
// Dataset → canonical pairs (DESIGN §2), split by query.
//
// Formats:
//  home_depot  a directory with train.tsv / dev.tsv (/ test.tsv) as in
//              ../shared/data/home_depot (columns id, query_id, query,
//              product_uid, product_title, relevance, grade); splits kept.
//  wands       Wayfair WANDS: query.csv, product.csv, label.csv (tab-separated);
//              labels Exact/Partial/Irrelevant; features "k:v|k:v".
//  tsv|csv|jsonl  one file, columns mapped by the `columns` config; split by
//              query hash unless a split column is mapped.
// Splitting by query: bucket = fnv1a64(seed + "\t" + normalised query) % 100;
// buckets [0, test_pct) → test, [test_pct, test_pct + dev_pct) → dev, rest → train.
#include <map>
#include <string>
#include <vector>

#include "ellm/data/pairs.h"

namespace ellm {

// Defaults of the prepare stage's config (the schema of its keys).
json prepare_default_config();

struct PreparedDataset {
  std::map<std::string, std::vector<Pair>> splits;  // "train", "dev", "test"
  GradeScale grades;
};

PreparedDataset prepare_dataset(const std::string& format, const std::string& input, const json& config);

// Writes <out>/<split>.pairs.jsonl per split and <out>/dataset.json (grades, counts).
json write_prepared(const std::string& out_dir, const PreparedDataset& data, const json& provenance);

// Lower-cased, whitespace-collapsed query: the unit of splitting.
std::string normalise_query(const std::string& q);
std::string split_for_query(const std::string& normalised_query, const std::string& seed, int dev_pct, int test_pct);

}  // namespace ellm
