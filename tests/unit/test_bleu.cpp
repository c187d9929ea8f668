// BLEU and ROUGE-L. Expected values are sacreBLEU's own published test values (test/test_bleu.py
// and test/test_sentence_bleu.py of mjpost/sacrebleu, cited per test), so this compares with
// sacreBLEU itself, not with Lethe's output.
#include <gtest/gtest.h>

#include "eval/bleu.h"
#include "io/json.h"
#include "util/error.h"

using namespace lethe::eval;

namespace {
// sacreBLEU README example (test_bleu.py: _refs, _hyps).
const std::vector<std::string> kHyps = {"The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."};
const std::vector<std::vector<std::string>> kRefs = {
    {"The dog bit the man.", "It was not unexpected.", "The man bit him first."},
    {"The dog had bit the man.", "No one was surprised.", "The man had bitten the dog."}};
// test_sentence_bleu.py, "Example taken from #98".
const std::string kSysRo = "Producția de zahăr primă va fi exprimată în ceea ce privește zahărul alb;";
const std::string kRefRo = "producţia de zahăr brut se exprimă în zahăr alb;";
}  // namespace

TEST(SacreBleu, CorpusBleuReadmeExample) {
  // test_corpus_bleu_cases: default 48.530827, tokenize none 49.1919566, smooth none 48.530827,
  // empty hypotheses 0.0.
  EXPECT_NEAR(corpus_bleu(kHyps, kRefs).score, 48.530827, 1e-4);
  BleuOptions none;
  none.tokenize = "none";
  EXPECT_NEAR(corpus_bleu(kHyps, kRefs, none).score, 49.1919566, 1e-4);
  BleuOptions nosmooth;
  nosmooth.smooth = "none";
  EXPECT_NEAR(corpus_bleu(kHyps, kRefs, nosmooth).score, 48.530827, 1e-4);
  EXPECT_EQ(corpus_bleu({"", "", ""}, kRefs).score, 0.0);
}

TEST(SacreBleu, SentenceBleuSmoothingMethods) {
  // test_sentence_bleu.py test_cases (13a, effective order), tolerance 1e-3 as there.
  struct Case {
    const char* smooth;
    double value;
    const char* tok;
    double expected;
  };
  for (const Case& c : {Case{"exp", -1, "13a", 8.493}, Case{"none", -1, "13a", 0.0}, Case{"floor", -1, "13a", 4.51688},
                        Case{"floor", 0.1, "13a", 4.51688}, Case{"floor", 0.5, "13a", 10.10}, Case{"add-k", -1, "13a", 14.882},
                        Case{"add-k", 1, "13a", 14.882}, Case{"add-k", 2, "13a", 21.389}, Case{"exp", -1, "none", 7.347}}) {
    BleuOptions o;
    o.smooth = c.smooth;
    o.smooth_value = c.value;
    o.tokenize = c.tok;
    EXPECT_NEAR(sentence_bleu(kSysRo, {kRefRo}, o).score, c.expected, 1e-3) << c.smooth << " " << c.value << " " << c.tok;
  }
  // "Example taken from #141": no match at all is 0 whatever the smoothing.
  for (const char* s : {"exp", "none", "floor", "add-k"}) {
    BleuOptions o;
    o.smooth = s;
    EXPECT_EQ(sentence_bleu("this is a cat", {"okay thanks"}, o).score, 0.0) << s;
  }
}

