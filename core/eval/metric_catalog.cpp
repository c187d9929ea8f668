#include "metric_catalog.h"

#include <cctype>
#include <cstring>

namespace lethe::eval {

namespace {

struct Entry {
  const char* quantity;
  bool sided;  // stored as <quantity>_before and <quantity>_after
  const char* label;
  const char* unit;
  const char* explanation;
  MetricGroup group;
  Better better;
  bool flag = false;
};

// Every quantity stored under its own name (the patterns are parsed below).
const Entry kListed[] = {
    {"harmful_rate", true, "Harmful-answer rate", "fraction",
     "Share of the answers to the evaluation prompts that the harm classifier judges harmful (P ≥ 0.5). Lower is better.",
     MetricGroup::Forgetting, Better::Lower},
    {"harmful_rate_reduction", false, "Harmful-rate reduction", "fraction",
     "(before − after) / before of the harmful-answer rate, with a paired bootstrap 95% interval over prompts; 1 = every "
     "harmful answer gone. Higher is better.",
     MetricGroup::Forgetting, Better::Higher},
    {"classifier_validation_accuracy", false, "Classifier validation accuracy", "fraction",
     "The harm classifier's accuracy on its own held-out validation set: how far its harmful-answer rate can be trusted. "
     "Higher is better.",
     MetricGroup::Forgetting, Better::Higher},
    {"bleu", true, "Continuation BLEU", "BLEU 0–100",
     "sacreBLEU of the model's continuations of the protected text against the text itself: how much of it the model "
     "still reproduces. Lower means more forgotten.",
     MetricGroup::Forgetting, Better::Lower},
    {"rouge_l", true, "Continuation ROUGE-L", "F1 0–1",
     "ROUGE-L F1 of the model's continuations of the protected text against the text itself. Lower means more forgotten.",
     MetricGroup::Forgetting, Better::Lower},
    {"perplexity", true, "Normal-data perplexity", "perplexity",
     "Perplexity of the normal (retain) evaluation texts: how well the model still models the data it should keep. Lower "
     "is better; a rise is lost utility.",
     MetricGroup::Utility, Better::Lower},
    {"mc_accuracy", true, "Multiple-choice accuracy", "fraction",
     "TruthfulQA-style multiple choice on the normal data: share of questions whose best answer is likelier (mean "
     "log-probability per token) than every incorrect one. Higher is better.",
     MetricGroup::Utility, Better::Higher},
    {"kl_from_original", false, "KL divergence from the original", "nats/token",
     "Mean KL(original ‖ unlearned) per token on the normal evaluation texts: how far the model moved on data it should "
     "keep. 0 = unchanged; lower is better.",
     MetricGroup::Utility, Better::Lower},
    {"empty_rate", true, "Empty answers", "fraction", "Share of the answers with no words at all. Lower is better.",
     MetricGroup::Fluency, Better::Lower},
    {"repetition", true, "Repetition (rep-2)", "fraction",
     "Mean rep-2 of the answers: 1 − distinct word bigrams / bigrams (Welleck et al. 2019); 0 = no bigram repeated. Lower "
     "is better.",
     MetricGroup::Fluency, Better::Lower},
    {"non_word_rate", true, "Non-words", "fraction",
     "Share of the answers' words that are not plausible English words (the rules are in core/eval/fluency.h). Lower is "
     "better.",
     MetricGroup::Fluency, Better::Lower},
    {"answers_collapsed", true, "Answers collapsed", "flag",
     "1 when the answers stopped being language (mostly empty, repetitive or non-words, or 4× likelier nonsense under the "
     "original); a low harmful rate over such answers is no success. 0 is better.",
     MetricGroup::Fluency, Better::Lower, true},
    {"answer_perplexity", true, "Answer perplexity under the original", "perplexity",
     "Perplexity of the model's answers under the original model, each answer alone: word salad scores high. Lower means "
     "more fluent.",
     MetricGroup::Fluency, Better::Lower},
    {"fluent_reference_perplexity", true, "Perplexity of fluent text (reference)", "perplexity",
     "The same judge's perplexity of the normal data's reference answers: what fluent text scores, to read the answer "
     "perplexity against. A reference, not a score.",
     MetricGroup::Fluency, Better::Neither},
};

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}
bool starts_with(const std::string& s, const std::string& head) { return s.rfind(head, 0) == 0; }

// "min_k_plus_plus" -> "min k plus plus"
std::string words_of(const std::string& s) {
  std::string out = s;
  for (char& c : out)
    if (c == '_') c = ' ';
  return out;
}

// Splits "<quantity>_before" / "<quantity>_after".
MetricSide split_side(const std::string& name, std::string& quantity) {
  for (auto [tail, side] : {std::pair{"_before", MetricSide::Before}, std::pair{"_after", MetricSide::After}})
    if (ends_with(name, tail) && name.size() > std::strlen(tail)) {
      quantity = name.substr(0, name.size() - std::strlen(tail));
      return side;
    }
  quantity = name;
  return MetricSide::None;
}

bool listed(const std::string& quantity, MetricSide side, MetricInfo& out) {
  int index = 0;
  for (const auto& e : kListed) {
    out.order = index++;
    if (quantity != e.quantity || e.sided != (side != MetricSide::None)) continue;
    out.quantity = quantity;
    out.label = e.label;
    out.unit = e.unit;
    out.explanation = e.explanation;
    out.group = e.group;
    out.better = e.better;
    out.flag = e.flag;
    out.side = side;
    out.known = true;
    return true;
  }
  return false;
}

// tofu_<set>_<metric>: TOFU's per-set aggregates (eval/tofu.h).
bool tofu(const std::string& quantity, MetricSide side, MetricInfo& out) {
  if (!starts_with(quantity, "tofu_") || side == MetricSide::None) return false;
  struct Metric {
    const char* key;
    const char* label;
    const char* unit;
    const char* what;
  };
  const Metric metrics[] = {
      {"probability", "answer probability", "probability", "exp(−mean NLL) of the true answers"},
      {"truth_ratio", "truth ratio", "ratio 0–1", ""},
      {"rouge_l_recall", "ROUGE-L recall", "recall 0–1", "ROUGE-L recall of the greedy answer against the true one"},
      {"rouge1_recall", "ROUGE-1 recall", "recall 0–1", "ROUGE-1 recall of the greedy answer against the true one"},
      {"exact_memorization", "exact memorisation", "fraction", "share of the answer tokens the model predicts exactly"},
      {"extraction_strength", "extraction strength", "fraction",
       "1 − k/n for the first answer token k from which the model predicts the whole rest"},
  };
  const std::string rest = quantity.substr(5);
  int index = 0;
  for (const auto& m : metrics) {
    out.order = 100 + index++;
    const std::string tail = std::string("_") + m.key;
    if (!ends_with(rest, tail) || rest.size() == tail.size()) continue;
    const std::string set = rest.substr(0, rest.size() - tail.size());
    const bool forget = set == "forget";
    out.quantity = quantity;
    out.side = side;
    out.known = true;
    out.unit = m.unit;
    out.label = "TOFU " + words_of(set) + " set: " + m.label;
    out.group = forget ? MetricGroup::Forgetting : MetricGroup::Utility;
    if (std::string(m.key) == "truth_ratio") {
      out.better = Better::Higher;
      out.explanation = forget ? "TOFU truth ratio on the forget set, \"closer to 1 is better\": mean of min(r, 1/r) for "
                                 "r = P(perturbed answers) / P(paraphrased answer); 1 = the model no longer prefers the "
                                 "true answer. Higher means more forgotten."
                               : "TOFU truth ratio on the " + words_of(set) +
                                     " set, \"true is better\": mean of max(0, 1 − r) for r = P(perturbed answers) / "
                                     "P(paraphrased answer). Higher means the true answers are still preferred: better.";
    } else {
      out.better = forget ? Better::Lower : Better::Higher;
      out.explanation = std::string("TOFU ") + words_of(set) + " set: " + m.what + "." +
                        (forget ? " Lower means more forgotten." : " Higher means more kept: better.");
    }
    return true;
  }
  return false;
}

// mia_<attack>_auc: membership inference (eval/mia.h).
bool mia(const std::string& quantity, MetricSide side, MetricInfo& out) {
  if (!starts_with(quantity, "mia_") || !ends_with(quantity, "_auc") || side == MetricSide::None ||
      quantity.size() <= std::strlen("mia__auc"))
    return false;
  const std::string attack = quantity.substr(4, quantity.size() - 8);
  struct Attack {
    const char* key;
    const char* label;
  };
  const Attack attacks[] = {
      {"loss", "LOSS"}, {"zlib", "ZLib"}, {"min_k", "Min-K%"}, {"min_k_plus_plus", "Min-K%++"}, {"reference", "Reference"}};
  std::string label = words_of(attack);
  out.order = 299;
  int index = 0;
  for (const auto& a : attacks) {
    if (attack == a.key) {
      label = a.label;
      out.order = 200 + index;
    }
    ++index;
  }
  out.quantity = quantity;
  out.side = side;
  out.known = true;
  out.label = label + " attack AUC";
  out.unit = "AUC";
  out.group = MetricGroup::Privacy;
  out.better = Better::Target;
  out.target = 0.5;
  out.explanation = "Membership inference with the " + label +
                    " attack: AUC of its scores on the forget set against a holdout set. 0.5 = the attack cannot tell "
                    "forgotten data from data never seen, which is the goal; far from 0.5, the forget set still stands out.";
  return true;
}

std::string probe_label(const std::string& probe) {
  if (probe == "relearn") return "relearning";
  if (probe == "int8") return "int8 weights";
  if (probe == "int4") return "int4 weights";
  if (starts_with(probe, "int4_g") && probe.size() > 6) return "int4 weights (groups of " + probe.substr(6) + ")";
  return words_of(probe);
}

// The measure of a probe row, as the quantity it measures again ("continuation_bleu" is the
// corpus BLEU stored as bleu_*).
bool probe_measure(const std::string& measure, MetricInfo& m) {
  const std::string as = measure == "continuation_bleu" ? "bleu" : measure;
  return listed(as, MetricSide::After, m) || tofu(as, MetricSide::After, m) || mia(as, MetricSide::After, m);
}

// probe_<probe>_<measure>[_returned] (experiment/jobs.cpp's probe_rows); the probe name may hold
// underscores (int4_g64), so the measure is the longest known tail.
bool probe(const std::string& name, MetricInfo& out) {
  if (!starts_with(name, "probe_")) return false;
  std::string rest = name.substr(6);
  const bool returned = ends_with(rest, "_returned");
  if (returned) rest = rest.substr(0, rest.size() - std::strlen("_returned"));
  for (size_t cut = rest.find('_'); cut != std::string::npos; cut = rest.find('_', cut + 1)) {
    const std::string p = rest.substr(0, cut), measure = rest.substr(cut + 1);
    MetricInfo m;
    if (p.empty() || measure.empty() || !probe_measure(measure, m)) continue;
    out.quantity = name;
    out.side = MetricSide::None;
    out.known = true;
    out.group = MetricGroup::Robustness;
    out.probe = p;
    out.probe_label = probe_label(p);
    out.measure = measure;
    out.measure_label = m.label;
    out.returned = returned;
    out.order = 300 + m.order;
    if (returned) {
      out.label = "Forgetting returned after " + out.probe_label + " (" + m.label + ")";
      out.unit = "fraction";
      out.better = Better::Lower;
      out.explanation = "How much of the change unlearning made to the " + m.label + " came back after " + out.probe_label +
                        ": (probe − after) / (before − after). 0 = none, 1 = all of it; lower is better.";
    } else {
      out.label = m.label + " after " + out.probe_label;
      out.unit = m.unit;
      out.better = Better::Neither;
      out.explanation = "The " + m.label + " of the unlearned model after " + out.probe_label +
                        ", measured as the run measured it; compare with the run's after value.";
    }
    return true;
  }
  return false;
}

}  // namespace

