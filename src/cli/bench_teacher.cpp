// ellm bench teacher: pairs/s of the teacher (CoT generation + distribution) at several batch
// sizes, and /v1/relevance latency under a bounded concurrent load on loopback, with the
// server in a second process (`ellm serve`, spawned here).
#include <httplib.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

#include "commands.h"
#include "ellm/teacher/decoder_teacher.h"
#include "ellm/util/bench.h"
#include "ellm/util/device.h"
#include "ellm/util/kernel_threads.h"
#include "ellm/util/log.h"

extern char** environ;

namespace ellm::cli {
namespace {

std::vector<Pair> bench_pairs(const std::string& path, int64_t n) {
  std::vector<Pair> pairs;
  if (!path.empty()) {
    pairs = read_pairs(path);
  } else {
    // Synthetic pairs of realistic length when no file is given.
    const char* queries[] = {"grey sectional sofa", "cordless drill 20v", "oak dining table", "led ceiling light"};
    const char* titles[] = {"Harbor 3-Piece Sectional Sofa in Gray Linen", "DeWalt 20V MAX Cordless Drill Driver Kit",
                            "Solid Oak Extendable Dining Table, Natural Finish", "Flush Mount LED Ceiling Light 14 in."};
    for (int64_t i = 0; i < n; ++i) {
      Pair p;
      p.id = "bench-" + std::to_string(i);
      p.query = queries[i % 4];
      p.item.title = titles[(i / 4 + i) % 4];
      p.item.brand = "Brand" + std::to_string(i % 3);
      pairs.push_back(p);
    }
  }
  ELLM_CHECK(!pairs.empty(), "bench teacher: no pairs");
  while (static_cast<int64_t>(pairs.size()) < n) pairs.push_back(pairs[pairs.size() % pairs.size()]);
  pairs.resize(static_cast<size_t>(n));
  for (size_t i = 0; i < pairs.size(); ++i) pairs[i].id = "bench-" + std::to_string(i);
  return pairs;
}

double quantile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  size_t rank = static_cast<size_t>(std::ceil(p * static_cast<double>(v.size())));
  return v[std::min(v.size() - 1, rank == 0 ? 0 : rank - 1)];
}

// Starts `ellm serve` on a free port; returns its pid and port.
std::pair<pid_t, int> spawn_server(const std::vector<std::string>& args) {
  int fds[2];
  ELLM_CHECK(pipe(fds) == 0, "bench teacher: pipe failed");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, "/proc/self/exe", &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  close(fds[1]);
  ELLM_CHECK(rc == 0, "bench teacher: cannot start the server process ({})", rc);
  FILE* out = fdopen(fds[0], "r");
  char line[512];
  int port = -1;
  while (port < 0 && std::fgets(line, sizeof line, out)) {
    const char* p = std::strstr(line, "listening on http://");
    if (p) port = std::atoi(std::strrchr(line, ':') + 1);
  }
  if (port < 0) {
    int status = 0;
    waitpid(pid, &status, 0);
    fail("bench teacher: the server process exited before listening (status {})", status);
  }
  // Keep draining its stdout so that it never blocks on a full pipe.
  std::thread([out] {
    char buf[512];
    while (std::fgets(buf, sizeof buf, out)) {
    }
    std::fclose(out);
  }).detach();
  return {pid, port};
}

}  // namespace

