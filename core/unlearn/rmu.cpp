#include "unlearn/rmu.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <cctype>
#include <cmath>
#include <set>
#include <sstream>

#include "model/causal_lm.h"
#include "util/error.h"

namespace lethe::unlearn {

namespace {

std::string shape_of(const at::Tensor& t) {
  std::ostringstream o;
  o << t.sizes();
  return o.str();
}

// Loss arithmetic in fp32 for half types, fp64 kept (Lethe's convention, unlearn/losses.cpp).
at::ScalarType loss_type(const at::Tensor& t) { return t.scalar_type() == at::kDouble ? at::kDouble : at::kFloat; }

void check_states(const char* what, const at::Tensor& states, const at::Tensor& mask) {
  if (!states.defined() || states.dim() != 3)
    throw Error(std::string(what) + ": activations must be (batch, positions, hidden), got " +
                (states.defined() ? shape_of(states) : "an undefined tensor"));
  if (!mask.defined() || mask.dim() != 2 || mask.size(0) != states.size(0) || mask.size(1) != states.size(1))
    throw Error(std::string(what) + ": mask must be (batch, positions) = [" + std::to_string(states.size(0)) + ", " +
                std::to_string(states.size(1)) + "] like the activations " + shape_of(states) + ", got " +
                (mask.defined() ? shape_of(mask) : "an undefined tensor"));
}

// open-unlearning's RMU.compute_activation_loss (src/trainer/unlearn/rmu.py), term for term:
//   squared_diff = mse_loss(a, b, reduction="none")                         (B, T, H)
//   squared_diff_sum = (squared_diff * mask).mean(dim=2).sum(dim=1)          (B,)
//   num_tokens = mask.sum(dim=-1, keepdim=True)                              (B, 1)
//   (squared_diff_sum / num_tokens).mean()          (B,) / (B, 1) broadcasts to (B, B)
// The broadcast is upstream's (its comments expect (B, 1) / (B, 1)); kept so the numbers are
// open-unlearning's. `target` is (B, T, H) or broadcastable to it.
at::Tensor activation_loss(const at::Tensor& states, const at::Tensor& target, const at::Tensor& mask) {
  const at::ScalarType t = loss_type(states);
  const at::Tensor m = mask.to(states.device()).ne(0).to(t);                           // (B, T)
  const at::Tensor squared = (states.to(t) - target.to(states.device(), t)).square();  // (B, T, H)
  const at::Tensor per_row = (squared * m.unsqueeze(-1)).mean(2).sum(1);               // (B,)
  const at::Tensor tokens = m.sum(-1, /*keepdim=*/true);                               // (B, 1)
  return (per_row / tokens).mean();                                                    // over (B, B)
}

// The leaf name of the MLP's output projection in this family: down_proj where the family has
// one (the Llama-type families); otherwise the last per-layer linear mapping the MLP width back
// to the residual stream (OPT's fc2: ffn_dim -> hidden_size).
std::string mlp_output_leaf(const model::CausalLMImpl& m) {
  const auto linears = m.config().layer_linears();
  for (const auto& l : linears)
    if (l.name == "down_proj") return l.name;
  const auto& info = m.info();
  std::string found;
  for (const auto& l : linears)
    if (l.in == info.intermediate_size && l.out == info.hidden_size) found = l.name;
  if (found.empty())
    throw Error("RMU: " + info.architecture + " has no linear layer from the MLP width " +
                std::to_string(info.intermediate_size) + " to the hidden size " + std::to_string(info.hidden_size) +
                " for 'down_proj'");
  return found;
}

// One linear layer inside a decoder layer: "model.layers.3.mlp.down_proj" -> layer 3, path
// "mlp.down_proj", leaf "down_proj".
struct LayerLinearModule {
  std::string name;
  int64_t layer = -1;
  std::string path, leaf;
};

std::vector<LayerLinearModule> layer_linear_modules(const model::CausalLMImpl& m) {
  std::vector<LayerLinearModule> out;
  for (const auto& item : m.named_modules()) {
    if (!dynamic_cast<const model::LinearImpl*>(item.value().get())) continue;
    const std::string& name = item.key();
    size_t at = name.find("layers.");
    while (at != std::string::npos && at != 0 && name[at - 1] != '.') at = name.find("layers.", at + 1);
    if (at == std::string::npos) continue;
    const size_t digits = at + 7;
    size_t end = digits;
    while (end < name.size() && std::isdigit(static_cast<unsigned char>(name[end]))) ++end;
    if (end == digits || end >= name.size() || name[end] != '.') continue;
    LayerLinearModule l;
    l.name = name;
    l.layer = std::stoll(name.substr(digits, end - digits));
    l.path = name.substr(end + 1);
    l.leaf = l.path.substr(l.path.rfind('.') == std::string::npos ? 0 : l.path.rfind('.') + 1);
    out.push_back(std::move(l));
  }
  return out;
}

}  // namespace

at::Tensor rmu_control_vector(int64_t hidden, double steering_coeff, uint64_t seed, const at::TensorOptions& opts) {
  if (hidden < 1) throw Error("RMU control vector: the hidden size must be >= 1, got " + std::to_string(hidden));
  if (!std::isfinite(steering_coeff) || steering_coeff <= 0) {
    std::ostringstream o;
    o << "RMU control vector: the steering coefficient must be a finite number > 0, got " << steering_coeff;
    throw Error(o.str());
  }
  // torch.manual_seed(seed); torch.rand(1, 1, hidden): the CPU generator (mt19937) seeded with
  // `seed`, uniform_(0, 1) on fp32.
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  at::Tensor u = at::empty({1, 1, hidden}, at::TensorOptions().dtype(at::kFloat)).uniform_(0.0, 1.0, gen);
  // random_vector / torch.norm(random_vector) * steering_coeff, in fp32 (get_control_vector).
  at::Tensor c = u / at::norm(u) * steering_coeff;
  return c.to(opts.device(), opts.dtype().toScalarType());
}

at::Tensor rmu_forget_loss(const at::Tensor& states, const at::Tensor& mask, const at::Tensor& control) {
  check_states("RMU forget loss", states, mask);
  const int64_t H = states.size(2);
  if (!control.defined() || control.numel() != H || control.size(-1) != H)
    throw Error("RMU forget loss: the control vector must be (1, 1, " + std::to_string(H) + ") or (" + std::to_string(H) +
                ") like the activations' hidden size, got " + (control.defined() ? shape_of(control) : "an undefined tensor"));
  // control_vec.expand_as(activations); a constant.
  return activation_loss(states, control.detach().reshape({1, 1, H}), mask);
}

at::Tensor rmu_retain_loss(const at::Tensor& states, const at::Tensor& frozen_states, const at::Tensor& mask) {
  check_states("RMU retain loss", states, mask);
  if (!frozen_states.defined() || frozen_states.sizes() != states.sizes())
    throw Error("RMU retain loss: the frozen model's activations must have the updated model's shape " + shape_of(states) +
                ", got " + (frozen_states.defined() ? shape_of(frozen_states) : "an undefined tensor"));
  // Upstream computes them under no_grad; the reference is a constant.
  return activation_loss(states, frozen_states.detach(), mask);
}

std::vector<std::string> rmu_parameter_names(const model::CausalLMImpl& m, const std::vector<int64_t>& layers,
                                             const std::vector<std::string>& modules) {
  const auto& info = m.info();
  if (layers.empty()) throw Error("RMU needs at least one layer whose parameters train");
  if (modules.empty()) throw Error("RMU needs at least one module to train in each layer");
  for (int64_t l : layers)
    if (l < 0 || l >= info.num_layers)
      throw Error("RMU: decoder layer " + std::to_string(l) + " is out of range (" + info.architecture + " has " +
                  std::to_string(info.num_layers) + " layers, 0.." + std::to_string(info.num_layers - 1) + ")");
  const auto linears = layer_linear_modules(m);
  // What each requested module means: a path inside the layer or a leaf name.
  std::vector<std::string> wanted;
  for (const auto& mod : modules) {
    const std::string key = mod == "down_proj" ? mlp_output_leaf(m) : mod;
    bool known = false;
    for (const auto& l : linears) known = known || (l.layer == 0 && (l.path == key || l.leaf == key));
    if (!known) {
      std::string names;
      for (const auto& l : m.config().layer_linears()) names += (names.empty() ? "" : ", ") + l.name;
      throw Error("RMU: unknown module '" + mod + "' (" + info.architecture + "'s decoder layers have " + names +
                  "; 'down_proj' means the MLP's output projection)");
    }
    wanted.push_back(key);
  }
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (int64_t layer : layers)
    for (const auto& key : wanted)
      for (const auto& l : linears)
        if (l.layer == layer && (l.path == key || l.leaf == key) && seen.insert(l.name).second) out.push_back(l.name + ".weight");
  return out;
}

}  // namespace lethe::unlearn
