#pragma once
// The one training loop of ellm (finetune and distill both run on it).
//
// A stage describes *what* to train as a TrainTask (examples, a loss, the
// trainable parameters, evaluation, export); the Trainer owns *how*: data
// order, micro-batching and gradient accumulation, data-parallel gradient
// all-reduce, AdamW + warmup/cosine, clipping, NaN detection, metrics,
// progress, evaluation with early stopping and a kept best model, mixed
// precision (train.precision), and checkpoints that resume exactly.
//
// Batching. Each optimizer step consumes one global batch of `batch_size`
// examples: the next slice of a seeded per-epoch permutation. With
// `group_by_length` the batch is sorted by example length, then cut into
// micro-batches of `micro_batch_size`; micro-batch j goes to rank j % world.
// The loss is normalised by the number of units (e.g. response tokens) in the
// whole global batch, counted before any backward pass and summed across
// ranks, so that N ranks, gradient accumulation and one big batch all compute
// the same gradient.
//
// Randomness. Before each step every rank reseeds the default generators (CPU,
// CUDA) from (seed, step, rank), so a step's dropout masks depend on nothing
// that ran before it in the process (model construction, earlier runs,
// evaluation) and differ across ranks. The RNG state at a step boundary is thus
// a function of the step: a checkpoint needs no generator state, and a resumed
// step draws exactly what the uninterrupted one drew, on every rank.
//
// Checkpoints. `<out>/checkpoint-<step>/` holds trainable.safetensors,
// optimizer.safetensors and trainer_state.json; it is built under a temporary
// name (`*.tmp-*`), gets a DONE marker, and is renamed into place, so a crash
// (even kill -9) mid-write leaves no partial checkpoint, only a temporary
// directory that is ignored and removed on the next start. The last `keep_last`
// are kept (older ones are renamed to a temporary name before removal). Resume
// restores parameters, optimizer moments and the step (from which data
// position, learning rate and RNG seeds follow).
//
// Test hook: ELLM_TEST_CHECKPOINT_PAUSE=<step> makes rank 0 sleep 60 s inside
// checkpoint-<step>'s staging directory after writing its first file (for a
// kill -9 mid-write test). Nothing else reads it.
#include <ATen/core/Tensor.h>

#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "ellm/train/distributed.h"

namespace ellm {

using json = nlohmann::json;

struct TrainConfig {
  int64_t max_steps = 0;       // 0: derived from `epochs`
  double epochs = 1.0;
  int64_t batch_size = 8;      // global examples per optimizer step
  int64_t micro_batch_size = 8;  // examples per forward pass on one rank
  double lr = 1e-3, weight_decay = 0.01, beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double warmup_ratio = 0.05;  // of the total steps
  double min_lr_ratio = 0.1;
  double max_grad_norm = 1.0;  // <= 0: no clipping
  bool group_by_length = true;
  int64_t log_every = 10;
  int64_t eval_every = 0;      // 0: only at the end
  int64_t save_every = 0;      // 0: no intermediate checkpoints
  int64_t keep_last = 2;
  int64_t early_stopping_patience = 0;  // evaluations without improvement; 0: off
  uint64_t seed = 0;
  double dist_timeout_s = 300;
  // "fp32", or "bf16": each micro-batch's forward (TrainTask::loss) runs under
  // autocast (util/autocast.h) — bf16 matmuls, fp32 parameters, gradients and
  // optimizer; the backward runs outside the scope, as autocast wants.
  std::string precision = "fp32";
};

// The "train" section's defaults (the schema its keys are checked against).
json train_default_config();
TrainConfig train_config_from_json(const json& train_section);

// One micro-batch's contribution.
struct MicroBatchLoss {
  at::Tensor loss_sum;                   // scalar: sum of the loss over the micro-batch's units
  std::map<std::string, double> terms;   // per-term sums over units, for logging (weights applied)
  int64_t tokens = 0;                    // tokens processed, for throughput
};

struct EvalResult {
  json metrics = json::object();
  double score = 0;       // higher is better (e.g. dev AUC, or −eval loss)
  bool has_score = false;
};

class TrainTask {
 public:
  virtual ~TrainTask() = default;
  virtual int64_t num_examples() const = 0;
  virtual int64_t example_length(int64_t index) const { return 1; }
  // Called on every rank at the start of each optimizer step, before
  // count_units/loss. A task whose examples change from step to step (MLM
  // masking) keys that randomness on the step, so it stays exact after a resume
  // and the same for any number of ranks or micro-batches.
  virtual void begin_step(int64_t step) {}
  // Units the loss of these examples is summed over (tokens, examples, ...).
  virtual double count_units(const std::vector<int64_t>& examples) const = 0;
  virtual MicroBatchLoss loss(const std::vector<int64_t>& examples) = 0;
  // Parameters the optimizer updates, by stable name.
  virtual std::vector<std::pair<std::string, at::Tensor>> trainable_parameters() = 0;
  virtual void set_training(bool training) = 0;
  virtual EvalResult evaluate() { return {}; }
  // Writes the model in its deployable layout (HF / PEFT) into dir.
  virtual void save_model(const std::string& dir) = 0;
  // Names examples in errors ("pairs hd-12, hd-19").
  virtual std::string describe(const std::vector<int64_t>& examples) const;
};

struct TrainResult {
  int64_t steps = 0;
  double final_loss = 0;
  EvalResult best;
  bool stopped_early = false;
};

class Trainer {
 public:
  Trainer(TrainConfig config, std::string out_dir, Distributed& dist);
  // Runs to the end (or early stop). With resume, continues from the newest
  // complete checkpoint in out_dir when there is one.
  TrainResult fit(TrainTask& task, bool resume);

  // For tests: stop (as if killed) after this many optimizer steps in this process.
  void set_stop_after(int64_t steps) { stop_after_ = steps; }

  // The newest complete checkpoint directory in out_dir ("" if none).
  static std::string latest_checkpoint(const std::string& out_dir);

 private:
  TrainConfig config_;
  std::string out_dir_;
  Distributed& dist_;
  int64_t stop_after_ = -1;
};

// Deterministic permutation of [0, n) from (seed, epoch): the same on every platform.
std::vector<int64_t> epoch_permutation(int64_t n, uint64_t seed, int64_t epoch);

// Peak resident memory of this process in bytes (CPU), or peak CUDA allocation.
int64_t peak_memory_bytes();

}  // namespace ellm
