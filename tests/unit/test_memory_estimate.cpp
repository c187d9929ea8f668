// core/model/memory_estimate.*: one unlearning step's peak memory, activations included. How
// close it comes to a measured peak is bench_unlearn_step's (it prints both); here, the parts
// each setting moves and the warning's wording.
#include <gtest/gtest.h>

#include <string>

#include "model/memory_estimate.h"

using namespace lethe::model;

namespace {

// OPT-125m's sizes.
ModelInfo opt125m() {
  ModelInfo i;
  i.family = "opt";
  i.vocab_size = 50272;
  i.hidden_size = i.output_dim = 768;
  i.num_layers = 12;
  i.num_heads = i.num_kv_heads = 12;
  i.head_dim = 64;
  i.intermediate_size = 3072;
  return i;
}
constexpr int64_t kParams = 125239296;

TEST(MemoryEstimate, FullParametersCarryGradientsMomentsAndTheReferenceCopy) {
  const StepMemory m = estimate_step_memory(opt125m(), kParams, {});
  EXPECT_EQ(m.weights, 4 * kParams);
  EXPECT_EQ(m.training, 16 * kParams);
  EXPECT_EQ(m.autocast, 0);
  EXPECT_EQ(m.runtime, kRuntimeBytes);
  EXPECT_EQ(m.total(), m.weights + m.training + m.autocast + m.activations + m.head + m.runtime);
}

TEST(MemoryEstimate, LoraKeepsOneCopyAndSixteenBytesPerAdapterParameter) {
  StepShape s;
  s.lora_params = 1179648;  // r = 32 on q_proj, v_proj
  s.lora_targets = 2;
  const StepMemory m = estimate_step_memory(opt125m(), kParams, s);
  EXPECT_EQ(m.training, 16 * s.lora_params);
  EXPECT_LT(m.total(), estimate_step_memory(opt125m(), kParams, {}).total());
  s.lora_dropout = 0.05;  // each adapted input copied through dropout
  EXPECT_GT(estimate_step_memory(opt125m(), kParams, s).activations, m.activations);
}

TEST(MemoryEstimate, ActivationsScaleWithTheRowsOfTheLargestTerm) {
  StepShape s;
  const int64_t base = estimate_step_memory(opt125m(), kParams, s).activations;
  s.batch = 4;  // twice the rows
  EXPECT_EQ(estimate_step_memory(opt125m(), kParams, s).activations, 2 * base);
  s.batch = 2;
  s.K = 0;  // a method without random answers: the forget batch's rows
  EXPECT_EQ(estimate_step_memory(opt125m(), kParams, s).activations, base / 5);
}

TEST(MemoryEstimate, FaithfulModeHoldsTheDenseLogitsCorrectedOneChunk) {
  StepShape s;
  const StepMemory corrected = estimate_step_memory(opt125m(), kParams, s);
  s.faithful = true;
  const StepMemory faithful = estimate_step_memory(opt125m(), kParams, s);
  // (10 rows x 128 tokens x 50272) fp32 logits, their log-softmax and gradient: 772 MiB.
  EXPECT_EQ(faithful.head, int64_t{3} * 10 * 128 * 50272 * 4);
  EXPECT_LT(corrected.head, faithful.head / 4);
}

TEST(MemoryEstimate, Bf16AddsWeightCopiesAndHalvesMatmulOutputs) {
  StepShape s;
  const StepMemory fp32 = estimate_step_memory(opt125m(), kParams, s);
  s.bf16 = true;
  const StepMemory bf16 = estimate_step_memory(opt125m(), kParams, s);
  EXPECT_EQ(bf16.autocast, 2 * kParams);
  EXPECT_LT(bf16.activations, fp32.activations);
}

TEST(MemoryEstimate, FusedAttentionKeepsNoProbabilities) {
  StepShape s;
  const int64_t with = estimate_step_memory(opt125m(), kParams, s).activations;
  s.explicit_attention = false;
  // 12 heads x 128 keys x 4 B per token and layer (13 layers' worth), 1280 tokens.
  EXPECT_EQ(with - estimate_step_memory(opt125m(), kParams, s).activations, int64_t{12} * 128 * 4 * 13 * 1280);
}

TEST(MemoryEstimate, GatedMlpsKeepFourTimesTheirWidth) {
  ModelInfo llama = opt125m();
  llama.family = "llama";
  EXPECT_GT(estimate_step_memory(llama, kParams, {}).activations, estimate_step_memory(opt125m(), kParams, {}).activations);
}

TEST(MemoryEstimate, TheWarningNamesTheSizesAndWhatToChange) {
  StepShape s;
  s.faithful = true;
  EXPECT_EQ(memory_warning(100, 200, "RAM", s), "");
  EXPECT_EQ(memory_warning(100, 0, "RAM", s), "");  // unknown: no warning
  const std::string w = memory_warning(int64_t{30} << 30, int64_t{24} << 30, "this machine's memory (RAM)", s);
  EXPECT_NE(w.find("needs about 30.00 GiB (batch 2, 128 tokens, K 5, full parameters, fp32)"), std::string::npos) << w;
  EXPECT_NE(w.find("this machine's memory (RAM) has 24.00 GiB"), std::string::npos) << w;
  EXPECT_NE(w.find("--lora-rank"), std::string::npos) << w;
  EXPECT_NE(w.find("corrected mode"), std::string::npos) << w;
}

TEST(MemoryEstimate, DescribeListsEveryPart) {
  const std::string d = estimate_step_memory(opt125m(), kParams, {}).describe();
  for (const char* part : {"weights ", "training state ", "activations ", "LM head ", "runtime ", " = "})
    EXPECT_NE(d.find(part), std::string::npos) << part << " in " << d;
}

}  // namespace
