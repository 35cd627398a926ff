// io/: safetensors (round trip of every dtype; a corpus of malformed files, each
// refused with its documented message), JSONL (BOM, CRLF, blank lines, bad UTF-8,
// bad-line policy, truncated tail), atomic files (nothing visible until commit).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include <unistd.h>

#include "ellm/io/atomic_file.h"
#include "ellm/io/jsonl.h"
#include "ellm/io/safetensors.h"
#include "ellm/util/error.h"

namespace fs = std::filesystem;
using namespace ellm;

namespace {

fs::path temp_dir(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("ellm-io-test-" + std::to_string(::getpid())) / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
}

// A safetensors file from a raw header and data region.
std::string safetensors_bytes(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header + data;
}

// Expects opening `bytes` as safetensors to fail with a message containing `expected`.
void expect_rejected(const std::string& name, const std::string& bytes, const std::string& expected) {
  fs::path path = temp_dir("bad") / (name + ".safetensors");
  write_bytes(path, bytes);
  try {
    SafetensorsFile f(path.string());
    FAIL() << name << ": accepted a malformed file";
  } catch (const Error& e) {
    std::string what = e.what();
    EXPECT_NE(what.find(path.string()), std::string::npos) << name << ": message does not name the file: " << what;
    EXPECT_NE(what.find(expected), std::string::npos) << name << ": got '" << what << "'";
  }
}

}  // namespace

TEST(Safetensors, RoundTripsEveryDtypeWithMetadata) {
  fs::path path = temp_dir("roundtrip") / "all.safetensors";
  NamedTensors tensors = {
      {"f64", torch::randn({2, 3}, torch::kFloat64)},
      {"f32", torch::randn({4}, torch::kFloat32)},
      {"f16", torch::randn({3, 1}).to(torch::kFloat16)},
      {"bf16", torch::randn({5}).to(torch::kBFloat16)},
      {"i64", torch::arange(-3, 3, torch::kInt64)},
      {"i32", torch::arange(0, 7, torch::kInt32)},
      {"i16", torch::arange(-2, 2, torch::kInt16)},
      {"i8", torch::arange(-4, 4, torch::kInt8)},
      {"u8", torch::arange(0, 9, torch::kUInt8)},
      {"bool", torch::tensor({true, false, true})},
      {"scalar", torch::tensor(2.5f)},
      {"empty", torch::zeros({0, 4})},
  };
  save_safetensors(path.string(), tensors, {{"format", "pt"}, {"who", "ellm"}});
  SafetensorsFile f(path.string());
  EXPECT_EQ(f.metadata().at("who"), "ellm");
  ASSERT_EQ(f.tensors().size(), tensors.size());
  for (const auto& [name, t] : tensors) {
    SCOPED_TRACE(name);
    at::Tensor back = f.load(name);
    EXPECT_EQ(back.scalar_type(), t.scalar_type());
    EXPECT_EQ(back.sizes(), t.sizes());
    EXPECT_TRUE(torch::equal(back, t));
    EXPECT_TRUE(torch::equal(f.view(name), t));
  }
  // The header is padded to a multiple of 8 bytes, as Hugging Face writes it.
  std::ifstream in(path, std::ios::binary);
  uint64_t n = 0;
  in.read(reinterpret_cast<char*>(&n), 8);
  EXPECT_EQ(n % 8, 0u);
}

