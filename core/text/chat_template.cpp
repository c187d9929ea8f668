// A renderer for the Jinja2 subset of chat templates, matching transformers' apply_chat_template
// (jinja2 3.1 ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols) byte for
// byte. tests/reference/chat_template_reference.py renders the fixtures with transformers itself.
//
// Supported:
//   syntax     {{ }}, {% %}, {# #}, whitespace control - and + on both sides, {% raw %},
//              jinja's newline normalisation and removal of one trailing newline
//   tags       if/elif/else, for (tuple targets, `if` filter evaluated lazily, else, loop.index
//              index0 revindex revindex0 first last length previtem nextitem depth depth0
//              cycle), break, continue, set (names, tuples, ns.attr, {% set x %}...{% endset %}
//              with filters), macro (positional/keyword arguments, defaults), print, generation
//   literals   strings (Python escapes), integers (0x/0o/0b, _), floats, true/false/none in
//              both cases, lists, tuples, dicts
//   operators  attribute, subscript and slicing, calls, `~ + - * / // % **`, unary - +,
//              comparisons (chained), and or not, in / not in, `a if c else b`
//   tests      defined undefined none string mapping iterable sequence number integer float
//              boolean true false callable odd even divisibleby lower upper in sameas(none,
//              true, false) eq/equalto/== ne/!= lt/lessthan/< le/<= gt/greaterthan/> ge/>=
//   filters    trim length/count upper lower capitalize title tojson (transformers' version)
//              join default/d first last list replace items string int float abs reverse
//              indent map select reject selectattr rejectattr
//   methods    str: strip lstrip rstrip startswith endswith split rsplit title upper lower
//              capitalize replace join; dict: items keys values get
//   globals    range namespace dict raise_exception strftime_now; variables passed in
// and jinja's semantics around them: Python's str()/repr() of values, Undefined, the sandbox's
// attribute and item lookup, frame scoping (idtracking: a variable assigned anywhere in a frame
// is that frame's from its start), and the compile-time constant folding whose results differ
// from run time (slices of constants, negative constants under **, inf/nan literals).
// Refused with an error (when reached): every other filter, test, tag, method and global
// (format, sort, safe, include, with, call, ...), *args/**kwargs in calls, macros that use
// varargs, kwargs or caller, loop.changed, recursive loops, printing objects Python prints with
// a memory address (functions, generators, namespaces), str % formatting, integers beyond 64
// bits, \N{...} escapes and non-ASCII identifiers.
#include "text/chat_template.h"

#include <unicode/ucasemap.h>
#include <unicode/uchar.h>
#include <unicode/utypes.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <functional>
#include <limits>
#include <set>
#include <unordered_set>

#include "io/json.h"
#include "text/unicode.h"

namespace lethe::text {
namespace detail {
namespace {

constexpr size_t npos = std::string::npos;

// ============================================================================ failures

// A Python/Jinja exception raised while rendering. `offset` is where in the (normalised) source
// it happened; the innermost expression or statement that catches it without one fills it in.
struct Failure {
  std::string message;
  size_t offset = npos;
  bool raised = false;  // raise_exception(): message is the template's own
};

struct SyntaxFailure {
  std::string message;
  size_t offset;
};

[[noreturn]] void fail(std::string message) { throw Failure{std::move(message)}; }

[[noreturn]] void unsupported(const std::string& what) {
  fail("unsupported: " + what + " is outside the Jinja subset Lethe renders");
}

// ============================================================================ Unicode

bool decode_utf8(const std::string& s, std::u32string& out) {
  out.clear();
  out.reserve(s.size());
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size(), i = 0;
  while (i < n) {
    unsigned c = p[i];
    if (c < 0x80) {
      out.push_back(c);
      ++i;
      continue;
    }
    int len;
    char32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (int k = 1; k < len; ++k) {
      unsigned cc = p[i + k];
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    out.push_back(cp);
    i += len;
  }
  return true;
}

bool valid_utf8(const std::string& s) {
  std::u32string tmp;
  return decode_utf8(s, tmp);
}

std::u32string u32(const std::string& s) {
  std::u32string out;
  if (!decode_utf8(s, out)) fail("a string is not valid UTF-8");
  return out;
}

void append_utf8(std::string& out, char32_t c) { uni::append(out, static_cast<uint32_t>(c)); }

std::string utf8(const std::u32string& s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) append_utf8(out, c);
  return out;
}

std::string utf8(char32_t c) {
  std::string out;
  append_utf8(out, c);
  return out;
}

// Python's str.isspace() (Py_UNICODE_ISSPACE), which is also what `\s` of `re`, str.strip()
// and str.split() use.
bool py_isspace(char32_t c) {
  if (c < 0x80) return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20);
  switch (c) {
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
      return true;
    default:
      return c >= 0x2000 && c <= 0x200A;
  }
}

// Python's str.isprintable() for one character (repr() escapes the others).
bool py_isprintable(char32_t c) {
  if (c == ' ') return true;
  switch (u_charType(static_cast<UChar32>(c))) {
    case U_CONTROL_CHAR:
    case U_FORMAT_CHAR:
    case U_SURROGATE:
    case U_PRIVATE_USE_CHAR:
    case U_UNASSIGNED:
    case U_LINE_SEPARATOR:
    case U_PARAGRAPH_SEPARATOR:
    case U_SPACE_SEPARATOR:
      return false;
    default:
      return true;
  }
}

bool is_cased(char32_t c) { return u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_CASED); }
bool is_case_ignorable(char32_t c) { return u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_CASE_IGNORABLE); }

// ICU full case mappings with the root locale: Python's str.upper()/lower() (SpecialCasing's
// unconditional mappings, final sigma) and a single character's full titlecase mapping.
enum class CaseOp { Upper, Lower, Title };

std::string icu_case(const std::string& s, CaseOp op) {
  if (s.empty()) return s;
  UErrorCode err = U_ZERO_ERROR;
  // one case map per thread and kind (opening one per character is slow)
  struct Maps {
    UCaseMap* plain = nullptr;
    UCaseMap* title = nullptr;
    ~Maps() {
      if (plain) ucasemap_close(plain);
      if (title) ucasemap_close(title);
    }
  };
  thread_local Maps maps;
  UCaseMap*& slot = op == CaseOp::Title ? maps.title : maps.plain;
  if (!slot) {
    uint32_t options =
        op == CaseOp::Title ? (U_TITLECASE_WHOLE_STRING | U_TITLECASE_NO_BREAK_ADJUSTMENT | U_TITLECASE_NO_LOWERCASE) : 0;
    slot = ucasemap_open("", options, &err);
    if (U_FAILURE(err)) {
      slot = nullptr;
      fail(std::string("ICU case mapping failed: ") + u_errorName(err));
    }
  }
  UCaseMap* map = slot;
  std::string out(s.size() * 3 + 16, '\0');
  auto run = [&](std::string& dest) -> int32_t {
    err = U_ZERO_ERROR;
    switch (op) {
      case CaseOp::Upper:
        return ucasemap_utf8ToUpper(map, dest.data(), static_cast<int32_t>(dest.size()), s.data(), static_cast<int32_t>(s.size()),
                                    &err);
      case CaseOp::Lower:
        return ucasemap_utf8ToLower(map, dest.data(), static_cast<int32_t>(dest.size()), s.data(), static_cast<int32_t>(s.size()),
                                    &err);
      case CaseOp::Title:
        return ucasemap_utf8ToTitle(map, dest.data(), static_cast<int32_t>(dest.size()), s.data(), static_cast<int32_t>(s.size()),
                                    &err);
    }
    return 0;
  };
  int32_t len = run(out);
  if (err == U_BUFFER_OVERFLOW_ERROR) {
    out.assign(static_cast<size_t>(len) + 1, '\0');
    len = run(out);
  }
  if (U_FAILURE(err)) fail(std::string("ICU case mapping failed: ") + u_errorName(err));
  out.resize(static_cast<size_t>(len));
  return out;
}

std::string py_upper(const std::string& s) { return icu_case(s, CaseOp::Upper); }
std::string py_lower(const std::string& s) { return icu_case(s, CaseOp::Lower); }

// Python's lower_ucs4 for s[i]: the full lowercase mapping, with final sigma decided from the
// whole string (used by str.title() and str.capitalize()).
std::string lower_at(const std::u32string& s, size_t i) {
  char32_t c = s[i];
  if (c == 0x3A3) {
    size_t j = i;
    bool before = false;
    while (j > 0) {
      --j;
      if (is_case_ignorable(s[j])) continue;
      before = is_cased(s[j]);
      break;
    }
    bool after = false;
    for (size_t k = i + 1; k < s.size(); ++k) {
      if (is_case_ignorable(s[k])) continue;
      after = is_cased(s[k]);
      break;
    }
    return utf8(before && !after ? char32_t(0x3C2) : char32_t(0x3C3));
  }
  return py_lower(utf8(c));
}

std::string title_char(char32_t c) { return icu_case(utf8(c), CaseOp::Title); }

std::string py_title(const std::string& str) {
  std::u32string s = u32(str);
  std::string out;
  bool previous_is_cased = false;
  for (size_t i = 0; i < s.size(); ++i) {
    out += previous_is_cased ? lower_at(s, i) : title_char(s[i]);
    previous_is_cased = is_cased(s[i]);
  }
  return out;
}

std::string py_capitalize(const std::string& str) {
  std::u32string s = u32(str);
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) out += i == 0 ? title_char(s[0]) : lower_at(s, i);
  return out;
}

// str.islower() / str.isupper()
bool py_islower(const std::string& str, bool upper) {
  bool cased = false;
  for (char32_t c : u32(str)) {
    UChar32 u = static_cast<UChar32>(c);
    bool is_up = u_hasBinaryProperty(u, UCHAR_UPPERCASE), is_lo = u_hasBinaryProperty(u, UCHAR_LOWERCASE);
    bool is_title = u_istitle(u);
    if (upper) {
      if (is_lo || is_title) return false;
      if (is_up) cased = true;
    } else {
      if (is_up || is_title) return false;
      if (is_lo) cased = true;
    }
  }
  return cased;
}

// ============================================================================ values

enum class Kind : uint8_t { Undefined, None, Bool, Int, Float, Str, Seq, Dict, Namespace, Func, Loop };
enum class SeqKind : uint8_t { List, Tuple, Keys, Values, Items, Range, Generator };

struct Value;
struct DictData;
struct FuncData;
class Interp;

struct LoopState;

struct GenState {
  size_t pos = 0;  // a generator is consumed once: items before pos are gone
};

struct Value {
  Kind kind = Kind::Undefined;
  SeqKind seq_kind = SeqKind::List;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;  // Str; Undefined: the message a use of it raises
  std::shared_ptr<std::vector<Value>> seq;
  std::shared_ptr<DictData> dict;  // Dict, Namespace, Loop
  std::shared_ptr<FuncData> fn;
  std::shared_ptr<GenState> gen;
  std::shared_ptr<LoopState> loop;                          // Loop
  int64_t range_start = 0, range_stop = 0, range_step = 1;  // Range: what repr() shows

  static Value undefined(std::string hint) {
    Value v;
    v.s = std::move(hint);
    return v;
  }
  static Value none() {
    Value v;
    v.kind = Kind::None;
    return v;
  }
  static Value boolean(bool x) {
    Value v;
    v.kind = Kind::Bool;
    v.b = x;
    return v;
  }
  static Value integer(int64_t x) {
    Value v;
    v.kind = Kind::Int;
    v.i = x;
    return v;
  }
  static Value flt(double x) {
    Value v;
    v.kind = Kind::Float;
    v.f = x;
    return v;
  }
  static Value str(std::string x) {
    Value v;
    v.kind = Kind::Str;
    v.s = std::move(x);
    return v;
  }
  static Value sequence(std::vector<Value> items, SeqKind k = SeqKind::List) {
    Value v;
    v.kind = Kind::Seq;
    v.seq_kind = k;
    v.seq = std::make_shared<std::vector<Value>>(std::move(items));
    if (k == SeqKind::Generator) v.gen = std::make_shared<GenState>();
    return v;
  }
  static Value tuple(std::vector<Value> items) { return sequence(std::move(items), SeqKind::Tuple); }
  static Value new_dict();
  static Value new_namespace();

  bool is_undefined() const { return kind == Kind::Undefined; }
  bool is_number() const { return kind == Kind::Int || kind == Kind::Float || kind == Kind::Bool; }
  bool is_intlike() const { return kind == Kind::Int || kind == Kind::Bool; }
  int64_t as_int() const { return kind == Kind::Bool ? (b ? 1 : 0) : i; }
  double as_double() const { return kind == Kind::Float ? f : static_cast<double>(as_int()); }
};

struct DictData {
  std::vector<std::pair<Value, Value>> items;
};

struct CallArgs {
  std::vector<Value> pos;
  std::vector<std::pair<std::string, Value>> kw;
};

struct FuncData {
  std::string name;  // for messages: "range", "str.strip", "macro 'm'"
  std::function<Value(Interp&, CallArgs&)> call;
};

Value Value::new_dict() {
  Value v;
  v.kind = Kind::Dict;
  v.dict = std::make_shared<DictData>();
  return v;
}

Value Value::new_namespace() {
  Value v;
  v.kind = Kind::Namespace;
  v.dict = std::make_shared<DictData>();
  return v;
}

Value make_func(std::string name, std::function<Value(Interp&, CallArgs&)> call) {
  Value v;
  v.kind = Kind::Func;
  v.fn = std::make_shared<FuncData>(FuncData{std::move(name), std::move(call)});
  return v;
}

// Python's type(x).__name__
std::string type_name(const Value& v) {
  switch (v.kind) {
    case Kind::Undefined:
      return "Undefined";
    case Kind::None:
      return "NoneType";
    case Kind::Bool:
      return "bool";
    case Kind::Int:
      return "int";
    case Kind::Float:
      return "float";
    case Kind::Str:
      return "str";
    case Kind::Seq:
      switch (v.seq_kind) {
        case SeqKind::List:
          return "list";
        case SeqKind::Tuple:
          return "tuple";
        case SeqKind::Keys:
          return "dict_keys";
        case SeqKind::Values:
          return "dict_values";
        case SeqKind::Items:
          return "dict_items";
        case SeqKind::Range:
          return "range";
        case SeqKind::Generator:
          return "generator";
      }
      return "list";
    case Kind::Dict:
      return "dict";
    case Kind::Namespace:
      return "Namespace";
    case Kind::Func:
      return "function";
    case Kind::Loop:
      return "LoopContext";
  }
  return "object";
}

// jinja2.utils.object_type_repr, for "'dict object' has no attribute 'x'"
std::string object_type_repr(const Value& v) {
  if (v.kind == Kind::None) return "None";
  if (v.kind == Kind::Namespace) return "jinja2.utils.Namespace object";
  if (v.kind == Kind::Loop) return "jinja2.runtime.LoopContext object";
  return type_name(v) + " object";
}

[[noreturn]] void undefined_error(const Value& u) { fail("UndefinedError: " + u.s); }

bool truthy(const Value& v) {
  switch (v.kind) {
    case Kind::Undefined:
    case Kind::None:
      return false;
    case Kind::Bool:
      return v.b;
    case Kind::Int:
      return v.i != 0;
    case Kind::Float:
      return v.f != 0.0;
    case Kind::Str:
      return !v.s.empty();
    case Kind::Seq:
      if (v.seq_kind == SeqKind::Generator) return true;
      return !v.seq->empty();
    case Kind::Dict:
      return !v.dict->items.empty();
    default:
      return true;
  }
}

size_t str_len(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// ============================================================================ equality, order

bool hashable(const Value& v) {
  switch (v.kind) {
    case Kind::Seq:
      if (v.seq_kind == SeqKind::Tuple) {
        for (const Value& x : *v.seq)
          if (!hashable(x)) return false;
        return true;
      }
      return v.seq_kind == SeqKind::Range || v.seq_kind == SeqKind::Generator;
    case Kind::Dict:
    case Kind::Namespace:  // Namespace is hashable by identity, but a dict key of it is absurd
      return v.kind == Kind::Namespace;
    default:
      return true;
  }
}

bool int_float_eq(int64_t a, double b) {
  if (!std::isfinite(b) || b != std::floor(b)) return false;
  if (b < -9223372036854775808.0 || b >= 9223372036854775808.0) return false;
  return static_cast<int64_t>(b) == a;
}

bool py_eq(const Value& a, const Value& b);

bool seq_comparable(const Value& v) {
  return v.seq_kind == SeqKind::List || v.seq_kind == SeqKind::Tuple || v.seq_kind == SeqKind::Range;
}

bool py_eq(const Value& a, const Value& b) {
  if (a.kind == Kind::Undefined || b.kind == Kind::Undefined) return a.kind == b.kind;  // jinja: Undefined == Undefined
  if (a.is_number() && b.is_number()) {
    if (a.kind == Kind::Float && b.kind == Kind::Float) return a.f == b.f;
    if (a.kind == Kind::Float) return int_float_eq(b.as_int(), a.f);
    if (b.kind == Kind::Float) return int_float_eq(a.as_int(), b.f);
    return a.as_int() == b.as_int();
  }
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case Kind::None:
      return true;
    case Kind::Str:
      return a.s == b.s;
    case Kind::Seq: {
      if (!seq_comparable(a) || !seq_comparable(b)) {
        if (a.seq == b.seq) return true;
        unsupported("comparing " + type_name(a) + " and " + type_name(b) + " objects");
      }
      bool a_range = a.seq_kind == SeqKind::Range, b_range = b.seq_kind == SeqKind::Range;
      if (a_range != b_range || (!a_range && a.seq_kind != b.seq_kind)) return false;
      if (a.seq->size() != b.seq->size()) return false;
      for (size_t k = 0; k < a.seq->size(); ++k)
        if (!py_eq((*a.seq)[k], (*b.seq)[k])) return false;
      return true;
    }
    case Kind::Dict: {
      if (a.dict->items.size() != b.dict->items.size()) return false;
      for (const auto& [k, v] : a.dict->items) {
        bool found = false;
        for (const auto& [k2, v2] : b.dict->items) {
          if (py_eq(k, k2)) {
            if (!py_eq(v, v2)) return false;
            found = true;
            break;
          }
        }
        if (!found) return false;
      }
      return true;
    }
    case Kind::Namespace:
    case Kind::Loop:
      return a.loop == b.loop;
    case Kind::Func:
      return a.fn == b.fn;
    default:
      return false;
  }
}

const Value* dict_find(const DictData& d, const Value& key) {
  for (const auto& kv : d.items)
    if (py_eq(kv.first, key)) return &kv.second;
  return nullptr;
}

const Value* dict_find(const DictData& d, const std::string& key) {
  for (const auto& kv : d.items)
    if (kv.first.kind == Kind::Str && kv.first.s == key) return &kv.second;
  return nullptr;
}

void dict_set(DictData& d, Value key, Value value) {
  for (auto& kv : d.items) {
    if (py_eq(kv.first, key)) {
      kv.second = std::move(value);  // Python keeps the first key object
      return;
    }
  }
  d.items.emplace_back(std::move(key), std::move(value));
}

void dict_set(DictData& d, const std::string& key, Value value) { dict_set(d, Value::str(key), std::move(value)); }

[[noreturn]] void order_error(const char* op, const Value& a, const Value& b) {
  fail(std::string("TypeError: '") + op + "' not supported between instances of '" + type_name(a) + "' and '" + type_name(b) +
       "'");
}

// -1, 0, 1 for a < b, a == b, a > b with Python's rules for `op`.
int py_cmp(const Value& a, const Value& b, const char* op) {
  if (a.is_undefined()) undefined_error(a);
  if (b.is_undefined()) undefined_error(b);
  if (a.is_number() && b.is_number()) {
    if (a.kind != Kind::Float && b.kind != Kind::Float) {
      int64_t x = a.as_int(), y = b.as_int();
      return x < y ? -1 : (x > y ? 1 : 0);
    }
    if (a.kind == Kind::Float && b.kind == Kind::Float) {
      if (std::isnan(a.f) || std::isnan(b.f)) return 2;  // every comparison false
      return a.f < b.f ? -1 : (a.f > b.f ? 1 : 0);
    }
    // int vs float: exact, as Python compares them
    bool swap = a.kind == Kind::Float;
    int64_t x = swap ? b.as_int() : a.as_int();
    double y = swap ? a.f : b.f;
    int r;
    if (std::isnan(y)) return 2;
    if (int_float_eq(x, y)) {
      r = 0;
    } else {
      long double lx = static_cast<long double>(x), ly = static_cast<long double>(y);
      r = lx < ly ? -1 : 1;
    }
    return swap ? -r : r;
  }
  if (a.kind == Kind::Str && b.kind == Kind::Str) {
    int c = a.s.compare(b.s);  // UTF-8 byte order is code point order
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
  }
  if (a.kind == Kind::Seq && b.kind == Kind::Seq && a.seq_kind == b.seq_kind &&
      (a.seq_kind == SeqKind::List || a.seq_kind == SeqKind::Tuple)) {
    size_t n = std::min(a.seq->size(), b.seq->size());
    for (size_t k = 0; k < n; ++k) {
      if (!py_eq((*a.seq)[k], (*b.seq)[k])) return py_cmp((*a.seq)[k], (*b.seq)[k], op);
    }
    return a.seq->size() < b.seq->size() ? -1 : (a.seq->size() > b.seq->size() ? 1 : 0);
  }
  order_error(op, a, b);
}

