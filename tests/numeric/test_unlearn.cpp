// The unlearning engine beyond the faithful reference: gradient checks of every term in double
// precision, the divergence's properties, determinism, convergence, cancel/resume, LoRA, and
// the checks that reject bad input before any compute.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "model/opt.h"
#include "io/safetensors.h"
#include "model/checkpoint.h"
#include "support/tiny_opt.h"
#include "support/unlearn_fixture.h"
#include "text/load_tokenizer.h"
#include "unlearn/trainer.h"
#include "util/error.h"
#include "util/runtime.h"

using namespace lethe;
using lethe::testing::TempDir;
namespace fs = std::filesystem;

namespace {

struct Recorder : unlearn::Observer {
  std::vector<unlearn::StepMetrics> steps;
  unlearn::CancelToken* cancel = nullptr;
  int64_t cancel_at = -1;
  void on_step(const unlearn::StepMetrics& m) override {
    steps.push_back(m);
    if (cancel && m.step == cancel_at) cancel->cancel();
  }
};

struct Env {
  TempDir dir;
  std::unique_ptr<text::Tokenizer> tok;
  Env() {
    lethe::testing::write_gpt2_tiny_model(dir / "model");
    tok = text::load_tokenizer(dir / "model");
  }
  model::LoadedModel load(const std::string& dtype = "fp32") { return model::load_model(dir / "model", {dtype, "cpu"}); }
  unlearn::UnlearnData data() const {
    return {lethe::testing::forget_pairs(), lethe::testing::normal_pairs(), lethe::testing::answer_pool()};
  }
};

unlearn::UnlearnOptions quick(unlearn::Mode mode = unlearn::Mode::Corrected) {
  unlearn::UnlearnOptions o;
  o.mode = mode;
  o.K = 2;
  o.lr = 1e-3;
  o.max_steps = 6;
  return o;
}

// A double-precision random OPT small enough for finite differences.
model::CausalLM double_model(uint64_t seed) {
  model::OptConfig c;
  c.vocab_size = 50272;
  c.hidden_size = 8;
  c.num_attention_heads = 2;
  c.num_hidden_layers = 1;
  c.ffn_dim = 16;
  c.max_position_embeddings = 64;
  c.word_embed_proj_dim = 8;
  auto m = model::make_opt(c, at::TensorOptions().dtype(at::kDouble));
  m->init_weights(0.3, seed);
  m->eval();
  return m;
}

using lethe::testing::error_of;

}  // namespace

// ---- loss terms ----

TEST(UnlearnLosses, FiniteDifferenceGradientsOfEveryTerm) {
  Env env;
  auto q = double_model(1), p = double_model(2);
  std::vector<unlearn::Example> fe, ne;
  for (const auto& x : lethe::testing::forget_pairs())
    fe.push_back(unlearn::make_qa_example(*env.tok, x.prompt, x.response, unlearn::Mode::Corrected));
  for (const auto& x : lethe::testing::normal_pairs())
    ne.push_back(unlearn::make_qa_example(*env.tok, x.prompt, x.response, unlearn::Mode::Corrected));
  fe.resize(3);
  ne.resize(3);
  auto fb = unlearn::collate(fe, 1, at::kCPU), nb = unlearn::collate(ne, 1, at::kCPU);
  for (auto mode : {unlearn::Mode::Corrected, unlearn::Mode::Faithful}) {
    std::vector<std::pair<std::string, std::function<at::Tensor()>>> terms = {
        {"answer", [&] { return unlearn::loss_answer(q->forward(fb.ids, fb.mask), fb, mode, 1); }},
        {"divergence",
         [&] { return unlearn::loss_divergence(q->forward(nb.ids, nb.mask), p->forward(nb.ids, nb.mask), nb, mode); }},
    };
    for (auto& [name, f] : terms) {
      // A few entries of three parameters: autograd against central differences.
      for (const char* pname : {"model.decoder.layers.0.fc1.weight", "model.decoder.layers.0.self_attn.q_proj.bias",
                                "model.decoder.embed_positions.weight"}) {
        at::Tensor w = q->named_parameters()[pname];
        for (auto& g : q->parameters()) g.mutable_grad() = at::Tensor();
        f().backward();
        at::Tensor grad = w.grad().clone();
        at::NoGradGuard ng;
        for (int64_t k : {0L, 3L, 7L}) {
          const double h = 1e-6;
          double* x = w.data_ptr<double>() + k;
          const double x0 = *x;
          *x = x0 + h;
          const double up = f().item<double>();
          *x = x0 - h;
          const double down = f().item<double>();
          *x = x0;
          const double fd = (up - down) / (2 * h), ad = grad.view(-1)[k].item<double>();
          EXPECT_NEAR(ad, fd, 1e-6 + 1e-5 * std::abs(fd))
              << unlearn::mode_name(mode) << " " << name << " " << pname << "[" << k << "]";
        }
      }
    }
  }
}

