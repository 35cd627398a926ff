#pragma once
// Batched generation with the decoder: prompts of different lengths are left-padded
// into one batch, the KV cache is filled by one prompt pass and extended one token per
// step. Greedy (temperature 0), or sampling with temperature and top-p (nucleus) from
// a seeded generator. A row stops at a stop id (not returned), at a stop string
// (the tokens up to and including the one that completes it are returned), or at
// max_new_tokens. Callers see every step's logits (the teacher reads the grade-token
// distribution there).
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "ellm/models/decoder.h"
#include "ellm/text/tokenizer.h"

namespace ellm {

struct GenerateOptions {
  int64_t max_new_tokens = 64;
  double temperature = 0.0;  // 0: greedy
  double top_p = 1.0;
  uint64_t seed = 0;
  std::vector<int64_t> stop_ids;
  std::vector<std::string> stop_strings;  // needs a tokenizer
  bool use_cache = true;                  // false: recompute the whole sequence each step (tests)
  std::optional<int64_t> pad_id;          // default: the tokenizer's pad, else eos, else 0
};

// step: 0-based index of the new token; logits [B,V] fp32 of the distribution the token
// was chosen from (before temperature); chosen [B] (rows already finished hold pad).
using StepCallback = std::function<void(int64_t step, const torch::Tensor& logits, const torch::Tensor& chosen)>;

// Returns, per prompt, only the new tokens (stop id excluded).
std::vector<std::vector<int64_t>> generate(Decoder& model, const std::vector<std::vector<int64_t>>& prompts,
                                           const GenerateOptions& options, const Tokenizer* tok = nullptr,
                                           const StepCallback& on_step = {});

// Keeps the smallest set of tokens whose probability reaches top_p (at least one);
// the others get -inf. logits [B,V] fp32.
torch::Tensor top_p_filter(const torch::Tensor& logits, double top_p);

}  // namespace ellm
