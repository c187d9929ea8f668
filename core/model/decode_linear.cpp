#include "model/decode_linear.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "util/error.h"

// The kernel needs GCC >= 12 on x86-64 (x86-64-v3/v4 as target levels and in
// __builtin_cpu_supports); other compilers and CPUs use at::linear.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#define LETHE_DECODE_KERNEL_X86 1
#else
#define LETHE_DECODE_KERNEL_X86 0
#endif

namespace lethe::model {

namespace {

enum class Isa { None, Avx2, Avx512 };

Isa detect_isa() {
#if LETHE_DECODE_KERNEL_X86
  // The ISA levels the entry points are compiled for (x86-64-v4: AVX-512 F/BW/DQ/VL; v3: AVX2,
  // FMA, BMI, F16C...), not single flags: a v4 body may use any instruction of its level.
  __builtin_cpu_init();
  if (__builtin_cpu_supports("x86-64-v4")) return Isa::Avx512;
  if (__builtin_cpu_supports("x86-64-v3")) return Isa::Avx2;
#endif
  return Isa::None;
}
const Isa g_detected = detect_isa();

// LETHE_DECODE_KERNEL=off turns the kernel off; =avx2 takes the AVX2 path on an AVX-512 CPU.
Isa default_isa() {
  const char* env = std::getenv("LETHE_DECODE_KERNEL");
  const std::string v = env ? env : "";
  if (v == "off") return Isa::None;
  if (v == "avx2" && g_detected != Isa::None) return Isa::Avx2;
  return g_detected;
}
std::atomic<Isa> g_isa{default_isa()};
std::atomic<bool> g_enabled{g_isa.load() != Isa::None};

#if LETHE_DECODE_KERNEL_X86
typedef float v16 __attribute__((vector_size(64)));  // one AVX-512 register, two AVX2 ones
typedef float v8 __attribute__((vector_size(32)));   // one AVX2 register

// The kernel's templates are compiled for AVX2+FMA (x86-64-v3) and inlined into the AVX2 and
// the AVX-512 (x86-64-v4, a superset) entry points below; GCC inlines a function only into
// callers whose instruction set contains its own, hence the region rather than a default target.
#pragma GCC push_options
#pragma GCC target("arch=x86-64-v3")

// L consecutive weights as floats: fp32 as they are, int8 sign-extended and converted 8 at a
// time (the row's scale comes after the sum). An out-parameter rather than a vector return.
template <class V>
inline __attribute__((always_inline)) void load_w(V& v, const float* p) {
  std::memcpy(&v, p, sizeof(V));
}
inline __attribute__((always_inline)) void load_int8(v8& v, const int8_t* p) {
  v = static_cast<v8>(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)))));
}
template <class V>
inline __attribute__((always_inline)) void load_w(V& v, const int8_t* p) {
  if constexpr (sizeof(V) == sizeof(v8)) {
    load_int8(v, p);
  } else {
    v8 lo, hi;
    load_int8(lo, p);
    load_int8(hi, p + 8);
    v = __builtin_shufflevector(lo, hi, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  }
}

// Rows [n0, n1) of y (M, N) = x (M, K) W (N, K)^T (times scale[n] per row of int8 W), R rows of
// W at a time: each vector of W is loaded once and multiplied with the same columns of all M
// rows of x (which stay in L1), so W streams through once at the memory's pace. Inlined into the
// ISA-specific callers below, which compile it with their instruction set.
template <class V, class TW, int M, int R>
inline __attribute__((always_inline)) void rows_kernel(const float* x, const TW* W, const float* scale, float* y, int64_t K,
                                                       int64_t N, int64_t n0, int64_t n1) {
  constexpr int L = sizeof(V) / sizeof(float);
  auto row_scale = [&](int64_t n) { return scale ? scale[n] : 1.0f; };
  int64_t n = n0;
  for (; n + R <= n1; n += R) {
    V acc[R][M];
    for (int r = 0; r < R; ++r)
      for (int m = 0; m < M; ++m) acc[r][m] = V{};
    int64_t k = 0;
    for (; k + L <= K; k += L) {
      // int8 rows are short streams (K bytes) for the hardware prefetcher: fetch the block of R
      // rows two blocks ahead, one cache line (R * L bytes) per step.
      if constexpr (sizeof(TW) == 1) __builtin_prefetch(W + (n + 2 * R) * K + k * R);
      V xv[M];
      for (int m = 0; m < M; ++m) std::memcpy(&xv[m], x + m * K + k, sizeof(V));
      for (int r = 0; r < R; ++r) {
        V wv;
        load_w(wv, W + (n + r) * K + k);
        for (int m = 0; m < M; ++m) acc[r][m] += wv * xv[m];
      }
    }
    for (int r = 0; r < R; ++r)
      for (int m = 0; m < M; ++m) {
        float s = 0;
        for (int l = 0; l < L; ++l) s += acc[r][m][l];
        for (int64_t kk = k; kk < K; ++kk) s += static_cast<float>(W[(n + r) * K + kk]) * x[m * K + kk];
        y[m * N + n + r] = s * row_scale(n + r);
      }
  }
  for (; n < n1; ++n)  // the last rows when R does not divide the range
    for (int m = 0; m < M; ++m) {
      float s = 0;
      for (int64_t kk = 0; kk < K; ++kk) s += static_cast<float>(W[n * K + kk]) * x[m * K + kk];
      y[m * N + n] = s * row_scale(n);
    }
}

// R rows of W per pass while the R * M accumulators, M rows of x and one vector of W fit the
// registers: 32 vector registers with AVX-512 (V = 16 floats), 16 with AVX2 (V = 8 floats).
template <class V, class TW>
inline __attribute__((always_inline)) void rows_dispatch(int64_t M, const float* x, const TW* W, const float* scale, float* y,
                                                         int64_t K, int64_t N, int64_t n0, int64_t n1) {
  constexpr bool wide = sizeof(V) == 64;
  constexpr int kFew = wide ? 4 : 2, kMany = wide ? 2 : 1;  // R for 3-4 rows of x, for 5-8
  switch (M) {
    case 1:
      return rows_kernel<V, TW, 1, 4>(x, W, scale, y, K, N, n0, n1);
    case 2:
      return rows_kernel<V, TW, 2, 4>(x, W, scale, y, K, N, n0, n1);
    case 3:
      return rows_kernel<V, TW, 3, kFew>(x, W, scale, y, K, N, n0, n1);
    case 4:
      return rows_kernel<V, TW, 4, kFew>(x, W, scale, y, K, N, n0, n1);
    case 5:
      return rows_kernel<V, TW, 5, kMany>(x, W, scale, y, K, N, n0, n1);
    case 6:
      return rows_kernel<V, TW, 6, kMany>(x, W, scale, y, K, N, n0, n1);
    case 7:
      return rows_kernel<V, TW, 7, kMany>(x, W, scale, y, K, N, n0, n1);
    default:
      return rows_kernel<V, TW, 8, kMany>(x, W, scale, y, K, N, n0, n1);
  }
}

#pragma GCC pop_options

template <class TW>
__attribute__((target("arch=x86-64-v4"))) void rows_avx512(int64_t M, const float* x, const TW* W, const float* scale, float* y,
                                                           int64_t K, int64_t N, int64_t n0, int64_t n1) {
  rows_dispatch<v16>(M, x, W, scale, y, K, N, n0, n1);
}
template <class TW>
__attribute__((target("arch=x86-64-v3"))) void rows_avx2(int64_t M, const float* x, const TW* W, const float* scale, float* y,
                                                         int64_t K, int64_t N, int64_t n0, int64_t n1) {
  rows_dispatch<v8>(M, x, W, scale, y, K, N, n0, n1);
}

// y (..., N) = x (..., K) W^T (* scale per row) + b, the rows of W split over the threads; x's
// rows kDecodeKernelMaxRows at a time (W streams once per such group).
template <class TW>
at::Tensor run_kernel(const at::Tensor& x, const TW* wp, const float* scale, int64_t N, int64_t K, const at::Tensor& b) {
  const int64_t rows = x.numel() / K;
  const at::Tensor xc = x.contiguous();
  std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
  shape.back() = N;
  at::Tensor y = at::empty(shape, x.options());
  const bool avx512 = g_isa == Isa::Avx512;
  // Blocks of 4 rows of W (the most any kernel takes at once), about 64 Ki weights per task.
  const int64_t blocks = (N + 3) / 4;
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 14) / K);
  for (int64_t m0 = 0; m0 < rows; m0 += kDecodeKernelMaxRows) {
    const int64_t M = std::min(kDecodeKernelMaxRows, rows - m0);
    const float* xp = xc.data_ptr<float>() + m0 * K;
    float* yp = y.data_ptr<float>() + m0 * N;
    at::parallel_for(0, blocks, grain, [&](int64_t b0, int64_t b1) {
      const int64_t n0 = b0 * 4, n1 = std::min(N, b1 * 4);
      if (avx512) rows_avx512<TW>(M, xp, wp, scale, yp, K, N, n0, n1);
      else rows_avx2<TW>(M, xp, wp, scale, yp, K, N, n0, n1);
    });
  }
  if (b.defined()) y.add_(b);
  return y;
}
#endif

}  // namespace

