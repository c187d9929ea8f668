#include "model/checkpoint.h"

#include <ATen/ATen.h>
#include <sys/mman.h>
#include <torch/cuda.h>

#include <map>
#include <set>

#include "io/hf_folder.h"
#include "io/safetensors.h"
#include "io/torch_pickle.h"
#include "model/inspect.h"
#include "util/cuda_info.h"
#include "util/error.h"

namespace lethe::model {
namespace fs = std::filesystem;

c10::Device resolve_device(const std::string& spec) {
  if (spec.empty() || spec == "auto") return torch::cuda::is_available() ? c10::Device(c10::kCUDA, 0) : c10::Device(c10::kCPU);
  if (spec == "cpu") return c10::Device(c10::kCPU);
  if (spec.rfind("cuda", 0) == 0) {
    if (!torch::cuda::is_available())
      throw Error("device '" + spec + "': this libtorch has no CUDA (or no GPU is visible); use --device cpu");
    int index = 0;
    if (spec.size() > 5 && spec[4] == ':') index = std::atoi(spec.c_str() + 5);
    else if (spec != "cuda") throw Error("device '" + spec + "': expected auto, cpu, cuda or cuda:N");
    if (index < 0 || index >= static_cast<int>(torch::cuda::device_count()))
      throw Error("device '" + spec + "': only " + std::to_string(torch::cuda::device_count()) + " CUDA device(s)");
    return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  throw Error("device '" + spec + "': expected auto, cpu, cuda or cuda:N");
}

c10::ScalarType parse_dtype(const std::string& spec, const c10::Device& device) {
  if (spec == "fp32" || spec == "float32") return at::kFloat;
  if (spec == "bf16" || spec == "bfloat16") return at::kBFloat16;
  if (spec == "fp16" || spec == "float16") {
    if (!device.is_cuda()) throw Error("precision fp16 needs CUDA (libtorch has no fp16 matmul on CPU); use bf16 or fp32");
    return at::kHalf;
  }
  throw Error("precision '" + spec + "': expected fp32, bf16 or fp16");
}

std::string dtype_label(c10::ScalarType t) {
  switch (t) {
    case at::kFloat:
      return "fp32";
    case at::kBFloat16:
      return "bf16";
    case at::kHalf:
      return "fp16";
    case at::kDouble:
      return "fp64";
    default:
      return c10::toString(t);
  }
}

namespace {

at::ScalarType to_scalar(io::DType d, const std::string& where) {
  switch (d) {
    case io::DType::F32:
      return at::kFloat;
    case io::DType::F16:
      return at::kHalf;
    case io::DType::BF16:
      return at::kBFloat16;
    case io::DType::F64:
      return at::kDouble;
    case io::DType::I64:
      return at::kLong;
    case io::DType::I32:
      return at::kInt;
    case io::DType::I16:
      return at::kShort;
    case io::DType::I8:
      return at::kChar;
    case io::DType::U8:
      return at::kByte;
    case io::DType::Bool:
      return at::kBool;
    default:
      throw Error(where + ": dtype " + std::string(io::dtype_name(d)) + " cannot be loaded into a model");
  }
}

io::DType to_dtype(at::ScalarType t) {
  switch (t) {
    case at::kFloat:
      return io::DType::F32;
    case at::kHalf:
      return io::DType::F16;
    case at::kBFloat16:
      return io::DType::BF16;
    case at::kDouble:
      return io::DType::F64;
    case at::kLong:
      return io::DType::I64;
    default:
      throw Error(std::string("cannot save dtype ") + c10::toString(t));
  }
}

// A source tensor and where it came from, for messages.
struct Source {
  at::Tensor tensor;  // CPU, possibly a view of the mapping
  std::string file;
  std::string key;  // as stored
  const io::SafetensorsFile* mapped = nullptr;
  const io::TensorInfo* info = nullptr;
};

}  // namespace

namespace {

// Memory the weights go to: the GPU's for a CUDA device, else this machine's.
void check_memory_for(const ModelConfig& cfg, const c10::Device& device, at::ScalarType dtype, const std::string& src) {
  const int64_t bytes = static_cast<int64_t>(c10::elementSize(dtype));
  if (device.is_cuda()) {
    for (const auto& d : cuda_devices())
      if (d.index == device.index())
        check_fits_memory(cfg, bytes, d.total_bytes, "the memory of cuda:" + std::to_string(d.index), src);
    return;
  }
  check_fits_memory(cfg, bytes, physical_memory_bytes(), "this machine's memory", src);
}

// One flag per tensor: all values finite. The smallest and largest value in one pass (NaN
// propagates into them, an infinity is one of them), with no tensor-sized temporary as
// isfinite(t).all() makes; the flags stay on the device until the one read at the end.
at::Tensor all_finite(const at::Tensor& t) {
  if (t.numel() == 0) return at::ones({}, t.options().dtype(at::kBool));
  auto [lo, hi] = at::aminmax(t.reshape({-1}));
  return at::isfinite(lo).logical_and(at::isfinite(hi));
}

// NaN or infinite weights would load and generate "Hello ⁇ ⁇ ⁇" or train on NaN: refused,
// naming the first such tensor. One read of the flags for the whole model.
void check_finite(const fs::path& dir, const std::vector<const Source*>& copied, const std::vector<at::Tensor>& finite,
                  at::ScalarType dtype) {
  if (finite.empty()) return;
  const at::Tensor flags = at::stack(finite).to(at::kCPU);
  const bool* ok = flags.data_ptr<bool>();
  for (size_t i = 0; i < copied.size(); ++i) {
    if (ok[i]) continue;
    const Source& s = *copied[i];
    const std::string where = dir.string() + "/" + s.file + ": tensor '" + s.key + "'";
    const at::Tensor stored = s.mapped ? at::from_blob(const_cast<std::byte*>(s.mapped->data(*s.info)), s.info->shape,
                                                       at::TensorOptions().dtype(to_scalar(s.info->dtype, where)))
                                       : s.tensor;
    const bool stored_finite = at::isfinite(stored).all().item<bool>();
    if (stored_finite)
      throw Error(where + ": values beyond the range of " + dtype_label(dtype) +
                  " (infinite after conversion; expected finite values): load it in fp32 or bf16");
    const int64_t bad = stored.numel() - at::isfinite(stored).sum().item<int64_t>();
    throw Error(where + ": " + std::to_string(bad) + " of " + std::to_string(stored.numel()) +
                " values are NaN or infinite (expected finite values)");
  }
}

}  // namespace

LoadedModel load_model(const fs::path& dir, const LoadOptions& opts, bool backbone_only) {
  // The structural checks inspect runs too, before anything is allocated.
  CheckedFolder checked = check_model_folder(dir, backbone_only);
  const io::ModelFolder& folder = checked.folder;
  LoadedModel out;
  out.config = checked.config;
  out.info = out.config->info();
  const ModelConfig& cfg = *out.config;
  auto canonical_key = [&](const std::string& k) { return cfg.canonical_key(k); };
  out.device = resolve_device(opts.device);
  const at::ScalarType dtype = parse_dtype(opts.dtype, out.device);
  check_memory_for(cfg, out.device, dtype, (dir / "config.json").string());
  out.warnings = folder.warnings();

  // Index every stored tensor under its canonical name.
  std::map<std::string, Source> sources;
  std::vector<std::pair<std::string, at::Tensor>> bin;  // keeps pytorch_model.bin tensors alive
  if (folder.format() == io::WeightsFormat::PytorchBin) {
    bin = io::read_torch_state_dict(folder.weight_files().front());
    const std::string file = folder.weight_files().front().filename().string();
    std::map<std::string, StoredTensor> shapes;
    for (auto& [k, t] : bin) {
      sources[canonical_key(k)] = Source{t, file, k};
      shapes[canonical_key(k)] = StoredTensor{t.sizes().vec(), file, k};
    }
    check_tensor_shapes(cfg, shapes, dir.string(), backbone_only);
  } else {
    for (const auto& [k, e] : folder.tensors()) {
      const auto& shard = folder.shards()[e.shard];
      Source s;
      s.file = folder.weight_files()[e.shard].filename().string();
      s.key = k;
      s.mapped = shard.get();
      s.info = e.info;
      sources[canonical_key(k)] = std::move(s);
    }
  }

  const at::TensorOptions topts = at::TensorOptions().dtype(dtype).device(out.device);
  out.model = create_causal_lm(out.config, topts);
  std::set<std::string> used;
  std::vector<const Source*> copied;  // in the order of `finite`
  std::vector<at::Tensor> finite;
  {
    at::NoGradGuard no_grad;
    for (auto& p : out.model->named_parameters()) {
      const std::string& name = p.key();
      at::Tensor& param = p.value();
      auto it = sources.find(name);
      if (it == sources.end() && backbone_only && name == "lm_head.weight") {
        param.zero_();  // a classifier's folder: the causal LM head is not part of it
        continue;
      }
      if (it == sources.end())
        throw Error(dir.string() + ": missing tensor '" + name + "' (expected shape " + io::shape_string(param.sizes().vec()) +
                    ")");
      Source& s = it->second;
      const std::string where = dir.string() + "/" + s.file + ": tensor '" + s.key + "'";
      std::vector<int64_t> shape = s.info ? s.info->shape : s.tensor.sizes().vec();
      if (shape != param.sizes().vec())
        throw Error(where + ": shape " + io::shape_string(shape) + " disagrees with config.json (expected " +
                    io::shape_string(param.sizes().vec()) + ")");
      if (s.mapped) {
        at::Tensor view = at::from_blob(const_cast<std::byte*>(s.mapped->data(*s.info)), shape,
                                        at::TensorOptions().dtype(to_scalar(s.info->dtype, where)));
        param.copy_(view);
        // Drop the file pages just copied, so peak memory is one model, not model + file.
        auto addr = reinterpret_cast<uintptr_t>(s.mapped->data(*s.info));
        const uintptr_t page = 4096;
        uintptr_t lo = (addr + page - 1) & ~(page - 1), hi = (addr + s.info->nbytes()) & ~(page - 1);
        if (hi > lo) ::madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_DONTNEED);
      } else {
        param.copy_(s.tensor);
      }
      finite.push_back(all_finite(param));
      copied.push_back(&s);
      used.insert(name);
    }
    check_finite(dir, copied, finite, dtype);
  }
  for (const auto& [name, s] : sources) {
    if (used.count(name)) continue;
    if (name == "lm_head.weight" && out.info.tied_head) continue;  // the tied head, stored anyway
    if (backbone_only && name.rfind("score.", 0) == 0) continue;   // the classifier's head, read by the classifier
    out.warnings.push_back(s.file + ": tensor '" + s.key + "' is not used by " + out.info.architecture + "; ignored");
  }
  out.model->eval();
  return out;
}

void save_hf_module(const fs::path& dir, torch::nn::Module& module, const io::Json& config_json, int64_t max_shard_bytes) {
  fs::create_directories(dir);
  // Contiguous CPU copies, kept alive while the blobs point into them.
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& p : module.named_parameters()) tensors.emplace_back(p.key(), p.value().detach().to(at::kCPU).contiguous());
  for (const auto& b : module.named_buffers()) tensors.emplace_back(b.key(), b.value().detach().to(at::kCPU).contiguous());
  auto blob = [](const std::pair<std::string, at::Tensor>& t) {
    return io::TensorBlob{t.first, to_dtype(t.second.scalar_type()), t.second.sizes().vec(), t.second.data_ptr(),
                          static_cast<size_t>(t.second.nbytes())};
  };
  int64_t total = 0;
  for (const auto& t : tensors) total += static_cast<int64_t>(t.second.nbytes());
  if (total <= max_shard_bytes) {
    std::vector<io::TensorBlob> blobs;
    for (const auto& t : tensors) blobs.push_back(blob(t));
    io::write_safetensors(dir / "model.safetensors", blobs, {{"format", "pt"}});
    std::error_code ec;
    fs::remove(dir / "model.safetensors.index.json", ec);
  } else {
    std::vector<std::vector<io::TensorBlob>> shards(1);
    int64_t in_shard = 0;
    for (const auto& t : tensors) {
      const int64_t n = static_cast<int64_t>(t.second.nbytes());
      if (in_shard > 0 && in_shard + n > max_shard_bytes) {
        shards.emplace_back();
        in_shard = 0;
      }
      shards.back().push_back(blob(t));
      in_shard += n;
    }
    io::Json weight_map = io::Json::object();
    for (size_t k = 0; k < shards.size(); ++k) {
      char name[64];
      std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", k + 1, shards.size());
      io::write_safetensors(dir / name, shards[k], {{"format", "pt"}});
      for (const auto& b : shards[k]) weight_map[b.name] = name;
    }
    io::write_json_file(dir / "model.safetensors.index.json",
                        {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}});
    std::error_code ec;
    fs::remove(dir / "model.safetensors", ec);
  }
  io::write_json_file(dir / "config.json", config_json);
}

void save_model(const fs::path& dir, CausalLMImpl& model, int64_t max_shard_bytes) {
  const at::ScalarType dt = model.options().dtype().toScalarType();
  const std::string dtype = dt == at::kBFloat16 ? "bfloat16" : dt == at::kHalf ? "float16" : "float32";
  save_hf_module(dir, model, model.config().to_json(dtype), max_shard_bytes);
}

}  // namespace lethe::model
