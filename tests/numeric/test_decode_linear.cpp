// core/model/decode_linear.*: the decoding step's linear layers (a few rows of x against every
// row of W, streamed once). Against an fp64 product (at::linear in double, libtorch's own GEMM)
// for every row count the kernel takes, inner sizes with and without a remainder of the vector
// width, output sizes that leave rows over from the kernel's row blocks, bias or none, 3-D and
// strided inputs, on each instruction set this CPU has; and that everything the kernel must not
// take (more rows, fp64, autograd, a transposed W) goes to at::linear with the same result.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <string>
#include <vector>

#include "model/decode_linear.h"

using namespace lethe;

namespace {

// The ISAs this CPU gives the kernel; empty where it has neither (the tests then check only the
// fallback).
std::vector<std::string> isas() {
  std::vector<std::string> out;
  for (const char* isa : {"avx512", "avx2"})
    if (model::set_decode_kernel_isa(isa)) out.push_back(isa);
  return out;
}

// Restores the process-wide kernel setting a test changed.
struct KernelSetting {
  std::string isa = model::decode_kernel_isa();
  bool on = model::decode_kernel_enabled();
  ~KernelSetting() {
    if (isa != "none") model::set_decode_kernel_isa(isa);
    model::set_decode_kernel(on);
  }
};

// |y - exact| within fp32's accumulated rounding: K terms of size |x||w|.
void expect_close(const at::Tensor& y, const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, const std::string& what) {
  const at::Tensor exact = at::linear(x.to(at::kDouble), w.to(at::kDouble), b.defined() ? b.to(at::kDouble) : at::Tensor());
  ASSERT_EQ(y.sizes(), exact.sizes()) << what;
  ASSERT_EQ(y.scalar_type(), at::kFloat) << what;
  const double bound = 4e-7 * static_cast<double>(w.size(1)) + 1e-6;  // |x|, |w| ~ 1
  const double err = (y.to(at::kDouble) - exact).abs().max().item<double>();
  EXPECT_LE(err, bound) << what;
}

}  // namespace

TEST(DecodeLinear, EveryRowCountInnerAndOuterSizeMatchesFp64) {
  KernelSetting keep;
  const auto list = isas();
  if (list.empty()) GTEST_SKIP() << "this CPU has neither AVX-512 nor AVX2+FMA: the kernel never runs";
  at::manual_seed(1);
  for (const auto& isa : list) {
    ASSERT_TRUE(model::set_decode_kernel_isa(isa));
    for (int64_t M = 1; M <= model::kDecodeKernelMaxRows; ++M)
      for (int64_t K : {1, 7, 8, 16, 19, 64, 100})
        for (int64_t N : {1, 3, 4, 5, 9, 130})
          for (bool bias : {false, true}) {
            const at::Tensor x = at::randn({M, K}), w = at::randn({N, K}), b = bias ? at::randn({N}) : at::Tensor();
            ASSERT_TRUE(model::decode_kernel_applies(x, w, b));
            expect_close(
                model::linear(x, w, b), x, w, b,
                isa + " M=" + std::to_string(M) + " K=" + std::to_string(K) + " N=" + std::to_string(N) + (bias ? " bias" : ""));
          }
  }
}

TEST(DecodeLinear, ModelShapesSplitOverThreadsMatchFp64) {
  KernelSetting keep;
  const auto list = isas();
  if (list.empty()) GTEST_SKIP() << "this CPU has neither AVX-512 nor AVX2+FMA";
  at::manual_seed(2);
  for (const auto& isa : list) {
    ASSERT_TRUE(model::set_decode_kernel_isa(isa));
    // A decoding step's shapes: (B, 1, E) hidden states through a projection, an MLP's up and
    // down projections, and an LM head whose row count is not a multiple of the row blocks.
    for (auto [K, N] : std::vector<std::pair<int64_t, int64_t>>{{768, 768}, {768, 3072}, {3072, 768}, {256, 5003}}) {
      const at::Tensor x = at::randn({4, 1, K}), w = at::randn({N, K}) / 4, b = at::randn({N});
      const at::Tensor y = model::linear(x, w, b);
      EXPECT_EQ(y.sizes(), (std::vector<int64_t>{4, 1, N}));
      expect_close(y, x, w, b, isa + " K=" + std::to_string(K) + " N=" + std::to_string(N));
    }
  }
}

TEST(DecodeLinear, StridedInputIsReadAsItsValues) {
  KernelSetting keep;
  if (isas().empty()) GTEST_SKIP() << "this CPU has neither AVX-512 nor AVX2+FMA";
  at::manual_seed(3);
  // The last position of a prefill, (B, T, E).select(1, T - 1): rows E * T apart.
  const at::Tensor h = at::randn({3, 5, 40}), w = at::randn({21, 40});
  const at::Tensor last = h.select(1, 4);
  ASSERT_FALSE(last.is_contiguous());
  ASSERT_TRUE(model::decode_kernel_applies(last, w, {}));
  expect_close(model::linear(last, w), last, w, {}, "strided rows");
}