void set_decode_kernel(bool on) { g_enabled = on && g_isa != Isa::None; }
bool decode_kernel_enabled() { return g_enabled; }
const char* decode_kernel_isa() {
  const Isa i = g_isa;
  return i == Isa::Avx512 ? "avx512" : i == Isa::Avx2 ? "avx2" : "none";
}
bool set_decode_kernel_isa(const std::string& isa) {
  Isa want;
  if (isa == "avx512") want = Isa::Avx512;
  else if (isa == "avx2") want = Isa::Avx2;
  else return false;
  if (want == Isa::Avx512 ? g_detected != Isa::Avx512 : g_detected == Isa::None) return false;
  g_isa = want;
  g_enabled = true;
  return true;
}

namespace {
// What both kernels ask of x and b, for a W of (N, K), at most max_rows rows of x.
bool kernel_takes(const at::Tensor& x, int64_t N, int64_t K, const at::Tensor& b, int64_t max_rows) {
  if (!g_enabled || !x.defined()) return false;
  if (!x.device().is_cpu() || x.scalar_type() != at::kFloat || x.layout() != at::kStrided || x.is_mkldnn()) return false;
  if (x.dim() < 1 || x.size(-1) != K || N == 0 || K == 0) return false;
  const int64_t rows = x.numel() / K;
  if (rows < 1 || rows > max_rows) return false;
  if (b.defined() && (!b.device().is_cpu() || b.scalar_type() != at::kFloat || b.dim() != 1 || b.size(0) != N)) return false;
  return !(at::GradMode::is_enabled() && (x.requires_grad() || (b.defined() && b.requires_grad())));
}
}  // namespace