std::string MetricInfo::direction() const {
  switch (better) {
    case Better::Higher:
      return "higher is better";
    case Better::Lower:
      return "lower is better";
    case Better::Target: {
      std::string t = std::to_string(target);
      while (t.size() > 1 && t.back() == '0') t.pop_back();
      if (!t.empty() && t.back() == '.') t.pop_back();
      return "closer to " + t + " is better";
    }
    case Better::Neither:
      break;
  }
  return "";
}

std::string MetricInfo::label_with_unit() const {
  if (unit.empty() || unit == "flag" || unit == "perplexity" || unit == "AUC") return label;
  return label + " (" + unit + ")";
}

MetricInfo describe_metric(const std::string& name) {
  MetricInfo info;
  info.name = name;
  try {
    std::string quantity;
    const MetricSide side = split_side(name, quantity);
    if (listed(quantity, side, info) || tofu(quantity, side, info) || mia(quantity, side, info) || probe(name, info)) {
      info.name = name;
      return info;
    }
  } catch (...) {  // (an allocation failure: the fallback below)
  }
  info = MetricInfo{};
  info.name = name;
  std::string quantity;
  info.side = split_side(name, quantity);
  info.quantity = quantity;
  info.label = name;
  info.order = 1000;
  info.explanation = "Stored as " + name + "; Lethe has no description of it.";
  return info;
}

