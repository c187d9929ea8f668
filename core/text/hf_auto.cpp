#include "text/hf_auto.h"

#include <algorithm>
#include <map>
#include <set>

#include "io/json.h"
#include "text/spm_model.h"
#include "text/unicode.h"
#include "util/error.h"

namespace lethe::text {
namespace fs = std::filesystem;
using io::Json;

namespace {

const char* kQwen2Pattern =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

// ---- the folder's configuration files ----

struct Folder {
  fs::path dir;
  Json config = Json::object(), tok_cfg = Json::object(), special_map = Json::object(), gen = Json::object();
  bool has_special_map = false;
  std::string model_type, hub_class;
  std::string file(const char* name) const { return (dir / name).string(); }
};

Json read_object(const fs::path& p, bool* present = nullptr) {
  std::error_code ec;
  if (!fs::exists(p, ec)) {
    if (present) *present = false;
    return Json::object();
  }
  if (present) *present = true;
  Json j = io::read_json_file(p);
  if (!j.is_object()) throw Error(p.string() + ": expected a JSON object");
  return j;
}

std::string opt_string(const Json& j, const char* key, const std::string& file) {
  if (!j.contains(key) || j[key].is_null()) return "";
  if (!j[key].is_string()) throw Error(file + ": " + key + " must be a string");
  return j[key].get<std::string>();
}

Folder read_folder(const fs::path& dir) {
  Folder f;
  f.dir = dir;
  f.config = read_object(dir / "config.json");
  f.tok_cfg = read_object(dir / "tokenizer_config.json");
  f.special_map = read_object(dir / "special_tokens_map.json", &f.has_special_map);
  f.gen = read_object(dir / "generation_config.json");
  f.model_type = opt_string(f.config, "model_type", f.file("config.json"));
  f.hub_class = opt_string(f.tok_cfg, "tokenizer_class", f.file("tokenizer_config.json"));
  if (f.hub_class.empty()) f.hub_class = opt_string(f.config, "tokenizer_class", f.file("config.json"));
  return f;
}

bool get_bool(const Json& j, const char* key, bool fallback, const std::string& file) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  if (!j[key].is_boolean()) throw Error(file + ": " + key + " must be true or false");
  return j[key].get<bool>();
}

// ---- which class AutoTokenizer picks (transformers 5's rules, for the classes Lethe knows) ----

std::string strip_fast(std::string s) {
  if (s.size() > 4 && s.compare(s.size() - 4, 4, "Fast") == 0) s.resize(s.size() - 4);
  return s;
}

const std::set<std::string>& incorrect_hub_class() {
  static const std::set<std::string> s = {"arctic",
                                          "chatlm",
                                          "ernie4_5",
                                          "ernie4_5_moe",
                                          "fuyu",
                                          "h2ovl_chat",
                                          "hyperclovax",
                                          "hyperclovax_vlm",
                                          "hyperclovax_vision_v2",
                                          "internlm2",
                                          "internlm3",
                                          "iquestcoder",
                                          "jamba",
                                          "llava",
                                          "llava_next",
                                          "minicpm3",
                                          "minicpmv",
                                          "minimax_m2",
                                          "modernbert",
                                          "modernbert-decoder",
                                          "molmo",
                                          "molmo2",
                                          "nemotron",
                                          "nvfp4",
                                          "opencua",
                                          "openvla",
                                          "paddleocr_vl",
                                          "phi3",
                                          "phi3_v",
                                          "phimoe",
                                          "qwen2",
                                          "qwen3_5",
                                          "qwen3_5_moe",
                                          "qwen3_5_moe_text",
                                          "qwen4_exp",
                                          "step3_vl",
                                          "vipllava",
                                          "cohere_asr",
                                          "camembertv2-base",
                                          "siglip2",
                                          "smolvlm"};
  return s;
}

// The class transformers registers for a model type ("" when none; only the types that matter here).
std::string registered_class(const std::string& mt) {
  static const std::map<std::string, std::string> m = {{"gemma", "GemmaTokenizer"},
                                                       {"gemma2", "GemmaTokenizer"},
                                                       {"gemma3", "GemmaTokenizer"},
                                                       {"gemma3_text", "GemmaTokenizer"},
                                                       {"qwen2", "Qwen2Tokenizer"},
                                                       {"qwen2_moe", "Qwen2Tokenizer"},
                                                       {"qwen2_vl", "Qwen2Tokenizer"},
                                                       {"qwen2_5_vl", "Qwen2Tokenizer"},
                                                       {"qwen2_audio", "Qwen2Tokenizer"},
                                                       {"qwen2_5_omni", "Qwen2Tokenizer"},
                                                       {"qwen3", "Qwen2Tokenizer"},
                                                       {"qwen3_moe", "Qwen2Tokenizer"},
                                                       {"qwen3_next", "Qwen2Tokenizer"},
                                                       {"qwen3_vl", "Qwen2Tokenizer"},
                                                       {"qwen3_vl_moe", "Qwen2Tokenizer"},
                                                       {"qwen3_omni_moe", "Qwen2Tokenizer"},
                                                       {"qwen3_asr", "Qwen2Tokenizer"},
                                                       {"opt", "GPT2Tokenizer"},
                                                       {"phi", "GPT2Tokenizer"},
                                                       {"gpt2", "GPT2Tokenizer"},
                                                       {"code_llama", "CodeLlamaTokenizer"},
                                                       {"mistral", "MistralCommonBackend"},
                                                       {"mistral3", "MistralCommonBackend"},
                                                       {"mixtral", "MistralCommonBackend"},
                                                       {"ministral", "MistralCommonBackend"},
                                                       {"ministral3", "MistralCommonBackend"},
                                                       {"pixtral", "MistralCommonBackend"},
                                                       {"voxtral", "MistralCommonBackend"}};
  auto it = m.find(mt);
  if (it != m.end()) return it->second;
  if (incorrect_hub_class().count(mt)) return "TokenizersBackend";
  return "";
}

bool generic(const std::string& c) {
  return c == "TokenizersBackend" || c == "PythonBackend" || c == "PreTrainedTokenizerFast" || c == "MistralCommonBackend";
}

// The classes Lethe emulates; any other name runs tokenizer.json as it is.
std::string known(const std::string& name) {
  const std::string n = strip_fast(name);
  if (n == "LlamaTokenizer" || n == "GemmaTokenizer" || n == "Qwen2Tokenizer" || n == "GPT2Tokenizer") return n;
  return "TokenizersBackend";
}

std::string resolve_class(const Folder& f, const std::string& tokenizer_json_text) {
  const std::string& hub = f.hub_class;
  const std::string& mt = f.model_type;
  const std::string reg = registered_class(mt);
  if (!hub.empty() && strip_fast(hub) == "LlamaTokenizer" && reg != "MistralCommonBackend" && !incorrect_hub_class().count(mt) &&
      tokenizer_json_text.find("\"ByteLevel\"") != std::string::npos)
    return "TokenizersBackend";  // a Llama-3 style file under a LlamaTokenizer label
  if (!hub.empty() && !mt.empty() && !reg.empty() && strip_fast(reg) != strip_fast(hub)) {
    if (!generic(reg)) {
      const std::string c = known(incorrect_hub_class().count(mt) ? reg : hub);
      if (c != "TokenizersBackend") return c;
    }
    return "TokenizersBackend";
  }
  if (!hub.empty()) return known(hub);
  if (!reg.empty() && !generic(reg)) return known(reg);
  return "TokenizersBackend";
}

// ---- special tokens named in the configs ----

struct Named {
  std::string content;
  bool is_object = false;  // an AddedToken (flags given), not a plain string
  AddedToken tok;
};

// A string, or an AddedToken object {"content": ..., "lstrip": ..., ...}. `force_special`: the token is
// special whatever the object says (special_tokens_map.json's are).
std::optional<Named> parse_named(const Json& v, const std::string& file, const std::string& key, bool force_special) {
  if (v.is_null()) return std::nullopt;
  Named n;
  if (v.is_string()) {
    n.content = v.get<std::string>();
    n.tok.content = n.content;
    n.tok.special = true;
    n.tok.normalized = false;
    return n;
  }
  if (!v.is_object() || !v.contains("content") || !v["content"].is_string())
    throw Error(file + ": " + key + " must be a string, null or an AddedToken object with a string \"content\"");
  n.is_object = true;
  n.content = v["content"].get<std::string>();
  n.tok.content = n.content;
  auto flag = [&](const char* k, bool fallback) {
    if (!v.contains(k) || v[k].is_null()) return fallback;
    if (!v[k].is_boolean()) throw Error(file + ": " + key + "." + k + " must be true or false");
    return v[k].get<bool>();
  };
  n.tok.single_word = flag("single_word", false);
  n.tok.lstrip = flag("lstrip", false);
  n.tok.rstrip = flag("rstrip", false);
  n.tok.special = force_special ? true : flag("special", false);
  n.tok.normalized = flag("normalized", !n.tok.special);
  return n;
}

struct Specials {
  // Named special tokens in transformers' order: bos, eos, unk, sep, pad, cls, mask, then others.
  std::vector<std::pair<std::string, Named>> named;
  std::vector<Named> extra;
  std::map<int64_t, AddedToken> added_decoder;  // added_tokens_decoder, by id
  bool has_added_decoder = false;
  const Named* get(const std::string& key) const {
    for (const auto& [k, v] : named)
      if (k == key) return &v;
    return nullptr;
  }
};

const std::vector<std::string> kAttributes = {"bos_token", "eos_token", "unk_token", "sep_token",
                                              "pad_token", "cls_token", "mask_token"};

Specials read_specials(const Folder& f, const std::map<std::string, std::optional<std::string>>& class_defaults,
                       const std::vector<std::pair<int64_t, AddedToken>>& file_added, bool has_file) {
  Specials s;
  const std::string tc = f.file("tokenizer_config.json");
  // added_tokens_decoder: {"id": {AddedToken}}
  if (f.tok_cfg.contains("added_tokens_decoder") && !f.tok_cfg["added_tokens_decoder"].is_null()) {
    const Json& d = f.tok_cfg["added_tokens_decoder"];
    if (!d.is_object()) throw Error(tc + ": added_tokens_decoder must be an object of id -> AddedToken");
    s.has_added_decoder = true;
    for (auto it = d.begin(); it != d.end(); ++it) {
      int64_t id;
      try {
        size_t used = 0;
        id = std::stoll(it.key(), &used);
        if (used != it.key().size() || id < 0) throw std::invalid_argument("id");
      } catch (const std::exception&) {
        throw Error(tc + ": added_tokens_decoder key '" + it.key() + "' must be a non-negative integer id");
      }
      auto n = parse_named(it.value(), tc, "added_tokens_decoder['" + it.key() + "']", false);
      if (!n || !n->is_object) throw Error(tc + ": added_tokens_decoder['" + it.key() + "'] must be an AddedToken object");
      s.added_decoder[id] = n->tok;
    }
  }
  // Values: tokenizer_config.json, overridden by special_tokens_map.json when there is no
  // added_tokens_decoder (transformers reads the map only then), then the class's defaults.
  std::map<std::string, Json> values;
  for (auto it = f.tok_cfg.begin(); it != f.tok_cfg.end(); ++it) {
    const std::string& k = it.key();
    const bool token_key = k.size() > 6 && k.compare(k.size() - 6, 6, "_token") == 0;
    const bool attribute = std::find(kAttributes.begin(), kAttributes.end(), k) != kAttributes.end();
    // bos_token and the other named attributes must be tokens; any other *_token key is a special
    // token when it holds one (a string or an AddedToken object), and ignored otherwise.
    if (attribute ||
        (token_key && (it.value().is_string() || (it.value().is_object() && it.value().value("__type", "") == "AddedToken"))))
      values[k] = it.value();
  }
  const std::string sm = f.file("special_tokens_map.json");
  std::set<std::string> from_map;
  if (!s.has_added_decoder && f.has_special_map)
    for (auto it = f.special_map.begin(); it != f.special_map.end(); ++it) {
      const std::string& k = it.key();
      if (k == "additional_special_tokens" || k == "extra_special_tokens") continue;
      values[k] = it.value();
      from_map.insert(k);
    }
  for (const auto& [k, v] : class_defaults)
    if (!values.count(k)) values[k] = v ? Json(*v) : Json(nullptr);
  // The file's added tokens stand in for added_tokens_decoder when the config has none.
  if (!s.has_added_decoder && has_file)
    for (const auto& [id, t] : file_added) s.added_decoder[id] = t;
  std::map<std::string, AddedToken> by_content;
  for (const auto& [id, t] : s.added_decoder) by_content[t.content] = t;
  auto add_named = [&](const std::string& k, const Json& v, const std::string& file) {
    auto n = parse_named(v, file, k, from_map.count(k) > 0);
    if (!n) return;
    if (std::find(kAttributes.begin(), kAttributes.end(), k) != kAttributes.end()) {
      auto it = by_content.find(n->content);
      if (it != by_content.end()) {
        n->is_object = true;
        n->tok = it->second;
      }
    }
    s.named.emplace_back(k, *n);
  };
  for (const auto& k : kAttributes)
    if (values.count(k)) add_named(k, values[k], from_map.count(k) ? sm : tc);
  for (const auto& [k, v] : values)
    if (std::find(kAttributes.begin(), kAttributes.end(), k) == kAttributes.end()) add_named(k, v, tc);
  // extra_special_tokens (additional_special_tokens in older files): a list of tokens.
  const char* extra_keys[] = {"extra_special_tokens", "additional_special_tokens"};
  for (const char* key : extra_keys) {
    const Json* list = nullptr;
    std::string file = tc;
    if (f.tok_cfg.contains(key) && f.tok_cfg[key].is_array()) list = &f.tok_cfg[key];
    else if (!s.has_added_decoder && f.special_map.contains(key) && f.special_map[key].is_array()) {
      list = &f.special_map[key];
      file = sm;
    }
    if (!list) continue;
    for (size_t i = 0; i < list->size(); ++i) {
      auto n = parse_named((*list)[i], file, std::string(key) + "[" + std::to_string(i) + "]", file == sm);
      if (n) s.extra.push_back(*n);
    }
    break;
  }
  return s;
}

// ---- building ----

std::unique_ptr<hf::Normalizer> normalizer_of(const Json& j, const std::string& what) {
  return hf::parse_normalizer(j, what, "normalizer");
}

// The BPE settings each class gives its model.
hf::BpeOptions class_options(const std::string& cls, const Specials& sp) {
  hf::BpeOptions o;
  if (cls == "LlamaTokenizer") {
    o.fuse_unk = true;
    o.byte_fallback = true;
  } else if (cls == "GemmaTokenizer") {
    const Named* unk = sp.get("unk_token");
    o.fuse_unk = true;
    o.byte_fallback = true;
    o.unk_token = unk ? unk->content : "<unk>";
  } else if (cls == "Qwen2Tokenizer") {
    o.continuing_subword_prefix = "";
    o.end_of_word_suffix = "";
  }
  return o;
}

// The normalizer, pre-tokenizer and decoder each class builds.
void apply_class_stages(HfTokenizer& t, const std::string& cls, const Folder& f) {
  const std::string tc = f.file("tokenizer_config.json");
  const std::string what = "transformers' " + cls;
  if (cls == "LlamaTokenizer") {
    const bool legacy = get_bool(f.tok_cfg, "legacy", false, tc);
    const bool prefix = get_bool(f.tok_cfg, "add_prefix_space", true, tc);
    const std::string scheme = prefix ? (legacy ? "always" : "first") : "never";
    t.set_normalizer(nullptr);
    t.set_pre_tokenizer(hf::parse_pre_tokenizer(
        Json{{"type", "Metaspace"}, {"replacement", "\u2581"}, {"prepend_scheme", scheme}, {"split", false}}, what,
        "pre_tokenizer"));
    Json dec = Json::array({Json{{"type", "Replace"}, {"pattern", {{"String", "\u2581"}}}, {"content", " "}},
                            Json{{"type", "ByteFallback"}}, Json{{"type", "Fuse"}}});
    if (prefix) dec.push_back(Json{{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});
    t.set_decoder(hf::parse_decoder(Json{{"type", "Sequence"}, {"decoders", dec}}, what, "decoder"));
  } else if (cls == "GemmaTokenizer") {
    t.set_pre_tokenizer(hf::parse_pre_tokenizer(
        Json{{"type", "Split"}, {"pattern", {{"String", " "}}}, {"behavior", "MergedWithPrevious"}, {"invert", false}}, what,
        "pre_tokenizer"));
    t.set_decoder(hf::parse_decoder(
        Json{{"type", "Sequence"},
             {"decoders", Json::array({Json{{"type", "Replace"}, {"pattern", {{"String", "\u2581"}}}, {"content", " "}},
                                       Json{{"type", "ByteFallback"}}, Json{{"type", "Fuse"}}})}},
        what, "decoder"));
    t.set_normalizer(normalizer_of(Json{{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\u2581"}}, what));
  } else if (cls == "Qwen2Tokenizer") {
    const bool prefix = get_bool(f.tok_cfg, "add_prefix_space", false, tc);
    t.set_decoder(hf::parse_decoder(Json{{"type", "ByteLevel"}}, what, "decoder"));
    t.set_normalizer(normalizer_of(Json{{"type", "NFC"}}, what));
    t.set_pre_tokenizer(hf::parse_pre_tokenizer(
        Json{{"type", "Sequence"},
             {"pretokenizers",
              Json::array(
                  {Json{{"type", "Split"}, {"pattern", {{"Regex", kQwen2Pattern}}}, {"behavior", "Isolated"}, {"invert", false}},
                   Json{{"type", "ByteLevel"}, {"add_prefix_space", prefix}, {"use_regex", false}}})}},
        what, "pre_tokenizer"));
  }
}

std::vector<std::string> all_special_contents(const Specials& sp) {
  std::vector<std::string> out;
  auto add = [&](const std::string& c) {
    if (std::find(out.begin(), out.end(), c) == out.end()) out.push_back(c);
  };
  for (const auto& k : kAttributes)
    if (const Named* n = sp.get(k)) add(n->content);
  for (const auto& [k, n] : sp.named)
    if (std::find(kAttributes.begin(), kAttributes.end(), k) == kAttributes.end()) add(n.content);
  for (const auto& n : sp.extra) add(n.content);
  return out;
}

// TokenizersBackend.__init__'s added tokens: added_tokens_decoder, then named special tokens missing.
void add_config_tokens(HfTokenizer& t, const Specials& sp) {
  std::vector<AddedToken> to_add;
  for (const auto& [id, tok] : sp.added_decoder) to_add.push_back(tok);
  std::set<std::string> encoder;
  for (const auto& [id, tok] : t.added_tokens()) encoder.insert(tok.content);
  for (const auto& tok : to_add) encoder.insert(tok.content);
  const auto named_contents = all_special_contents(sp);
  auto consider = [&](const Named& n) {
    if (encoder.count(n.content)) return;
    AddedToken tok = n.tok;
    if (n.is_object) {
      if (!tok.special && std::find(named_contents.begin(), named_contents.end(), tok.content) != named_contents.end())
        tok.special = true;
    } else {
      tok = AddedToken{n.content, false, false, false, false, true};
    }
    for (const auto& x : to_add)
      if (x == tok) return;
    to_add.push_back(tok);
  };
  for (const auto& [k, n] : sp.named) consider(n);
  for (const auto& n : sp.extra) consider(n);
  if (!to_add.empty()) t.add_tokens(to_add);
}

std::vector<int64_t> ids_of(const Json& j, const char* key, const std::string& file) {
  if (!j.contains(key) || j[key].is_null()) return {};
  const Json& v = j[key];
  if (v.is_number_integer()) return {v.get<int64_t>()};
  if (v.is_array()) {
    std::vector<int64_t> out;
    for (const auto& x : v) {
      if (!x.is_number_integer()) throw Error(file + ": " + key + " must be an integer or a list of integers");
      out.push_back(x.get<int64_t>());
    }
    return out;
  }
  throw Error(file + ": " + key + " must be an integer or a list of integers");
}

void set_conventions(HfTokenizer& t, const Folder& f, const Specials& sp, const SpmModel* spm) {
  auto id_of = [&](const char* key) -> int64_t {
    const Named* n = sp.get(key);
    return n ? t.token_to_id(n->content) : -1;
  };
  const std::string cf = f.file("config.json");
  auto first = [&](const char* key) -> int64_t {
    auto v = ids_of(f.config, key, cf);
    return v.empty() ? -1 : v.front();
  };
  int64_t bos = id_of("bos_token"), eos = id_of("eos_token"), pad = id_of("pad_token"), unk = id_of("unk_token");
  if (bos < 0) bos = first("bos_token_id");
  if (eos < 0) eos = first("eos_token_id");
  if (pad < 0) pad = first("pad_token_id");
  if (pad < 0 && spm && spm->pad_id >= 0) pad = spm->pad_id;
  if (pad < 0) pad = eos;
  std::set<int64_t> stops;
  if (eos >= 0) stops.insert(eos);
  for (int64_t id : ids_of(f.gen, "eos_token_id", f.file("generation_config.json"))) stops.insert(id);
  for (int64_t id : ids_of(f.config, "eos_token_id", cf)) stops.insert(id);
  t.set_conventions(bos, eos, pad, unk, std::vector<int64_t>(stops.begin(), stops.end()));
}

// transformers' generate_merges(vocab): every split of every piece into two pieces of the
// vocabulary, ordered by the merged piece's id, then by the left part's length in characters.
hf::BpeModel::Merges generate_merges(const std::vector<SpmPiece>& pieces, const std::unordered_map<std::string, int64_t>& vocab) {
  hf::BpeModel::Merges merges;
  for (size_t id = 0; id < pieces.size(); ++id) {
    const std::string& p = pieces[id].piece;
    const auto cps = uni::decode(p);
    // Splits in order of the left part's length.
    for (size_t k = 1; k < cps.size(); ++k) {
      const std::string l = p.substr(0, cps[k].offset), r = p.substr(cps[k].offset);
      if (vocab.count(l) && vocab.count(r)) merges.emplace_back(l, r);
    }
  }
  return merges;
}

// `json_text`: tokenizer.json's bytes ("" when the folder has none).
std::unique_ptr<HfTokenizer> build(const Folder& f, const std::string& cls, const std::string& json_text, std::string* cls_out) {
  const fs::path tj = f.dir / "tokenizer.json";
  std::error_code ec;
  const bool has_json = fs::exists(tj, ec);
  const std::string tc = f.file("tokenizer_config.json");
  std::unique_ptr<HfTokenizer> t;
  std::unique_ptr<SpmModel> spm;
  std::vector<std::pair<int64_t, AddedToken>> file_added;
  std::map<std::string, std::optional<std::string>> defaults;
  if (cls == "LlamaTokenizer") defaults = {{"unk_token", "<unk>"}, {"bos_token", "<s>"}, {"eos_token", "</s>"}};
  else if (cls == "GemmaTokenizer")
    defaults = {
        {"unk_token", "<unk>"}, {"bos_token", "<bos>"}, {"eos_token", "<eos>"}, {"pad_token", "<pad>"}, {"mask_token", "<mask>"}};
  else if (cls == "Qwen2Tokenizer")
    defaults = {{"unk_token", "<|endoftext|>"},
                {"bos_token", std::nullopt},
                {"eos_token", "<|endoftext|>"},
                {"pad_token", "<|endoftext|>"}};

  if (has_json) {
    const Json j = io::parse_json(json_text, tj.string());
    auto file_tok = HfTokenizer::from_json(j, tj.string());
    file_added = file_tok->added_tokens();
    if (cls == "TokenizersBackend" || cls == "GPT2Tokenizer") {
      t = std::move(file_tok);
    } else {
      // The class keeps the file's vocabulary, merges and post-processor and builds the rest.
      const Specials sp0 = read_specials(f, defaults, file_added, true);
      t = std::make_unique<HfTokenizer>(
          std::make_unique<hf::BpeModel>(file_tok->model().vocab(), file_tok->model().merges(), class_options(cls, sp0),
                                         "transformers' " + cls + " (" + tj.string() + ")"),
          tj.string());
      t->set_post_processor(file_tok->post_processor());
      apply_class_stages(*t, cls, f);
    }
  } else {
    // A SentencePiece model, as transformers' SentencePieceExtractor turns it into a BPE.
    const fs::path mp = f.dir / "tokenizer.model";
    spm = std::make_unique<SpmModel>(read_spm_model(mp));
    std::unordered_map<std::string, int64_t> vocab;
    for (size_t i = 0; i < spm->pieces.size(); ++i) vocab.emplace(spm->pieces[i].piece, static_cast<int64_t>(i));
    auto merges = generate_merges(spm->pieces, vocab);
    const Specials sp0 = read_specials(f, defaults, {}, false);
    t = std::make_unique<HfTokenizer>(
        std::make_unique<hf::BpeModel>(std::move(vocab), std::move(merges), class_options(cls, sp0), mp.string()), mp.string());
    apply_class_stages(*t, cls, f);
  }

  Specials sp = read_specials(f, defaults, file_added, has_json);
  if (!has_json && !f.tok_cfg.contains("extra_special_tokens") && !f.tok_cfg.contains("additional_special_tokens")) {
    // The extractor names the control (special) and user-defined (not special) pieces.
    sp.extra.clear();
    for (const auto& p : spm->pieces)
      if (p.type == SpmPiece::Control || p.type == SpmPiece::UserDefined) {
        Named n;
        n.content = p.piece;
        n.is_object = true;
        n.tok = AddedToken{p.piece, false, false, false, false, p.type == SpmPiece::Control};
        sp.extra.push_back(n);
      }
  }
  add_config_tokens(*t, sp);
  if (cls == "Qwen2Tokenizer") {
    std::vector<AddedToken> again;
    for (const auto& c : all_special_contents(sp)) again.push_back(AddedToken{c, false, false, false, false, true});
    t->add_tokens(again);
  }

  if (!has_json) {
    // No post-processor in the file: add_bos_token / add_eos_token decide.
    const bool add_bos = get_bool(f.tok_cfg, "add_bos_token", false, tc);
    const bool add_eos = get_bool(f.tok_cfg, "add_eos_token", false, tc);
    hf::PostProcessor pp;
    const Named* bos = sp.get("bos_token");
    const Named* eos = sp.get("eos_token");
    if (add_bos && bos && t->token_to_id(bos->content) >= 0) pp.prefix.push_back(t->token_to_id(bos->content));
    if (add_eos && eos && t->token_to_id(eos->content) >= 0) pp.suffix.push_back(t->token_to_id(eos->content));
    t->set_post_processor(pp);
  }
  if (f.model_type == "opt" && t->post_processor().prefix.empty() && get_bool(f.tok_cfg, "add_bos_token", true, tc)) {
    // Lethe's OPT convention: </s> (config's bos_token_id, 2 by default) before every sequence.
    hf::PostProcessor pp = t->post_processor();
    auto b = ids_of(f.config, "bos_token_id", f.file("config.json"));
    pp.prefix.push_back(b.empty() ? 2 : b.front());
    t->set_post_processor(pp);
    t->skip_when_decoding(pp.prefix.back());
  }
  t->set_encode_special_tokens(get_bool(f.tok_cfg, "split_special_tokens", false, tc));
  set_conventions(*t, f, sp, spm.get());
  if (cls_out) *cls_out = cls;
  return t;
}

}  // namespace

std::unique_ptr<HfTokenizer> load_hf_tokenizer(const fs::path& dir, std::string* cls) {
  const Folder f = read_folder(dir);
  std::error_code ec;
  const fs::path tj = dir / "tokenizer.json";
  const bool has_json = fs::exists(tj, ec);
  if (!has_json && !fs::exists(dir / "tokenizer.model", ec)) throw Error(dir.string() + ": no tokenizer.json or tokenizer.model");
  const std::string text = has_json ? io::read_text_file(tj) : std::string();
  const std::string c = resolve_class(f, text);
  if (!has_json && c != "LlamaTokenizer")
    throw Error(dir.string() + ": a tokenizer.model that transformers would not load as LlamaTokenizer (class " + c +
                ") is read with the sentencepiece library, not here");
  return build(f, c, text, cls);
}

bool hf_takes_sentencepiece_folder(const fs::path& dir) {
  std::error_code ec;
  if (fs::exists(dir / "tokenizer.json", ec) || !fs::exists(dir / "tokenizer.model", ec)) return false;
  const Folder f = read_folder(dir);
  if (f.model_type == "opt") return false;
  if (resolve_class(f, "") != "LlamaTokenizer") return false;
  return read_spm_model(dir / "tokenizer.model").model_type == 2;  // BPE
}

}  // namespace lethe::text
