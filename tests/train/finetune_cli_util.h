#pragma once
// Helpers for the tests that run `ellm finetune` / `ellm launch` as a user does, as
// subprocesses: a tiny run directory (byte-level BPE tokenizer.json, a one-layer geometry,
// a dozen CoT annotations, a short prompt, a LoRA-with-dropout config), and spawning with
// extra environment variables, output to a log file, and a deadline on waiting.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../text/tokenizer_test_util.h"
#include "ellm/io/atomic_file.h"
#include "ellm/util/build_paths.h"
#include "ellm/util/config.h"

namespace ellm::finetune_test {

namespace fs = std::filesystem;

// Writes everything `ellm finetune --config <returned path>` needs under dir.
inline std::string write_tiny_finetune(const fs::path& dir) {
  fs::create_directories(dir);
  write_file_atomic((dir / "tokenizer.json").string(), ellm::testing::tiny_bpe_json().dump());
  write_file_atomic((dir / "geometry.json").string(), json{{"architectures", {"Qwen2ForCausalLM"}},
                                                           {"model_type", "qwen2"},
                                                           {"vocab_size", 268},
                                                           {"hidden_size", 32},
                                                           {"intermediate_size", 64},
                                                           {"num_hidden_layers", 1},
                                                           {"num_attention_heads", 2},
                                                           {"num_key_value_heads", 1},
                                                           {"max_position_embeddings", 512},
                                                           {"tie_word_embeddings", true}}
                                                          .dump(2));
  write_file_atomic((dir / "prompt.json").string(),
                    json{{"system", "Judge relevance. Grades: {grades}."}, {"user", "Query: {query}\nProduct: {title}"}}
                        .dump(2));
  const char* queries[] = {"red sofa", "oak table", "blue lamp", "grey chair"};
  const char* titles[] = {"Red Linen Sofa", "Pine Desk", "Green Lamp", "Gray Chair"};
  const char* cots[] = {
      "[category] query: \"sofa\" | item: \"Sofa\" | match\n[attribute:color] query: \"red\" | item: \"Red\" | match\n",
      "[category] query: \"table\" | item: \"Desk\" | mismatch\n",
      "[category] query: \"lamp\" | item: \"Lamp\" | match\n[attribute:color] query: \"blue\" | item: \"Green\" | "
      "mismatch\n",
      "[category] query: \"chair\" | item: \"Chair\" | match\n"};
  const char* grades[] = {"exact", "irrelevant", "partial", "exact"};
  const int labels[] = {2, 0, 1, 2};
  std::ofstream ann((dir / "annotations.jsonl").string());
  for (int i = 0; i < 12; ++i) {
    int k = i % 4;
    std::string query = queries[k] + std::string(i / 4, '!');  // varied lengths
    ann << json{{"id", "r" + std::to_string(i)}, {"query", query}, {"item", {{"title", titles[k]}}},
                {"label", labels[k]}, {"cot", cots[k]}, {"grade", grades[k]}}
               .dump()
        << "\n";
  }
  ann.close();
  json cfg = {{"model", {{"config", (dir / "geometry.json").string()}, {"tokenizer", (dir / "tokenizer.json").string()},
                         {"dtype", "fp32"}, {"device", "cpu"}}},
              {"data", {{"annotations", (dir / "annotations.jsonl").string()}, {"eval_fraction", 0.0},
                        {"prompt", (dir / "prompt.json").string()}, {"max_length", 512}}},
              {"lora", {{"enabled", true}, {"r", 4}, {"alpha", 8.0}, {"dropout", 0.1}, {"merge_final", true}}},
              {"train", {{"max_steps", 6}, {"batch_size", 4}, {"micro_batch_size", 2}, {"lr", 3e-3},
                         {"warmup_ratio", 0.0}, {"log_every", 1}, {"save_every", 2}, {"keep_last", 3}, {"seed", 5},
                         {"dist_timeout_s", 20}}}};
  write_file_atomic((dir / "finetune.json").string(), cfg.dump(2));
  return (dir / "finetune.json").string();
}

// Starts `ellm args...` with extra environment variables; stdout and stderr go to log.
inline pid_t spawn_ellm(const std::vector<std::string>& args, const std::map<std::string, std::string>& env,
                        const std::string& log) {
  std::string exe = ellm::ellm_binary();
  pid_t pid = fork();
  if (pid == 0) {
    for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
    FILE* f = std::freopen(log.c_str(), "w", stdout);
    if (f) dup2(fileno(stdout), 2);
    std::vector<char*> argv{const_cast<char*>(exe.c_str())};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(exe.c_str(), argv.data());
    _exit(127);
  }
  return pid;
}

// Waits for pid up to `seconds`; returns its wait status, or -1 if it was still running
// (then it has been killed and reaped, so that a failing test leaves no process behind).
inline int wait_for(pid_t pid, double seconds) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (waitpid(pid, &status, WNOHANG) == pid) return status;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  return -1;
}

// Polls until pred() holds or `seconds` pass; returns whether it held.
template <typename Pred>
bool eventually(Pred pred, double seconds) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pred();
}

inline std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline std::string describe(int status) {
  if (status == -1) return "still running at the deadline";
  if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "signal " + std::to_string(WTERMSIG(status));
  return "status " + std::to_string(status);
}

}  // namespace ellm::finetune_test
