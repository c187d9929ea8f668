#pragma once
// Peak memory of one unlearning step, activations included, before anything is allocated: for
// `lethe inspect`, the Model dock and the check a run makes before it starts. Torch-free
// arithmetic on the config's sizes; bench_unlearn_step prints it beside the measured peak RSS.
//
// What a step holds at its peak (trainer.cpp backpropagates each loss term as soon as it is
// computed, so only the largest term's activations are alive at once):
//   weights      4 B/param (fp32 master weights, also under bf16 compute)
//   training     full parameters: gradients 4 + AdamW moments 8 + the frozen reference copy 4
//                B/param; LoRA: 16 B per adapter parameter (the base doubles as the reference)
//   autocast     bf16 compute: a bf16 copy of every weight the forward reads, 2 B/param
//   activations  what autograd keeps for backward, per token of the largest term (the K random
//                answers of every forget sample: batch * K rows): per decoder layer
//                a_D * hidden + a_F * intermediate (+ heads * seq attention probabilities when
//                attention is explicit), each value 4 B (2 B under bf16 for matmul outputs),
//                plus one more layer's worth for the gradients alive during backward
//   LM head      corrected mode: one chunk of fp32 logits and its gradient (head_losses.h);
//                faithful mode: the dense (rows, seq, vocab) fp32 logits, their log-softmax
//                and gradient
//   runtime      the process before the model (libtorch, the tokenizer, the data)
#include <algorithm>
#include <cstdint>
#include <string>

#include "model/model_config.h"

namespace lethe::model {

struct StepShape {
  int64_t batch = 2;
  int64_t seq = 128;               // tokens per row (the longest row of a batch)
  int64_t K = 5;                   // random answers per forget sample (0: a method without L_rdn)
  bool bf16 = false;               // bf16 compute with fp32 master weights
  int64_t lora_params = 0;         // adapter parameters; 0 = full-parameter unlearning
  int64_t lora_targets = 0;        // adapted linear layers per decoder layer
  double lora_dropout = 0;         // > 0: each adapted layer's input is copied through dropout
  bool faithful = false;           // llm_unlearn's dense logits
  bool explicit_attention = true;  // the attention probabilities are kept (libtorch 1.13)
};

struct StepMemory {
  int64_t weights = 0, training = 0, autocast = 0, activations = 0, head = 0, runtime = 0;
  int64_t total() const { return weights + training + autocast + activations + head + runtime; }
  // One line per part, for inspect and the Model dock.
  std::string describe() const;
};

// How many bytes of fp32 logits (and as many of their gradient) one chunk of the LM head's
// losses may hold (unlearn/head_losses.h), and the rows per chunk for a vocabulary of `vocab`
// (at least 1).
constexpr int64_t kHeadChunkBytes = int64_t{64} << 20;
inline int64_t head_chunk_rows(int64_t vocab, int64_t bytes = kHeadChunkBytes) {
  return std::max<int64_t>(1, bytes / (4 * std::max<int64_t>(1, vocab)));
}

// The process's memory before a model loads (measured on Debian 12 with libtorch 1.13: ~0.3 GiB).
constexpr int64_t kRuntimeBytes = int64_t{320} << 20;

StepMemory estimate_step_memory(const ModelInfo& info, int64_t n_params, const StepShape& s);

// "" when `need` fits in `available` bytes of `where` ("this machine's memory (RAM)",
// "cuda:0's free memory"); else a warning naming both sizes and what to change.
std::string memory_warning(int64_t need, int64_t available, const std::string& where, const StepShape& s);

}  // namespace lethe::model