TEST(Safetensors, MalformedFilesGiveTheirDocumentedErrors) {
  const std::string ok_data(8, '\1');  // two F32 values
  expect_rejected("short", "abc", "shorter than the 8-byte header length");
  expect_rejected("truncated-header", safetensors_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", "")
                                          .substr(0, 30),
                  "runs past the end of the file");
  {
    std::string huge(8, '\0');
    uint64_t n = SafetensorsFile::kMaxHeaderBytes + 1;
    for (int i = 0; i < 8; ++i) huge[i] = static_cast<char>((n >> (8 * i)) & 0xff);
    expect_rejected("header-too-large", huge + "{}", "exceeds the");
  }
  expect_rejected("not-json", safetensors_bytes("{not json", ok_data), "not valid JSON");
  expect_rejected("unknown-dtype", safetensors_bytes(R"({"a":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}})", ok_data),
                  "unknown dtype 'F33'");
  expect_rejected("wrong-size", safetensors_bytes(R"({"a":{"dtype":"F64","shape":[2],"data_offsets":[0,8]}})", ok_data),
                  "but data_offsets span 8 bytes");
  expect_rejected("past-end", safetensors_bytes(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", ok_data),
                  "past the data region");
  expect_rejected("overlap",
                  safetensors_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                    R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                                    ok_data),
                  "overlaps the previous tensor");
  expect_rejected("gap", safetensors_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", ok_data),
                  "gap of 4 bytes");
  expect_rejected("trailing", safetensors_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", ok_data),
                  "trailing bytes");
  expect_rejected("negative-shape",
                  safetensors_bytes(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", ok_data),
                  "shape entries must be non-negative integers");
}

TEST(Safetensors, UnknownTensorNameIsNamed) {
  fs::path path = temp_dir("names") / "one.safetensors";
  save_safetensors(path.string(), {{"w", torch::ones({2})}});
  SafetensorsFile f(path.string());
  try {
    f.load("v");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no tensor named 'v'"), std::string::npos) << e.what();
  }
}

TEST(Jsonl, ToleratesBomCrlfAndBlankLines) {
  fs::path path = temp_dir("jsonl") / "ok.jsonl";
  write_bytes(path, "\xEF\xBB\xBF{\"a\":1}\r\n\r\n  \n{\"a\":2}\n{\"a\":3}");
  auto records = read_jsonl(path.string());
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[2]["a"], 3);
}

TEST(Jsonl, BadLinesNameFileAndLineOrAreSkippedWithinTheLimit) {
  fs::path path = temp_dir("jsonl") / "bad.jsonl";
  write_bytes(path, "{\"a\":1}\n{\"a\": \xff}\n{oops\n{\"a\":4}\n");
  try {
    read_jsonl(path.string());
    FAIL();
  } catch (const Error& e) {
    std::string what = e.what();
    EXPECT_NE(what.find(path.string() + ":2"), std::string::npos) << what;
    EXPECT_NE(what.find("invalid UTF-8"), std::string::npos) << what;
  }
  JsonlOptions lenient;
  lenient.max_bad_lines = 2;
  EXPECT_EQ(read_jsonl(path.string(), lenient).size(), 2u);
  lenient.max_bad_lines = 1;
  EXPECT_THROW(read_jsonl(path.string(), lenient), Error);

  JsonlOptions short_lines;
  short_lines.max_line_bytes = 4;
  EXPECT_THROW(read_jsonl(path.string(), short_lines), Error);
}

TEST(Jsonl, TruncatedTailIsDroppedOnlyWhenAllowed) {
  fs::path path = temp_dir("jsonl") / "cache.jsonl";
  write_bytes(path, "{\"a\":1}\n{\"a\":2}\n{\"a\":");
  EXPECT_THROW(read_jsonl(path.string()), Error);
  JsonlOptions cache;
  cache.allow_truncated_tail = true;
  EXPECT_EQ(read_jsonl(path.string(), cache).size(), 2u);
}

TEST(AtomicFiles, NothingIsVisibleUntilCommitAndAbandonedWritesLeaveNoTrace) {
  fs::path dir = temp_dir("atomic");
  fs::path path = dir / "out.jsonl";
  write_bytes(path, "{\"old\":true}\n");
  {
    JsonlWriter w(path.string());
    w.write(json{{"new", 1}});
    // Not committed: the old file must survive untouched.
  }
  EXPECT_EQ(read_jsonl(path.string()).at(0)["old"], true);
  {
    JsonlWriter w(path.string());
    w.write(json{{"new", 1}});
    w.commit();
  }
  EXPECT_EQ(read_jsonl(path.string()).at(0)["new"], 1);
  // No temporary files are left behind either way.
  int entries = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 1);
}
