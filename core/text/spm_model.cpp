#include "text/spm_model.h"

#include <cstring>

#include "io/json.h"
#include "util/error.h"

namespace lethe::text {
namespace {

// Protocol buffers wire format: varint keys, then a varint, a 64/32-bit value or a length-delimited
// blob. Unknown fields are skipped.
class Reader {
 public:
  Reader(const char* p, size_t n, const std::string& where) : p_(p), end_(p + n), where_(where) {}
  bool done() const { return p_ >= end_; }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ >= end_) fail("truncated varint");
      const auto b = static_cast<unsigned char>(*p_++);
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    fail("varint longer than 10 bytes");
  }
  std::string bytes() {
    const uint64_t n = varint();
    if (n > static_cast<uint64_t>(end_ - p_)) fail("a field runs past the end of the data");
    std::string s(p_, static_cast<size_t>(n));
    p_ += n;
    return s;
  }
  float fixed32_float() {
    if (end_ - p_ < 4) fail("truncated fixed32");
    float f;
    std::memcpy(&f, p_, 4);
    p_ += 4;
    return f;
  }
  void skip(int wire) {
    switch (wire) {
      case 0:
        varint();
        break;
      case 1:
        if (end_ - p_ < 8) fail("truncated fixed64");
        p_ += 8;
        break;
      case 2:
        bytes();
        break;
      case 5:
        if (end_ - p_ < 4) fail("truncated fixed32");
        p_ += 4;
        break;
      default:
        fail("wire type " + std::to_string(wire) + " is not protobuf");
    }
  }
  [[noreturn]] void fail(const std::string& what) const { throw Error(where_ + ": not a SentencePiece model: " + what); }

 private:
  const char* p_;
  const char* end_;
  std::string where_;
};

int32_t as_int32(uint64_t v) { return static_cast<int32_t>(static_cast<uint32_t>(v)); }

// ModelProto.SentencePiece.type is a proto2 enum: a value outside it is kept as an unknown field
// and the accessor answers the default, NORMAL, in the library and in transformers' converter.
int piece_type(uint64_t v) { return v >= SpmPiece::Normal && v <= SpmPiece::Byte ? static_cast<int>(v) : SpmPiece::Normal; }
}  // namespace

SpmModel parse_spm_model(const std::string& data, const std::string& where) {
  SpmModel m;
  Reader r(data.data(), data.size(), where);
  bool any = false;
  while (!r.done()) {
    const uint64_t k = r.varint();
    const int field = static_cast<int>(k >> 3), wire = static_cast<int>(k & 7);
    if (field == 1 && wire == 2) {
      const std::string blob = r.bytes();
      Reader pr(blob.data(), blob.size(), where);
      SpmPiece p;
      while (!pr.done()) {
        const uint64_t pk = pr.varint();
        const int pf = static_cast<int>(pk >> 3), pw = static_cast<int>(pk & 7);
        if (pf == 1 && pw == 2) p.piece = pr.bytes();
        else if (pf == 2 && pw == 5) p.score = pr.fixed32_float();
        else if (pf == 3 && pw == 0) p.type = piece_type(pr.varint());
        else pr.skip(pw);
      }
      m.pieces.push_back(std::move(p));
      any = true;
    } else if (field == 2 && wire == 2) {
      const std::string blob = r.bytes();
      Reader tr(blob.data(), blob.size(), where);
      while (!tr.done()) {
        const uint64_t tk = tr.varint();
        const int tf = static_cast<int>(tk >> 3), tw = static_cast<int>(tk & 7);
        if (tw == 0 && (tf == 3 || tf == 35 || (tf >= 40 && tf <= 43))) {
          const uint64_t v = tr.varint();
          if (tf == 3) m.model_type = static_cast<int>(v);
          else if (tf == 35) m.byte_fallback = v != 0;
          else if (tf == 40) m.unk_id = as_int32(v);
          else if (tf == 41) m.bos_id = as_int32(v);
          else if (tf == 42) m.eos_id = as_int32(v);
          else m.pad_id = as_int32(v);
        } else if (tw == 2 && tf >= 45 && tf <= 48) {
          std::string s = tr.bytes();
          (tf == 45 ? m.unk_piece : tf == 46 ? m.bos_piece : tf == 47 ? m.eos_piece : m.pad_piece) = std::move(s);
        } else {
          tr.skip(tw);
        }
      }
    } else if (field == 3 && wire == 2) {
      const std::string blob = r.bytes();
      Reader nr(blob.data(), blob.size(), where);
      while (!nr.done()) {
        const uint64_t nk = nr.varint();
        const int nf = static_cast<int>(nk >> 3), nw = static_cast<int>(nk & 7);
        if (nf == 1 && nw == 2) m.normalizer_name = nr.bytes();
        else if (nf == 2 && nw == 2) m.has_precompiled_charsmap = !nr.bytes().empty();
        else if (nf >= 3 && nf <= 5 && nw == 0) {
          const bool v = nr.varint() != 0;
          (nf == 3 ? m.add_dummy_prefix : nf == 4 ? m.remove_extra_whitespaces : m.escape_whitespaces) = v;
        } else {
          nr.skip(nw);
        }
      }
    } else {
      r.skip(wire);
    }
  }
  if (!any) r.fail("no pieces");
  return m;
}

SpmModel read_spm_model(const std::filesystem::path& path) { return parse_spm_model(io::read_text_file(path), path.string()); }

}  // namespace lethe::text
