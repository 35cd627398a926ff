// ellm prepare: a dataset (Home Depot, WANDS, generic TSV/CSV/JSONL) → pairs.jsonl splits.
#include <iostream>

#include "commands.h"
#include "ellm/data/prepare.h"

namespace ellm::cli {

void add_prepare(CLI::App& app) {
  auto* cmd = app.add_subcommand("prepare", "convert a dataset into canonical <split>.pairs.jsonl files, split by query");
  static std::string format = "home_depot", input, out;
  static ConfigOptions config;
  cmd->add_option("--format", format, "home_depot | wands | tsv | csv | jsonl")->capture_default_str();
  cmd->add_option("--input", input, "dataset directory (home_depot, wands) or file (tsv, csv, jsonl)")->required();
  cmd->add_option("--out", out, "output directory")->required();
  add_config_options(cmd, config);
  cmd->callback([] {
    json cfg = config.resolve(prepare_default_config());
    PreparedDataset data = prepare_dataset(format, input, cfg);
    json info = write_prepared(out, data, {{"format", format}, {"input", input}});
    save_resolved_config(out, cfg);
    std::cout << info["counts"].dump(2) << "\n";
  });
}

}  // namespace ellm::cli
