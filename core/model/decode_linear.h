#pragma once
// The linear layers of a decoding step: y = x W^T + b for the few rows (batch x 1 token) that
// generation feeds through every weight matrix per token. There a GEMM library treats the
// product as a thin GEMM and streams W at a fraction of the memory's bandwidth (OpenBLAS: 10-12
// GB/s of a 2-core machine's 30); `linear` instead reads each row of W once into registers and
// multiplies it with all the rows of x (AVX-512 or AVX2+FMA, picked at run time), splitting the
// rows of W over the threads. Everything else -- more rows, other dtypes or devices, anything
// autograd must see -- goes to at::linear.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>

namespace lethe::model {

// The most rows of x (the product of its leading dimensions) the kernel takes in one pass over
// W, and for fp32 weights at all: beyond it a GEMM library's blocking wins.
constexpr int64_t kDecodeKernelMaxRows = 8;
// With int8 weights the kernel takes up to this many rows (a prompt's prefill), in passes of
// kDecodeKernelMaxRows: cheaper than dequantising the whole weight for one product.
constexpr int64_t kInt8KernelMaxRows = 64;

// at::linear(x, w, b), through the decoding kernel where it applies (decode_kernel_applies).
at::Tensor linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b = {});

// Whether `linear` would use the kernel for these arguments: enabled, a CPU with AVX2+FMA, fp32
// CPU tensors, a contiguous w, at most kDecodeKernelMaxRows rows, and no autograd graph to record.
bool decode_kernel_applies(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b);

// A weight on the int8 grid of eval/quantize.h: symmetric, one scale per output row,
// scale = max|w_row| / 127, q = clamp(round(w / scale), -127, 127) (a row of zeros: scale 0).
struct Int8Weight {
  at::Tensor q;                                        // (out, in) int8, contiguous
  at::Tensor scale;                                    // (out) fp32
  at::Tensor dequantized(at::ScalarType dtype) const;  // q * scale, (out, in)
};
// Throws lethe::Error for a weight that is not a 2-D floating-point tensor or not finite.
Int8Weight quantize_int8_rows(const at::Tensor& w);

// x (..., in) -> (..., out) = x (q * scale)^T + b: the kernel reads the int8 weights directly
// (a quarter of fp32's memory traffic) for up to kInt8KernelMaxRows rows of x; otherwise
// at::linear on the dequantized weight. No gradient reaches the weight.
at::Tensor linear_int8(const at::Tensor& x, const Int8Weight& w, const at::Tensor& b = {});

// Process-wide; on by default where the CPU supports it. LETHE_DECODE_KERNEL=off in the
// environment turns it off (for comparisons), =avx2 picks the AVX2 path on an AVX-512 CPU;
// set_decode_kernel(false) and set_decode_kernel_isa likewise.
void set_decode_kernel(bool on);
bool decode_kernel_enabled();
// "avx512", "avx2" or "none": the instruction set the kernel uses.
const char* decode_kernel_isa();
// Chooses "avx512" or "avx2" (and turns the kernel on); false where this CPU lacks it.
bool set_decode_kernel_isa(const std::string& isa);

}  // namespace lethe::model
