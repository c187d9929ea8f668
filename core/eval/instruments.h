#pragma once
// Instruments that show where and how a model forgot (the workbench draws them; `lethe
// instrument` prints them as JSON). No torch in this header.
//   logit lens        (nostalgebraist 2020, "interpreting GPT: the logit lens"): the next-token
//                     distribution read from every layer's residual stream through the model's
//                     final norm and LM head (CausalLMImpl::final_norm), original beside
//                     unlearned: where in depth the harmful answer's first token stops winning.
//   layer similarity  per layer, the mean cosine similarity between two models' residual streams
//                     over the real tokens of the same texts; on forget vs normal data it shows
//                     how deep the change reaches and whether it is specific to the forget set.
//   token log-probs   every answer token's log-probability given the question (score_ids),
//                     under the original and the unlearned model.
// Layers are numbered as layer_states gives them: 0 = the embeddings (what the first decoder
// layer reads), l = the output of decoder layer l (1..L); the lens of layer L is the model's own
// next-token distribution.
#include <cstdint>
#include <string>
#include <vector>

#include "text/tokenizer.h"

namespace lethe::model {
class CausalLMImpl;
}  // namespace lethe::model

namespace lethe::eval {

struct LensToken {
  int64_t id = 0;
  std::string text;  // the token decoded alone
  double prob = 0;
};
struct LensLayer {
  int64_t layer = 0;
  std::vector<LensToken> top;  // the k likeliest next tokens, most likely first (ties: lower id)
  double target_prob = 0;      // the probability of the target token
  int64_t target_rank = 0;     // its rank (1 = the likeliest)
};
struct LensResult {
  int64_t position = 0;           // the position read (the last of `ids`): it predicts the next token
  LensToken target;               // prob: at the last layer
  std::vector<LensLayer> layers;  // L + 1
};

// The logit lens at the last position of `ids` (one sequence, no padding), in float64 from the
// model's dtype: softmax(final_norm(state_l) · W_head) for every layer l. `target_id` < 0 picks
// the last layer's likeliest token. Throws lethe::Error for empty ids, ids out of the
// vocabulary, k < 1, or a target outside the vocabulary.
LensResult logit_lens(model::CausalLMImpl& m, const text::Tokenizer& tok, const std::vector<int64_t>& ids, int64_t k = 5,
                      int64_t target_id = -1);

// Per layer (L + 1 values), the mean over every real token of `sequences` of the cosine
// similarity between model `a`'s and model `b`'s residual streams (float64 from the models'
// dtype; a zero vector's similarity is 0). The models must have the same layer count and width.
// Batches of `batch_size`, right-padded; padding changes nothing. Throws lethe::Error for no
// sequences, an empty one, or models that differ in shape.
std::vector<double> layer_similarity(model::CausalLMImpl& a, model::CausalLMImpl& b,
                                     const std::vector<std::vector<int64_t>>& sequences, int64_t pad_id, int64_t batch_size = 8);

}  // namespace lethe::eval
