// Batched, left-padded generation with a KV cache.
#include "ellm/models/generate.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <limits>

#include "ellm/util/error.h"

namespace ellm {

torch::Tensor top_p_filter(const torch::Tensor& logits, double top_p) {
  if (top_p >= 1.0) return logits;
  auto [sorted, order] = logits.sort(-1, /*descending=*/true);
  torch::Tensor probs = torch::softmax(sorted, -1);
  // Drop a token when the tokens ranked above it already reach top_p.
  torch::Tensor before = probs.cumsum(-1) - probs;
  torch::Tensor drop_sorted = before >= top_p;
  drop_sorted.select(-1, 0).fill_(false);
  torch::Tensor drop = torch::zeros_like(drop_sorted).scatter(-1, order, drop_sorted);
  return logits.masked_fill(drop, -std::numeric_limits<float>::infinity());
}

std::vector<std::vector<int64_t>> generate(Decoder& model, const std::vector<std::vector<int64_t>>& prompts,
                                           const GenerateOptions& options, const Tokenizer* tok,
                                           const StepCallback& on_step) {
  const int64_t B = static_cast<int64_t>(prompts.size());
  std::vector<std::vector<int64_t>> out(B);
  if (B == 0 || options.max_new_tokens <= 0) return out;
  if (!options.stop_strings.empty() && !tok) fail("generate: stop strings need a tokenizer");
  ELLM_CHECK(options.temperature >= 0, "generate: temperature must be >= 0, got {}", options.temperature);
  ELLM_CHECK(options.top_p > 0 && options.top_p <= 1, "generate: top_p must be in (0, 1], got {}", options.top_p);
  const int64_t V = model->config().vocab_size;
  int64_t pad = 0;
  if (options.pad_id) pad = *options.pad_id;
  else if (tok && tok->pad_id()) pad = *tok->pad_id();
  else if (tok && tok->eos_id()) pad = *tok->eos_id();
  int64_t L = 0;
  for (int64_t b = 0; b < B; ++b) {
    if (prompts[b].empty()) fail("generate: prompt {} is empty", b);
    for (int64_t id : prompts[b])
      if (id < 0 || id >= V) fail("generate: prompt {} holds token id {} outside the vocabulary [0, {})", b, id, V);
    L = std::max<int64_t>(L, prompts[b].size());
  }
  // Nothing made here is ever used with autograd: InferenceMode skips its bookkeeping.
  c10::InferenceMode inference;
  const bool was_training = model->is_training();
  model->eval();

  // Left padding, and the attention mask only when some prompt is shorter: with rows of one
  // length the decoder needs no mask (positions are a slice of the rope table, a new token
  // attends to every cached one), which saves its mask operations at every step.
  bool padded = false;
  for (int64_t b = 0; b < B; ++b) padded = padded || static_cast<int64_t>(prompts[b].size()) != L;
  auto ids = torch::full({B, L}, pad, torch::kInt64);
  torch::Tensor mask;
  if (padded) mask = torch::ones({B, L + options.max_new_tokens}, torch::kInt64);  // new tokens are real
  for (int64_t b = 0; b < B; ++b) {
    int64_t n = prompts[b].size();
    ids[b].narrow(0, L - n, n).copy_(torch::tensor(prompts[b], torch::kInt64));
    if (padded) mask[b].narrow(0, 0, L - n).fill_(0);
  }
  const torch::Device dev = model->device();
  ids = ids.to(dev);
  if (padded) mask = mask.to(dev);
  auto mask_upto = [&](int64_t len) { return padded ? mask.narrow(1, 0, len) : torch::Tensor(); };

  size_t max_stop = 0;
  for (const auto& s : options.stop_strings) max_stop = std::max(max_stop, s.size());
  auto gen = at::make_generator<at::CPUGeneratorImpl>(options.seed);
  std::vector<bool> finished(B, false);
  int64_t remaining = B;

  KVCache cache;
  cache.reserve(L + options.max_new_tokens);
  KVCache* cp = options.use_cache ? &cache : nullptr;
  int64_t length = L;  // tokens in the sequence so far
  torch::Tensor logits = model->forward(ids, mask_upto(length), cp, 1).select(1, 0);  // [B,V]
  for (int64_t step = 0; step < options.max_new_tokens; ++step) {
    torch::Tensor chosen;
    if (options.temperature == 0) {
      chosen = logits.argmax(-1);
    } else {
      torch::Tensor scaled = top_p_filter(logits / options.temperature, options.top_p);
      chosen = torch::multinomial(torch::softmax(scaled, -1).cpu(), 1, false, gen).squeeze(1);
    }
    chosen = chosen.to(torch::kCPU, torch::kInt64).contiguous();
    auto* c = chosen.data_ptr<int64_t>();
    for (int64_t b = 0; b < B; ++b)
      if (finished[b]) c[b] = pad;
    if (on_step) on_step(step, logits, chosen);
    for (int64_t b = 0; b < B; ++b) {
      if (finished[b]) continue;
      bool stop = std::find(options.stop_ids.begin(), options.stop_ids.end(), c[b]) != options.stop_ids.end();
      if (!stop) {
        out[b].push_back(c[b]);
        if (max_stop > 0) {
          // The stop string completed by this token lies within its last max_stop tokens.
          size_t n = std::min(out[b].size(), max_stop + 1);
          std::string tail = tok->decode(std::vector<int64_t>(out[b].end() - n, out[b].end()), false);
          for (const auto& s : options.stop_strings) stop = stop || (!s.empty() && tail.find(s) != std::string::npos);
        }
      }
      if (stop) {
        finished[b] = true;
        --remaining;
      }
    }
    if (remaining == 0 || step + 1 == options.max_new_tokens) break;
    torch::Tensor next = chosen.to(dev).view({B, 1});
    ++length;
    if (cp) {
      logits = model->forward(next, mask_upto(length), cp, 1).select(1, 0);
    } else {
      ids = torch::cat({ids, next}, 1);
      logits = model->forward(ids, mask_upto(length), nullptr, 1).select(1, 0);
    }
  }
  if (was_training) model->train();
  return out;
}

}  // namespace ellm