TEST(UnlearnLosses, KlIsZeroForTheSameModelAndPositiveOtherwise) {
  Env env;
  auto q = double_model(1), p = double_model(2);
  std::vector<unlearn::Example> ne;
  for (const auto& x : lethe::testing::normal_pairs())
    ne.push_back(unlearn::make_qa_example(*env.tok, x.prompt, x.response, unlearn::Mode::Corrected));
  auto nb = unlearn::collate(ne, 1, at::kCPU);
  at::NoGradGuard g;
  at::Tensor lq = q->forward(nb.ids, nb.mask);
  EXPECT_EQ(unlearn::loss_divergence(lq, lq, nb, unlearn::Mode::Corrected).item<double>(), 0.0);
  EXPECT_GT(unlearn::loss_divergence(lq, p->forward(nb.ids, nb.mask), nb, unlearn::Mode::Corrected).item<double>(), 1e-3);
  // The faithful "KL" is H(P, Q): at Q = P it is the entropy of P, not 0.
  EXPECT_GT(unlearn::loss_divergence(lq, lq, nb, unlearn::Mode::Faithful).item<double>(), 1.0);
}

TEST(UnlearnLosses, StartPositionsPerMode) {
  Env env;
  const auto f = unlearn::make_qa_example(*env.tok, "Why?", "Because.", unlearn::Mode::Faithful);
  const auto c = unlearn::make_qa_example(*env.tok, "Why?", "Because.", unlearn::Mode::Corrected);
  // "</s>" "###" " Question" ":" " Why" "?" "\n" " ###" " Answer" ":" " Because" "."
  EXPECT_EQ(env.tok->decode({f.ids[static_cast<size_t>(f.start)]}), " Because");
  EXPECT_EQ(f.start, c.start);  // the same index; the modes differ in whether it is a target
  EXPECT_EQ(unlearn::make_random_example(*env.tok, "Why?", "No.", unlearn::Mode::Faithful).start, 2);
  // The question as llm_unlearn recovers it: decoded with special tokens, split, stripped, and
  // with transformers' clean-up (" ?" -> "?").
  auto e = unlearn::make_qa_example(*env.tok, "Is it fine ?", "Yes.", unlearn::Mode::Faithful);
  e.ids.push_back(1);
  e.ids.push_back(1);
  EXPECT_EQ(unlearn::recover_question(*env.tok, e.ids), "Is it fine?");
}

// ---- the loop ----

TEST(Unlearn, SameSeedGivesTheSameCurveBitForBit) {
  Env env;
  std::vector<std::vector<double>> curves;
  for (int run = 0; run < 2; ++run) {
    auto m = env.load();
    auto o = quick();
    o.dropout = true;  // dropout draws are seeded too
    unlearn::Unlearner u(m.model, *env.tok, env.data(), o);
    Recorder r;
    unlearn::CancelToken c;
    u.run(r, c);
    std::vector<double> v;
    for (const auto& s : r.steps) v.insert(v.end(), {s.loss_fgt, s.loss_rdn, s.loss_nor, s.total, s.grad_norm});
    curves.push_back(v);
  }
  ASSERT_EQ(curves[0].size(), 30u);
  EXPECT_EQ(curves[0], curves[1]);
}

