#pragma once
// Server metrics in Prometheus' text exposition format (GET /metrics):
// counters with labels, gauges read at scrape time, and latency summaries
// (count, sum and quantiles over a sliding window of recent observations).
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace ellm {

class Metrics {
 public:
  // name{labels} += v. `labels` is the label text without braces: route="/health",code="200".
  void inc(const std::string& name, const std::string& labels = "", double v = 1);
  void observe(const std::string& name, const std::string& labels, double value);
  void gauge(const std::string& name, std::function<double()> read);
  void help(const std::string& name, const std::string& type, const std::string& text);
  double counter(const std::string& name, const std::string& labels = "") const;
  // p in [0,1] over the window; 0 when nothing was observed.
  double quantile(const std::string& name, const std::string& labels, double p) const;
  std::string render() const;

 private:
  struct Summary {
    std::deque<double> window;
    double sum = 0;
    int64_t count = 0;
  };
  static constexpr size_t kWindow = 1024;
  mutable std::mutex mu_;
  std::map<std::string, std::map<std::string, double>> counters_;
  std::map<std::string, std::map<std::string, Summary>> summaries_;
  std::map<std::string, std::function<double()>> gauges_;
  std::map<std::string, std::pair<std::string, std::string>> help_;  // name → (type, text)
};

}  // namespace ellm