bool decode_kernel_applies(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
  if (!w.defined() || w.dim() != 2 || !w.device().is_cpu() || w.scalar_type() != at::kFloat || !w.is_contiguous() ||
      w.layout() != at::kStrided || w.is_mkldnn())
    return false;
  if (at::GradMode::is_enabled() && w.requires_grad()) return false;
  return kernel_takes(x, w.size(0), w.size(1), b, kDecodeKernelMaxRows);
}

at::Tensor linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
  if (!decode_kernel_applies(x, w, b)) return at::linear(x, w, b);
#if LETHE_DECODE_KERNEL_X86
  return run_kernel<float>(x, w.data_ptr<float>(), nullptr, w.size(0), w.size(1), b);
#else
  return at::linear(x, w, b);
#endif
}

Int8Weight quantize_int8_rows(const at::Tensor& w) {
  if (!w.defined() || w.dim() != 2 || !at::isFloatingType(w.scalar_type()))
    throw Error("int8 weights: expected a 2-D floating-point weight (out, in), got " +
                (w.defined() ? std::string(c10::toString(w.scalar_type())) + " " + c10::str(w.sizes()) : std::string("none")));
  at::NoGradGuard no_grad;
  const at::Tensor x = w.detach().to(w.scalar_type() == at::kDouble ? at::kDouble : at::kFloat);
  if (!at::isfinite(x).all().item<bool>()) throw Error("int8 weights: the weight has values that are not finite");
  const at::Tensor scale = x.abs().amax(1) / 127.0;  // (out); 0 for a row of zeros
  const at::Tensor safe = at::where(scale > 0, scale, at::ones_like(scale)).unsqueeze(1);
  Int8Weight q;
  q.q = at::round(x / safe).clamp(-127, 127).to(at::kChar).contiguous();
  q.scale = scale.to(at::kFloat).contiguous();
  return q;
}

at::Tensor Int8Weight::dequantized(at::ScalarType dtype) const { return (q.to(at::kFloat) * scale.unsqueeze(1)).to(dtype); }

at::Tensor linear_int8(const at::Tensor& x, const Int8Weight& w, const at::Tensor& b) {
  const bool kernel = w.q.device().is_cpu() && kernel_takes(x, w.q.size(0), w.q.size(1), b, kInt8KernelMaxRows);
#if LETHE_DECODE_KERNEL_X86
  if (kernel) return run_kernel<int8_t>(x, w.q.data_ptr<int8_t>(), w.scale.data_ptr<float>(), w.q.size(0), w.q.size(1), b);
#endif
  return at::linear(x, w.dequantized(x.scalar_type()), b);
}

}  // namespace lethe::model