TEST(Unlearn, CancelReturnsWithinOneStepAndResumeContinuesTheSameCurve) {
  Env env;
  auto o = quick();
  o.max_steps = 6;
  o.dropout = true;
  // Uninterrupted.
  Recorder full;
  {
    auto m = env.load();
    unlearn::Unlearner u(m.model, *env.tok, env.data(), o);
    unlearn::CancelToken c;
    EXPECT_EQ(u.run(full, c).outcome, unlearn::Outcome::Completed);
  }
  // Cancelled after step 3, with a checkpoint every 2 steps.
  o.checkpoint_every = 2;
  o.checkpoint_dir = env.dir / "ckpt";
  {
    auto m = env.load();
    unlearn::Unlearner u(m.model, *env.tok, env.data(), o);
    unlearn::CancelToken c;
    Recorder r;
    r.cancel = &c;
    r.cancel_at = 3;
    auto res = u.run(r, c);
    EXPECT_EQ(res.outcome, unlearn::Outcome::Cancelled);
    EXPECT_EQ(res.steps, 3);
    EXPECT_TRUE(fs::exists(env.dir / "ckpt" / "last" / "state.json"));
  }
  // Resume from the step-2 checkpoint in a fresh process state.
  auto m = env.load();
  unlearn::Unlearner u(m.model, *env.tok, env.data(), o);
  u.load_checkpoint(env.dir / "ckpt" / "last");
  EXPECT_EQ(u.step(), 2);
  Recorder r;
  unlearn::CancelToken c;
  u.run(r, c);
  ASSERT_EQ(u.curve().size(), 6u);
  for (size_t i = 0; i < 6; ++i) {
    EXPECT_EQ(u.curve()[i].loss_fgt, full.steps[i].loss_fgt) << "step " << i + 1;
    EXPECT_EQ(u.curve()[i].loss_nor, full.steps[i].loss_nor) << "step " << i + 1;
    EXPECT_EQ(u.curve()[i].total, full.steps[i].total) << "step " << i + 1;
  }
}

TEST(Unlearn, ConvergenceSmokeFinetuneThenUnlearn) {
  Env env;
  auto m = env.load();
  // 1. Teach the tiny model the forget set.
  unlearn::UnlearnOptions ft;
  ft.method = unlearn::Method::Finetune;
  ft.lr = 3e-3;
  ft.max_steps = 150;
  ft.batch_size = 5;
  ft.dropout = false;
  unlearn::UnlearnData d = env.data();
  Recorder fr;
  unlearn::CancelToken c;
  unlearn::Unlearner(m.model, *env.tok, d, ft).run(fr, c);
  const double learned_ce = fr.steps.back().forget_ce;
  EXPECT_LT(learned_ce, fr.steps.front().forget_ce * 0.5) << "fine-tuning did not learn the forget set";
  // 2. Unlearn it: the forget cross-entropy must pass the stop threshold while the divergence
  // on normal data stays bounded.
  auto o = quick();
  o.lr = 1e-3;
  o.max_steps = 300;
  o.stop_forget_ce = learned_ce + 5.0;
  o.dropout = false;
  unlearn::Unlearner u(m.model, *env.tok, d, o);
  Recorder r;
  auto res = u.run(r, c);
  EXPECT_EQ(res.outcome, unlearn::Outcome::Stopped) << res.reason;
  EXPECT_GT(r.steps.back().forget_ce, o.stop_forget_ce);
  double max_div = 0;
  for (const auto& s : r.steps) max_div = std::max(max_div, s.loss_nor);
  EXPECT_LT(max_div, 2.0) << "normal-data KL grew past the bound (nats per position)";
}

TEST(Unlearn, LoraReferenceIsTheBaseWithAdaptersOff) {
  Env env;
  auto m = env.load();
  auto o = quick();
  o.lora.rank = 4;
  o.max_steps = 3;
  o.dropout = false;
  unlearn::Unlearner u(m.model, *env.tok, env.data(), o);
  Recorder r;
  unlearn::CancelToken c;
  u.run(r, c);
  // B starts at zero: the model equals the reference before the first update.
  EXPECT_EQ(r.steps[0].loss_nor, 0.0);
  EXPECT_GT(r.steps[2].loss_nor, 0.0);
  // Only the adapters train.
  size_t trainable = 0;
  for (const auto& p : u.model().named_parameters())
    if (p.value().requires_grad()) {
      ++trainable;
      EXPECT_NE(p.key().find(".lora_"), std::string::npos) << p.key();
    }
  EXPECT_EQ(trainable, 2u * 2u * 2u);  // 2 layers x (q_proj, v_proj) x (A, B)
}

