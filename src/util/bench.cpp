#include "ellm/util/bench.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

namespace ellm {

Timing time_runs(const std::function<void()>& fn, int warmup, int min_runs, double min_seconds, int max_runs) {
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> times;
  auto start = std::chrono::steady_clock::now();
  while (static_cast<int>(times.size()) < max_runs) {
    auto t0 = std::chrono::steady_clock::now();
    fn();
    auto t1 = std::chrono::steady_clock::now();
    times.push_back(std::chrono::duration<double>(t1 - t0).count());
    double total = std::chrono::duration<double>(t1 - start).count();
    if (static_cast<int>(times.size()) >= min_runs && total >= min_seconds) break;
  }
  std::vector<double> sorted = times;
  std::sort(sorted.begin(), sorted.end());
  Timing t;
  t.runs = static_cast<int>(sorted.size());
  t.min_s = sorted.front();
  t.max_s = sorted.back();
  size_t n = sorted.size();
  t.median_s = n % 2 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
  return t;
}

void emit_bench(const std::string& name, const nlohmann::json& config, const std::string& metric, double value,
                const std::string& unit, const nlohmann::json& extra) {
  nlohmann::json j = {{"name", name}, {"config", config}, {"metric", metric}, {"value", value}, {"unit", unit}};
  for (auto it = extra.begin(); it != extra.end(); ++it) j[it.key()] = it.value();
  std::string line = j.dump();
  std::fprintf(stdout, "%s\n", line.c_str());
  std::fflush(stdout);
}

}  // namespace ellm
