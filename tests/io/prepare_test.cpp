// data/prepare: every input layout → canonical pairs, split by query; errors name file,
// line and column; on the shared Home Depot data, the documented counts.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include <unistd.h>

#include "ellm/data/prepare.h"
#include "ellm/util/build_paths.h"
#include "ellm/util/error.h"
#include "../common/expect_error.h"

using ellm::test_support::error_of;

namespace fs = std::filesystem;
using namespace ellm;

// Named, not anonymous: gtest derives a class per TEST_F from the fixture (unity builds warn
// about an anonymous base otherwise).
namespace prepare_test {

class Prepare : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("ellm_prepare_" + std::to_string(getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    fs::path p = dir_ / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << text;
    return p.string();
  }
  fs::path dir_;
};

const char* kHomeDepotHeader = "id\tquery_id\tquery\tproduct_uid\tproduct_title\trelevance\tgrade\n";

}  // namespace prepare_test
using namespace prepare_test;

TEST_F(Prepare, HomeDepotLayoutKeepsSplitsGradesAndRelevance) {
  write("hd/train.tsv", std::string(kHomeDepotHeader) +
                            "hd-1\tq1\tl bracket\t100001\tSimpson 12-Gauge Angle\t2.67\t2\n"
                            "hd-2\tq1\tl bracket\t100002\tShelf Bracket\t2\t1\n"
                            "hd-3\tq2\tgas mower\t100003\tPaint Roller\t1\t0\n");
  write("hd/dev.tsv", std::string(kHomeDepotHeader) + "hd-4\tq3\tdrill\t100004\tCordless Drill\t3\t2\r\n");
  PreparedDataset d = prepare_dataset("home_depot", (dir_ / "hd").string(), prepare_default_config());
  ASSERT_EQ(d.splits.size(), 2u);
  const auto& train = d.splits.at("train");
  ASSERT_EQ(train.size(), 3u);
  EXPECT_EQ(train[0].id, "hd-1");
  EXPECT_EQ(train[0].query_id, "q1");
  EXPECT_EQ(train[0].item.id, "100001");
  EXPECT_EQ(train[0].item.title, "Simpson 12-Gauge Angle");
  EXPECT_EQ(train[0].label, 2);
  EXPECT_EQ(train[1].label, 1);
  EXPECT_EQ(train[2].label, 0);
  EXPECT_DOUBLE_EQ(train[0].extra["relevance"].get<double>(), 2.67);
  EXPECT_EQ(train[0].split, "train");
  const auto& dev = d.splits.at("dev");
  ASSERT_EQ(dev.size(), 1u);
  EXPECT_EQ(dev[0].item.title, "Cordless Drill");  // CRLF stripped
  EXPECT_EQ(dev[0].split, "dev");

  json info = write_prepared((dir_ / "out").string(), d, {{"format", "home_depot"}});
  EXPECT_EQ(info["counts"]["train"]["pairs"], 3);
  EXPECT_EQ(info["counts"]["train"]["queries"], 2);
  EXPECT_EQ(info["counts"]["train"]["grades"]["exact"], 1);
  EXPECT_TRUE(fs::exists(dir_ / "out/train.pairs.jsonl"));
  EXPECT_TRUE(fs::exists(dir_ / "out/dev.pairs.jsonl"));
  auto back = read_pairs((dir_ / "out/train.pairs.jsonl").string());
  ASSERT_EQ(back.size(), 3u);
  EXPECT_EQ(back[1].item.title, "Shelf Bracket");
  EXPECT_EQ(back[1].label, 1);
}

TEST_F(Prepare, HomeDepotErrorsNameFileLineAndColumn) {
  write("a/train.tsv", "id\tquery\n1\tx\n");
  EXPECT_NE(error_of([&] { prepare_dataset("home_depot", (dir_ / "a").string(), prepare_default_config()); })
                .find("train.tsv: no column 'query_id'"),
            std::string::npos);
  write("b/train.tsv", std::string(kHomeDepotHeader) + "hd-1\tq1\tx\t1\tt\t2\t2\nhd-2\tq1\tx\t1\tt\t2\n");
  EXPECT_NE(error_of([&] { prepare_dataset("home_depot", (dir_ / "b").string(), prepare_default_config()); })
                .find("train.tsv:3: 6 fields but the header has 7"),
            std::string::npos);
  write("c/train.tsv", std::string(kHomeDepotHeader) + "hd-1\tq1\tx\t1\tt\t2\tgood\n");
  EXPECT_NE(error_of([&] { prepare_dataset("home_depot", (dir_ / "c").string(), prepare_default_config()); })
                .find("train.tsv:2: label 'good'"),
            std::string::npos);
  write("d/train.tsv", std::string(kHomeDepotHeader) + "hd-1\tq1\tx\t1\tt\tabc\t2\n");
  EXPECT_NE(error_of([&] { prepare_dataset("home_depot", (dir_ / "d").string(), prepare_default_config()); })
                .find("train.tsv:2: field 'relevance' is not a number"),
            std::string::npos);
  fs::create_directories(dir_ / "empty");
  EXPECT_NE(error_of([&] { prepare_dataset("home_depot", (dir_ / "empty").string(), prepare_default_config()); })
                .find("no train.tsv, dev.tsv or test.tsv"),
            std::string::npos);
  write("e/train.tsv", std::string(kHomeDepotHeader) + "hd-1\tq1\t\xC3\x28\t1\tt\t2\t2\n");
  EXPECT_NE(error_of([&] { prepare_dataset("home_depot", (dir_ / "e").string(), prepare_default_config()); })
                .find("train.tsv:2: invalid UTF-8"),
            std::string::npos);
}

