#pragma once
// Runs a shell command as a user would (tests of the CLI and the scripts): exit status and
// stdout+stderr together.
#include <array>
#include <cstdio>
#include <string>

#include <sys/wait.h>

namespace ellm::test_support {

struct ShellResult {
  int rc;           // exit status; -1 when the command did not exit normally
  std::string out;  // stdout and stderr, interleaved
};

inline ShellResult sh(const std::string& cmd) {
  ShellResult r{-1, ""};
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  int status = pclose(p);
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// The last n characters: enough of a long log to see why a command failed.
inline std::string tail(const std::string& s, size_t n = 4000) { return s.size() > n ? s.substr(s.size() - n) : s; }

}  // namespace ellm::test_support
