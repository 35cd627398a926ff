// libellm_spm.so: a tiny C API over libsentencepiece, loaded with dlopen by
// src/text/sentencepiece_tokenizer.cpp (which says why it has to be a separate library:
// libsentencepiece links libprotobuf-lite, whose symbols clash with libtorch's copy).
// Only plain C types cross this boundary; strings and arrays are malloc'ed here and
// released with ellm_spm_free.
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

char* dup_string(const std::string& s) {
  char* p = static_cast<char*>(std::malloc(s.size() + 1));
  if (p) {
    std::memcpy(p, s.data(), s.size());
    p[s.size()] = '\0';
  }
  return p;
}

void set_error(char** err, const std::string& message) {
  if (err) *err = dup_string(message);
}

}  // namespace

extern "C" {

// ABI version of this API; the loader refuses a library with another one.
int ellm_spm_abi_version() { return 1; }

void ellm_spm_free(void* p) { std::free(p); }

// Loads a .model file; null (and *err set) on failure.
void* ellm_spm_load(const char* path, char** err) {
  auto* sp = new sentencepiece::SentencePieceProcessor();
  auto status = sp->Load(path);
  if (!status.ok()) {
    set_error(err, status.ToString());
    delete sp;
    return nullptr;
  }
  return sp;
}

void ellm_spm_destroy(void* h) { delete static_cast<sentencepiece::SentencePieceProcessor*>(h); }

// Encodes `text`; *ids, *begins, *ends are malloc'ed arrays of *n entries (byte offsets
// into `text`). Returns 0 on success.
int ellm_spm_encode(void* h, const char* text, size_t len, int64_t** ids, uint64_t** begins, uint64_t** ends,
                    size_t* n, char** err) {
  auto* sp = static_cast<sentencepiece::SentencePieceProcessor*>(h);
  sentencepiece::ImmutableSentencePieceText spt;
  auto status = sp->Encode(absl::string_view(text, len), spt.mutable_proto());
  if (!status.ok()) {
    set_error(err, status.ToString());
    return 1;
  }
  size_t count = spt.pieces_size();
  *n = count;
  *ids = static_cast<int64_t*>(std::malloc(sizeof(int64_t) * (count ? count : 1)));
  *begins = static_cast<uint64_t*>(std::malloc(sizeof(uint64_t) * (count ? count : 1)));
  *ends = static_cast<uint64_t*>(std::malloc(sizeof(uint64_t) * (count ? count : 1)));
  for (size_t i = 0; i < count; ++i) {
    auto piece = spt.pieces(static_cast<int>(i));
    (*ids)[i] = piece.id();
    (*begins)[i] = piece.begin();
    (*ends)[i] = piece.end();
  }
  return 0;
}

// Decodes ids into a malloc'ed string of *out_len bytes. Returns 0 on success.
int ellm_spm_decode(void* h, const int64_t* ids, size_t n, char** out, size_t* out_len, char** err) {
  auto* sp = static_cast<sentencepiece::SentencePieceProcessor*>(h);
  std::vector<int> v(ids, ids + n);
  std::string text;
  auto status = sp->Decode(v, &text);
  if (!status.ok()) {
    set_error(err, status.ToString());
    return 1;
  }
  *out = dup_string(text);
  *out_len = text.size();
  return 0;
}

int ellm_spm_piece_size(void* h) { return static_cast<sentencepiece::SentencePieceProcessor*>(h)->GetPieceSize(); }

// The piece string of an id (malloc'ed).
char* ellm_spm_id_to_piece(void* h, int id) {
  return dup_string(static_cast<sentencepiece::SentencePieceProcessor*>(h)->IdToPiece(id));
}

int ellm_spm_piece_to_id(void* h, const char* piece, size_t len) {
  return static_cast<sentencepiece::SentencePieceProcessor*>(h)->PieceToId(absl::string_view(piece, len));
}

// Bit flags per id: 1 control, 2 unknown, 4 byte, 16 unused.
int ellm_spm_piece_flags(void* h, int id) {
  auto* sp = static_cast<sentencepiece::SentencePieceProcessor*>(h);
  return (sp->IsControl(id) ? 1 : 0) | (sp->IsUnknown(id) ? 2 : 0) | (sp->IsByte(id) ? 4 : 0) |
         (sp->IsUnused(id) ? 16 : 0);
}

// bos, eos, pad, unk ids (-1 when the model has none).
void ellm_spm_special_ids(void* h, int* bos, int* eos, int* pad, int* unk) {
  auto* sp = static_cast<sentencepiece::SentencePieceProcessor*>(h);
  *bos = sp->bos_id();
  *eos = sp->eos_id();
  *pad = sp->pad_id();
  *unk = sp->unk_id();
}

// Trains a model from `n` key/value pairs (SentencePieceTrainer's flags without "--").
int ellm_spm_train(const char* const* keys, const char* const* values, size_t n, char** err) {
  std::unordered_map<std::string, std::string> kwargs;
  for (size_t i = 0; i < n; ++i) kwargs[keys[i]] = values[i];
  auto status = sentencepiece::SentencePieceTrainer::Train(kwargs);
  if (!status.ok()) {
    set_error(err, status.ToString());
    return 1;
  }
  return 0;
}

}  // extern "C"
