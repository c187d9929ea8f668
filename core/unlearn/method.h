#pragma once
// The unlearning methods behind one interface. A method says what a step needs (options.h's
// MethodNeeds: the paper's K random answers, a normal/retain batch, the frozen original, an
// alternative "I don't know" answer per forget question) and computes its terms; the trainer
// (trainer.cpp) draws the batches, runs autocast, backpropagates each weighted term as soon as
// it is computed, clips and steps. A step minimises
//
//     eps1 * forget + eps2 * L_rdn + eps3 * retain
//
// (fine-tuning: the forget set's answer cross-entropy alone, at weight 1). L_rdn, the paper's
// random-answer term, is the trainer's; `forget` and `retain` are the method's. docs/METHODS.md
// gives every method's formula, its paper and the published defaults.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/causal_lm.h"
#include "unlearn/losses.h"
#include "unlearn/options.h"

namespace lethe::unlearn {

// What a method's terms read besides the batches: the trained model and the frozen original.
class MethodContext {
 public:
  virtual ~MethodContext() = default;
  virtual model::CausalLMImpl& model() = 0;
  // The frozen original's logits (no autograd state): a copy, or the base with adapters off.
  virtual at::Tensor reference_logits(const TokenBatch& b) = 0;
  // The frozen original's residual stream after decoder layer `layer` (no autograd state).
  virtual at::Tensor reference_state(const TokenBatch& b, int64_t layer) = 0;
  // The frozen original's final hidden states (what its LM head reads; no autograd state) and
  // its head's weight: for the losses that apply the head only where they read it
  // (head_losses.h).
  virtual at::Tensor reference_hidden(const TokenBatch& b) = 0;
  virtual at::Tensor reference_head_weight() = 0;
  virtual const UnlearnOptions& options() const = 0;
  virtual int64_t pad_id() const = 0;
};

class UnlearningMethod {
 public:
  virtual ~UnlearningMethod() = default;
  // The name the forget term has in errors ("L_fgt", "L_npo", ...).
  virtual const char* forget_term_name() const { return "L_fgt"; }
  // The forget term to minimise (weighted by eps1; fine-tuning: by 1). `alternative` is the
  // batch of alternative answers to the same questions, row for row (only when the method needs
  // it). Sets `forget_ce` to the forget batch's mean answer cross-entropy (the stop rule's).
  virtual at::Tensor forget_term(MethodContext& c, const TokenBatch& forget, const TokenBatch* alternative,
                                 double& forget_ce) = 0;
  // The retain term on a normal batch (weighted by eps3). The default: the divergence from the
  // frozen original (the paper's L_nor; MethodNeeds::retain_kl), else the normal answers'
  // cross-entropy (GradDiff's, and open-unlearning's "NLL" retain loss).
  virtual at::Tensor retain_term(MethodContext& c, const TokenBatch& normal);
  // The names of the only parameters that train (RMU), or empty: all the trainer would train.
  virtual std::vector<std::string> trained_parameters(const model::CausalLMImpl& m) const { return {}; }
};

// loss_answer of the model on `b` in mode `mode`. Corrected mode applies the LM head only at the
// answer positions, in chunks (head_losses.h: the same value and gradient without the (B, T, V)
// logits); faithful mode keeps llm_unlearn's dense arithmetic.
at::Tensor model_answer_loss(model::CausalLMImpl& m, const TokenBatch& b, Mode mode, int64_t pad_id);

// The method the options name. Throws lethe::Error when the options and the model do not fit it
// (e.g. RMU's layer outside the model).
std::unique_ptr<UnlearningMethod> make_method(const UnlearnOptions& o, const model::CausalLMImpl& m);

}  // namespace lethe::unlearn
