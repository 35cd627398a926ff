#include "ellm/train/trainer.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <thread>

#include <unistd.h>

#include "ellm/io/atomic_file.h"
#include "ellm/io/jsonl.h"
#include "ellm/io/safetensors.h"
#include "ellm/train/adamw.h"
#include "ellm/train/schedule.h"
#include "ellm/util/autocast.h"
#include "ellm/util/config.h"
#include "ellm/util/error.h"
#include "ellm/util/progress.h"
#include "ellm/util/strings.h"

namespace fs = std::filesystem;

namespace ellm {

json train_default_config() {
  TrainConfig d;
  return {{"max_steps", d.max_steps},
          {"epochs", d.epochs},
          {"batch_size", d.batch_size},
          {"micro_batch_size", d.micro_batch_size},
          {"lr", d.lr},
          {"weight_decay", d.weight_decay},
          {"beta1", d.beta1},
          {"beta2", d.beta2},
          {"eps", d.eps},
          {"warmup_ratio", d.warmup_ratio},
          {"min_lr_ratio", d.min_lr_ratio},
          {"max_grad_norm", d.max_grad_norm},
          {"group_by_length", d.group_by_length},
          {"log_every", d.log_every},
          {"eval_every", d.eval_every},
          {"save_every", d.save_every},
          {"keep_last", d.keep_last},
          {"early_stopping_patience", d.early_stopping_patience},
          {"seed", d.seed},
          {"dist_timeout_s", d.dist_timeout_s},
          {"precision", d.precision}};
}

TrainConfig train_config_from_json(const json& j) {
  TrainConfig c;
  c.max_steps = j.at("max_steps");
  c.epochs = j.at("epochs");
  c.batch_size = j.at("batch_size");
  c.micro_batch_size = j.at("micro_batch_size");
  c.lr = j.at("lr");
  c.weight_decay = j.at("weight_decay");
  c.beta1 = j.at("beta1");
  c.beta2 = j.at("beta2");
  c.eps = j.at("eps");
  c.warmup_ratio = j.at("warmup_ratio");
  c.min_lr_ratio = j.at("min_lr_ratio");
  c.max_grad_norm = j.at("max_grad_norm");
  c.group_by_length = j.at("group_by_length");
  c.log_every = j.at("log_every");
  c.eval_every = j.at("eval_every");
  c.save_every = j.at("save_every");
  c.keep_last = j.at("keep_last");
  c.early_stopping_patience = j.at("early_stopping_patience");
  c.seed = j.at("seed");
  c.dist_timeout_s = j.at("dist_timeout_s");
  c.precision = j.at("precision");
  parse_training_precision(c.precision, "train.precision");
  ELLM_CHECK(c.batch_size > 0 && c.micro_batch_size > 0, "train.batch_size and train.micro_batch_size must be positive");
  ELLM_CHECK(c.lr > 0, "train.lr must be positive");
  ELLM_CHECK(c.keep_last >= 1, "train.keep_last must be at least 1");
  return c;
}

std::string TrainTask::describe(const std::vector<int64_t>& examples) const {
  std::vector<std::string> s;
  for (size_t i = 0; i < examples.size() && i < 8; ++i) s.push_back(std::to_string(examples[i]));
  return "examples " + join(s, ", ") + (examples.size() > 8 ? ", …" : "");
}

static uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

std::vector<int64_t> epoch_permutation(int64_t n, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> perm(static_cast<size_t>(n));
  std::iota(perm.begin(), perm.end(), 0);
  uint64_t state = seed * 0x2545F4914F6CDD1Dull + static_cast<uint64_t>(epoch) + 1;
  for (int64_t i = n - 1; i > 0; --i) {
    int64_t j = static_cast<int64_t>(splitmix64(state) % static_cast<uint64_t>(i + 1));
    std::swap(perm[i], perm[j]);
  }
  return perm;
}

int64_t peak_memory_bytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (starts_with(line, "VmHWM:")) return std::stoll(trim(line.substr(6))) * 1024;
  return 0;
}

