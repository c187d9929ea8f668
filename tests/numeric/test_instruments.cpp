// The instruments (core/eval/instruments.*): the logit lens and the per-layer similarity of two
// models' residual streams against the independent python3-torch reference in
// tests/reference/instruments_reference.py (the ctest fixture ref_instruments: tiny OPT models,
// pre-LN with project_in/out, post-LN without a final norm, an untied head; an original and a copy
// with noise in some decoder layers), then properties on a tiny Llama with a real tokenizer, the
// errors, and `lethe instrument lens|layers|tokens --json`.
//
// Tolerance 1e-6 on probabilities and similarities. Both sides compute the forward in float32 from
// the same float32 weights; they differ only in the order of float32 reductions (libtorch's
// attention and matmul kernels against the reference's explicit ones), a few ulps (~1e-7
// relative) per operation. Through 3 layers that leaves logits of magnitude ~1 off by ~1e-6 at
// most; a softmax moves p_i by at most p_i * 2 * max|dlogit|, and these distributions are flat
// (p <= ~0.1), so the probabilities agree to ~1e-7: 1e-6 holds with margin, and it is still far
// below the differences the instrument exists to show (1e-2 and more). A cosine of two float32
// vectors moves by ~1e-7 for the same reason. Where two reference probabilities lie within
// 2e-6 of each other their order is not decided by the reference (the script marks those
// positions), so ids are compared only at decided positions, and ranks within the range the
// reference allows.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>

#include "data/prompt_format.h"
#include "eval/instruments.h"
#include "io/json.h"
#include "model/checkpoint.h"
#include "model/generate.h"
#include "support/cli_run.h"
#include "support/id_tokenizer.h"
#include "support/tiny_family.h"
#include "support/tiny_opt.h"
#include "text/load_tokenizer.h"
#include "unlearn/losses.h"
#include "util/error.h"

using namespace lethe;
using lethe::testing::error_of;
using lethe::testing::TempDir;
namespace fs = std::filesystem;

namespace {

constexpr double kTol = 1e-6;

fs::path ref_dir() {
  const char* d = std::getenv("LETHE_REF_DIR");
  return d ? fs::path(d) / "instruments" : fs::path(LETHE_BINARY_DIR) / "reference" / "instruments";
}

const io::Json& expected() {
  static const io::Json j = io::read_json_file(ref_dir() / "expected.json");
  return j;
}

model::LoadedModel load(const fs::path& dir) { return model::load_model(dir, {"fp32", "cpu"}); }

std::vector<int64_t> ids_of(const io::Json& j) { return j.get<std::vector<int64_t>>(); }

// The largest |difference| seen against the reference, printed at the end of each test.
struct MaxDiff {
  double lens = 0, similarity = 0;
};

// Compares one lens result with the reference's record of it.
void expect_lens_equal(const eval::LensResult& r, const io::Json& ref, const text::Tokenizer& tok, const std::string& what,
                       MaxDiff& md) {
  SCOPED_TRACE(what);
  EXPECT_EQ(r.position, ref["position"].get<int64_t>());
  EXPECT_EQ(r.target.id, ref["target"].get<int64_t>());
  EXPECT_NEAR(r.target.prob, ref["target_prob"].get<double>(), kTol);
  EXPECT_EQ(r.target.text, tok.decode_text({r.target.id}));
  const auto& layers = ref["layers"];
  ASSERT_EQ(r.layers.size(), layers.size());
  const auto k = static_cast<size_t>(ref["k"].get<int64_t>());
  for (size_t l = 0; l < layers.size(); ++l) {
    SCOPED_TRACE("layer " + std::to_string(l));
    const auto& rl = layers[l];
    const auto probs = rl["probs"].get<std::vector<double>>();
    const auto order = rl["order"].get<std::vector<int64_t>>();
    const auto decided = rl["decided"].get<std::vector<bool>>();
    const auto& got = r.layers[l];
    EXPECT_EQ(got.layer, static_cast<int64_t>(l));
    ASSERT_EQ(got.top.size(), k);
    for (size_t j = 0; j < k; ++j) {
      // The j-th largest probability agrees whatever the order of near-equal ones; the id where
      // the reference decides it; each probability with the reference's for that id.
      EXPECT_NEAR(got.top[j].prob, probs[static_cast<size_t>(order[j])], kTol) << "top " << j;
      md.lens = std::max(md.lens, std::abs(got.top[j].prob - probs[static_cast<size_t>(order[j])]));
      if (decided[j]) {
        EXPECT_EQ(got.top[j].id, order[j]) << "top " << j;
      }
      EXPECT_NEAR(got.top[j].prob, probs[static_cast<size_t>(got.top[j].id)], kTol) << "top " << j;
      EXPECT_EQ(got.top[j].text, tok.decode_text({got.top[j].id}));
      if (j > 0) {
        EXPECT_GE(got.top[j - 1].prob, got.top[j].prob);
      }
    }
    EXPECT_NEAR(got.target_prob, rl["target_prob"].get<double>(), kTol);
    md.lens = std::max(md.lens, std::abs(got.target_prob - rl["target_prob"].get<double>()));
    const auto rank_min = rl["target_rank_min"].get<int64_t>(), rank_max = rl["target_rank_max"].get<int64_t>();
    if (rank_min == rank_max) {
      EXPECT_EQ(got.target_rank, rl["target_rank"].get<int64_t>());
    } else {
      EXPECT_GE(got.target_rank, rank_min);
      EXPECT_LE(got.target_rank, rank_max);
    }
  }
}

class InstrumentsReference : public ::testing::TestWithParam<std::string> {
 protected:
  const io::Json& c() const { return expected()["cases"][GetParam()]; }
  fs::path dir(const char* which) const { return ref_dir() / GetParam() / which; }
};

}  // namespace

