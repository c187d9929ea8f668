// Hugging Face tokenizer.json pipelines and model folders against what the `tokenizers` library
// and transformers' AutoTokenizer make of the same lines. The folders under
// tests/fixtures/tokenizers/ were trained offline by tests/reference/tokenizers_reference.py (its
// header names the versions); the expected ids and decoded strings are theirs. Torch-free.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>

#include "io/json.h"
#include "support/tiny_opt.h"
#include "text/hf_auto.h"
#include "text/hf_regex.h"
#include "text/hf_tokenizer.h"
#include "text/spm_model.h"
#include "text/unicode.h"
#include "util/error.h"

using namespace lethe;
using lethe::testing::error_of;
using lethe::testing::TempDir;
using lethe::testing::write_text;
namespace fs = std::filesystem;

namespace {

const fs::path kFixtures = fs::path(LETHE_SOURCE_DIR) / "tests/fixtures/tokenizers";

const std::vector<std::string>& lines() {
  static const std::vector<std::string> l = io::read_json_file(kFixtures / "lines.json").get<std::vector<std::string>>();
  return l;
}

using Ids = std::vector<int64_t>;

std::string show(const std::string& s) { return io::Json(s).dump(); }
std::string show(const Ids& v) { return io::Json(v).dump(); }

// Compares one tokenizer with one "raw"/"auto" block of an expected.json; returns the mismatches.
int compare(const std::function<Ids(const std::string&, bool)>& encode,
            const std::function<std::string(const Ids&, bool)>& decode, const io::Json& exp, const std::string& what) {
  const auto& L = lines();
  const Ids prefix = exp["prefix"].get<Ids>(), suffix = exp["suffix"].get<Ids>();
  int bad = 0;
  auto report = [&](size_t i, const std::string& kind, const std::string& got, const std::string& want) {
    if (++bad <= 6)
      ADD_FAILURE() << what << " line " << i << " " << show(L[i]) << ": " << kind << "\n   got  " << got << "\n   want " << want;
  };
  for (size_t i = 0; i < L.size(); ++i) {
    const Ids plain = exp["plain"][i].get<Ids>();
    Ids special;
    if (exp["special"][i].is_null()) {
      special = prefix;
      special.insert(special.end(), plain.begin(), plain.end());
      special.insert(special.end(), suffix.begin(), suffix.end());
    } else {
      special = exp["special"][i].get<Ids>();
    }
    const Ids got_plain = encode(L[i], false);
    if (got_plain != plain) report(i, "ids (add_special_tokens=False)", show(got_plain), show(plain));
    const Ids got_special = encode(L[i], true);
    if (got_special != special) report(i, "ids (add_special_tokens=True)", show(got_special), show(special));
    const std::string skip = decode(special, true), keep = decode(special, false);
    if (skip != exp["decode_skip"][i].get<std::string>())
      report(i, "decode(skip_special_tokens=True)", show(skip), exp["decode_skip"][i].dump());
    if (keep != exp["decode_keep"][i].get<std::string>())
      report(i, "decode(skip_special_tokens=False)", show(keep), exp["decode_keep"][i].dump());
  }
  return bad;
}

int compare_raw(const text::HfTokenizer& t, const io::Json& exp, const std::string& what) {
  return compare([&](const std::string& s, bool a) { return t.encode_ids(s, a); },
                 [&](const Ids& ids, bool skip) { return t.decode_ids(ids, skip); }, exp, what);
}

// A folder as AutoTokenizer loads it: ids, decoding, class, special ids, stop ids, added tokens.
void check_folder(const std::string& name) {
  const fs::path dir = kFixtures / name;
  const io::Json exp = io::read_json_file(dir / "expected.json");
  ASSERT_EQ(exp.contains("raw") ? exp["raw"]["plain"].size() : exp["auto"]["plain"].size(), lines().size());
  if (exp.contains("raw")) {
    auto raw = text::HfTokenizer::from_file(dir / "tokenizer.json");
    EXPECT_EQ(compare_raw(*raw, exp["raw"], name + " (tokenizers)"), 0);
  }
  std::string cls;
  auto tok = text::load_hf_tokenizer(dir, &cls);
  const io::Json& meta = exp["auto_meta"];
  EXPECT_EQ(cls, meta["class"].get<std::string>());
  const io::Json& autox = exp["auto"].is_string() ? exp["raw"] : exp["auto"];
  EXPECT_EQ(compare_raw(*tok, autox, name + " (AutoTokenizer)"), 0);
  // The Tokenizer interface gives the same as the library calls.
  const std::string l = "Hi there <|x|> 42";
  EXPECT_EQ(tok->encode(l), tok->encode_ids(l, false));
  EXPECT_EQ(tok->encode_for_model(l), tok->encode_ids(l, true));
  EXPECT_EQ(tok->decode_text(tok->encode_for_model(l)), tok->decode_ids(tok->encode_ids(l, true), true));
  // Special ids: transformers' where it has one; Lethe's fallbacks (config.json, then EOS for pad).
  auto expect_id = [&](const char* key, int64_t got) {
    if (!meta[key].is_null()) {
      EXPECT_EQ(got, meta[key].get<int64_t>()) << name << " " << key;
    }
  };
  expect_id("bos_id", tok->bos_id());
  expect_id("eos_id", tok->eos_id());
  expect_id("pad_id", tok->pad_id());
  expect_id("unk_id", tok->unk_id());
  if (meta["pad_id"].is_null()) {
    EXPECT_GE(tok->pad_id(), 0) << name << ": a pad id to pad batches with";
  }
  EXPECT_EQ(tok->stop_ids(), meta["stop_ids"].get<Ids>()) << name;
  EXPECT_EQ(tok->vocab_size(), meta["vocab_size"].get<int64_t>()) << name;
  std::map<std::string, std::string> added;
  for (const auto& [id, t] : tok->added_tokens()) added[std::to_string(id)] = t.content;
  EXPECT_EQ(io::Json(added), meta["added"]) << name;
  for (const auto& s : meta["special_tokens"]) {
    const int64_t id = tok->token_to_id(s.get<std::string>());
    EXPECT_GE(id, 0) << name << " " << s;
    EXPECT_TRUE(tok->is_special(id)) << name << " " << s;
    EXPECT_EQ(tok->id_to_token(id), s.get<std::string>());
  }
}

}  // namespace

