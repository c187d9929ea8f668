#pragma once
// Internal to core/eval (includes torch): the answer-scored sequences open-unlearning's metrics
// read (src/data/utils.py preprocess_chat_instance; src/evals/metrics/utils.py): the question and
// answer in the prompt format, EOS appended unless the last id is EOS, labels from the first
// answer token on (never position 0, which nothing predicts). The membership-inference scores
// (mia.cpp) and the TOFU metrics (tofu.cpp) both score them.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/datasets.h"
#include "data/prompt_format.h"
#include "model/generate.h"
#include "text/tokenizer.h"

namespace lethe::model {
class CausalLMImpl;
}

namespace lethe::eval::detail {

struct LabelledSequence {
  std::vector<int64_t> ids;
  int64_t start = 1;        // the first labelled position (>= 1)
  std::string answer_text;  // the labelled ids decoded, special tokens left out
};

// One sequence per pair. `what` names the caller in errors ("MIA", "TOFU"): a pair with no
// token to score (an empty answer and no EOS) or longer than `max_positions` (> 0) is refused
// naming the sample: `names[i]` when given (e.g. "the item at line 4, its perturbed answer 2,"),
// else "sample N".
std::vector<LabelledSequence> labelled_sequences(const text::Tokenizer& tok, const std::vector<data::QaPair>& pairs,
                                                 const data::PromptFormat& format, int64_t max_positions, const std::string& what,
                                                 const std::vector<std::string>* names = nullptr);

// Runs the model over the sequences in right-padded batches of `batch_size` (eval mode, no
// gradient; the model's mode is given back) and calls f(index, rows) with rows (n - start, V): the
// logits of the positions that predict the labelled tokens ids[start..n). Asks `cancelled` before
// each batch and throws model::Cancelled naming `what`.
void for_each_answer_rows(model::CausalLMImpl& model, int64_t pad, const std::vector<LabelledSequence>& seqs, int64_t batch_size,
                          const model::CancelCheck& cancelled, const std::string& what,
                          const std::function<void(size_t, const at::Tensor&)>& f);

// A float64 CPU tensor's values.
std::vector<double> to_vector(const at::Tensor& t);

}  // namespace lethe::eval::detail