TEST(DecodeLinear, WhatTheKernelMustNotTakeGoesToAtLinear) {
  KernelSetting keep;
  at::manual_seed(4);
  const at::Tensor w = at::randn({6, 10}), x = at::randn({2, 10});
  // More rows than the kernel takes, fp64, a transposed (non-contiguous) W, a (..., K) mismatch
  // left for at::linear to report.
  EXPECT_FALSE(model::decode_kernel_applies(at::randn({model::kDecodeKernelMaxRows + 1, 10}), w, {}));
  EXPECT_FALSE(model::decode_kernel_applies(x.to(at::kDouble), w.to(at::kDouble), {}));
  EXPECT_FALSE(model::decode_kernel_applies(x, at::randn({10, 6}).t(), {}));
  EXPECT_FALSE(model::decode_kernel_applies(at::randn({2, 9}), w, {}));
  EXPECT_THROW(model::linear(at::randn({2, 9}), w), c10::Error);
  const at::Tensor big = at::randn({model::kDecodeKernelMaxRows + 1, 10});
  expect_close(model::linear(big, w), big, w, {}, "fallback, many rows");
  const at::Tensor wt = at::randn({10, 6}).t();
  expect_close(model::linear(x, wt), x, wt, {}, "fallback, transposed W");
}

TEST(DecodeLinear, AutogradSeesTheProductWhenItMust) {
  KernelSetting keep;
  at::manual_seed(5);
  const at::Tensor w = at::randn({6, 10}).requires_grad_(true), x = at::randn({2, 10});
  EXPECT_FALSE(model::decode_kernel_applies(x, w, {}));  // a graph to record: at::linear
  const at::Tensor y = model::linear(x, w);
  ASSERT_TRUE(y.requires_grad());
  y.sum().backward();
  // d sum(x W^T) / dW[n, k] = sum_m x[m, k].
  EXPECT_TRUE(at::allclose(w.grad(), x.sum(0).unsqueeze(0).expand({6, 10}), 1e-6, 1e-6));
  {
    at::NoGradGuard no_grad;  // generation: no graph, the kernel where the CPU has one
    EXPECT_EQ(model::decode_kernel_applies(x, w, {}), model::decode_kernel_enabled());
    EXPECT_FALSE(model::linear(x, w).requires_grad());
  }
}

TEST(DecodeLinear, OffMeansAtLinearEverywhere) {
  KernelSetting keep;
  const at::Tensor x = at::randn({2, 10}), w = at::randn({6, 10});
  model::set_decode_kernel(false);
  EXPECT_FALSE(model::decode_kernel_enabled());
  EXPECT_FALSE(model::decode_kernel_applies(x, w, {}));
  EXPECT_TRUE(at::equal(model::linear(x, w), at::linear(x, w)));
  EXPECT_FALSE(model::set_decode_kernel_isa("sse9"));
}

TEST(DecodeLinear, Int8WeightsMatchFp64OnTheirGrid) {
  KernelSetting keep;
  at::manual_seed(6);
  std::vector<std::string> list = isas();
  list.push_back("off");  // the fallback: at::linear on the dequantized weight
  for (const auto& isa : list) {
    if (isa == "off") model::set_decode_kernel(false);
    else ASSERT_TRUE(model::set_decode_kernel_isa(isa));
    // Every row count of one pass, then several passes (a prefill) and beyond what it takes.
    std::vector<int64_t> rows;
    for (int64_t M = 1; M <= model::kDecodeKernelMaxRows + 1; ++M) rows.push_back(M);
    for (int64_t M : {int64_t{17}, model::kInt8KernelMaxRows, model::kInt8KernelMaxRows + 1}) rows.push_back(M);
    for (int64_t M : rows)
      for (int64_t K : {1, 7, 16, 19, 100})
        for (int64_t N : {1, 4, 5, 130}) {
          const at::Tensor x = at::randn({M, K}), w = at::randn({N, K}), b = at::randn({N});
          const model::Int8Weight q = model::quantize_int8_rows(w);
          const at::Tensor y = model::linear_int8(x, q, b);
          // The grid's fp32 values, as the int8-rounded model holds them.
          expect_close(y, x, q.dequantized(at::kFloat), b,
                       "int8 " + isa + " M=" + std::to_string(M) + " K=" + std::to_string(K) + " N=" + std::to_string(N));
        }
  }
}
