#pragma once
// Benchmarks print JSON lines on stdout, one per measurement:
//   {"name": "gemm", "config": {...}, "metric": "throughput", "value": 291.3,
//    "unit": "GFLOP/s", ...extra}
// and time work as the median of repeated runs after warm-up.
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

namespace ellm {

struct Timing {
  double median_s = 0, min_s = 0, max_s = 0;
  int runs = 0;
};

// Runs fn `warmup` times, then repeatedly until both `min_runs` runs and
// `min_seconds` have passed (capped at max_runs); per-run wall times.
Timing time_runs(const std::function<void()>& fn, int warmup = 1, int min_runs = 3, double min_seconds = 1.0,
                 int max_runs = 1000);

// Prints one benchmark record (stdout, flushed).
void emit_bench(const std::string& name, const nlohmann::json& config, const std::string& metric, double value,
                const std::string& unit, const nlohmann::json& extra = nlohmann::json::object());

}  // namespace ellm