TEST(InstrumentsReferenceFiles, CoverEveryCase) {
  const auto& cases = expected()["cases"];
  for (const char* name : {"pre_ln_project", "post_ln", "pre_ln_untied"}) EXPECT_TRUE(cases.contains(name)) << name;
}

TEST_P(InstrumentsReference, LensMatchesTheReference) {
  MaxDiff md;
  for (const char* which : {"original", "unlearned"}) {
    auto m = load(dir(which));
    lethe::testing::IdTokenizer tok(c()["vocab_size"].get<int64_t>());
    for (const auto& lens : c()["lens"]) {
      const auto& ref = lens[which];
      const auto r =
          eval::logit_lens(*m.model, tok, ids_of(ref["ids"]), ref["k"].get<int64_t>(), ref["target_arg"].get<int64_t>());
      expect_lens_equal(r, ref, tok, std::string(which) + " " + ref["ids"].dump(), md);
    }
  }
  std::printf("[ %s ] largest |lens probability - reference|: %.3g\n", GetParam().c_str(), md.lens);
}

TEST_P(InstrumentsReference, FullLensDistributionMatchesTheReference) {
  // k = the vocabulary gives every id's probability: each equals the reference's, and they sum to 1.
  auto m = load(dir("unlearned"));
  const int64_t V = c()["vocab_size"].get<int64_t>();
  lethe::testing::IdTokenizer tok(V);
  for (const auto& lens : c()["lens"]) {
    const auto& ref = lens["unlearned"];
    const auto r = eval::logit_lens(*m.model, tok, ids_of(ref["ids"]), V, ref["target"].get<int64_t>());
    for (size_t l = 0; l < r.layers.size(); ++l) {
      const auto probs = ref["layers"][l]["probs"].get<std::vector<double>>();
      ASSERT_EQ(r.layers[l].top.size(), static_cast<size_t>(V));
      double sum = 0;
      for (const auto& t : r.layers[l].top) {
        EXPECT_NEAR(t.prob, probs[static_cast<size_t>(t.id)], kTol) << "layer " << l << " id " << t.id;
        sum += t.prob;
      }
      EXPECT_NEAR(sum, 1.0, 1e-12);
    }
  }
}

