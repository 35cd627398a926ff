#include "ellm/teacher/driver.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "ellm/io/atomic_file.h"
#include "ellm/io/jsonl.h"
#include "ellm/util/error.h"
#include "ellm/util/log.h"
#include "ellm/util/progress.h"
#include "ellm/util/strings.h"

namespace fs = std::filesystem;

namespace ellm {

std::string shard_file(const std::string& out_dir, int rank) {
  return fmt::format("{}/shards/part-{:05d}.jsonl", out_dir, rank);
}

namespace {

std::vector<std::string> shard_files(const std::string& out_dir) {
  std::vector<std::string> files;
  fs::path dir = fs::path(out_dir) / "shards";
  if (!fs::exists(dir)) return files;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::string name = e.path().filename().string();
    if (e.is_regular_file() && name.rfind("part-", 0) == 0 && e.path().extension() == ".jsonl")
      files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// Calls fn on every record of every shard file.
template <typename Fn>
void for_each_shard_record(const std::string& out_dir, const GradeScale& grades, Fn fn) {
  JsonlOptions opt;
  opt.allow_truncated_tail = true;  // a crash may cut the last line
  for (const auto& file : shard_files(out_dir))
    for_each_jsonl(file, [&](const json& j, const JsonlReader& r) { fn(teacher_record_from_json(j, r.where(), grades)); },
                   opt);
}

// A crash may leave a last line without its newline; cut it off so that appending starts on a fresh line.
void repair_tail(const std::string& path) {
  if (!fs::exists(path)) return;
  std::string content = read_file(path);
  size_t keep = content.rfind('\n');
  keep = keep == std::string::npos ? 0 : keep + 1;
  if (keep != content.size()) {
    spdlog::warn("{}: dropping a cut last line ({} bytes) before resuming", path, content.size() - keep);
    fs::resize_file(path, keep);
  }
}

}  // namespace

std::vector<std::string> done_ids(const std::string& out_dir, const GradeScale& grades) {
  std::vector<std::string> ids;
  for_each_shard_record(out_dir, grades, [&](const TeacherRecord& r) { ids.push_back(r.id); });
  return ids;
}

int64_t run_teacher_shard(TeacherModel& model, const std::vector<Pair>& pairs, const GradeScale& grades,
                          const ShardOptions& options) {
  ELLM_CHECK(options.world_size >= 1 && options.rank >= 0 && options.rank < options.world_size,
             "teacher: rank {} of world size {}", options.rank, options.world_size);
  ELLM_CHECK(options.batch >= 1, "teacher: batch must be >= 1 (got {})", options.batch);
  {
    std::unordered_set<std::string> seen;
    for (const Pair& p : pairs) ELLM_CHECK(seen.insert(p.id).second, "teacher: pair id '{}' occurs twice", p.id);
  }
  ensure_dir(options.out_dir + "/shards");
  std::string mine = shard_file(options.out_dir, options.rank);
  repair_tail(mine);
  std::vector<std::string> done_list = done_ids(options.out_dir, grades);
  std::unordered_set<std::string> done(done_list.begin(), done_list.end());

  std::vector<size_t> todo;
  for (size_t i = static_cast<size_t>(options.rank); i < pairs.size(); i += static_cast<size_t>(options.world_size))
    if (!done.count(pairs[i].id)) todo.push_back(i);
  std::vector<int64_t> cost(pairs.size(), 0);
  for (size_t i : todo) cost[i] = model.cost(pairs[i]);
  std::stable_sort(todo.begin(), todo.end(), [&](size_t a, size_t b) { return cost[a] > cost[b]; });
  if (!done.empty())
    spdlog::info("teacher rank {}: resuming, {} pairs already done, {} left in this shard", options.rank, done.size(),
                 todo.size());

  JsonlAppender out(mine);
  Progress progress(fmt::format("teacher rank {}", options.rank), static_cast<int64_t>(todo.size()), "pairs");
  for (size_t start = 0; start < todo.size(); start += static_cast<size_t>(options.batch)) {
    size_t end = std::min(todo.size(), start + static_cast<size_t>(options.batch));
    std::vector<Pair> batch;
    for (size_t b = start; b < end; ++b) batch.push_back(pairs[todo[b]]);
    std::vector<TeacherOutput> outputs = model.run(batch);
    ELLM_CHECK(outputs.size() == batch.size(), "teacher: the model returned {} outputs for {} pairs", outputs.size(),
               batch.size());
    for (size_t b = 0; b < batch.size(); ++b) {
      TeacherRecord r = make_teacher_record(batch[b], model.generates_cot() ? &outputs[b].cot : nullptr,
                                            std::move(outputs[b].grade_probs), grades);
      if (r.flagged) spdlog::debug("teacher: pair {}: CoT flagged: {}", r.id, r.parse_error);
      out.write(teacher_record_to_json(r, grades));
    }
    if (options.show_progress) progress.advance(static_cast<int64_t>(batch.size()));
  }
  progress.finish();
  return static_cast<int64_t>(todo.size());
}

std::vector<TeacherRecord> collect_in_order(const std::string& out_dir, const std::vector<Pair>& pairs,
                                            const GradeScale& grades) {
  std::unordered_map<std::string, TeacherRecord> by_id;
  for_each_shard_record(out_dir, grades, [&](TeacherRecord r) {
    std::string id = r.id;
    by_id.insert_or_assign(std::move(id), std::move(r));  // a pair redone after a crash: the last record wins
  });
  std::vector<TeacherRecord> out;
  std::vector<std::string> missing;
  for (const Pair& p : pairs) {
    auto it = by_id.find(p.id);
    if (it == by_id.end()) {
      missing.push_back(p.id);
      continue;
    }
    out.push_back(it->second);
  }
  if (!missing.empty()) {
    std::vector<std::string> head(missing.begin(), missing.begin() + std::min<size_t>(5, missing.size()));
    fail("teacher merge: {} of {} pairs have no record in {}/shards (first: {}); rerun `ellm teacher` to finish them",
         missing.size(), pairs.size(), out_dir, join(head, ", "));
  }
  return out;
}

}  // namespace ellm
