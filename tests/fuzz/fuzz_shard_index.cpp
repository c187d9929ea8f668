// Sharded checkpoints' model.safetensors.index.json (io/hf_folder.*): the input is the index; the
// folder around it holds config.json and two small shards. Shard names come from an untrusted
// file, so a name that leaves the folder (a '/', "..", an absolute path) must be refused: checked
// at start-up on fixed names, and on every accepted input (all weight files lie in the folder).
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "io/hf_folder.h"
#include "io/json.h"
#include "io/safetensors.h"

namespace {
lethe::fuzz::ScratchDir* scratch = nullptr;
const float kF32[3] = {1, 2, 3};

void write_folder() {
  using lethe::io::DType;
  scratch->write("config.json", R"({"model_type": "llama"})");
  lethe::io::write_safetensors(*scratch / "model-00001-of-00002.safetensors",
                               {{"a.weight", DType::F32, {2}, kF32, 8}, {"b.weight", DType::F32, {1}, kF32, 4}});
  lethe::io::write_safetensors(*scratch / "model-00002-of-00002.safetensors", {{"c.weight", DType::BF16, {3}, kF32, 6}});
}

// Whether the index names a shard outside the folder (what must never be accepted).
bool names_outside(const lethe::io::Json& idx) {
  if (!idx.is_object() || !idx.contains("weight_map") || !idx["weight_map"].is_object()) return false;
  for (const auto& v : idx["weight_map"]) {
    if (!v.is_string()) continue;
    const std::string f = v.get<std::string>();
    if (f.find('/') != std::string::npos || f == ".." || f == ".") return true;
  }
  return false;
}

// Start-up check: names that leave the folder are refused with the folder rule's message.
void check_traversal_refused() {
  for (const std::string name : {"../../etc/passwd", "/etc/passwd", "..", "../model-00001-of-00002.safetensors",
                                 "./model-00001-of-00002.safetensors", "sub/../model-00001-of-00002.safetensors"}) {
    lethe::io::Json idx = {{"weight_map", {{"a.weight", name}}}};
    scratch->write("model.safetensors.index.json", idx.dump());
    std::string message;
    try {
      (void)lethe::io::ModelFolder::open(scratch->path());
    } catch (const lethe::Error& e) {
      message = e.what();
    }
    if (message.find("must be a file in the same folder") == std::string::npos) {
      std::fprintf(stderr, "FUZZ FINDING: shard name '%s' was not refused as outside the folder (got: '%s')\n", name.c_str(),
                   message.c_str());
      std::abort();
    }
  }
}
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  scratch = new lethe::fuzz::ScratchDir();
  write_folder();
  check_traversal_refused();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(lethe::fuzz::as_text(data, size));
  scratch->write("model.safetensors.index.json", text);
  lethe::fuzz::run_parser("ModelFolder::open", [&] {
    const auto folder = lethe::io::ModelFolder::open(scratch->path());
    for (const auto& f : folder.weight_files())
      LETHE_FUZZ_CHECK(f.parent_path() == scratch->path() && f.filename() != ".." && f.filename() != ".",
                       "every shard lies in the folder");
    for (const auto& [name, e] : folder.tensors()) {
      LETHE_FUZZ_CHECK(e.shard < folder.shards().size(), "entries point at a shard");
      LETHE_FUZZ_CHECK(e.info && e.info->name == name, "entries are the named tensor");
    }
    bool outside = false;
    lethe::fuzz::run_parser("index as JSON", [&] { outside = names_outside(lethe::io::parse_json(text, "index")); });
    LETHE_FUZZ_CHECK(!outside, "an index naming a shard outside the folder is refused");
  });
  return 0;
}