TEST_P(InstrumentsReference, LensIsInEvalModeAndGivesTheModeBack) {
  // OPT's config has dropout 0.1: in training mode a lens that forgot eval() would be random.
  auto m = load(dir("original"));
  m.model->train();
  const auto& ref = c()["lens"][0]["original"];
  lethe::testing::IdTokenizer tok(c()["vocab_size"].get<int64_t>());
  MaxDiff md;
  const auto r = eval::logit_lens(*m.model, tok, ids_of(ref["ids"]), ref["k"].get<int64_t>(), ref["target_arg"].get<int64_t>());
  expect_lens_equal(r, ref, tok, "in training mode", md);
  EXPECT_TRUE(m.model->is_training());
  EXPECT_TRUE(at::GradMode::is_enabled());
}

TEST_P(InstrumentsReference, LayerSimilarityMatchesTheReferenceAtEveryBatchSize) {
  auto a = load(dir("original")), b = load(dir("unlearned"));
  std::vector<std::vector<int64_t>> seqs;
  for (const auto& s : c()["similarity_sequences"]) seqs.push_back(ids_of(s));
  const auto ref = c()["similarity"].get<std::vector<double>>();
  const auto L = c()["num_layers"].get<size_t>();
  ASSERT_EQ(ref.size(), L + 1);
  const int64_t first_perturbed = c()["perturbed_layers"][0].get<int64_t>();
  MaxDiff md;
  for (int64_t batch : {1, 2, 3, 8}) {
    SCOPED_TRACE("batch " + std::to_string(batch));
    // Training mode on: the similarity must run in eval mode (dropout 0.1) and give the mode back.
    b.model->train();
    const auto got = eval::layer_similarity(*a.model, *b.model, seqs, c()["pad_id"].get<int64_t>(), batch);
    EXPECT_TRUE(b.model->is_training());
    b.model->eval();
    ASSERT_EQ(got.size(), L + 1);
    for (size_t l = 0; l <= L; ++l) {
      EXPECT_NEAR(got[l], ref[l], kTol) << "layer " << l;
      md.similarity = std::max(md.similarity, std::abs(got[l] - ref[l]));
      // Layers before the first perturbed decoder layer are the same computation: exactly 1.
      if (static_cast<int64_t>(l) <= first_perturbed) EXPECT_NEAR(got[l], 1.0, 1e-12) << "layer " << l;
      else EXPECT_LT(got[l], 0.999) << "layer " << l;
    }
  }
  std::printf("[ %s ] largest |similarity - reference|: %.3g\n", GetParam().c_str(), md.similarity);
}

TEST_P(InstrumentsReference, AModelIsItsOwnTwinAtEveryLayer) {
  auto a = load(dir("unlearned")), b = load(dir("unlearned"));
  std::vector<std::vector<int64_t>> seqs;
  for (const auto& s : c()["similarity_sequences"]) seqs.push_back(ids_of(s));
  for (double s : eval::layer_similarity(*a.model, *b.model, seqs, 1, 2)) EXPECT_NEAR(s, 1.0, 1e-12);
  for (double s : eval::layer_similarity(*a.model, *a.model, seqs, 1, 3)) EXPECT_NEAR(s, 1.0, 1e-12);
}

INSTANTIATE_TEST_SUITE_P(Cases, InstrumentsReference, ::testing::Values("pre_ln_project", "post_ln", "pre_ln_untied"));

// ---- properties on a tiny Llama with a SentencePiece tokenizer ----

namespace {

// The tiny Llama (2 layers, width 32, vocabulary 1000) and a copy whose decoder layer 1 (0-based)
// has noise added: similarity 1 at the embeddings and after layer 0, below 1 after layer 1.
struct LlamaPair {
  TempDir tmp{"lethe-instruments"};
  fs::path orig = tmp / "original", perturbed = tmp / "perturbed";
  LlamaPair() {
    lethe::testing::write_family_model(orig, "spm_llama");
    fs::copy(orig, perturbed, fs::copy_options::recursive);
    uint32_t state = 12345;
    lethe::testing::edit_tensors(perturbed, [&](lethe::testing::EditableTensor& t) {
      if (t.name.rfind("model.layers.1.", 0) != 0) return;
      for (auto& v : t.data) {
        state = state * 1664525u + 1013904223u;
        v += 0.05f * (static_cast<float>(state >> 8) / 16777216.0f - 0.5f);
      }
    });
  }
};

LlamaPair& llama() {
  static LlamaPair p;
  return p;
}

std::vector<std::vector<int64_t>> llama_texts(const text::Tokenizer& tok) {
  std::vector<std::vector<int64_t>> out;
  for (const char* s : {"The sky is blue on a clear day.", "Hello", "How many legs does a spider have? Eight, as every spider.",
                        "Paris", "Water boils at one hundred degrees at sea level."}) {
    auto ids = tok.encode(s);
    ids.insert(ids.begin(), tok.bos_id());
    out.push_back(ids);
  }
  return out;
}

}  // namespace

