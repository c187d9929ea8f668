// Llama, Mistral, Qwen2, Phi-3, Gemma and OPT checkpoints against transformers itself: the
// committed fixtures in tests/fixtures/families were written by
// tests/reference/families_reference.py (transformers 5.24.0, torch 2.15.0; manifest.json) from
// small random models of every configuration variant, OPT's (pre-LN; post-LN with projections) by
// tests/reference/opt_families_reference.py (opt_manifest.json). Here: logits of a left-padded batch
// (fp32 <= 1e-4; transformers' own fp32-vs-fp64 difference is <= 8.1e-6), greedy continuations
// through the KV cache equal to transformers' generate, KV-cache decoding equal to the full
// forward, batched rows equal to generating them alone, the rope frequencies, and the
// sequence classifier's logits.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <cstdlib>

#include "eval/classifier.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "model/checkpoint.h"
#include "model/llama.h"
#include "model/model_config.h"
#include "support/tiny_opt.h"
#include "text/sentencepiece_tokenizer.h"
#include "unlearn/lora.h"
#include "util/error.h"

using namespace lethe;
namespace fs = std::filesystem;

namespace {

const fs::path kDir = fs::path(LETHE_SOURCE_DIR) / "tests/fixtures/families";

struct Expected {
  std::shared_ptr<io::SafetensorsFile> file;
  bool has(const std::string& name) const { return file->find(name) != nullptr; }
  at::Tensor operator[](const std::string& name) const {
    const auto* t = file->find(name);
    if (!t) throw std::runtime_error("no tensor " + name + " in expected.safetensors");
    const at::ScalarType st = t->dtype == io::DType::I64 ? at::kLong : at::kFloat;
    return at::from_blob(const_cast<std::byte*>(file->data(*t)), t->shape, at::TensorOptions().dtype(st)).clone();
  }
};

Expected expected(const std::string& variant) { return {io::SafetensorsFile::open(kDir / variant / "expected.safetensors")}; }

model::LoadedModel load(const std::string& variant, const std::string& dtype = "fp32", bool backbone_only = false) {
  model::LoadOptions o;
  o.dtype = dtype;
  o.device = "cpu";
  return model::load_model(kDir / variant, o, backbone_only);
}

double max_diff_on_tokens(const at::Tensor& a, const at::Tensor& b, const at::Tensor& mask) {
  at::Tensor m = mask.to(at::kBool).unsqueeze(-1).expand_as(b);
  return (a.to(at::kFloat) - b).abs().masked_select(m).max().item<double>();
}

// Greedy decoding through the KV cache: prefill the (left-padded) batch, then one token a step.
// Returns the new ids (B, n) and each step's logits (B, n, V).
std::pair<at::Tensor, at::Tensor> greedy(model::CausalLMImpl& m, at::Tensor ids, at::Tensor mask, int64_t n) {
  at::NoGradGuard g;
  const int64_t B = ids.size(0), L = ids.size(1);
  auto cache = m.make_cache(B, L + n);
  at::Tensor logits = m.forward(ids, mask, &cache).select(1, L - 1).to(at::kFloat);
  std::vector<at::Tensor> out, steps;
  for (int64_t s = 0; s < n; ++s) {
    steps.push_back(logits);
    at::Tensor next = logits.argmax(-1).unsqueeze(1);  // (B, 1)
    out.push_back(next);
    if (s + 1 == n) break;
    mask = at::cat({mask, at::ones({B, 1}, mask.options())}, 1);
    logits = m.forward(next, mask, &cache).select(1, 0).to(at::kFloat);
  }
  return {at::cat(out, 1), at::stack(steps, 1)};
}

const std::vector<std::string> kCausal = {
    "llama_gqa_untied",
    "llama_tied_mha",
    "llama_bias_headdim",
    "llama_rope_linear",
    "llama_rope_dynamic",
    "llama_rope_llama3",
    "llama_rope_yarn",
    "llama_rope_nested",
    "llama_bf16",
    "llama_sharded",
    "mistral_sliding",
    "qwen2",
    "phi3",
    "phi3_longrope",
    "gemma",
    "opt",
    "opt_postln_proj",
};

}  // namespace

class Families : public ::testing::TestWithParam<std::string> {};

TEST_P(Families, LogitsMatchTransformers) {
  const std::string v = GetParam();
  auto m = load(v);
  auto e = expected(v);
  at::NoGradGuard g;
  at::Tensor logits = m.model->forward(e["input_ids"], e["attention_mask"]);
  EXPECT_LE(max_diff_on_tokens(logits, e["logits"], e["attention_mask"]), 1e-4) << v;
}

