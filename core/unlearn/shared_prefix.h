#pragma once
// The K random answers of a forget sample share its question (L_rdn, corrected mode): the
// question is run once per sample and the K answers continue from its keys and values, instead
// of K rows each re-reading it. Gradients flow into the shared question once per sample (the sum
// of its K rows' gradients, as K separate rows give). The same loss and gradients as the K
// separate rows: tests/numeric/test_shared_prefix.cpp, within 1e-5 in fp32 (OPT in fp64: 1e-10)
// against the dense loss of the unshared batch, central differences in fp64; OPT, Llama and
// Mistral with a sliding window.
//
// Prefixes are left-padded, so every row's real tokens stay contiguous (positions, causal and
// sliding-window masks see the same distances as in the unshared row).
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "model/causal_lm.h"
#include "unlearn/losses.h"

namespace lethe::unlearn {

struct SharedPrefixBatch {
  int64_t K = 0;
  // (B, P): each sample's shared first tokens, left-padded with the pad id, mask 0 there.
  TokenBatch prefix;
  // (B*K, 1 + A), sample-major: the prefix's last token, then the row's remaining tokens
  // (right-padded); start = the row's first answer token in these coordinates. The loss reads
  // it as loss_answer reads a row; the model reads columns 1.. after the prefix.
  TokenBatch rows;
};

// The shared form of the sample-major rows (sample i's K rows at i*K .. i*K+K-1), or nothing
// when it would not be exact: a sample whose K rows do not share at least their first token
// before every answer starts, or no row with a token after its prefix.
std::optional<SharedPrefixBatch> share_prefixes(const std::vector<Example>& rows, int64_t K, int64_t pad_id,
                                                const at::Device& device);

// The mean answer cross-entropy of the rows (loss_answer in corrected mode of the unshared
// batch), the question run once per sample.
at::Tensor shared_prefix_answer_loss(model::CausalLMImpl& m, const SharedPrefixBatch& s);

}  // namespace lethe::unlearn
