// ellm launch -n N -- <subcommand> [args...]: runs N local ranks of an ellm
// command with the torchrun-style variables set (RANK, WORLD_SIZE, LOCAL_RANK,
// MASTER_ADDR, MASTER_PORT). If one rank fails, the others are stopped and the
// launcher exits non-zero naming the rank.
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <thread>

#include "commands.h"
#include "ellm/train/distributed.h"
#include "ellm/util/error.h"

namespace ellm::cli {
namespace {

volatile sig_atomic_t g_interrupted = 0;

std::string self_exe() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) fail("cannot find the ellm executable (/proc/self/exe)");
  buf[n] = 0;
  return buf;
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return fmt::format("exited with status {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return fmt::format("was killed by signal {} ({})", WTERMSIG(status), strsignal(WTERMSIG(status)));
  return "stopped";
}

int launch(int n, int port, const std::vector<std::string>& args) {
  if (n < 1) fail("launch: -n must be at least 1");
  if (args.empty()) fail("launch: give the command to run after --, e.g. ellm launch -n 2 -- finetune --config ...");
  if (port <= 0) port = find_free_port();
  std::string exe = self_exe();
  unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  std::string threads = std::to_string(std::max(1u, cores / static_cast<unsigned>(n)));
  std::vector<pid_t> pids;
  spdlog::info("launching {} ranks of `ellm {}` (MASTER_PORT={}, {} threads each)", n, args.front(), port,
               std::getenv("OMP_NUM_THREADS") ? std::getenv("OMP_NUM_THREADS") : threads.c_str());
  for (int r = 0; r < n; ++r) {
    pid_t pid = fork();
    if (pid < 0) fail("launch: fork failed: {}", std::strerror(errno));
    if (pid == 0) {
      setenv("RANK", std::to_string(r).c_str(), 1);
      setenv("LOCAL_RANK", std::to_string(r).c_str(), 1);
      setenv("WORLD_SIZE", std::to_string(n).c_str(), 1);
      setenv("MASTER_ADDR", "127.0.0.1", 1);
      setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
      setenv("OMP_NUM_THREADS", threads.c_str(), 0);  // keep a user's choice
      std::vector<char*> argv;
      argv.push_back(const_cast<char*>(exe.c_str()));
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      execv(exe.c_str(), argv.data());
      std::fprintf(stderr, "launch: exec %s failed: %s\n", exe.c_str(), std::strerror(errno));
      _exit(127);
    }
    pids.push_back(pid);
  }
  signal(SIGINT, [](int) { g_interrupted = 1; });
  signal(SIGTERM, [](int) { g_interrupted = 1; });

  auto stop_all = [&](const std::vector<bool>& done) {
    for (size_t r = 0; r < pids.size(); ++r)
      if (!done[r]) kill(pids[r], SIGTERM);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    std::vector<bool> reaped = done;
    while (std::chrono::steady_clock::now() < deadline) {
      bool all = true;
      for (size_t r = 0; r < pids.size(); ++r) {
        if (reaped[r]) continue;
        int st;
        if (waitpid(pids[r], &st, WNOHANG) == pids[r]) reaped[r] = true;
        else all = false;
      }
      if (all) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    for (size_t r = 0; r < pids.size(); ++r)
      if (!reaped[r]) {
        kill(pids[r], SIGKILL);
        waitpid(pids[r], nullptr, 0);
      }
  };

  std::vector<bool> done(pids.size(), false);
  size_t remaining = pids.size();
  while (remaining > 0) {
    if (g_interrupted) {
      spdlog::error("launch: interrupted; stopping all ranks");
      stop_all(done);
      return 130;
    }
    int status = 0;
    pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    if (pid < 0) break;
    size_t r = std::find(pids.begin(), pids.end(), pid) - pids.begin();
    if (r == pids.size()) continue;
    done[r] = true;
    --remaining;
    if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
      // Peers of a dead rank fail soon after it (their collectives break), so by the time we
      // look several may have ended. Name them all, a rank killed by a signal first: it is the
      // likelier cause than one that exited with an error.
      std::vector<std::pair<size_t, int>> failed{{r, status}};
      for (size_t o = 0; o < pids.size(); ++o) {
        int st = 0;
        if (!done[o] && waitpid(pids[o], &st, WNOHANG) == pids[o]) {
          done[o] = true;
          --remaining;
          if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0)) failed.emplace_back(o, st);
        }
      }
      std::stable_sort(failed.begin(), failed.end(),
                       [](const auto& a, const auto& b) { return WIFSIGNALED(a.second) && !WIFSIGNALED(b.second); });
      spdlog::error("launch: rank {} {}; stopping the other {} ranks", failed[0].first, describe_status(failed[0].second),
                    remaining);
      for (size_t i = 1; i < failed.size(); ++i)
        spdlog::error("launch: rank {} {} as well", failed[i].first, describe_status(failed[i].second));
      stop_all(done);
      return 1;
    }
  }
  spdlog::info("launch: all {} ranks finished", n);
  return 0;
}

}  // namespace

void add_launch(CLI::App& app) {
  auto* cmd = app.add_subcommand("launch", "run N local ranks of an ellm command (data parallel over c10d)");
  static int n = 2, port = 0;
  static std::vector<std::string> args;
  cmd->add_option("-n,--nproc", n, "number of ranks")->capture_default_str();
  cmd->add_option("--master-port", port, "rendezvous port (default: a free one)");
  cmd->add_option("command", args, "ellm subcommand and its arguments, after --")->required();
  cmd->callback([] {
    int rc = launch(n, port, args);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace ellm::cli
