#include "io/torch_pickle.h"

#include <ATen/ATen.h>
#include <caffe2/serialize/inline_container.h>

#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <variant>

#include "util/error.h"

namespace lethe::io {
namespace {

struct Value;
using V = std::shared_ptr<Value>;
struct Global {
  std::string name;  // "module.qualname"
};
struct Mark {};
struct Value {
  enum Kind { None, Bool, Int, Float, Str, Tuple, List, Dict, GlobalRef, TensorV, MarkV } kind = None;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;
  std::vector<V> items;                  // tuple, list
  std::vector<std::pair<V, V>> entries;  // dict
  at::Tensor tensor;
};
V make(Value::Kind k) {
  auto v = std::make_shared<Value>();
  v->kind = k;
  return v;
}

class Unpickler {
 public:
  Unpickler(const std::string& where, const uint8_t* data, size_t size, caffe2::serialize::PyTorchStreamReader& reader)
      : where_(where), p_(data), end_(data + size), reader_(reader) {}

  V load() {
    while (true) {
      uint8_t op = u8();
      switch (op) {
        case 0x80:
          u8();
          break;  // PROTO
        case 0x95:
          take(8);
          break;  // FRAME
        case '}':
          push(make(Value::Dict));
          break;  // EMPTY_DICT
        case ']':
          push(make(Value::List));
          break;  // EMPTY_LIST
        case ')':
          push(make(Value::Tuple));
          break;  // EMPTY_TUPLE
        case 'N':
          push(make(Value::None));
          break;
        case 0x88:
          push(boolean(true));
          break;  // NEWTRUE
        case 0x89:
          push(boolean(false));
          break;  // NEWFALSE
        case '(':
          push(make(Value::MarkV));
          break;  // MARK
        case 'q':
          memo_[u8()] = top();
          break;  // BINPUT
        case 'r':
          memo_[u32()] = top();
          break;  // LONG_BINPUT
        case 0x94:
          memo_[memo_.size()] = top();
          break;  // MEMOIZE
        case 'h':
          push(get_memo(u8()));
          break;  // BINGET
        case 'j':
          push(get_memo(u32()));
          break;  // LONG_BINGET
        case 'K':
          push(integer(u8()));
          break;  // BININT1
        case 'M':
          push(integer(u16()));
          break;  // BININT2
        case 'J':
          push(integer(static_cast<int32_t>(u32())));
          break;      // BININT
        case 0x8a: {  // LONG1
          uint8_t n = u8();
          const uint8_t* b = take(n);
          int64_t x = 0;
          for (int k = n - 1; k >= 0; --k) x = (x << 8) | b[k];
          if (n > 0 && n < 8 && (b[n - 1] & 0x80)) x -= (int64_t{1} << (8 * n));
          push(integer(x));
          break;
        }
        case 'G': {  // BINFLOAT (big-endian)
          const uint8_t* b = take(8);
          uint64_t bits = 0;
          for (int k = 0; k < 8; ++k) bits = (bits << 8) | b[k];
          auto v = make(Value::Float);
          std::memcpy(&v->f, &bits, 8);
          push(v);
          break;
        }
        case 'X':
          push(str(u32()));
          break;  // BINUNICODE
        case 0x8c:
          push(str(u8()));
          break;  // SHORT_BINUNICODE
        case 'T':
          push(str(u32()));
          break;  // BINSTRING
        case 'U':
          push(str(u8()));
          break;     // SHORT_BINSTRING
        case 'c': {  // GLOBAL
          std::string mod = line(), name = line();
          auto v = make(Value::GlobalRef);
          v->s = mod + "." + name;
          push(v);
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          V name = pop(), mod = pop();
          auto v = make(Value::GlobalRef);
          v->s = mod->s + "." + name->s;
          push(v);
          break;
        }
        case 't': {  // TUPLE
          auto v = make(Value::Tuple);
          v->items = pop_to_mark();
          push(v);
          break;
        }
        case 0x85:
        case 0x86:
        case 0x87: {  // TUPLE1..3
          auto v = make(Value::Tuple);
          int n = op - 0x84;
          v->items.resize(n);
          for (int k = n - 1; k >= 0; --k) v->items[k] = pop();
          push(v);
          break;
        }
        case 'a': {  // APPEND
          V x = pop();
          top()->items.push_back(x);
          break;
        }
        case 'e': {  // APPENDS
          auto xs = pop_to_mark();
          for (auto& x : xs) top()->items.push_back(x);
          break;
        }
        case 's': {  // SETITEM
          V val = pop(), key = pop();
          top()->entries.emplace_back(key, val);
          break;
        }
        case 'u': {  // SETITEMS
          auto xs = pop_to_mark();
          for (size_t k = 0; k + 1 < xs.size(); k += 2) top()->entries.emplace_back(xs[k], xs[k + 1]);
          break;
        }
        case 'Q':
          push(persistent(pop()));
          break;     // BINPERSID
        case 'R': {  // REDUCE
          V args = pop(), fn = pop();
          push(reduce(fn, args));
          break;
        }
        case 0x81: {  // NEWOBJ
          V args = pop(), cls = pop();
          push(reduce(cls, args));
          break;
        }
        case 'b':
          pop();
          break;  // BUILD: state of an OrderedDict/_metadata, ignored
        case '.':
          return pop();  // STOP
        default:
          throw Error(where_ + ": unsupported pickle opcode 0x" + hex(op) + " in data.pkl");
      }
    }
  }

