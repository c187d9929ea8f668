#include "io/torch_pickle.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <caffe2/serialize/inline_container.h>

#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <unordered_map>

#include "util/error.h"

namespace lethe::io {
namespace {

// Values live in the unpickler's arena and point at each other with plain pointers: a pickle can
// build cycles (a list memoized and appended to itself) and chains as deep as the file is long,
// which shared_ptr would leak or free by a recursion that overflows the stack.
struct Value {
  enum Kind { None, Bool, Int, Float, Str, Tuple, List, Dict, GlobalRef, TensorV, MarkV } kind = None;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;                                   // Str; GlobalRef: "module.qualname"
  std::vector<Value*> items;                       // tuple, list
  std::vector<std::pair<Value*, Value*>> entries;  // dict
  at::Tensor tensor;
};
using V = Value*;

const char* kind_name(Value::Kind k) {
  static const char* names[] = {"None", "bool", "int", "float", "str", "tuple", "list", "dict", "global", "tensor", "mark"};
  return names[k];
}

// The storage classes torch.save names, by the dtype of their elements.
const std::map<std::string, at::ScalarType>& storage_types() {
  static const std::map<std::string, at::ScalarType> m = {
      {"torch.FloatStorage", at::kFloat},       {"torch.DoubleStorage", at::kDouble}, {"torch.HalfStorage", at::kHalf},
      {"torch.BFloat16Storage", at::kBFloat16}, {"torch.LongStorage", at::kLong},     {"torch.IntStorage", at::kInt},
      {"torch.ShortStorage", at::kShort},       {"torch.CharStorage", at::kChar},     {"torch.ByteStorage", at::kByte},
      {"torch.BoolStorage", at::kBool}};
  return m;
}

// Every global a state dict of tensors names; the unpickler refuses all others when it reads them.
bool allowed_global(const std::string& name) {
  static const std::set<std::string> callables = {
      "collections.OrderedDict",         "builtins.dict",
      "torch._utils._rebuild_tensor",    "torch._utils._rebuild_tensor_v2",
      "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state"};
  return callables.count(name) || storage_types().count(name);
}

class Unpickler {
 public:
  Unpickler(const std::string& where, const uint8_t* data, size_t size, caffe2::serialize::PyTorchStreamReader& reader)
      : where_(where), p_(data), end_(data + size), reader_(reader) {}

  V load() {
    while (true) {
      const uint8_t op = u8();
      if (op == '.') return pop();  // STOP
      step(op);
    }
  }

