// safetensors reading and writing, and every malformed file a user may hand us.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "io/safetensors.h"
#include "support/tiny_opt.h"
#include "util/error.h"

using namespace lethe;
using lethe::testing::TempDir;

namespace {

// A file with an explicit header length (so tests can lie about it), header text and data.
void write_raw(const std::filesystem::path& p, const std::string& header, size_t data_bytes, long long claimed_len = -1) {
  std::ofstream out(p, std::ios::binary);
  uint64_t n = claimed_len < 0 ? header.size() : static_cast<uint64_t>(claimed_len);
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>((n >> (8 * i)) & 0xff));
  out << header;
  out << std::string(data_bytes, '\0');
}

// Expects SafetensorsFile::open to throw lethe::Error whose message contains every fragment.
void expect_error(const std::filesystem::path& p, std::initializer_list<const char*> fragments) {
  try {
    io::SafetensorsFile::open(p);
    FAIL() << "no error for " << p;
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find(p.string()), std::string::npos) << "message does not name the file: " << m;
    for (const char* f : fragments) EXPECT_NE(m.find(f), std::string::npos) << "missing '" << f << "' in: " << m;
  }
}

}  // namespace

TEST(Safetensors, RoundTripKeepsNamesShapesDtypesAndBytes) {
  TempDir d;
  std::vector<float> a = {1.5f, -2.0f, 3.25f, 0.0f, 7.0f, 8.0f};
  std::vector<uint16_t> b = {0x3f80, 0x4000, 0xbf80};  // bf16 1, 2, -1
  std::vector<int64_t> c = {42};
  io::write_safetensors(d / "x.safetensors",
                        {{"zeta.weight", io::DType::F32, {2, 3}, a.data(), a.size() * 4},
                         {"alpha", io::DType::BF16, {3}, b.data(), b.size() * 2},
                         {"scalar", io::DType::I64, {}, c.data(), 8}},
                        {{"format", "pt"}});
  auto f = io::SafetensorsFile::open(d / "x.safetensors");
  ASSERT_EQ(f->tensors().size(), 3u);
  EXPECT_EQ(f->metadata().at("format"), "pt");
  const auto* t = f->find("zeta.weight");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->dtype, io::DType::F32);
  EXPECT_EQ(t->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(std::memcmp(f->data(*t), a.data(), 24), 0);
  const auto* s = f->find("scalar");
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(s->shape.empty());
  EXPECT_EQ(s->numel(), 1);
  EXPECT_EQ(std::memcmp(f->data(*s), c.data(), 8), 0);
  EXPECT_EQ(std::memcmp(f->data(*f->find("alpha")), b.data(), 6), 0);
  EXPECT_EQ(f->find("missing"), nullptr);
}

TEST(Safetensors, WrittenHeaderIsPaddedToEightBytesAndSortedByName) {
  TempDir d;
  float v[2] = {1, 2};
  io::write_safetensors(d / "x.safetensors", {{"b", io::DType::F32, {1}, v, 4}, {"a", io::DType::F32, {1}, v + 1, 4}});
  std::ifstream in(d / "x.safetensors", std::ios::binary);
  unsigned char len[8];
  in.read(reinterpret_cast<char*>(len), 8);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | len[i];
  EXPECT_EQ(n % 8, 0u);
  auto f = io::SafetensorsFile::open(d / "x.safetensors");
  EXPECT_EQ(f->tensors()[0].name, "a");  // data order follows the sorted names
  EXPECT_EQ(f->find("a")->begin, 0u);
}

TEST(Safetensors, DTypeNamesAndSizes) {
  EXPECT_EQ(io::dtype_size(io::DType::BF16), 2u);
  EXPECT_EQ(io::dtype_size(io::DType::F64), 8u);
  EXPECT_EQ(io::dtype_name(io::DType::F16), "F16");
  EXPECT_EQ(io::dtype_from_name("I64"), io::DType::I64);
  EXPECT_FALSE(io::dtype_from_name("F12").has_value());
}

