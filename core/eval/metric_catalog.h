#pragma once
// What every evaluation name the store can hold means, for people: a label ("Harmful-answer
// rate"), a unit, a one-line explanation (what it measures, which direction is better), its group
// (forgetting / utility / fluency / robustness / privacy), the side of the run it was measured on
// and whether higher is better. Torch-free (lethe_base), no Qt: the workbench's Metrics dock and
// History, and anything else that shows stored numbers, read it.
//
// The names are those the pipeline (experiment/pipeline.cpp), the probes (experiment/jobs.cpp)
// and the classifier store:
//   <quantity>_<before|after>        harmful_rate, bleu, rouge_l, perplexity, mc_accuracy,
//                                    empty_rate, repetition, non_word_rate, answers_collapsed,
//                                    answer_perplexity, fluent_reference_perplexity
//   one-off                          harmful_rate_reduction, kl_from_original,
//                                    classifier_validation_accuracy
//   tofu_<set>_<metric>_<side>       set forget | retain (any word parses); metric probability,
//                                    truth_ratio, exact_memorization, extraction_strength,
//                                    rouge_l_recall, rouge1_recall
//   mia_<attack>_auc_<side>          attack loss, zlib, min_k, min_k_plus_plus, reference (any
//                                    word parses)
//   probe_<probe>_<measure>[_returned]  probe relearn, int8, int4, int4_gN (any word parses);
//                                    measure harmful_rate, continuation_bleu, tofu_forget_*,
//                                    mia_loss_auc (any known quantity)
// Patterns are parsed, not listed. A name nothing here knows gets the fallback: the raw name as
// its label, group Other, `known` false. describe_metric never throws.
#include <string>
#include <vector>

namespace lethe::eval {

enum class MetricGroup { Forgetting, Utility, Fluency, Robustness, Privacy, Other };
enum class MetricSide { None, Before, After };
// Which way is better: Higher, Lower, Target (closer to `target` is better: an MIA AUC's 0.5),
// Neither (a reference value, a probe's raw measurement).
enum class Better { Higher, Lower, Target, Neither };

struct MetricInfo {
  std::string name;         // as stored: "harmful_rate_after"
  std::string quantity;     // the name without its side: "harmful_rate" (before and after pair by it)
  std::string label;        // "Harmful-answer rate"
  std::string unit;         // "fraction", "perplexity", "nats/token", "BLEU 0–100", "AUC", "flag", ...
  std::string explanation;  // one line: what it measures and which direction is better
  MetricGroup group = MetricGroup::Other;
  MetricSide side = MetricSide::None;
  Better better = Better::Neither;
  double target = 0;   // with Better::Target
  bool flag = false;   // a 0/1 flag (answers_collapsed): shown as yes/no, not charted
  bool known = false;  // false: the fallback (the raw name, group Other)
  int order = 0;       // where it is shown among its group's metrics (lower first)
  // Robustness probes (probe_<probe>_<measure>[_returned]); empty otherwise.
  std::string probe;          // "int8", "relearn", "int4_g64"
  std::string probe_label;    // "int8 weights", "relearning", "int4 weights (groups of 64)"
  std::string measure;        // the measured quantity: "harmful_rate", "tofu_forget_probability"
  std::string measure_label;  // "Harmful-answer rate"
  bool returned = false;      // the "_returned" row: the share of the forgetting that came back

  bool higher_is_better() const { return better == Better::Higher; }
  // "lower is better", "higher is better", "closer to 0.5 is better", "" (Neither).
  std::string direction() const;
  // "Harmful-answer rate (fraction)"; the label alone when the unit says nothing more.
  std::string label_with_unit() const;
};

MetricInfo describe_metric(const std::string& name);

// "forgetting", "utility", "fluency", "robustness", "privacy", "other".
const char* metric_group_name(MetricGroup g);
// "Forgetting", ... (a heading) and one sentence on what the group is for.
const char* metric_group_title(MetricGroup g);
const char* metric_group_explanation(MetricGroup g);
// The groups in the order they are shown.
const std::vector<MetricGroup>& metric_groups();
// "before", "after", "".
const char* metric_side_name(MetricSide s);

// The quantities listed one by one (not the patterns), e.g. "harmful_rate", "kl_from_original".
std::vector<std::string> listed_metric_quantities();

}  // namespace lethe::eval
