#include "ellm/io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <torch/torch.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "ellm/io/atomic_file.h"
#include "ellm/util/error.h"

namespace ellm {

using json = nlohmann::json;

namespace {
struct DTypeEntry {
  const char* name;
  size_t size;
  c10::ScalarType type;
};
const DTypeEntry kDTypes[] = {
    {"F64", 8, c10::kDouble}, {"F32", 4, c10::kFloat}, {"F16", 2, c10::kHalf},   {"BF16", 2, c10::kBFloat16},
    {"I64", 8, c10::kLong},   {"I32", 4, c10::kInt},   {"I16", 2, c10::kShort},  {"I8", 1, c10::kChar},
    {"U8", 1, c10::kByte},    {"BOOL", 1, c10::kBool},
};
const DTypeEntry* find_dtype(const std::string& name) {
  for (const auto& d : kDTypes)
    if (name == d.name) return &d;
  return nullptr;
}
}  // namespace

int64_t SafetensorInfo::numel() const {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

size_t safetensors_dtype_size(const std::string& dtype) {
  auto* d = find_dtype(dtype);
  if (!d) fail("unknown safetensors dtype '{}'", dtype);
  return d->size;
}

c10::ScalarType safetensors_to_torch(const std::string& dtype) {
  auto* d = find_dtype(dtype);
  if (!d) fail("unknown safetensors dtype '{}'", dtype);
  return d->type;
}

std::string torch_to_safetensors(c10::ScalarType type) {
  for (const auto& d : kDTypes)
    if (d.type == type) return d.name;
  fail("tensor dtype {} cannot be stored in safetensors", c10::toString(type));
}

struct SafetensorsFile::Mapping {
  void* addr = MAP_FAILED;
  size_t size = 0;
  ~Mapping() {
    if (addr != MAP_FAILED && size > 0) munmap(addr, size);
  }
};

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path), mapping_(std::make_shared<Mapping>()) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) fail("cannot open '{}': {}", path, std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    ::close(fd);
    fail("cannot stat '{}': {}", path, std::strerror(errno));
  }
  uint64_t file_size = static_cast<uint64_t>(st.st_size);
  if (file_size < 8) {
    ::close(fd);
    fail("{}: not a safetensors file: {} bytes, shorter than the 8-byte header length", path, file_size);
  }
  mapping_->size = file_size;
  mapping_->addr = mmap(nullptr, file_size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (mapping_->addr == MAP_FAILED) fail("cannot mmap '{}': {}", path, std::strerror(errno));
  const auto* bytes = static_cast<const uint8_t*>(mapping_->addr);

  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[i];
  if (n > kMaxHeaderBytes) fail("{}: header length {} exceeds the {}-byte limit", path, n, kMaxHeaderBytes);
  if (n > file_size - 8)
    fail("{}: header length {} runs past the end of the file ({} bytes): truncated file?", path, n, file_size);
  std::string header(reinterpret_cast<const char*>(bytes + 8), n);
  json h;
  try {
    h = json::parse(header);
  } catch (const json::parse_error& e) {
    fail("{}: header is not valid JSON: {}", path, e.what());
  }
  if (!h.is_object()) fail("{}: header must be a JSON object", path);
  data_ = bytes + 8 + n;
  data_size_ = file_size - 8 - n;

  for (auto it = h.begin(); it != h.end(); ++it) {
    const std::string& name = it.key();
    const json& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) fail("{}: __metadata__ must be an object of strings", path);
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) fail("{}: __metadata__['{}'] must be a string", path, m.key());
        metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets"))
      fail("{}: tensor '{}': entry needs dtype, shape and data_offsets", path, name);
    SafetensorInfo info;
    info.name = name;
    if (!v["dtype"].is_string()) fail("{}: tensor '{}': dtype must be a string", path, name);
    info.dtype = v["dtype"].get<std::string>();
    const DTypeEntry* dt = find_dtype(info.dtype);
    if (!dt) fail("{}: tensor '{}': unknown dtype '{}'", path, name, info.dtype);
    info.scalar_type = dt->type;
    if (!v["shape"].is_array()) fail("{}: tensor '{}': shape must be an array", path, name);
    // Element count with overflow checks.
    unsigned __int128 elems = 1;
    for (const auto& d : v["shape"]) {
      if (!d.is_number_integer() || d.get<int64_t>() < 0)
        fail("{}: tensor '{}': shape entries must be non-negative integers", path, name);
      info.shape.push_back(d.get<int64_t>());
      elems *= static_cast<uint64_t>(d.get<int64_t>());
      if (elems > (static_cast<unsigned __int128>(1) << 62)) fail("{}: tensor '{}': shape too large", path, name);
    }
    const json& off = v["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      fail("{}: tensor '{}': data_offsets must be [begin, end] of non-negative integers", path, name);
    info.begin = off[0].get<uint64_t>();
    info.end = off[1].get<uint64_t>();
    if (info.begin > info.end) fail("{}: tensor '{}': data_offsets begin {} > end {}", path, name, info.begin, info.end);
    if (info.end > data_size_)
      fail("{}: tensor '{}': data_offsets end {} is past the data region ({} bytes): truncated file?", path, name,
           info.end, data_size_);
    unsigned __int128 expected = elems * dt->size;
    if (expected != info.end - info.begin)
      fail("{}: tensor '{}': {} bytes for dtype {} and shape {} but data_offsets span {} bytes", path, name,
           static_cast<uint64_t>(expected), info.dtype, v["shape"].dump(), info.end - info.begin);
    tensors_.push_back(std::move(info));
  }
  std::sort(tensors_.begin(), tensors_.end(), [](const SafetensorInfo& a, const SafetensorInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t cursor = 0;
  for (const auto& t : tensors_) {
    if (t.begin < cursor) fail("{}: tensor '{}' overlaps the previous tensor (bytes {}..{})", path, t.name, t.begin, t.end);
    if (t.begin > cursor) fail("{}: gap of {} bytes before tensor '{}'", path, t.begin - cursor, t.name);
    cursor = t.end;
  }
  if (cursor != data_size_)
    fail("{}: {} trailing bytes after the last tensor (data region {} bytes)", path, data_size_ - cursor, data_size_);
  for (size_t i = 0; i < tensors_.size(); ++i) index_[tensors_[i].name] = i;
}

SafetensorsFile::~SafetensorsFile() = default;

const SafetensorInfo& SafetensorsFile::info(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) fail("{}: no tensor named '{}'", path_, name);
  return tensors_[it->second];
}

