#pragma once
// Weight fake quantisation: the robustness probe of Zhang et al. 2024 ("Catastrophic Failure of
// LLM Unlearning via Quantization", arXiv 2410.16454), where quantising an unlearned model brings
// forgotten knowledge back. quantize_weights rounds a model's weights in place to a quantisation
// grid and back (the tensors keep their dtype and device), so the same evaluation can run on the
// rounded model.
//
// Round-to-nearest (RTN), the baseline of GPTQ and AWQ and the paper's RTN setting; weights are
// (out, in) as a linear layer stores them:
//   int8      symmetric, one scale per output row: scale = max|w_row| / 127,
//             q = clamp(round(w / scale), -127, 127), w' = q * scale. -128 is not used: the grid
//             stays symmetric (w and -w round to opposite values) and |w / scale| <= 127 anyway,
//             as in LLM.int8()'s absmax quantisation. A row of zeros stays zero.
//   int4:gG   asymmetric, one scale and zero point per G consecutive input columns of a row; when
//             G does not divide the width the last group of each row is shorter (as GPTQ's groups
//             at the end of a row; G larger than the width: one group per row). The range is
//             widened to include 0, as GPTQ's Quantizer.find_params (xmin = min(min, 0),
//             xmax = max(max, 0)): scale = (xmax - xmin) / 15, zero = round(-xmin / scale) (always
//             in [0, 15], so it fits 4 bits), q = clamp(round(w / scale) + zero, 0, 15),
//             w' = (q - zero) * scale. 0 is on the grid, so zero weights stay exactly zero, and a
//             group of one sign is never clipped (without the widening a negative-only group needs
//             a zero point above 15). A constant group c comes back as 15 * (c / 15) (c within
//             rounding); a group of zeros (scale 0) is left as it is, without a division by zero.
//   round() is half to even (torch.round). The arithmetic is fp32 (fp64 for fp64 weights); bf16
//   and fp16 weights are rounded on the fp32 grid and cast back, which puts them within their own
//   rounding of it.
#include <cstdint>
#include <string>
#include <vector>

namespace lethe::model {
class CausalLMImpl;
}  // namespace lethe::model

namespace lethe::eval {

inline constexpr int64_t kInt4DefaultGroupSize = 128;  // GPTQ's and AWQ's usual 4-bit group

struct QuantizeScheme {
  std::string name;        // canonical text: "int8", "int4:g128", "int4:g64"
  int bits = 8;            // 8 (symmetric, per output row) or 4 (asymmetric, per group)
  int64_t group_size = 0;  // int4: input columns per group (>= 1); int8: 0 (one scale per row)
};

// "int8"; "int4" (groups of 128 input columns); "int4:gN" (groups of N >= 1). Throws lethe::Error
// naming the text and the accepted forms for anything else.
QuantizeScheme parse_quantize_scheme(const std::string& text);

struct QuantizeReport {
  int64_t tensors = 0;             // weight matrices rounded
  int64_t weights = 0;             // their elements
  double max_abs_change = 0;       // max |w' - w| over those elements
  double rms_change = 0;           // sqrt(mean (w' - w)^2) over those elements
  std::vector<std::string> names;  // their parameter names, in module order
};

// The parameters quantize_weights rounds: the weight of every linear layer inside the decoder
// layers (attention and MLP projections; the family's ModelConfig::layer_linears, the layers
// LoRA's "all-linear" means), in module order. Left alone, as GPTQ, AWQ and the paper's quantised
// models leave them in 16 bits: the token and positional embeddings (lookups, not matmuls), the
// LM head, tied or not (GPTQ/AutoGPTQ and AWQ skip lm_head: it is the most sensitive layer),
// norms and biases (vectors, a negligible share of the memory) and OPT's project_in/out (outside
// the decoder layers). Throws lethe::Error when the module's names disagree with its config.
std::vector<std::string> quantizable_weight_names(model::CausalLMImpl& m);

// Rounds those weights in place (see the top of this file) and reports the change. Throws
// lethe::Error for an invalid scheme, LoRA adapters attached (merge them first: quantising the
// base under an adapter is not what a deployed model would be), or a weight that is not finite.
QuantizeReport quantize_weights(model::CausalLMImpl& m, const QuantizeScheme& s);

// Int8 weights for generation (`lethe generate --int8`): the weights quantize_weights rounds get
// their int8 grid (scheme int8) as int8 values and row scales beside them, and their linear
// layers compute with it (model::LinearImpl::int8) -- the decoding kernel reads the int8 bytes,
// a quarter of fp32's memory traffic per generated token; products of more rows use the
// dequantized grid. The outputs are those of the int8-rounded model (quantize_weights with
// "int8") within fp32 rounding; the fp32 weights stay (memory grows by a quarter of theirs).
// Not for training or metrics. Throws what quantize_weights throws; the report's changes are
// those of the rounding.
QuantizeReport use_int8_weights(model::CausalLMImpl& m);

}  // namespace lethe::eval
