#include "model/memory_estimate.h"

#include <algorithm>
#include <sstream>

#include "model/inspect.h"

namespace lethe::model {

namespace {
// Values autograd keeps per token and decoder layer, in units of the hidden size and of the MLP
// width, counted from the layers as written (opt.cpp, llama.cpp, layers.cpp):
//   OPT: the layer norms' inputs and outputs (4), the head-split copies of q, k, v the batched
//   products read (3), the attention output the out projection reads (1); ReLU's output (1 F).
//   Gated MLPs (Llama and its relatives): the RMS norms' inputs and normalised values (4), q and
//   k after the rotary embedding and their copies (4), v's copy and the attention output (2);
//   gate, up, SiLU(gate) and their product (4 F).
struct LayerCoefficients {
  int64_t hidden, mlp;
};
LayerCoefficients coefficients(const ModelInfo& info) {
  if (info.family == "opt") return {8, 1};
  return {10, 4};
}
}  // namespace

StepMemory estimate_step_memory(const ModelInfo& info, int64_t n_params, const StepShape& s) {
  StepMemory m;
  const bool lora = s.lora_params > 0;
  m.weights = 4 * n_params;
  m.training = lora ? 16 * s.lora_params : 16 * n_params;
  if (s.bf16) m.autocast = 2 * n_params;

  const int64_t rows = s.batch * std::max<int64_t>(1, s.K), tokens = rows * s.seq;
  const LayerCoefficients c = coefficients(info);
  const int64_t value = s.bf16 ? 2 : 4;
  int64_t per_layer = value * (c.hidden * info.hidden_size + c.mlp * info.intermediate_size);
  if (s.explicit_attention) per_layer += 4 * info.num_heads * s.seq;  // softmax is kept in fp32
  if (lora && s.lora_dropout > 0) per_layer += value * s.lora_targets * info.hidden_size;
  // The embeddings, the final norm's input and output and the hidden rows the head reads.
  const int64_t outside = 4 * (info.hidden_size + 2 * info.output_dim);
  m.activations = tokens * ((info.num_layers + 1) * per_layer + outside);

  const int64_t V = info.vocab_size;
  if (s.faithful) {
    m.head = 3 * tokens * V * 4;  // logits, log-softmax, gradient
  } else {
    const int64_t chunk_rows = std::min(tokens, head_chunk_rows(V));
    m.head = 2 * chunk_rows * V * 4 + 2 * tokens * info.output_dim * 4;
  }
  m.runtime = kRuntimeBytes;
  return m;
}

std::string StepMemory::describe() const {
  std::ostringstream o;
  o << "weights " << human_bytes(weights) << ", training state " << human_bytes(training);
  if (autocast) o << ", bf16 weight copies " << human_bytes(autocast);
  o << ", activations " << human_bytes(activations) << ", LM head " << human_bytes(head) << ", runtime " << human_bytes(runtime)
    << " = " << human_bytes(total());
  return o.str();
}

std::string memory_warning(int64_t need, int64_t available, const std::string& where, const StepShape& s) {
  if (available <= 0 || need <= available) return "";
  std::ostringstream o;
  o << "this step needs about " << human_bytes(need) << " (batch " << s.batch << ", " << s.seq << " tokens, K " << s.K
    << (s.lora_params > 0 ? ", LoRA" : ", full parameters") << (s.bf16 ? ", bf16" : ", fp32") << ") but " << where << " has "
    << human_bytes(available) << ": lower the batch, K or the sequence length";
  if (s.lora_params == 0) o << ", or unlearn with LoRA (--lora-rank)";
  if (s.faithful) o << ", or use corrected mode (it never builds the full logits)";
  return o.str();
}

}  // namespace lethe::model
