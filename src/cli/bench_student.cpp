// ellm bench student: training examples/s and inference pairs/s of both
// students at the geometry of ../shared/PEERS.md's reference (BERT tiny:
// L4 H256 A4 I1024, vocab 8000), random weights, token ids fed directly —
// the same workload as the Hugging Face figures it is compared with.
//
// --dtype fp32,bf16 reports each figure per compute dtype, through the paths the
// stages use: training under train.precision's autocast scope (util/autocast.h,
// fp32 master weights and AdamW), inference through the encoder's inference path
// (models/bert.h: InferenceMode, cached fused weights in the dtype).
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "commands.h"
#include "ellm/distill/losses.h"
#include "ellm/models/cross_encoder.h"
#include "ellm/models/two_tower.h"
#include "ellm/train/adamw.h"
#include "ellm/util/autocast.h"
#include "ellm/util/bench.h"
#include "ellm/util/blas.h"
#include "ellm/util/device.h"
#include "ellm/util/error.h"
#include "ellm/util/kernel_threads.h"

namespace ellm::cli {

void add_bench_student(CLI::App& bench) {
  auto* cmd = bench.add_subcommand("student", "students: training examples/s (AdamW step) and inference pairs/s");
  static int64_t layers = 4, hidden = 256, heads = 4, inter = 1024, vocab = 8000, seq = 64, qlen = 16, ilen = 48,
                 train_batch = 32;
  static std::vector<int64_t> infer_batches{1, 64};
  static std::vector<std::string> students{"cross-encoder", "two-tower"}, dtypes{"fp32", "bf16"};
  static double seconds = 3.0;
  cmd->add_option("--layers", layers)->capture_default_str();
  cmd->add_option("--hidden", hidden)->capture_default_str();
  cmd->add_option("--heads", heads)->capture_default_str();
  cmd->add_option("--intermediate", inter)->capture_default_str();
  cmd->add_option("--vocab", vocab)->capture_default_str();
  cmd->add_option("--seq", seq, "cross-encoder sequence length")->capture_default_str();
  cmd->add_option("--query-len", qlen, "two-tower query length")->capture_default_str();
  cmd->add_option("--item-len", ilen, "two-tower item length")->capture_default_str();
  cmd->add_option("--train-batch", train_batch)->capture_default_str();
  cmd->add_option("--infer-batch", infer_batches)->delimiter(',')->capture_default_str();
  cmd->add_option("--students", students)->delimiter(',')->capture_default_str();
  cmd->add_option("--dtype", dtypes, "compute dtypes: fp32 and/or bf16 (training: autocast)")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--seconds", seconds, "minimum measuring time per figure")->capture_default_str();
  cmd->callback([] {
    warn_if_reference_blas();
    BertConfig bc;
    bc.vocab_size = vocab;
    bc.hidden_size = hidden;
    bc.num_hidden_layers = layers;
    bc.num_attention_heads = heads;
    bc.intermediate_size = inter;
    bc.max_position_embeddings = std::max<int64_t>(512, seq);
    for (const auto& d : dtypes) {
      c10::ScalarType dtype = parse_training_precision(d, "--dtype");
      if (dtype == torch::kBFloat16 && !bf16_supported(c10::Device(c10::kCPU)))
        spdlog::warn("this CPU has no fast bf16 (AVX512-BF16/AMX): bf16 figures will be slow");
    }
    for (const auto& s : students) {
      ELLM_CHECK(s == "cross-encoder" || s == "two-tower", "--students: unknown student '{}'", s);
      for (const auto& d : dtypes) {
        const c10::ScalarType dtype = parse_training_precision(d, "--dtype");
        torch::manual_seed(0);
        json base = {{"student", s}, {"layers", layers}, {"hidden", hidden}, {"heads", heads}, {"intermediate", inter},
                     {"vocab", vocab}, {"threads", at::get_num_threads()}, {"kernel_threads", kernel_threads()}, {"dtype", d}};
        if (s == "cross-encoder") base["seq"] = seq; else base["query_len"] = qlen, base["item_len"] = ilen;
        std::shared_ptr<torch::nn::Module> module;
        CrossEncoder ce{nullptr};
        TwoTower tt{nullptr};
        if (s == "cross-encoder") {
          module = (ce = CrossEncoder(bc, 3)).ptr();
          ce->bert()->set_inference_dtype(dtype);
        } else {
          module = (tt = TwoTower(bc, true, 128, 3)).ptr();
          tt->tower(0)->set_inference_dtype(dtype);
        }
        auto batch_of = [&](int64_t b, int64_t len) { return torch::randint(5, vocab, {b, len}, torch::kLong); };
        auto forward = [&](int64_t b) {
          if (ce) {
            auto ids = batch_of(b, seq);
            auto types = torch::cat({torch::zeros({b, seq / 4}, torch::kLong), torch::ones({b, seq - seq / 4}, torch::kLong)}, 1);
            return ce->forward(ids, types, torch::ones({b, seq}, torch::kLong), false).grade_logits;
          }
          auto q = batch_of(b, qlen), i = batch_of(b, ilen);
          auto qm = torch::ones({b, qlen}, torch::kLong), im = torch::ones({b, ilen}, torch::kLong);
          auto qo = tt->encode(0, q, qm, qm), io = tt->encode(1, i, im, im);
          return tt->grade_logits(tt->score(qo.embedding, io.embedding));
        };
        // Training: forward (under the precision's autocast scope, as the Trainer runs it), CE,
        // backward, AdamW step.
        {
          module->train();
          std::vector<std::pair<std::string, at::Tensor>> params;
          for (auto& item : module->named_parameters()) params.emplace_back(item.key(), item.value());
          AdamW opt(params, {});
          auto labels = torch::randint(0, 3, {train_batch}, torch::kLong);
          auto t = time_runs([&] {
            opt.zero_grad();
            torch::Tensor loss;
            {
              AutocastScope autocast(dtype);
              loss = ce_loss(forward(train_batch), labels) / train_batch;
            }
            loss.backward();
            opt.step(1e-4);
          }, 2, 5, seconds);
          json c = base;
          c["batch"] = train_batch;
          emit_bench("student", c, "train_throughput", train_batch / t.median_s, "examples/s",
                     {{"median_ms", t.median_s * 1e3}, {"runs", t.runs}});
        }
        // Inference as Student::grade_probs runs it.
        module->eval();
        c10::InferenceMode inference;
        for (int64_t b : infer_batches) {
          auto t = time_runs([&] { forward(b); }, 3, 10, seconds);
          json c = base;
          c["batch"] = b;
          emit_bench("student", c, "inference_throughput", b / t.median_s, "pairs/s",
                     {{"median_ms", t.median_s * 1e3}, {"runs", t.runs}});
        }
      }
    }
  });
}

}  // namespace ellm::cli
