#pragma once
// pytorch_model.bin in PyTorch's zip format (torch.save since 1.6): a pickled state dict whose
// tensors live in data/<key> records. libtorch's own torch::pickle_load turns the
// collections.OrderedDict that every Hugging Face state dict is into None, so this is a small
// unpickler for exactly what torch.save writes (protocol 2, plus the protocol-4 opcodes).
//
// It never runs code: a pickle may name only the globals a state dict of tensors uses
// (collections.OrderedDict, torch._utils._rebuild_*, torch.*Storage); any other global
// (os.system, builtins.eval, ...) is refused where the pickle names it.
#include <ATen/core/Tensor.h>

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace lethe::io {

// Tensors in file order. Tensors that share a storage (tied weights) share memory.
// Throws lethe::Error naming the file: not a zip (the legacy format gets its own message),
// missing records, unsupported pickle content, a global outside the allowed ones.
std::vector<std::pair<std::string, at::Tensor>> read_torch_state_dict(const std::filesystem::path& path);

// The same from the bytes of a zip archive in memory; `where` names it in messages.
std::vector<std::pair<std::string, at::Tensor>> read_torch_state_dict_from_bytes(const std::string& bytes,
                                                                                 const std::string& where);

}  // namespace lethe::io
