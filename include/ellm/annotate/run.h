#pragma once
// The `ellm annotate` stage: pairs.jsonl → annotations.jsonl + annotate-stats.json.
//
// Reads the pairs (optionally one split, optionally the first `limit`), asks every
// annotator for every pair, parses and votes (annotate/consistency.h), and writes
// atomically:
//   <out>/annotations.jsonl   one line per kept pair: the pair's fields, then
//     "cot": {"text", "conclusion", "grade", "steps": [... with query/item spans]},
//     "grade" (final grade index), "grade_label",
//     "annotators": [{"name", "kind", "grade" (vote or null), "samples", "parsed",
//                     "sample_grades", "failed", "error"?}],
//     "agreement": {"annotators_agree", "with_human", "fraction", "kept_from"},
//     "flagged": true (only when kept despite disagreeing)
//   <out>/annotate-stats.json  total (pairs read), kept, flagged, dropped (by reason),
//     failed (pairs whose every annotator failed), kept_by_grade, per annotator
//     (answered, failed, samples, parsed, parse_failures by reason, vote counts,
//     agreement and Cohen's kappa with the human grade, truth agreement on
//     synthetic data, its own counters), inter_annotator (agreement and kappa per
//     pair of annotators), unlocated terms of the kept CoTs, the options.
// LLM annotators keep their caches under <out>/cache/, so rerunning with the
// same <out> resumes: only what is missing is asked.
#include <string>
#include <vector>

#include "ellm/data/pairs.h"

namespace ellm {

// The stage's config defaults (also its schema).
json annotate_default_config();

// config: annotate_default_config() with overrides resolved. Returns the stats.
json run_annotate(const std::string& pairs_path, const std::string& out_dir, const json& config);

}  // namespace ellm
