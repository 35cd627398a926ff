// The shared training loop on a toy regression task: determinism, exact
// resume, accumulation and data-parallel equivalence, NaN detection.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <thread>

#include "../common/temp_dir.h"
#include "ellm/io/jsonl.h"
#include "ellm/io/safetensors.h"
#include "ellm/train/trainer.h"
#include "ellm/util/autocast.h"
#include "ellm/util/device.h"
#include "ellm/util/error.h"

#include <ATen/autocast_mode.h>
#include <set>
#include <unistd.h>

using ellm::test_support::fresh_path;

using namespace ellm;
namespace fs = std::filesystem;

namespace {

// y = x·W + b with per-example squared error; a little dropout-free MLP would
// do too, but a linear model keeps the float sums tiny and the test fast.
class ToyTask : public TrainTask {
 public:
  explicit ToyTask(int64_t n = 64, bool poison = false) : poison_(poison) {
    torch::manual_seed(123);
    x_ = torch::randn({n, 6});
    y_ = torch::mm(x_, torch::randn({6, 2})) + 0.1 * torch::randn({n, 2});
    w_ = (0.1 * torch::randn({6, 2})).requires_grad_();
    b_ = torch::zeros({2}).requires_grad_();
  }
  int64_t num_examples() const override { return x_.size(0); }
  int64_t example_length(int64_t i) const override { return (i * 7) % 5; }
  double count_units(const std::vector<int64_t>& ex) const override { return static_cast<double>(ex.size()); }
  MicroBatchLoss loss(const std::vector<int64_t>& ex) override {
    auto idx = torch::tensor(ex, torch::kLong);
    auto pred = torch::mm(x_.index_select(0, idx), w_) + b_;
    auto l = (pred - y_.index_select(0, idx)).pow(2).sum();
    if (poison_ && calls_++ == 5) {
      l = l * std::numeric_limits<float>::quiet_NaN();
      poisoned_ = ex;
    }
    return {l, {{"mse", l.item<double>()}}, static_cast<int64_t>(ex.size())};
  }
  std::vector<std::pair<std::string, at::Tensor>> trainable_parameters() override {
    return {{"linear.weight", w_}, {"linear.bias", b_}};
  }
  void set_training(bool) override {}
  EvalResult evaluate() override {
    torch::NoGradGuard g;
    double mse = (torch::mm(x_, w_) + b_ - y_).pow(2).mean().item<double>();
    return {{{"mse", mse}}, -mse, true};
  }
  void save_model(const std::string& dir) override {
    save_safetensors((fs::path(dir) / "model.safetensors").string(), {{"w", w_}, {"b", b_}});
  }
  at::Tensor w_, b_;
  std::vector<int64_t> poisoned_;  // the micro-batch whose loss was made NaN

 private:
  at::Tensor x_, y_;
  bool poison_;
  int calls_ = 0;
};

TrainConfig toy_config() {
  TrainConfig c = train_config_from_json(train_default_config());
  c.max_steps = 12;
  c.batch_size = 16;
  c.micro_batch_size = 4;
  c.lr = 0.05;
  c.warmup_ratio = 0.2;
  c.log_every = 2;
  c.save_every = 3;
  c.seed = 7;
  return c;
}

}  // namespace

TEST(Trainer, SameSeedSameWeights) {
  Distributed single;
  ToyTask a, b;
  Trainer(toy_config(), fresh_path("det_a"), single).fit(a, false);
  Trainer(toy_config(), fresh_path("det_b"), single).fit(b, false);
  EXPECT_TRUE(torch::equal(a.w_, b.w_));
  EXPECT_TRUE(torch::equal(a.b_, b.b_));
}

TEST(Trainer, LossFallsAndArtifactsAreWritten) {
  Distributed single;
  ToyTask t;
  std::string dir = fresh_path("artifacts");
  auto cfg = toy_config();
  cfg.max_steps = 40;
  cfg.keep_last = 2;
  auto r = Trainer(cfg, dir, single).fit(t, false);
  auto metrics = read_jsonl(dir + "/metrics.jsonl");
  ASSERT_GE(metrics.size(), 2u);
  double first = metrics.front()["loss"], last = r.final_loss;
  EXPECT_LT(last, 0.5 * first);
  EXPECT_TRUE(metrics.front().contains("grad_norm"));
  EXPECT_TRUE(metrics.front().contains("loss_mse"));
  EXPECT_TRUE(fs::exists(dir + "/final/model.safetensors"));
  EXPECT_TRUE(fs::exists(dir + "/best/eval.json"));
  // keep_last = 2 of the checkpoints at 3, 6, ..., 39.
  int checkpoints = 0;
  for (auto& e : fs::directory_iterator(dir)) checkpoints += e.path().filename().string().rfind("checkpoint-", 0) == 0;
  EXPECT_EQ(checkpoints, 2);
  EXPECT_EQ(Trainer::latest_checkpoint(dir), dir + "/checkpoint-39");
}