TEST_P(Families, GreedyThroughTheCacheMatchesGenerate) {
  const std::string v = GetParam();
  auto m = load(v);
  auto e = expected(v);
  auto [ids, steps] = greedy(*m.model, e["input_ids"], e["attention_mask"], e["greedy"].size(1));
  EXPECT_TRUE(at::equal(ids, e["greedy"])) << v << "\n" << ids << "\n" << e["greedy"];
  EXPECT_LE((steps - e["greedy_step_logits"]).abs().max().item<double>(), 1e-4) << v;
}

TEST_P(Families, KvCacheDecodingEqualsTheFullForward) {
  // The logits of the last step from the cache equal a full forward over prompt + generated ids.
  const std::string v = GetParam();
  if (v == "llama_rope_dynamic") GTEST_SKIP() << "dynamic NTK rotates cached keys with earlier frequencies, as transformers does";
  auto m = load(v);
  auto e = expected(v);
  at::Tensor ids = e["input_ids"], mask = e["attention_mask"];
  const int64_t n = 6;
  auto [gen, steps] = greedy(*m.model, ids, mask, n);
  at::NoGradGuard g;
  at::Tensor full_ids = at::cat({ids, gen.narrow(1, 0, n - 1)}, 1);
  at::Tensor full_mask = at::cat({mask, at::ones({ids.size(0), n - 1}, mask.options())}, 1);
  at::Tensor full = m.model->forward(full_ids, full_mask).to(at::kFloat);
  at::Tensor last = full.narrow(1, full.size(1) - 1, 1).squeeze(1);
  EXPECT_LE((last - steps.select(1, n - 1)).abs().max().item<double>(), 1e-4) << v;
}

TEST_P(Families, LeftPaddedRowsGenerateAsAlone) {
  const std::string v = GetParam();
  // transformers itself differs here (expected.json says why): dynamic NTK and longrope pick
  // their frequencies from the batch's longest row.
  if (v == "llama_rope_dynamic" || v == "phi3_longrope") GTEST_SKIP() << "frequencies depend on the batch, as in transformers";
  auto m = load(v);
  auto e = expected(v);
  at::Tensor ids = e["input_ids"], mask = e["attention_mask"];
  auto [batched, _] = greedy(*m.model, ids, mask, 10);
  for (int64_t b = 0; b < ids.size(0); ++b) {
    const int64_t real = mask[b].sum().item<int64_t>();
    at::Tensor row = ids[b].narrow(0, ids.size(1) - real, real).unsqueeze(0);
    auto [alone, __] = greedy(*m.model, row, at::ones_like(row), 10);
    EXPECT_TRUE(at::equal(alone, batched[b].unsqueeze(0))) << v << " row " << b;
    EXPECT_TRUE(at::equal(alone, e["greedy_alone_" + std::to_string(b)])) << v << " row " << b;
  }
}

INSTANTIATE_TEST_SUITE_P(Transformers, Families, ::testing::ValuesIn(kCausal),
                         [](const ::testing::TestParamInfo<std::string>& i) { return i.param; });

TEST(FamiliesRope, FrequenciesMatchTransformers) {
  for (const std::string v : {"llama_rope_linear", "llama_rope_dynamic", "llama_rope_llama3", "llama_rope_yarn",
                              "llama_rope_nested", "phi3", "phi3_longrope"}) {
    auto e = expected(v);
    if (!e.has("rope_inv_freq")) continue;
    auto cfg = model::LlamaConfig::from_json(io::read_json_file(kDir / v / "config.json"), v);
    model::RotaryEmbedding rope(cfg.rope, cfg.head_dim);
    EXPECT_TRUE(at::allclose(rope.inv_freq(0), e["rope_inv_freq"], 1e-6, 1e-7)) << v << rope.inv_freq(0) << e["rope_inv_freq"];
    if (e.has("long_rope_inv_freq")) {
      const int64_t L = e["long_ids"].size(1);
      EXPECT_TRUE(at::allclose(rope.inv_freq(L), e["long_rope_inv_freq"], 1e-6, 1e-7)) << v;
    }
  }
}

TEST(FamiliesRope, LongSequencesCrossTheScalingThreshold) {
  // dynamic and longrope switch frequencies past their threshold; each forward on a fresh model.
  for (const std::string v : {"llama_rope_linear", "llama_rope_dynamic", "llama_rope_llama3", "llama_rope_yarn",
                              "llama_rope_nested", "phi3_longrope"}) {
    auto e = expected(v);
    for (const std::string which : {"long", "short"}) {
      if (!e.has(which + "_ids")) continue;
      auto m = load(v);
      at::NoGradGuard g;
      at::Tensor ids = e[which + "_ids"];
      at::Tensor logits = m.model->forward(ids, at::ones_like(ids)).to(at::kFloat);
      EXPECT_LE((logits - e[which + "_logits"]).abs().max().item<double>(), 1e-4) << v << " " << which;
    }
  }
}