std::string Trainer::latest_checkpoint(const std::string& out_dir) {
  std::string best;
  int64_t best_step = -1;
  std::error_code ec;
  if (!fs::is_directory(out_dir)) return "";
  for (const auto& e : fs::directory_iterator(out_dir, ec)) {
    std::string name = e.path().filename().string();
    if (!starts_with(name, "checkpoint-") || name.find(".tmp-") != std::string::npos) continue;
    if (!fs::exists(e.path() / "DONE")) continue;
    char* end = nullptr;
    int64_t step = std::strtoll(name.c_str() + 11, &end, 10);
    if (!end || *end != 0) continue;
    if (step > best_step) best_step = step, best = e.path().string();
  }
  return best;
}

Trainer::Trainer(TrainConfig config, std::string out_dir, Distributed& dist)
    : config_(config), out_dir_(std::move(out_dir)), dist_(dist) {}

namespace {

struct StepPlan {
  std::vector<std::vector<int64_t>> micro_batches;  // this rank's
  std::vector<int64_t> global;                       // the whole global batch
};

StepPlan plan_step(TrainTask& task, const TrainConfig& c, int64_t step, int64_t steps_per_epoch, int rank, int world) {
  int64_t epoch = step / steps_per_epoch, k = step % steps_per_epoch;
  // Recomputed per step: cheap next to a training step and keeps no state to restore.
  std::vector<int64_t> perm = epoch_permutation(task.num_examples(), c.seed, epoch);
  StepPlan plan;
  plan.global.assign(perm.begin() + k * c.batch_size, perm.begin() + (k + 1) * c.batch_size);
  std::vector<int64_t> order = plan.global;
  if (c.group_by_length)
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t a, int64_t b) { return task.example_length(a) < task.example_length(b); });
  int64_t n_micro = c.batch_size / c.micro_batch_size;
  for (int64_t j = rank; j < n_micro; j += world)
    plan.micro_batches.emplace_back(order.begin() + j * c.micro_batch_size, order.begin() + (j + 1) * c.micro_batch_size);
  return plan;
}

// The seed of the default generators (CPU, and CUDA when present) for one step on one rank.
// Deriving it from (seed, step, rank) instead of carrying the generator's state forward makes a
// step's random draws (dropout masks) independent of everything that ran before it in the
// process: model construction, other runs, evaluation. That is what lets a resumed run draw
// exactly the masks the uninterrupted run drew, on every rank, with nothing to save.
uint64_t step_seed(uint64_t seed, int64_t step, int rank) {
  uint64_t x = seed;
  uint64_t a = splitmix64(x);
  x = a ^ (static_cast<uint64_t>(step) * 0xD1B54A32D192ED03ull);
  uint64_t b = splitmix64(x);
  x = b ^ (static_cast<uint64_t>(rank) * 0x8CB92BA72F3D8DD7ull);
  return splitmix64(x);
}

// For tests only (kill -9 mid-checkpoint): ELLM_TEST_CHECKPOINT_PAUSE=<step> makes the writer of
// checkpoint-<step> stop for a minute after its first file, so that a test can kill the process
// while the checkpoint is half written. Unset (always, outside tests): no effect.
int64_t checkpoint_pause_step() {
  const char* v = std::getenv("ELLM_TEST_CHECKPOINT_PAUSE");
  if (!v || !*v) return -1;
  char* end = nullptr;
  long long step = std::strtoll(v, &end, 10);
  ELLM_CHECK(end && *end == 0 && step > 0, "ELLM_TEST_CHECKPOINT_PAUSE='{}' is not a step number", v);
  return step;
}

// Keeps the metrics log consistent with a resumed run: drops records past `step`.
void truncate_metrics(const std::string& path, int64_t step) {
  if (!fs::exists(path)) return;
  JsonlOptions o;
  o.allow_truncated_tail = true;
  std::vector<json> kept;
  for (auto& r : read_jsonl(path, o))
    if (!r.contains("step") || r["step"].get<int64_t>() <= step) kept.push_back(std::move(r));
  write_jsonl(path, kept);
}

}  // namespace

