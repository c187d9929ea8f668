// Weight fake quantisation (round-to-nearest); conventions at the top of eval/quantize.h.
// tests/reference/quantize_reference.py computes the same independently (numpy, per group).
#include "eval/quantize.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "eval/quantize_tensor.h"
#include "model/causal_lm.h"
#include "model/layers.h"
#include "unlearn/lora.h"
#include "util/error.h"

namespace lethe::eval {

namespace {

constexpr const char* kAcceptedForms = "int8 (symmetric, per output channel), int4 (asymmetric, groups of 128 input columns) "
                                       "or int4:gN (groups of N >= 1 input columns)";

void check_scheme(const QuantizeScheme& s) {
  if (s.bits == 8) {
    if (s.group_size != 0)
      throw Error("quantisation: int8 has one scale per output row; its group size must be 0, got " +
                  std::to_string(s.group_size));
  } else if (s.bits == 4) {
    if (s.group_size < 1)
      throw Error("quantisation: the int4 group size (input columns per scale) must be >= 1, got " +
                  std::to_string(s.group_size));
  } else {
    throw Error("quantisation: " + std::to_string(s.bits) + " bits is not supported (8 or 4)");
  }
}

// Symmetric int8, one scale per row of x (rows, cols).
at::Tensor rtn_int8(const at::Tensor& x) {
  const at::Tensor scale = x.abs().amax({1}, /*keepdim=*/true) / 127.0;
  const at::Tensor zero_scale = scale.eq(0);
  const at::Tensor safe = at::where(zero_scale, at::ones_like(scale), scale);
  const at::Tensor q = at::clamp(at::round(x / safe), -127.0, 127.0);
  // A row of zeros (scale 0) is kept as it is: no division by zero, -0 stays -0.
  return at::where(zero_scale, x, q * safe);
}

// Asymmetric int4, one scale and zero point per last-dimension group of g (rows, groups, size).
at::Tensor rtn_int4_groups(const at::Tensor& g) {
  const at::Tensor lo = g.amin({-1}, /*keepdim=*/true).clamp_max(0.0);
  const at::Tensor hi = g.amax({-1}, /*keepdim=*/true).clamp_min(0.0);
  const at::Tensor scale = (hi - lo) / 15.0;
  const at::Tensor zero_scale = scale.eq(0);
  const at::Tensor safe = at::where(zero_scale, at::ones_like(scale), scale);
  const at::Tensor zero = at::round(-lo / safe);
  const at::Tensor q = at::clamp(at::round(g / safe) + zero, 0.0, 15.0);
  // A group of zeros (xmin = xmax = 0, or a range that underflows to scale 0) is kept as it is.
  return at::where(zero_scale, g, (q - zero) * safe);
}

// Groups of `group` columns; the last one of a row is shorter when group does not divide cols.
at::Tensor rtn_int4(const at::Tensor& x, int64_t group) {
  const int64_t rows = x.size(0), cols = x.size(1);
  const int64_t full = cols / group * group;
  std::vector<at::Tensor> parts;
  if (full > 0) parts.push_back(rtn_int4_groups(x.narrow(1, 0, full).reshape({rows, full / group, group})).reshape({rows, full}));
  if (full < cols) parts.push_back(rtn_int4_groups(x.narrow(1, full, cols - full).unsqueeze(1)).squeeze(1));
  return parts.size() == 1 ? parts[0] : at::cat(parts, 1);
}

// (Half types through fp32: isfinite's CPU kernels for them vary between libtorch versions.)
bool all_finite(const at::Tensor& t) {
  const bool half = t.scalar_type() == at::kHalf || t.scalar_type() == at::kBFloat16;
  return at::isfinite(half ? t.detach().to(at::kFloat) : t.detach()).all().item<bool>();
}

bool all_digits(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

// "<...>.layers.<i>.<...>.<leaf>.weight": a decoder layer's linear whose leaf name is `leaf`.
bool decoder_layer_linear(const std::string& name, std::string* leaf) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t dot; (dot = name.find('.', start)) != std::string::npos; start = dot + 1)
    parts.push_back(name.substr(start, dot - start));
  parts.push_back(name.substr(start));
  const size_t n = parts.size();
  if (n < 4 || parts[n - 1] != "weight") return false;
  for (size_t i = 0; i + 3 < n; ++i) {
    if (parts[i] == "layers" && all_digits(parts[i + 1])) {
      *leaf = parts[n - 2];
      return true;
    }
  }
  return false;
}

// The parameters to round, with a check of every one against the config's layer list.
std::vector<std::pair<std::string, at::Tensor>> targets(model::CausalLMImpl& m) {
  std::map<std::string, std::vector<int64_t>> shapes;  // leaf -> (out, in)
  for (const auto& l : m.config().layer_linears()) shapes[l.name] = {l.out, l.in};
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& p : m.named_parameters()) {
    std::string leaf;
    if (!decoder_layer_linear(p.key(), &leaf)) continue;
    const auto it = shapes.find(leaf);
    if (it == shapes.end()) continue;
    if (p.value().sizes().vec() != it->second)
      throw Error("quantisation: " + p.key() + " has shape " + c10::str(p.value().sizes()) + ", the config says (" +
                  std::to_string(it->second[0]) + ", " + std::to_string(it->second[1]) + ")");
    out.emplace_back(p.key(), p.value());
  }
  const auto expected = static_cast<size_t>(m.info().num_layers) * shapes.size();
  if (out.size() != expected)
    throw Error("quantisation: found " + std::to_string(out.size()) + " decoder-layer linear weights, the " + m.info().family +
                " config describes " + std::to_string(expected) + " (" + std::to_string(m.info().num_layers) + " layers x " +
                std::to_string(shapes.size()) + ")");
  return out;
}

}  // namespace