TEST(Trainer, ResumeReachesExactlyTheUninterruptedWeights) {
  Distributed single;
  ToyTask full;
  Trainer(toy_config(), fresh_path("full"), single).fit(full, false);

  std::string dir = fresh_path("resumed");
  ToyTask first;
  Trainer interrupted(toy_config(), dir, single);
  interrupted.set_stop_after(7);  // dies after step 7; the last checkpoint is step 6
  interrupted.fit(first, false);
  ASSERT_EQ(Trainer::latest_checkpoint(dir), dir + "/checkpoint-6");
  // A checkpoint cut mid-write (kill -9) is a temporary directory: ignored and cleaned.
  fs::create_directories(dir + "/checkpoint-9.tmp-1-0");
  ToyTask second;  // fresh weights: everything must come from the checkpoint
  Trainer(toy_config(), dir, single).fit(second, true);
  EXPECT_TRUE(torch::equal(full.w_, second.w_)) << (full.w_ - second.w_).abs().max();
  EXPECT_TRUE(torch::equal(full.b_, second.b_));
  EXPECT_FALSE(fs::exists(dir + "/checkpoint-9.tmp-1-0"));
  // The metrics log has each step once.
  std::set<int64_t> steps;
  for (auto& r : read_jsonl(dir + "/metrics.jsonl"))
    if (r.contains("loss")) {
      EXPECT_TRUE(steps.insert(r["step"].get<int64_t>()).second) << r.dump();
    }
}

TEST(Trainer, GradientAccumulationEqualsOneBigBatch) {
  Distributed single;
  auto big = toy_config();
  big.micro_batch_size = 16;
  auto small = toy_config();
  small.micro_batch_size = 2;
  ToyTask a, b;
  Trainer(big, fresh_path("big"), single).fit(a, false);
  Trainer(small, fresh_path("small"), single).fit(b, false);
  EXPECT_TRUE(torch::allclose(a.w_, b.w_, 1e-5, 1e-6)) << (a.w_ - b.w_).abs().max();
}

TEST(Trainer, TwoGlooRanksEqualOneProcess) {
  Distributed single;
  ToyTask reference;
  Trainer(toy_config(), fresh_path("one"), single).fit(reference, false);

  int port = find_free_port();
  std::vector<std::unique_ptr<ToyTask>> tasks;
  tasks.push_back(std::make_unique<ToyTask>());
  tasks.push_back(std::make_unique<ToyTask>());
  std::string dir = fresh_path("two");
  std::vector<std::string> errors(2);
  std::vector<std::thread> ranks;
  for (int r = 0; r < 2; ++r) {
    ranks.emplace_back([&, r] {
      try {
        DistEnv env;
        env.rank = r;
        env.world_size = 2;
        env.master_port = port;
        Distributed dist(env, c10::Device(c10::kCPU), std::chrono::seconds(60));
        Trainer(toy_config(), dir, dist).fit(*tasks[r], false);
      } catch (const std::exception& e) {
        errors[r] = e.what();
      }
    });
  }
  for (auto& t : ranks) t.join();
  if (!errors[0].empty() && errors[0].find("rendezvous") != std::string::npos) GTEST_SKIP() << errors[0];
  ASSERT_TRUE(errors[0].empty()) << errors[0];
  ASSERT_TRUE(errors[1].empty()) << errors[1];
  EXPECT_TRUE(torch::allclose(tasks[0]->w_, reference.w_, 1e-5, 1e-6)) << (tasks[0]->w_ - reference.w_).abs().max();
  EXPECT_TRUE(torch::equal(tasks[0]->w_, tasks[1]->w_));
}

