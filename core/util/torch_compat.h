#pragma once
// Everything that differs between the libtorch versions Lethe builds against — Debian's 1.13
// (CPU, the default build) and PyPI's 2.x (CUDA) — lives here, so the rest of the code has no
// version #ifs. Include only from .cpp files (it pulls in ATen).
#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <torch/version.h>

#include <string>

#define LETHE_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

namespace lethe::compat {

// at::scaled_dot_product_attention with an explicit scale (libtorch >= 2.1): flash or
// memory-efficient kernels on CUDA, a fused CPU kernel otherwise.
constexpr bool kHasSdpa = LETHE_TORCH_AT_LEAST(2, 1);

// softmax(q k^T * scale + mask) v through the fused kernel. `additive_mask` is 0 where a key is
// allowed and the dtype's lowest finite value elsewhere (broadcast to (B, heads, T, S)), so a
// query with no allowed key stays finite, as on the explicit path. Throws when !kHasSdpa.
inline at::Tensor sdpa(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& additive_mask,
                       double dropout, double scale) {
#if LETHE_TORCH_AT_LEAST(2, 1)
  return at::scaled_dot_product_attention(q, k, v, additive_mask, dropout, /*is_causal=*/false, scale);
#else
  (void)q, (void)k, (void)v, (void)additive_mask, (void)dropout, (void)scale;
  throw std::runtime_error("scaled_dot_product_attention needs libtorch >= 2.1");
#endif
}

// Autocast to `dtype` on CUDA or the CPU, on or off. libtorch >= 2.4 takes the device type
// (set_autocast_enabled/set_autocast_dtype); the per-device functions before it are deprecated
// there.
inline void set_autocast(bool cuda, bool enabled, at::ScalarType dtype = at::kBFloat16) {
#if LETHE_TORCH_AT_LEAST(2, 4)
  const auto device = cuda ? at::kCUDA : at::kCPU;
  if (enabled) at::autocast::set_autocast_dtype(device, dtype);
  at::autocast::set_autocast_enabled(device, enabled);
#else
  if (cuda) {
    if (enabled) at::autocast::set_autocast_gpu_dtype(dtype);
    at::autocast::set_enabled(enabled);
  } else {
    if (enabled) at::autocast::set_autocast_cpu_dtype(dtype);
    at::autocast::set_cpu_enabled(enabled);
  }
#endif
}

inline std::string torch_version() {
  return std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
         std::to_string(TORCH_VERSION_PATCH);
}

}  // namespace lethe::compat
