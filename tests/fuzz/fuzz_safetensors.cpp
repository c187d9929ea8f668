// The safetensors header and tensor table (io/safetensors.*): the input is a whole file.
// Beyond "no crash", an accepted file must keep the promises loading relies on: every tensor's
// bytes lie inside the mapping and match dtype x shape (checked without overflow here).
#include <cstdint>

#include "fuzz_util.h"
#include "io/safetensors.h"

namespace {
lethe::fuzz::ScratchDir* scratch = nullptr;

// numel * element size in 128 bits: no wrap-around can make a huge shape look small.
unsigned __int128 exact_bytes(const lethe::io::TensorInfo& t) {
  unsigned __int128 n = lethe::io::dtype_size(t.dtype);
  for (int64_t s : t.shape) {
    if (s < 0) return ~static_cast<unsigned __int128>(0);
    n *= static_cast<uint64_t>(s);
    if (n > (static_cast<unsigned __int128>(1) << 80)) return n;
  }
  return n;
}

// The data section starts after the 8-byte length and the header (the input's own bytes).
void check_tensor_table(const lethe::io::SafetensorsFile& f, uint64_t data_start) {
  for (const auto& t : f.tensors()) {
    LETHE_FUZZ_CHECK(f.find(t.name) == &t, "find() gives the tensor of that name");
    LETHE_FUZZ_CHECK(exact_bytes(t) == t.nbytes(), "an accepted tensor has exactly dtype x shape bytes");
    if (t.nbytes() == 0) continue;
    // Touch the first and last byte: outside the mapping this faults.
    const volatile std::byte* p = f.data(t);
    (void)p[0];
    (void)p[t.nbytes() - 1];
    LETHE_FUZZ_CHECK(t.end <= f.file_size() - data_start, "a tensor ends inside the file");
  }
}
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  scratch = new lethe::fuzz::ScratchDir();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = scratch->write("model.safetensors", lethe::fuzz::as_text(data, size));
  lethe::fuzz::run_parser("SafetensorsFile::open", [&] {
    auto f = lethe::io::SafetensorsFile::open(path);
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | data[i];  // open() refused files under 8 bytes
    check_tensor_table(*f, 8 + n);
  });
  return 0;
}