 private:
  void step(uint8_t op) {
    switch (op) {
      case 0x80:  // PROTO
        u8();
        break;
      case 0x95:  // FRAME
        take(8);
        break;
      case '}':  // EMPTY_DICT
        push(make(Value::Dict));
        break;
      case ']':  // EMPTY_LIST
        push(make(Value::List));
        break;
      case ')':  // EMPTY_TUPLE
        push(make(Value::Tuple));
        break;
      case 'N':
        push(make(Value::None));
        break;
      case 0x88:  // NEWTRUE
        push(boolean(true));
        break;
      case 0x89:  // NEWFALSE
        push(boolean(false));
        break;
      case '(':  // MARK
        push(make(Value::MarkV));
        break;
      case 'q':  // BINPUT
        memo_[u8()] = top();
        break;
      case 'r':  // LONG_BINPUT
        memo_[u32()] = top();
        break;
      case 0x94:  // MEMOIZE
        memo_[memo_.size()] = top();
        break;
      case 'h':  // BINGET
        push(get_memo(u8()));
        break;
      case 'j':  // LONG_BINGET
        push(get_memo(u32()));
        break;
      case 'K':  // BININT1
        push(integer(u8()));
        break;
      case 'M':  // BININT2
        push(integer(u16()));
        break;
      case 'J':  // BININT
        push(integer(static_cast<int32_t>(u32())));
        break;
      case 0x8a:  // LONG1
        push(integer(long1()));
        break;
      case 'G':  // BINFLOAT
        push(binfloat());
        break;
      case 'X':  // BINUNICODE
      case 'T':  // BINSTRING
        push(str(u32()));
        break;
      case 0x8c:  // SHORT_BINUNICODE
      case 'U':   // SHORT_BINSTRING
        push(str(u8()));
        break;
      case 'c': {  // GLOBAL
        std::string mod = line();
        std::string name = line();
        push(global(mod + "." + name));
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        V name = pop_kind(Value::Str, "STACK_GLOBAL name");
        V mod = pop_kind(Value::Str, "STACK_GLOBAL module");
        push(global(mod->s + "." + name->s));
        break;
      }
      case 't': {  // TUPLE
        V v = make(Value::Tuple);
        v->items = pop_to_mark();
        push(v);
        break;
      }
      case 0x85:
      case 0x86:
      case 0x87: {  // TUPLE1..3
        V v = make(Value::Tuple);
        const int n = op - 0x84;
        v->items.resize(n);
        for (int k = n - 1; k >= 0; --k) v->items[k] = pop();
        push(v);
        break;
      }
      case 'a': {  // APPEND
        V x = pop();
        top_kind(Value::List, "APPEND")->items.push_back(x);
        break;
      }
      case 'e': {  // APPENDS
        auto xs = pop_to_mark();
        V list = top_kind(Value::List, "APPENDS");
        list->items.insert(list->items.end(), xs.begin(), xs.end());
        break;
      }
      case 's': {  // SETITEM
        V val = pop();
        V key = pop();
        top_kind(Value::Dict, "SETITEM")->entries.emplace_back(key, val);
        break;
      }
      case 'u': {  // SETITEMS
        auto xs = pop_to_mark();
        if (xs.size() % 2 != 0) throw malformed("SETITEMS with an odd number of items");
        V dict = top_kind(Value::Dict, "SETITEMS");
        for (size_t k = 0; k < xs.size(); k += 2) dict->entries.emplace_back(xs[k], xs[k + 1]);
        break;
      }
      case 'Q':  // BINPERSID
        push(persistent(pop()));
        break;
      case 'R':     // REDUCE
      case 0x81: {  // NEWOBJ
        V args = pop();
        V fn = pop();
        push(reduce(fn, args));
        break;
      }
      case 'b':  // BUILD: the state of an OrderedDict (its _metadata), not needed
        pop();
        top();
        break;
      default:
        throw Error(where_ + ": unsupported pickle opcode 0x" + hex(op) + " in data.pkl");
    }
  }

  static std::string hex(uint8_t b) {
    const char* d = "0123456789abcdef";
    return {d[b >> 4], d[b & 15]};
  }
  Error malformed(const std::string& what) const { return Error(where_ + ": malformed data.pkl (" + what + ")"); }