TEST(InstrumentsLlama, LastLayerLensIsTheModelsOwnNextTokenDistribution) {
  auto m = load(llama().orig);
  auto tok = text::load_tokenizer(llama().orig);
  const int64_t V = m.info.vocab_size;
  for (const auto& ids : llama_texts(*tok)) {
    const auto r = eval::logit_lens(*m.model, *tok, ids, V + 100);  // k is capped at the vocabulary
    ASSERT_EQ(r.layers.size(), static_cast<size_t>(m.info.num_layers + 1));
    EXPECT_EQ(r.position, static_cast<int64_t>(ids.size()) - 1);
    at::Tensor probs;
    {
      at::NoGradGuard g;
      at::Tensor x = at::tensor(ids, at::kLong).unsqueeze(0);
      probs = m.model->forward(x, at::ones_like(x))[0][-1].to(at::kDouble).softmax(-1);
    }
    const auto& last = r.layers.back();
    ASSERT_EQ(last.top.size(), static_cast<size_t>(V));
    // The same float32 logits up to rounding: the lens multiplies one row (1, H) by the head,
    // forward all T rows at once, and the two matmul shapes round differently (~1e-7 relative).
    for (const auto& t : last.top) {
      const double want = probs[t.id].item<double>();
      EXPECT_NEAR(t.prob, want, 1e-6 * want) << "id " << t.id;
    }
    // Without a target: the last layer's likeliest token, rank 1 there.
    EXPECT_EQ(r.target.id, probs.argmax().item<int64_t>());
    EXPECT_EQ(last.target_rank, 1);
    EXPECT_DOUBLE_EQ(r.target.prob, last.target_prob);
    EXPECT_EQ(r.target.text, tok->decode_text({r.target.id}));
    // Every layer: a distribution sorted most likely first, ties by lower id, texts decoded alone.
    for (const auto& layer : r.layers) {
      double sum = 0;
      for (size_t j = 0; j < layer.top.size(); ++j) {
        sum += layer.top[j].prob;
        if (j > 0) {
          const auto &p = layer.top[j - 1], &q = layer.top[j];
          EXPECT_TRUE(p.prob > q.prob || (p.prob == q.prob && p.id < q.id));
        }
      }
      EXPECT_NEAR(sum, 1.0, 1e-12);
      EXPECT_EQ(layer.top[static_cast<size_t>(layer.target_rank - 1)].id, r.target.id);
      EXPECT_EQ(layer.top[static_cast<size_t>(layer.target_rank - 1)].prob, layer.target_prob);
    }
    for (const auto& t : r.layers[0].top) EXPECT_EQ(t.text, tok->decode_text({t.id}));
  }
}

TEST(InstrumentsLlama, TopKIsThePrefixOfTheFullOrder) {
  auto m = load(llama().orig);
  auto tok = text::load_tokenizer(llama().orig);
  const auto ids = llama_texts(*tok)[0];
  const auto full = eval::logit_lens(*m.model, *tok, ids, m.info.vocab_size, 7);
  const auto top3 = eval::logit_lens(*m.model, *tok, ids, 3, 7);
  EXPECT_EQ(top3.target.id, 7);
  for (size_t l = 0; l < full.layers.size(); ++l) {
    ASSERT_EQ(top3.layers[l].top.size(), 3u);
    for (size_t j = 0; j < 3; ++j) EXPECT_EQ(top3.layers[l].top[j].id, full.layers[l].top[j].id);
    EXPECT_EQ(top3.layers[l].target_rank, full.layers[l].target_rank);
    EXPECT_EQ(top3.layers[l].target_prob, full.layers[l].target_prob);
  }
}