TEST(Trainer, NonFiniteLossStopsWithStepAndBatchNamed) {
  Distributed single;
  ToyTask poisoned(64, true);
  const std::string dir = fresh_path("nan");
  try {
    Trainer(toy_config(), dir, single).fit(poisoned, false);
    FAIL() << "expected an error";
  } catch (const ellm::Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("step 1:"), std::string::npos) << m;  // 4 micro-batches per step: call 5 is in step 1
    EXPECT_NE(m.find("nan"), std::string::npos) << m;
    ASSERT_EQ(poisoned.poisoned_.size(), 4u);
    EXPECT_NE(m.find(poisoned.describe(poisoned.poisoned_)), std::string::npos) << m;  // the batch, by its examples
  }
  // The run stopped there: no final model.
  EXPECT_FALSE(fs::exists(dir + "/final"));
}

TEST(Trainer, BatchMustDivideAcrossRanksAndMicroBatches) {
  Distributed single;
  ToyTask t;
  auto c = toy_config();
  c.micro_batch_size = 5;
  EXPECT_THROW(Trainer(c, fresh_path("bad"), single).fit(t, false), ellm::Error);
}

// train.precision = "bf16": the task's forward runs under autocast (bf16 matmuls), the
// backward and the optimizer outside it, on fp32 parameters and gradients; the run learns
// as the fp32 run does.
TEST(Trainer, Bf16PrecisionAutocastsTheForwardOnly) {
  struct Probe : ToyTask {
    MicroBatchLoss loss(const std::vector<int64_t>& ex) override {
      forward_autocast = forward_autocast && at::autocast::is_cpu_enabled();
      forward_dtype = torch::mm(torch::ones({1, 6}), w_).scalar_type();
      return ToyTask::loss(ex);
    }
    bool forward_autocast = true;
    c10::ScalarType forward_dtype = c10::ScalarType::Undefined;
  };
  Distributed single;
  auto cfg = toy_config();
  cfg.max_steps = 40;
  cfg.save_every = 0;
  Probe fp32;
  auto r32 = Trainer(cfg, fresh_path("prec_fp32"), single).fit(fp32, false);
  EXPECT_FALSE(fp32.forward_autocast);
  cfg.precision = "bf16";
  Probe bf16;
  auto r16 = Trainer(cfg, fresh_path("prec_bf16"), single).fit(bf16, false);
  EXPECT_TRUE(bf16.forward_autocast);
  EXPECT_EQ(bf16.forward_dtype, torch::kBFloat16);
  EXPECT_FALSE(at::autocast::is_cpu_enabled());  // closed again
  EXPECT_EQ(bf16.w_.scalar_type(), torch::kFloat);
  EXPECT_EQ(bf16.w_.grad().scalar_type(), torch::kFloat);
  // Both fall to the noise floor; bf16 within a few per cent of fp32's weights.
  EXPECT_NEAR(r16.final_loss, r32.final_loss, 0.1 * r32.final_loss + 0.05);
  EXPECT_LT((bf16.w_ - fp32.w_).abs().max().item<double>(), 0.05);
  EXPECT_THROW(parse_training_precision("fp16", "train.precision"), Error);
}

TEST(Trainer, AutoPrecisionIsBf16ExactlyWhereTheDeviceHasNativeBf16) {
  const c10::Device cpu(c10::kCPU);
  EXPECT_EQ(parse_training_precision("auto", "train.precision", cpu),
            ellm::bf16_supported(cpu) ? c10::kBFloat16 : c10::kFloat);
  EXPECT_EQ(parse_training_precision("auto", "train.precision", c10::Device(c10::kCUDA, 0)), c10::kBFloat16);
  // An explicit choice is never overridden by the device.
  EXPECT_EQ(parse_training_precision("fp32", "train.precision", c10::Device(c10::kCUDA, 0)), c10::kFloat);
  EXPECT_EQ(parse_training_precision("bf16", "train.precision", cpu), c10::kBFloat16);
  try {
    parse_training_precision("half", "train.precision");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("train.precision: precision 'half' is not fp32, bf16 or auto"),
              std::string::npos)
        << e.what();
  }
}

TEST(EpochPermutation, DeterministicAndComplete) {
  auto a = epoch_permutation(100, 3, 0), b = epoch_permutation(100, 3, 0), c = epoch_permutation(100, 3, 1);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  std::sort(c.begin(), c.end());
  for (int64_t i = 0; i < 100; ++i) EXPECT_EQ(c[i], i);
}
