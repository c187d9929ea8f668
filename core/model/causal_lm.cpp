#include "model/causal_lm.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include "model/decode_linear.h"
#include "model/llama.h"
#include "model/opt.h"
#include "util/error.h"

namespace lethe::model {

CausalLMImpl::CausalLMImpl(std::shared_ptr<const ModelConfig> config) : config_(std::move(config)), info_(config_->info()) {}

at::Tensor CausalLMImpl::forward(const at::Tensor& ids, const at::Tensor& mask, KVCache* cache) {
  return model::linear(hidden(ids, mask, cache), lm_head_weight());
}

void CausalLMImpl::check_layer_index(int64_t layer, const char* what) const {
  if (layer < 0 || layer >= info_.num_layers)
    throw Error(std::string(what) + ": decoder layer " + std::to_string(layer) + " is out of range (" + info_.architecture +
                " has " + std::to_string(info_.num_layers) + " layers, 0.." + std::to_string(info_.num_layers - 1) + ")");
}

KVCache CausalLMImpl::make_cache(int64_t batch, int64_t capacity) const {
  KVCache c;
  const auto opts = options();
  for (int64_t i = 0; i < info_.num_layers; ++i) {
    c.k.push_back(at::zeros({batch, info_.num_kv_heads, capacity, info_.head_dim}, opts));
    c.v.push_back(at::zeros({batch, info_.num_kv_heads, capacity, info_.head_dim}, opts));
  }
  return c;
}

void CausalLMImpl::init_weights(double std, uint64_t seed) {
  at::NoGradGuard no_grad;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto ends_with = [](const std::string& s, const char* suffix) {
    const std::string x(suffix);
    return s.size() >= x.size() && s.compare(s.size() - x.size(), x.size(), x) == 0;
  };
  for (auto& item : named_modules()) {
    torch::nn::Module* m = item.value().get();
    if (auto* n = dynamic_cast<LayerNormImpl*>(m)) {
      if (n->weight.defined()) n->weight.fill_(1.0);
      if (n->bias.defined()) n->bias.zero_();
    } else if (auto* r = dynamic_cast<RmsNormImpl*>(m)) {
      r->weight.fill_(norm_identity());
    }
  }
  for (auto& p : named_parameters()) {
    const std::string& name = p.key();
    at::Tensor& t = p.value();
    if (name.find("norm") != std::string::npos) continue;  // done above
    if (name.find(".lora_") != std::string::npos) continue;
    if (ends_with(name, ".bias")) {
      t.zero_();
    } else {
      at::Tensor w = at::empty(t.sizes(), at::TensorOptions().dtype(at::kFloat));
      w.normal_(0.0, std, gen);
      t.copy_(w);
    }
  }
}

namespace {
using Factory = CausalLM (*)(std::shared_ptr<const ModelConfig>, at::TensorOptions);

CausalLM make_opt(std::shared_ptr<const ModelConfig> c, at::TensorOptions o) {
  return std::make_shared<OptForCausalLMImpl>(std::dynamic_pointer_cast<const OptConfig>(c), o);
}
CausalLM make_llama(std::shared_ptr<const ModelConfig> c, at::TensorOptions o) {
  return std::make_shared<LlamaForCausalLMImpl>(std::dynamic_pointer_cast<const LlamaConfig>(c), o);
}

// The registry's module half: family -> the module that runs it (model_config.cpp has the
// config half).
const std::pair<const char*, Factory> kModules[] = {
    {"opt", make_opt},     {"llama", make_llama}, {"mistral", make_llama},
    {"qwen2", make_llama}, {"phi3", make_llama},  {"gemma", make_llama},
};
}  // namespace

CausalLM create_causal_lm(std::shared_ptr<const ModelConfig> config, at::TensorOptions opts) {
  const std::string family = config->info().family;
  for (const auto& [name, make] : kModules)
    if (family == name) return make(std::move(config), opts);
  throw Error("no module for model family '" + family + "'");
}

}  // namespace lethe::model
