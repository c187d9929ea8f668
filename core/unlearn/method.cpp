#include "unlearn/method.h"

#include <ATen/ATen.h>

#include <functional>
#include <utility>

#include "unlearn/head_losses.h"
#include "unlearn/method_losses.h"
#include "unlearn/rmu.h"
#include "util/error.h"

namespace lethe::unlearn {

at::Tensor model_answer_loss(model::CausalLMImpl& m, const TokenBatch& b, Mode mode, int64_t pad_id) {
  if (mode == Mode::Faithful) return loss_answer(m.forward(b.ids, b.mask), b, mode, pad_id);
  return answer_ce_from_hidden(m.hidden(b.ids, b.mask), m.lm_head_weight(), b);
}

at::Tensor UnlearningMethod::retain_term(MethodContext& c, const TokenBatch& normal) {
  auto& m = c.model();
  if (method_needs(c.options()).retain_kl) {
    if (c.options().mode == Mode::Faithful) {
      at::Tensor p = c.reference_logits(normal);
      return loss_divergence(m.forward(normal.ids, normal.mask), p, normal, Mode::Faithful);
    }
    // Corrected: the head only at positions whose next token is real, in chunks, for both models.
    at::Tensor hp = c.reference_hidden(normal);
    return divergence_from_hidden(m.hidden(normal.ids, normal.mask), m.lm_head_weight(), hp, c.reference_head_weight(), normal);
  }
  return model_answer_loss(m, normal, Mode::Corrected, c.pad_id());
}

namespace {

// The forget batch's mean answer cross-entropy as a number for the log (no autograd state).
double answer_ce(const at::Tensor& logits, const TokenBatch& b, int64_t pad) {
  return loss_answer(logits.detach(), b, Mode::Corrected, pad).item<double>();
}

// Fine-tuning: descend the answer cross-entropy (the copyright variant teaches the text first).
class Finetune final : public UnlearningMethod {
 public:
  at::Tensor forget_term(MethodContext& c, const TokenBatch& f, const TokenBatch*, double& forget_ce) override {
    at::Tensor ce = model_answer_loss(c.model(), f, c.options().mode, c.pad_id());
    forget_ce = ce.item<double>();
    return ce;
  }
};

// The paper's and GradDiff's forget term: gradient ascent on the answer cross-entropy (in the
// mode's conventions). Their retain terms differ by what the method needs (the default).
class GradientAscent final : public UnlearningMethod {
 public:
  at::Tensor forget_term(MethodContext& c, const TokenBatch& f, const TokenBatch*, double& forget_ce) override {
    at::Tensor ce = model_answer_loss(c.model(), f, c.options().mode, c.pad_id());
    forget_ce = ce.item<double>();
    return -ce;
  }
};

// NPO (Zhang et al. 2024): -(2/beta) * log sigmoid(-beta * (log pi(y|x) - log pi_ref(y|x))),
// the answers' summed log-likelihoods, mean over the batch.
class Npo final : public UnlearningMethod {
 public:
  const char* forget_term_name() const override { return "L_npo"; }
  at::Tensor forget_term(MethodContext& c, const TokenBatch& f, const TokenBatch*, double& forget_ce) override {
    const double beta = c.options().npo_beta;
    at::Tensor lf = c.model().forward(f.ids, f.mask);
    at::Tensor lp = answer_logprob(lf, f);
    at::Tensor lp_ref = answer_logprob(c.reference_logits(f), f);
    at::Tensor loss = -(2.0 / beta) * at::log_sigmoid(-beta * (lp - lp_ref)).mean();
    forget_ce = answer_ce(lf, f, c.pad_id());
    return loss;
  }
};

// A method whose forget term is a function of the trained model's logits on the forget batch
// (and the context: the reference's logits, the options): SimNPO, WGA, SatImp, CE-U, UNDIAL.
class LogitsLoss final : public UnlearningMethod {
 public:
  using Loss = std::function<at::Tensor(MethodContext& c, const at::Tensor& logits, const TokenBatch& forget)>;
  LogitsLoss(const char* name, Loss loss) : name_(name), loss_(std::move(loss)) {}
  const char* forget_term_name() const override { return name_; }
  at::Tensor forget_term(MethodContext& c, const TokenBatch& f, const TokenBatch*, double& forget_ce) override {
    at::Tensor lf = c.model().forward(f.ids, f.mask);
    at::Tensor loss = loss_(c, lf, f);
    forget_ce = answer_ce(lf, f, c.pad_id());
    return loss;
  }