 private:
  static std::string hex(uint8_t b) {
    const char* d = "0123456789abcdef";
    return {d[b >> 4], d[b & 15]};
  }
  const uint8_t* take(size_t n) {
    if (static_cast<size_t>(end_ - p_) < n) throw Error(where_ + ": data.pkl ends early (truncated file?)");
    const uint8_t* r = p_;
    p_ += n;
    return r;
  }
  uint8_t u8() { return *take(1); }
  uint16_t u16() {
    const uint8_t* b = take(2);
    return static_cast<uint16_t>(b[0] | (b[1] << 8));
  }
  uint32_t u32() {
    const uint8_t* b = take(4);
    return b[0] | (b[1] << 8) | (b[2] << 16) | (static_cast<uint32_t>(b[3]) << 24);
  }
  std::string line() {
    std::string s;
    while (true) {
      char c = static_cast<char>(u8());
      if (c == '\n') return s;
      s.push_back(c);
    }
  }
  V str(size_t n) {
    auto v = make(Value::Str);
    const uint8_t* b = take(n);
    v->s.assign(reinterpret_cast<const char*>(b), n);
    return v;
  }
  V integer(int64_t x) {
    auto v = make(Value::Int);
    v->i = x;
    return v;
  }
  V boolean(bool x) {
    auto v = make(Value::Bool);
    v->b = x;
    return v;
  }
  void push(V v) { stack_.push_back(std::move(v)); }
  V pop() {
    if (stack_.empty()) throw Error(where_ + ": malformed data.pkl (stack underflow)");
    V v = stack_.back();
    stack_.pop_back();
    return v;
  }
  V top() {
    if (stack_.empty()) throw Error(where_ + ": malformed data.pkl (empty stack)");
    return stack_.back();
  }
  V get_memo(size_t k) {
    auto it = memo_.find(k);
    if (it == memo_.end()) throw Error(where_ + ": malformed data.pkl (memo " + std::to_string(k) + ")");
    return it->second;
  }
  std::vector<V> pop_to_mark() {
    std::vector<V> xs;
    while (true) {
      V v = pop();
      if (v->kind == Value::MarkV) break;
      xs.push_back(v);
    }
    return {xs.rbegin(), xs.rend()};
  }

  static at::ScalarType storage_dtype(const std::string& name, const std::string& where) {
    static const std::map<std::string, at::ScalarType> m = {
        {"torch.FloatStorage", at::kFloat},       {"torch.DoubleStorage", at::kDouble}, {"torch.HalfStorage", at::kHalf},
        {"torch.BFloat16Storage", at::kBFloat16}, {"torch.LongStorage", at::kLong},     {"torch.IntStorage", at::kInt},
        {"torch.ShortStorage", at::kShort},       {"torch.CharStorage", at::kChar},     {"torch.ByteStorage", at::kByte},
        {"torch.BoolStorage", at::kBool}};
    auto it = m.find(name);
    if (it == m.end()) throw Error(where + ": unsupported storage type " + name);
    return it->second;
  }