// ---- families: the library and AutoTokenizer on every line ----

TEST(HfFamilies, Llama3ByteLevelWithSplitRegex) { check_folder("llama3"); }
TEST(HfFamilies, Qwen2NfcChatMl) { check_folder("qwen2"); }
TEST(HfFamilies, Llama2LegacyNormalizers) { check_folder("llama2_legacy"); }
TEST(HfFamilies, Llama2MetaspaceFirst) { check_folder("llama2_first"); }
TEST(HfFamilies, MistralRunsTheFileAsItIs) { check_folder("mistral"); }
TEST(HfFamilies, Phi3RstripChatTokens) { check_folder("phi3"); }
TEST(HfFamilies, GemmaByteFallback) { check_folder("gemma"); }
TEST(HfFamilies, LlamaWithoutPrefixSpaceOrPostProcessor) { check_folder("llama2_noprefix"); }
TEST(HfFamilies, ConfigFlagsAndNamedVocabularyTokens) { check_folder("llama3_flags"); }
TEST(HfFamilies, SentencePieceModelAsLlamaTokenizer) { check_folder("spm_llama"); }
TEST(HfFamilies, SentencePieceModelLegacyWithSpecialTokensMap) { check_folder("spm_llama_legacy"); }

// ---- the other pipeline components ----

class HfZoo : public ::testing::TestWithParam<std::string> {};
TEST_P(HfZoo, MatchesTheLibraryOnEveryLine) {
  const fs::path p = kFixtures / "zoo" / (GetParam() + ".json");
  auto t = text::HfTokenizer::from_file(p);
  const io::Json exp = io::read_json_file(kFixtures / "zoo" / (GetParam() + ".expected.json"));
  EXPECT_EQ(compare_raw(*t, exp["raw"], GetParam()), 0);
}
INSTANTIATE_TEST_SUITE_P(Pipelines, HfZoo,
                         ::testing::Values("byte_fallback_unk", "bytelevel_no_regex_unk", "bytelevel_normalizer",
                                           "bytelevel_regex", "char_bpe_suffix", "metaspace_never_legacy", "metaspace_split",
                                           "misc_stages", "nfd_strip_accents", "nfkd_replace_regex", "split_behaviours",
                                           "whitespace_bert"));