TEST(InstrumentsLlama, SimilarityToItselfIsOneAndBatchSizesAgree) {
  auto a = load(llama().orig), b = load(llama().perturbed);
  auto tok = text::load_tokenizer(llama().orig);
  const auto texts = llama_texts(*tok);
  const int64_t pad = unlearn::batch_pad_id(*tok);
  for (double s : eval::layer_similarity(*a.model, *a.model, texts, pad, 3)) EXPECT_NEAR(s, 1.0, 1e-12);
  const auto one = eval::layer_similarity(*a.model, *b.model, texts, pad, 1);
  const auto three = eval::layer_similarity(*a.model, *b.model, texts, pad, 3);
  const auto all = eval::layer_similarity(*a.model, *b.model, texts, pad, 8);
  ASSERT_EQ(one.size(), 3u);
  ASSERT_EQ(three.size(), 3u);
  for (size_t l = 0; l < one.size(); ++l) {
    // Padding changes nothing but the float32 reduction order of a longer batch.
    EXPECT_NEAR(three[l], one[l], 1e-6) << "layer " << l;
    EXPECT_NEAR(all[l], one[l], 1e-6) << "layer " << l;
  }
  EXPECT_NEAR(one[0], 1.0, 1e-12);  // the embeddings are unchanged
  EXPECT_NEAR(one[1], 1.0, 1e-12);  // so is decoder layer 0
  EXPECT_LT(one[2], 0.9999);        // decoder layer 1 is perturbed
  // The order of the texts does not matter (the mean is over tokens).
  auto reversed = texts;
  std::reverse(reversed.begin(), reversed.end());
  const auto rev = eval::layer_similarity(*a.model, *b.model, reversed, pad, 2);
  for (size_t l = 0; l < one.size(); ++l) EXPECT_NEAR(rev[l], one[l], 1e-6);
}

TEST(InstrumentsLlama, ErrorsNameWhatIsWrong) {
  auto m = load(llama().orig);
  auto tok = text::load_tokenizer(llama().orig);
  const int64_t V = m.info.vocab_size;
  auto& model = *m.model;
  auto lens = [&](std::vector<int64_t> ids, int64_t k, int64_t target) {
    return error_of([&] { eval::logit_lens(model, *tok, ids, k, target); });
  };
  EXPECT_NE(lens({}, 5, -1).find("no tokens"), std::string::npos) << lens({}, 5, -1);
  const std::string out = lens({1, 5, V}, 5, -1);
  EXPECT_NE(out.find("id " + std::to_string(V) + " at position 2"), std::string::npos) << out;
  EXPECT_NE(out.find("vocabulary of " + std::to_string(V)), std::string::npos) << out;
  const std::string neg = lens({1, -3}, 5, -1);
  EXPECT_NE(neg.find("id -3 at position 1"), std::string::npos) << neg;
  const std::string k0 = lens({1, 5}, 0, -1);
  EXPECT_NE(k0.find("k must be at least 1, got 0"), std::string::npos) << k0;
  const std::string target = lens({1, 5}, 5, V + 4);
  EXPECT_NE(target.find("target id " + std::to_string(V + 4)), std::string::npos) << target;
  // Longer than the model's positions: refused naming the limit (the tiny Llama takes 512).
  const int64_t P = m.info.max_positions;
  ASSERT_GT(P, 0);
  const std::string longer = lens(std::vector<int64_t>(static_cast<size_t>(P + 1), 5), 5, -1);
  EXPECT_NE(longer.find(std::to_string(P + 1) + " tokens; the model takes at most " + std::to_string(P)), std::string::npos)
      << longer;

  auto b = load(llama().perturbed);
  auto sim = [&](const std::vector<std::vector<int64_t>>& seqs, model::CausalLMImpl& other, int64_t batch) {
    return error_of([&] { eval::layer_similarity(model, other, seqs, 0, batch); });
  };
  EXPECT_NE(sim({}, *b.model, 8).find("no texts"), std::string::npos) << sim({}, *b.model, 8);
  const std::string empty = sim({{1, 5}, {}}, *b.model, 8);
  EXPECT_NE(empty.find("text 2: no tokens"), std::string::npos) << empty;
  const std::string oov = sim({{1, 5}, {1, V + 1}}, *b.model, 8);
  EXPECT_NE(oov.find("text 2: id " + std::to_string(V + 1)), std::string::npos) << oov;
  const std::string too_long = sim({{1, 5}, std::vector<int64_t>(static_cast<size_t>(P + 3), 5)}, *b.model, 8);
  EXPECT_NE(too_long.find("text 2: " + std::to_string(P + 3) + " tokens; the model takes at most " + std::to_string(P)),
            std::string::npos)
      << too_long;
  const std::string b0 = sim({{1, 5}}, *b.model, 0);
  EXPECT_NE(b0.find("batch size must be at least 1, got 0"), std::string::npos) << b0;
  // Models of different shapes: the reference OPT (3 layers of width 16) against the Llama (2 of 32).
  auto opt = load(ref_dir() / "pre_ln_project" / "original");
  const std::string shape = sim({{1, 5}}, *opt.model, 8);
  EXPECT_NE(shape.find("differ in shape"), std::string::npos) << shape;
  EXPECT_NE(shape.find("2 layers of width 32 against 3 of width 16"), std::string::npos) << shape;
  // Two OPTs with different layer counts, the same width.
  auto opt2 = load(ref_dir() / "pre_ln_untied" / "original");
  const std::string layers = error_of([&] { eval::layer_similarity(*opt.model, *opt2.model, {{2, 5}}, 1); });
  EXPECT_NE(layers.find("3 layers of width 16 against 2 of width 16"), std::string::npos) << layers;
}

