#pragma once
// JSON Lines: one JSON value per line, UTF-8.
//
// Reader: streams a file; tolerates a UTF-8 BOM, CRLF line ends and blank
// lines; rejects invalid UTF-8, invalid JSON and lines longer than
// `max_line_bytes` with an error naming "file:line". With max_bad_lines > 0,
// up to that many bad lines are skipped (and counted, and logged) instead.
// For append-only caches that a crash may have cut mid-line, set
// `allow_truncated_tail`: a final line with no newline that does not parse is
// dropped with a warning.
//
// Writer: writes to a temporary file and renames on commit() (atomic).
// Appender: appends and flushes one line at a time (resumable caches).
#include <nlohmann/json.hpp>

#include <cstdint>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "ellm/io/atomic_file.h"

namespace ellm {

using json = nlohmann::json;

struct JsonlOptions {
  size_t max_line_bytes = 64u << 20;
  int64_t max_bad_lines = 0;
  bool allow_truncated_tail = false;
};

class JsonlReader {
 public:
  explicit JsonlReader(std::string path, JsonlOptions options = {});
  // Reads the next record into `out`; false at end of file.
  bool next(json& out);
  // 1-based line number of the record last returned.
  int64_t line() const { return line_; }
  int64_t records() const { return records_; }
  int64_t bad_lines() const { return bad_; }
  const std::string& path() const { return path_; }
  // "file:line" of the record last returned, for callers' own validation errors.
  std::string where() const;

 private:
  bool bad_line(const std::string& why);
  bool read_line(std::string& line, bool& saw_newline, bool& too_long);
  std::string path_;
  std::string chunk_;
  size_t pos_ = 0;
  JsonlOptions options_;
  std::ifstream in_;
  int64_t line_ = 0, records_ = 0, bad_ = 0;
};

// Reads every record; errors as above.
std::vector<json> read_jsonl(const std::string& path, JsonlOptions options = {});
// Calls fn(record, reader) per record (reader gives line numbers for errors).
void for_each_jsonl(const std::string& path, const std::function<void(const json&, const JsonlReader&)>& fn,
                    JsonlOptions options = {});

class JsonlWriter {
 public:
  explicit JsonlWriter(std::string path);
  void write(const json& record);
  int64_t records() const { return records_; }
  void commit();

 private:
  AtomicFile file_;
  int64_t records_ = 0;
};

class JsonlAppender {
 public:
  explicit JsonlAppender(std::string path);
  void write(const json& record);  // one line, flushed

 private:
  std::string path_;
  std::ofstream out_;
};

void write_jsonl(const std::string& path, const std::vector<json>& records);

}  // namespace ellm