TEST(FamiliesBf16, Bf16ComputeWithinItsBound) {
  // bf16 weights run in bf16: transformers' bf16 logits differ from its fp32 ones by up to 0.085.
  auto m = load("llama_bf16", "bf16");
  auto e = expected("llama_bf16");
  at::NoGradGuard g;
  at::Tensor logits = m.model->forward(e["input_ids"], e["attention_mask"]).to(at::kFloat);
  EXPECT_LE(max_diff_on_tokens(logits, e["logits_bf16"], e["attention_mask"]), 0.1);
  EXPECT_LE(max_diff_on_tokens(logits, e["logits"], e["attention_mask"]), 0.2);
}

TEST(FamiliesInfo, RegistryReadsEveryVariant) {
  for (const auto& v : kCausal) {
    auto m = load(v);
    EXPECT_TRUE(m.warnings.empty()) << v << ": " << (m.warnings.empty() ? "" : m.warnings.front());
    EXPECT_EQ(m.info.num_layers, 2) << v;
    int64_t params = 0;
    for (const auto& p : m.model->parameters()) params += p.numel();
    EXPECT_EQ(m.config->param_count(), params) << v;
  }
  auto t = load("llama_tied_mha");
  EXPECT_EQ(t.info.eos_ids, (std::vector<int64_t>{2, 3}));
  EXPECT_TRUE(t.info.tied_head);
  EXPECT_EQ(load("llama_gqa_untied").info.num_kv_heads, 2);
  EXPECT_EQ(load("mistral_sliding").info.family, "mistral");
}

TEST(FamiliesInfo, UnknownModelTypeNamesTheSupportedOnes) {
  try {
    model::parse_model_config(io::Json{{"model_type", "falcon"}}, "x/config.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(
                  "model_type 'falcon' is not supported (Lethe supports: opt, llama, mistral, qwen2, phi3, gemma)"),
              std::string::npos)
        << e.what();
  }
}

TEST(FamiliesInfo, BadRopeAndHeadsAreNamed) {
  io::Json base = io::read_json_file(kDir / "llama_gqa_untied" / "config.json");
  auto error_of = [](const io::Json& j) {
    try {
      model::parse_model_config(j, "c.json");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  io::Json j = base;
  j["rope_scaling"] = {{"rope_type", "ntk-by-parts"}, {"factor", 2.0}};
  EXPECT_NE(error_of(j).find("rope type 'ntk-by-parts' is not supported"), std::string::npos) << error_of(j);
  j = base;
  j["num_key_value_heads"] = 3;
  EXPECT_NE(error_of(j).find("is not a multiple of num_key_value_heads 3"), std::string::npos) << error_of(j);
  j = base;
  j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}};
  EXPECT_NE(error_of(j).find("rope llama3 needs 'original_max_position_embeddings'"), std::string::npos) << error_of(j);
}

// LlamaForSequenceClassification / Qwen2ForSequenceClassification folders load as Lethe's
// classifier and give transformers' logits (right-padded rows: the last real token is pooled).
TEST(FamiliesClassifier, SequenceClassificationLogitsMatchTransformers) {
  for (const std::string v : {"llama_seqcls", "qwen2_seqcls"}) {
    lethe::testing::TempDir d;
    fs::copy(kDir / v, d.path, fs::copy_options::recursive);
    // A small SentencePiece vocabulary, so the folder is complete (the ids below are the fixture's).
    lethe::testing::write_text(d / "corpus.txt", "the river makes the dead forget\nwhat we learned we keep\n");
    text::SentencePieceTrainOptions so;
    so.inputs = {d / "corpus.txt"};
    so.model_prefix = d / "tokenizer";
    so.vocab_size = 40;
    so.byte_fallback = false;
    so.model_type = "char";
    text::SentencePieceTokenizer::train(so);
    auto clf = eval::HarmClassifier::load(d.path, "fp32", "cpu");
    auto e = expected(v);
    for (const std::string side : {"", "right_"}) {
      at::Tensor got = clf->logits(e[side + "input_ids"], e[side + "attention_mask"]).to(at::kFloat);
      EXPECT_LE((got - e[side + "cls_logits"]).abs().max().item<double>(), 1e-4) << v << " " << side << got;
    }
  }
}