// ============================================================================ str(), repr()

std::string float_repr(double x) {
  if (std::isnan(x)) return "nan";
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  if (x == 0) return std::signbit(x) ? "-0.0" : "0.0";
  // Shortest digits that read back as x (Python's repr, David Gay's mode 0).
  char buf[64];
  int prec = 1;
  for (; prec <= 17; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*e", prec - 1, x);
    if (std::strtod(buf, nullptr) == x) break;
  }
  std::string sci = buf;  // [-]d.ddde[+-]XX
  bool neg = sci[0] == '-';
  if (neg) sci.erase(0, 1);
  size_t e = sci.find('e');
  std::string mant = sci.substr(0, e);
  int exp10 = std::atoi(sci.c_str() + e + 1);
  std::string digits;
  for (char c : mant)
    if (c != '.') digits.push_back(c);
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  int decpt = exp10 + 1;  // position of the decimal point relative to the digits
  std::string out;
  if (decpt > -4 && decpt <= 16) {
    int nd = static_cast<int>(digits.size());
    if (decpt <= 0) {
      out = "0." + std::string(static_cast<size_t>(-decpt), '0') + digits;
    } else if (decpt >= nd) {
      out = digits + std::string(static_cast<size_t>(decpt - nd), '0') + ".0";
    } else {
      out = digits.substr(0, static_cast<size_t>(decpt)) + "." + digits.substr(static_cast<size_t>(decpt));
    }
  } else {
    out = digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char eb[16];
    std::snprintf(eb, sizeof eb, "e%c%02d", exp10 < 0 ? '-' : '+', std::abs(exp10));
    out += eb;
  }
  return neg ? "-" + out : out;
}

std::string hex_escape(char32_t c) {
  char buf[16];
  if (c < 0x100) std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned>(c));
  else if (c < 0x10000) std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
  else std::snprintf(buf, sizeof buf, "\\U%08x", static_cast<unsigned>(c));
  return buf;
}

std::string str_repr(const std::string& s) {
  bool has_single = s.find('\'') != npos, has_double = s.find('"') != npos;
  char quote = has_single && !has_double ? '"' : '\'';
  std::string out(1, quote);
  for (char32_t c : u32(s)) {
    if (c == static_cast<char32_t>(quote) || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c == 0x7F) {
      out += hex_escape(c);
    } else if (c < 0x7F) {
      out.push_back(static_cast<char>(c));
    } else if (py_isprintable(c)) {
      append_utf8(out, c);
    } else {
      out += hex_escape(c);
    }
  }
  out.push_back(quote);
  return out;
}

std::string py_repr(const Value& v);

std::string seq_body(const std::vector<Value>& items) {
  std::string out;
  for (size_t k = 0; k < items.size(); ++k) {
    if (k) out += ", ";
    out += py_repr(items[k]);
  }
  return out;
}

// Python's str(x) as jinja prints it ({{ x }}, ~, |string, |join).
std::string py_str(const Value& v) {
  switch (v.kind) {
    case Kind::Undefined:
      return "";
    case Kind::None:
      return "None";
    case Kind::Bool:
      return v.b ? "True" : "False";
    case Kind::Int:
      return std::to_string(v.i);
    case Kind::Float:
      return float_repr(v.f);
    case Kind::Str:
      return v.s;
    case Kind::Seq:
      switch (v.seq_kind) {
        case SeqKind::List:
          return "[" + seq_body(*v.seq) + "]";
        case SeqKind::Tuple:
          return v.seq->size() == 1 ? "(" + py_repr((*v.seq)[0]) + ",)" : "(" + seq_body(*v.seq) + ")";
        case SeqKind::Keys:
          return "dict_keys([" + seq_body(*v.seq) + "])";
        case SeqKind::Values:
          return "dict_values([" + seq_body(*v.seq) + "])";
        case SeqKind::Items:
          return "dict_items([" + seq_body(*v.seq) + "])";
        case SeqKind::Range:
          return "range(" + std::to_string(v.range_start) + ", " + std::to_string(v.range_stop) +
                 (v.range_step == 1 ? std::string() : ", " + std::to_string(v.range_step)) + ")";
        case SeqKind::Generator:
          unsupported("printing a generator (Python prints its address)");
      }
      break;
    case Kind::Dict: {
      std::string out = "{";
      for (size_t k = 0; k < v.dict->items.size(); ++k) {
        if (k) out += ", ";
        out += py_repr(v.dict->items[k].first) + ": " + py_repr(v.dict->items[k].second);
      }
      return out + "}";
    }
    case Kind::Namespace:
      unsupported("printing a namespace object");
    case Kind::Func:
      unsupported("printing a function (Python prints its address)");
    case Kind::Loop:
      unsupported("printing the loop object");
  }
  return "";
}

std::string py_repr(const Value& v) {
  if (v.kind == Kind::Str) return str_repr(v.s);
  if (v.kind == Kind::Undefined) return "Undefined";
  return py_str(v);
}

// ============================================================================ json.dumps

struct JsonOptions {
  bool ensure_ascii = false;
  bool has_indent = false;
  Value indent_value;  // json.dumps turns it into a string only when a container needs it
  std::string indent() const {
    if (indent_value.is_intlike())
      return std::string(static_cast<size_t>(std::max<int64_t>(0, std::min<int64_t>(indent_value.as_int(), 1 << 16))), ' ');
    if (indent_value.kind == Kind::Str) return indent_value.s;
    fail("TypeError: can't multiply sequence by non-int of type '" + type_name(indent_value) + "'");
  }
  std::string item_sep = ", ";
  std::string key_sep = ": ";
  bool sort_keys = false;
};

void json_string(std::string& out, const std::string& s, bool ensure_ascii) {
  out.push_back('"');
  for (char32_t c : u32(s)) {
    switch (c) {
      case '"':
        out += "\\\"";
        continue;
      case '\\':
        out += "\\\\";
        continue;
      case '\n':
        out += "\\n";
        continue;
      case '\r':
        out += "\\r";
        continue;
      case '\t':
        out += "\\t";
        continue;
      case '\b':
        out += "\\b";
        continue;
      case '\f':
        out += "\\f";
        continue;
      default:
        break;
    }
    char buf[16];
    if (c < 0x20 || (ensure_ascii && c > 0x7E)) {
      if (c >= 0x10000) {
        char32_t v = c - 0x10000;
        std::snprintf(buf, sizeof buf, "\\u%04x\\u%04x", static_cast<unsigned>(0xD800 | (v >> 10)),
                      static_cast<unsigned>(0xDC00 | (v & 0x3FF)));
      } else {
        std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
      }
      out += buf;
    } else {
      append_utf8(out, c);
    }
  }
  out.push_back('"');
}

std::string json_float(double x) {
  if (std::isnan(x)) return "NaN";
  if (std::isinf(x)) return x > 0 ? "Infinity" : "-Infinity";
  return float_repr(x);
}

void json_dump(std::string& out, const Value& v, const JsonOptions& o, int level) {
  auto newline = [&](int lvl) {
    if (!o.has_indent) return;
    out.push_back('\n');
    std::string indent = o.indent();
    for (int k = 0; k < lvl; ++k) out += indent;
  };
  switch (v.kind) {
    case Kind::None:
      out += "null";
      return;
    case Kind::Bool:
      out += v.b ? "true" : "false";
      return;
    case Kind::Int:
      out += std::to_string(v.i);
      return;
    case Kind::Float:
      out += json_float(v.f);
      return;
    case Kind::Str:
      json_string(out, v.s, o.ensure_ascii);
      return;
    case Kind::Seq:
      if (v.seq_kind == SeqKind::List || v.seq_kind == SeqKind::Tuple) {
        if (v.seq->empty()) {
          out += "[]";
          return;
        }
        out.push_back('[');
        newline(level + 1);
        for (size_t k = 0; k < v.seq->size(); ++k) {
          if (k) {
            out += o.item_sep;
            newline(level + 1);
          }
          json_dump(out, (*v.seq)[k], o, level + 1);
        }
        newline(level);
        out.push_back(']');
        return;
      }
      break;
    case Kind::Dict: {
      if (v.dict->items.empty()) {
        out += "{}";
        return;
      }
      std::vector<const std::pair<Value, Value>*> items;
      for (const auto& kv : v.dict->items) items.push_back(&kv);
      if (o.sort_keys) {
        std::stable_sort(items.begin(), items.end(),
                         [](const auto* x, const auto* y) { return py_cmp(x->first, y->first, "<") < 0; });
      }
      out.push_back('{');
      newline(level + 1);
      bool first = true;
      for (const auto* kv : items) {
        if (!first) {
          out += o.item_sep;
          newline(level + 1);
        }
        first = false;
        const Value& key = kv->first;
        std::string ks;
        switch (key.kind) {
          case Kind::Str:
            ks = key.s;
            break;
          case Kind::Float:
            ks = json_float(key.f);
            break;
          case Kind::Bool:
            ks = key.b ? "true" : "false";
            break;
          case Kind::None:
            ks = "null";
            break;
          case Kind::Int:
            ks = std::to_string(key.i);
            break;
          default:
            fail("TypeError: keys must be str, int, float, bool or None, not " + type_name(key));
        }
        json_string(out, ks, o.ensure_ascii);
        out += o.key_sep;
        json_dump(out, kv->second, o, level + 1);
      }
      newline(level);
      out.push_back('}');
      return;
    }
    default:
      break;
  }
  fail("TypeError: Object of type " + type_name(v) + " is not JSON serializable");
}

// ============================================================================ iteration helpers

std::vector<Value> chars_of(const std::string& s) {
  std::vector<Value> out;
  for (char32_t c : u32(s)) out.push_back(Value::str(utf8(c)));
  return out;
}

// Python's iter(x) drained into a vector (generators are consumed).
std::vector<Value> iterate(const Value& v) {
  switch (v.kind) {
    case Kind::Undefined:
      return {};
    case Kind::Str:
      return chars_of(v.s);
    case Kind::Seq:
      if (v.seq_kind == SeqKind::Generator) {
        std::vector<Value> out(v.seq->begin() + static_cast<std::ptrdiff_t>(v.gen->pos), v.seq->end());
        v.gen->pos = v.seq->size();
        return out;
      }
      return *v.seq;
    case Kind::Dict: {
      std::vector<Value> out;
      for (const auto& kv : v.dict->items) out.push_back(kv.first);
      return out;
    }
    default:
      fail("TypeError: '" + type_name(v) + "' object is not iterable");
  }
}

size_t py_len(const Value& v) {
  switch (v.kind) {
    case Kind::Undefined:
      return 0;
    case Kind::Str:
      return str_len(v.s);
    case Kind::Seq:
      if (v.seq_kind == SeqKind::Generator) break;
      return v.seq->size();
    case Kind::Dict:
      return v.dict->items.size();
    default:
      break;
  }
  fail("TypeError: object of type '" + type_name(v) + "' has no len()");
}

bool py_contains(const Value& container, const Value& item) {
  switch (container.kind) {
    case Kind::Undefined:
      return false;
    case Kind::Str:
      if (item.kind != Kind::Str) fail("TypeError: 'in <string>' requires string as left operand, not " + type_name(item));
      return container.s.find(item.s) != npos;
    case Kind::Seq:
      if (container.seq_kind == SeqKind::Generator) {
        auto& seq = *container.seq;
        while (container.gen->pos < seq.size()) {
          if (py_eq(seq[container.gen->pos++], item)) return true;
        }
        return false;
      }
      for (const Value& x : *container.seq)
        if (py_eq(x, item)) return true;
      return false;
    case Kind::Dict:
      if (!hashable(item)) fail("TypeError: unhashable type: '" + type_name(item) + "'");
      return dict_find(*container.dict, item) != nullptr;
    default:
      fail("TypeError: argument of type '" + type_name(container) + "' is not iterable");
  }
}

// ============================================================================ arithmetic

[[noreturn]] void operand_error(const char* op, const Value& a, const Value& b) {
  fail(std::string("TypeError: unsupported operand type(s) for ") + op + ": '" + type_name(a) + "' and '" + type_name(b) + "'");
}

[[noreturn]] void overflow() { unsupported("an integer beyond 64 bits (Python's integers are unbounded)"); }

int64_t checked_add(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) overflow();
  return r;
}
int64_t checked_sub(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_sub_overflow(a, b, &r)) overflow();
  return r;
}
int64_t checked_mul(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r)) overflow();
  return r;
}

Value repeat(const Value& seq, int64_t n) {
  if (n < 0 || (seq.kind == Kind::Str ? seq.s.empty() : seq.seq->empty())) n = 0;
  if (seq.kind == Kind::Str) {
    if (n > 0 && seq.s.size() * static_cast<uint64_t>(n) > (64u << 20)) fail("MemoryError: repeated string too long");
    std::string out;
    for (int64_t k = 0; k < n; ++k) out += seq.s;
    return Value::str(out);
  }
  if (n > 0 && seq.seq->size() * static_cast<uint64_t>(n) > (1u << 20)) fail("MemoryError: repeated list too long");
  std::vector<Value> out;
  for (int64_t k = 0; k < n; ++k) out.insert(out.end(), seq.seq->begin(), seq.seq->end());
  return Value::sequence(std::move(out), seq.seq_kind);
}

bool repeatable(const Value& v) {
  return v.kind == Kind::Str || (v.kind == Kind::Seq && (v.seq_kind == SeqKind::List || v.seq_kind == SeqKind::Tuple));
}

void float_divmod(double vx, double wx, double* floordiv, double* mod) {
  double div;
  *mod = std::fmod(vx, wx);
  div = (vx - *mod) / wx;
  if (*mod != 0) {
    if ((wx < 0) != (*mod < 0)) {
      *mod += wx;
      div -= 1.0;
    }
  } else {
    *mod = std::copysign(0.0, wx);
  }
  if (div != 0) {
    *floordiv = std::floor(div);
    if (div - *floordiv > 0.5) *floordiv += 1.0;
  } else {
    *floordiv = std::copysign(0.0, vx / wx);
  }
}

Value binary_op(const std::string& op, const Value& a, const Value& b) {
  if (a.kind == Kind::Str && op == "%") unsupported("printf-style string formatting (str % x)");
  if (a.is_undefined()) undefined_error(a);
  if (b.is_undefined()) undefined_error(b);
  const char* opc = op.c_str();
  bool ints = a.is_intlike() && b.is_intlike();
  bool nums = a.is_number() && b.is_number();
  if (op == "+") {
    if (ints) return Value::integer(checked_add(a.as_int(), b.as_int()));
    if (nums) return Value::flt(a.as_double() + b.as_double());
    if (a.kind == Kind::Str && b.kind == Kind::Str) return Value::str(a.s + b.s);
    if (a.kind == Kind::Seq && b.kind == Kind::Seq && a.seq_kind == b.seq_kind &&
        (a.seq_kind == SeqKind::List || a.seq_kind == SeqKind::Tuple)) {
      std::vector<Value> out = *a.seq;
      out.insert(out.end(), b.seq->begin(), b.seq->end());
      return Value::sequence(std::move(out), a.seq_kind);
    }
    if (a.kind == Kind::Str) fail("TypeError: can only concatenate str (not \"" + type_name(b) + "\") to str");
    if (a.kind == Kind::Seq && (a.seq_kind == SeqKind::List || a.seq_kind == SeqKind::Tuple))
      fail("TypeError: can only concatenate " + type_name(a) + " (not \"" + type_name(b) + "\") to " + type_name(a));
    operand_error(opc, a, b);
  }
  if (op == "-") {
    if (ints) return Value::integer(checked_sub(a.as_int(), b.as_int()));
    if (nums) return Value::flt(a.as_double() - b.as_double());
    operand_error(opc, a, b);
  }
  if (op == "*") {
    if (ints) return Value::integer(checked_mul(a.as_int(), b.as_int()));
    if (nums) return Value::flt(a.as_double() * b.as_double());
    if (repeatable(a) && b.is_intlike()) return repeat(a, b.as_int());
    if (a.is_intlike() && repeatable(b)) return repeat(b, a.as_int());
    if (repeatable(a) || repeatable(b))
      fail("TypeError: can't multiply sequence by non-int of type '" + type_name(repeatable(a) ? b : a) + "'");
    operand_error(opc, a, b);
  }
  if (op == "/") {
    if (!nums) operand_error(opc, a, b);
    if (b.as_double() == 0) fail(ints ? "ZeroDivisionError: division by zero" : "ZeroDivisionError: float division by zero");
    if (ints) {
      // Python's int true division is correctly rounded; a double division of values that
      // are exact in a double is too.
      int64_t x = a.as_int(), y = b.as_int();
      if (std::llabs(x) > (int64_t(1) << 53) || std::llabs(y) > (int64_t(1) << 53))
        unsupported("true division of integers beyond 2**53");
      return Value::flt(static_cast<double>(x) / static_cast<double>(y));
    }
    return Value::flt(a.as_double() / b.as_double());
  }
  if (op == "//" || op == "%") {
    if (a.kind == Kind::Str && op == "%") unsupported("printf-style string formatting (str % x)");
    if (!nums) operand_error(opc, a, b);
    if (ints) {
      int64_t x = a.as_int(), y = b.as_int();
      if (y == 0)
        fail(op == "//" ? "ZeroDivisionError: integer division or modulo by zero" : "ZeroDivisionError: integer modulo by zero");
      if (x == std::numeric_limits<int64_t>::min() && y == -1) overflow();
      int64_t q = x / y, r = x % y;
      if (r != 0 && ((r < 0) != (y < 0))) {
        q -= 1;
        r += y;
      }
      return Value::integer(op == "//" ? q : r);
    }
    double x = a.as_double(), y = b.as_double();
    if (y == 0) fail(op == "//" ? "ZeroDivisionError: float floor division by zero" : "ZeroDivisionError: float modulo");
    double fd, md;
    float_divmod(x, y, &fd, &md);
    return Value::flt(op == "//" ? fd : md);
  }
  if (op == "**") {
    if (!nums) operand_error("** or pow()", a, b);
    if (ints && b.as_int() >= 0) {
      int64_t base = a.as_int(), e = b.as_int(), r = 1;
      while (e > 0) {
        if (e & 1) r = checked_mul(r, base);
        e >>= 1;
        if (e) base = checked_mul(base, base);
      }
      return Value::integer(r);
    }
    double x = a.as_double(), y = b.as_double();
    if (x == 0 && y < 0) fail("ZeroDivisionError: 0.0 cannot be raised to a negative power");
    if (x < 0 && y != std::floor(y)) unsupported("a complex power");
    double r = std::pow(x, y);
    if (std::isinf(r) && std::isfinite(x) && std::isfinite(y)) fail("OverflowError: (34, 'Numerical result out of range')");
    return Value::flt(r);
  }
  fail("internal: unknown operator " + op);
}

// ============================================================================ lexer

enum class Tok : uint8_t { Data, VarBegin, VarEnd, BlockBegin, BlockEnd, Name, String, Integer, Float, Op, Eof };

struct Token {
  Tok type = Tok::Eof;
  std::string text;  // Data: the text; Name; String: the decoded value; Op: the operator
  int64_t ival = 0;
  double fval = 0;
  size_t offset = 0;
};