// ---- interface additions ----

TEST(HfInterface, StopIdsAndTokenLookups) {
  struct Case {
    const char* folder;
    const char* end_of_turn;
  };
  for (const Case c :
       {Case{"llama3", "<|eot_id|>"}, Case{"qwen2", "<|im_end|>"}, Case{"gemma", "<end_of_turn>"}, Case{"phi3", "<|end|>"}}) {
    auto t = text::load_hf_tokenizer(kFixtures / c.folder);
    const int64_t id = t->token_to_id(c.end_of_turn);
    ASSERT_GE(id, 0) << c.folder;
    const auto stops = t->stop_ids();
    EXPECT_NE(std::find(stops.begin(), stops.end(), id), stops.end()) << c.folder << ": " << c.end_of_turn;
    EXPECT_NE(std::find(stops.begin(), stops.end(), t->eos_id()), stops.end()) << c.folder;
    EXPECT_EQ(t->id_to_token(id), c.end_of_turn);
    EXPECT_EQ(t->token_to_id("no such token, surely"), -1);
    EXPECT_EQ(t->id_to_token(1 << 30), "");
  }
}

TEST(HfInterface, BosConventions) {
  auto llama3 = text::load_hf_tokenizer(kFixtures / "llama3");
  EXPECT_TRUE(llama3->add_bos());
  EXPECT_EQ(llama3->encode_for_model("").size(), 1u);
  EXPECT_EQ(llama3->encode_for_model("")[0], llama3->token_to_id("<|begin_of_text|>"));
  auto qwen = text::load_hf_tokenizer(kFixtures / "qwen2");
  EXPECT_FALSE(qwen->add_bos());  // Qwen2 adds nothing
  EXPECT_EQ(qwen->encode_for_model("hi"), qwen->encode("hi"));
  auto gemma = text::load_hf_tokenizer(kFixtures / "gemma");
  EXPECT_EQ(gemma->encode_for_model("hi").front(), gemma->token_to_id("<bos>"));
  EXPECT_EQ(gemma->decode_text(gemma->encode_for_model("hi <end_of_turn>")), "hi ");
}

TEST(HfInterface, SplitSpecialTokensMakesThemText) {
  // Expected ids from AutoTokenizer on the llama3 folder with "split_special_tokens": true.
  TempDir d;
  for (const auto& e : fs::directory_iterator(kFixtures / "llama3")) fs::copy_file(e.path(), d / e.path().filename());
  io::Json cfg = io::read_json_file(d / "tokenizer_config.json");
  cfg["split_special_tokens"] = true;
  io::write_json_file(d / "tokenizer_config.json", cfg);
  auto t = text::load_hf_tokenizer(d.path);
  EXPECT_EQ(t->encode_for_model("Hi<|eot_id|>there"), (Ids{700, 39, 72, 27, 91, 68, 78, 83, 62, 72, 67, 91, 29, 425, 479}));
  EXPECT_EQ(t->encode("<|begin_of_text|>"), (Ids{27, 91, 65, 68, 70, 259, 62, 78, 69, 62, 442, 87, 83, 91, 29}));
  EXPECT_EQ(t->decode_text(t->encode_for_model("Hi<|eot_id|>there")), "Hi<|eot_id|>there");
}

TEST(HfInterface, OutOfVocabularyIdsDecodeToNothingAsInTheLibrary) {
  auto t = text::load_hf_tokenizer(kFixtures / "llama3");
  const auto ids = t->encode("Hello world");
  Ids with = ids;
  with.insert(with.begin() + 1, 999999);
  EXPECT_EQ(t->decode(with), t->decode(ids));
}

// ---- small, hand-checked behaviours ----

