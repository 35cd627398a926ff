// SentencePiece backend, through libellm_spm.so loaded with dlopen.
//
// Why a separate library loaded at run time: libsentencepiece links libprotobuf-lite,
// and libtorch carries its own protobuf. Linking both into one binary makes the two
// protobufs' symbols interpose each other, and the program crashes at load or at the
// first SentencePiece call (a segfault inside protobuf). So libsentencepiece is linked
// only into libellm_spm.so (src/text/spm_shim/spm_shim.cpp, a plain C API), which is
// opened with RTLD_LOCAL | RTLD_DEEPBIND: its own dependencies resolve against their own
// symbols first, and nothing of it leaks into the global namespace that libtorch uses.
// The library is looked for in $ELLM_SPM_LIBRARY, next to the running executable, at the
// path the build put it (spm_library_path()), then on the loader's search path.
#include "ellm/text/sentencepiece.h"

#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <mutex>
#include <unordered_map>

#include "ellm/io/utf8.h"
#include "ellm/util/error.h"
#include "ellm/util/build_paths.h"

namespace ellm {
namespace {

namespace fs = std::filesystem;

struct SpmApi {
  int (*abi_version)();
  void (*free_)(void*);
  void* (*load)(const char*, char**);
  void (*destroy)(void*);
  int (*encode)(void*, const char*, size_t, int64_t**, uint64_t**, uint64_t**, size_t*, char**);
  int (*decode)(void*, const int64_t*, size_t, char**, size_t*, char**);
  int (*piece_size)(void*);
  char* (*id_to_piece)(void*, int);
  int (*piece_to_id)(void*, const char*, size_t);
  int (*piece_flags)(void*, int);
  void (*special_ids)(void*, int*, int*, int*, int*);
  int (*train)(const char* const*, const char* const*, size_t, char**);
};

std::string executable_dir() {
  std::error_code ec;
  auto p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string() : p.parent_path().string();
}

const SpmApi& spm_api() {
  static SpmApi api;
  static std::once_flag once;
  std::call_once(once, [] {
    std::vector<std::string> candidates;
    if (const char* env = std::getenv("ELLM_SPM_LIBRARY")) candidates.emplace_back(env);
    if (auto dir = executable_dir(); !dir.empty()) candidates.push_back(dir + "/libellm_spm.so");
    candidates.push_back(spm_library_path());
    candidates.emplace_back("libellm_spm.so");
    void* handle = nullptr;
    std::string errors;
    for (const auto& c : candidates) {
      if (c.find('/') != std::string::npos && !fs::exists(c)) continue;
      handle = dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
      if (handle) break;
      const char* e = dlerror();
      errors += "\n  " + c + ": " + (e ? e : "?");
    }
    if (!handle)
      fail("cannot load libellm_spm.so (the SentencePiece shim, built next to the ellm executable); set "
           "ELLM_SPM_LIBRARY to its path{}",
           errors);
    auto sym = [&](const char* name) {
      void* p = dlsym(handle, name);
      if (!p) fail("libellm_spm.so lacks symbol {} (stale build?)", name);
      return p;
    };
    api.abi_version = reinterpret_cast<int (*)()>(sym("ellm_spm_abi_version"));
    if (api.abi_version() != 1) fail("libellm_spm.so has ABI version {}, expected 1 (stale build?)", api.abi_version());
    api.free_ = reinterpret_cast<void (*)(void*)>(sym("ellm_spm_free"));
    api.load = reinterpret_cast<void* (*)(const char*, char**)>(sym("ellm_spm_load"));
    api.destroy = reinterpret_cast<void (*)(void*)>(sym("ellm_spm_destroy"));
    api.encode = reinterpret_cast<decltype(api.encode)>(sym("ellm_spm_encode"));
    api.decode = reinterpret_cast<decltype(api.decode)>(sym("ellm_spm_decode"));
    api.piece_size = reinterpret_cast<decltype(api.piece_size)>(sym("ellm_spm_piece_size"));
    api.id_to_piece = reinterpret_cast<decltype(api.id_to_piece)>(sym("ellm_spm_id_to_piece"));
    api.piece_to_id = reinterpret_cast<decltype(api.piece_to_id)>(sym("ellm_spm_piece_to_id"));
    api.piece_flags = reinterpret_cast<decltype(api.piece_flags)>(sym("ellm_spm_piece_flags"));
    api.special_ids = reinterpret_cast<decltype(api.special_ids)>(sym("ellm_spm_special_ids"));
    api.train = reinterpret_cast<decltype(api.train)>(sym("ellm_spm_train"));
  });
  return api;
}

// Takes ownership of a string malloc'ed by the shim.
std::string take_string(const SpmApi& api, char* p) {
  std::string s = p ? std::string(p) : std::string();
  api.free_(p);
  return s;
}

constexpr int kControl = 1, kUnknown = 2, kByte = 4;

class SentencePieceTokenizer : public Tokenizer {
 public:
  explicit SentencePieceTokenizer(const std::string& path) : path_(path), api_(spm_api()) {
    if (!fs::is_regular_file(path)) fail("SentencePiece model {}: no such file", path);
    char* err = nullptr;
    handle_ = api_.load(path.c_str(), &err);
    if (!handle_) fail("SentencePiece model {}: cannot load ({})", path, take_string(api_, err));
    int n = api_.piece_size(handle_);
    pieces_.resize(static_cast<size_t>(n));
    flags_.resize(static_cast<size_t>(n));
    bytes_.resize(static_cast<size_t>(n));
    special_.resize(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) {
      auto& piece = pieces_[static_cast<size_t>(i)];
      piece = take_string(api_, api_.id_to_piece(handle_, i));
      int f = api_.piece_flags(handle_, i);
      flags_[static_cast<size_t>(i)] = f;
      piece_ids_.emplace(piece, i);
      // What the piece contributes to decoded text: "▁" is a space, <0xAB> one byte.
      std::string b;
      if (f & kControl) {
      } else if (f & kUnknown) {
        b = " \xE2\x81\x87 ";  // SentencePiece decodes <unk> as " ⁇ "
      } else if ((f & kByte) && piece.size() == 6) {
        b.push_back(static_cast<char>(std::stoi(piece.substr(3, 2), nullptr, 16)));
      } else {
        for (size_t k = 0; k < piece.size();) {
          if (piece.compare(k, 3, "\xE2\x96\x81") == 0) {
            b.push_back(' ');
            k += 3;
          } else {
            b.push_back(piece[k++]);
          }
        }
      }
      bytes_[static_cast<size_t>(i)] = std::move(b);
      bool marker = piece.size() > 2 && piece.front() == '<' && piece.back() == '>' && !(f & (kByte | kUnknown));
      special_[static_cast<size_t>(i)] = (f & kControl) || marker;
    }
    api_.special_ids(handle_, &bos_, &eos_, &pad_, &unk_);
  }
  ~SentencePieceTokenizer() override {
    if (handle_) api_.destroy(handle_);
  }