// jinja's tokeniter preprocessing: every newline sequence becomes "\n" and one trailing
// newline is dropped (keep_trailing_newline=False).
std::string normalize_source(const std::string& src) {
  std::string out;
  out.reserve(src.size());
  for (size_t i = 0; i < src.size(); ++i) {
    if (src[i] == '\r') {
      out.push_back('\n');
      if (i + 1 < src.size() && src[i + 1] == '\n') ++i;
    } else {
      out.push_back(src[i]);
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

char32_t cp_at(const std::string& s, size_t p, size_t* len) {
  auto c = static_cast<unsigned char>(s[p]);
  if (c < 0x80) {
    *len = 1;
    return c;
  }
  int n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
  char32_t cp = c & (n == 4 ? 0x07 : n == 3 ? 0x0F : 0x1F);
  for (int k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[p + k]) & 0x3F);
  *len = static_cast<size_t>(n);
  return cp;
}

size_t skip_space(const std::string& s, size_t p) {
  while (p < s.size()) {
    size_t len;
    if (!py_isspace(cp_at(s, p, &len))) break;
    p += len;
  }
  return p;
}

// Length of `t` after Python's str.rstrip().
size_t rstrip_len(const std::string& t, size_t from = 0) {
  size_t end = from, p = from;
  while (p < t.size()) {
    size_t len;
    char32_t c = cp_at(t, p, &len);
    p += len;
    if (!py_isspace(c)) end = p;
  }
  return end;
}

bool all_space(const std::string& t, size_t from) { return from < t.size() && skip_space(t, from) == t.size(); }

bool is_name_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool is_name_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

class Lexer {
 public:
  explicit Lexer(const std::string& src) : s_(src) {}

  std::vector<Token> run() {
    size_t n = s_.size();
    while (pos_ < n) {
      size_t idx = pos_;
      for (;; ++idx) {
        idx = s_.find('{', idx);
        if (idx == npos || idx + 1 >= n) {
          idx = npos;
          break;
        }
        char k = s_[idx + 1];
        if (k == '{' || k == '%' || k == '#') break;
      }
      if (idx == npos) {
        emit_data(s_.substr(pos_), pos_);
        break;
      }
      std::string text = s_.substr(pos_, idx - pos_);
      size_t text_at = pos_;
      char kind = s_[idx + 1];
      size_t p = idx + 2;
      char sign = 0;
      if (p < n && (s_[p] == '-' || s_[p] == '+')) sign = s_[p++];
      size_t raw_end = kind == '%' ? match_raw_begin(p) : npos;
      // OptionalLStrip: the text before a tag loses its trailing whitespace with "-"; before a
      // block or comment (not a variable) with lstrip_blocks, the indentation of its line.
      if (sign == '-') {
        text.resize(rstrip_len(text));
      } else if (sign != '+' && kind != '{') {
        size_t nl = text.rfind('\n');
        size_t l_pos = nl == npos ? 0 : nl + 1;
        if ((l_pos > 0 || line_starting_) && all_space(text, l_pos)) text.resize(l_pos);
      }
      emit_data(std::move(text), text_at);
      if (raw_end != npos) {
        pos_ = raw_end;
        line_starting_ = s_[raw_end - 1] == '\n';
        lex_raw_body(idx);
        continue;
      }
      if (kind == '#') {
        lex_comment(p, idx);
        continue;
      }
      Token begin;
      begin.type = kind == '{' ? Tok::VarBegin : Tok::BlockBegin;
      begin.offset = idx;
      tokens_.push_back(begin);
      pos_ = p;
      line_starting_ = false;
      lex_tag(kind == '{');
    }
    Token eof;
    eof.type = Tok::Eof;
    eof.offset = s_.size();
    tokens_.push_back(eof);
    return std::move(tokens_);
  }

 private:
  [[noreturn]] void error(const std::string& msg, size_t at) { throw SyntaxFailure{msg, at}; }

  void emit_data(std::string text, size_t at) {
    if (text.empty()) return;
    Token t;
    t.type = Tok::Data;
    t.text = std::move(text);
    t.offset = at;
    tokens_.push_back(std::move(t));
  }

  bool starts(size_t p, const char* lit) const { return s_.compare(p, std::strlen(lit), lit) == 0; }

  // {%[-+]?\s*raw\s*(-%}\s*|%}) with the sign already consumed: returns the end or npos.
  size_t match_raw_begin(size_t p) const {
    p = skip_space(s_, p);
    if (!starts(p, "raw")) return npos;
    p = skip_space(s_, p + 3);
    if (starts(p, "-%}")) return skip_space(s_, p + 3);
    if (starts(p, "%}")) return p + 2;
    return npos;
  }

  // The end of a block tag at p: "+%}", "-%}\s*" or "%}\n?" (trim_blocks); npos if none.
  size_t match_block_end(size_t p) const {
    if (starts(p, "+%}")) return p + 3;
    if (starts(p, "-%}")) return skip_space(s_, p + 3);
    if (starts(p, "%}")) return p + 2 < s_.size() && s_[p + 2] == '\n' ? p + 3 : p + 2;
    return npos;
  }

  void lex_raw_body(size_t tag_at) {
    if (pos_ >= s_.size()) return;  // jinja's raw state ends quietly at the end of the source
    // (.*?)({%[-+]?\s*endraw\s*(+%}|-%}\s*|%}\n?))
    for (size_t q = s_.find("{%", pos_); q != npos; q = s_.find("{%", q + 1)) {
      size_t p = q + 2;
      char sign = 0;
      if (p < s_.size() && (s_[p] == '-' || s_[p] == '+')) sign = s_[p++];
      p = skip_space(s_, p);
      if (!starts(p, "endraw")) continue;
      p = skip_space(s_, p + 6);
      size_t end = match_block_end(p);
      if (end == npos) continue;
      std::string text = s_.substr(pos_, q - pos_);
      if (sign == '-') {
        text.resize(rstrip_len(text));
      } else if (sign != '+') {
        size_t nl = text.rfind('\n');
        size_t l_pos = nl == npos ? 0 : nl + 1;
        if ((l_pos > 0 || line_starting_) && all_space(text, l_pos)) text.resize(l_pos);
      }
      emit_data(std::move(text), pos_);
      pos_ = end;
      line_starting_ = s_[end - 1] == '\n';
      return;
    }
    error("Missing end of raw directive", tag_at);
  }

  void lex_comment(size_t p, size_t tag_at) {
    if (p >= s_.size()) {  // "{#" at the very end: jinja's comment state ends quietly
      pos_ = p;
      return;
    }
    // (.*?)((+#}|-#}\s*|#}\n?))
    for (size_t q = p; q < s_.size(); ++q) {
      size_t end = npos;
      if (starts(q, "+#}")) {
        end = q + 3;
      } else if (starts(q, "-#}")) {
        end = skip_space(s_, q + 3);
      } else if (starts(q, "#}")) {
        end = q + 2 < s_.size() && s_[q + 2] == '\n' ? q + 3 : q + 2;
      }
      if (end != npos) {
        pos_ = end;
        line_starting_ = s_[end - 1] == '\n';
        return;
      }
    }
    error("Missing end of comment tag", tag_at);
  }

  // (\d+_)*\d+ : digits with single underscores between them; returns the end or npos.
  size_t match_digits(size_t p) const {
    if (p >= s_.size() || !std::isdigit(static_cast<unsigned char>(s_[p]))) return npos;
    while (true) {
      while (p < s_.size() && std::isdigit(static_cast<unsigned char>(s_[p]))) ++p;
      if (p + 1 < s_.size() && s_[p] == '_' && std::isdigit(static_cast<unsigned char>(s_[p + 1]))) {
        ++p;
        continue;
      }
      return p;
    }
  }

  size_t match_float(size_t p) const {
    if (p > 0 && s_[p - 1] == '.') return npos;
    size_t q = match_digits(p);
    if (q == npos) return npos;
    // (\.D)? e[+-]?D
    size_t r = q;
    if (r < s_.size() && s_[r] == '.') {
      size_t f = match_digits(r + 1);
      if (f != npos) r = f;
    }
    if (r < s_.size() && (s_[r] == 'e' || s_[r] == 'E')) {
      size_t e = r + 1;
      if (e < s_.size() && (s_[e] == '+' || s_[e] == '-')) ++e;
      size_t d = match_digits(e);
      if (d != npos) return d;
    }
    // \.D
    if (q < s_.size() && s_[q] == '.') return match_digits(q + 1);
    return npos;
  }

  size_t match_integer(size_t p, int* base) const {
    auto digit_ok = [](char c, int b) {
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (b == 2) return c == '0' || c == '1';
      if (b == 8) return c >= '0' && c <= '7';
      if (b == 16) return std::isxdigit(static_cast<unsigned char>(c)) != 0;
      return std::isdigit(static_cast<unsigned char>(c)) != 0;
    };
    // prefix(_?d)+ for 0b/0o/0x, [1-9](_?\d)*, 0(_?0)*
    auto run = [&](size_t q, int b, bool need_one, char only = 0) -> size_t {
      size_t count = 0;
      while (q < s_.size()) {
        size_t r = q;
        if (s_[r] == '_') ++r;
        if (r < s_.size() && digit_ok(s_[r], b) && (only == 0 || s_[r] == only)) {
          q = r + 1;
          ++count;
        } else {
          break;
        }
      }
      return need_one && count == 0 ? npos : q;
    };
    if (p + 1 < s_.size() && s_[p] == '0') {
      char x = static_cast<char>(std::tolower(static_cast<unsigned char>(s_[p + 1])));
      int b = x == 'b' ? 2 : x == 'o' ? 8 : x == 'x' ? 16 : 0;
      if (b) {
        size_t e = run(p + 2, b, true);
        if (e != npos) {
          *base = b;
          return e;
        }
      }
    }
    if (p < s_.size() && s_[p] >= '1' && s_[p] <= '9') {
      *base = 10;
      return run(p + 1, 10, false);
    }
    if (p < s_.size() && s_[p] == '0') {
      *base = 10;
      return run(p + 1, 10, false, '0');
    }
    return npos;
  }

  std::string decode_string(const std::string& raw, size_t at) {
    std::string out;
    for (size_t i = 0; i < raw.size(); ++i) {
      char c = raw[i];
      if (c != '\\') {
        out.push_back(c);
        continue;
      }
      char e = raw[++i];
      auto hex = [&](size_t count, const char* what) {
        uint32_t v = 0;
        for (size_t k = 1; k <= count; ++k) {
          if (i + k >= raw.size() || !std::isxdigit(static_cast<unsigned char>(raw[i + k])))
            error(std::string("truncated ") + what + " escape", at);
          char h = raw[i + k];
          v = v * 16 + static_cast<uint32_t>(std::isdigit(static_cast<unsigned char>(h)) ? h - '0' : std::tolower(h) - 'a' + 10);
        }
        i += count;
        return v;
      };
      switch (e) {
        case '\n':
          break;
        case '\\':
          out.push_back('\\');
          break;
        case '\'':
          out.push_back('\'');
          break;
        case '"':
          out.push_back('"');
          break;
        case 'a':
          out.push_back('\a');
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'n':
          out.push_back('\n');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'v':
          out.push_back('\v');
          break;
        case 'x':
          append_utf8(out, hex(2, "\\xXX"));
          break;
        case 'u':
        case 'U': {
          uint32_t v = e == 'u' ? hex(4, "\\uXXXX") : hex(8, "\\UXXXXXXXX");
          if (v > 0x10FFFF) error("illegal Unicode character", at);
          if (v >= 0xD800 && v <= 0xDFFF)
            error("unsupported: a lone surrogate escape is outside the Jinja subset Lethe renders", at);
          append_utf8(out, v);
          break;
        }
        case 'N':
          error("unsupported: \\N{...} escapes are outside the Jinja subset Lethe renders", at);
        default:
          if (e >= '0' && e <= '7') {
            uint32_t v = static_cast<uint32_t>(e - '0');
            for (int k = 0; k < 2 && i + 1 < raw.size() && raw[i + 1] >= '0' && raw[i + 1] <= '7'; ++k)
              v = v * 8 + static_cast<uint32_t>(raw[++i] - '0');
            append_utf8(out, v);
          } else if (static_cast<unsigned char>(e) >= 0x80) {
            // jinja encodes the literal with backslashreplace before unicode-escape decoding,
            // so "\é" is a backslash followed by the text "xe9".
            size_t len;
            char32_t cp = cp_at(raw, i, &len);
            i += len - 1;
            out += hex_escape(cp);
          } else {
            out.push_back('\\');
            out.push_back(e);
          }
      }
    }
    return out;
  }

  void lex_tag(bool variable) {
    std::vector<char> balance;
    size_t n = s_.size();
    while (true) {
      if (pos_ >= n) return;  // the parser reports the missing end
      if (balance.empty()) {
        size_t end = npos;
        if (variable) {
          if (starts(pos_, "-}}")) end = skip_space(s_, pos_ + 3);
          else if (starts(pos_, "}}")) end = pos_ + 2;
        } else {
          end = match_block_end(pos_);
        }
        if (end != npos) {
          Token t;
          t.type = variable ? Tok::VarEnd : Tok::BlockEnd;
          t.offset = pos_;
          tokens_.push_back(t);
          pos_ = end;
          line_starting_ = s_[end - 1] == '\n';
          return;
        }
      }
      size_t len;
      char32_t c = cp_at(s_, pos_, &len);
      if (py_isspace(c)) {
        pos_ = skip_space(s_, pos_);
        continue;
      }
      Token t;
      t.offset = pos_;
      size_t e;
      int base = 10;
      if ((e = match_float(pos_)) != npos) {
        std::string lit;
        for (size_t k = pos_; k < e; ++k)
          if (s_[k] != '_') lit.push_back(s_[k]);
        t.type = Tok::Float;
        t.fval = std::strtod(lit.c_str(), nullptr);
        pos_ = e;
      } else if ((e = match_integer(pos_, &base)) != npos) {
        std::string lit;
        for (size_t k = pos_ + (base == 10 ? 0 : 2); k < e; ++k)
          if (s_[k] != '_') lit.push_back(s_[k]);
        errno = 0;
        unsigned long long v = std::strtoull(lit.c_str(), nullptr, base);
        if (errno == ERANGE || v > static_cast<unsigned long long>(std::numeric_limits<int64_t>::max()))
          error("unsupported: an integer literal beyond 64 bits is outside the Jinja subset Lethe renders", pos_);
        t.type = Tok::Integer;
        t.ival = static_cast<int64_t>(v);
        pos_ = e;
      } else if (is_name_start(s_[pos_])) {
        e = pos_;
        while (e < n && is_name_char(s_[e])) ++e;
        if (e < n && static_cast<unsigned char>(s_[e]) >= 0x80)
          error("unsupported: non-ASCII identifiers are outside the Jinja subset Lethe renders", pos_);
        t.type = Tok::Name;
        t.text = s_.substr(pos_, e - pos_);
        pos_ = e;
      } else if (s_[pos_] == '\'' || s_[pos_] == '"') {
        char q = s_[pos_];
        e = pos_ + 1;
        while (e < n && s_[e] != q) e += s_[e] == '\\' ? 2 : 1;
        if (e >= n) error("unexpected char " + str_repr(std::string(1, q)), pos_);
        t.type = Tok::String;
        t.text = decode_string(s_.substr(pos_ + 1, e - pos_ - 1), pos_);
        pos_ = e + 1;
      } else {
        static const char* two[] = {"//", "**", "==", "!=", ">=", "<="};
        std::string op;
        for (const char* o : two)
          if (starts(pos_, o)) op = o;
        if (op.empty() && std::strchr("+-/*%~[](){}><=.:|,;", s_[pos_]) && s_[pos_] != '\0') op = std::string(1, s_[pos_]);
        if (op.empty()) {
          if (c >= 0x80 && u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_XID_START))
            error("unsupported: non-ASCII identifiers are outside the Jinja subset Lethe renders", pos_);
          error("unexpected char " + str_repr(utf8(c)), pos_);
        }
        if (op == "(" || op == "[" || op == "{") {
          balance.push_back(op == "(" ? ')' : op == "[" ? ']' : '}');
        } else if (op == ")" || op == "]" || op == "}") {
          if (balance.empty()) error("unexpected '" + op + "'", pos_);
          char expected = balance.back();
          balance.pop_back();
          if (expected != op[0]) error("unexpected '" + op + "', expected '" + std::string(1, expected) + "'", pos_);
        }
        t.type = Tok::Op;
        t.text = op;
        pos_ += op.size();
      }
      tokens_.push_back(std::move(t));
    }
  }

  const std::string& s_;
  size_t pos_ = 0;
  bool line_starting_ = true;
  std::vector<Token> tokens_;
};

// ============================================================================ syntax tree

enum class EK : uint8_t {
  Const,
  Name,
  NSRef,
  List,
  Tuple,
  Dict,
  GetAttr,
  GetItem,
  Slice,
  Call,
  Filter,
  Test,
  Neg,
  Pos,
  Not,
  BinOp,
  Concat,
  And,
  Or,
  Compare,
  CondExpr,
  BlockValue
};

struct Expr;
using ExprP = std::unique_ptr<Expr>;

// What jinja's optimizer makes of an expression at compile time: not constant; constant with a
// literal representation (written into the compiled code); constant without one (evaluated at
// run time after all, unless it is a whole {{ }} expression, which is rendered at compile time).
// Refused: computing the constant needs something Lethe refuses (jinja might fold it).
enum class Fold : uint8_t { No, Safe, Unsafe, Refused };

struct Expr {
  EK kind;
  size_t offset = 0;
  Value value;                                        // Const
  std::string name;                                   // Name, NSRef (the namespace), GetAttr, Filter, Test, BinOp operator
  std::string attr;                                   // NSRef
  std::vector<ExprP> items;                           // List, Tuple, Concat; positional arguments of Call, Filter, Test
  std::vector<std::pair<ExprP, ExprP>> pairs;         // Dict
  std::vector<std::pair<std::string, ExprP>> kwargs;  // Call, Filter, Test
  std::vector<std::pair<std::string, ExprP>> ops;     // Compare
  ExprP a, b, c;
  bool dyn_args = false;  // *args or **kwargs in the call
  Fold fold = Fold::No;
  Value folded;  // Safe, Unsafe: the value; Refused: a string with the refusal
  Expr(EK k, size_t off) : kind(k), offset(off) {}
};

struct Target {
  enum class K { Name, NSRef, Tuple } kind = K::Name;
  std::string name, attr;
  std::vector<Target> items;
};

enum class SK : uint8_t { Data, Print, If, For, Set, SetBlock, Macro, Break, Continue, Generation, Unsupported };

struct Stmt;
using StmtP = std::unique_ptr<Stmt>;
using Body = std::vector<StmtP>;

// The variables a jinja frame (template, loop iteration, loop else, macro call, set block,
// generation block) assigns anywhere in its body are its locals from the frame's start
// (jinja's idtracking). Each starts undefined (true) or as the enclosing frames / render
// variables have it at frame entry (false).
using FrameInit = std::vector<std::pair<std::string, bool>>;

struct Stmt {
  SK kind;
  size_t offset = 0;
  std::string text;          // Data: the text; Macro: its name; Unsupported: what
  std::vector<ExprP> exprs;  // Print: the expressions; If: the conditions
  std::vector<Body> bodies;  // If: one per condition
  Body body, else_body;
  Target target;
  ExprP expr, filter;  // For: iterable and `if` filter; Set: value; SetBlock: filter chain
  bool recursive = false;
  std::vector<std::string> params;  // Macro
  std::vector<ExprP> defaults;      // Macro: for the last params
  bool macro_special = false;       // Macro: uses varargs, kwargs or caller
  FrameInit body_init, else_init;   // For, SetBlock, Macro, Generation: their frames' locals
  Stmt(SK k, size_t off) : kind(k), offset(off) {}
};

}  // namespace

struct ChatTemplateProgram {
  std::string name;
  std::string text;        // as given
  std::string normalized;  // what was lexed; offsets refer to it
  Body body;
  FrameInit root_init;
  std::vector<std::string> unsupported;
};

namespace {

std::string line_col(const std::string& text, size_t offset) {
  offset = std::min(offset, text.size());
  size_t line = 1, line_start = 0;
  for (size_t k = 0; k < offset; ++k) {
    if (text[k] == '\n') {
      ++line;
      line_start = k + 1;
    }
  }
  size_t col = str_len(text.substr(line_start, offset - line_start)) + 1;
  return std::to_string(line) + ":" + std::to_string(col);
}

const std::unordered_set<std::string>& supported_filters() {
  static const std::unordered_set<std::string> s = {
      "trim", "length",  "count", "upper",  "lower",   "capitalize", "tojson",     "join",  "default",
      "d",    "first",   "last",  "list",   "replace", "items",      "string",     "int",   "float",
      "abs",  "reverse", "map",   "select", "reject",  "selectattr", "rejectattr", "title", "indent"};
  return s;
}

const std::unordered_set<std::string>& supported_tests() {
  static const std::unordered_set<std::string> s = {
      "defined",  "undefined", "none",   "string", "mapping",  "iterable",    "sequence", "number",      "integer",
      "float",    "boolean",   "true",   "false",  "callable", "odd",         "even",     "divisibleby", "lower",
      "upper",    "in",        "sameas", "eq",     "equalto",  "==",          "ne",       "!=",          "lt",
      "lessthan", "<",         "le",     "<=",     "gt",       "greaterthan", ">",        "ge",          ">="};
  return s;
}

bool mentions_name(const Expr* e, const std::unordered_set<std::string>& names);

bool mentions_name(const Body& body, const std::unordered_set<std::string>& names) {
  for (const auto& st : body) {
    if (mentions_name(st->expr.get(), names) || mentions_name(st->filter.get(), names)) return true;
    for (const auto& e : st->exprs)
      if (mentions_name(e.get(), names)) return true;
    for (const auto& e : st->defaults)
      if (mentions_name(e.get(), names)) return true;
    for (const auto& b : st->bodies)
      if (mentions_name(b, names)) return true;
    if (mentions_name(st->body, names) || mentions_name(st->else_body, names)) return true;
  }
  return false;
}

bool mentions_name(const Expr* e, const std::unordered_set<std::string>& names) {
  if (!e) return false;
  if (e->kind == EK::Name && names.count(e->name)) return true;
  for (const auto& x : e->items)
    if (mentions_name(x.get(), names)) return true;
  for (const auto& [k, v] : e->pairs)
    if (mentions_name(k.get(), names) || mentions_name(v.get(), names)) return true;
  for (const auto& kv : e->kwargs)
    if (mentions_name(kv.second.get(), names)) return true;
  for (const auto& kv : e->ops)
    if (mentions_name(kv.second.get(), names)) return true;
  return mentions_name(e->a.get(), names) || mentions_name(e->b.get(), names) || mentions_name(e->c.get(), names);
}

class Parser {
 public:
  Parser(std::vector<Token> tokens, ChatTemplateProgram& prog) : t_(std::move(tokens)), prog_(prog) {}

