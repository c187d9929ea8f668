#pragma once
// The tensor half of eval/quantize.h: one weight matrix rounded to a scheme's grid and back.
#include <ATen/core/Tensor.h>

#include "eval/quantize.h"

namespace lethe::eval {

// w (out, in), floating point, any device -> a new tensor of w's dtype, device and shape on the
// grid of `s` (the conventions at the top of eval/quantize.h). Throws lethe::Error for an invalid
// scheme (bits other than 8 or 4, an int4 group size < 1, an int8 group size other than 0), a
// tensor that is not a 2-D floating-point one, or a value that is not finite.
at::Tensor fake_quantize(const at::Tensor& w, const QuantizeScheme& s);

}  // namespace lethe::eval
