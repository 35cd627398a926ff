// ellm annotate: CoT judgements for pairs from one or more annotators, kept by self-consistency.
#include <iostream>

#include "commands.h"
#include "ellm/annotate/run.h"

namespace ellm::cli {

void add_annotate(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "annotate", "write a chain-of-thought judgement per pair with annotators; keep the self-consistent ones");
  static std::string pairs, out, policy, split;
  static std::vector<std::string> annotators;
  static int64_t limit = -1;
  static bool keep_disagreeing = false;
  static ConfigOptions config;
  cmd->add_option("--pairs", pairs, "pairs.jsonl (dataset.json beside it gives the grades)")->required()->check(CLI::ExistingFile);
  cmd->add_option("--out", out, "output directory (annotations.jsonl, annotate-stats.json, cache/); rerun to resume")->required();
  cmd->add_option("--annotator", annotators,
                  "attribute | attribute:LEXICON.json | file:PATH.jsonl | openai:BASE_URL[,model=M,n=3,temperature=0.7,"
                  "concurrency=8,...] | openai:CONFIG.json[,k=v] (repeatable)");
  cmd->add_option("--policy", policy, "all-agree | majority | human-only (default all-agree)");
  cmd->add_option("--split", split, "annotate only this split");
  cmd->add_option("--limit", limit, "annotate only the first N pairs (after --split)");
  cmd->add_flag("--keep-disagreeing", keep_disagreeing, "keep pairs that fail the policy, marked \"flagged\": true");
  add_config_options(cmd, config);
  cmd->callback([] {
    json cfg = config.resolve(annotate_default_config());
    if (!annotators.empty()) cfg["annotators"] = annotators;
    if (!policy.empty()) cfg["policy"] = policy;
    if (!split.empty()) cfg["split"] = split;
    if (limit >= 0) cfg["limit"] = limit;
    if (keep_disagreeing) cfg["keep_disagreeing"] = true;
    json stats = run_annotate(pairs, out, cfg);
    save_resolved_config(out, cfg);
    json brief = {{"total", stats["total"]}, {"kept", stats["kept"]}, {"flagged", stats["flagged"]},
                  {"dropped", stats["dropped"]}, {"failed", stats["failed"]}};
    for (const auto& a : stats["annotators"])
      brief["annotators"][a["name"].get<std::string>()] = {{"agreement_with_human", a["agreement_with_human"]},
                                                            {"kappa_with_human", a["kappa_with_human"]}};
    std::cout << brief.dump(2) << "\n";
  });
}

}  // namespace ellm::cli
