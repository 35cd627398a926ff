#include "ellm/io/jsonl.h"

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "ellm/io/utf8.h"
#include "ellm/util/error.h"

namespace ellm {

JsonlReader::JsonlReader(std::string path, JsonlOptions options) : path_(std::move(path)), options_(options) {
  in_.open(path_, std::ios::binary);
  if (!in_) fail("cannot open '{}': {}", path_, std::strerror(errno));
}

std::string JsonlReader::where() const { return fmt::format("{}:{}", path_, line_); }

bool JsonlReader::bad_line(const std::string& why) {
  ++bad_;
  if (bad_ > options_.max_bad_lines) {
    if (options_.max_bad_lines > 0)
      fail("{}:{}: {} (more than --max-bad-lines={} bad lines)", path_, line_, why, options_.max_bad_lines);
    fail("{}:{}: {}", path_, line_, why);
  }
  spdlog::warn("{}:{}: skipped: {}", path_, line_, why);
  return true;
}

bool JsonlReader::read_line(std::string& line, bool& saw_newline, bool& too_long) {
  line.clear();
  saw_newline = too_long = false;
  bool any = false;
  while (true) {
    if (pos_ == chunk_.size()) {
      chunk_.resize(1 << 16);
      in_.read(chunk_.data(), static_cast<std::streamsize>(chunk_.size()));
      if (in_.bad()) fail("{}: read error after line {}", path_, line_);
      chunk_.resize(static_cast<size_t>(in_.gcount()));
      pos_ = 0;
      if (chunk_.empty()) return any;
    }
    any = true;
    const char* begin = chunk_.data() + pos_;
    const char* nl = static_cast<const char*>(std::memchr(begin, '\n', chunk_.size() - pos_));
    size_t len = nl ? static_cast<size_t>(nl - begin) : chunk_.size() - pos_;
    if (!too_long) {
      if (line.size() + len > options_.max_line_bytes) {
        too_long = true;
        line.clear();
      } else {
        line.append(begin, len);
      }
    }
    pos_ += len + (nl ? 1 : 0);
    if (nl) {
      saw_newline = true;
      return true;
    }
  }
}

bool JsonlReader::next(json& out) {
  std::string buf;
  bool saw_newline, too_long;
  while (true) {
    if (!read_line(buf, saw_newline, too_long)) return false;
    ++line_;
    if (too_long) {
      bad_line(fmt::format("line longer than {} bytes", options_.max_line_bytes));
      continue;
    }
    if (line_ == 1 && buf.size() >= 3 && buf.compare(0, 3, "\xEF\xBB\xBF") == 0) buf.erase(0, 3);
    if (!buf.empty() && buf.back() == '\r') buf.pop_back();
    bool blank = buf.find_first_not_of(" \t") == std::string::npos;
    if (blank) {
      if (!saw_newline) return false;
      continue;
    }
    size_t bad_at = 0;
    if (!is_valid_utf8(buf, &bad_at)) {
      bad_line(fmt::format("invalid UTF-8 at byte {} of the line", bad_at));
      continue;
    }
    try {
      out = json::parse(buf);
    } catch (const json::parse_error& e) {
      if (!saw_newline && options_.allow_truncated_tail) {
        spdlog::warn("{}:{}: dropping a truncated last line (interrupted write)", path_, line_);
        return false;
      }
      bad_line(fmt::format("invalid JSON: {}", e.what()));
      continue;
    }
    ++records_;
    return true;
  }
}

std::vector<json> read_jsonl(const std::string& path, JsonlOptions options) {
  std::vector<json> out;
  JsonlReader reader(path, options);
  json record;
  while (reader.next(record)) out.push_back(std::move(record));
  return out;
}

void for_each_jsonl(const std::string& path, const std::function<void(const json&, const JsonlReader&)>& fn,
                    JsonlOptions options) {
  JsonlReader reader(path, options);
  json record;
  while (reader.next(record)) fn(record, reader);
}

JsonlWriter::JsonlWriter(std::string path) : file_(std::move(path)) {}

void JsonlWriter::write(const json& record) {
  file_.stream() << record.dump(-1, ' ', false, json::error_handler_t::strict) << '\n';
  ++records_;
}

void JsonlWriter::commit() { file_.commit(); }

JsonlAppender::JsonlAppender(std::string path) : path_(std::move(path)) {
  auto parent = std::filesystem::path(path_).parent_path();
  if (!parent.empty()) ensure_dir(parent.string());
  // If an earlier run was cut mid-line, start on a fresh line.
  bool needs_newline = false;
  {
    std::ifstream in(path_, std::ios::binary | std::ios::ate);
    if (in && in.tellg() > 0) {
      in.seekg(-1, std::ios::end);
      needs_newline = in.get() != '\n';
    }
  }
  out_.open(path_, std::ios::binary | std::ios::app);
  if (!out_) fail("cannot append to '{}': {}", path_, std::strerror(errno));
  if (needs_newline) out_ << '\n';
}

void JsonlAppender::write(const json& record) {
  out_ << record.dump() << '\n';
  out_.flush();
  if (!out_) fail("error while appending to '{}' (disk full?)", path_);
}

void write_jsonl(const std::string& path, const std::vector<json>& records) {
  JsonlWriter w(path);
  for (const auto& r : records) w.write(r);
  w.commit();
}

}  // namespace ellm
