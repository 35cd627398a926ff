#pragma once
// Progress of a long loop: a live line (count, rate, ETA) when stderr is a
// terminal, a log line every few seconds otherwise (CI logs, files).
#include <chrono>
#include <cstdint>
#include <string>

namespace ellm {

class Progress {
 public:
  // total <= 0: unknown total (no ETA). unit names what is counted ("pairs", "steps").
  Progress(std::string label, int64_t total, std::string unit = "it");
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void advance(int64_t n = 1, const std::string& extra = "");
  // Prints the final line (count, elapsed, mean rate) once.
  void finish(const std::string& extra = "");
  int64_t done() const { return done_; }
  double elapsed_seconds() const;

 private:
  void render(bool final, const std::string& extra);
  std::string label_, unit_;
  int64_t total_, done_ = 0;
  bool tty_, finished_ = false;
  std::chrono::steady_clock::time_point start_, last_render_;
  double interval_s_;
};

}  // namespace ellm
