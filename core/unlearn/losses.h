#pragma once
// The three loss terms of arXiv 2405.15152 / llm_unlearn and the text conventions behind them,
// in two modes (../shared/METHOD.md):
//   faithful  — every convention and quirk of llm_unlearn's utils.py, so numbers compare with
//               published runs;
//   corrected — answer tokens only (the first one included), normalised by the number of
//               targets, and a true KL(P||Q) over real positions.
// Shapes: B batch, T positions, V vocabulary. Everything is vectorised over the batch.
#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "data/prompt_format.h"
#include "text/tokenizer.h"
#include "unlearn/options.h"

namespace lethe::unlearn {

// "### Question: {prompt}\n ### Answer: {response}" (note the space after the newline).
std::string qa_text(const std::string& prompt, const std::string& response);

// One tokenised sequence and the index of its first loss target as the mode defines it.
struct Example {
  std::vector<int64_t> ids;
  int64_t start = 0;
};

// A forget (or any question/answer) sample. faithful: start = len(ids of the prefix ending in
// "Answer: ") - 1, the index of the first answer token (llm_unlearn's start_loc); corrected: the
// same index, found as the common prefix of the full ids and the ids of the prefix without its
// trailing space. With the chat format (corrected mode only): the rendered conversation, start =
// the first token after the assistant header.
Example make_qa_example(const text::Tokenizer& tok, const std::string& prompt, const std::string& response, Mode m,
                        const data::PromptFormat& format = data::PromptFormat::paper());

// llm_unlearn recovers the question of a forget sample from its decoded ids (special tokens and
// padding included, transformers' clean_up_tokenization applied):
// text.split("###")[1].split("Question:")[-1].strip().
std::string recover_question(const text::Tokenizer& tok, const std::vector<int64_t>& ids_with_padding);

// A random-answer sample for `question`. faithful: the prefix's text as recovered, start = 2
// (len() of the tokenizer's output object, not of its ids); corrected: as make_qa_example.
Example make_random_example(const text::Tokenizer& tok, const std::string& question, const std::string& answer, Mode m,
                            const data::PromptFormat& format = data::PromptFormat::paper());

// Which tokens of an example carry loss (are predicted with weight) in a mode, for showing people
// what each term trains on. faithful: tokens start+1 .. end (position t carries the loss of token
// t+1, from start_loc on, so the first answer token is never a target); corrected: start .. end.
std::vector<bool> loss_targets(const Example& e, Mode m);

struct TokenBatch {
  at::Tensor ids;    // (B, T) int64, right-padded with pad_id
  at::Tensor mask;   // (B, T) int64, 1 = token
  at::Tensor start;  // (B) int64
  int64_t tokens = 0;
};
TokenBatch collate(const std::vector<Example>& examples, int64_t pad_id, const at::Device& device);
// The id batches are padded with: the tokenizer's pad token, else EOS (as llm_unlearn-style
// scripts set pad_token = eos_token for tokenizers without one, e.g. Llama's), else 0.
int64_t batch_pad_id(const text::Tokenizer& tok);

// Mean cross-entropy of the answer (a positive number; L_fgt is its negation).
// faithful: per-position CE of logits[:, :-1] vs ids[:, 1:] (pad-id labels ignored), weights 1
// from start on and 0 where the input id is pad_id, divided by their sum; sample loss =
// sum(w[:-1] * loss); mean over samples. corrected: targets t >= start with mask 1, per-sample
// mean over targets, mean over samples that have targets.
at::Tensor loss_answer(const at::Tensor& logits, const TokenBatch& b, Mode m, int64_t pad_id);

// Per-sample sum of answer log-probabilities (targets as in corrected mode), (B). For NPO.
at::Tensor answer_logprob(const at::Tensor& logits, const TokenBatch& b);

// Divergence of the current model Q from the reference P on normal data.
// faithful: -(softmax(P) * log(softmax(Q) + 1e-12)).sum(-1).mean() over every position, padding
// included (a cross-entropy H(P, Q), not a KL). corrected: KL(P || Q) summed over the vocabulary,
// averaged over the positions whose next token is real (0 when Q equals P).
at::Tensor loss_divergence(const at::Tensor& logits_q, const at::Tensor& logits_p, const TokenBatch& b, Mode m);

}  // namespace lethe::unlearn