  Body parse() {
    Body body = subparse({});
    if (cur().type != Tok::Eof) error("unexpected " + describe(cur()), cur().offset);
    check_depth(body);
    return body;
  }

 private:
  using Names = std::vector<std::string>;

  const Token& cur() const { return t_[p_]; }
  const Token& look() const { return t_[std::min(p_ + 1, t_.size() - 1)]; }
  const Token& next() {
    const Token& t = t_[p_];
    if (p_ + 1 < t_.size()) ++p_;
    return t;
  }
  bool is_op(const char* op) const { return cur().type == Tok::Op && cur().text == op; }
  bool is_name(const char* n) const { return cur().type == Tok::Name && cur().text == n; }
  bool skip_op(const char* op) {
    if (!is_op(op)) return false;
    next();
    return true;
  }
  bool skip_name(const char* n) {
    if (!is_name(n)) return false;
    next();
    return true;
  }

  [[noreturn]] void error(const std::string& msg, size_t at) { throw SyntaxFailure{msg, at}; }

  static std::string describe(const Token& t) {
    switch (t.type) {
      case Tok::Data:
        return "template data";
      case Tok::VarBegin:
        return "begin of print statement";
      case Tok::VarEnd:
        return "end of print statement";
      case Tok::BlockBegin:
        return "begin of statement block";
      case Tok::BlockEnd:
        return "end of statement block";
      case Tok::Name:
      case Tok::Op:
        return "'" + t.text + "'";
      case Tok::String:
        return "string";
      case Tok::Integer:
        return "integer";
      case Tok::Float:
        return "float";
      case Tok::Eof:
        return "end of template";
    }
    return "token";
  }

  void expect_op(const char* op) {
    if (!skip_op(op)) error(std::string("expected token '") + op + "', got " + describe(cur()), cur().offset);
  }
  std::string expect_name() {
    if (cur().type != Tok::Name) error("expected token 'name', got " + describe(cur()), cur().offset);
    return next().text;
  }
  void expect(Tok type, const char* what) {
    if (cur().type != type) error(std::string("expected ") + what + ", got " + describe(cur()), cur().offset);
    next();
  }

  void note(size_t at, const std::string& what) { prog_.unsupported.push_back(line_col(prog_.normalized, at) + ": " + what); }

  bool at_end_token(const Names& ends) const {
    if (cur().type != Tok::Name) return false;
    return std::find(ends.begin(), ends.end(), cur().text) != ends.end();
  }

  Body subparse(const Names& ends) {
    Body body;
    while (cur().type != Tok::Eof) {
      const Token& tok = cur();
      if (tok.type == Tok::Data) {
        auto st = std::make_unique<Stmt>(SK::Data, tok.offset);
        st->text = tok.text;
        body.push_back(std::move(st));
        next();
      } else if (tok.type == Tok::VarBegin) {
        auto st = std::make_unique<Stmt>(SK::Print, tok.offset);
        next();
        st->exprs.push_back(parse_tuple(false, true, {}, false));
        expect(Tok::VarEnd, "end of print statement");
        body.push_back(std::move(st));
      } else if (tok.type == Tok::BlockBegin) {
        next();
        if (!ends.empty() && at_end_token(ends)) return body;
        body.push_back(parse_statement());
        expect(Tok::BlockEnd, "end of statement block");
      } else {
        error("unexpected " + describe(tok), tok.offset);
      }
    }
    return body;
  }

  Body parse_statements(const Names& ends, bool drop_needle) {
    if (++depth_ > 200) error("blocks nested too deeply", cur().offset);
    skip_op(":");
    expect(Tok::BlockEnd, "end of statement block");
    Body body = subparse(ends);
    if (cur().type == Tok::Eof) {
      std::string list;
      for (const auto& e : ends) list += (list.empty() ? "'" : " or '") + e + "'";
      error("Unexpected end of template. Jinja was looking for the following tags: " + list + ".", cur().offset);
    }
    if (drop_needle) next();
    --depth_;
    return body;
  }

  StmtP parse_statement() {
    const Token& tok = cur();
    if (tok.type != Tok::Name) error("tag name expected", tok.offset);
    const std::string tag = tok.text;
    size_t at = tok.offset;
    if (tag == "if") return parse_if();
    if (tag == "for") return parse_for();
    if (tag == "set") return parse_set();
    if (tag == "macro") return parse_macro();
    if (tag == "print") {
      next();
      auto st = std::make_unique<Stmt>(SK::Print, at);
      while (cur().type != Tok::BlockEnd) {
        if (!st->exprs.empty()) expect_op(",");
        st->exprs.push_back(parse_expression(true));
      }
      return st;
    }
    if (tag == "break" || tag == "continue") {
      if (loop_depth_ == 0) error("'" + tag + "' outside loop", at);
      next();
      return std::make_unique<Stmt>(tag == "break" ? SK::Break : SK::Continue, at);
    }
    if (tag == "generation") {
      next();
      auto st = std::make_unique<Stmt>(SK::Generation, at);
      int saved = loop_depth_;
      loop_depth_ = 0;
      st->body = parse_statements({"endgeneration"}, true);
      loop_depth_ = saved;
      return st;
    }
    static const std::unordered_set<std::string> with_body = {"block", "with", "autoescape", "call", "filter"};
    static const std::unordered_set<std::string> single = {"extends", "include", "import", "from"};
    if (with_body.count(tag) || single.count(tag)) {
      auto st = std::make_unique<Stmt>(SK::Unsupported, at);
      st->text = "the {% " + tag + " %} tag";
      note(at, "tag '" + tag + "'");
      next();
      skip_to_block_end();
      if (with_body.count(tag)) {
        int saved = loop_depth_;
        loop_depth_ = 0;
        st->body = parse_statements({"end" + tag}, true);
        loop_depth_ = saved;
        skip_to_block_end();
      }
      return st;
    }
    error("Encountered unknown tag '" + tag + "'.", at);
  }

  void skip_to_block_end() {
    while (cur().type != Tok::BlockEnd && cur().type != Tok::Eof) next();
  }

  StmtP parse_if() {
    auto st = std::make_unique<Stmt>(SK::If, cur().offset);
    next();
    while (true) {
      st->exprs.push_back(parse_tuple(false, false, {}, false));
      st->bodies.push_back(parse_statements({"elif", "else", "endif"}, false));
      std::string t = next().text;
      if (t == "elif") continue;
      if (t == "else") st->else_body = parse_statements({"endif"}, true);
      break;
    }
    return st;
  }

  StmtP parse_for() {
    auto st = std::make_unique<Stmt>(SK::For, cur().offset);
    next();
    st->target = parse_assign_target(true, false, {"in"}, false);
    if (!skip_name("in")) error("expected token 'in', got " + describe(cur()), cur().offset);
    st->expr = parse_tuple(false, false, {"recursive"}, false);
    if (skip_name("if")) st->filter = parse_expression(true);
    if (is_name("recursive")) {
      note(cur().offset, "recursive for loop");
      next();
      st->recursive = true;
    }
    ++loop_depth_;
    st->body = parse_statements({"endfor", "else"}, false);
    --loop_depth_;
    if (next().text == "else") st->else_body = parse_statements({"endfor"}, true);
    return st;
  }

  StmtP parse_set() {
    size_t at = cur().offset;
    next();
    Target target = parse_assign_target(true, false, {}, true);
    if (skip_op("=")) {
      auto st = std::make_unique<Stmt>(SK::Set, at);
      st->target = std::move(target);
      st->expr = parse_tuple(false, true, {}, false);
      return st;
    }
    auto st = std::make_unique<Stmt>(SK::SetBlock, at);
    st->target = std::move(target);
    if (is_op("|")) st->filter = parse_filter(std::make_unique<Expr>(EK::BlockValue, cur().offset));
    st->body = parse_statements({"endset"}, true);
    return st;
  }

  StmtP parse_macro() {
    auto st = std::make_unique<Stmt>(SK::Macro, cur().offset);
    next();
    st->text = expect_name();
    expect_op("(");
    while (!is_op(")")) {
      if (!st->params.empty()) expect_op(",");
      st->params.push_back(expect_name());
      if (skip_op("=")) {
        st->defaults.push_back(parse_expression(true));
      } else if (!st->defaults.empty()) {
        error("non-default argument follows default argument", cur().offset);
      }
    }
    expect_op(")");
    int saved = loop_depth_;
    loop_depth_ = 0;
    st->body = parse_statements({"endmacro"}, true);
    loop_depth_ = saved;
    static const std::unordered_set<std::string> special = {"varargs", "kwargs", "caller"};
    if (mentions_name(st->body, special)) {
      st->macro_special = true;
      note(st->offset, "macro '" + st->text + "' using varargs, kwargs or caller");
    }
    return st;
  }

  Target to_target(const Expr& e) {
    Target t;
    switch (e.kind) {
      case EK::Name:
        t.kind = Target::K::Name;
        t.name = e.name;
        return t;
      case EK::NSRef:
        t.kind = Target::K::NSRef;
        t.name = e.name;
        t.attr = e.attr;
        return t;
      case EK::Tuple:
        t.kind = Target::K::Tuple;
        for (const auto& x : e.items) t.items.push_back(to_target(*x));
        return t;
      default:
        break;
    }
    const char* what = e.kind == EK::Const ? "const" : e.kind == EK::List ? "list" : e.kind == EK::Dict ? "dict" : "expression";
    error(std::string("can't assign to '") + what + "'", e.offset);
  }

  Target parse_assign_target(bool with_tuple, bool name_only, const Names& extra_end, bool with_namespace) {
    if (name_only) {
      Target t;
      t.name = expect_name();
      return t;
    }
    ExprP e = with_tuple ? parse_tuple(true, true, extra_end, false, with_namespace) : parse_primary(with_namespace);
    return to_target(*e);
  }

  // ---------------------------------------------------------------- expressions

  bool is_tuple_end(const Names& extra_end) const {
    if (cur().type == Tok::VarEnd || cur().type == Tok::BlockEnd || (cur().type == Tok::Op && cur().text == ")")) return true;
    return at_end_token(extra_end);
  }

  ExprP parse_tuple(bool simplified, bool with_condexpr, const Names& extra_end, bool explicit_parens,
                    bool with_namespace = false) {
    size_t at = cur().offset;
    std::vector<ExprP> args;
    bool is_tuple = false;
    while (true) {
      if (!args.empty()) expect_op(",");
      if (is_tuple_end(extra_end)) break;
      args.push_back(simplified ? parse_primary(with_namespace) : parse_expression(with_condexpr));
      if (is_op(",")) {
        is_tuple = true;
      } else {
        break;
      }
    }
    if (!is_tuple) {
      if (!args.empty()) return std::move(args[0]);
      if (!explicit_parens) error("Expected an expression, got " + describe(cur()), cur().offset);
    }
    auto t = std::make_unique<Expr>(EK::Tuple, at);
    t->items = std::move(args);
    return t;
  }

  ExprP parse_expression(bool with_condexpr) {
    // jinja would hit Python's recursion limit; a C++ stack must not overflow first
    if (++depth_ > 200) error("expression nested too deeply", cur().offset);
    ExprP e = with_condexpr ? parse_condexpr() : parse_or();
    --depth_;
    return e;
  }

  ExprP parse_condexpr() {
    size_t at = cur().offset;
    ExprP expr1 = parse_or();
    while (skip_name("if")) {
      ExprP expr2 = parse_or();
      ExprP expr3;
      if (skip_name("else")) expr3 = parse_condexpr();
      auto c = std::make_unique<Expr>(EK::CondExpr, at);
      c->a = std::move(expr2);
      c->b = std::move(expr1);
      c->c = std::move(expr3);
      expr1 = std::move(c);
      at = cur().offset;
    }
    return expr1;
  }

  ExprP binary(EK kind, size_t at, ExprP l, ExprP r, std::string op = {}) {
    auto e = std::make_unique<Expr>(kind, at);
    e->a = std::move(l);
    e->b = std::move(r);
    e->name = std::move(op);
    return e;
  }

  ExprP parse_or() {
    size_t at = cur().offset;
    ExprP left = parse_and();
    while (skip_name("or")) {
      ExprP right = parse_and();
      left = binary(EK::Or, at, std::move(left), std::move(right));
      at = cur().offset;
    }
    return left;
  }

  ExprP parse_and() {
    size_t at = cur().offset;
    ExprP left = parse_not();
    while (skip_name("and")) {
      ExprP right = parse_not();
      left = binary(EK::And, at, std::move(left), std::move(right));
      at = cur().offset;
    }
    return left;
  }

  ExprP parse_not() {
    if (is_name("not")) {
      if (++depth_ > 200) error("expression nested too deeply", cur().offset);
      size_t at = next().offset;
      auto e = std::make_unique<Expr>(EK::Not, at);
      e->a = parse_not();
      --depth_;
      return e;
    }
    return parse_compare();
  }

  ExprP parse_compare() {
    size_t at = cur().offset;
    ExprP expr = parse_math1();
    std::vector<std::pair<std::string, ExprP>> ops;
    static const std::unordered_set<std::string> cmp = {"==", "!=", "<", "<=", ">", ">="};
    while (true) {
      if (cur().type == Tok::Op && cmp.count(cur().text)) {
        std::string op = next().text;
        ops.emplace_back(op, parse_math1());
      } else if (skip_name("in")) {
        ops.emplace_back("in", parse_math1());
      } else if (is_name("not") && look().type == Tok::Name && look().text == "in") {
        next();
        next();
        ops.emplace_back("notin", parse_math1());
      } else {
        break;
      }
    }
    if (ops.empty()) return expr;
    auto e = std::make_unique<Expr>(EK::Compare, at);
    e->a = std::move(expr);
    e->ops = std::move(ops);
    return e;
  }

  ExprP parse_math1() {
    size_t at = cur().offset;
    ExprP left = parse_concat();
    while (is_op("+") || is_op("-")) {
      std::string op = next().text;
      ExprP right = parse_concat();
      left = binary(EK::BinOp, at, std::move(left), std::move(right), op);
      at = cur().offset;
    }
    return left;
  }

  ExprP parse_concat() {
    size_t at = cur().offset;
    std::vector<ExprP> args;
    args.push_back(parse_math2());
    while (skip_op("~")) args.push_back(parse_math2());
    if (args.size() == 1) return std::move(args[0]);
    auto e = std::make_unique<Expr>(EK::Concat, at);
    e->items = std::move(args);
    return e;
  }

  ExprP parse_math2() {
    size_t at = cur().offset;
    ExprP left = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      std::string op = next().text;
      ExprP right = parse_pow();
      left = binary(EK::BinOp, at, std::move(left), std::move(right), op);
      at = cur().offset;
    }
    return left;
  }

  ExprP parse_pow() {
    size_t at = cur().offset;
    ExprP left = parse_unary(true);
    while (skip_op("**")) {
      ExprP right = parse_unary(true);
      left = binary(EK::BinOp, at, std::move(left), std::move(right), "**");
      at = cur().offset;
    }
    return left;
  }

  ExprP parse_unary(bool with_filter) {
    size_t at = cur().offset;
    ExprP node;
    if (is_op("-") || is_op("+")) {
      if (++depth_ > 200) error("expression nested too deeply", cur().offset);
      bool neg = next().text == "-";
      node = std::make_unique<Expr>(neg ? EK::Neg : EK::Pos, at);
      node->a = parse_unary(false);
      --depth_;
    } else {
      node = parse_primary(false);
    }
    node = parse_postfix(std::move(node));
    if (with_filter) node = parse_filter_expr(std::move(node));
    return node;
  }

  ExprP constant(Value v, size_t at) {
    auto e = std::make_unique<Expr>(EK::Const, at);
    e->value = std::move(v);
    return e;
  }

  ExprP parse_primary(bool with_namespace) {
    const Token& tok = cur();
    size_t at = tok.offset;
    switch (tok.type) {
      case Tok::Name: {
        std::string n = next().text;
        if (n == "true" || n == "True") return constant(Value::boolean(true), at);
        if (n == "false" || n == "False") return constant(Value::boolean(false), at);
        if (n == "none" || n == "None") return constant(Value::none(), at);
        if (with_namespace && is_op(".")) {
          next();
          auto e = std::make_unique<Expr>(EK::NSRef, at);
          e->name = n;
          e->attr = expect_name();
          return e;
        }
        auto e = std::make_unique<Expr>(EK::Name, at);
        e->name = n;
        return e;
      }
      case Tok::String: {
        std::string s = next().text;
        while (cur().type == Tok::String) s += next().text;
        return constant(Value::str(std::move(s)), at);
      }
      case Tok::Integer:
        return constant(Value::integer(next().ival), at);
      case Tok::Float:
        return constant(Value::flt(next().fval), at);
      case Tok::Op:
        if (tok.text == "(") {
          next();
          ExprP e = parse_tuple(false, true, {}, true);
          expect_op(")");
          return e;
        }
        if (tok.text == "[") return parse_list();
        if (tok.text == "{") return parse_dict();
        break;
      default:
        break;
    }
    error("unexpected " + describe(tok), at);
  }

  ExprP parse_list() {
    auto e = std::make_unique<Expr>(EK::List, cur().offset);
    expect_op("[");
    while (!is_op("]")) {
      if (!e->items.empty()) expect_op(",");
      if (is_op("]")) break;
      e->items.push_back(parse_expression(true));
    }
    expect_op("]");
    return e;
  }

  ExprP parse_dict() {
    auto e = std::make_unique<Expr>(EK::Dict, cur().offset);
    expect_op("{");
    while (!is_op("}")) {
      if (!e->pairs.empty()) expect_op(",");
      if (is_op("}")) break;
      ExprP key = parse_expression(true);
      expect_op(":");
      ExprP value = parse_expression(true);
      e->pairs.emplace_back(std::move(key), std::move(value));
    }
    expect_op("}");
    return e;
  }

