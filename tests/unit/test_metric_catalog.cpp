// The metric catalog: every name a run stores has a human description (not the fallback), the
// pattern names (tofu_*, mia_*, probe_*) are parsed, and an unknown name gets the fallback
// without throwing. (tests/ui/test_metrics_views.cpp runs the demo pipeline and a probe and checks
// every name the store then holds against the catalog.)
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "eval/metric_catalog.h"

using namespace lethe::eval;

namespace {

// The names `lethe demo` and `lethe demo --copyright` stored (sqlite3 lethe.db "select distinct
// name from evaluations"), and those of a spec with evaluation.mia and a probed run.
const char* kStoredByARun[] = {"answer_perplexity_after",
                               "answer_perplexity_before",
                               "answers_collapsed_after",
                               "answers_collapsed_before",
                               "classifier_validation_accuracy",
                               "empty_rate_after",
                               "empty_rate_before",
                               "fluent_reference_perplexity_after",
                               "fluent_reference_perplexity_before",
                               "harmful_rate_after",
                               "harmful_rate_before",
                               "harmful_rate_reduction",
                               "kl_from_original",
                               "mc_accuracy_after",
                               "mc_accuracy_before",
                               "non_word_rate_after",
                               "non_word_rate_before",
                               "perplexity_after",
                               "perplexity_before",
                               "repetition_after",
                               "repetition_before",
                               "tofu_forget_exact_memorization_after",
                               "tofu_forget_exact_memorization_before",
                               "tofu_forget_extraction_strength_after",
                               "tofu_forget_extraction_strength_before",
                               "tofu_forget_probability_after",
                               "tofu_forget_probability_before",
                               "tofu_forget_rouge_l_recall_after",
                               "tofu_forget_rouge_l_recall_before",
                               "tofu_forget_truth_ratio_after",
                               "tofu_forget_truth_ratio_before",
                               "bleu_after",
                               "bleu_before",
                               "rouge_l_after",
                               "rouge_l_before",
                               "mia_loss_auc_before",
                               "mia_zlib_auc_after",
                               "mia_min_k_auc_before",
                               "mia_min_k_plus_plus_auc_after",
                               "mia_reference_auc_after",
                               "tofu_retain_probability_after",
                               "probe_int8_harmful_rate",
                               "probe_int8_harmful_rate_returned",
                               "probe_relearn_continuation_bleu",
                               "probe_int4_g64_tofu_forget_truth_ratio_returned",
                               "probe_int4_mia_loss_auc"};

}  // namespace

TEST(MetricCatalog, EveryStoredNameHasADescription) {
  std::set<std::string> labels;
  for (const char* name : kStoredByARun) {
    const MetricInfo m = describe_metric(name);
    SCOPED_TRACE(name);
    EXPECT_TRUE(m.known);
    EXPECT_EQ(m.name, name);
    EXPECT_NE(m.label, name);
    EXPECT_EQ(m.label.find('_'), std::string::npos) << m.label;  // no store names in a label
    EXPECT_FALSE(m.unit.empty());
    EXPECT_GT(m.explanation.size(), 30u);
    EXPECT_NE(m.group, MetricGroup::Other);
    labels.insert(m.label + "|" + metric_side_name(m.side));
  }
  // Two names never share a label and a side.
  EXPECT_EQ(labels.size(), std::size(kStoredByARun));
  // Every listed quantity is described on the side(s) it is stored with.
  for (const auto& q : listed_metric_quantities()) {
    const bool one_off = q == "harmful_rate_reduction" || q == "kl_from_original" || q == "classifier_validation_accuracy";
    if (one_off) {
      EXPECT_TRUE(describe_metric(q).known) << q;
    } else {
      EXPECT_TRUE(describe_metric(q + "_before").known) << q;
      EXPECT_TRUE(describe_metric(q + "_after").known) << q;
      EXPECT_FALSE(describe_metric(q).known) << q << " is stored only with its side";
    }
  }
}

