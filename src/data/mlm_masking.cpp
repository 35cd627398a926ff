#include "ellm/data/mlm_masking.h"

#include "ellm/util/error.h"

namespace ellm {

namespace {

uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Uniform in [0, 1) from the top 53 bits.
double uniform(uint64_t& state) { return static_cast<double>(splitmix64(state) >> 11) * 0x1.0p-53; }

}  // namespace

void MlmMasking::validate() const {
  auto prob = [](double p) { return p >= 0.0 && p <= 1.0; };
  ELLM_CHECK(prob(mask_prob) && mask_prob > 0, "mlm.mask_prob must be in (0, 1], got {}", mask_prob);
  ELLM_CHECK(prob(mask_token) && prob(random_token) && mask_token + random_token <= 1.0 + 1e-12,
             "mlm.mask_token ({}) and mlm.random_token ({}) must be probabilities summing to at most 1", mask_token,
             random_token);
}

uint64_t mlm_row_seed(uint64_t seed, int64_t step, int64_t example) {
  uint64_t s = seed ^ 0x6d6c6d5f6d61736bull;  // "mlm_mask"
  uint64_t a = splitmix64(s) ^ static_cast<uint64_t>(step);
  uint64_t b = splitmix64(a) ^ static_cast<uint64_t>(example);
  return splitmix64(b);
}

MaskedRow mask_row(const std::vector<int64_t>& ids, const std::vector<uint8_t>& maskable, int64_t mask_id,
                   const std::vector<int64_t>& random_ids, const MlmMasking& masking, uint64_t seed) {
  ELLM_CHECK(ids.size() == maskable.size(), "mask_row: {} ids but {} maskable flags", ids.size(), maskable.size());
  ELLM_CHECK(masking.random_token == 0 || !random_ids.empty(), "mask_row: no ids to draw random replacements from");
  MaskedRow out;
  out.ids = ids;
  uint64_t state = seed;
  for (size_t t = 0; t < ids.size(); ++t) {
    // Three draws per token whether or not it is selected: token t's fate depends on
    // the seed and t alone, not on what came before it.
    double select = uniform(state), how = uniform(state);
    uint64_t pick = splitmix64(state);
    if (!maskable[t] || select >= masking.mask_prob) continue;
    out.positions.push_back(static_cast<int64_t>(t));
    out.targets.push_back(ids[t]);
    if (how < masking.mask_token)
      out.ids[t] = mask_id;
    else if (how < masking.mask_token + masking.random_token)
      out.ids[t] = random_ids[pick % random_ids.size()];
  }
  return out;
}

}  // namespace ellm
