// ellm synth: writes the synthetic demo dataset (data/synth.h) with ground-truth verdicts.
#include <iostream>

#include "commands.h"
#include "ellm/data/synth.h"

namespace ellm::cli {

void add_synth(CLI::App& app) {
  auto* cmd = app.add_subcommand("synth", "generate a synthetic e-commerce relevance dataset with ground-truth verdicts");
  static SynthOptions opt;
  static std::string out;
  cmd->add_option("--out", out, "output directory (pairs.jsonl, dataset.json)")->required();
  cmd->add_option("--seed", opt.seed, "random seed; the same seed gives the same bytes")->capture_default_str();
  cmd->add_option("--pairs", opt.pairs, "number of pairs (rounded up to whole queries)")->capture_default_str();
  cmd->add_option("--pairs-per-query", opt.pairs_per_query, "candidate items per query")->capture_default_str();
  cmd->add_option("--label-noise", opt.label_noise, "probability that a label moves one grade")->capture_default_str();
  cmd->add_option("--typo-rate", opt.typo_rate, "probability that a query has a typo")->capture_default_str();
  cmd->add_option("--dev-pct", opt.dev_pct, "percent of queries in dev")->capture_default_str();
  cmd->add_option("--test-pct", opt.test_pct, "percent of queries in test")->capture_default_str();
  cmd->callback([] {
    SynthDataset data = synthesize(opt);
    write_synth(out, data);
    std::cout << data.stats["counts"].dump(2) << "\n";
  });
}

}  // namespace ellm::cli