TEST(Unlearn, LoraAdapterExportAndMergeGiveTheSameModel) {
  Env env;
  auto m = env.load();
  auto o = quick();
  o.lora.rank = 4;
  o.max_steps = 2;
  unlearn::Unlearner u(m.model, *env.tok, env.data(), o);
  Recorder r;
  unlearn::CancelToken c;
  u.run(r, c);
  unlearn::save_peft_adapter(env.dir / "adapter", u.model(), o.lora, "tiny");
  auto cfg = io::read_json_file(env.dir / "adapter" / "adapter_config.json");
  EXPECT_EQ(cfg["peft_type"], "LORA");
  EXPECT_EQ(cfg["r"], 4);
  auto f = io::SafetensorsFile::open(env.dir / "adapter" / "adapter_model.safetensors");
  EXPECT_NE(f->find("base_model.model.model.decoder.layers.0.self_attn.q_proj.lora_A.weight"), nullptr);
  EXPECT_EQ(f->find("base_model.model.model.decoder.layers.0.self_attn.q_proj.lora_A.weight")->shape,
            (std::vector<int64_t>{4, 16}));
  auto ids = at::tensor({2L, 100L, 200L, 300L}).unsqueeze(0);
  auto mask = at::ones_like(ids);
  at::NoGradGuard g;
  at::Tensor with_adapters = u.model().forward(ids, mask);
  // Adapter loaded onto a fresh base.
  auto base = env.load();
  unlearn::load_peft_adapter(env.dir / "adapter", *base.model);
  EXPECT_LT((base.model->forward(ids, mask) - with_adapters).abs().max().item<double>(), 1e-6);
  // Merged and saved as a plain HF folder.
  unlearn::merge_lora(u.model());
  EXPECT_FALSE(unlearn::has_lora(u.model()));
  model::save_model(env.dir / "merged", u.model());
  auto merged = model::load_model(env.dir / "merged", {"fp32", "cpu"});
  EXPECT_LT((merged.model->forward(ids, mask) - with_adapters).abs().max().item<double>(), 1e-5);
}

TEST(Unlearn, GradDiffAndNpoRun) {
  Env env;
  for (auto method : {unlearn::Method::GradDiff, unlearn::Method::Npo}) {
    auto m = env.load();
    auto o = quick();
    o.method = method;
    o.max_steps = 3;
    o.dropout = false;  // so the first NPO step sees the model equal to its reference
    unlearn::Unlearner u(m.model, *env.tok, env.data(), o);
    Recorder r;
    unlearn::CancelToken c;
    EXPECT_EQ(u.run(r, c).steps, 3);
    for (const auto& s : r.steps) EXPECT_TRUE(std::isfinite(s.total));
    if (method == unlearn::Method::Npo) {
      EXPECT_NEAR(r.steps[0].loss_fgt, 2.0 / o.npo_beta * std::log(2.0), 1e-4);  // the model equals the reference
    }
  }
}

