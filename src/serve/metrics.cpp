#include "ellm/serve/metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace ellm {

void Metrics::inc(const std::string& name, const std::string& labels, double v) {
  std::lock_guard<std::mutex> l(mu_);
  counters_[name][labels] += v;
}

void Metrics::observe(const std::string& name, const std::string& labels, double value) {
  std::lock_guard<std::mutex> l(mu_);
  Summary& s = summaries_[name][labels];
  s.window.push_back(value);
  if (s.window.size() > kWindow) s.window.pop_front();
  s.sum += value;
  s.count += 1;
}

void Metrics::gauge(const std::string& name, std::function<double()> read) {
  std::lock_guard<std::mutex> l(mu_);
  gauges_[name] = std::move(read);
}

void Metrics::help(const std::string& name, const std::string& type, const std::string& text) {
  std::lock_guard<std::mutex> l(mu_);
  help_[name] = {type, text};
}

double Metrics::counter(const std::string& name, const std::string& labels) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = counters_.find(name);
  if (it == counters_.end()) return 0;
  auto jt = it->second.find(labels);
  return jt == it->second.end() ? 0 : jt->second;
}

namespace {
double quantile_of(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  // Nearest rank.
  size_t rank = static_cast<size_t>(std::ceil(p * static_cast<double>(v.size())));
  return v[std::min(v.size() - 1, rank == 0 ? 0 : rank - 1)];
}
std::string with_labels(const std::string& name, const std::string& labels, const std::string& extra = "") {
  std::string all = labels;
  if (!extra.empty()) all = all.empty() ? extra : all + "," + extra;
  return all.empty() ? name : name + "{" + all + "}";
}
}  // namespace

double Metrics::quantile(const std::string& name, const std::string& labels, double p) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = summaries_.find(name);
  if (it == summaries_.end()) return 0;
  auto jt = it->second.find(labels);
  if (jt == it->second.end()) return 0;
  return quantile_of({jt->second.window.begin(), jt->second.window.end()}, p);
}

std::string Metrics::render() const {
  std::lock_guard<std::mutex> l(mu_);
  std::string out;
  auto header = [&](const std::string& name, const char* type) {
    auto h = help_.find(name);
    if (h != help_.end()) out += fmt::format("# HELP {} {}\n", name, h->second.second);
    out += fmt::format("# TYPE {} {}\n", name, h != help_.end() ? h->second.first : type);
  };
  for (const auto& [name, series] : counters_) {
    header(name, "counter");
    for (const auto& [labels, v] : series) out += fmt::format("{} {}\n", with_labels(name, labels), v);
  }
  for (const auto& [name, read] : gauges_) {
    header(name, "gauge");
    out += fmt::format("{} {}\n", name, read());
  }
  for (const auto& [name, series] : summaries_) {
    header(name, "summary");
    for (const auto& [labels, s] : series) {
      std::vector<double> w(s.window.begin(), s.window.end());
      for (double q : {0.5, 0.9, 0.99})
        out += fmt::format("{} {}\n", with_labels(name, labels, fmt::format("quantile=\"{}\"", q)), quantile_of(w, q));
      out += fmt::format("{} {}\n", with_labels(name + "_sum", labels), s.sum);
      out += fmt::format("{} {}\n", with_labels(name + "_count", labels), s.count);
    }
  }
  return out;
}

}  // namespace ellm
