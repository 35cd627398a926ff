// A rank that dies mid-training takes the job down, with a clear message, instead of hanging:
// under `ellm launch` the launcher stops the other ranks and exits non-zero naming the dead
// rank; without a launcher (Slurm, torchrun) the surviving rank's next collective fails and it
// exits non-zero on its own, and a rank that hangs (stopped) times its peers out.
#include <gtest/gtest.h>

#include "ellm/train/distributed.h"
#include "finetune_cli_util.h"

using namespace ellm;
using namespace ellm::finetune_test;

namespace {

// Children of `parent` by their RANK variable.
std::map<int, pid_t> ranks_of(pid_t parent) {
  std::map<int, pid_t> out;
  for (const auto& e : fs::directory_iterator("/proc")) {
    std::string name = e.path().filename().string();
    if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    std::string status = slurp((e.path() / "status").string());
    auto at = status.find("\nPPid:\t");
    if (at == std::string::npos || std::atoi(status.c_str() + at + 7) != parent) continue;
    std::string env = slurp((e.path() / "environ").string());
    for (size_t i = 0; i < env.size(); i = env.find('\0', i) + 1) {
      if (env.compare(i, 5, "RANK=") == 0) out[std::atoi(env.c_str() + i + 5)] = std::stoi(name);
      if (env.find('\0', i) == std::string::npos) break;
    }
  }
  return out;
}

bool alive(pid_t pid) { return kill(pid, 0) == 0; }

// Training is under way once the first checkpoint exists.
bool training(const std::string& out) { return fs::exists(fs::path(out) / "checkpoint-2" / "DONE"); }

}  // namespace

TEST(RankFailure, LaunchStopsTheOtherRanksAndNamesTheDeadOne) {
  fs::path d = ellm::testing::temp_dir("launch-fail");
  std::string config = write_tiny_finetune(d / "in");
  std::string out = (d / "out").string(), log = (d / "launch.log").string();
  // Rank 0 sleeps a minute inside checkpoint-4 (rank 1 waits for it in a barrier), so it is in no
  // collective when rank 1 dies: only the launcher can end it in time.
  pid_t launcher = spawn_ellm({"launch", "-n", "2", "--", "finetune", "--config", config, "--out", out},
                              {{"ELLM_TEST_CHECKPOINT_PAUSE", "4"}}, log);
  std::map<int, pid_t> ranks;
  bool paused = eventually(
      [&] {
        return slurp(log).find("ELLM_TEST_CHECKPOINT_PAUSE") != std::string::npos &&
               (ranks = ranks_of(launcher)).size() == 2;
      },
      120);
  if (!paused) {
    kill(launcher, SIGTERM);
    wait_for(launcher, 30);
    FAIL() << "the two ranks did not reach checkpoint 4\n" << slurp(log);
  }
  kill(ranks[1], SIGKILL);
  int st = wait_for(launcher, 20);
  std::string text = slurp(log);
  ASSERT_NE(st, -1) << "the launcher did not exit after rank 1 was killed\n" << text;
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) != 0) << describe(st) << "\n" << text;
  EXPECT_NE(text.find("rank 1 was killed by signal 9"), std::string::npos) << text;
  EXPECT_FALSE(alive(ranks[0])) << "rank 0 outlived the launcher";
  fs::remove_all(d);
}

// Two ranks started directly, as Slurm or torchrun would, with the given collective timeout.
static std::vector<pid_t> start_two_ranks(const fs::path& d, const std::string& config, const std::string& out,
                                   const std::string& timeout_s) {
  std::string port = std::to_string(find_free_port());
  std::vector<pid_t> pids;
  for (int r = 0; r < 2; ++r)
    pids.push_back(spawn_ellm({"finetune", "--config", config, "--out", out, "--set", "train.max_steps=100000", "--set",
                               "train.dist_timeout_s=" + timeout_s},
                              {{"RANK", std::to_string(r)}, {"LOCAL_RANK", std::to_string(r)}, {"WORLD_SIZE", "2"},
                               {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", port}, {"OMP_NUM_THREADS", "1"}},
                              (d / ("rank" + std::to_string(r) + ".log")).string()));
  return pids;
}

TEST(RankFailure, WithoutALauncherTheSurvivingRankFailsInsteadOfHanging) {
  fs::path d = ellm::testing::temp_dir("rank-fail");
  std::string config = write_tiny_finetune(d / "in");
  std::string out = (d / "out").string();
  std::vector<pid_t> pids = start_two_ranks(d, config, out, "20");
  if (!eventually([&] { return training(out); }, 120)) {
    for (pid_t p : pids) kill(p, SIGKILL), wait_for(p, 30);
    FAIL() << "the two ranks did not start training\n" << slurp((d / "rank0.log").string());
  }
  // Rank 0 holds the rendezvous store and writes the checkpoints: the harder one to lose.
  kill(pids[0], SIGKILL);
  wait_for(pids[0], 30);
  int st = wait_for(pids[1], 60);  // a dead peer's sockets are closed: this is quick, not the 20 s timeout
  std::string text = slurp((d / "rank1.log").string());
  ASSERT_NE(st, -1) << "rank 1 still running a minute after rank 0 died\n" << text;
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) != 0) << describe(st) << "\n" << text;
  EXPECT_NE(text.find("rank 1: collective"), std::string::npos) << text;
  fs::remove_all(d);
}

TEST(RankFailure, AHungRankTimesOutItsPeers) {
  fs::path d = ellm::testing::temp_dir("rank-hang");
  std::string config = write_tiny_finetune(d / "in");
  std::string out = (d / "out").string();
  std::vector<pid_t> pids = start_two_ranks(d, config, out, "3");
  if (!eventually([&] { return training(out); }, 120)) {
    for (pid_t p : pids) kill(p, SIGKILL), wait_for(p, 30);
    FAIL() << "the two ranks did not start training\n" << slurp((d / "rank0.log").string());
  }
  // Stopped, not dead: its connections stay open, so only the collective timeout can end the wait.
  kill(pids[1], SIGSTOP);
  auto t0 = std::chrono::steady_clock::now();
  int st = wait_for(pids[0], 60);
  double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  kill(pids[1], SIGKILL);
  kill(pids[1], SIGCONT);
  wait_for(pids[1], 30);
  std::string text = slurp((d / "rank0.log").string());
  ASSERT_NE(st, -1) << "rank 0 still waiting a minute after rank 1 hung (timeout 3 s)\n" << text;
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) != 0) << describe(st) << "\n" << text;
  EXPECT_NE(text.find("rank 0: collective"), std::string::npos) << text;
  EXPECT_NE(text.find("Timed out"), std::string::npos) << text;
  EXPECT_GE(waited, 2.0) << "failed before the timeout: not the hang this test is about\n" << text;
  fs::remove_all(d);
}