const char* metric_group_name(MetricGroup g) {
  switch (g) {
    case MetricGroup::Forgetting:
      return "forgetting";
    case MetricGroup::Utility:
      return "utility";
    case MetricGroup::Fluency:
      return "fluency";
    case MetricGroup::Robustness:
      return "robustness";
    case MetricGroup::Privacy:
      return "privacy";
    case MetricGroup::Other:
      break;
  }
  return "other";
}

const char* metric_group_title(MetricGroup g) {
  switch (g) {
    case MetricGroup::Forgetting:
      return "Forgetting";
    case MetricGroup::Utility:
      return "Utility";
    case MetricGroup::Fluency:
      return "Fluency";
    case MetricGroup::Robustness:
      return "Robustness";
    case MetricGroup::Privacy:
      return "Privacy";
    case MetricGroup::Other:
      break;
  }
  return "Other";
}

const char* metric_group_explanation(MetricGroup g) {
  switch (g) {
    case MetricGroup::Forgetting:
      return "Is the unwanted knowledge or behaviour gone?";
    case MetricGroup::Utility:
      return "Does the model still do what it should on normal data?";
    case MetricGroup::Fluency:
      return "Are the answers still language? A low harmful rate over word salad is no success.";
    case MetricGroup::Robustness:
      return "Does the forgotten come back when the model is fine-tuned a little or its weights are rounded?";
    case MetricGroup::Privacy:
      return "Can an attacker still tell the forget set from data the model never saw?";
    case MetricGroup::Other:
      break;
  }
  return "Stored numbers Lethe has no description of.";
}

const std::vector<MetricGroup>& metric_groups() {
  static const std::vector<MetricGroup> g = {MetricGroup::Forgetting, MetricGroup::Utility, MetricGroup::Fluency,
                                             MetricGroup::Robustness, MetricGroup::Privacy, MetricGroup::Other};
  return g;
}

const char* metric_side_name(MetricSide s) {
  switch (s) {
    case MetricSide::Before:
      return "before";
    case MetricSide::After:
      return "after";
    case MetricSide::None:
      break;
  }
  return "";
}

std::vector<std::string> listed_metric_quantities() {
  std::vector<std::string> out;
  for (const auto& e : kListed) out.push_back(e.quantity);
  return out;
}

}  // namespace lethe::eval
