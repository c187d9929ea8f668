#include "io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <system_error>

#include "io/json.h"
#include "util/error.h"

namespace lethe::io {
namespace fs = std::filesystem;

namespace {
struct DTypeEntry {
  DType d;
  const char* name;
  size_t size;
};
constexpr DTypeEntry kDTypes[] = {
    {DType::Bool, "BOOL", 1}, {DType::U8, "U8", 1},           {DType::I8, "I8", 1},           {DType::I16, "I16", 2},
    {DType::U16, "U16", 2},   {DType::F16, "F16", 2},         {DType::BF16, "BF16", 2},       {DType::I32, "I32", 4},
    {DType::U32, "U32", 4},   {DType::F32, "F32", 4},         {DType::F64, "F64", 8},         {DType::I64, "I64", 8},
    {DType::U64, "U64", 8},   {DType::F8_E4M3, "F8_E4M3", 1}, {DType::F8_E5M2, "F8_E5M2", 1},
};
// The reference implementation refuses headers above 100 MB; so do we, before allocating.
constexpr uint64_t kMaxHeader = 100'000'000;
}  // namespace

std::string_view dtype_name(DType d) {
  for (const auto& e : kDTypes)
    if (e.d == d) return e.name;
  return "?";
}

size_t dtype_size(DType d) {
  for (const auto& e : kDTypes)
    if (e.d == d) return e.size;
  return 0;
}

std::optional<DType> dtype_from_name(std::string_view name) {
  for (const auto& e : kDTypes)
    if (name == e.name) return e.d;
  return std::nullopt;
}

int64_t TensorInfo::numel() const {
  // open() accepted only shapes whose bytes fit the file, so this cannot overflow there.
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

std::shared_ptr<SafetensorsFile> SafetensorsFile::open(const fs::path& path) {
  const std::string where = path.string();
  std::shared_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->path_ = path;

  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(where + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    throw Error(where + ": cannot stat");
  }
  f->size_ = static_cast<uint64_t>(st.st_size);
  if (f->size_ < 8) {
    ::close(fd);
    throw Error(where + ": truncated: " + std::to_string(f->size_) +
                " bytes, a safetensors file starts with an 8-byte header length");
  }
  void* m = ::mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (m == MAP_FAILED) throw Error(where + ": cannot memory-map: " + std::strerror(errno));
  f->map_ = static_cast<const std::byte*>(m);

  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(f->map_[i]);
  if (n > kMaxHeader)
    throw Error(where + ": header length " + std::to_string(n) + " exceeds the 100 MB limit (not a safetensors file?)");
  if (n > f->size_ - 8)
    throw Error(where + ": header length " + std::to_string(n) + " is beyond the end of the file (" + std::to_string(f->size_) +
                " bytes): truncated or not a safetensors file");
  f->data_start_ = 8 + n;
  const uint64_t data_size = f->size_ - f->data_start_;

  std::string header(reinterpret_cast<const char*>(f->map_ + 8), n);
  Json h = parse_json(header, where + " header");
  if (!h.is_object()) throw Error(where + ": header must be a JSON object");

  for (auto it = h.begin(); it != h.end(); ++it) {
    const std::string& name = it.key();
    const Json& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) throw Error(where + ": __metadata__ must be an object of strings");
      for (auto m2 = v.begin(); m2 != v.end(); ++m2) {
        if (!m2.value().is_string()) throw Error(where + ": __metadata__ '" + m2.key() + "' must be a string");
        f->metadata_[m2.key()] = m2.value().get<std::string>();
      }
      continue;
    }
    const std::string tw = where + ": tensor '" + name + "'";
    if (!v.is_object()) throw Error(tw + ": expected an object with dtype, shape, data_offsets");
    if (!v.contains("dtype") || !v["dtype"].is_string()) throw Error(tw + ": missing string field 'dtype'");
    if (!v.contains("shape") || !v["shape"].is_array()) throw Error(tw + ": missing array field 'shape'");
    if (!v.contains("data_offsets") || !v["data_offsets"].is_array() || v["data_offsets"].size() != 2)
      throw Error(tw + ": 'data_offsets' must be [begin, end]");
    TensorInfo t;
    t.name = name;
    auto dt = dtype_from_name(v["dtype"].get<std::string>());
    if (!dt) throw Error(tw + ": unknown dtype '" + v["dtype"].get<std::string>() + "'");
    t.dtype = *dt;
    for (const Json& s : v["shape"]) {
      if (!s.is_number_unsigned() || s.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
        throw Error(tw + ": shape entries must be non-negative integers below 2^63");
      t.shape.push_back(s.get<int64_t>());
    }
    for (int k = 0; k < 2; ++k)
      if (!v["data_offsets"][k].is_number_unsigned()) throw Error(tw + ": data_offsets must be non-negative integers");
    t.begin = v["data_offsets"][0].get<uint64_t>();
    t.end = v["data_offsets"][1].get<uint64_t>();
    if (t.end < t.begin) throw Error(tw + ": data_offsets end < begin");
    if (t.end > data_size)
      throw Error(tw + ": data_offsets [" + std::to_string(t.begin) + ", " + std::to_string(t.end) +
                  ") out of range: the data section has " + std::to_string(data_size) + " bytes");
    // dtype x shape in bytes, refusing a product that wraps around 2^64 (it could match a small
    // data range and make every later numel() and copy overflow).
    uint64_t expect = dtype_size(t.dtype);
    bool wraps = false;
    for (int64_t s : t.shape) wraps |= __builtin_mul_overflow(expect, static_cast<uint64_t>(s), &expect);
    if (wraps)
      throw Error(tw + ": shape " + shape_string(t.shape) + " of dtype " + std::string(dtype_name(t.dtype)) +
                  " has more bytes than 2^64");
    if (t.nbytes() != expect)
      throw Error(tw + ": " + std::to_string(t.nbytes()) + " bytes but dtype " + std::string(dtype_name(t.dtype)) + " x shape " +
                  shape_string(t.shape) + " needs " + std::to_string(expect));
    f->tensors_.push_back(std::move(t));
  }
  std::sort(f->tensors_.begin(), f->tensors_.end(),
            [](const TensorInfo& a, const TensorInfo& b) { return a.begin < b.begin || (a.begin == b.begin && a.end < b.end); });
  for (size_t i = 1; i < f->tensors_.size(); ++i) {
    const auto& a = f->tensors_[i - 1];
    const auto& b = f->tensors_[i];
    if (b.begin < a.end && b.nbytes() > 0 && a.nbytes() > 0)
      throw Error(where + ": tensors '" + a.name + "' and '" + b.name + "' overlap in the data section");
  }
  for (size_t i = 0; i < f->tensors_.size(); ++i) f->index_[f->tensors_[i].name] = i;
  return f;
}

SafetensorsFile::~SafetensorsFile() {
  if (map_) ::munmap(const_cast<std::byte*>(map_), size_);
}

const TensorInfo* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

const std::byte* SafetensorsFile::data(const TensorInfo& t) const { return map_ + data_start_ + t.begin; }

void write_safetensors(const fs::path& path, const std::vector<TensorBlob>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::vector<const TensorBlob*> order;
  for (const auto& t : tensors) order.push_back(&t);
  std::sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->name < b->name; });

  Json h = Json::object();
  if (!metadata.empty()) h["__metadata__"] = metadata;
  uint64_t off = 0;
  for (const TensorBlob* t : order) {
    uint64_t expect = dtype_size(t->dtype);
    for (int64_t s : t->shape) expect *= static_cast<uint64_t>(s);
    if (expect != t->nbytes)
      throw Error(path.string() + ": tensor '" + t->name + "' has " + std::to_string(t->nbytes) + " bytes, dtype x shape needs " +
                  std::to_string(expect));
    if (h.contains(t->name)) throw Error(path.string() + ": tensor '" + t->name + "' written twice");
    h[t->name] = {{"dtype", dtype_name(t->dtype)}, {"shape", t->shape}, {"data_offsets", {off, off + t->nbytes}}};
    off += t->nbytes;
  }
  std::string header = h.dump();
  while (header.size() % 8 != 0) header.push_back(' ');

  fs::path tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw Error(path.string() + ": cannot open for writing");
    uint64_t n = header.size();
    char len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<char>((n >> (8 * i)) & 0xff);
    out.write(len, 8);
    out.write(header.data(), static_cast<std::streamsize>(header.size()));
    for (const TensorBlob* t : order) out.write(static_cast<const char*>(t->data), static_cast<std::streamsize>(t->nbytes));
    out.flush();
    if (!out) {
      std::error_code ec;
      fs::remove(tmp, ec);
      throw Error(path.string() + ": write failed (disk full?)");
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) throw Error(path.string() + ": cannot replace: " + ec.message());
}

}  // namespace lethe::io