  Encoding encode(std::string_view text, bool add_special) const override {
    size_t bad = 0;
    if (!is_valid_utf8(text, &bad)) fail("{}: input is not valid UTF-8 (byte {})", describe(), bad);
    int64_t* ids = nullptr;
    uint64_t *begins = nullptr, *ends = nullptr;
    size_t n = 0;
    char* err = nullptr;
    if (api_.encode(handle_, text.data(), text.size(), &ids, &begins, &ends, &n, &err) != 0)
      fail("{}: encode failed: {}", describe(), take_string(api_, err));
    Encoding enc;
    bool bos = add_special && bos_ >= 0;
    enc.ids.reserve(n + bos);
    enc.offsets.reserve(n + bos);
    if (bos) {
      enc.ids.push_back(bos_);
      enc.offsets.emplace_back(0, 0);
    }
    for (size_t i = 0; i < n; ++i) {
      enc.ids.push_back(ids[i]);
      enc.offsets.emplace_back(static_cast<size_t>(begins[i]), static_cast<size_t>(ends[i]));
    }
    api_.free_(ids);
    api_.free_(begins);
    api_.free_(ends);
    return enc;
  }

  std::string decode(const std::vector<int64_t>& ids, bool skip_special) const override {
    std::vector<int64_t> kept;
    kept.reserve(ids.size());
    for (int64_t id : ids) {
      check_id(id);
      if (skip_special && special_[static_cast<size_t>(id)]) continue;
      kept.push_back(id);
    }
    char* out = nullptr;
    size_t len = 0;
    char* err = nullptr;
    if (api_.decode(handle_, kept.data(), kept.size(), &out, &len, &err) != 0)
      fail("{}: decode failed: {}", describe(), take_string(api_, err));
    std::string s(out, len);
    api_.free_(out);
    return s;
  }

  std::string token_bytes(int64_t id) const override {
    check_id(id);
    return bytes_[static_cast<size_t>(id)];
  }
  int64_t vocab_size() const override { return static_cast<int64_t>(pieces_.size()); }
  std::optional<int64_t> token_to_id(const std::string& token) const override {
    auto it = piece_ids_.find(token);
    if (it == piece_ids_.end()) return std::nullopt;
    return it->second;
  }
  std::string id_to_token(int64_t id) const override {
    check_id(id);
    return pieces_[static_cast<size_t>(id)];
  }
  bool is_special(int64_t id) const override {
    check_id(id);
    return special_[static_cast<size_t>(id)];
  }
  std::optional<int64_t> bos_id() const override { return opt(bos_); }
  std::optional<int64_t> eos_id() const override { return opt(eos_); }
  std::optional<int64_t> pad_id() const override { return opt(pad_); }
  std::optional<int64_t> unk_id() const override { return opt(unk_); }
  std::string describe() const override { return "sentencepiece:" + path_; }