at::Tensor SafetensorsFile::view(const std::string& name) const {
  const SafetensorInfo& t = info(name);
  auto keep = mapping_;
  void* ptr = const_cast<uint8_t*>(data_ + t.begin);
  if (t.numel() == 0) return torch::empty(t.shape, torch::TensorOptions().dtype(t.scalar_type));
  // The mapping is read-only (MAP_PRIVATE, PROT_READ): callers must not write to a view.
  return torch::from_blob(ptr, t.shape, [keep](void*) {}, torch::TensorOptions().dtype(t.scalar_type));
}

at::Tensor SafetensorsFile::load(const std::string& name) const {
  const SafetensorInfo& t = info(name);
  at::Tensor out = torch::empty(t.shape, torch::TensorOptions().dtype(t.scalar_type));
  if (t.end > t.begin) std::memcpy(out.data_ptr(), data_ + t.begin, t.end - t.begin);
  return out;
}

void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<at::Tensor> data;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    if (name == "__metadata__") fail("{}: a tensor cannot be named __metadata__", path);
    if (header.contains(name)) fail("{}: duplicate tensor name '{}'", path, name);
    at::Tensor t = tensor.detach().to(torch::kCPU).contiguous();
    uint64_t bytes = static_cast<uint64_t>(t.numel()) * t.element_size();
    header[name] = {{"dtype", torch_to_safetensors(t.scalar_type())},
                    {"shape", t.sizes().vec()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    data.push_back(t);
  }
  std::string h = header.dump();
  while (h.size() % 8 != 0) h += ' ';
  AtomicFile f(path, true);
  uint64_t n = h.size();
  char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<char>((n >> (8 * i)) & 0xFF);
  f.stream().write(len, 8);
  f.stream().write(h.data(), static_cast<std::streamsize>(h.size()));
  for (const auto& t : data)
    f.stream().write(static_cast<const char*>(t.data_ptr()), static_cast<std::streamsize>(t.numel() * t.element_size()));
  f.commit();
}

}  // namespace ellm