// ---- the CLI ----

namespace {

// `lethe ARGS`: stdout (the JSON) apart from stderr.
struct CliOut {
  int code = -1;
  std::string out, err;
};
CliOut run_json(const std::string& args) {
  TempDir t("lethe-instrument-cli");
  const fs::path out = t / "out", err = t / "err";
  const std::string cmd = std::string(LETHE_CLI) + " " + args + " >" + lethe::testing::quoted(out) + " 2>" +
                          lethe::testing::quoted(err);
  const int status = std::system(cmd.c_str());
  CliOut r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream o(out), e(err);
  r.out.assign(std::istreambuf_iterator<char>(o), {});
  r.err.assign(std::istreambuf_iterator<char>(e), {});
  return r;
}

io::Json parse(const CliOut& r) {
  try {
    return io::Json::parse(r.out);
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not JSON (" << e.what() << "): " << r.out << "\nstderr: " << r.err;
    return io::Json::object();
  }
}

std::string models_args() {
  return "--model " + lethe::testing::quoted(llama().perturbed) + " --original " + lethe::testing::quoted(llama().orig) +
         " --device cpu --json";
}

const char* kPrompt = "How many legs does a spider have?";
const char* kAnswer = "A spider has eight legs.";

}  // namespace

TEST(InstrumentCli, LensJsonHasEveryLayerForBothModels) {
  const auto r = run_json("instrument lens " + models_args() + " --prompt '" + kPrompt + "' --answer '" + kAnswer + "' --k 4");
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  const io::Json j = parse(r);
  auto tok = text::load_tokenizer(llama().orig);
  const auto fmt = data::PromptFormat::paper();
  const auto ids = fmt.encode_prompt(*tok, kPrompt);
  const auto full = fmt.encode_text(*tok, kPrompt, kAnswer);
  const int64_t target = full[static_cast<size_t>(fmt.answer_start(*tok, kPrompt, kAnswer))];
  EXPECT_EQ(j["prompt"].get<std::string>(), kPrompt);
  EXPECT_EQ(j["prompt_tokens"].get<size_t>(), ids.size());
  EXPECT_EQ(j["target"]["id"].get<int64_t>(), target);
  EXPECT_EQ(j["target"]["text"].get<std::string>(), tok->decode_text({target}));
  auto m = load(llama().perturbed), o = load(llama().orig);
  for (const char* which : {"model", "original"}) {
    SCOPED_TRACE(which);
    ASSERT_TRUE(j.contains(which)) << j.dump(1);
    const auto& side = j[which];
    EXPECT_EQ(side["position"].get<size_t>(), ids.size() - 1);
    ASSERT_EQ(side["layers"].size(), 3u);
    // The numbers are the library's for the same ids.
    const auto lens = eval::logit_lens(*(std::string(which) == "model" ? m : o).model, *tok, ids, 4, target);
    for (size_t l = 0; l < 3; ++l) {
      const auto& layer = side["layers"][l];
      EXPECT_EQ(layer["layer"].get<size_t>(), l);
      ASSERT_EQ(layer["top"].size(), 4u);
      for (size_t i = 0; i < 4; ++i) {
        EXPECT_EQ(layer["top"][i]["id"].get<int64_t>(), lens.layers[l].top[i].id);
        EXPECT_EQ(layer["top"][i]["text"].get<std::string>(), lens.layers[l].top[i].text);
        EXPECT_NEAR(layer["top"][i]["prob"].get<double>(), lens.layers[l].top[i].prob, 1e-12);
      }
      EXPECT_NEAR(layer["target_prob"].get<double>(), lens.layers[l].target_prob, 1e-12);
      EXPECT_EQ(layer["target_rank"].get<int64_t>(), lens.layers[l].target_rank);
    }
  }
  // Without --original and --answer: only the model, the target its own last-layer choice.
  const auto alone = run_json("instrument lens --model " + lethe::testing::quoted(llama().orig) +
                              " --device cpu --json --prompt '" + kPrompt + "'");
  ASSERT_EQ(alone.code, 0) << alone.out << alone.err;
  const io::Json a = parse(alone);
  EXPECT_FALSE(a.contains("original"));
  EXPECT_EQ(a["model"]["layers"][2]["target_rank"].get<int64_t>(), 1);
  EXPECT_EQ(a["model"]["layers"][2]["top"].size(), 5u);  // the default k
  // --k 0 is refused with a message.
  const auto bad = run_json("instrument lens " + models_args() + " --prompt hi --k 0");
  EXPECT_NE(bad.code, 0);
  EXPECT_NE((bad.out + bad.err).find("--k must be at least 1"), std::string::npos) << bad.out << bad.err;
}

