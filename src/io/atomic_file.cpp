#include "ellm/io/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "ellm/util/error.h"

namespace fs = std::filesystem;

namespace ellm {

static std::string temp_name(const std::string& path) {
  static std::atomic<int> counter{0};
  return fmt::format("{}.tmp-{}-{}", path, getpid(), counter++);
}

static void fsync_path(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

void ensure_dir(const std::string& path) {
  if (path.empty()) return;
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) fail("cannot create directory '{}': {}", path, ec.message());
}

AtomicFile::AtomicFile(std::string path, bool binary) : path_(std::move(path)), tmp_(temp_name(path_)) {
  fs::path parent = fs::path(path_).parent_path();
  if (!parent.empty()) ensure_dir(parent.string());
  out_.open(tmp_, binary ? std::ios::binary | std::ios::out | std::ios::trunc : std::ios::out | std::ios::trunc);
  if (!out_) fail("cannot write '{}': {}", tmp_, std::strerror(errno));
}

AtomicFile::~AtomicFile() {
  if (!committed_) {
    out_.close();
    std::error_code ec;
    fs::remove(tmp_, ec);
  }
}

void AtomicFile::commit() {
  out_.flush();
  if (!out_) fail("error while writing '{}' (disk full?)", path_);
  out_.close();
  fsync_path(tmp_);
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0) fail("cannot rename '{}' to '{}': {}", tmp_, path_, std::strerror(errno));
  committed_ = true;
  fs::path parent = fs::path(path_).parent_path();
  fsync_path(parent.empty() ? "." : parent.string());
}

void write_file_atomic(const std::string& path, std::string_view content) {
  AtomicFile f(path, true);
  f.stream().write(content.data(), static_cast<std::streamsize>(content.size()));
  f.commit();
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot open '{}': {}", path, std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

AtomicDir::AtomicDir(std::string path) : path_(std::move(path)) {
  while (!path_.empty() && path_.back() == '/') path_.pop_back();
  tmp_ = temp_name(path_);
  ensure_dir(tmp_);
}

AtomicDir::~AtomicDir() {
  if (!committed_) {
    std::error_code ec;
    fs::remove_all(tmp_, ec);
  }
}

void AtomicDir::commit() {
  std::error_code ec;
  std::string old;
  if (fs::exists(path_)) {
    old = temp_name(path_ + ".old");
    fs::rename(path_, old, ec);
    if (ec) fail("cannot move aside '{}': {}", path_, ec.message());
  }
  fs::rename(tmp_, path_, ec);
  if (ec) fail("cannot rename '{}' to '{}': {}", tmp_, path_, ec.message());
  committed_ = true;
  if (!old.empty()) fs::remove_all(old, ec);
  fs::path parent = fs::path(path_).parent_path();
  fsync_path(parent.empty() ? "." : parent.string());
}

}  // namespace ellm