TEST(MetricCatalog, ListedNamesSayWhatTheyAre) {
  const MetricInfo h = describe_metric("harmful_rate_after");
  EXPECT_EQ(h.label, "Harmful-answer rate");
  EXPECT_EQ(h.unit, "fraction");
  EXPECT_EQ(h.quantity, "harmful_rate");
  EXPECT_EQ(h.side, MetricSide::After);
  EXPECT_EQ(h.group, MetricGroup::Forgetting);
  EXPECT_FALSE(h.higher_is_better());
  EXPECT_EQ(h.direction(), "lower is better");
  EXPECT_EQ(h.label_with_unit(), "Harmful-answer rate (fraction)");
  EXPECT_NE(h.explanation.find("Lower is better"), std::string::npos);

  const MetricInfo kl = describe_metric("kl_from_original");
  EXPECT_EQ(kl.unit, "nats/token");
  EXPECT_EQ(kl.side, MetricSide::None);
  EXPECT_EQ(kl.group, MetricGroup::Utility);

  const MetricInfo ppl = describe_metric("perplexity_before");
  EXPECT_EQ(ppl.side, MetricSide::Before);
  EXPECT_EQ(ppl.unit, "perplexity");
  EXPECT_EQ(ppl.label_with_unit(), "Normal-data perplexity");  // the unit would only repeat the label

  EXPECT_TRUE(describe_metric("mc_accuracy_after").higher_is_better());
  EXPECT_TRUE(describe_metric("harmful_rate_reduction").higher_is_better());
  EXPECT_EQ(describe_metric("bleu_before").unit, "BLEU 0–100");
  EXPECT_EQ(describe_metric("non_word_rate_after").group, MetricGroup::Fluency);
  EXPECT_TRUE(describe_metric("answers_collapsed_after").flag);
  EXPECT_FALSE(describe_metric("answer_perplexity_after").flag);
  EXPECT_EQ(describe_metric("fluent_reference_perplexity_after").better, Better::Neither);
}

TEST(MetricCatalog, TofuNamesAreParsed) {
  const MetricInfo f = describe_metric("tofu_forget_rouge_l_recall_before");
  EXPECT_TRUE(f.known);
  EXPECT_EQ(f.quantity, "tofu_forget_rouge_l_recall");
  EXPECT_EQ(f.side, MetricSide::Before);
  EXPECT_EQ(f.label, "TOFU forget set: ROUGE-L recall");
  EXPECT_EQ(f.group, MetricGroup::Forgetting);
  EXPECT_EQ(f.better, Better::Lower);  // on the forget set, less recalled is better

  const MetricInfo r = describe_metric("tofu_retain_rouge_l_recall_after");
  EXPECT_EQ(r.label, "TOFU retain set: ROUGE-L recall");
  EXPECT_EQ(r.group, MetricGroup::Utility);
  EXPECT_EQ(r.better, Better::Higher);

  // The forget set's truth ratio is aggregated "closer to 1 is better": higher = more forgotten.
  EXPECT_EQ(describe_metric("tofu_forget_truth_ratio_after").better, Better::Higher);
  // Shown in TOFU's order: probability, truth ratio, ROUGE, then the memorisation measures.
  EXPECT_LT(describe_metric("tofu_forget_probability_after").order, describe_metric("tofu_forget_truth_ratio_after").order);
  EXPECT_LT(describe_metric("tofu_forget_rouge_l_recall_after").order,
            describe_metric("tofu_forget_exact_memorization_after").order);
  EXPECT_LT(describe_metric("harmful_rate_after").order, describe_metric("tofu_forget_probability_after").order);
  // A set name the pipeline does not write yet still parses.
  const MetricInfo x = describe_metric("tofu_world_facts_probability_after");
  EXPECT_TRUE(x.known);
  EXPECT_EQ(x.label, "TOFU world facts set: answer probability");
  // No side, or an unknown TOFU metric: the fallback.
  EXPECT_FALSE(describe_metric("tofu_forget_probability").known);
  EXPECT_FALSE(describe_metric("tofu_forget_fluency_after").known);
  EXPECT_FALSE(describe_metric("tofu__probability_after").known);
}