// A LoRA adapter on every linear layer of a Llama-family model, exported as a PEFT adapter and
// as a merged folder: both load back into Lethe with the same logits. With
// LETHE_TRANSFORMERS_PYTHON set (a python with transformers + peft, e.g. third_party/venv),
// tests/reference/peft_roundtrip.py also loads them in peft and transformers and compares.
TEST(FamiliesExport, PeftAdapterAndMergedFolderRoundTrip) {
  for (const std::string v : {"llama_gqa_untied", "phi3", "gemma"}) {
    lethe::testing::TempDir d;
    auto m = load(v);
    unlearn::LoraConfig lc;
    lc.rank = 4;
    lc.alpha = 8;
    lc.targets = {"all-linear"};
    unlearn::add_lora(*m.model, lc, 7);
    {
      at::NoGradGuard g;
      auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
      for (auto& p : m.model->named_parameters())  // B starts at zero: give the adapters weight
        if (p.key().find("lora_B") != std::string::npos) p.value().normal_(0, 0.05, gen);
    }
    auto e = expected(v);
    at::Tensor ids = e["input_ids"], mask = e["attention_mask"];
    at::NoGradGuard g;
    at::Tensor with_adapter = m.model->forward(ids, mask).contiguous();
    ASSERT_GT(max_diff_on_tokens(with_adapter, e["logits"], mask), 1e-3) << "the adapter changes nothing";
    unlearn::save_peft_adapter(d / "adapter", *m.model, lc, (kDir / v).string());
    io::write_safetensors(
        d / "lethe_logits.safetensors",
        {{"input_ids", io::DType::I64, ids.sizes().vec(), ids.data_ptr(), static_cast<size_t>(ids.nbytes())},
         {"attention_mask", io::DType::I64, mask.sizes().vec(), mask.data_ptr(), static_cast<size_t>(mask.nbytes())},
         {"logits", io::DType::F32, with_adapter.sizes().vec(), with_adapter.data_ptr(),
          static_cast<size_t>(with_adapter.nbytes())}});
    unlearn::merge_lora(*m.model);
    model::save_model(d / "merged", *m.model);

    auto merged = model::load_model(d / "merged", {"fp32", "cpu"});
    EXPECT_LE(max_diff_on_tokens(merged.model->forward(ids, mask), with_adapter, mask), 1e-4) << v;
    auto base = load(v);
    auto read = unlearn::load_peft_adapter(d / "adapter", *base.model);
    EXPECT_EQ(read.targets.size(), merged.config->layer_linears().size()) << v;
    EXPECT_LE(max_diff_on_tokens(base.model->forward(ids, mask), with_adapter, mask), 1e-5) << v;

    const char* py = std::getenv("LETHE_TRANSFORMERS_PYTHON");
    if (!py) continue;
    const std::string cmd = std::string(py) + " " + LETHE_SOURCE_DIR + "/tests/reference/peft_roundtrip.py " +
                            (kDir / v).string() + " " + d.path.string();
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }
  if (!std::getenv("LETHE_TRANSFORMERS_PYTHON"))
    GTEST_SKIP() << "Lethe's side checked; set LETHE_TRANSFORMERS_PYTHON for peft/transformers";
}

// libtorch >= 2.1 runs attention through scaled_dot_product_attention; it must equal the
// explicit path (the one 1.13 has) on real positions, in logits and in gradients.
TEST(FamiliesAttention, FusedEqualsExplicit) {
  if (!model::fused_attention_available()) GTEST_SKIP() << "this libtorch has no scaled_dot_product_attention (needs >= 2.1)";
  struct Restore {
    ~Restore() { model::set_attention_backend(model::AttentionBackend::Fused); }
  } restore;
  for (const auto& v : kCausal) {
    auto m = load(v);
    auto e = expected(v);
    at::Tensor out[2], grad[2];
    for (int k = 0; k < 2; ++k) {
      model::set_attention_backend(k ? model::AttentionBackend::Fused : model::AttentionBackend::Explicit);
      for (auto& p : m.model->parameters()) p.mutable_grad() = at::Tensor();
      out[k] = m.model->forward(e["input_ids"], e["attention_mask"]);
      (out[k] * e["attention_mask"].unsqueeze(-1)).sum().backward();
      grad[k] = m.model->lm_head_weight().grad().clone();
    }
    EXPECT_LE(max_diff_on_tokens(out[1].detach(), out[0].detach(), e["attention_mask"]), 1e-5) << v;
    // Relative to the gradient's size: the sum over every logit makes it large (up to ~1e2).
    EXPECT_LE((grad[1] - grad[0]).abs().max().item<double>(), 1e-5 * grad[0].abs().max().item<double>() + 1e-6) << v;
  }
}