QuantizeScheme parse_quantize_scheme(const std::string& text) {
  auto bad = [&](const std::string& why) {
    return Error("unknown quantisation scheme '" + text + "'" + why + ": expected " + kAcceptedForms);
  };
  if (text == "int8") return {"int8", 8, 0};
  if (text == "int4") return {"int4:g" + std::to_string(kInt4DefaultGroupSize), 4, kInt4DefaultGroupSize};
  const std::string prefix = "int4:g";
  if (text.rfind(prefix, 0) == 0) {
    const std::string digits = text.substr(prefix.size());
    if (!all_digits(digits) || digits.size() > 12) throw bad(" (the group size must be a whole number)");
    const int64_t g = std::stoll(digits);
    if (g < 1) throw bad(" (the group size must be >= 1)");
    return {prefix + std::to_string(g), 4, g};
  }
  throw bad("");
}

at::Tensor fake_quantize(const at::Tensor& w, const QuantizeScheme& s) {
  check_scheme(s);
  if (!w.defined() || w.dim() != 2 || !at::isFloatingType(w.scalar_type()))
    throw Error("quantisation: expected a 2-D floating-point weight (out, in), got " +
                (w.defined() ? std::string(c10::toString(w.scalar_type())) + " " + c10::str(w.sizes()) : std::string("none")));
  if (w.numel() == 0) return w.clone();
  const at::ScalarType compute = w.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  const at::Tensor x = w.detach().to(compute);
  if (!all_finite(x)) throw Error("quantisation: the weight has values that are not finite");
  const at::Tensor out = s.bits == 8 ? rtn_int8(x) : rtn_int4(x, s.group_size);
  return out.to(w.scalar_type()).contiguous();
}

std::vector<std::string> quantizable_weight_names(model::CausalLMImpl& m) {
  std::vector<std::string> names;
  for (const auto& [name, t] : targets(m)) names.push_back(name);
  return names;
}

QuantizeReport quantize_weights(model::CausalLMImpl& m, const QuantizeScheme& s) {
  check_scheme(s);
  if (unlearn::has_lora(m))
    throw Error("quantisation: the model has LoRA adapters attached; merge them into the base weights first (merge_lora) "
                "so that the merged weights are what is quantised");
  at::NoGradGuard no_grad;
  const auto weights = targets(m);
  // Every weight is checked before any is changed: an error leaves the model as it was.
  for (const auto& [name, p] : weights)
    if (!all_finite(p)) throw Error("quantisation: " + name + " has values that are not finite");
  QuantizeReport r;
  double sum_sq = 0;
  for (const auto& [name, p] : weights) {
    const at::Tensor q = with_context(name, [&] { return fake_quantize(p, s); });
    const at::Tensor diff = q.to(at::kDouble) - p.detach().to(at::kDouble);
    r.max_abs_change = std::max(r.max_abs_change, diff.abs().max().item<double>());
    sum_sq += diff.square().sum().item<double>();
    p.detach().copy_(q);
    r.tensors += 1;
    r.weights += p.numel();
    r.names.push_back(name);
  }
  r.rms_change = r.weights > 0 ? std::sqrt(sum_sq / static_cast<double>(r.weights)) : 0.0;
  return r;
}

QuantizeReport use_int8_weights(model::CausalLMImpl& m) {
  if (unlearn::has_lora(m))
    throw Error("int8 weights: the model has LoRA adapters attached; merge them into the base weights first (merge_lora)");
  at::NoGradGuard no_grad;
  const auto weights = targets(m);
  auto modules = m.named_modules();
  std::vector<std::pair<model::LinearImpl*, model::Int8Weight>> planned;
  QuantizeReport r;
  double sum_sq = 0;
  // Every weight is quantised before any layer changes: an error leaves the model as it was.
  for (const auto& [name, p] : weights) {
    const std::string module = name.substr(0, name.size() - std::string(".weight").size());
    auto* linear = modules.contains(module) ? modules[module]->as<model::LinearImpl>() : nullptr;
    if (!linear || linear->weight.data_ptr() != p.data_ptr())
      throw Error("int8 weights: " + name + " is not the weight of a linear layer named " + module);
    model::Int8Weight q = with_context(name, [&] { return model::quantize_int8_rows(p); });
    const at::Tensor diff = q.dequantized(at::kDouble) - p.detach().to(at::kDouble);
    r.max_abs_change = std::max(r.max_abs_change, diff.abs().max().item<double>());
    sum_sq += diff.square().sum().item<double>();
    r.tensors += 1;
    r.weights += p.numel();
    r.names.push_back(name);
    planned.emplace_back(linear, std::move(q));
  }
  for (auto& [linear, q] : planned) linear->int8 = std::move(q);
  r.rms_change = r.weights > 0 ? std::sqrt(sum_sq / static_cast<double>(r.weights)) : 0.0;
  return r;
}

}  // namespace lethe::eval
