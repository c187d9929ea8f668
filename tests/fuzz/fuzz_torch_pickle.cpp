// The unpickler of pytorch_model.bin (io/torch_pickle.*). The input is data.pkl; the harness
// wraps it in a torch.save zip whose records data/0 .. data/7 hold 16, 32, ... 128 bytes, so the
// fuzzer mutates the pickle, not the zip around it (libtorch's own code).
//
// Start-up checks: pickles naming foreign globals (os.system, posix.system, builtins.eval), by
// GLOBAL or STACK_GLOBAL, called or not, are refused with an error naming the global; a minimal
// state dict reads back its tensor.
#include <caffe2/serialize/inline_container.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "fuzz_util.h"
#include "io/torch_pickle.h"

namespace {
constexpr int kRecords = 8;

std::string record_bytes(int k) {
  std::string r(16 * (k + 1), '\0');
  for (size_t i = 0; i < r.size(); ++i) r[i] = static_cast<char>(k * 16 + i);
  return r;
}

std::string zip_with_pickle(const std::string& pkl) {
  std::string zip;
  caffe2::serialize::PyTorchStreamWriter w([&](const void* p, size_t n) {
    zip.append(static_cast<const char*>(p), n);
    return n;
  });
  w.writeRecord("data.pkl", pkl.data(), pkl.size());
  for (int k = 0; k < kRecords; ++k) {
    const std::string r = record_bytes(k);
    w.writeRecord("data/" + std::to_string(k), r.data(), r.size());
  }
  w.writeEndOfFile();
  return zip;
}

std::string error_of(const std::string& pkl) {
  try {
    (void)lethe::io::read_torch_state_dict_from_bytes(zip_with_pickle(pkl), "pytorch_model.bin");
  } catch (const lethe::Error& e) {
    return e.what();
  }
  return "";
}

void require_refused(const char* what, const std::string& pkl, const std::string& global) {
  const std::string e = error_of(pkl);
  if (e.find("'" + global + "'") == std::string::npos || e.find("refused") == std::string::npos) {
    std::fprintf(stderr, "FUZZ FINDING: a pickle naming %s (%s) was not refused by name; got: '%s'\n", global.c_str(), what,
                 e.c_str());
    std::abort();
  }
}

std::string short_str(const std::string& s) { return "\x8c" + std::string(1, static_cast<char>(s.size())) + s; }

void check_foreign_globals_refused() {
  using namespace std::string_literals;
  // pickle.dumps(os.system-calling object, protocol=2): GLOBAL, then REDUCE.
  require_refused("GLOBAL + REDUCE",
                  "\x80\x02"
                  "cposix\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03."s,
                  "posix.system");
  require_refused("GLOBAL + REDUCE",
                  "\x80\x02"
                  "cos\nsystem\nX\x04\x00\x00\x00true\x85R."s,
                  "os.system");
  // protocol 4: STACK_GLOBAL.
  require_refused("STACK_GLOBAL + REDUCE",
                  "\x80\x04" + short_str("builtins") + short_str("eval") + "\x93" + short_str("1") + "\x85R.", "builtins.eval");
  // Named but never called: refused all the same.
  require_refused("GLOBAL alone", "cbuiltins\nexec\n."s, "builtins.exec");
  require_refused("inside a state dict", "}X\x01\x00\x00\x00wcsubprocess\ncheck_output\ns."s, "subprocess.check_output");
}

// {"w": tensor of 4 floats from data/0}, as torch.save writes it (protocol 2).
void check_minimal_state_dict() {
  using namespace std::string_literals;
  // Literals are cut where a hex escape would swallow the next character.
  const std::string pkl = "\x80\x02"
                          "ccollections\nOrderedDict\n)R"
                          "X\x01\x00\x00\x00"
                          "w"
                          "ctorch._utils\n_rebuild_tensor_v2\n"
                          "((X\x07\x00\x00\x00"
                          "storage"
                          "ctorch\nFloatStorage\n"
                          "X\x01\x00\x00\x00"
                          "0"
                          "X\x03\x00\x00\x00"
                          "cpu"
                          "K\x04tQ"
                          "K\x00K\x04\x85K\x01\x85\x89"
                          "ccollections\nOrderedDict\n)RtR"
                          "s."s;
  auto sd = lethe::io::read_torch_state_dict_from_bytes(zip_with_pickle(pkl), "pytorch_model.bin");
  const std::string r = record_bytes(0);
  if (sd.size() != 1 || sd[0].first != "w" || sd[0].second.numel() != 4 ||
      std::memcmp(sd[0].second.data_ptr(), r.data(), r.size()) != 0) {
    std::fprintf(stderr, "FUZZ FINDING: the minimal state dict did not read back\n");
    std::abort();
  }
}
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  check_foreign_globals_refused();
  check_minimal_state_dict();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string zip = zip_with_pickle(std::string(lethe::fuzz::as_text(data, size)));
  lethe::fuzz::run_parser("read_torch_state_dict", [&] {
    for (const auto& [name, t] : lethe::io::read_torch_state_dict_from_bytes(zip, "pytorch_model.bin")) {
      // Read every element: a view outside its storage would show here.
      LETHE_FUZZ_CHECK(t.defined(), "every entry is a tensor");
      if (t.numel() > 0 && t.numel() < (1 << 16)) (void)t.contiguous();
    }
  });
  return 0;
}