TEST(SacreBleu, StatisticsScoringAndEffectiveOrder) {
  // test_case_statistics: counts [4, 2, 1, 0], totals [6, 5, 4, 3] (raw: tokenize none).
  BleuOptions raw;
  raw.tokenize = "none";
  raw.smooth = "floor";
  raw.smooth_value = 0.01;
  auto s = corpus_bleu({"am I am a character sequence"}, {{"I am a symbol string sequence a a"}}, raw);
  EXPECT_EQ(s.counts, (std::vector<double>{4, 2, 1, 0}));
  EXPECT_EQ(s.totals, (std::vector<double>{6, 5, 4, 3}));
  // test_case_scoring: [9, 7, 5, 3] / [10, 8, 6, 4], 11, 11 -> 0.8375922397 (no smoothing).
  BleuOptions none;
  none.smooth = "none";
  EXPECT_NEAR(compute_bleu({9, 7, 5, 3}, {10, 8, 6, 4}, 11, 11, none).score / 100, 0.8375922397, 1e-8);
  // test_case_effective_order (raw_corpus_bleu: floor 0.01, tokenize none, effective order).
  raw.effective_order = true;
  EXPECT_NEAR(corpus_bleu({"test"}, {{"a test"}}, raw).score / 100, 0.3678794411714425, 1e-8);
  EXPECT_NEAR(corpus_bleu({"a test"}, {{"a test"}}, raw).score / 100, 1.0, 1e-8);
  EXPECT_NEAR(corpus_bleu({"a little test"}, {{"a test"}}, raw).score / 100, 0.03218297948685433, 1e-8);
  // test_raw_bleu_cases. (Its first case, with no matching n-gram at all, predates sacreBLEU's
  // early return of 0 for that situation (#141), which test_sentence_bleu.py's zero cases assert
  // and Lethe follows.)
  raw.effective_order = false;
  EXPECT_NEAR(corpus_bleu({"this is a fest"}, {{"this is a test"}}, raw).score / 100, 0.223606797749979, 1e-8);
}

TEST(SacreBleu, Tokenizer13a) {
  EXPECT_EQ(tokenize_13a("The dog bit the man."), "The dog bit the man .");
  EXPECT_EQ(tokenize_13a("It wasn't surprising."), "It wasn't surprising .");
  EXPECT_EQ(tokenize_13a("3.14, 1,000 and 5-4 &amp; (x)"), "3.14 , 1,000 and 5 - 4 & ( x )");
  EXPECT_EQ(tokenize_13a("zahărul alb;"), "zahărul alb ;");
}

TEST(SacreBleu, MismatchedCountsAreAnError) {
  EXPECT_THROW(corpus_bleu({"a", "b"}, {{"a"}}), lethe::Error);
  EXPECT_THROW(corpus_rouge_l({"a", "b"}, {{"a"}}), lethe::Error);
}

TEST(RougeL, LongestCommonSubsequence) {
  // hyp "the cat sat on the mat", ref "the cat is on the mat": LCS 5 -> P = R = F = 5/6.
  auto r = rouge_l("The cat sat on the mat.", "the cat is on the mat");
  EXPECT_NEAR(r.precision, 5.0 / 6, 1e-12);
  EXPECT_NEAR(r.f1, 5.0 / 6, 1e-12);
  // hyp 3 tokens, ref 6: LCS 3 ("a", "c", "e") -> P 1, R .5, F 2/3.
  r = rouge_l("a c e", "a b c d e f");
  EXPECT_NEAR(r.recall, 0.5, 1e-12);
  EXPECT_NEAR(r.f1, 2.0 / 3, 1e-12);
  EXPECT_EQ(rouge_l("", "x").f1, 0.0);
  EXPECT_EQ(rouge_tokenize("It's 2024-ready!"), (std::vector<std::string>{"it", "s", "2024", "ready"}));
}

TEST(NltkReference, CorpusBleuMethod3EqualsExpSmoothing) {
  // tests/reference/bleu_reference.py: nltk corpus_bleu, SmoothingFunction().method3.
  auto j = lethe::io::read_json_file(std::string(LETHE_BINARY_DIR) + "/reference/bleu/nltk.json");
  BleuOptions o;
  o.tokenize = "none";
  ASSERT_GE(j["cases"].size(), 10u);
  for (const auto& c : j["cases"]) {
    auto hyps = c["hyps"].get<std::vector<std::string>>();
    auto refs = c["refs"].get<std::vector<std::vector<std::string>>>();
    EXPECT_NEAR(corpus_bleu(hyps, refs, o).score / 100, c["bleu"].get<double>(), 1e-6) << c.dump();
  }
}

#include "eval/word_diff.h"

TEST(WordDiff, MarksRemovedAndAddedWords) {
  auto d = lethe::eval::word_diff("spread a nasty rumour today", "spread a kind word today");
  std::string s;
  for (const auto& p : d)
    s += (p.kind == lethe::eval::DiffPiece::Same ? "=" : p.kind == lethe::eval::DiffPiece::Added ? "+" : "-") + p.text + " ";
  EXPECT_EQ(s, "=spread =a +kind +word -nasty -rumour =today ");
  EXPECT_TRUE(lethe::eval::word_diff("", "").empty());
}