// Corrected mode trains without dropout unless asked: the model equals its reference before the
// first update, so L_nor (the KL to the reference) is exactly 0 at step 1 — with LoRA (adapters
// at zero) and with full parameters (a frozen copy). The tiny model's config has dropout 0.1.
TEST(Unlearn, CorrectedModeHasNoDropoutSoTheFirstKlIsZero) {
  Env env;
  ASSERT_GT(env.load().info.dropout, 0.0);
  for (int64_t rank : {0, 4}) {
    auto m = env.load();
    auto o = quick();
    o.max_steps = 1;
    o.lora.rank = rank;
    unlearn::Unlearner u(m.model, *env.tok, env.data(), o);
    Recorder r;
    unlearn::CancelToken c;
    u.run(r, c);
    ASSERT_EQ(r.steps.size(), 1u);
    EXPECT_EQ(r.steps[0].loss_nor, 0.0) << "LoRA rank " << rank;
    EXPECT_FALSE(r.steps[0].dropout);
    EXPECT_EQ(o.to_json()["dropout"], "auto");
    EXPECT_EQ(o.to_json()["dropout_active"], false);
  }
  // Asked for, dropout is on and the "KL" measures its noise; faithful mode keeps it by default.
  for (auto mode : {unlearn::Mode::Corrected, unlearn::Mode::Faithful}) {
    auto m = env.load();
    auto o = quick(mode);
    o.max_steps = 1;
    if (mode == unlearn::Mode::Corrected) o.dropout = true;
    unlearn::Unlearner u(m.model, *env.tok, env.data(), o);
    Recorder r;
    unlearn::CancelToken c;
    u.run(r, c);
    EXPECT_TRUE(r.steps[0].dropout);
    if (mode == unlearn::Mode::Corrected) {
      EXPECT_GT(r.steps[0].loss_nor, 0.0);
    }
  }
}

// precision auto: bf16 compute where the hardware has native bf16, else fp32; explicit bf16 on a
// CPU without it warns (libtorch's bf16 matmul is ~26x slower than fp32 there).
TEST(Unlearn, PrecisionAutoFollowsTheHardwareAndSlowBf16Warns) {
  Env env;
  for (const auto p : {unlearn::Precision::Auto, unlearn::Precision::Bf16}) {
    auto m = env.load();
    auto o = quick();
    o.max_steps = 1;
    o.precision = p;
    unlearn::Unlearner u(m.model, *env.tok, env.data(), o);
    const bool native = lethe::cpu_has_native_bf16();
    if (p == unlearn::Precision::Auto) {
      EXPECT_EQ(u.options().precision, native ? unlearn::Precision::Bf16 : unlearn::Precision::Fp32);
    }
    EXPECT_EQ(u.warnings().size(), p == unlearn::Precision::Bf16 && !native ? 1u : 0u);
    if (!u.warnings().empty()) {
      EXPECT_NE(u.warnings()[0].find("without native bf16"), std::string::npos);
    }
  }
}

// Out of memory in a step becomes an error that says where, how big, and what to change; other
// libtorch errors pass through. (The message is what a GPU run shows; CPU allocators say it too.)
TEST(Unlearn, OutOfMemoryIsDiagnosed) {
  EXPECT_TRUE(unlearn::is_out_of_memory("CUDA out of memory. Tried to allocate 2.00 GiB"));
  EXPECT_TRUE(unlearn::is_out_of_memory(
      "[enforce fail at alloc_cpu.cpp:83] DefaultCPUAllocator: not enough memory: you tried to allocate 1"));
  EXPECT_FALSE(unlearn::is_out_of_memory("shape mismatch"));
  const std::string m = unlearn::out_of_memory_message("cuda:0", 3, 2, 128, 5, 50272, false, unlearn::Precision::Fp32);
  EXPECT_NE(m.find("out of memory on cuda:0 at step 3 (batch 2, longest sequence 128 tokens, K 5"), std::string::npos) << m;
  EXPECT_NE(m.find("the random-answer logits alone are 0.24 GiB in fp32"), std::string::npos) << m;
  EXPECT_NE(m.find("--lora-rank 32"), std::string::npos);
  EXPECT_NE(m.find("--precision bf16"), std::string::npos);
  EXPECT_EQ(unlearn::out_of_memory_message("cuda:0", 1, 2, 128, 5, 50272, true, unlearn::Precision::Bf16).find("--lora-rank"),
            std::string::npos);
  // Off a GPU the step log carries no GPU memory.
  unlearn::StepMetrics s;
  EXPECT_FALSE(s.to_json().contains("gpu_memory"));
  s.gpu_allocated = 1 << 20;
  s.gpu_reserved = 2 << 20;
  s.gpu_peak = 3 << 20;
  EXPECT_EQ(s.to_json()["gpu_memory"]["peak_allocated"], 3 << 20);
}