  // ('storage', StorageType, key, location, numel) -> a flat CPU tensor with the record's bytes.
  V persistent(const V& pid) {
    if (pid->kind != Value::Tuple || pid->items.size() < 5 || pid->items[0]->s != "storage")
      throw Error(where_ + ": unsupported persistent id in data.pkl");
    const std::string key = pid->items[2]->s;
    auto cached = storages_.find(key);
    if (cached != storages_.end()) return cached->second;
    const at::ScalarType dt = storage_dtype(pid->items[1]->s, where_);
    const int64_t numel = pid->items[4]->i;
    const std::string record = "data/" + key;
    if (!reader_.hasRecord(record)) throw Error(where_ + ": missing record " + record);
    auto [ptr, size] = reader_.getRecord(record);
    at::Tensor t = at::empty({numel}, at::TensorOptions().dtype(dt));
    if (size != static_cast<size_t>(t.nbytes()))
      throw Error(where_ + ": record " + record + " has " + std::to_string(size) + " bytes, expected " +
                  std::to_string(t.nbytes()));
    std::memcpy(t.data_ptr(), ptr.get(), size);
    auto v = make(Value::TensorV);
    v->tensor = t;
    storages_[key] = v;
    return v;
  }

  static std::vector<int64_t> ints(const V& tup) {
    std::vector<int64_t> r;
    for (const auto& x : tup->items) r.push_back(x->i);
    return r;
  }

  V reduce(const V& fn, const V& args) {
    const std::string& f = fn->s;
    if (f == "collections.OrderedDict" || f == "builtins.dict") return make(Value::Dict);
    if (f == "torch._utils._rebuild_tensor_v2" || f == "torch._utils._rebuild_tensor") {
      const auto& a = args->items;
      if (a.size() < 4 || a[0]->kind != Value::TensorV) throw Error(where_ + ": malformed tensor in data.pkl");
      auto v = make(Value::TensorV);
      v->tensor = a[0]->tensor.as_strided(ints(a[2]), ints(a[3]), a[1]->i);
      return v;
    }
    if (f == "torch._utils._rebuild_parameter" || f == "torch._utils._rebuild_parameter_with_state") {
      return args->items.at(0);
    }
    throw Error(where_ + ": data.pkl uses " + f + ", which a plain state dict does not (Lethe reads state dicts of tensors)");
  }

  std::string where_;
  const uint8_t* p_;
  const uint8_t* end_;
  caffe2::serialize::PyTorchStreamReader& reader_;
  std::vector<V> stack_;
  std::map<size_t, V> memo_;
  std::map<std::string, V> storages_;
};

}  // namespace

std::vector<std::pair<std::string, at::Tensor>> read_torch_state_dict(const std::filesystem::path& path) {
  const std::string where = path.string();
  {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(where + ": cannot open");
    char magic[2] = {0, 0};
    in.read(magic, 2);
    if (magic[0] != 'P' || magic[1] != 'K')
      throw Error(where + ": not a zip archive: this is PyTorch's legacy (pre-1.6) format, which Lethe cannot read; "
                          "re-save it with torch.save() from PyTorch >= 1.6, or convert it to safetensors");
  }
  std::unique_ptr<caffe2::serialize::PyTorchStreamReader> reader;
  try {
    reader = std::make_unique<caffe2::serialize::PyTorchStreamReader>(where);
  } catch (const std::exception& e) {
    throw Error(where + ": unreadable zip archive: " + std::string(e.what()).substr(0, 200));
  }
  if (!reader->hasRecord("data.pkl")) throw Error(where + ": no data.pkl in the archive (not a torch.save file)");
  auto [pkl, size] = reader->getRecord("data.pkl");
  Unpickler u(where, static_cast<const uint8_t*>(pkl.get()), size, *reader);
  V root = u.load();
  if (root->kind != Value::Dict) throw Error(where + ": data.pkl holds no dict of tensors");
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& [k, v] : root->entries) {
    if (k->kind != Value::Str) throw Error(where + ": state dict key is not a string");
    if (v->kind != Value::TensorV) throw Error(where + ": entry '" + k->s + "' is not a tensor");
    out.emplace_back(k->s, v->tensor);
  }
  return out;
}

}  // namespace lethe::io