TEST(HfUnicode, LossyDecodingReplacesMaximalSubparts) {
  using text::uni::lossy;
  EXPECT_EQ(lossy("a\xe4\xb8"
                  "b"),
            "a\xef\xbf\xbd"
            "b");                                                            // a cut 3-byte sequence: one U+FFFD
  EXPECT_EQ(lossy("\xff\xfe"), "\xef\xbf\xbd\xef\xbf\xbd");                  // two invalid bytes: two
  EXPECT_EQ(lossy("\xf0\x9f\x99"), "\xef\xbf\xbd");                          // a cut emoji
  EXPECT_EQ(lossy("\xed\xa0\x80"), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");  // a surrogate: three
  EXPECT_EQ(lossy("ok \xf0\x9f\x99\x82"), "ok \xf0\x9f\x99\x82");
}

TEST(HfRegex, OnigurumaClassesBecomeIcuSets) {
  EXPECT_EQ(text::Regex::translate("\\s+(?!\\S)"), "\\p{White_Space}+(?!\\P{White_Space})");
  EXPECT_EQ(text::Regex::translate("[^\\s\\p{L}]"), "[^\\p{White_Space}\\p{L}]");
  EXPECT_EQ(text::Regex::translate("\\\\s"), "\\\\s");  // an escaped backslash, then s
  EXPECT_EQ(text::Regex::translate("\\p{^L}"), "\\P{L}");
  text::Regex re("\\s+(?!\\S)|\\s+", "test");
  // "a   b": the run before "b" leaves its last space for the next match, as Oniguruma does.
  EXPECT_EQ(re.find_all("a   b"), (std::vector<std::pair<size_t, size_t>>{{1, 3}, {3, 4}}));
  text::Regex nbsp("\\s", "test");
  EXPECT_EQ(nbsp.find_all("a\xc2\xa0"
                          "b\xe3\x80\x80")
                .size(),
            2u);  // NBSP and ideographic space are \s
  text::Regex ci("(?i:'s|'t)", "test");
  EXPECT_EQ(ci.find_all("IT'S it's").size(), 2u);
  EXPECT_NE(error_of([] {
              text::Regex("(unclosed", "tokenizer.json: pre_tokenizer.pattern");
            }).find("tokenizer.json: pre_tokenizer.pattern: bad regex '(unclosed'"),
            std::string::npos);
}

namespace {
// A tokenizer.json around a small byte-level vocabulary, with the given stages.
io::Json tiny_json() {
  io::Json vocab = io::Json::object();
  int next = 0;
  for (int b = 0; b < 256; ++b) vocab[text::hf::byte_to_char(static_cast<uint8_t>(b))] = next++;
  vocab["he"] = next++;
  vocab["ll"] = next++;
  vocab["hell"] = next++;
  vocab["<0x41>"] = next++;
  return {{"version", "1.0"},
          {"added_tokens", io::Json::array()},
          {"normalizer", nullptr},
          {"pre_tokenizer", nullptr},
          {"post_processor", nullptr},
          {"decoder", nullptr},
          {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", {"h e", io::Json::array({"l", "l"}), "he ll"}}}}};
}
std::string load_error(const io::Json& j) {
  return error_of([&] { text::HfTokenizer::from_json(j, "tokenizer.json"); });
}
}  // namespace

TEST(HfComponents, MergesAsStringsOrPairsAndByRank) {
  auto t = text::HfTokenizer::from_json(tiny_json(), "tokenizer.json");
  EXPECT_EQ(t->encode_ids("hello", false), (Ids{258, 'o'}));                 // "hell" (h e, l l, he ll) + "o"
  EXPECT_EQ(t->decode_ids(t->encode_ids("hello", false), false), "hell o");  // no decoder: joined by spaces
}

TEST(HfComponents, StripDecoderCutsBothEnds) {
  io::Json j = tiny_json();
  j["decoder"] = {{"type", "Strip"}, {"content", "x"}, {"start", 2}, {"stop", 1}};
  auto t = text::HfTokenizer::from_json(j, "tokenizer.json");
  const auto id = [&](const char* s) { return t->token_to_id(s); };
  // Each token is stripped on its own: "x" -> "", "xx" would be too.
  EXPECT_EQ(t->decode_ids({id("x"), id("a"), id("x")}, false), "a");
}

TEST(HfComponents, AddedTokenOptions) {
  io::Json j = tiny_json();
  auto added = [](int id, const char* c, bool lstrip, bool rstrip, bool single, bool special) {
    return io::Json{{"id", id},          {"content", c},          {"lstrip", lstrip},
                    {"rstrip", rstrip},  {"single_word", single}, {"normalized", false},
                    {"special", special}};
  };
  j["added_tokens"] = {added(0, "<L>", true, false, false, true), added(0, "<R>", false, true, false, true),
                       added(0, "tok", false, false, true, false)};
  auto t = text::HfTokenizer::from_json(j, "tokenizer.json");
  const int64_t L = t->token_to_id("<L>"), R = t->token_to_id("<R>"), tok = t->token_to_id("tok");
  EXPECT_EQ(L, 260);  // ids are assigned in order after the vocabulary, whatever the file says
  const int64_t a = t->token_to_id("a");
  EXPECT_EQ(t->encode_ids("a  <L>", false), (Ids{a, L}));   // lstrip eats the spaces before
  EXPECT_EQ(t->encode_ids("<R>  a", false), (Ids{R, a}));   // rstrip eats the spaces after
  EXPECT_EQ(t->encode_ids("tok", false), (Ids{tok}));       // a single word
  EXPECT_NE(t->encode_ids("atok", false), (Ids{a, tok}));   // not inside a word
  EXPECT_EQ(t->decode_ids({a, L, R, tok}, true), "a tok");  // special tokens skipped
}

TEST(HfComponents, UnknownIdsAndCharactersFollowTheModel) {
  io::Json j = tiny_json();
  io::Json vocab = io::Json::object();
  vocab["<unk>"] = 0;
  vocab["a"] = 1;
  vocab["b"] = 2;
  j["model"] = {{"type", "BPE"}, {"vocab", vocab}, {"merges", io::Json::array()}, {"unk_token", "<unk>"}, {"fuse_unk", true}};
  auto fused = text::HfTokenizer::from_json(j, "tokenizer.json");
  EXPECT_EQ(fused->encode_ids("a\xc3\xa9\xc3\xa9"
                              "b",
                              false),
            (Ids{1, 0, 2}));
  j["model"]["fuse_unk"] = false;
  EXPECT_EQ(text::HfTokenizer::from_json(j, "tokenizer.json")
                ->encode_ids("a\xc3\xa9\xc3\xa9"
                             "b",
                             false),
            (Ids{1, 0, 0, 2}));
  j["model"].erase("unk_token");
  EXPECT_EQ(text::HfTokenizer::from_json(j, "tokenizer.json")
                ->encode_ids("a\xc3\xa9"
                             "b",
                             false),
            (Ids{1, 2}));  // dropped
}

// ---- errors name the file, the JSON path and what was expected ----

TEST(HfBadInput, UnknownStagesAreRefusedByName) {
  io::Json j = tiny_json();
  j["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", {{{"type", "ByteLevel"}}, {{"type", "Foo"}}}}};
  const std::string e = load_error(j);
  EXPECT_NE(e.find("tokenizer.json: pre_tokenizer.pretokenizers[1].type 'Foo' is not supported; supported: ByteLevel, "
                   "Split, Metaspace"),
            std::string::npos)
      << e;
  j = tiny_json();
  j["normalizer"] = {{"type", "Precompiled"}, {"precompiled_charsmap", "AAAA"}};
  EXPECT_NE(load_error(j).find("normalizer.type 'Precompiled' is not supported; supported: NFC"), std::string::npos);
  j = tiny_json();
  j["decoder"] = {{"type", "Sequence"}, {"decoders", {{{"type", "CTC"}}}}};
  EXPECT_NE(load_error(j).find("decoder.decoders[0].type 'CTC' is not supported"), std::string::npos);
  j = tiny_json();
  j["post_processor"] = {{"type", "Magic"}};
  EXPECT_NE(load_error(j).find("post_processor.type 'Magic' is not supported; supported: TemplateProcessing"), std::string::npos);
  j = tiny_json();
  j["model"]["type"] = "Unigram";
  EXPECT_NE(load_error(j).find("model.type 'Unigram' is not supported; supported: BPE"), std::string::npos);
  j = tiny_json();
  j["normalizer"] = {{"replacement", "x"}};
  EXPECT_NE(load_error(j).find("normalizer.type is missing (expected one of: NFC"), std::string::npos);
}

TEST(HfBadInput, MalformedFieldsNameTheirPath) {
  io::Json j = tiny_json();
  j["model"]["merges"][1] = "h e l";
  EXPECT_NE(load_error(j).find("tokenizer.json: model.merges[1] must be \"a b\" (two tokens, one space), got 'h e l'"),
            std::string::npos);
  j = tiny_json();
  j["model"]["merges"].push_back("zz q");
  EXPECT_NE(load_error(j).find("merges[3] 'zz q': token 'zz' is not in the vocabulary"), std::string::npos);
  j = tiny_json();
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "[a-"}}}, {"behavior", "Isolated"}};
  EXPECT_NE(load_error(j).find("tokenizer.json: pre_tokenizer.pattern: bad regex '[a-'"), std::string::npos);
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "a"}}}, {"behavior", "Sideways"}};
  EXPECT_NE(load_error(j).find("pre_tokenizer.behavior must be one of Removed, Isolated"), std::string::npos);
  j["pre_tokenizer"] = {{"type", "Split"}, {"behavior", "Isolated"}};
  EXPECT_NE(load_error(j).find("pre_tokenizer is missing the field 'pattern'"), std::string::npos);
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", "a"}};
  EXPECT_NE(load_error(j).find("pre_tokenizer.pattern must be {\"String\": \"...\"} or {\"Regex\": \"...\"}"), std::string::npos);
  j = tiny_json();
  j["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", "ab"}};
  EXPECT_NE(load_error(j).find("pre_tokenizer.replacement must be exactly one character, got 'ab'"), std::string::npos);
  j["pre_tokenizer"] = {{"type", "Metaspace"}, {"prepend_scheme", "sometimes"}};
  EXPECT_NE(load_error(j).find("pre_tokenizer.prepend_scheme must be \"always\", \"first\" or \"never\""), std::string::npos);
  j = tiny_json();
  j["added_tokens"] = {{{"id", 3}, {"content", 5}}};
  EXPECT_NE(load_error(j).find("tokenizer.json: added_tokens[0].content must be a string"), std::string::npos);
  j = tiny_json();
  j["post_processor"] = {{"type", "TemplateProcessing"},
                         {"single", {{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}}}}}},
                         {"special_tokens", io::Json::object()}};
  EXPECT_NE(load_error(j).find("post_processor.single[0].SpecialToken.id '<s>' is not in post_processor.special_tokens"),
            std::string::npos);
  j = tiny_json();
  j["model"]["dropout"] = 0.1;
  EXPECT_NE(load_error(j).find("model.dropout must be null"), std::string::npos);
  j = tiny_json();
  j["model"]["vocab"]["bad"] = "x";
  EXPECT_NE(load_error(j).find("model.vocab['bad'] must be a non-negative integer id"), std::string::npos);
}