// Under autocast the attention scores are bf16 while the hidden states are fp32; the mask value
// must come from the scores (it overflowed bf16 when taken from the hidden states).
TEST(Unlearn, Bf16ComputeTracksFp32) {
  Env env;
  std::vector<double> totals[2];
  for (int k = 0; k < 2; ++k) {
    auto m = env.load();
    auto o = quick();
    o.max_steps = 2;
    o.dropout = false;
    o.precision = k ? unlearn::Precision::Bf16 : unlearn::Precision::Fp32;
    unlearn::Unlearner u(m.model, *env.tok, env.data(), o);
    Recorder r;
    unlearn::CancelToken c;
    u.run(r, c);
    for (const auto& s : r.steps) totals[k].push_back(s.total);
  }
  for (size_t i = 0; i < totals[0].size(); ++i) EXPECT_NEAR(totals[1][i], totals[0][i], 0.02 * std::abs(totals[0][i]));
}

// ---- bad input, rejected before any compute ----

TEST(UnlearnBadInput, OptionsAndDataAreCheckedUpFront) {
  Env env;
  auto m = env.load();
  auto make = [&](unlearn::UnlearnOptions o, unlearn::UnlearnData d) { unlearn::Unlearner(m.model, *env.tok, d, o); };
  auto o = quick();
  auto d = env.data();
  auto with = [&](auto change) {
    auto oo = o;
    change(oo);
    return error_of([&] { make(oo, d); });
  };
  EXPECT_EQ(with([](auto& x) { x.eps2 = -1; }), "eps2: must be >= 0, got -1.0");
  EXPECT_EQ(with([](auto& x) { x.eps1 = x.eps2 = x.eps3 = 0; }), "eps1, eps2 and eps3 are all 0: nothing would be optimised");
  EXPECT_EQ(with([](auto& x) { x.lr = 0; }), "lr: must be > 0, got 0.0");
  EXPECT_EQ(with([](auto& x) { x.K = 0; }), "K: must be at least 1, got 0");
  EXPECT_EQ(with([](auto& x) { x.lora.rank = 64; }), "LoRA rank 64 is larger than layer q_proj (16 x 16)");
  EXPECT_EQ(with([](auto& x) {
              x.lora.rank = 2;
              x.lora.targets = {"q_proj", "query"};
            }),
            "unknown LoRA target module 'query' (OPTForCausalLM has q_proj, k_proj, v_proj, out_proj, fc1, fc2, or all-linear)");
  EXPECT_EQ(with([](auto& x) { x.K = 50; }), "the random-answer pool has 10 answers, K = 50 are drawn per batch");
  auto empty = d;
  empty.forget.clear();
  EXPECT_EQ(error_of([&] { make(o, empty); }), "the forget set is empty");
  auto no_normal = d;
  no_normal.normal.clear();
  EXPECT_EQ(error_of([&] { make(o, no_normal); }), "the normal set is empty (eps3 > 0 needs normal data)");
}

TEST(UnlearnLosses, LossTargetsPerModeAgreeWithTheLoss) {
  Env env;
  auto f = unlearn::make_qa_example(*env.tok, "Why?", "Because it is.", unlearn::Mode::Faithful);
  auto tf = unlearn::loss_targets(f, unlearn::Mode::Faithful), tc = unlearn::loss_targets(f, unlearn::Mode::Corrected);
  EXPECT_FALSE(tf[static_cast<size_t>(f.start)]);  // the first answer token is never a target in faithful mode
  EXPECT_TRUE(tc[static_cast<size_t>(f.start)]);
  EXPECT_TRUE(tf.back());
  EXPECT_EQ(std::count(tc.begin(), tc.end(), true), std::count(tf.begin(), tf.end(), true) + 1);
  // The random-answer quirk: targets from token 3 on, the question included.
  auto r = unlearn::make_random_example(*env.tok, "Why?", "No.", unlearn::Mode::Faithful);
  auto tr = unlearn::loss_targets(r, unlearn::Mode::Faithful);
  EXPECT_FALSE(tr[2]);
  EXPECT_TRUE(tr[3]);
}
