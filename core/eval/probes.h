#pragma once
// Robustness probes of an unlearned model: does what was forgotten come back?
//   relearn       fine-tune for a few steps on a held-out part of the forget set (Lynch et al.
//                 2024, "Eight Methods to Evaluate Robust Unlearning in LLMs"; Hu et al. 2024,
//                 "Jogging the Memory of Unlearned LLMs Through Targeted Relearning Attacks"):
//                 plain cross-entropy on the answers, AdamW, every parameter trained
//   int8 / int4   the weights rounded to a quantisation grid (quantize.h; Zhang et al. 2024,
//                 "Catastrophic Failure of LLM Unlearning via Quantization")
// The probe changes the model it is given; `lethe eval --probe` loads a fresh copy for each one
// and measures it as it measured the model, then reports how much of the forgetting returned.
// No torch in this header.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/datasets.h"
#include "data/prompt_format.h"
#include "io/json.h"
#include "text/tokenizer.h"

namespace lethe::model {
class CausalLMImpl;
using CancelCheck = std::function<bool()>;
}  // namespace lethe::model

namespace lethe::eval {

struct RelearnOptions {
  int64_t steps = 10;  // optimizer steps
  int64_t batch = 4;   // pairs per step (the pairs are cycled in a seeded order)
  double lr = 1e-5;    // AdamW, weight decay 0
  uint64_t seed = 0;
  // Throws lethe::Error naming the field for a bad value.
  void validate() const;
};

// Fine-tunes `model` in place on `pairs` (question/answer in `format`, the answer tokens' mean
// cross-entropy, corrected mode), returning each step's loss. The model is left in eval mode.
// Throws lethe::Error for no pairs or a pair that cannot be encoded (naming it), model::Cancelled
// when `cancelled` answers true (asked before each step).
std::vector<double> relearn(model::CausalLMImpl& model, const text::Tokenizer& tok, const std::vector<data::QaPair>& pairs,
                            const data::PromptFormat& format, const RelearnOptions& o, const model::CancelCheck& cancelled = {});

// "relearn", "int8", "int4" or "int4:gN" (quantize.h's schemes). Throws lethe::Error naming the
// text and the accepted forms.
void check_probe_name(const std::string& name);

// How much of the forgetting a probe brought back, for each headline measure both states have:
// {"harmful_rate": {"after", "probe", "before"?, "returned"?}, ...}. "returned" = (probe -
// after) / (before - after) when the measure moved by more than 1e-9 between before and after
// (1 = all of it came back, 0 = none, negative = the probe removed more); the measures are the
// harmful rate, continuation BLEU of protected text, TOFU forget probability / ROUGE-L recall / truth ratio, and the MIA LOSS
// AUC. `before` may be null (no original model): then only after and probe.
io::Json probe_returns(const io::Json* before, const io::Json& after, const io::Json& probe);

}  // namespace lethe::eval