 private:
  static std::optional<int64_t> opt(int id) { return id >= 0 ? std::optional<int64_t>(id) : std::nullopt; }
  void check_id(int64_t id) const {
    if (id < 0 || id >= static_cast<int64_t>(pieces_.size()))
      fail("{}: token id {} out of range [0, {})", describe(), id, pieces_.size());
  }

  std::string path_;
  const SpmApi& api_;
  void* handle_ = nullptr;
  std::vector<std::string> pieces_, bytes_;
  std::vector<int> flags_;
  std::vector<bool> special_;
  std::unordered_map<std::string, int64_t> piece_ids_;
  int bos_ = -1, eos_ = -1, pad_ = -1, unk_ = -1;
};

}  // namespace

std::shared_ptr<Tokenizer> load_sentencepiece(const std::string& model_path) {
  return std::make_shared<SentencePieceTokenizer>(model_path);
}

void train_sentencepiece(const SentencePieceTrainOptions& o) {
  ELLM_CHECK(!o.inputs.empty(), "tokenizer train: no --input file");
  for (const auto& in : o.inputs) ELLM_CHECK(fs::is_regular_file(in), "tokenizer train: input {} not found", in);
  ELLM_CHECK(!o.model_prefix.empty(), "tokenizer train: --model-prefix is required");
  ELLM_CHECK(o.vocab_size > 0, "tokenizer train: --vocab-size must be positive, got {}", o.vocab_size);
  ELLM_CHECK(o.model_type == "unigram" || o.model_type == "bpe" || o.model_type == "word" || o.model_type == "char",
             "tokenizer train: --model-type must be unigram|bpe|word|char, got '{}'", o.model_type);
  ELLM_CHECK(o.character_coverage > 0 && o.character_coverage <= 1,
             "tokenizer train: --character-coverage must be in (0, 1], got {}", o.character_coverage);
  std::vector<std::string> symbols;
  for (const auto& s : o.user_symbols) {
    ELLM_CHECK(!s.empty(), "tokenizer train: empty user symbol");
    ELLM_CHECK(s.find(',') == std::string::npos, "tokenizer train: user symbol '{}' holds a comma", s);
    symbols.push_back(s);
  }
  if (o.keep_newlines && std::find(symbols.begin(), symbols.end(), "\n") == symbols.end()) symbols.push_back("\n");
  std::string joined_inputs, joined_symbols;
  for (const auto& in : o.inputs) joined_inputs += (joined_inputs.empty() ? "" : ",") + in;
  for (const auto& s : symbols) joined_symbols += (joined_symbols.empty() ? "" : ",") + s;
  std::string normalization = o.normalization.empty() ? (o.keep_newlines ? "nfkc" : "nmt_nfkc") : o.normalization;

  std::vector<std::pair<std::string, std::string>> kv = {
      {"input", joined_inputs},
      {"model_prefix", o.model_prefix},
      {"vocab_size", std::to_string(o.vocab_size)},
      {"model_type", o.model_type},
      {"character_coverage", fmt::format("{}", o.character_coverage)},
      {"byte_fallback", o.byte_fallback ? "true" : "false"},
      {"normalization_rule_name", normalization},
      {"remove_extra_whitespaces", o.keep_newlines ? "false" : "true"},
      {"add_dummy_prefix", o.add_dummy_prefix ? "true" : "false"},
      {"input_sentence_size", std::to_string(o.input_sentence_size)},
      {"shuffle_input_sentence", "true"},
      {"max_sentence_length", std::to_string(o.max_sentence_length)},
      {"num_threads", std::to_string(std::max(1, o.threads))},
      {"pad_id", "0"},
      {"bos_id", "1"},
      {"eos_id", "2"},
      {"unk_id", "3"},
      {"hard_vocab_limit", "false"},
      {"minloglevel", o.quiet ? "2" : "0"},
  };
  if (!joined_symbols.empty()) kv.emplace_back("user_defined_symbols", joined_symbols);
  std::vector<const char*> keys, values;
  for (const auto& [k, v] : kv) {
    keys.push_back(k.c_str());
    values.push_back(v.c_str());
  }
  const auto& api = spm_api();
  char* err = nullptr;
  if (api.train(keys.data(), values.data(), kv.size(), &err) != 0)
    fail("tokenizer train ({}): SentencePiece: {}", joined_inputs, take_string(api, err));
}

}  // namespace ellm