TEST(SafetensorsBadInput, FileShorterThanTheLengthPrefix) {
  TempDir d;
  lethe::testing::write_text(d / "t.safetensors", "abc");
  expect_error(d / "t.safetensors", {"truncated", "8-byte header length"});
}

TEST(SafetensorsBadInput, TruncatedData) {
  TempDir d;
  write_raw(d / "t.safetensors", R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8);
  expect_error(d / "t.safetensors", {"tensor 'w'", "out of range", "8 bytes"});
}

TEST(SafetensorsBadInput, HeaderLengthBeyondTheFile) {
  TempDir d;
  write_raw(d / "t.safetensors", "{}", 0, 5000);
  expect_error(d / "t.safetensors", {"header length 5000", "beyond the end of the file"});
}

TEST(SafetensorsBadInput, HeaderLengthAbsurd) {
  TempDir d;
  write_raw(d / "t.safetensors", "{}", 0, 1LL << 40);
  expect_error(d / "t.safetensors", {"exceeds the 100 MB limit"});
}

TEST(SafetensorsBadInput, InvalidJsonHeader) {
  TempDir d;
  write_raw(d / "t.safetensors", R"({"w":{"dtype":"F32",)", 0);
  expect_error(d / "t.safetensors", {"header line 1", "invalid JSON"});
}

TEST(SafetensorsBadInput, HeaderIsNotAnObject) {
  TempDir d;
  write_raw(d / "t.safetensors", "[1,2]", 0);
  expect_error(d / "t.safetensors", {"header must be a JSON object"});
}

TEST(SafetensorsBadInput, OffsetsOutOfRange) {
  TempDir d;
  write_raw(d / "t.safetensors", R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", 8);
  expect_error(d / "t.safetensors", {"tensor 'w'", "[8, 16) out of range"});
}

TEST(SafetensorsBadInput, OffsetsReversed) {
  TempDir d;
  write_raw(d / "t.safetensors", R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", 8);
  expect_error(d / "t.safetensors", {"tensor 'w'", "end < begin"});
}

TEST(SafetensorsBadInput, OverlappingTensors) {
  TempDir d;
  write_raw(d / "t.safetensors",
            R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
            12);
  expect_error(d / "t.safetensors", {"'a' and 'b' overlap"});
}

TEST(SafetensorsBadInput, ByteCountDisagreesWithDtypeTimesShape) {
  TempDir d;
  write_raw(d / "t.safetensors", R"({"w":{"dtype":"BF16","shape":[3,2],"data_offsets":[0,8]}})", 8);
  expect_error(d / "t.safetensors", {"tensor 'w'", "8 bytes", "BF16", "[3, 2]", "needs 12"});
}

TEST(SafetensorsBadInput, UnknownDtype) {
  TempDir d;
  write_raw(d / "t.safetensors", R"({"w":{"dtype":"F12","shape":[1],"data_offsets":[0,4]}})", 4);
  expect_error(d / "t.safetensors", {"tensor 'w'", "unknown dtype 'F12'"});
}

TEST(SafetensorsBadInput, MissingFields) {
  TempDir d;
  write_raw(d / "t.safetensors", R"({"w":{"dtype":"F32","data_offsets":[0,4]}})", 4);
  expect_error(d / "t.safetensors", {"tensor 'w'", "'shape'"});
  write_raw(d / "u.safetensors", R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", 4);
  expect_error(d / "u.safetensors", {"tensor 'w'", "[begin, end]"});
  write_raw(d / "v.safetensors", R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4);
  expect_error(d / "v.safetensors", {"tensor 'w'", "non-negative"});
}

TEST(SafetensorsBadInput, MissingFile) {
  TempDir d;
  expect_error(d / "none.safetensors", {"cannot open"});
}

TEST(SafetensorsBadInput, WriterRejectsByteCountMismatch) {
  TempDir d;
  float v[2] = {1, 2};
  EXPECT_THROW(io::write_safetensors(d / "x.safetensors", {{"w", io::DType::F32, {3}, v, 8}}), Error);
  EXPECT_FALSE(std::filesystem::exists(d / "x.safetensors"));
}
