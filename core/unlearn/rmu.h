#pragma once
// RMU, Representation Misdirection for Unlearning (Li et al. 2024, "The WMDP Benchmark"): the
// residual stream after one decoder layer is pushed towards a fixed random direction on forget
// data and held at the frozen model's on retain data, training a few MLP output projections.
//
// Upstream, read for this file:
//   wmdp            rmu/unlearn.py, rmu/utils.py (github.com/centerforaisafety/wmdp)
//   open-unlearning src/trainer/unlearn/rmu.py, configs/trainer/RMU.yaml
//                   (github.com/locuslab/open-unlearning)
// Both hook the output of the decoder layer (`model.layers[layer_id]`, output[0]): the residual
// stream after that layer, before any final norm, i.e. CausalLMImpl::layer_state.
//
// Shapes: B batch, T positions, H hidden size.
#include <ATen/core/Tensor.h>
#include <c10/core/TensorOptions.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace lethe::model {
class CausalLMImpl;
}

namespace lethe::unlearn {

// ---- defaults ----
// open-unlearning's configs/trainer/RMU.yaml (the version in the maintainers' line): gamma 1,
// alpha 1, steering_coeff 2, retain_loss_type EMBED_DIFF, module_regex model\.layers\.7, and
// trainable_params_regex ".*" (every parameter), with wmdp's
// model\.layers\.(5|6|7)\.mlp\.down_proj\.weight as the commented alternative — which is also
// rmu.py's constructor default and what Lethe trains by default (kRmuTrainLayers/Module). An
// earlier RMU.yaml had alpha 1000, steering_coeff 300 and those three down projections.
// Published (wmdp README and run_rmu_zephyr.ipynb, zephyr-7b-beta): layer_id 7, layer_ids 5,6,7,
// param_ids 6 (= mlp.down_proj.weight, the 7th parameter of a Mistral decoder layer),
// steering_coeffs 6.5, alpha 1200, lr 5e-5, 150 batches of 4, seed 42, AdamW.
inline constexpr int64_t kRmuLayer = 7;                            // the hooked decoder layer
inline constexpr std::array<int64_t, 3> kRmuTrainLayers{5, 6, 7};  // layers whose module trains
inline constexpr const char* kRmuTrainModule = "down_proj";        // the MLP's output projection
inline constexpr double kRmuSteeringCoeff = 2.0;                   // c, RMU.yaml
inline constexpr double kRmuAlpha = 1.0;                           // retain weight, RMU.yaml
inline constexpr double kRmuGamma = 1.0;                           // forget weight, RMU.yaml
inline constexpr double kWmdpSteeringCoeff = 6.5;                  // published, zephyr-7b
inline constexpr double kWmdpAlpha = 1200.0;                       // published, zephyr-7b

// The control vector c·u (1, 1, hidden): u uniform [0, 1) normalised to unit norm, drawn in fp32
// from a CPU generator seeded with `seed` (the same numbers as Python's torch.manual_seed(seed);
// torch.rand(1, 1, hidden), so the same vector on every device), normalised and scaled in fp32 as
// open-unlearning's get_control_vector does, then moved to `opts`' dtype and device. (wmdp draws
// it in the model's dtype on its device, from that device's generator.) Throws lethe::Error for a
// hidden size < 1 or a steering coefficient that is not finite and > 0.
at::Tensor rmu_control_vector(int64_t hidden, double steering_coeff, uint64_t seed, const at::TensorOptions& opts);

// The forget term: the MSE between the updated model's layer activations `states` (B, T, H) and
// the control vector (1, 1, H) or (H), over the positions where `mask` (B, T) is non-zero (pass
// labels != -100, as open-unlearning does). Exactly open-unlearning's compute_activation_loss:
//   S_b = sum_t mask[b,t] * mean_h (x[b,t,h] - c[h])^2,   n_b = sum_t mask[b,t],
//   loss = mean over the (B, B) broadcast of S_j / n_i = mean_j(S_j) * mean_i(1 / n_i).
// Upstream's (B,) / (B, 1) division broadcasts; this equals the per-row mean mean_b(S_b / n_b)
// only when every row counts the same number of positions (or B = 1). A row with no position
// gives 1 / 0 = inf as upstream (the whole loss inf or NaN).
// wmdp instead takes F.mse_loss over every element, padding positions included: the same formula
// with a mask of ones. Arithmetic in fp32 (fp64 stays fp64); upstream computes in the
// activations' dtype. Throws lethe::Error naming mismatched shapes.
at::Tensor rmu_forget_loss(const at::Tensor& states, const at::Tensor& mask, const at::Tensor& control);

// The retain term before alpha: the same reduction between the updated model's activations
// `states` and the frozen model's `frozen_states` (B, T, H) on retain data (frozen_states is
// detached: no gradient reaches it). Both upstreams multiply by alpha outside (open-unlearning:
// gamma * forget + alpha * retain; wmdp: retain_loss *= alpha); the caller does it here.
at::Tensor rmu_retain_loss(const at::Tensor& states, const at::Tensor& frozen_states, const at::Tensor& mask);

// The parameter names RMU trains: for every layer of `layers` (0-based decoder layers, in the
// order given) and every module of `modules`, that linear layer's weight (upstream trains the
// weight only: wmdp's param_ids 6, open-unlearning's ...down_proj\.weight). A module is
// "down_proj", meaning the MLP's output projection in every family (Llama-type mlp.down_proj,
// OPT fc2), or the name of a linear layer inside a decoder layer, as its leaf ("q_proj", "fc1",
// "gate_up_proj") or its path inside the layer ("mlp.up_proj", "self_attn.o_proj"). Duplicates
// are dropped. Throws lethe::Error naming an unknown module (listing the family's) or a layer out
// of range (with the model's layer count), or for empty lists.
std::vector<std::string> rmu_parameter_names(const model::CausalLMImpl& m, const std::vector<int64_t>& layers,
                                             const std::vector<std::string>& modules);

}  // namespace lethe::unlearn
