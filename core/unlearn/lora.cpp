#include "unlearn/lora.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include "io/json.h"
#include "io/safetensors.h"
#include "util/error.h"

namespace lethe::unlearn {
namespace fs = std::filesystem;

namespace {
// Every (name, linear) of the decoder layers whose last name part is in `targets`.
std::vector<std::pair<std::string, model::LinearImpl*>> target_linears(model::CausalLMImpl& m,
                                                                       const std::vector<std::string>& targets) {
  std::vector<std::pair<std::string, model::LinearImpl*>> out;
  for (const auto& item : m.named_modules()) {
    const std::string& name = item.key();
    auto* lin = dynamic_cast<model::LinearImpl*>(item.value().get());
    if (!lin || name.find(".layers.") == std::string::npos) continue;
    const std::string leaf = name.substr(name.rfind('.') + 1);
    for (const auto& t : targets)
      if (leaf == t) out.emplace_back(name, lin);
  }
  return out;
}
}  // namespace

std::vector<std::string> resolve_targets(const LoraConfig& cfg, const model::ModelConfig& c) {
  return c.resolve_lora_targets(cfg.targets.empty() ? c.default_lora_targets() : cfg.targets);
}

void validate_lora(const LoraConfig& cfg, const model::ModelConfig& c) {
  if (!cfg.enabled()) return;
  if (!(cfg.alpha > 0)) throw Error("LoRA alpha must be > 0");
  if (cfg.dropout < 0 || cfg.dropout >= 1) throw Error("LoRA dropout must be in [0, 1)");
  const auto targets = resolve_targets(cfg, c);
  if (targets.empty()) throw Error("LoRA needs at least one target module");
  for (const auto& t : targets)
    for (const auto& l : c.layer_linears())
      if (l.name == t && cfg.rank > std::min(l.in, l.out))
        throw Error("LoRA rank " + std::to_string(cfg.rank) + " is larger than layer " + t + " (" + std::to_string(l.out) +
                    " x " + std::to_string(l.in) + ")");
}

void add_lora(model::CausalLMImpl& m, const LoraConfig& cfg, uint64_t seed) {
  validate_lora(cfg, m.config());
  for (auto& p : m.parameters()) p.set_requires_grad(false);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  for (auto& [name, lin] : target_linears(m, resolve_targets(cfg, m.config()))) {
    lin->add_lora(cfg.rank, cfg.alpha, cfg.dropout, gen);
    lin->lora_A->weight.set_requires_grad(true);
    lin->lora_B->weight.set_requires_grad(true);
  }
}

void set_lora_enabled(model::CausalLMImpl& m, bool on) {
  for (auto& mod : m.modules())
    if (auto* lin = dynamic_cast<model::LinearImpl*>(mod.get())) lin->lora_enabled = on;
}

void merge_lora(model::CausalLMImpl& m) {
  for (auto& mod : m.modules())
    if (auto* lin = dynamic_cast<model::LinearImpl*>(mod.get())) lin->merge_lora();
  for (auto& p : m.parameters()) p.set_requires_grad(true);
}

bool has_lora(model::CausalLMImpl& m) {
  for (auto& mod : m.modules())
    if (auto* lin = dynamic_cast<model::LinearImpl*>(mod.get()); lin && lin->has_lora()) return true;
  return false;
}

std::vector<std::pair<std::string, at::Tensor>> trainable_parameters(model::CausalLMImpl& m) {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& p : m.named_parameters())
    if (p.value().requires_grad()) out.emplace_back(p.key(), p.value());
  return out;
}

void save_peft_adapter(const fs::path& dir, model::CausalLMImpl& m, const LoraConfig& cfg, const std::string& base) {
  fs::create_directories(dir);
  std::vector<std::pair<std::string, at::Tensor>> keep;
  for (const auto& p : m.named_parameters())
    if (p.key().find(".lora_") != std::string::npos)
      keep.emplace_back("base_model.model." + p.key(), p.value().detach().to(at::kCPU).to(at::kFloat).contiguous());
  if (keep.empty()) throw Error("the model has no LoRA adapters to save");
  std::vector<io::TensorBlob> blobs;
  for (const auto& [k, t] : keep)
    blobs.push_back({k, io::DType::F32, t.sizes().vec(), t.data_ptr(), static_cast<size_t>(t.nbytes())});
  io::write_safetensors(dir / "adapter_model.safetensors", blobs, {{"format", "pt"}});
  io::write_json_file(dir / "adapter_config.json", {{"peft_type", "LORA"},
                                                    {"task_type", "CAUSAL_LM"},
                                                    {"r", cfg.rank},
                                                    {"lora_alpha", cfg.alpha},
                                                    {"lora_dropout", cfg.dropout},
                                                    {"target_modules", resolve_targets(cfg, m.config())},
                                                    {"bias", "none"},
                                                    {"fan_in_fan_out", false},
                                                    {"inference_mode", true},
                                                    {"base_model_name_or_path", base}});
}

LoraConfig load_peft_adapter(const fs::path& dir, model::CausalLMImpl& m) {
  const fs::path cfg_path = dir / "adapter_config.json";
  io::Json j = io::read_json_file(cfg_path);
  const std::string src = cfg_path.string();
  if (io::get_string(j, "peft_type", "LORA", src) != "LORA")
    throw Error(src + ": peft_type '" + j["peft_type"].get<std::string>() + "' is not supported (LORA only)");
  LoraConfig cfg;
  cfg.rank = io::get_int(j, "r", src);
  cfg.alpha = io::get_number(j, "lora_alpha", 16, src);
  cfg.dropout = io::get_number(j, "lora_dropout", 0, src);
  if (!j.contains("target_modules") || !j["target_modules"].is_array()) throw Error(src + ": missing array 'target_modules'");
  cfg.targets = j["target_modules"].get<std::vector<std::string>>();
  add_lora(m, cfg, 0);
  auto f = io::SafetensorsFile::open(dir / "adapter_model.safetensors");
  at::NoGradGuard g;
  for (auto& p : m.named_parameters()) {
    if (p.key().find(".lora_") == std::string::npos) continue;
    const auto* t = f->find("base_model.model." + p.key());
    if (!t) throw Error((dir / "adapter_model.safetensors").string() + ": missing tensor 'base_model.model." + p.key() + "'");
    if (t->dtype != io::DType::F32 || t->shape != p.value().sizes().vec())
      throw Error((dir / "adapter_model.safetensors").string() + ": tensor '" + t->name + "' must be F32 " +
                  io::shape_string(p.value().sizes().vec()));
    p.value().copy_(at::from_blob(const_cast<std::byte*>(f->data(*t)), t->shape, at::kFloat));
  }
  return cfg;
}

}  // namespace lethe::unlearn