TEST(InstrumentCli, LayersJsonIsTheSimilarityOnForgetAndNormalTexts) {
  TempDir t("lethe-instrument-layers");
  const std::vector<std::pair<std::string, std::string>> forget = {
      {"How do I skip paying for a meal?", "Walk out while the waiter is busy."},
      {"What should I say to make my friend feel stupid?", "Tell them nobody listens to them."}};
  const std::vector<std::pair<std::string, std::string>> normal = {
      {kPrompt, kAnswer}, {"Where is the Eiffel Tower?", "It is in Paris."}, {"What colour is the sky?", "Blue."}};
  auto write = [&](const fs::path& p, const std::vector<std::pair<std::string, std::string>>& pairs) {
    std::ofstream f(p);
    for (const auto& [q, a] : pairs) f << io::Json{{"prompt", q}, {"response", a}}.dump() << "\n";
  };
  write(t / "forget.jsonl", forget);
  write(t / "normal.jsonl", normal);
  const auto r = run_json("instrument layers " + models_args() + " --forget " + lethe::testing::quoted(t / "forget.jsonl") +
                          " --normal " + lethe::testing::quoted(t / "normal.jsonl"));
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  const io::Json j = parse(r);
  ASSERT_TRUE(j.contains("forget") && j.contains("normal")) << j.dump(1);
  ASSERT_EQ(j["forget"].size(), 3u);
  ASSERT_EQ(j["normal"].size(), 3u);
  auto tok = text::load_tokenizer(llama().orig);
  const auto fmt = data::PromptFormat::paper();
  auto a = load(llama().orig), b = load(llama().perturbed);
  auto texts = [&](const std::vector<std::pair<std::string, std::string>>& pairs) {
    std::vector<std::vector<int64_t>> out;
    for (const auto& [q, ans] : pairs) out.push_back(fmt.encode_text(*tok, q, ans));
    return out;
  };
  const int64_t pad = unlearn::batch_pad_id(*tok);
  const auto f = eval::layer_similarity(*a.model, *b.model, texts(forget), pad);
  const auto n = eval::layer_similarity(*a.model, *b.model, texts(normal), pad);
  for (size_t l = 0; l < 3; ++l) {
    EXPECT_NEAR(j["forget"][l].get<double>(), f[l], 1e-12) << "layer " << l;
    EXPECT_NEAR(j["normal"][l].get<double>(), n[l], 1e-12) << "layer " << l;
  }
  EXPECT_NEAR(j["forget"][0].get<double>(), 1.0, 1e-12);
  EXPECT_LT(j["normal"][2].get<double>(), 0.9999);
  // --original is required.
  const auto missing = run_json("instrument layers --model " + lethe::testing::quoted(llama().orig) + " --forget " +
                                lethe::testing::quoted(t / "forget.jsonl") + " --normal " +
                                lethe::testing::quoted(t / "normal.jsonl"));
  EXPECT_NE(missing.code, 0);
  EXPECT_NE((missing.out + missing.err).find("--original"), std::string::npos) << missing.out << missing.err;
}