  V make(Value::Kind k) {
    arena_.push_back(std::make_unique<Value>());
    arena_.back()->kind = k;
    return arena_.back().get();
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
  // A little-endian two's-complement integer of up to 8 bytes (longer ones are no tensor size).
  int64_t long1() {
    const uint8_t n = u8();
    if (n > 8) throw malformed("LONG1 of " + std::to_string(n) + " bytes");
    const uint8_t* b = take(n);
    uint64_t x = 0;
    for (int k = n - 1; k >= 0; --k) x = (x << 8) | b[k];
    if (n > 0 && n < 8 && (b[n - 1] & 0x80)) x |= ~uint64_t{0} << (8 * n);  // sign-extend
    return static_cast<int64_t>(x);
  }
  V binfloat() {  // big-endian IEEE double
    const uint8_t* b = take(8);
    uint64_t bits = 0;
    for (int k = 0; k < 8; ++k) bits = (bits << 8) | b[k];
    V v = make(Value::Float);
    std::memcpy(&v->f, &bits, 8);
    return v;
  }
  std::string line() {
    std::string s;
    while (true) {
      const char c = static_cast<char>(u8());
      if (c == '\n') return s;
      s.push_back(c);
    }
  }
  V str(size_t n) {
    V v = make(Value::Str);
    const uint8_t* b = take(n);
    v->s.assign(reinterpret_cast<const char*>(b), n);
    return v;
  }
  V integer(int64_t x) {
    V v = make(Value::Int);
    v->i = x;
    return v;
  }
  V boolean(bool x) {
    V v = make(Value::Bool);
    v->b = x;
    return v;
  }
  // A global is refused where the pickle names it, before anything could call it.
  V global(const std::string& name) {
    if (!allowed_global(name))
      throw Error(where_ + ": data.pkl names the global '" + name +
                  "', which a state dict of tensors does not use; refused (Lethe never runs code from a pickle)");
    V v = make(Value::GlobalRef);
    v->s = name;
    return v;
  }
  void push(V v) { stack_.push_back(v); }
  V pop() {
    if (stack_.empty()) throw malformed("stack underflow");
    V v = stack_.back();
    stack_.pop_back();
    return v;
  }
  V top() {
    if (stack_.empty()) throw malformed("empty stack");
    return stack_.back();
  }
  V pop_kind(Value::Kind k, const char* what) {
    V v = pop();
    if (v->kind != k) throw malformed(std::string(what) + " is a " + kind_name(v->kind) + ", expected a " + kind_name(k));
    return v;
  }
  V top_kind(Value::Kind k, const char* what) {
    V v = top();
    if (v->kind != k) throw malformed(std::string(what) + " on a " + kind_name(v->kind) + ", expected a " + kind_name(k));
    return v;
  }
  V get_memo(size_t k) {
    auto it = memo_.find(k);
    if (it == memo_.end()) throw malformed("memo " + std::to_string(k));
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
  const Value& item(const V& tup, size_t k, Value::Kind kind, const char* what) const {
    if (tup->kind != Value::Tuple || tup->items.size() <= k || tup->items[k]->kind != kind)
      throw malformed(std::string(what) + ": expected a " + kind_name(kind) + " at position " + std::to_string(k));
    return *tup->items[k];
  }

  // ('storage', StorageType, key, location, numel) -> a flat CPU tensor with the record's bytes.
  V persistent(const V& pid) {
    if (pid->kind != Value::Tuple || pid->items.size() < 5 || pid->items[0]->kind != Value::Str || pid->items[0]->s != "storage")
      throw Error(where_ + ": unsupported persistent id in data.pkl");
    const std::string& key = item(pid, 2, Value::Str, "storage key").s;
    auto cached = storages_.find(key);
    if (cached != storages_.end()) return cached->second;
    const std::string& type = item(pid, 1, Value::GlobalRef, "storage type").s;
    auto dt = storage_types().find(type);
    if (dt == storage_types().end()) throw Error(where_ + ": unsupported storage type " + type);
    const int64_t numel = item(pid, 4, Value::Int, "storage size").i;
    if (numel < 0) throw malformed("storage '" + key + "' of " + std::to_string(numel) + " elements");
    const std::string record = "data/" + key;
    if (!reader_.hasRecord(record)) throw Error(where_ + ": missing record " + record);
    auto [ptr, size] = reader_.getRecord(record);
    // The record's size is checked before the tensor is allocated: numel comes from the pickle.
    const size_t elem = c10::elementSize(dt->second);
    if (size % elem != 0 || size / elem != static_cast<uint64_t>(numel))
      throw Error(where_ + ": record " + record + " has " + std::to_string(size) + " bytes, expected " + std::to_string(numel) +
                  " elements of " + std::to_string(elem) + " bytes");
    at::Tensor t = at::empty({numel}, at::TensorOptions().dtype(dt->second));
    if (size > 0) std::memcpy(t.data_ptr(), ptr.get(), size);
    V v = make(Value::TensorV);
    v->tensor = t;
    storages_[key] = v;
    return v;
  }

  std::vector<int64_t> ints(const Value& tup, const char* what) const {
    if (tup.kind != Value::Tuple) throw malformed(std::string(what) + " is a " + kind_name(tup.kind) + ", expected a tuple");
    std::vector<int64_t> r;
    for (const V x : tup.items) {
      if (x->kind != Value::Int || x->i < 0) throw malformed(std::string(what) + " must hold non-negative integers");
      r.push_back(x->i);
    }
    return r;
  }

  // _rebuild_tensor_v2(storage, offset, size, stride, ...): a view that must lie inside the storage.
  V rebuild_tensor(const V& args) {
    const Value& storage = item(args, 0, Value::TensorV, "tensor storage");
    const int64_t offset = item(args, 1, Value::Int, "tensor offset").i;
    const auto sizes = ints(item(args, 2, Value::Tuple, "tensor size"), "tensor size");
    const auto strides = ints(item(args, 3, Value::Tuple, "tensor stride"), "tensor stride");
    if (sizes.size() != strides.size()) throw malformed("tensor size and stride differ in length");
    if (offset < 0) throw malformed("negative tensor offset");
    // The last element's index, in 128 bits so that no product wraps around.
    __int128 last = offset;
    bool empty = false;
    for (size_t d = 0; d < sizes.size(); ++d) {
      if (sizes[d] == 0) empty = true;
      if (sizes[d] > 0) last += static_cast<__int128>(sizes[d] - 1) * strides[d];
    }
    const int64_t numel = storage.tensor.numel();
    if (!empty && last >= numel)
      throw Error(where_ + ": a tensor of size " + c10::str(at::IntArrayRef(sizes)) + " reaches past its storage of " +
                  std::to_string(numel) + " elements");
    if (empty && offset > numel) throw malformed("tensor offset past its storage");
    V v = make(Value::TensorV);
    v->tensor = storage.tensor.as_strided(sizes, strides, offset);
    return v;
  }

  V reduce(const V& fn, const V& args) {
    if (fn->kind != Value::GlobalRef) throw malformed("a call of a " + std::string(kind_name(fn->kind)));
    if (args->kind != Value::Tuple) throw malformed("call arguments are a " + std::string(kind_name(args->kind)));
    const std::string& f = fn->s;
    if (f == "collections.OrderedDict" || f == "builtins.dict") return make(Value::Dict);
    if (f == "torch._utils._rebuild_tensor_v2" || f == "torch._utils._rebuild_tensor") return rebuild_tensor(args);
    if (f == "torch._utils._rebuild_parameter" || f == "torch._utils._rebuild_parameter_with_state") {
      item(args, 0, Value::TensorV, "parameter");
      return args->items[0];
    }
    throw Error(where_ + ": data.pkl calls " + f + ", which a plain state dict does not (Lethe reads state dicts of tensors)");
  }

  std::string where_;
  const uint8_t* p_;
  const uint8_t* end_;
  caffe2::serialize::PyTorchStreamReader& reader_;
  std::vector<std::unique_ptr<Value>> arena_;
  std::vector<V> stack_;
  std::map<size_t, V> memo_;
  std::map<std::string, V> storages_;
};

// The root dict's entries in order; a key given twice keeps its first place and its last value,
// as a Python dict does.
std::vector<std::pair<std::string, at::Tensor>> state_dict_entries(const Value& root, const std::string& where) {
  if (root.kind != Value::Dict) throw Error(where + ": data.pkl holds no dict of tensors");
  std::vector<std::pair<std::string, at::Tensor>> out;
  std::unordered_map<std::string, size_t> index;
  for (const auto& [k, v] : root.entries) {
    if (k->kind != Value::Str) throw Error(where + ": state dict key is not a string");
    if (v->kind != Value::TensorV) throw Error(where + ": entry '" + k->s + "' is not a tensor");
    auto [it, added] = index.emplace(k->s, out.size());
    if (added) out.emplace_back(k->s, v->tensor);
    else out[it->second].second = v->tensor;
  }
  return out;
}

std::vector<std::pair<std::string, at::Tensor>> read_archive(caffe2::serialize::PyTorchStreamReader& reader,
                                                             const std::string& where) {
  if (!reader.hasRecord("data.pkl")) throw Error(where + ": no data.pkl in the archive (not a torch.save file)");
  auto [pkl, size] = reader.getRecord("data.pkl");
  Unpickler u(where, static_cast<const uint8_t*>(pkl.get()), size, reader);
  return state_dict_entries(*u.load(), where);
}

// libtorch's zip reader reports problems as c10::Error; they are the file's problems.
template <typename F>
auto zip_errors_named(const std::string& where, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const c10::Error& e) {
    throw Error(where + ": cannot read the archive: " + std::string(e.what_without_backtrace()).substr(0, 200));
  }
}

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
  return zip_errors_named(where, [&] {
    caffe2::serialize::PyTorchStreamReader reader(where);
    return read_archive(reader, where);
  });
}

std::vector<std::pair<std::string, at::Tensor>> read_torch_state_dict_from_bytes(const std::string& bytes,
                                                                                 const std::string& where) {
  if (bytes.size() < 2 || bytes[0] != 'P' || bytes[1] != 'K') throw Error(where + ": not a zip archive");
  return zip_errors_named(where, [&] {
    std::istringstream in(bytes);
    caffe2::serialize::PyTorchStreamReader reader(&in);
    return read_archive(reader, where);
  });
}

}  // namespace lethe::io