TEST_F(Prepare, CsvWithQuotingAndColumnMappingSplitsByQuery) {
  // Quoted fields with commas, doubled quotes and a newline; a BOM on the header.
  std::string csv = "\xEF\xBB\xBFsearch,product,score,brand\n";
  for (int q = 0; q < 40; ++q)
    for (int i = 0; i < 3; ++i)
      csv += "\"Query " + std::to_string(q) + "\",\"Item, \"\"" + std::to_string(i) + "\"\"\nsecond line\"," +
             std::to_string(i) + ",Acme\n";
  write("pairs.csv", csv);
  json cfg = prepare_default_config();
  cfg["columns"]["query"] = "search";
  cfg["columns"]["title"] = "product";
  cfg["columns"]["label"] = "score";
  cfg["columns"]["brand"] = "brand";
  PreparedDataset d = prepare_dataset("csv", (dir_ / "pairs.csv").string(), cfg);
  size_t total = 0;
  std::map<std::string, std::string> split_of_query;
  for (const auto& [split, pairs] : d.splits) {
    total += pairs.size();
    for (const auto& p : pairs) {
      EXPECT_EQ(p.split, split);
      EXPECT_EQ(p.item.brand, "Acme");
      auto [it, inserted] = split_of_query.emplace(p.query_id, split);
      EXPECT_EQ(it->second, split) << "query " << p.query << " in two splits";
    }
  }
  EXPECT_EQ(total, 120u);
  EXPECT_EQ(split_of_query.size(), 40u);
  EXPECT_TRUE(d.splits.count("train"));
  const Pair& first = d.splits.begin()->second.front();
  EXPECT_EQ(first.item.title.substr(0, 9), "Item, \"0\"");
  EXPECT_NE(first.item.title.find("\nsecond line"), std::string::npos);
  // Splitting is a pure function of the normalised query and the seed.
  EXPECT_EQ(split_for_query(normalise_query("  Query   7 "), "ellm-split-v1", 10, 10),
            split_for_query("query 7", "ellm-split-v1", 10, 10));
  int dev = 0, test = 0;
  for (int q = 0; q < 2000; ++q) {
    auto s = split_for_query("q" + std::to_string(q), "seed", 10, 20);
    dev += s == "dev";
    test += s == "test";
  }
  EXPECT_NEAR(dev, 200, 60);
  EXPECT_NEAR(test, 400, 80);
}

TEST_F(Prepare, TsvAndJsonlWithLabelMapAndSplitColumn) {
  write("p.tsv", "q\tt\trating\tpart\nred shoe\tRed Shoe\tgood\ttrain\nred shoe\tBlue Hat\tbad\ttrain\n");
  json cfg = prepare_default_config();
  cfg["columns"]["query"] = "q";
  cfg["columns"]["title"] = "t";
  cfg["columns"]["label"] = "rating";
  cfg["columns"]["split"] = "part";
  cfg["label_map"] = {{"good", "exact"}, {"bad", 0}};
  PreparedDataset d = prepare_dataset("tsv", (dir_ / "p.tsv").string(), cfg);
  ASSERT_EQ(d.splits.at("train").size(), 2u);
  EXPECT_EQ(d.splits.at("train")[0].label, 2);
  EXPECT_EQ(d.splits.at("train")[1].label, 0);
  EXPECT_EQ(d.splits.at("train")[0].query_id, d.splits.at("train")[1].query_id);

  write("p.jsonl", "{\"query\": \"drill\", \"title\": \"Cordless Drill\", \"label\": \"partial\", \"split\": \"dev\"}\n"
                   "{\"query\": \"saw\", \"title\": \"Saw\"}\n");
  json jcfg = prepare_default_config();
  jcfg["columns"]["split"] = "split";
  PreparedDataset j = prepare_dataset("jsonl", (dir_ / "p.jsonl").string(), jcfg);
  ASSERT_EQ(j.splits.at("dev").size(), 1u);
  EXPECT_EQ(j.splits.at("dev")[0].label, 1);
  size_t unlabelled = 0;
  for (const auto& [s, pairs] : j.splits)
    for (const auto& p : pairs) unlabelled += p.label == -1;
  EXPECT_EQ(unlabelled, 1u);

  write("missing.tsv", "q\tt\nx\ty\n");
  EXPECT_NE(error_of([&] { prepare_dataset("tsv", (dir_ / "missing.tsv").string(), prepare_default_config()); })
                .find("missing.tsv: no column 'query'"),
            std::string::npos);
  EXPECT_NE(error_of([&] { prepare_dataset("parquet", (dir_ / "p.tsv").string(), prepare_default_config()); })
                .find("unknown dataset format 'parquet'"),
            std::string::npos);
}