TEST(HfBadInput, FolderConfigsNameTheFile) {
  TempDir d;
  const fs::path src = kFixtures / "qwen2";
  for (const char* f : {"tokenizer.json", "tokenizer_config.json", "config.json", "generation_config.json"})
    fs::copy_file(src / f, d / f);
  write_text(d / "generation_config.json", R"({"eos_token_id": "two"})");
  EXPECT_NE(error_of([&] {
              text::load_hf_tokenizer(d.path);
            }).find("generation_config.json: eos_token_id must be an integer or a list of integers"),
            std::string::npos);
  fs::copy_file(src / "generation_config.json", d / "generation_config.json", fs::copy_options::overwrite_existing);
  write_text(d / "tokenizer_config.json", R"({"tokenizer_class": "Qwen2Tokenizer", "eos_token": 7})");
  EXPECT_NE(error_of([&] {
              text::load_hf_tokenizer(d.path);
            }).find("tokenizer_config.json: eos_token must be a string, null or an AddedToken object"),
            std::string::npos);
  write_text(d / "tokenizer_config.json", "{\"tokenizer_class\": \"Qwen2Tokenizer\",\n \"eos_token\" \"x\"}");
  EXPECT_NE(error_of([&] { text::load_hf_tokenizer(d.path); }).find("tokenizer_config.json line 2"), std::string::npos);
  write_text(d / "tokenizer_config.json", R"({"added_tokens_decoder": {"x": {"content": "a"}}})");
  EXPECT_NE(error_of([&] {
              text::load_hf_tokenizer(d.path);
            }).find("tokenizer_config.json: added_tokens_decoder key 'x' must be a non-negative integer id"),
            std::string::npos);
  write_text(d / "tokenizer_config.json", R"({"legacy": "yes", "tokenizer_class": "LlamaTokenizer"})");
  fs::remove(d / "tokenizer.json");
  fs::copy_file(kFixtures / "spm_llama/tokenizer.model", d / "tokenizer.model");
  write_text(d / "config.json", R"({"model_type": "llama"})");
  EXPECT_NE(error_of([&] { text::load_hf_tokenizer(d.path); }).find("tokenizer_config.json: legacy must be true or false"),
            std::string::npos);
}