void add_bench_teacher(CLI::App& bench) {
  auto* cmd = bench.add_subcommand("teacher", "teacher pairs/s (CoT + distribution) and /v1/relevance latency under load");
  static std::string model, pairs_path, device = "cpu", dtype = "fp32";
  static std::vector<int64_t> batches{1, 16};
  static int64_t n = 32, max_new = 64, concurrency = 4, requests = 32, max_batch = 8;
  static bool serve = true;
  cmd->add_option("--model", model, "teacher model directory")->required();
  cmd->add_option("--pairs", pairs_path, "pairs.jsonl (default: synthetic pairs)");
  cmd->add_option("--batch", batches, "batch sizes")->delimiter(',')->capture_default_str();
  cmd->add_option("--n", n, "pairs per measurement")->capture_default_str();
  cmd->add_option("--max-new-tokens", max_new, "CoT length limit")->capture_default_str();
  cmd->add_option("--concurrency", concurrency, "concurrent clients for the latency run")->capture_default_str();
  cmd->add_option("--requests", requests, "requests per client")->capture_default_str();
  cmd->add_option("--max-batch", max_batch, "server batch size")->capture_default_str();
  cmd->add_flag("--serve,!--no-serve", serve, "also measure /v1/relevance latency")->capture_default_str();
  cmd->add_option("--device", device, "cpu | cuda | auto")->capture_default_str();
  cmd->add_option("--dtype", dtype, "fp32 | bf16")->capture_default_str();
  cmd->callback([] {
    DecoderTeacherOptions o;
    o.model_dir = model;
    o.grades = teacher_grades(model);
    o.max_new_tokens = max_new;
    o.dtype = parse_dtype(dtype);
    o.device = resolve_device(device);
    DecoderTeacher teacher(o);
    auto pairs = bench_pairs(pairs_path, n);
    json base = {{"model", model}, {"max_new_tokens", max_new}, {"dtype", dtype}, {"threads", at::get_num_threads()}, {"kernel_threads", kernel_threads()}};
    for (int64_t b : batches) {
      auto run_all = [&] {
        for (size_t s = 0; s < pairs.size(); s += static_cast<size_t>(b)) {
          std::vector<Pair> batch(pairs.begin() + static_cast<std::ptrdiff_t>(s),
                                  pairs.begin() + static_cast<std::ptrdiff_t>(std::min(pairs.size(), s + static_cast<size_t>(b))));
          teacher.run(batch);
        }
      };
      auto t = time_runs(run_all, 1, 1, 0.0, 3);
      json cfg = base;
      cfg["batch"] = b;
      emit_bench("teacher", cfg, "throughput", static_cast<double>(pairs.size()) / t.median_s, "pairs/s",
                 {{"pairs", pairs.size()}, {"median_s", t.median_s}});
    }
    if (!serve) return;
    auto [pid, port] = spawn_server({"ellm", "--log-level", "warn", "serve", "--model", model, "--port", "0",
                                     "--max-batch", std::to_string(max_batch), "--max-queue", "1024",
                                     "--max-new-tokens", std::to_string(max_new), "--device", device, "--dtype", dtype});
    std::vector<double> lat;
    std::mutex mu;
    std::atomic<int64_t> failed{0};
    auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> clients;
    for (int64_t c = 0; c < concurrency; ++c)
      clients.emplace_back([&, c] {
        httplib::Client cli("127.0.0.1", port);
        cli.set_read_timeout(600, 0);
        for (int64_t r = 0; r < requests; ++r) {
          const Pair& p = pairs[static_cast<size_t>((c * requests + r) % static_cast<int64_t>(pairs.size()))];
          json body = {{"query", p.query}, {"items", json::array({item_to_json(p.item)})}, {"cot", true}};
          auto s = std::chrono::steady_clock::now();
          auto res = cli.Post("/v1/relevance", body.dump(), "application/json");
          double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - s).count();
          if (!res || res->status != 200) {
            failed++;
            continue;
          }
          std::lock_guard<std::mutex> l(mu);
          lat.push_back(ms);
        }
      });
    for (auto& t : clients) t.join();
    double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    kill(pid, SIGTERM);
    int status = 0;
    waitpid(pid, &status, 0);
    ELLM_CHECK(!lat.empty(), "bench teacher: every request failed");
    json cfg = base;
    cfg["concurrency"] = concurrency;
    cfg["server_max_batch"] = max_batch;
    json extra = {{"requests", lat.size()}, {"failed", failed.load()}, {"requests_per_s", static_cast<double>(lat.size()) / wall}};
    emit_bench("teacher_serve", cfg, "latency_p50", quantile(lat, 0.5), "ms", extra);
    emit_bench("teacher_serve", cfg, "latency_p99", quantile(lat, 0.99), "ms", extra);
  });
}

}  // namespace ellm::cli