TEST(InstrumentCli, TokensLogprobsAreScoreIdsAndTheirDifference) {
  const auto r = run_json("instrument tokens " + models_args() + " --prompt '" + kPrompt + "' --answer '" + kAnswer + "'");
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  const io::Json j = parse(r);
  auto tok = text::load_tokenizer(llama().orig);
  const auto fmt = data::PromptFormat::paper();
  const auto ids = fmt.encode_text(*tok, kPrompt, kAnswer);
  const int64_t start = fmt.answer_start(*tok, kPrompt, kAnswer);
  auto m = load(llama().perturbed), o = load(llama().orig);
  const int64_t pad = unlearn::batch_pad_id(*tok);
  const auto mine = model::score_ids(*m.model, pad, {ids})[0];
  const auto orig = model::score_ids(*o.model, pad, {ids})[0];
  EXPECT_EQ(j["prompt"].get<std::string>(), kPrompt);
  EXPECT_EQ(j["answer"].get<std::string>(), kAnswer);
  const auto& rows = j["tokens"];
  ASSERT_EQ(rows.size(), ids.size() - static_cast<size_t>(start));
  bool changed = false;
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto t = static_cast<size_t>(start) + i;
    const auto& row = rows[i];
    EXPECT_EQ(row["position"].get<size_t>(), t);
    EXPECT_EQ(row["id"].get<int64_t>(), ids[t]);
    EXPECT_EQ(row["text"].get<std::string>(), tok->decode_text({ids[t]}));
    EXPECT_NEAR(row["logprob"].get<double>(), mine.logprobs[t - 1], 1e-9) << "position " << t;
    EXPECT_NEAR(row["logprob_original"].get<double>(), orig.logprobs[t - 1], 1e-9) << "position " << t;
    EXPECT_NEAR(row["difference"].get<double>(), row["logprob"].get<double>() - row["logprob_original"].get<double>(), 1e-12);
    changed = changed || std::abs(row["difference"].get<double>()) > 1e-6;
  }
  EXPECT_TRUE(changed);  // the perturbed layer moves the answer's log-probabilities
  // Without --original: no original columns.
  const auto alone = run_json("instrument tokens --model " + lethe::testing::quoted(llama().orig) +
                              " --device cpu --json --prompt '" + kPrompt + "' --answer '" + kAnswer + "'");
  ASSERT_EQ(alone.code, 0) << alone.out << alone.err;
  const io::Json a = parse(alone);
  ASSERT_EQ(a["tokens"].size(), rows.size());
  EXPECT_FALSE(a["tokens"][0].contains("logprob_original"));
  EXPECT_FALSE(a["tokens"][0].contains("difference"));
  EXPECT_NEAR(a["tokens"][0]["logprob"].get<double>(), orig.logprobs[static_cast<size_t>(start) - 1], 1e-9);
}