TEST(HfBadInput, NotASentencePieceModel) {
  TempDir d;
  write_text(d / "tokenizer.model", "\xff\xff\xff\xff not protobuf");
  EXPECT_NE(error_of([&] { text::read_spm_model(d / "tokenizer.model"); }).find("tokenizer.model: not a SentencePiece model"),
            std::string::npos);
}

TEST(HfSpeed, LongInputsNeedNoSpecialCare) {
  // One 300 KB line and a 100 000-space run through the regex pre-tokenizers (Qwen2 also NFC-normalizes,
  // so only Llama-3's round trip is byte for byte).
  std::string big, spaces(100000, ' ');
  while (big.size() < 300000)
    for (const auto& l : lines()) big += l + " ";
  for (const char* f : {"llama3", "qwen2"}) {
    auto t = text::load_hf_tokenizer(kFixtures / f);
    const auto ids = t->encode(big);
    EXPECT_GT(ids.size(), big.size() / 8) << f;
    if (std::string(f) == "llama3") {
      EXPECT_TRUE(t->decode(ids) == big);
    }
    EXPECT_EQ(t->decode(t->encode(spaces + "x" + spaces)), spaces + "x" + spaces) << f;
  }
}

// ---- speed ----

TEST(HfSpeed, TenThousandLines) {
  // (a) the fixture lines again and again (words repeat, as in real text: the BPE cache helps);
  // (b) words of random characters drawn from the lines (nearly every word new).
  std::vector<std::string> repeated, random_words;
  for (int i = 0; i < 10000; ++i) repeated.push_back(lines()[static_cast<size_t>(i) % lines().size()] + " " + std::to_string(i));
  std::vector<std::string> chars;
  for (const auto& l : lines())
    for (const auto& c : text::uni::decode(l))
      if (c.cp > ' ') chars.push_back(l.substr(c.offset, c.length));
  uint64_t state = 2405;
  auto next = [&](uint64_t n) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (state >> 33) % n;
  };
  for (int i = 0; i < 10000; ++i) {
    std::string line;
    const uint64_t words = 3 + next(8);
    for (uint64_t w = 0; w < words; ++w) {
      if (w) line += " ";
      const uint64_t len = 1 + next(8);
      for (uint64_t k = 0; k < len; ++k) line += chars[next(chars.size())];
    }
    random_words.push_back(line);
  }
  for (const char* f : {"llama3", "qwen2", "gemma", "llama2_legacy", "spm_llama"}) {
    for (const auto* set : {&repeated, &random_words}) {
      auto t = text::load_hf_tokenizer(kFixtures / f);
      size_t n = 0, bytes = 0;
      const auto start = std::chrono::steady_clock::now();
      for (const auto& s : *set) {
        n += t->encode_for_model(s).size();
        bytes += s.size();
      }
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::cout << "[ speed    ] " << f << (set == &repeated ? " fixture lines: " : " random words:  ") << "10000 lines ("
                << bytes / 1024 << " KiB, " << n << " tokens) in " << static_cast<int>(secs * 1000) << " ms, "
                << static_cast<int>(10000 / secs) << " lines/s\n";
      EXPECT_LT(secs, 30.0) << f;
    }
  }
}