TrainResult Trainer::fit(TrainTask& task, bool resume) {
  const TrainConfig& c = config_;
  const int world = dist_.world_size(), rank = dist_.rank();
  const int64_t n = task.num_examples();
  ELLM_CHECK(c.batch_size % (c.micro_batch_size * world) == 0,
             "train.batch_size ({}) must be a multiple of micro_batch_size ({}) × ranks ({})", c.batch_size,
             c.micro_batch_size, world);
  ELLM_CHECK(n >= c.batch_size, "only {} training examples, fewer than one batch of {}", n, c.batch_size);
  const int64_t steps_per_epoch = n / c.batch_size;
  const int64_t total_steps =
      c.max_steps > 0 ? c.max_steps : std::max<int64_t>(1, static_cast<int64_t>(std::ceil(c.epochs * steps_per_epoch)));
  CosineSchedule schedule{c.lr, static_cast<int64_t>(std::round(c.warmup_ratio * total_steps)), total_steps, c.min_lr_ratio};

  ensure_dir(out_dir_);
  auto params = task.trainable_parameters();
  ELLM_CHECK(!params.empty(), "nothing to train: the task has no trainable parameters");
  {
    // Every rank starts from rank 0's weights.
    std::vector<at::Tensor> t;
    for (auto& p : params) t.push_back(p.second.detach());
    dist_.broadcast(t);
  }
  AdamW optimizer(params, {c.lr, c.beta1, c.beta2, c.eps, c.weight_decay});
  const c10::ScalarType precision =
      parse_training_precision(c.precision, "train.precision", params.front().second.device());
  if (c.precision == "auto" && rank == 0)
    spdlog::info("train.precision auto: {}", precision == c10::kBFloat16 ? "bf16" : "fp32");

  TrainResult result;
  int64_t step = 0, evals_without_improvement = 0;
  const std::string metrics_path = (fs::path(out_dir_) / "metrics.jsonl").string();
  if (resume) {
    std::string ckpt = latest_checkpoint(out_dir_);
    if (!ckpt.empty()) {
      json st = read_json_file((fs::path(ckpt) / "trainer_state.json").string());
      step = st.at("step");
      evals_without_improvement = st.value("evals_without_improvement", 0);
      if (st.contains("best") && !st["best"].is_null()) {
        result.best.has_score = true;
        result.best.score = st["best"]["score"];
        result.best.metrics = st["best"]["metrics"];
      }
      SafetensorsFile weights((fs::path(ckpt) / "trainable.safetensors").string());
      {
        torch::NoGradGuard no_grad;
        ELLM_CHECK(weights.tensors().size() == params.size(), "{}: {} tensors but the model trains {}", weights.path(),
                   weights.tensors().size(), params.size());
        for (auto& [name, p] : params) {
          ELLM_CHECK(weights.contains(name), "{}: trainable tensor '{}' is missing", weights.path(), name);
          at::Tensor src = weights.view(name);
          ELLM_CHECK(src.sizes() == p.sizes(), "{}: tensor '{}' has the wrong shape", weights.path(), name);
          p.detach().copy_(src);
        }
      }
      optimizer.load_state(SafetensorsFile((fs::path(ckpt) / "optimizer.safetensors").string()));
      if (st.value("world_size", 1) != world)
        spdlog::warn("resuming a {}-rank run with {} ranks: the global batch is the same, so is the math",
                     st.value("world_size", 1), world);
      if (dist_.is_main()) truncate_metrics(metrics_path, step);
      spdlog::info("resumed from {} (step {}/{})", ckpt, step, total_steps);
    }
  }
  // Leftovers of checkpoints interrupted mid-write.
  if (dist_.is_main()) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(out_dir_, ec))
      if (e.path().filename().string().find(".tmp-") != std::string::npos) fs::remove_all(e.path(), ec);
  }

  const int64_t pause_in_checkpoint = checkpoint_pause_step();
  auto save_checkpoint_dir = [&](int64_t at_step) {
    if (dist_.is_main()) {
      std::string final_path = (fs::path(out_dir_) / fmt::format("checkpoint-{}", at_step)).string();
      AtomicDir dir(final_path);
      save_safetensors((fs::path(dir.staging()) / "trainable.safetensors").string(), params);
      if (at_step == pause_in_checkpoint) {
        spdlog::warn("pausing 60 s inside {} (ELLM_TEST_CHECKPOINT_PAUSE)", dir.staging());
        std::this_thread::sleep_for(std::chrono::seconds(60));
      }
      save_safetensors((fs::path(dir.staging()) / "optimizer.safetensors").string(), optimizer.state_tensors(),
                       optimizer.state_metadata());
      json st = {{"step", at_step}, {"total_steps", total_steps}, {"world_size", world},
                 {"epoch", at_step / steps_per_epoch}, {"evals_without_improvement", evals_without_improvement},
                 {"best", result.best.has_score ? json{{"score", result.best.score}, {"metrics", result.best.metrics}} : json()},
                 {"ellm_version", ELLM_VERSION}};
      write_file_atomic((fs::path(dir.staging()) / "trainer_state.json").string(), st.dump(2) + "\n");
      write_file_atomic((fs::path(dir.staging()) / "DONE").string(), "");
      dir.commit();
      // Keep the newest keep_last.
      std::vector<std::pair<int64_t, fs::path>> all;
      std::error_code ec;
      for (const auto& e : fs::directory_iterator(out_dir_, ec)) {
        std::string name = e.path().filename().string();
        if (starts_with(name, "checkpoint-") && name.find(".tmp-") == std::string::npos)
          all.emplace_back(std::strtoll(name.c_str() + 11, nullptr, 10), e.path());
      }
      std::sort(all.begin(), all.end());
      // Renamed out of the checkpoint namespace before removal, so that a kill mid-removal leaves
      // a .tmp- leftover (cleaned on the next start), never a checkpoint with files missing.
      for (size_t i = 0; i + c.keep_last < all.size(); ++i) {
        fs::path doomed = all[i].second;
        doomed += fmt::format(".tmp-removing-{}", ::getpid());
        fs::rename(all[i].second, doomed, ec);
        fs::remove_all(ec ? all[i].second : doomed, ec);
      }
      spdlog::info("saved checkpoint {}", final_path);
    }
    dist_.barrier();
  };

  auto run_eval = [&](int64_t at_step) -> bool {
    task.set_training(false);
    EvalResult ev = task.evaluate();
    task.set_training(true);
    if (!ev.has_score && ev.metrics.empty()) return false;
    bool improved = ev.has_score && (!result.best.has_score || ev.score > result.best.score);
    if (dist_.is_main()) {
      json rec = {{"step", at_step}, {"eval", ev.metrics}};
      if (ev.has_score) rec["eval_score"] = ev.score;
      JsonlAppender(metrics_path).write(rec);
      spdlog::info("eval at step {}: {}{}", at_step, ev.metrics.dump(), improved ? " (best so far)" : "");
    }
    if (improved) {
      result.best = ev;
      evals_without_improvement = 0;
      if (dist_.is_main()) {
        AtomicDir best((fs::path(out_dir_) / "best").string());
        task.save_model(best.staging());
        write_file_atomic((fs::path(best.staging()) / "eval.json").string(),
                          json{{"step", at_step}, {"score", ev.score}, {"metrics", ev.metrics}}.dump(2) + "\n");
        best.commit();
      }
    } else if (ev.has_score) {
      ++evals_without_improvement;
    }
    dist_.barrier();
    return c.early_stopping_patience > 0 && evals_without_improvement >= c.early_stopping_patience;
  };

  task.set_training(true);
  std::unique_ptr<Progress> progress;
  if (dist_.is_main()) progress = std::make_unique<Progress>("train", total_steps, "steps");
  if (progress && step > 0) progress->advance(0);
  double window_loss = 0, window_units = 0;
  int64_t window_tokens = 0, window_examples = 0;
  auto window_start = std::chrono::steady_clock::now();
  int64_t steps_this_process = 0;
  std::map<std::string, double> window_terms;

  while (step < total_steps) {
    task.begin_step(step);
    StepPlan plan = plan_step(task, c, step, steps_per_epoch, rank, world);
    torch::manual_seed(step_seed(c.seed, step, rank));
    double local_units = 0;
    for (const auto& mb : plan.micro_batches) local_units += task.count_units(mb);
    double global_units = dist_.allreduce_sum(local_units);
    ELLM_CHECK(global_units > 0, "step {}: the batch has no loss units (e.g. no response tokens): {}", step,
               task.describe(plan.global));

    optimizer.zero_grad();
    double local_loss = 0;
    int64_t local_tokens = 0;
    std::map<std::string, double> local_terms;
    for (const auto& mb : plan.micro_batches) {
      MicroBatchLoss out;
      {
        AutocastScope autocast(precision);  // the forward only; backward runs outside it
        out = task.loss(mb);
      }
      double value = out.loss_sum.item<double>();
      if (!std::isfinite(value))
        fail("step {}: the loss is {} on a micro-batch of {} (rank {}); stopping", step, value, task.describe(mb), rank);
      (out.loss_sum / global_units).backward();
      local_loss += value;
      local_tokens += out.tokens;
      for (const auto& [k, v] : out.terms) local_terms[k] += v;
    }
    dist_.allreduce_gradients(params);
    double grad_norm = clip_grad_norm(params, c.max_grad_norm);
    ELLM_CHECK(std::isfinite(grad_norm), "step {}: the gradient norm is {} ({}); stopping", step, grad_norm,
               task.describe(plan.global));
    double lr = schedule.at(step);
    optimizer.step(lr);
    ++step;
    ++steps_this_process;

    // Metrics, summed across ranks.
    double loss_sum = dist_.allreduce_sum(local_loss);
    window_loss += loss_sum;
    window_units += global_units;
    window_tokens += static_cast<int64_t>(dist_.allreduce_sum(static_cast<double>(local_tokens)));
    window_examples += c.batch_size;
    for (auto& [k, v] : local_terms) window_terms[k] += dist_.allreduce_sum(v);
    result.final_loss = loss_sum / global_units;
    if (progress) progress->advance(1, fmt::format("loss {:.4f} lr {:.2e}", result.final_loss, lr));
    if (step % c.log_every == 0 || step == total_steps) {
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - window_start).count();
      json rec = {{"step", step},
                  {"epoch", static_cast<double>(step) / steps_per_epoch},
                  {"loss", window_loss / window_units},
                  {"lr", lr},
                  {"grad_norm", grad_norm},
                  {"tokens_per_s", secs > 0 ? window_tokens / secs : 0.0},
                  {"examples_per_s", secs > 0 ? window_examples / secs : 0.0},
                  {"peak_memory_bytes", peak_memory_bytes()}};
      for (auto& [k, v] : window_terms) rec["loss_" + k] = v / window_units;
      if (dist_.is_main()) JsonlAppender(metrics_path).write(rec);
      window_loss = window_units = 0;
      window_tokens = window_examples = 0;
      window_terms.clear();
      window_start = std::chrono::steady_clock::now();
    }
    bool stop = false;
    if (c.eval_every > 0 && step % c.eval_every == 0 && step < total_steps) stop = run_eval(step);
    if ((c.save_every > 0 && step % c.save_every == 0) || (stop && step < total_steps)) save_checkpoint_dir(step);
    if (stop) {
      result.stopped_early = true;
      spdlog::info("early stopping at step {}: no improvement in {} evaluations", step, c.early_stopping_patience);
      break;
    }
    if (stop_after_ >= 0 && steps_this_process >= stop_after_) {
      result.steps = step;
      return result;  // simulated interruption (tests)
    }
  }
  if (progress) progress->finish(fmt::format("loss {:.4f}", result.final_loss));
  if (!result.stopped_early) run_eval(step);
  result.steps = step;
  if (dist_.is_main()) {
    AtomicDir final_dir((fs::path(out_dir_) / "final").string());
    task.save_model(final_dir.staging());
    final_dir.commit();
    spdlog::info("wrote {}", (fs::path(out_dir_) / "final").string());
  }
  dist_.barrier();
  return result;
}

}  // namespace ellm