 private:
  const char* name_;
  Loss loss_;
};

// IdkDPO: DPO with the alternative ("I don't know") answer preferred over the forget answer.
class IdkDpo final : public UnlearningMethod {
 public:
  const char* forget_term_name() const override { return "L_dpo"; }
  at::Tensor forget_term(MethodContext& c, const TokenBatch& f, const TokenBatch* alt, double& forget_ce) override {
    if (!alt) throw Error("idkdpo needs an alternative answer per forget question");
    at::Tensor lose = c.model().forward(f.ids, f.mask);
    at::Tensor win = c.model().forward(alt->ids, alt->mask);
    at::Tensor loss = loss_dpo(win, c.reference_logits(*alt), *alt, lose, c.reference_logits(f), f, c.options().dpo_beta);
    forget_ce = answer_ce(lose, f, c.pad_id());
    return loss;
  }
};

// The tokens RMU's losses read: the answer tokens (open-unlearning's labels != -100), position
// t for token t.
at::Tensor answer_tokens(const TokenBatch& b) {
  at::Tensor pos = at::arange(b.ids.size(1), b.ids.options()).unsqueeze(0);
  return ((pos >= b.start.unsqueeze(1)) & (b.mask == 1)).to(at::kLong);
}

// RMU: the hooked layer's output on forget data steered to c*u, on normal data kept at the
// original's; only rmu.span layers' rmu.modules train.
class Rmu final : public UnlearningMethod {
 public:
  Rmu(const UnlearnOptions& o, const model::CausalLMImpl& m) : o_(o) {
    const int64_t layers = m.info().num_layers;
    if (o.rmu_layer >= layers)
      throw Error("rmu.layer " + std::to_string(o.rmu_layer) + " is outside the model: it has " + std::to_string(layers) +
                  " decoder layers (0.." + std::to_string(layers - 1) + ")");
    if (o.rmu_span > o.rmu_layer + 1)
      throw Error("rmu.span " + std::to_string(o.rmu_span) + " reaches below layer 0 from rmu.layer " +
                  std::to_string(o.rmu_layer));
    for (int64_t l = o.rmu_layer - o.rmu_span + 1; l <= o.rmu_layer; ++l) layers_.push_back(l);
    names_ = rmu_parameter_names(m, layers_, o.rmu_modules);
    control_ = rmu_control_vector(m.info().hidden_size, o.rmu_steering, o.seed, m.options().dtype(at::kFloat));
  }
  const char* forget_term_name() const override { return "L_rmu"; }
  at::Tensor forget_term(MethodContext& c, const TokenBatch& f, const TokenBatch*, double& forget_ce) override {
    auto& m = c.model();
    at::Tensor loss = rmu_forget_loss(m.layer_state(f.ids, f.mask, o_.rmu_layer), answer_tokens(f), control_);
    {
      at::NoGradGuard g;  // for the log only: RMU's own forward stops at its layer
      forget_ce = answer_ce(m.forward(f.ids, f.mask), f, c.pad_id());
    }
    return loss;
  }
  at::Tensor retain_term(MethodContext& c, const TokenBatch& n) override {
    return rmu_retain_loss(c.model().layer_state(n.ids, n.mask, o_.rmu_layer), c.reference_state(n, o_.rmu_layer),
                           answer_tokens(n));
  }
  std::vector<std::string> trained_parameters(const model::CausalLMImpl&) const override { return names_; }

 private:
  const UnlearnOptions& o_;
  std::vector<int64_t> layers_;
  std::vector<std::string> names_;
  at::Tensor control_;
};

}  // namespace

std::unique_ptr<UnlearningMethod> make_method(const UnlearnOptions& o, const model::CausalLMImpl& m) {
  switch (o.method) {
    case Method::Finetune:
      return std::make_unique<Finetune>();
    case Method::Paper:
    case Method::GradDiff:
      return std::make_unique<GradientAscent>();
    case Method::Npo:
      return std::make_unique<Npo>();
    case Method::SimNpo:
      return std::make_unique<LogitsLoss>("L_simnpo", [](MethodContext& c, const at::Tensor& l, const TokenBatch& f) {
        return loss_simnpo(l, f, Mode::Corrected, c.options().simnpo_beta, c.options().simnpo_delta);
      });
    case Method::IdkDpo:
      return std::make_unique<IdkDpo>();
    case Method::Wga:
      return std::make_unique<LogitsLoss>("L_wga", [](MethodContext& c, const at::Tensor& l, const TokenBatch& f) {
        return loss_wga(l, f, c.options().wga_beta);
      });
    case Method::SatImp:
      return std::make_unique<LogitsLoss>("L_satimp", [](MethodContext& c, const at::Tensor& l, const TokenBatch& f) {
        return loss_satimp(l, f, c.options().satimp_beta1, c.options().satimp_beta2);
      });
    case Method::CeU:
      return std::make_unique<LogitsLoss>("L_ceu", [](MethodContext& c, const at::Tensor& l, const TokenBatch& f) {
        return loss_ceu(l, f, Mode::Corrected, c.options().ceu_ignore_first);
      });
    case Method::Undial:
      return std::make_unique<LogitsLoss>("L_undial", [](MethodContext& c, const at::Tensor& l, const TokenBatch& f) {
        return loss_undial(l, c.reference_logits(f), f, Mode::Corrected, c.options().undial_beta);
      });
    case Method::Rmu:
      return std::make_unique<Rmu>(o, m);
  }
  throw Error(std::string("no implementation of method ") + method_name(o.method));
}

}  // namespace lethe::unlearn