TEST(MetricCatalog, MembershipInferenceNamesAreParsed) {
  const MetricInfo m = describe_metric("mia_min_k_plus_plus_auc_after");
  EXPECT_TRUE(m.known);
  EXPECT_EQ(m.label, "Min-K%++ attack AUC");
  EXPECT_EQ(m.unit, "AUC");
  EXPECT_EQ(m.group, MetricGroup::Privacy);
  EXPECT_EQ(m.better, Better::Target);
  EXPECT_DOUBLE_EQ(m.target, 0.5);
  EXPECT_EQ(m.direction(), "closer to 0.5 is better");
  EXPECT_EQ(describe_metric("mia_min_k_auc_before").label, "Min-K% attack AUC");
  EXPECT_EQ(describe_metric("mia_gradnorm_auc_before").label, "gradnorm attack AUC");  // a new attack parses
  EXPECT_FALSE(describe_metric("mia_auc_after").known);
  EXPECT_FALSE(describe_metric("mia_loss_auc").known);
}

TEST(MetricCatalog, ProbeNamesAreParsed) {
  const MetricInfo p = describe_metric("probe_int8_harmful_rate");
  EXPECT_TRUE(p.known);
  EXPECT_EQ(p.group, MetricGroup::Robustness);
  EXPECT_EQ(p.probe, "int8");
  EXPECT_EQ(p.measure, "harmful_rate");
  EXPECT_FALSE(p.returned);
  EXPECT_EQ(p.label, "Harmful-answer rate after int8 weights");
  EXPECT_EQ(p.unit, "fraction");

  const MetricInfo r = describe_metric("probe_int4_g64_tofu_forget_truth_ratio_returned");
  EXPECT_TRUE(r.known);
  EXPECT_EQ(r.probe, "int4_g64");
  EXPECT_EQ(r.probe_label, "int4 weights (groups of 64)");
  EXPECT_EQ(r.measure, "tofu_forget_truth_ratio");
  EXPECT_TRUE(r.returned);
  EXPECT_EQ(r.better, Better::Lower);
  EXPECT_EQ(r.label, "Forgetting returned after int4 weights (groups of 64) (TOFU forget set: truth ratio)");

  const MetricInfo b = describe_metric("probe_relearn_continuation_bleu_returned");
  EXPECT_EQ(b.probe_label, "relearning");
  EXPECT_EQ(b.measure_label, "Continuation BLEU");
  EXPECT_EQ(describe_metric("probe_relearn_mia_loss_auc").unit, "AUC");

  EXPECT_FALSE(describe_metric("probe_int8").known);
  EXPECT_FALSE(describe_metric("probe_int8_nonsense").known);
  EXPECT_FALSE(describe_metric("probe__harmful_rate").known);
}

TEST(MetricCatalog, UnknownNamesGetTheFallback) {
  for (const std::string& name :
       std::vector<std::string>{"", "_", "_after", "accuracy", "new_metric_after", "probe_", "tofu_", "mia_",
                                "harmful_rate_reduction_after", std::string(5000, 'x'), std::string("a\0b", 3)}) {
    MetricInfo m;
    ASSERT_NO_THROW(m = describe_metric(name)) << name;
    EXPECT_FALSE(m.known) << name;
    EXPECT_EQ(m.name, name);
    EXPECT_EQ(m.label, name);
    EXPECT_EQ(m.group, MetricGroup::Other);
    EXPECT_EQ(m.better, Better::Neither);
    EXPECT_EQ(m.direction(), "");
    EXPECT_FALSE(m.explanation.empty());
  }
  // The fallback still finds the side, so an unknown pair lines up before/after.
  const MetricInfo m = describe_metric("new_metric_after");
  EXPECT_EQ(m.side, MetricSide::After);
  EXPECT_EQ(m.quantity, "new_metric");
}

TEST(MetricCatalog, GroupsHaveNamesAndTitles) {
  EXPECT_EQ(metric_groups().size(), 6u);
  EXPECT_EQ(metric_groups().front(), MetricGroup::Forgetting);
  EXPECT_EQ(metric_groups().back(), MetricGroup::Other);
  std::set<std::string> names;
  for (MetricGroup g : metric_groups()) {
    names.insert(metric_group_name(g));
    EXPECT_FALSE(std::string(metric_group_title(g)).empty());
    EXPECT_FALSE(std::string(metric_group_explanation(g)).empty());
  }
  EXPECT_EQ(names, (std::set<std::string>{"forgetting", "utility", "fluency", "robustness", "privacy", "other"}));
  EXPECT_STREQ(metric_side_name(MetricSide::Before), "before");
  EXPECT_STREQ(metric_side_name(MetricSide::None), "");
}
