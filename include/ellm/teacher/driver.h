#pragma once
// Running a teacher over many pairs: sharded across ranks, resumable, merged
// into the final files in input order.
//
//   run_teacher_shard  rank r of w takes pairs i with i % w == r that are not
//                      done yet, sorted by cost (longest first, so batches hold
//                      similar lengths and the memory peak comes early), runs
//                      them in batches and appends one record per pair to
//                      OUT/shards/part-<rank>.jsonl (flushed per line).
//   resume             "done" = every id found in any OUT/shards/part-*.jsonl,
//                      so a crashed run (or one restarted with another world
//                      size) continues where it stopped; a line cut by a crash
//                      is dropped and its pair redone.
//   collect_in_order   the records of all shards, in the order of `pairs`;
//                      an error names the missing ids when some are not done.
//
// The model is behind TeacherModel, so this is tested with a deterministic fake.
#include <cstdint>
#include <string>
#include <vector>

#include "ellm/data/pairs.h"
#include "ellm/teacher/record.h"

namespace ellm {

struct TeacherOutput {
  std::string cot;  // the generated text (ignored when the model does not generate)
  std::vector<double> grade_probs;
};

class TeacherModel {
 public:
  virtual ~TeacherModel() = default;
  // Relative cost of a pair (e.g. its prompt length in tokens).
  virtual int64_t cost(const Pair& pair) const = 0;
  // One output per pair, in order.
  virtual std::vector<TeacherOutput> run(const std::vector<Pair>& batch) = 0;
  // False in --no-cot mode: outputs carry a distribution only.
  virtual bool generates_cot() const = 0;
};

struct ShardOptions {
  std::string out_dir;
  int rank = 0, world_size = 1;
  int64_t batch = 8;
  bool show_progress = true;
};

std::string shard_file(const std::string& out_dir, int rank);

// Ids already done (all shard files). Errors on a malformed line other than a cut last line.
std::vector<std::string> done_ids(const std::string& out_dir, const GradeScale& grades);

// Returns how many pairs this call processed.
int64_t run_teacher_shard(TeacherModel& model, const std::vector<Pair>& pairs, const GradeScale& grades,
                          const ShardOptions& options);

std::vector<TeacherRecord> collect_in_order(const std::string& out_dir, const std::vector<Pair>& pairs,
                                            const GradeScale& grades);

}  // namespace ellm
