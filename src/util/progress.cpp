#include "ellm/util/progress.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>

namespace ellm {

Progress::Progress(std::string label, int64_t total, std::string unit)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total), tty_(isatty(STDERR_FILENO)) {
  start_ = last_render_ = std::chrono::steady_clock::now();
  interval_s_ = tty_ ? 0.2 : 10.0;
}

Progress::~Progress() {
  if (!finished_ && done_ > 0 && tty_) std::fputc('\n', stderr);
}

double Progress::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::advance(int64_t n, const std::string& extra) {
  done_ += n;
  auto now = std::chrono::steady_clock::now();
  if (std::chrono::duration<double>(now - last_render_).count() >= interval_s_) {
    last_render_ = now;
    render(false, extra);
  }
}

void Progress::finish(const std::string& extra) {
  if (finished_) return;
  finished_ = true;
  render(true, extra);
}

static std::string format_duration(double s) {
  if (s < 0) s = 0;
  int64_t t = static_cast<int64_t>(s + 0.5);
  if (t >= 3600) return fmt::format("{}h{:02}m", t / 3600, (t % 3600) / 60);
  if (t >= 60) return fmt::format("{}m{:02}s", t / 60, t % 60);
  return fmt::format("{}s", t);
}

void Progress::render(bool final, const std::string& extra) {
  double el = elapsed_seconds();
  double rate = el > 0 ? done_ / el : 0.0;
  std::string count = total_ > 0 ? fmt::format("{}/{} {} ({:.0f}%)", done_, total_, unit_, 100.0 * done_ / total_)
                                 : fmt::format("{} {}", done_, unit_);
  std::string timing = final ? fmt::format("in {}", format_duration(el))
                             : (total_ > 0 && rate > 0 ? fmt::format("ETA {}", format_duration((total_ - done_) / rate))
                                                       : fmt::format("{} elapsed", format_duration(el)));
  std::string line = fmt::format("{}: {} | {:.1f} {}/s | {}{}{}", label_, count, rate, unit_, timing,
                                 extra.empty() ? "" : " | ", extra);
  if (tty_) {
    std::fprintf(stderr, "\r\033[2K%s%s", line.c_str(), final ? "\n" : "");
    std::fflush(stderr);
  } else {
    spdlog::info("{}", line);
  }
}

}  // namespace ellm
