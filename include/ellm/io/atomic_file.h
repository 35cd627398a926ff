#pragma once
// Outputs appear whole or not at all: everything is written to a temporary
// sibling and renamed into place on commit(). A crash or exception before
// commit() leaves any earlier file at `path` untouched.
#include <fstream>
#include <string>
#include <string_view>

namespace ellm {

class AtomicFile {
 public:
  explicit AtomicFile(std::string path, bool binary = false);
  ~AtomicFile();  // discards the temporary if not committed
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  std::ostream& stream() { return out_; }
  const std::string& path() const { return path_; }
  // Flushes, fsyncs and renames over `path`. Throws ellm::Error on I/O failure.
  void commit();

 private:
  std::string path_, tmp_;
  std::ofstream out_;
  bool committed_ = false;
};

void write_file_atomic(const std::string& path, std::string_view content);
std::string read_file(const std::string& path);

// A directory built under a temporary sibling name and renamed into place.
class AtomicDir {
 public:
  explicit AtomicDir(std::string path);
  ~AtomicDir();  // removes the temporary directory if not committed
  AtomicDir(const AtomicDir&) = delete;
  AtomicDir& operator=(const AtomicDir&) = delete;

  // Where to write the directory's files until commit().
  const std::string& staging() const { return tmp_; }
  const std::string& path() const { return path_; }
  // Renames staging → path, replacing an existing directory at path.
  void commit();

 private:
  std::string path_, tmp_;
  bool committed_ = false;
};

// mkdir -p; errors name the path.
void ensure_dir(const std::string& path);

}  // namespace ellm