  ExprP parse_postfix(ExprP node) {
    while (true) {
      if (is_op(".") || is_op("[")) {
        node = parse_subscript(std::move(node));
      } else if (is_op("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprP parse_filter_expr(ExprP node) {
    while (true) {
      if (is_op("|")) {
        node = parse_filter(std::move(node));
      } else if (is_name("is")) {
        node = parse_test(std::move(node));
      } else if (is_op("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprP parse_subscript(ExprP node) {
    const Token& tok = next();
    size_t at = tok.offset;
    if (tok.text == ".") {
      const Token& attr = cur();
      if (attr.type == Tok::Name) {
        auto e = std::make_unique<Expr>(EK::GetAttr, at);
        e->a = std::move(node);
        e->name = next().text;
        return e;
      }
      if (attr.type != Tok::Integer) error("expected name or number", attr.offset);
      auto e = std::make_unique<Expr>(EK::GetItem, at);
      e->a = std::move(node);
      e->b = constant(Value::integer(next().ival), attr.offset);
      return e;
    }
    std::vector<ExprP> args;
    while (!is_op("]")) {
      if (!args.empty()) expect_op(",");
      args.push_back(parse_subscribed());
    }
    expect_op("]");
    auto e = std::make_unique<Expr>(EK::GetItem, at);
    e->a = std::move(node);
    if (args.size() == 1) {
      e->b = std::move(args[0]);
    } else {
      auto t = std::make_unique<Expr>(EK::Tuple, at);
      t->items = std::move(args);
      e->b = std::move(t);
    }
    return e;
  }

  ExprP parse_subscribed() {
    size_t at = cur().offset;
    std::vector<ExprP> args;
    if (is_op(":")) {
      next();
      args.push_back(nullptr);
    } else {
      ExprP node = parse_expression(true);
      if (!is_op(":")) return node;
      next();
      args.push_back(std::move(node));
    }
    if (is_op(":")) {
      args.push_back(nullptr);
    } else if (!is_op("]") && !is_op(",")) {
      args.push_back(parse_expression(true));
    } else {
      args.push_back(nullptr);
    }
    if (is_op(":")) {
      next();
      if (!is_op("]") && !is_op(",")) args.push_back(parse_expression(true));
      else args.push_back(nullptr);
    } else {
      args.push_back(nullptr);
    }
    auto e = std::make_unique<Expr>(EK::Slice, at);
    e->a = std::move(args[0]);
    e->b = std::move(args[1]);
    e->c = std::move(args[2]);
    return e;
  }

  void parse_call_args(Expr& e) {
    size_t at = cur().offset;
    expect_op("(");
    bool require_comma = false;
    auto ensure = [&](bool ok) {
      if (!ok) error("invalid syntax for function call expression", at);
    };
    while (!is_op(")")) {
      if (require_comma) {
        expect_op(",");
        if (is_op(")")) break;
      }
      if (is_op("*") || is_op("**")) {
        note(cur().offset, "*args or **kwargs in a call");
        e.dyn_args = true;
        next();
        e.items.push_back(parse_expression(true));
      } else if (cur().type == Tok::Name && look().type == Tok::Op && look().text == "=") {
        std::string key = next().text;
        next();
        e.kwargs.emplace_back(key, parse_expression(true));
      } else {
        ensure(e.kwargs.empty() && !e.dyn_args);
        e.items.push_back(parse_expression(true));
      }
      require_comma = true;
    }
    expect_op(")");
  }

  ExprP parse_call(ExprP node) {
    auto e = std::make_unique<Expr>(EK::Call, cur().offset);
    e->a = std::move(node);
    parse_call_args(*e);
    return e;
  }

  ExprP parse_filter(ExprP node) {
    while (is_op("|")) {
      next();
      size_t at = cur().offset;
      std::string name = expect_name();
      while (skip_op(".")) name += "." + expect_name();
      auto e = std::make_unique<Expr>(EK::Filter, at);
      e->a = std::move(node);
      e->name = name;
      if (is_op("(")) parse_call_args(*e);
      if (!supported_filters().count(name)) note(at, "filter '" + name + "'");
      node = std::move(e);
    }
    return node;
  }

  ExprP parse_test(ExprP node) {
    size_t at = next().offset;  // "is"
    bool negated = skip_name("not");
    std::string name = expect_name();
    while (skip_op(".")) name += "." + expect_name();
    auto e = std::make_unique<Expr>(EK::Test, at);
    e->a = std::move(node);
    e->name = name;
    if (is_op("(")) {
      parse_call_args(*e);
    } else {
      Tok ty = cur().type;
      bool starts_arg = ty == Tok::Name || ty == Tok::String || ty == Tok::Integer || ty == Tok::Float || is_op("(") ||
                        is_op("[") || is_op("{");
      if (starts_arg && !is_name("else") && !is_name("or") && !is_name("and")) {
        if (is_name("is")) error("You cannot chain multiple tests with is", cur().offset);
        ExprP arg = parse_primary(false);
        e->items.push_back(parse_postfix(std::move(arg)));
      }
    }
    if (!supported_tests().count(name)) note(at, "test '" + name + "'");
    if (!negated) return e;
    auto n = std::make_unique<Expr>(EK::Not, at);
    n->a = std::move(e);
    return n;
  }

  // Long operator chains nest without recursion in the parser; rendering recurses over them.
  void check_depth(const Body& body) {
    for (const auto& st : body) {
      std::vector<const Expr*> roots = {st->expr.get(), st->filter.get()};
      for (const auto& e : st->exprs) roots.push_back(e.get());
      for (const auto& e : st->defaults) roots.push_back(e.get());
      for (const Expr* root : roots) {
        if (!root) continue;
        std::vector<std::pair<const Expr*, int>> stack = {{root, 1}};
        while (!stack.empty()) {
          // Not a structured binding: clang before 16 cannot capture one in the lambda below.
          const Expr* e = stack.back().first;
          const int d = stack.back().second;
          stack.pop_back();
          if (d > 400) error("expression nested too deeply", e->offset);
          auto push = [&](const Expr* x) {
            if (x) stack.emplace_back(x, d + 1);
          };
          for (const auto& x : e->items) push(x.get());
          for (const auto& [k, v] : e->pairs) {
            push(k.get());
            push(v.get());
          }
          for (const auto& kv : e->kwargs) push(kv.second.get());
          for (const auto& kv : e->ops) push(kv.second.get());
          push(e->a.get());
          push(e->b.get());
          push(e->c.get());
        }
      }
      for (const auto& b : st->bodies) check_depth(b);
      check_depth(st->body);
      check_depth(st->else_body);
    }
  }

  std::vector<Token> t_;
  size_t p_ = 0;
  ChatTemplateProgram& prog_;
  int loop_depth_ = 0;
  int depth_ = 0;
};

// ============================================================================ scopes (idtracking)

// jinja2.idtracking.Symbols, reduced to what decides a local's initial value.
struct Symbols {
  enum Mode : char { Param = 'P', Resolve = 'R', Alias = 'A', Undef = 'U' };
  const Symbols* parent = nullptr;
  std::map<std::string, Mode> refs;
  std::set<std::string> stores;
  std::vector<std::string> order;  // stored names in first-store order (deterministic init)

  bool find_ref(const std::string& n) const {
    for (const Symbols* s = this; s; s = s->parent)
      if (s->refs.count(n)) return true;
    return false;
  }
  void add_store(const std::string& n) {
    if (stores.insert(n).second) order.push_back(n);
  }
  void load(const std::string& n) {
    if (!find_ref(n)) refs[n] = Resolve;
  }
  void store(const std::string& n) {
    add_store(n);
    if (!refs.count(n)) refs[n] = parent && parent->find_ref(n) ? Alias : Undef;
  }
  void param(const std::string& n) {
    add_store(n);
    refs[n] = Param;
  }
  void branch_update(const std::vector<Symbols>& branches) {
    std::vector<std::string> new_stores;
    for (const auto& b : branches)
      for (const auto& n : b.order)
        if (!stores.count(n) && std::find(new_stores.begin(), new_stores.end(), n) == new_stores.end()) new_stores.push_back(n);
    for (const auto& b : branches) {
      for (const auto& kv : b.refs) refs[kv.first] = kv.second;
      for (const auto& n : b.order) add_store(n);
    }
    for (const auto& n : new_stores) refs[n] = parent && parent->find_ref(n) ? Alias : Resolve;
  }
  FrameInit init() const {
    FrameInit out;
    for (const auto& n : order) {
      Mode m = refs.at(n);
      if (m != Param) out.emplace_back(n, m == Undef);
    }
    return out;
  }
};

class ScopeAnalysis {
 public:
  void frame(Body& body, const Symbols* parent, FrameInit& init, const std::vector<std::string>& params) {
    Symbols sym;
    sym.parent = parent;
    for (const auto& p : params) sym.param(p);
    for (auto& st : body) visit(*st, sym);
    init = sym.init();
    for (auto& st : body) children(*st, sym);
  }

 private:
  static void loads(const Expr* e, Symbols& sym) {
    if (!e) return;
    if (e->kind == EK::Name) sym.load(e->name);
    for (const auto& x : e->items) loads(x.get(), sym);
    for (const auto& [k, v] : e->pairs) {
      loads(k.get(), sym);
      loads(v.get(), sym);
    }
    for (const auto& kv : e->kwargs) loads(kv.second.get(), sym);
    for (const auto& kv : e->ops) loads(kv.second.get(), sym);
    loads(e->a.get(), sym);
    loads(e->b.get(), sym);
    loads(e->c.get(), sym);
  }

  static void store_target(const Target& t, Symbols& sym) {
    switch (t.kind) {
      case Target::K::Name:
        sym.store(t.name);
        break;
      case Target::K::NSRef:
        sym.load(t.name);
        break;
      case Target::K::Tuple:
        for (const auto& x : t.items) store_target(x, sym);
        break;
    }
  }

  static void param_target(const Target& t, std::vector<std::string>& out) {
    if (t.kind == Target::K::Tuple) {
      for (const auto& x : t.items) param_target(x, out);
    } else {
      out.push_back(t.name);
    }
  }

  // FrameSymbolVisitor: what a statement does to its own frame's symbols.
  void visit(Stmt& st, Symbols& sym) {
    switch (st.kind) {
      case SK::Print:
        for (const auto& e : st.exprs) loads(e.get(), sym);
        break;
      case SK::If:
        visit_if(st, 0, sym);
        break;
      case SK::For:
        loads(st.expr.get(), sym);
        break;
      case SK::Set:
        loads(st.expr.get(), sym);
        store_target(st.target, sym);
        break;
      case SK::SetBlock:
        store_target(st.target, sym);
        break;
      case SK::Macro:
        sym.store(st.text);
        break;
      default:
        break;
    }
  }

  // jinja's If with its elif chain: the test of branch k, then [body k, elif chain, else].
  void visit_if(Stmt& st, size_t k, Symbols& sym) {
    loads(st.exprs[k].get(), sym);
    Symbols body = sym, elifs = sym, other = sym;
    for (auto& x : st.bodies[k]) visit(*x, body);
    if (k == 0) {
      for (size_t j = 1; j < st.exprs.size(); ++j) visit_if(st, j, elifs);
      for (auto& x : st.else_body) visit(*x, other);
      sym.branch_update({body, elifs, other});
    } else {
      sym.branch_update({body, elifs, other});  // an elif node has no elif or else of its own
    }
  }

  // The frames nested in a statement, analysed once its frame's symbols are complete.
  void children(Stmt& st, const Symbols& sym) {
    switch (st.kind) {
      case SK::If:
        for (auto& b : st.bodies)
          for (auto& x : b) children(*x, sym);
        for (auto& x : st.else_body) children(*x, sym);
        break;
      case SK::For: {
        std::vector<std::string> params;
        param_target(st.target, params);
        params.push_back("loop");
        frame(st.body, &sym, st.body_init, params);
        frame(st.else_body, &sym, st.else_init, {});
        break;
      }
      case SK::SetBlock:
        frame(st.body, &sym, st.body_init, {});
        break;
      case SK::Generation:
        frame(st.body, &sym, st.body_init, {});
        break;
      case SK::Macro: {
        // parameters, then the defaults' loads, then the body
        Symbols msym;
        msym.parent = &sym;
        for (const auto& p : st.params) msym.param(p);
        for (const auto& d : st.defaults) loads(d.get(), msym);
        for (auto& x : st.body) visit(*x, msym);
        st.body_init = msym.init();
        for (auto& x : st.body) children(*x, msym);
        break;
      }
      case SK::Unsupported:
        frame(st.body, &sym, st.body_init, {});
        break;
      default:
        break;
    }
  }
};

// ============================================================================ interpreter

struct Scope;
using ScopeP = std::shared_ptr<Scope>;

struct Scope {
  ScopeP parent;
  std::vector<std::pair<std::string, Value>> vars;
  Value* find(const std::string& n) {
    for (auto& kv : vars)
      if (kv.first == n) return &kv.second;
    return nullptr;
  }
  void set(const std::string& n, Value v) {
    if (Value* p = find(n)) *p = std::move(v);
    else vars.emplace_back(n, std::move(v));
  }
};

ScopeP child_of(const ScopeP& parent) {
  auto s = std::make_shared<Scope>();
  s->parent = parent;
  return s;
}

enum class Flow { Normal, Break, Continue };

// Python-style argument binding: the values of `names` in order, nullopt where not given.
std::vector<std::optional<Value>> bind(const std::string& what, CallArgs& args, const std::vector<const char*>& names,
                                       size_t required) {
  std::vector<std::optional<Value>> out(names.size());
  if (args.pos.size() > names.size())
    fail("TypeError: " + what + " takes at most " + std::to_string(names.size()) + " argument(s) (" +
         std::to_string(args.pos.size()) + " given)");
  for (size_t k = 0; k < args.pos.size(); ++k) out[k] = args.pos[k];
  for (auto& [key, value] : args.kw) {
    size_t idx = names.size();
    for (size_t k = 0; k < names.size(); ++k)
      if (key == names[k]) idx = k;
    if (idx == names.size()) fail("TypeError: " + what + " got an unexpected keyword argument '" + key + "'");
    if (out[idx]) fail("TypeError: " + what + " got multiple values for argument '" + key + "'");
    out[idx] = value;
  }
  for (size_t k = 0; k < required; ++k)
    if (!out[k]) fail("TypeError: " + what + " missing required argument '" + names[k] + "'");
  return out;
}

void no_kwargs(const std::string& what, const CallArgs& args) {
  if (!args.kw.empty()) fail("TypeError: " + what + " takes no keyword arguments");
}

const std::string& need_str(const Value& v, const std::string& what) {
  if (v.kind != Kind::Str) fail("TypeError: " + what + " must be str, not " + type_name(v));
  return v.s;
}

int64_t need_int(const Value& v, const std::string& what) {
  if (!v.is_intlike()) fail("TypeError: '" + type_name(v) + "' object cannot be interpreted as an integer (" + what + ")");
  return v.as_int();
}

// ---------------------------------------------------------------- str methods

bool in_chars(char32_t c, const std::u32string* chars) {
  if (!chars) return py_isspace(c);
  return chars->find(c) != std::u32string::npos;
}

std::string py_strip(const std::string& str, const Value* chars_v, bool left, bool right) {
  std::u32string s = u32(str), chars;
  const std::u32string* cp = nullptr;
  if (chars_v && chars_v->kind != Kind::None) {
    chars = u32(need_str(*chars_v, "strip arg"));
    cp = &chars;
  }
  size_t b = 0, e = s.size();
  if (left)
    while (b < e && in_chars(s[b], cp)) ++b;
  if (right)
    while (e > b && in_chars(s[e - 1], cp)) --e;
  return utf8(s.substr(b, e - b));
}

std::vector<Value> py_split(const std::string& str, const Value* sep_v, int64_t maxsplit, bool from_right) {
  std::vector<std::string> parts;
  std::u32string s = u32(str);
  if (!sep_v || sep_v->kind == Kind::None) {
    // runs of whitespace, none at the ends
    if (!from_right) {
      size_t i = 0, n = s.size();
      while (true) {
        while (i < n && py_isspace(s[i])) ++i;
        if (i >= n) break;
        if (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit) {
          parts.push_back(utf8(s.substr(i)));
          break;
        }
        size_t j = i;
        while (j < n && !py_isspace(s[j])) ++j;
        parts.push_back(utf8(s.substr(i, j - i)));
        i = j;
      }
    } else {
      size_t e = s.size();
      while (true) {
        while (e > 0 && py_isspace(s[e - 1])) --e;
        if (e == 0) break;
        if (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit) {
          parts.push_back(utf8(s.substr(0, e)));
          break;
        }
        size_t j = e;
        while (j > 0 && !py_isspace(s[j - 1])) --j;
        parts.push_back(utf8(s.substr(j, e - j)));
        e = j;
      }
      std::reverse(parts.begin(), parts.end());
    }
  } else {
    const std::string& sep = need_str(*sep_v, "separator");
    if (sep.empty()) fail("ValueError: empty separator");
    if (!from_right) {
      size_t i = 0;
      while (true) {
        size_t j = maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit ? npos : str.find(sep, i);
        if (j == npos) {
          parts.push_back(str.substr(i));
          break;
        }
        parts.push_back(str.substr(i, j - i));
        i = j + sep.size();
      }
    } else {
      size_t e = str.size();
      while (true) {
        size_t j = npos;
        if (!(maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit) && e >= sep.size())
          j = str.rfind(sep, e - sep.size());
        if (j == npos) {
          parts.push_back(str.substr(0, e));
          break;
        }
        parts.push_back(str.substr(j + sep.size(), e - j - sep.size()));
        e = j;
      }
      std::reverse(parts.begin(), parts.end());
    }
  }
  std::vector<Value> out;
  for (auto& p : parts) out.push_back(Value::str(std::move(p)));
  return out;
}

std::string py_replace(const std::string& str, const std::string& old, const std::string& repl, int64_t count) {
  if (count < 0) count = std::numeric_limits<int64_t>::max();
  std::string out;
  if (old.empty()) {
    // inserted before every character and at the end
    std::u32string s = u32(str);
    int64_t done = 0;
    for (size_t k = 0; k <= s.size(); ++k) {
      if (done < count) {
        out += repl;
        ++done;
      }
      if (k < s.size()) append_utf8(out, s[k]);
    }
    return out;
  }
  size_t i = 0;
  int64_t done = 0;
  while (done < count) {
    size_t j = str.find(old, i);
    if (j == npos) break;
    out.append(str, i, j - i);
    out += repl;
    i = j + old.size();
    ++done;
  }
  out.append(str, i, npos);
  return out;
}

bool affix_match(const std::string& s, const Value& affix, bool prefix, const std::string& what) {
  auto one = [&](const Value& a) {
    const std::string& x = need_str(a, what + " first arg");
    if (x.size() > s.size()) return false;
    return prefix ? s.compare(0, x.size(), x) == 0 : s.compare(s.size() - x.size(), x.size(), x) == 0;
  };
  if (affix.kind == Kind::Seq && affix.seq_kind == SeqKind::Tuple) {
    for (const Value& a : *affix.seq)
      if (one(a)) return true;
    return false;
  }
  if (affix.kind != Kind::Str) fail("TypeError: " + what + " first arg must be str or a tuple of str, not " + type_name(affix));
  return one(affix);
}

const std::unordered_set<std::string>& python_str_methods() {
  static const std::unordered_set<std::string> s = {
      "capitalize",   "casefold",   "center",    "count",       "encode",    "endswith",     "expandtabs",   "find",
      "format",       "format_map", "index",     "isalnum",     "isalpha",   "isascii",      "isdecimal",    "isdigit",
      "isidentifier", "islower",    "isnumeric", "isprintable", "isspace",   "istitle",      "isupper",      "join",
      "ljust",        "lower",      "lstrip",    "maketrans",   "partition", "removeprefix", "removesuffix", "replace",
      "rfind",        "rindex",     "rjust",     "rpartition",  "rsplit",    "rstrip",       "split",        "splitlines",
      "startswith",   "strip",      "swapcase",  "title",       "translate", "upper",        "zfill"};
  return s;
}

Value str_method(const std::string& s, const std::string& name) {
  std::string what = "str." + name + "()";
  auto method = [&](std::function<Value(CallArgs&)> f) {
    return make_func(what, [f](Interp&, CallArgs& args) { return f(args); });
  };
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    bool left = name != "rstrip", right = name != "lstrip";
    return method([s, what, left, right](CallArgs& args) {
      no_kwargs(what, args);
      auto a = bind(what, args, {"chars"}, 0);
      return Value::str(py_strip(s, a[0] ? &*a[0] : nullptr, left, right));
    });
  }
  if (name == "startswith" || name == "endswith") {
    bool prefix = name == "startswith";
    return method([s, what, prefix](CallArgs& args) {
      no_kwargs(what, args);
      auto a = bind(what, args, {"prefix"}, 1);
      return Value::boolean(affix_match(s, *a[0], prefix, prefix ? "startswith" : "endswith"));
    });
  }
  if (name == "split" || name == "rsplit") {
    bool right = name == "rsplit";
    return method([s, what, right](CallArgs& args) {
      auto a = bind(what, args, {"sep", "maxsplit"}, 0);
      int64_t maxsplit = a[1] ? need_int(*a[1], "maxsplit") : -1;
      return Value::sequence(py_split(s, a[0] ? &*a[0] : nullptr, maxsplit, right));
    });
  }
  if (name == "upper" || name == "lower" || name == "title" || name == "capitalize") {
    return method([s, what, name](CallArgs& args) {
      no_kwargs(what, args);
      bind(what, args, {}, 0);
      if (name == "upper") return Value::str(py_upper(s));
      if (name == "lower") return Value::str(py_lower(s));
      if (name == "title") return Value::str(py_title(s));
      return Value::str(py_capitalize(s));
    });
  }
  if (name == "replace") {
    return method([s, what](CallArgs& args) {
      no_kwargs(what, args);
      auto a = bind(what, args, {"old", "new", "count"}, 2);
      int64_t count = a[2] ? need_int(*a[2], "count") : -1;
      return Value::str(py_replace(s, need_str(*a[0], "replace() argument 1"), need_str(*a[1], "replace() argument 2"), count));
    });
  }
  if (name == "join") {
    return method([s, what](CallArgs& args) {
      no_kwargs(what, args);
      auto a = bind(what, args, {"iterable"}, 1);
      std::string out;
      size_t k = 0;
      for (const Value& item : iterate(*a[0])) {
        if (item.kind != Kind::Str)
          fail("TypeError: sequence item " + std::to_string(k) + ": expected str instance, " + type_name(item) + " found");
        if (k++) out += s;
        out += item.s;
      }
      return Value::str(out);
    });
  }
  if (python_str_methods().count(name)) unsupported("the str method '" + name + "'");
  return Value::undefined("'str object' has no attribute '" + name + "'");
}

// ---------------------------------------------------------------- the interpreter

// jinja's LoopContext: items come one at a time through the loop's `if` filter, which is
// evaluated lazily (so it sees what the body changed); loop.last, nextitem and length look
// ahead only when asked, as jinja does.
struct LoopState {
  std::function<bool(Value&)> fetch;  // the next item that passes the filter; false at the end
  std::deque<Value> buffered;         // items fetched ahead by length
  bool buffered_all = false;
  std::optional<Value> after;  // the item peeked at
  bool peeked_end = false;
  Value current, before;
  int64_t index0 = -1;
  std::optional<int64_t> length, known_length;

  bool next_raw(Value& out) {
    if (!buffered.empty()) {
      out = buffered.front();
      buffered.pop_front();
      return true;
    }
    if (buffered_all) return false;
    return fetch(out);
  }
  bool advance(Value& out) {
    if (after) {
      out = *after;
      after.reset();
    } else if (peeked_end || !next_raw(out)) {
      return false;
    }
    before = current;
    current = out;
    ++index0;
    return true;
  }
  const Value* peek() {
    if (after) return &*after;
    if (peeked_end) return nullptr;
    Value v;
    if (next_raw(v)) {
      after = v;
      return &*after;
    }
    peeked_end = true;
    return nullptr;
  }
  int64_t get_length() {
    if (length) return *length;
    if (known_length) return *(length = known_length);
    Value v;
    std::deque<Value> rest;
    while (next_raw(v)) rest.push_back(v);
    buffered = std::move(rest);
    buffered_all = true;
    length = static_cast<int64_t>(buffered.size()) + index0 + 1 + (after ? 1 : 0);
    return *length;
  }
};

struct NotConst {};  // jinja's nodes.Impossible: the expression cannot be evaluated at compile time

// jinja's has_safe_repr: values its optimizer may write into the compiled code as literals.
bool has_safe_repr(const Value& v) {
  switch (v.kind) {
    case Kind::None:
    case Kind::Bool:
    case Kind::Int:
    case Kind::Float:
    case Kind::Str:
      return true;
    case Kind::Seq:
      if (v.seq_kind != SeqKind::List && v.seq_kind != SeqKind::Tuple && v.seq_kind != SeqKind::Range) return false;
      for (const Value& x : *v.seq)
        if (!has_safe_repr(x)) return false;
      return true;
    case Kind::Dict:
      for (const auto& kv : v.dict->items)
        if (!has_safe_repr(kv.first) || !has_safe_repr(kv.second)) return false;
      return true;
    default:
      return false;
  }
}

// A float literal inf or nan in the compiled code is a Python NameError.
const char* nonfinite_name(const Value& v) {
  if (v.kind == Kind::Float && !std::isfinite(v.f)) return std::isnan(v.f) ? "nan" : "inf";
  if (v.kind == Kind::Seq) {
    for (const Value& x : *v.seq)
      if (const char* n = nonfinite_name(x)) return n;
  }
  if (v.kind == Kind::Dict) {
    for (const auto& kv : v.dict->items) {
      if (const char* n = nonfinite_name(kv.first)) return n;
      if (const char* n = nonfinite_name(kv.second)) return n;
    }
  }
  return nullptr;
}

class Interp {
 public:
  Interp(const ChatTemplateProgram& prog, Value context) : prog_(prog), context_(std::move(context)) { install_builtins(); }

  ~Interp() {
    // macros hold the scope they were defined in, which holds them: break the cycles
    for (auto& s : macro_scopes_) s->vars.clear();
  }

  std::string render() {
    ScopeP root = enter_frame(nullptr, prog_.root_init);
    std::string out;
    exec(prog_.body, root, out);
    return out;
  }

  Value getattr(const Value& obj, const std::string& name);
  Value getitem(const Value& obj, const Value& key);
  Value apply_filter(const std::string& name, const Value& v, CallArgs& args);
  bool apply_test(const std::string& name, const Value& v, CallArgs& args);

  // jinja's Node.as_const for `e`: its value when the optimizer can compute it at compile time.
  // `refused` is set to the message when computing it needs something Lethe refuses.
  std::optional<Value> as_const(const Expr& e, std::string* refused = nullptr) {
    bool saved = const_mode_;
    const_mode_ = true;
    std::optional<Value> out;
    try {
      out = eval(e, std::make_shared<Scope>());
    } catch (const NotConst&) {
    } catch (const Failure& f) {
      if (refused && f.message.rfind("unsupported:", 0) == 0) *refused = f.message;
    } catch (const Error&) {
    }
    const_mode_ = saved;
    return out;
  }

  // Computes Expr::fold for every expression of the program (after parsing).
  void fold_body(Body& body);
  void fold_expr(Expr& e);

 private:
  Value lookup(const std::string& name, const ScopeP& sc) const {
    for (Scope* s = sc.get(); s; s = s->parent.get())
      if (Value* v = s->find(name)) return *v;
    if (const Value* v = dict_find(*context_.dict, name)) return *v;
    auto it = builtins_.find(name);
    if (it != builtins_.end()) return it->second;
    return Value::undefined("'" + name + "' is undefined");
  }

  // A new frame under `parent` with its locals initialised as jinja does at frame entry.
  ScopeP enter_frame(const ScopeP& parent, const FrameInit& init) {
    auto s = std::make_shared<Scope>();
    s->parent = parent;
    for (const auto& [name, undefined] : init)
      s->vars.emplace_back(name, undefined ? Value::undefined("'" + name + "' is undefined") : lookup(name, parent));
    return s;
  }

  void install_builtins();
  Value eval(const Expr& e, const ScopeP& sc);
  Value eval_inner(const Expr& e, const ScopeP& sc);
  CallArgs eval_args(const Expr& e, const ScopeP& sc);
  Flow exec(const Body& body, const ScopeP& sc, std::string& out);
  Flow exec_stmt(const Stmt& st, const ScopeP& sc, std::string& out);
  Flow exec_for(const Stmt& st, const ScopeP& sc, std::string& out);
  void assign(const Target& t, const Value& v, const ScopeP& sc);
  Value call_macro(const Stmt& m, const ScopeP& defining, CallArgs& args);
  Value attr_getter_apply(const Value& item, const Value& attribute, const Value* fallback);

  const ChatTemplateProgram& prog_;
  bool const_mode_ = false;
  Value context_;
  std::map<std::string, Value> builtins_;
  std::vector<ScopeP> macro_scopes_;
  Value block_value_;
  int macro_depth_ = 0;
};

Value Interp::getattr(const Value& obj, const std::string& name) {
  if (obj.is_undefined()) undefined_error(obj);
  bool underscore = !name.empty() && name[0] == '_';
  auto missing = [&]() { return Value::undefined("'" + object_type_repr(obj) + "' has no attribute '" + name + "'"); };
  switch (obj.kind) {
    case Kind::Dict: {
      if (!underscore) {
        if (name == "items" || name == "keys" || name == "values") {
          Value self = obj;
          SeqKind k = name == "items" ? SeqKind::Items : name == "keys" ? SeqKind::Keys : SeqKind::Values;
          std::string what = "dict." + name + "()";
          return make_func(what, [self, k, what](Interp&, CallArgs& args) {
            no_kwargs(what, args);
            bind(what, args, {}, 0);
            std::vector<Value> out;
            for (const auto& kv : self.dict->items) {
              if (k == SeqKind::Items) out.push_back(Value::tuple({kv.first, kv.second}));
              else out.push_back(k == SeqKind::Keys ? kv.first : kv.second);
            }
            return Value::sequence(std::move(out), k);
          });
        }
        if (name == "get") {
          Value self = obj;
          return make_func("dict.get()", [self](Interp&, CallArgs& args) {
            no_kwargs("dict.get()", args);
            auto a = bind("dict.get()", args, {"key", "default"}, 1);
            if (!hashable(*a[0])) fail("TypeError: unhashable type: '" + type_name(*a[0]) + "'");
            if (const Value* v = dict_find(*self.dict, *a[0])) return *v;
            return a[1] ? *a[1] : Value::none();
          });
        }
        if (name == "clear" || name == "pop" || name == "popitem" || name == "setdefault" || name == "update")
          return Value::undefined("access to attribute '" + name + "' of 'dict' object is unsafe.");
        if (name == "copy" || name == "fromkeys") unsupported("the dict method '" + name + "'");
      }
      if (const Value* v = dict_find(*obj.dict, name)) return *v;
      return missing();
    }
    case Kind::Namespace:
      if (const Value* v = dict_find(*obj.dict, name)) return *v;
      return missing();
    case Kind::Loop: {
      LoopState& L = *obj.loop;
      if (name == "index0") return Value::integer(L.index0);
      if (name == "index") return Value::integer(L.index0 + 1);
      if (name == "first") return Value::boolean(L.index0 == 0);
      if (name == "last") return Value::boolean(L.peek() == nullptr);
      if (name == "length") return Value::integer(L.get_length());
      if (name == "revindex") return Value::integer(L.get_length() - L.index0);
      if (name == "revindex0") return Value::integer(L.get_length() - L.index0 - 1);
      if (name == "depth") return Value::integer(1);
      if (name == "depth0") return Value::integer(0);
      if (name == "previtem") return L.index0 == 0 ? Value::undefined("there is no previous item") : L.before;
      if (name == "nextitem") {
        const Value* next = L.peek();
        return next ? *next : Value::undefined("there is no next item");
      }
      if (name == "cycle") {
        int64_t k = L.index0;
        return make_func("loop.cycle()", [k](Interp&, CallArgs& args) {
          no_kwargs("loop.cycle()", args);
          if (args.pos.empty()) fail("TypeError: no items for cycling given");
          return args.pos[static_cast<size_t>(k) % args.pos.size()];
        });
      }
      if (name == "changed") unsupported("loop.changed()");
      return missing();
    }
    case Kind::Str:
      if (underscore) return missing();
      return str_method(obj.s, name);
    case Kind::Seq:
      if (underscore) return missing();
      if (obj.seq_kind == SeqKind::List) {
        static const std::unordered_set<std::string> unsafe = {"append", "clear",  "extend",  "insert",
                                                               "pop",    "remove", "reverse", "sort"};
        if (unsafe.count(name)) return Value::undefined("access to attribute '" + name + "' of 'list' object is unsafe.");
        if (name == "copy" || name == "count" || name == "index") unsupported("the list method '" + name + "'");
      }
      if (obj.seq_kind == SeqKind::Tuple && (name == "count" || name == "index")) unsupported("the tuple method '" + name + "'");
      if (obj.seq_kind == SeqKind::Range &&
          (name == "start" || name == "stop" || name == "step" || name == "count" || name == "index"))
        unsupported("range." + name);
      if (obj.seq_kind == SeqKind::Items || obj.seq_kind == SeqKind::Keys) {
        if (name == "isdisjoint" || name == "mapping") unsupported(type_name(obj) + "." + name);
      }
      return missing();
    case Kind::Int:
    case Kind::Float:
    case Kind::Bool: {
      static const std::unordered_set<std::string> attrs = {
          "real",     "imag",       "numerator",        "denominator", "conjugate", "bit_length", "bit_count",
          "to_bytes", "from_bytes", "as_integer_ratio", "is_integer",  "hex",       "fromhex"};
      if (attrs.count(name)) unsupported("the number attribute '" + name + "'");
      return missing();
    }
    case Kind::None:
      return missing();
    case Kind::Func:
      unsupported("attributes of functions");
    case Kind::Undefined:
      break;
  }
  return missing();
}

Value Interp::getitem(const Value& obj, const Value& key) {
  if (obj.is_undefined()) undefined_error(obj);
  auto missing = [&]() {
    if (key.kind == Kind::Str) return Value::undefined("'" + object_type_repr(obj) + "' has no attribute '" + key.s + "'");
    return Value::undefined("'" + object_type_repr(obj) + "' has no element " + py_repr(key));
  };
  auto by_index = [&](size_t size, auto&& get) -> Value {
    int64_t idx = key.as_int();
    int64_t n = static_cast<int64_t>(size);
    if (idx < 0) idx += n;
    if (idx < 0 || idx >= n) return missing();
    return get(static_cast<size_t>(idx));
  };
  switch (obj.kind) {
    case Kind::Dict:
      if (hashable(key)) {
        if (const Value* v = dict_find(*obj.dict, key)) return *v;
      }
      if (key.kind == Kind::Str) return getattr(obj, key.s);
      return missing();
    case Kind::Seq:
      if (key.is_intlike() && (obj.seq_kind == SeqKind::List || obj.seq_kind == SeqKind::Tuple || obj.seq_kind == SeqKind::Range))
        return by_index(obj.seq->size(), [&](size_t k) { return (*obj.seq)[k]; });
      if (key.kind == Kind::Str) return getattr(obj, key.s);
      return missing();
    case Kind::Str:
      if (key.is_intlike()) {
        std::u32string s = u32(obj.s);
        return by_index(s.size(), [&](size_t k) { return Value::str(utf8(s[k])); });
      }
      if (key.kind == Kind::Str) return getattr(obj, key.s);
      return missing();
    case Kind::Func:
      unsupported("subscripting a function");
    default:
      if (key.kind == Kind::Str) return getattr(obj, key.s);
      return missing();
  }
}

bool sliceable(const Value& obj) {
  return obj.kind == Kind::Str || (obj.kind == Kind::Seq && (obj.seq_kind == SeqKind::List || obj.seq_kind == SeqKind::Tuple ||
                                                             obj.seq_kind == SeqKind::Range));
}

Value slice_of(const Value& obj, const Value* start_v, const Value* stop_v, const Value* step_v) {
  if (obj.is_undefined()) undefined_error(obj);
  auto idx = [](const Value* v, const char* what) -> std::optional<int64_t> {
    if (!v || v->kind == Kind::None) return std::nullopt;
    if (!v->is_intlike()) unsupported(std::string("a slice ") + what + " that is not an integer");
    return v->as_int();
  };
  std::optional<int64_t> start = idx(start_v, "start"), stop = idx(stop_v, "stop"), step_o = idx(step_v, "step");
  int64_t step = step_o.value_or(1);
  if (step == 0) fail("ValueError: slice step cannot be zero");
  auto indices = [&](int64_t len) {
    auto adjust = [&](std::optional<int64_t> v, int64_t dflt) {
      if (!v) return dflt;
      int64_t x = *v;
      if (x < 0) {
        x += len;
        if (x < 0) x = step < 0 ? -1 : 0;
      } else if (x >= len) {
        x = step < 0 ? len - 1 : len;
      }
      return x;
    };
    int64_t b = adjust(start, step < 0 ? len - 1 : 0), e = adjust(stop, step < 0 ? -1 : len);
    std::vector<size_t> out;
    for (int64_t k = b; step > 0 ? k < e : k > e; k += step) out.push_back(static_cast<size_t>(k));
    return out;
  };
  if (obj.kind == Kind::Str) {
    std::u32string s = u32(obj.s), r;
    for (size_t k : indices(static_cast<int64_t>(s.size()))) r.push_back(s[k]);
    return Value::str(utf8(r));
  }
  if (obj.kind == Kind::Seq &&
      (obj.seq_kind == SeqKind::List || obj.seq_kind == SeqKind::Tuple || obj.seq_kind == SeqKind::Range)) {
    std::vector<Value> r;
    for (size_t k : indices(static_cast<int64_t>(obj.seq->size()))) r.push_back((*obj.seq)[k]);
    Value out = Value::sequence(std::move(r), obj.seq_kind);
    if (obj.seq_kind == SeqKind::Range) {
      // range's own slicing: slice.indices(len), then the items at those indices
      int64_t len = static_cast<int64_t>(obj.seq->size());
      auto adjust = [&](const std::optional<int64_t>& v, int64_t dflt) {
        if (!v) return dflt;
        int64_t x = *v;
        if (x < 0) {
          x += len;
          if (x < 0) x = step < 0 ? -1 : 0;
        } else if (x >= len) {
          x = step < 0 ? len - 1 : len;
        }
        return x;
      };
      int64_t b = adjust(start, step < 0 ? len - 1 : 0), e = adjust(stop, step < 0 ? -1 : len);
      out.range_start = checked_add(obj.range_start, checked_mul(b, obj.range_step));
      out.range_stop = checked_add(obj.range_start, checked_mul(e, obj.range_step));
      out.range_step = checked_mul(step, obj.range_step);
    }
    return out;
  }
  // jinja compiles a slice to a plain Python subscript: no undefined fallback here
  if (obj.kind == Kind::Dict) fail("TypeError: unhashable type: 'slice'");
  fail("TypeError: '" + type_name(obj) + "' object is not subscriptable");
}

CallArgs Interp::eval_args(const Expr& e, const ScopeP& sc) {
  if (e.dyn_args) unsupported("*args or **kwargs in a call");
  CallArgs args;
  for (const auto& x : e.items) args.pos.push_back(eval(*x, sc));
  for (const auto& [k, x] : e.kwargs) args.kw.emplace_back(k, eval(*x, sc));
  return args;
}

Value Interp::eval(const Expr& e, const ScopeP& sc) {
  if (!const_mode_ && e.fold == Fold::Refused) {
    Failure f{e.folded.s};
    f.offset = e.offset;
    throw f;
  }
  if (!const_mode_ && e.fold == Fold::Safe) {
    // The optimizer wrote the value into the compiled code as a literal.
    if (const char* n = nonfinite_name(e.folded)) {
      Failure f{std::string("NameError: name '") + n + "' is not defined (jinja folded a constant to " + n + ")"};
      f.offset = e.offset;
      throw f;
    }
    return e.folded;
  }
  try {
    return eval_inner(e, sc);
  } catch (Failure& f) {
    if (f.offset == npos) f.offset = e.offset;
    throw;
  }
}

Value Interp::eval_inner(const Expr& e, const ScopeP& sc) {
  switch (e.kind) {
    case EK::Const:
      return e.value;
    case EK::Name:
      if (const_mode_) throw NotConst{};
      return lookup(e.name, sc);
    case EK::List:
    case EK::Tuple: {
      std::vector<Value> items;
      for (const auto& x : e.items) items.push_back(eval(*x, sc));
      return Value::sequence(std::move(items), e.kind == EK::Tuple ? SeqKind::Tuple : SeqKind::List);
    }
    case EK::Dict: {
      Value d = Value::new_dict();
      for (const auto& [k, v] : e.pairs) {
        Value key = eval(*k, sc);
        if (!hashable(key) || key.kind == Kind::Namespace) fail("TypeError: unhashable type: '" + type_name(key) + "'");
        dict_set(*d.dict, std::move(key), eval(*v, sc));
      }
      return d;
    }
    case EK::GetAttr:
      return getattr(eval(*e.a, sc), e.name);
    case EK::GetItem: {
      Value obj = eval(*e.a, sc);
      if (e.b->kind == EK::Slice) {
        const Expr& s = *e.b;
        Value start, stop, step;
        if (s.a) start = eval(*s.a, sc);
        if (s.b) stop = eval(*s.b, sc);
        if (s.c) step = eval(*s.c, sc);
        // jinja compiles a slice to a plain Python subscript (TypeError for the rest), but its
        // optimizer evaluates constants through the sandbox's getitem: an undefined value.
        if (const_mode_ && !obj.is_undefined() && !sliceable(obj))
          return Value::undefined("'" + object_type_repr(obj) + "' has no element slice");
        return slice_of(obj, s.a ? &start : nullptr, s.b ? &stop : nullptr, s.c ? &step : nullptr);
      }
      return getitem(obj, eval(*e.b, sc));
    }
    case EK::Call: {
      if (const_mode_) throw NotConst{};
      Value callee = eval(*e.a, sc);
      CallArgs args = eval_args(e, sc);
      if (callee.kind == Kind::Func) return callee.fn->call(*this, args);
      if (callee.is_undefined()) undefined_error(callee);
      fail("TypeError: '" + type_name(callee) + "' object is not callable");
    }
    case EK::Filter: {
      if (const_mode_ && (e.a->kind == EK::BlockValue || e.name == "map" || e.name == "select" || e.name == "reject" ||
                          e.name == "selectattr" || e.name == "rejectattr"))
        throw NotConst{};
      Value base = e.a->kind == EK::BlockValue ? block_value_ : eval(*e.a, sc);
      CallArgs args = eval_args(e, sc);
      return apply_filter(e.name, base, args);
    }
    case EK::Test: {
      Value base = eval(*e.a, sc);
      CallArgs args = eval_args(e, sc);
      return Value::boolean(apply_test(e.name, base, args));
    }
    case EK::Neg:
    case EK::Pos: {
      Value v = eval(*e.a, sc);
      if (v.is_undefined()) undefined_error(v);
      bool neg = e.kind == EK::Neg;
      if (v.is_intlike()) {
        if (!neg) return Value::integer(v.as_int());
        if (v.as_int() == std::numeric_limits<int64_t>::min()) overflow();
        return Value::integer(-v.as_int());
      }
      if (v.kind == Kind::Float) return Value::flt(neg ? -v.f : v.f);
      fail(std::string("TypeError: bad operand type for unary ") + (neg ? "-" : "+") + ": '" + type_name(v) + "'");
    }
    case EK::Not:
      return Value::boolean(!truthy(eval(*e.a, sc)));
    case EK::BinOp: {
      Value a = eval(*e.a, sc);
      Value b = eval(*e.b, sc);
      if (e.name == "**" && !const_mode_ && e.a->fold == Fold::Safe &&
          ((a.kind == Kind::Int && a.i < 0) || (a.kind == Kind::Float && std::signbit(a.f)))) {
        // A folded negative left operand is written as "-3", and Python reads "(-3 ** x)" as
        // -(3 ** x).
        Value pos = a.kind == Kind::Int ? (a.i == std::numeric_limits<int64_t>::min() ? (overflow(), a) : Value::integer(-a.i))
                                        : Value::flt(-a.f);
        Value r = binary_op("**", pos, b);
        if (r.kind == Kind::Int) {
          if (r.i == std::numeric_limits<int64_t>::min()) overflow();
          return Value::integer(-r.i);
        }
        return Value::flt(-r.f);
      }
      return binary_op(e.name, a, b);
    }
    case EK::Concat: {
      std::string out;
      for (const auto& x : e.items) out += py_str(eval(*x, sc));
      return Value::str(out);
    }
    case EK::And: {
      Value l = eval(*e.a, sc);
      return truthy(l) ? eval(*e.b, sc) : l;
    }
    case EK::Or: {
      Value l = eval(*e.a, sc);
      return truthy(l) ? l : eval(*e.b, sc);
    }
    case EK::Compare: {
      Value left = eval(*e.a, sc);
      for (const auto& [op, x] : e.ops) {
        Value right = eval(*x, sc);
        bool ok;
        if (op == "==") {
          ok = py_eq(left, right);
        } else if (op == "!=") {
          ok = !py_eq(left, right);
        } else if (op == "in") {
          ok = py_contains(right, left);
        } else if (op == "notin") {
          ok = !py_contains(right, left);
        } else {
          int c = py_cmp(left, right, op.c_str());
          if (op == "<") ok = c == -1;
          else if (op == "<=") ok = c == -1 || c == 0;
          else if (op == ">") ok = c == 1;
          else ok = c == 1 || c == 0;
        }
        if (!ok) return Value::boolean(false);
        left = std::move(right);
      }
      return Value::boolean(true);
    }
    case EK::CondExpr:
      if (truthy(eval(*e.a, sc))) return eval(*e.b, sc);
      if (e.c) return eval(*e.c, sc);
      return Value::undefined("the inline if-expression evaluated to false and no else section was defined.");
    case EK::BlockValue:
      return block_value_;
    case EK::NSRef:
    case EK::Slice:
      break;
  }
  fail("internal: unexpected expression");
}

Flow Interp::exec(const Body& body, const ScopeP& sc, std::string& out) {
  for (const auto& st : body) {
    Flow f = exec_stmt(*st, sc, out);
    if (f != Flow::Normal) return f;
  }
  return Flow::Normal;
}

void Interp::assign(const Target& t, const Value& v, const ScopeP& sc) {
  switch (t.kind) {
    case Target::K::Name:
      sc->set(t.name, v);
      return;
    case Target::K::NSRef: {
      Value ns = lookup(t.name, sc);
      if (ns.kind != Kind::Namespace) fail("TemplateRuntimeError: cannot assign attribute on non-namespace object");
      if (!t.attr.empty() && t.attr[0] == '_')
        fail("SecurityError: Chat templates cannot store underscore-prefixed attributes on a namespace, but got " +
             str_repr(t.attr) + ". Please rename the attribute.");
      dict_set(*ns.dict, t.attr, v);
      return;
    }
    case Target::K::Tuple: {
      std::vector<Value> items = iterate(v);
      if (items.size() > t.items.size())
        fail("ValueError: too many values to unpack (expected " + std::to_string(t.items.size()) + ")");
      if (items.size() < t.items.size())
        fail("ValueError: not enough values to unpack (expected " + std::to_string(t.items.size()) + ", got " +
             std::to_string(items.size()) + ")");
      for (size_t k = 0; k < items.size(); ++k) assign(t.items[k], items[k], sc);
      return;
    }
  }
}

Flow Interp::exec_for(const Stmt& st, const ScopeP& sc, std::string& out) {
  if (st.recursive) unsupported("recursive for loops");
  auto source = std::make_shared<std::vector<Value>>(iterate(eval(*st.expr, sc)));
  auto state = std::make_shared<LoopState>();
  auto src_pos = std::make_shared<size_t>(0);
  const Stmt* stp = &st;
  std::weak_ptr<Scope> weak_sc = sc;  // no cycle when the loop object is stored in a namespace
  state->fetch = [this, source, src_pos, stp, weak_sc](Value& item) {
    while (*src_pos < source->size()) {
      Value candidate = (*source)[(*src_pos)++];
      if (!stp->filter) {
        item = std::move(candidate);
        return true;
      }
      ScopeP outer = weak_sc.lock();
      if (!outer) unsupported("using a loop object after its loop has ended");
      ScopeP fs = child_of(outer);
      assign(stp->target, candidate, fs);
      if (truthy(eval(*stp->filter, fs))) {
        item = std::move(candidate);
        return true;
      }
    }
    return false;
  };
  if (!st.filter) state->known_length = static_cast<int64_t>(source->size());
  // jinja clears its "run the else block" flag at the end of an iteration's body, so a body
  // that always ends in break or continue leaves it set.
  bool run_else = true;
  Value item;
  while (state->advance(item)) {
    ScopeP it = enter_frame(sc, st.body_init);
    assign(st.target, item, it);
    Value loop;
    loop.kind = Kind::Loop;
    loop.loop = state;
    it->set("loop", loop);
    Flow f = exec(st.body, it, out);
    if (f == Flow::Break) break;
    if (f == Flow::Continue) continue;
    run_else = false;
  }
  if (run_else && !st.else_body.empty()) {
    // the else block is compiled into the enclosing loop: its break/continue act there
    ScopeP es = enter_frame(sc, st.else_init);
    return exec(st.else_body, es, out);
  }
  return Flow::Normal;
}

Value Interp::call_macro(const Stmt& m, const ScopeP& defining, CallArgs& args) {
  if (m.macro_special) unsupported("a macro that uses varargs, kwargs or caller");
  size_t count = m.params.size();
  if (args.pos.size() > count)
    fail("TypeError: macro '" + m.text + "' takes not more than " + std::to_string(count) + " argument(s)");
  ScopeP sc = enter_frame(defining, m.body_init);
  std::vector<std::optional<Value>> bound(count);
  for (size_t k = 0; k < args.pos.size(); ++k) bound[k] = args.pos[k];
  std::vector<std::pair<std::string, Value>> rest = args.kw;
  if (args.pos.size() != count) {
    for (size_t k = args.pos.size(); k < count; ++k) {
      for (auto it = rest.begin(); it != rest.end(); ++it) {
        if (it->first == m.params[k]) {
          bound[k] = it->second;
          rest.erase(it);
          break;
        }
      }
    }
  }
  if (!rest.empty()) fail("TypeError: macro '" + m.text + "' takes no keyword argument '" + rest.front().first + "'");
  size_t first_default = count - m.defaults.size();
  for (size_t k = 0; k < count; ++k) {
    if (bound[k]) {
      sc->set(m.params[k], *bound[k]);
    } else if (k >= first_default) {
      sc->set(m.params[k], eval(*m.defaults[k - first_default], sc));
    } else {
      sc->set(m.params[k], Value::undefined("parameter '" + m.params[k] + "' was not provided"));
    }
  }
  if (++macro_depth_ > 100) {
    --macro_depth_;
    fail("RecursionError: macro calls nested too deeply");
  }
  std::string out;
  try {
    exec(m.body, sc, out);
  } catch (...) {
    --macro_depth_;
    throw;
  }
  --macro_depth_;
  return Value::str(out);
}

Flow Interp::exec_stmt(const Stmt& st, const ScopeP& sc, std::string& out) {
  try {
    switch (st.kind) {
      case SK::Data:
        out += st.text;
        return Flow::Normal;
      case SK::Print:
        for (const auto& e : st.exprs) {
          // an output child that is constant is rendered at compile time, whatever its value
          if (e->fold == Fold::Safe || e->fold == Fold::Unsafe) {
            try {
              out += py_str(e->folded);
            } catch (Failure& f) {
              if (f.offset == npos) f.offset = e->offset;
              throw;
            }
          } else {
            out += py_str(eval(*e, sc));
          }
        }
        return Flow::Normal;
      case SK::If:
        for (size_t k = 0; k < st.exprs.size(); ++k)
          if (truthy(eval(*st.exprs[k], sc))) return exec(st.bodies[k], sc, out);
        return exec(st.else_body, sc, out);
      case SK::For:
        return exec_for(st, sc, out);
      case SK::Set:
        assign(st.target, eval(*st.expr, sc), sc);
        return Flow::Normal;
      case SK::SetBlock: {
        ScopeP inner = enter_frame(sc, st.body_init);
        std::string buf;
        // the body is compiled inline: break/continue leave the enclosing loop, unassigned
        if (Flow f = exec(st.body, inner, buf); f != Flow::Normal) return f;
        Value v = Value::str(buf);
        if (st.filter) {
          Value saved = block_value_;
          block_value_ = v;
          try {
            v = eval(*st.filter, sc);
          } catch (...) {
            block_value_ = saved;
            throw;
          }
          block_value_ = saved;
        }
        assign(st.target, v, sc);
        return Flow::Normal;
      }
      case SK::Macro: {
        const Stmt* m = &st;
        ScopeP defining = sc;
        sc->set(st.text, make_func("macro '" + st.text + "'",
                                   [m, defining](Interp& in, CallArgs& args) { return in.call_macro(*m, defining, args); }));
        macro_scopes_.push_back(sc);
        return Flow::Normal;
      }
      case SK::Break:
        return Flow::Break;
      case SK::Continue:
        return Flow::Continue;
      case SK::Generation: {
        ScopeP inner = enter_frame(sc, st.body_init);
        exec(st.body, inner, out);
        return Flow::Normal;
      }
      case SK::Unsupported:
        unsupported(st.text);
    }
  } catch (Failure& f) {
    if (f.offset == npos) f.offset = st.offset;
    throw;
  }
  return Flow::Normal;
}

void Interp::fold_expr(Expr& e) {
  for (auto& x : e.items) fold_expr(*x);
  for (auto& [k, v] : e.pairs) {
    fold_expr(*k);
    fold_expr(*v);
  }
  for (auto& kv : e.kwargs) fold_expr(*kv.second);
  for (auto& kv : e.ops) fold_expr(*kv.second);
  for (Expr* x : {e.a.get(), e.b.get(), e.c.get()})
    if (x) fold_expr(*x);
  if (e.kind == EK::Const || e.kind == EK::Slice || e.kind == EK::NSRef || e.kind == EK::BlockValue) return;
  // Without short-circuiting, a node evaluates all its children: one that is not constant
  // makes it not constant (this keeps folding linear in long operator chains).
  if (e.kind != EK::And && e.kind != EK::Or && e.kind != EK::CondExpr && e.kind != EK::Compare) {
    bool blocked = false;
    auto no = [&](const Expr* x) {
      if (x && x->kind != EK::Slice && x->kind != EK::Const && x->fold == Fold::No) blocked = true;
    };
    for (const auto& x : e.items) no(x.get());
    for (const auto& [k, v] : e.pairs) {
      no(k.get());
      no(v.get());
    }
    for (const auto& kv : e.kwargs) no(kv.second.get());
    no(e.a.get());
    no(e.b.get());
    no(e.c.get());
    if (e.b && e.b->kind == EK::Slice) {
      no(e.b->a.get());
      no(e.b->b.get());
      no(e.b->c.get());
    }
    if (blocked) return;
  }
  std::string refused;
  if (std::optional<Value> v = as_const(e, &refused)) {
    e.fold = has_safe_repr(*v) ? Fold::Safe : Fold::Unsafe;
    e.folded = std::move(*v);
  } else if (!refused.empty()) {
    e.fold = Fold::Refused;
    e.folded = Value::str(refused);
  }
}

void Interp::fold_body(Body& body) {
  for (auto& st : body) {
    for (Expr* x : {st->expr.get(), st->filter.get()})
      if (x) fold_expr(*x);
    for (auto& e : st->exprs) fold_expr(*e);
    for (auto& e : st->defaults) fold_expr(*e);
    for (auto& b : st->bodies) fold_body(b);
    fold_body(st->body);
    fold_body(st->else_body);
  }
}

// ---------------------------------------------------------------- globals

// dict(*args, **kwargs)
std::shared_ptr<DictData> build_dict(const std::string& what, CallArgs& args) {
  auto d = std::make_shared<DictData>();
  if (args.pos.size() > 1) fail("TypeError: " + what + " expected at most 1 argument, got " + std::to_string(args.pos.size()));
  if (!args.pos.empty()) {
    const Value& src = args.pos[0];
    if (src.kind == Kind::Dict) {
      d->items = src.dict->items;
    } else {
      size_t k = 0;
      for (const Value& pair : iterate(src)) {
        std::vector<Value> kv = iterate(pair);
        if (kv.size() != 2)
          fail("ValueError: dictionary update sequence element #" + std::to_string(k) + " has length " +
               std::to_string(kv.size()) + "; 2 is required");
        if (!hashable(kv[0]) || kv[0].kind == Kind::Namespace) fail("TypeError: unhashable type: '" + type_name(kv[0]) + "'");
        dict_set(*d, kv[0], kv[1]);
        ++k;
      }
    }
  }
  for (auto& [k, v] : args.kw) dict_set(*d, k, v);
  return d;
}

std::string strftime_now(const std::string& format) {
  for (size_t k = 0; k + 1 < format.size(); ++k) {
    if (format[k] != '%') continue;
    char c = format[k + 1];
    if (c == 'f' || c == 'z' || c == 'Z' || c == ':') unsupported(std::string("strftime_now with %") + c);
    ++k;
  }
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  if (format.empty()) return "";
  std::vector<char> buf(256);
  while (true) {
    size_t n = std::strftime(buf.data(), buf.size(), format.c_str(), &tm);
    if (n > 0) return std::string(buf.data(), n);
    if (buf.size() > (1u << 16)) return "";
    buf.resize(buf.size() * 4);
  }
}

void Interp::install_builtins() {
  builtins_["range"] = make_func("range()", [](Interp&, CallArgs& args) {
    no_kwargs("range()", args);
    if (args.pos.empty() || args.pos.size() > 3)
      fail("TypeError: range expected at most 3 arguments, got " + std::to_string(args.pos.size()));
    int64_t start = 0, stop, step = 1;
    if (args.pos.size() == 1) {
      stop = need_int(args.pos[0], "range()");
    } else {
      start = need_int(args.pos[0], "range()");
      stop = need_int(args.pos[1], "range()");
      if (args.pos.size() == 3) step = need_int(args.pos[2], "range()");
    }
    if (step == 0) fail("ValueError: range() arg 3 must not be zero");
    __int128 len = 0;
    if (step > 0 && start < stop) len = (static_cast<__int128>(stop) - start + step - 1) / step;
    if (step < 0 && start > stop) len = (static_cast<__int128>(start) - stop - step - 1) / -step;
    if (len > 100000) fail("OverflowError: Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
    std::vector<Value> out;
    for (__int128 k = 0; k < len; ++k) out.push_back(Value::integer(static_cast<int64_t>(start + k * step)));
    Value r = Value::sequence(std::move(out), SeqKind::Range);
    r.range_start = start;
    r.range_stop = stop;
    r.range_step = step;
    return r;
  });
  builtins_["namespace"] = make_func("namespace()", [](Interp&, CallArgs& args) {
    Value ns = Value::new_namespace();
    ns.dict = build_dict("namespace()", args);
    for (const auto& kv : ns.dict->items) {
      if (kv.first.kind == Kind::Str && !kv.first.s.empty() && kv.first.s[0] == '_')
        fail("SecurityError: Chat templates cannot store underscore-prefixed attributes on a namespace, but got " +
             str_repr(kv.first.s) + ". Please rename the attribute.");
    }
    return ns;
  });
  builtins_["dict"] = make_func("dict()", [](Interp&, CallArgs& args) {
    Value d = Value::new_dict();
    d.dict = build_dict("dict()", args);
    return d;
  });
  builtins_["raise_exception"] = make_func("raise_exception()", [](Interp&, CallArgs& args) -> Value {
    auto a = bind("raise_exception()", args, {"message"}, 1);
    Failure f;
    f.message = py_str(*a[0]);
    f.raised = true;
    throw f;
  });
  builtins_["strftime_now"] = make_func("strftime_now()", [](Interp&, CallArgs& args) {
    auto a = bind("strftime_now()", args, {"format"}, 1);
    return Value::str(strftime_now(need_str(*a[0], "strftime_now() argument")));
  });
  for (const char* n : {"lipsum", "cycler", "joiner"}) {
    std::string name = n;
    builtins_[name] = make_func(name, [name](Interp&, CallArgs&) -> Value { unsupported("the global '" + name + "'"); });
  }
}

// ---------------------------------------------------------------- filters

JsonOptions json_options(std::vector<std::optional<Value>>& a) {
  JsonOptions o;
  o.ensure_ascii = a[0] && truthy(*a[0]);
  if (a[1] && a[1]->kind != Kind::None) {
    o.has_indent = true;
    o.indent_value = *a[1];
    o.item_sep = ",";
  }
  if (a[2] && a[2]->kind != Kind::None) {
    std::vector<Value> seps = iterate(*a[2]);
    if (seps.size() != 2) fail("ValueError: separators must be a pair of strings");
    o.item_sep = need_str(seps[0], "item separator");
    o.key_sep = need_str(seps[1], "key separator");
  }
  o.sort_keys = a[3] && truthy(*a[3]);
  return o;
}

// Python's int(str) for base 10, and float(str); nullopt where Python raises ValueError.
// The text Python's int()/float() would parse; nullopt when it certainly is not a number.
std::optional<std::string> py_number_text(const std::string& s) {
  std::string t = py_strip(s, nullptr, true, true);
  bool ascii = true;
  for (char32_t c : u32(t)) {
    if (c < 0x80) continue;
    ascii = false;
    if (u_charType(static_cast<UChar32>(c)) == U_DECIMAL_DIGIT_NUMBER)
      unsupported("converting a string with non-ASCII digits to a number");
  }
  if (!ascii) return std::nullopt;
  return t;
}

bool digitpart(const std::string& t, size_t& p, std::string& out) {
  size_t start = p;
  while (p < t.size()) {
    if (std::isdigit(static_cast<unsigned char>(t[p]))) {
      out.push_back(t[p++]);
    } else if (t[p] == '_' && p > start && p + 1 < t.size() && std::isdigit(static_cast<unsigned char>(t[p + 1])) &&
               std::isdigit(static_cast<unsigned char>(t[p - 1]))) {
      ++p;
    } else {
      break;
    }
  }
  return p > start;
}

std::optional<int64_t> parse_py_int(const std::string& s) {
  std::optional<std::string> text = py_number_text(s);
  if (!text) return std::nullopt;
  const std::string& t = *text;
  size_t p = 0;
  bool neg = false;
  if (p < t.size() && (t[p] == '+' || t[p] == '-')) neg = t[p++] == '-';
  std::string digits;
  if (!digitpart(t, p, digits) || p != t.size()) return std::nullopt;
  errno = 0;
  unsigned long long v = std::strtoull(digits.c_str(), nullptr, 10);
  if (errno == ERANGE || v > static_cast<unsigned long long>(std::numeric_limits<int64_t>::max())) overflow();
  return neg ? -static_cast<int64_t>(v) : static_cast<int64_t>(v);
}

std::optional<double> parse_py_float(const std::string& s) {
  std::optional<std::string> text = py_number_text(s);
  if (!text) return std::nullopt;
  const std::string& t = *text;
  size_t p = 0;
  std::string lit;
  if (p < t.size() && (t[p] == '+' || t[p] == '-')) lit.push_back(t[p++]);
  std::string rest = t.substr(p), lower;
  for (char c : rest) lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  if (lower == "inf" || lower == "infinity") return lit == "-" ? -INFINITY : INFINITY;
  if (lower == "nan") return NAN;
  bool int_part = digitpart(t, p, lit);
  bool frac_part = false;
  if (p < t.size() && t[p] == '.') {
    lit.push_back('.');
    ++p;
    frac_part = digitpart(t, p, lit);
  }
  if (!int_part && !frac_part) return std::nullopt;
  if (p < t.size() && (t[p] == 'e' || t[p] == 'E')) {
    lit.push_back('e');
    ++p;
    if (p < t.size() && (t[p] == '+' || t[p] == '-')) lit.push_back(t[p++]);
    if (!digitpart(t, p, lit)) return std::nullopt;
  }
  if (p != t.size()) return std::nullopt;
  return std::strtod(lit.c_str(), nullptr);
}

Value float_to_int(double f) {
  if (std::isnan(f)) return Value();  // ValueError
  if (std::isinf(f)) fail("OverflowError: cannot convert float infinity to integer");
  double t = std::trunc(f);
  if (t < -9223372036854775808.0 || t >= 9223372036854775808.0) overflow();
  return Value::integer(static_cast<int64_t>(t));
}

Value Interp::attr_getter_apply(const Value& item, const Value& attribute, const Value* fallback) {
  std::vector<Value> parts;
  if (attribute.kind == Kind::Str) {
    size_t i = 0;
    while (true) {
      size_t j = attribute.s.find('.', i);
      std::string part = attribute.s.substr(i, j == npos ? npos : j - i);
      bool digits = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
      if (digits) {
        auto v = parse_py_int(part);
        parts.push_back(Value::integer(*v));
      } else {
        parts.push_back(Value::str(part));
      }
      if (j == npos) break;
      i = j + 1;
    }
  } else if (attribute.kind != Kind::None) {
    parts.push_back(attribute);
  }
  Value cur = item;
  for (const Value& part : parts) {
    cur = getitem(cur, part);
    if (fallback && cur.is_undefined()) cur = *fallback;
  }
  return cur;
}

Value Interp::apply_filter(const std::string& name, const Value& v, CallArgs& args) {
  const std::string what = "filter '" + name + "'";
  auto none = [&]() { bind(what, args, {}, 0); };
  auto generator = [](std::vector<Value> items) { return Value::sequence(std::move(items), SeqKind::Generator); };
  if (name == "trim") {
    auto a = bind(what, args, {"chars"}, 0);
    return Value::str(py_strip(py_str(v), a[0] ? &*a[0] : nullptr, true, true));
  }
  if (name == "length" || name == "count") {
    none();
    return Value::integer(static_cast<int64_t>(py_len(v)));
  }
  if (name == "upper" || name == "lower" || name == "capitalize" || name == "string") {
    none();
    std::string s = py_str(v);
    if (name == "upper") return Value::str(py_upper(s));
    if (name == "lower") return Value::str(py_lower(s));
    if (name == "capitalize") return Value::str(py_capitalize(s));
    return Value::str(s);
  }
  if (name == "indent") {
    auto a = bind(what, args, {"width", "first", "blank"}, 0);
    std::string indention = "    ";
    if (a[0]) {
      if (a[0]->kind == Kind::Str) {
        indention = a[0]->s;
      } else if (a[0]->is_intlike()) {
        indention = std::string(static_cast<size_t>(std::max<int64_t>(0, std::min<int64_t>(a[0]->as_int(), 1 << 16))), ' ');
      } else {
        fail("TypeError: can't multiply sequence by non-int of type '" + type_name(*a[0]) + "'");
      }
    }
    if (v.is_undefined()) undefined_error(v);
    if (v.kind != Kind::Str) fail("TypeError: unsupported operand type(s) for +=: '" + type_name(v) + "' and 'str'");
    // (s + "\n").splitlines(), as jinja does
    std::u32string text = u32(v.s + "\n");
    std::vector<std::string> lines;
    size_t i = 0;
    while (i < text.size()) {
      size_t j = i;
      auto is_break = [](char32_t c) {
        return c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || c == 0x1C || c == 0x1D || c == 0x1E || c == 0x85 ||
               c == 0x2028 || c == 0x2029;
      };
      while (j < text.size() && !is_break(text[j])) ++j;
      lines.push_back(utf8(text.substr(i, j - i)));
      if (j < text.size() && text[j] == '\r' && j + 1 < text.size() && text[j + 1] == '\n') ++j;
      i = j + 1;
    }
    std::string out;
    if (a[2] && truthy(*a[2])) {
      for (size_t k = 0; k < lines.size(); ++k) out += (k ? "\n" + indention : std::string()) + lines[k];
    } else {
      out = lines.empty() ? std::string() : lines[0];
      for (size_t k = 1; k < lines.size(); ++k) out += "\n" + (lines[k].empty() ? std::string() : indention) + lines[k];
    }
    if (a[1] && truthy(*a[1])) out = indention + out;
    return Value::str(out);
  }
  if (name == "title") {
    // jinja's own title: words start after runs of whitespace and -({[<, each word is
    // item[0].upper() + item[1:].lower()
    none();
    std::u32string text = u32(py_str(v));
    auto is_sep = [](char32_t c) { return py_isspace(c) || c == '-' || c == '(' || c == '{' || c == '[' || c == '<'; };
    std::string out;
    size_t i = 0;
    while (i < text.size()) {
      size_t j = i + 1;
      bool sep = is_sep(text[i]);
      while (j < text.size() && is_sep(text[j]) == sep) ++j;
      out += py_upper(utf8(text[i])) + py_lower(utf8(text.substr(i + 1, j - i - 1)));
      i = j;
    }
    return Value::str(out);
  }
  if (name == "tojson") {
    auto a = bind(what, args, {"ensure_ascii", "indent", "separators", "sort_keys"}, 0);
    JsonOptions o = json_options(a);
    // json.dumps encodes a str directly; anything else goes through an encoder that turns the
    // indent into a string first
    if (o.has_indent && v.kind != Kind::Str) o.indent();
    std::string out;
    json_dump(out, v, o, 0);
    return Value::str(out);
  }
  if (name == "join") {
    auto a = bind(what, args, {"d", "attribute"}, 0);
    std::string sep = a[0] ? py_str(*a[0]) : "";
    std::string out;
    size_t k = 0;
    for (const Value& item : iterate(v)) {
      if (k++) out += sep;
      out += py_str(a[1] && a[1]->kind != Kind::None ? attr_getter_apply(item, *a[1], nullptr) : item);
    }
    return Value::str(out);
  }
  if (name == "default" || name == "d") {
    auto a = bind(what, args, {"default_value", "boolean"}, 0);
    bool boolean = a[1] && truthy(*a[1]);
    if (v.is_undefined() || (boolean && !truthy(v))) return a[0] ? *a[0] : Value::str("");
    return v;
  }
  if (name == "first") {
    none();
    if (v.kind == Kind::Seq && v.seq_kind == SeqKind::Generator) {
      if (v.gen->pos < v.seq->size()) return (*v.seq)[v.gen->pos++];
      return Value::undefined("No first item, sequence was empty.");
    }
    std::vector<Value> items = iterate(v);
    if (items.empty()) return Value::undefined("No first item, sequence was empty.");
    return items.front();
  }
  if (name == "last") {
    none();
    if (v.kind == Kind::Seq && v.seq_kind == SeqKind::Generator) fail("TypeError: 'generator' object is not reversible");
    std::vector<Value> items = iterate(v);
    if (items.empty()) return Value::undefined("No last item, sequence was empty.");
    return items.back();
  }
  if (name == "list") {
    none();
    return Value::sequence(iterate(v));
  }
  if (name == "replace") {
    auto a = bind(what, args, {"old", "new", "count"}, 2);
    int64_t count = a[2] && a[2]->kind != Kind::None ? need_int(*a[2], "replace count") : -1;
    return Value::str(py_replace(py_str(v), py_str(*a[0]), py_str(*a[1]), count));
  }
  if (name == "items") {
    none();
    if (v.is_undefined()) return generator({});
    if (v.kind != Kind::Dict) fail("TypeError: Can only get item pairs from a mapping.");
    std::vector<Value> out;
    for (const auto& kv : v.dict->items) out.push_back(Value::tuple({kv.first, kv.second}));
    return generator(std::move(out));
  }
  if (name == "reverse") {
    none();
    if (v.kind == Kind::Str) {
      std::u32string s = u32(v.s);
      std::reverse(s.begin(), s.end());
      return Value::str(utf8(s));
    }
    if (v.kind == Kind::Seq && v.seq_kind == SeqKind::Generator) {
      std::vector<Value> items = iterate(v);
      std::reverse(items.begin(), items.end());
      return Value::sequence(std::move(items));
    }
    if (v.kind == Kind::Seq || v.kind == Kind::Dict || v.is_undefined()) {
      std::vector<Value> items = iterate(v);
      std::reverse(items.begin(), items.end());
      return generator(std::move(items));
    }
    fail("FilterArgumentError: argument must be iterable");
  }
  if (name == "int") {
    auto a = bind(what, args, {"default", "base"}, 0);
    Value dflt = a[0] ? *a[0] : Value::integer(0);
    if (v.is_undefined()) undefined_error(v);
    if (v.kind == Kind::Str) {
      if (a[1] && !(a[1]->is_intlike() && a[1]->as_int() == 10)) unsupported("the int filter with a base other than 10");
      if (auto i = parse_py_int(v.s)) return Value::integer(*i);
      if (auto f = parse_py_float(v.s)) {
        Value r = float_to_int(*f);
        return r.is_undefined() ? dflt : r;
      }
      return dflt;
    }
    if (v.is_intlike()) return Value::integer(v.as_int());
    if (v.kind == Kind::Float) {
      Value r = float_to_int(v.f);
      return r.is_undefined() ? dflt : r;
    }
    return dflt;
  }
  if (name == "float") {
    auto a = bind(what, args, {"default"}, 0);
    Value dflt = a[0] ? *a[0] : Value::flt(0.0);
    if (v.is_undefined()) undefined_error(v);
    if (v.kind == Kind::Str) {
      if (auto f = parse_py_float(v.s)) return Value::flt(*f);
      return dflt;
    }
    if (v.is_number()) return Value::flt(v.as_double());
    return dflt;
  }
  if (name == "abs") {
    none();
    if (v.is_undefined()) undefined_error(v);
    if (v.is_intlike()) {
      if (v.as_int() == std::numeric_limits<int64_t>::min()) overflow();
      return Value::integer(std::llabs(v.as_int()));
    }
    if (v.kind == Kind::Float) return Value::flt(std::fabs(v.f));
    fail("TypeError: bad operand type for abs(): '" + type_name(v) + "'");
  }
  if (name == "map") {
    std::vector<Value> out;
    if (!truthy(v)) return generator({});
    const Value* attribute = nullptr;
    for (const auto& kv : args.kw)
      if (kv.first == "attribute") attribute = &kv.second;
    if (args.pos.empty() && attribute) {
      const Value* fallback = nullptr;
      for (const auto& kv : args.kw) {
        if (kv.first == "default") {
          if (kv.second.kind != Kind::None) fallback = &kv.second;
        } else if (kv.first != "attribute") {
          fail("FilterArgumentError: Unexpected keyword argument '" + kv.first + "'");
        }
      }
      for (const Value& item : iterate(v)) out.push_back(attr_getter_apply(item, *attribute, fallback));
      return generator(std::move(out));
    }
    if (args.pos.empty()) fail("FilterArgumentError: map requires a filter argument");
    std::string fname = need_str(args.pos[0], "map filter name");
    for (const Value& item : iterate(v)) {
      CallArgs rest;
      rest.pos.assign(args.pos.begin() + 1, args.pos.end());
      rest.kw = args.kw;
      out.push_back(apply_filter(fname, item, rest));
    }
    return generator(std::move(out));
  }
  if (name == "select" || name == "reject" || name == "selectattr" || name == "rejectattr") {
    bool lookup_attr = name == "selectattr" || name == "rejectattr";
    bool reject = name == "reject" || name == "rejectattr";
    if (!truthy(v)) return generator({});
    size_t off = lookup_attr ? 1 : 0;
    if (lookup_attr && args.pos.empty()) fail("FilterArgumentError: Missing parameter for attribute name");
    std::optional<std::string> test;
    if (args.pos.size() > off) test = need_str(args.pos[off], "test name");
    std::vector<Value> out;
    for (const Value& item : iterate(v)) {
      Value x = lookup_attr ? attr_getter_apply(item, args.pos[0], nullptr) : item;
      bool r;
      if (test) {
        CallArgs targs;
        targs.pos.assign(args.pos.begin() + static_cast<std::ptrdiff_t>(off + 1), args.pos.end());
        targs.kw = args.kw;
        r = apply_test(*test, x, targs);
      } else {
        r = truthy(x);
      }
      if (r != reject) out.push_back(item);
    }
    return generator(std::move(out));
  }
  unsupported("the filter '" + name + "'");
}

// ---------------------------------------------------------------- tests

bool Interp::apply_test(const std::string& name, const Value& v, CallArgs& args) {
  const std::string what = "test '" + name + "'";
  auto none = [&]() { bind(what, args, {}, 0); };
  auto other = [&]() { return *bind(what, args, {"other"}, 1)[0]; };
  if (name == "defined") return none(), !v.is_undefined();
  if (name == "undefined") return none(), v.is_undefined();
  if (name == "none") return none(), v.kind == Kind::None;
  if (name == "string") return none(), v.kind == Kind::Str;
  if (name == "mapping") return none(), v.kind == Kind::Dict;
  if (name == "number") return none(), v.is_number();
  if (name == "integer") return none(), v.kind == Kind::Int;
  if (name == "float") return none(), v.kind == Kind::Float;
  if (name == "boolean") return none(), v.kind == Kind::Bool;
  if (name == "true") return none(), v.kind == Kind::Bool && v.b;
  if (name == "false") return none(), v.kind == Kind::Bool && !v.b;
  if (name == "callable") return none(), v.kind == Kind::Func || v.kind == Kind::Undefined || v.kind == Kind::Loop;
  if (name == "iterable") {
    none();
    return v.kind == Kind::Str || v.kind == Kind::Seq || v.kind == Kind::Dict || v.is_undefined();
  }
  if (name == "sequence") {
    none();
    if (v.kind == Kind::Seq) return v.seq_kind == SeqKind::List || v.seq_kind == SeqKind::Tuple || v.seq_kind == SeqKind::Range;
    return v.kind == Kind::Str || v.kind == Kind::Dict || v.is_undefined();
  }
  if (name == "odd" || name == "even") {
    none();
    if (!v.is_number()) {
      if (v.is_undefined()) undefined_error(v);
      fail("TypeError: unsupported operand type(s) for %: '" + type_name(v) + "' and 'int'");
    }
    return py_eq(binary_op("%", v, Value::integer(2)), Value::integer(name == "odd" ? 1 : 0));
  }
  if (name == "divisibleby") {
    Value num = *bind(what, args, {"num"}, 1)[0];
    if (!v.is_number() && !v.is_undefined())
      fail("TypeError: unsupported operand type(s) for %: '" + type_name(v) + "' and '" + type_name(num) + "'");
    return py_eq(binary_op("%", v, num), Value::integer(0));
  }
  if (name == "lower" || name == "upper") return none(), py_islower(py_str(v), name == "upper");
  if (name == "in") return py_contains(*bind(what, args, {"seq"}, 1)[0], v);
  if (name == "sameas") {
    Value o = other();
    bool v_single = v.kind == Kind::None || v.kind == Kind::Bool;
    bool o_single = o.kind == Kind::None || o.kind == Kind::Bool;
    if (v_single || o_single) return v.kind == o.kind && (v.kind == Kind::None || v.b == o.b);
    if (type_name(v) != type_name(o)) return false;  // objects of different types are never identical
    unsupported("'sameas' between two " + type_name(v) + " values (Python object identity)");
  }
  if (name == "eq" || name == "equalto" || name == "==") return py_eq(v, other());
  if (name == "ne" || name == "!=") return !py_eq(v, other());
  if (name == "lt" || name == "lessthan" || name == "<") return py_cmp(v, other(), "<") == -1;
  if (name == "le" || name == "<=") {
    int c = py_cmp(v, other(), "<=");
    return c == -1 || c == 0;
  }
  if (name == "gt" || name == "greaterthan" || name == ">") return py_cmp(v, other(), ">") == 1;
  if (name == "ge" || name == ">=") {
    int c = py_cmp(v, other(), ">=");
    return c == 1 || c == 0;
  }
  unsupported("the test '" + name + "'");
}

// ---------------------------------------------------------------- JSON in

Value from_json(const nlohmann::ordered_json& j, const std::string& path) {
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null:
      return Value::none();
    case nlohmann::ordered_json::value_t::boolean:
      return Value::boolean(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer:
      return Value::integer(j.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned: {
      auto u = j.get<uint64_t>();
      if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        throw Error(path + ": integer beyond 64 bits is not supported");
      return Value::integer(static_cast<int64_t>(u));
    }
    case nlohmann::ordered_json::value_t::number_float:
      return Value::flt(j.get<double>());
    case nlohmann::ordered_json::value_t::string: {
      const auto& s = j.get_ref<const std::string&>();
      if (!valid_utf8(s)) throw Error(path + ": string is not valid UTF-8");
      return Value::str(s);
    }
    case nlohmann::ordered_json::value_t::array: {
      std::vector<Value> items;
      size_t k = 0;
      for (const auto& x : j) items.push_back(from_json(x, path + "[" + std::to_string(k++) + "]"));
      return Value::sequence(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      Value d = Value::new_dict();
      for (const auto& [k, x] : j.items()) {
        if (!valid_utf8(k)) throw Error(path + ": key is not valid UTF-8");
        d.dict->items.emplace_back(Value::str(k), from_json(x, path + "." + k));
      }
      return d;
    }
    default:
      throw Error(path + ": binary values are not supported");
  }
}

}  // namespace
}  // namespace detail

// ============================================================================ public API

ChatTemplate ChatTemplate::parse(const std::string& source_text, const std::string& source_name) {
  using namespace detail;
  if (!valid_utf8(source_text)) throw Error(source_name + ": the chat template is not valid UTF-8");
  auto prog = std::make_shared<ChatTemplateProgram>();
  prog->name = source_name;
  prog->text = source_text;
  prog->normalized = normalize_source(source_text);
  try {
    Lexer lexer(prog->normalized);
    Parser parser(lexer.run(), *prog);
    prog->body = parser.parse();
    ScopeAnalysis().frame(prog->body, nullptr, prog->root_init, {});
    Interp folder(*prog, Value::new_dict());
    folder.fold_body(prog->body);
  } catch (const SyntaxFailure& f) {
    throw Error(source_name + ":" + line_col(prog->normalized, f.offset) + ": " + f.message);
  } catch (const Failure& f) {
    throw Error(source_name + ":" + line_col(prog->normalized, f.offset == npos ? 0 : f.offset) + ": " + f.message);
  }
  ChatTemplate t;
  t.program_ = std::move(prog);
  return t;
}

namespace {

std::string render_program(const detail::ChatTemplateProgram& prog, detail::Value context) {
  using namespace detail;
  try {
    Interp interp(prog, std::move(context));
    return interp.render();
  } catch (const Failure& f) {
    std::string where = prog.name + ":" + line_col(prog.normalized, f.offset == npos ? 0 : f.offset);
    if (f.raised) throw ChatTemplateRaised(where, f.message);
    throw Error(where + ": " + f.message);
  }
}

}  // namespace

std::string ChatTemplate::render(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                                 const std::map<std::string, std::string>& special_tokens) const {
  using namespace detail;
  if (messages.empty())
    throw Error(program_->name + ": cannot apply a chat template to an empty conversation; give at least one message");
  Value context = Value::new_dict();
  for (const auto& [k, v] : special_tokens) {
    if (!valid_utf8(v)) throw Error(program_->name + ": special token '" + k + "' is not valid UTF-8");
    dict_set(*context.dict, k, Value::str(v));
  }
  std::vector<Value> msgs;
  for (size_t k = 0; k < messages.size(); ++k) {
    const ChatMessage& m = messages[k];
    if (!valid_utf8(m.role) || !valid_utf8(m.content))
      throw Error(program_->name + ": message " + std::to_string(k) + " is not valid UTF-8");
    Value d = Value::new_dict();
    d.dict->items.emplace_back(Value::str("role"), Value::str(m.role));
    d.dict->items.emplace_back(Value::str("content"), Value::str(m.content));
    msgs.push_back(std::move(d));
  }
  dict_set(*context.dict, "messages", Value::sequence(std::move(msgs)));
  dict_set(*context.dict, "tools", Value::none());
  dict_set(*context.dict, "documents", Value::none());
  dict_set(*context.dict, "add_generation_prompt", Value::boolean(add_generation_prompt));
  return render_program(*program_, std::move(context));
}

std::string ChatTemplate::render_variables(const nlohmann::ordered_json& variables) const {
  using namespace detail;
  if (!variables.is_object()) throw Error(program_->name + ": template variables must be a JSON object");
  return render_program(*program_, from_json(variables, "variables"));
}

const std::vector<std::string>& ChatTemplate::unsupported_features() const { return program_->unsupported; }
const std::string& ChatTemplate::source_name() const { return program_->name; }
const std::string& ChatTemplate::source_text() const { return program_->text; }

std::optional<ChatTemplate> load_chat_template(const std::filesystem::path& model_dir) {
  namespace fs = std::filesystem;
  fs::path jinja = model_dir / "chat_template.jinja";
  if (fs::exists(jinja)) return ChatTemplate::parse(io::read_text_file(jinja), jinja.string());
  fs::path config = model_dir / "tokenizer_config.json";
  if (!fs::exists(config)) return std::nullopt;
  io::Json j = io::read_json_file(config);
  const std::string src = config.string();
  if (!j.is_object()) throw Error(src + ": expected a JSON object");
  auto it = j.find("chat_template");
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return ChatTemplate::parse(it->get<std::string>(), src + " (chat_template)");
  if (it->is_array()) {
    std::optional<std::string> chosen;
    std::vector<std::string> names;
    for (size_t k = 0; k < it->size(); ++k) {
      const auto& e = (*it)[k];
      std::string at = src + ": chat_template[" + std::to_string(k) + "]";
      if (!e.is_object() || !e.contains("name") || !e["name"].is_string() || !e.contains("template") ||
          !e["template"].is_string())
        throw Error(at + " must be an object with string fields 'name' and 'template'");
      names.push_back(e["name"].get<std::string>());
      if (names.back() == "default") chosen = e["template"].get<std::string>();
    }
    if (!chosen) {
      std::string list;
      for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
      throw Error(src + ": chat_template lists templates (" + list + ") but none named 'default'; Lethe renders the default one");
    }
    return ChatTemplate::parse(*chosen, src + " (chat_template 'default')");
  }
  throw Error(src + ": field 'chat_template' must be a string or a list of {name, template}");
}

}  // namespace lethe::text