TEST_F(Prepare, WandsLayout) {
  write("w/query.csv", "query_id\tquery\tquery_class\n0\tsalon chair\tSalon Chairs\n1\tdesk\tDesks\n");
  write("w/product.csv",
        "product_id\tproduct_name\tproduct_class\tcategory hierarchy\tproduct_description\tproduct_features\n"
        "10\tHydraulic Salon Chair\tSalon Chairs\tFurniture / Office/Salon\tA chair\t"
        "color:black|brand:Acme|material : vinyl\n"
        "11\tOak Desk\tDesks\t\tA desk\t\n");
  write("w/label.csv", "id\tquery_id\tproduct_id\tlabel\n0\t0\t10\tExact\n1\t0\t11\tIrrelevant\n2\t1\t11\tPartial\n");
  PreparedDataset d = prepare_dataset("wands", (dir_ / "w").string(), prepare_default_config());
  std::map<std::string, Pair> by_id;
  for (const auto& [s, pairs] : d.splits)
    for (const auto& p : pairs) by_id[p.id] = p;
  ASSERT_EQ(by_id.size(), 3u);
  const Pair& chair = by_id.at("wands-0");
  EXPECT_EQ(chair.query, "salon chair");
  EXPECT_EQ(chair.label, 2);
  EXPECT_EQ(chair.item.category, "Furniture / Office / Salon");
  EXPECT_EQ(chair.item.brand, "Acme");
  EXPECT_EQ(chair.item.attributes.at("color"), "black");
  EXPECT_EQ(chair.item.attributes.at("material"), "vinyl");
  EXPECT_EQ(by_id.at("wands-1").label, 0);
  EXPECT_EQ(by_id.at("wands-1").item.category, "Desks");  // falls back to product_class
  EXPECT_EQ(by_id.at("wands-2").label, 1);
  EXPECT_EQ(by_id.at("wands-0").split, by_id.at("wands-1").split);  // same query, same split

  write("w/label.csv", "id\tquery_id\tproduct_id\tlabel\n0\t7\t10\tExact\n");
  EXPECT_NE(error_of([&] { prepare_dataset("wands", (dir_ / "w").string(), prepare_default_config()); })
                .find("label.csv:2: query_id '7' is not in query.csv"),
            std::string::npos);
}

// The documented counts of ../shared/data/home_depot (its README and stats.json). The data may
// not be committed, so the test runs where the shared directory sits next to the checkout.
TEST_F(Prepare, SharedHomeDepotGivesTheDocumentedCounts) {
  fs::path hd;
  for (const char* rel : {"../shared/data/home_depot", "../../shared/data/home_depot"})
    if (fs::exists(fs::path(source_dir()) / rel / "train.tsv")) hd = fs::path(source_dir()) / rel;
  if (hd.empty()) GTEST_SKIP() << "../shared/data/home_depot is not next to this checkout";
  PreparedDataset d = prepare_dataset("home_depot", hd.string(), prepare_default_config());
  json info = write_prepared((dir_ / "hd").string(), d, {{"format", "home_depot"}});
  EXPECT_EQ(info["counts"]["train"]["pairs"], 52313);
  EXPECT_EQ(info["counts"]["train"]["queries"], 8350);
  EXPECT_EQ(info["counts"]["dev"]["pairs"], 7364);
  EXPECT_EQ(info["counts"]["dev"]["queries"], 1165);
  EXPECT_EQ(info["counts"]["train"]["grades"], json({{"irrelevant", 3518}, {"partial", 24495}, {"exact", 24300}}));
  EXPECT_EQ(info["counts"]["dev"]["grades"], json({{"irrelevant", 535}, {"partial", 3448}, {"exact", 3381}}));
  EXPECT_FALSE(info["counts"].contains("test"));  // the held-out queries are not shared
  EXPECT_EQ(read_pairs((dir_ / "hd/dev.pairs.jsonl").string()).size(), 7364u);
}
