#include "experiment/spec.h"

#include <algorithm>
#include <climits>
#include <set>
#include <sstream>

#include "io/jsonl.h"
#include "model/model_config.h"
#include "text/chat_template.h"
#include "util/error.h"
#include "util/paths.h"

namespace lethe::experiment {
namespace fs = std::filesystem;

namespace {

// Collects problems with their JSON paths; reads typed fields with defaults.
struct Reader {
  std::vector<Problem> problems;
  fs::path base;

  void fail(const std::string& path, const std::string& what) { problems.push_back({path, what}); }

  const io::Json* obj(const io::Json& parent, const std::string& key, const std::string& path, bool required) {
    if (!parent.contains(key)) {
      if (required) fail(path, "missing");
      return nullptr;
    }
    if (!parent[key].is_object()) {
      fail(path, "expected an object");
      return nullptr;
    }
    return &parent[key];
  }
  void known(const io::Json& o, const std::string& path, const std::set<std::string>& keys) {
    for (auto it = o.begin(); it != o.end(); ++it)
      if (!keys.count(it.key())) fail(path.empty() ? it.key() : path + "." + it.key(), "unknown field");
  }
  template <typename T>
  T num(const io::Json& o, const std::string& key, const std::string& path, T fallback) {
    if (!o.contains(key)) return fallback;
    const auto& v = o[key];
    if constexpr (std::is_integral_v<T>) {
      if (!v.is_number_integer()) {
        fail(path, "expected an integer, got " + v.dump());
        return fallback;
      }
    } else if (!v.is_number()) {
      fail(path, "expected a number, got " + v.dump());
      return fallback;
    }
    return v.get<T>();
  }
  bool flag(const io::Json& o, const std::string& key, const std::string& path, bool fallback) {
    if (!o.contains(key)) return fallback;
    if (!o[key].is_boolean()) {
      fail(path, "expected true or false, got " + o[key].dump());
      return fallback;
    }
    return o[key].get<bool>();
  }
  std::string str(const io::Json& o, const std::string& key, const std::string& path, const std::string& fallback,
                  bool required = false) {
    if (!o.contains(key)) {
      if (required) fail(path, "missing");
      return fallback;
    }
    if (!o[key].is_string()) {
      fail(path, "expected a string, got " + o[key].dump());
      return fallback;
    }
    return o[key].get<std::string>();
  }
  fs::path file(const io::Json& o, const std::string& key, const std::string& path, bool required, bool folder) {
    const std::string s = str(o, key, path, "", required);
    if (s.empty()) {
      if (required && o.contains(key) && o[key].is_string()) fail(path, "not set");
      return {};
    }
    fs::path p = resolve_spec_path(base, s);
    std::error_code ec;
    if (!fs::exists(p, ec)) fail(path, std::string(folder ? "folder" : "file") + " not found: " + p.string());
    else if (folder && !fs::is_directory(p, ec)) fail(path, "expected a folder: " + p.string());
    return fs::weakly_canonical(p, ec);
  }
  std::optional<DatasetRef> dataset(const io::Json& parent, const std::string& key, const std::string& path, bool required) {
    const io::Json* d = obj(parent, key, path, required);
    if (!d) return std::nullopt;
    known(*d, path, {"path", "limit"});
    DatasetRef r;
    r.path = file(*d, "path", path + ".path", true, false);
    r.limit = num<int64_t>(*d, "limit", path + ".limit", 0);
    if (r.limit < 0) fail(path + ".limit", "must be >= 0 (0 = all), got " + std::to_string(r.limit));
    return r;
  }
};

// tracking: {"every": N, "forget_indices": [i, ...], "safe_answer": "...",
//            "prompts": [{"prompt": "...", "answer": "...", "safe_answer": "..."}, ...]}
TrackingSpec read_tracking(Reader& r, const io::Json& t) {
  r.known(t, "tracking", {"every", "forget_indices", "safe_answer", "prompts"});
  TrackingSpec ts;
  ts.every = r.num<int64_t>(t, "every", "tracking.every", unlearn::Tracker::kDefaultEvery);
  if (ts.every < 1) r.fail("tracking.every", "must be at least 1, got " + std::to_string(ts.every));
  if (t.contains("forget_indices")) {
    const io::Json& a = t["forget_indices"];
    if (!a.is_array()) {
      r.fail("tracking.forget_indices", "expected a list of forget-set sample indices (0-based), got " + a.dump());
    } else {
      for (size_t i = 0; i < a.size(); ++i) {
        const std::string path = "tracking.forget_indices[" + std::to_string(i) + "]";
        if (!a[i].is_number_integer() || (!a[i].is_number_unsigned() && a[i].get<int64_t>() < 0) ||
            (a[i].is_number_unsigned() && a[i].get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))) {
          r.fail(path, "expected a sample index >= 0, got " + a[i].dump());
          continue;
        }
        const auto idx = a[i].get<int64_t>();
        if (std::find(ts.forget_indices.begin(), ts.forget_indices.end(), idx) != ts.forget_indices.end())
          r.fail(path, std::to_string(idx) + " is listed twice");
        else ts.forget_indices.push_back(idx);
      }
    }
  }
  ts.safe_answer = r.str(t, "safe_answer", "tracking.safe_answer", "");
  if (t.contains("prompts")) {
    const io::Json& a = t["prompts"];
    if (!a.is_array()) {
      r.fail("tracking.prompts", "expected a list of {\"prompt\", \"answer\", \"safe_answer\"} objects, got " + a.dump());
    } else {
      for (size_t i = 0; i < a.size(); ++i) {
        const std::string path = "tracking.prompts[" + std::to_string(i) + "]";
        if (!a[i].is_object()) {
          r.fail(path, "expected an object {\"prompt\", \"answer\", \"safe_answer\"}, got " + a[i].dump());
          continue;
        }
        r.known(a[i], path, {"prompt", "answer", "safe_answer"});
        unlearn::TrackedPrompt p;
        p.prompt = r.str(a[i], "prompt", path + ".prompt", "", true);
        p.answer = r.str(a[i], "answer", path + ".answer", "", true);
        if (p.answer.empty() && a[i].contains("answer") && a[i]["answer"].is_string())
          r.fail(path + ".answer", "must not be empty");
        p.safe_answer = r.str(a[i], "safe_answer", path + ".safe_answer", "");
        p.source = path;
        ts.prompts.push_back(std::move(p));
      }
    }
  }
  return ts;
}

}  // namespace

SpecError::SpecError(std::vector<Problem> problems)
    : Error([&] {
        std::string msg = "invalid spec (" + std::to_string(problems.size()) + " problem" + (problems.size() > 1 ? "s" : "") +
                          "):";
        for (const auto& p : problems) msg += "\n  " + p.text();
        return msg;
      }()),
      problems_(std::move(problems)) {}

fs::path resolve_spec_path(const fs::path& base_dir, const std::string& path) {
  const fs::path p(path);
  return p.is_absolute() ? p : base_dir / p;
}

namespace {
// The JSON type as a user reads it, for messages.
std::string kind_of(const io::Json& j) {
  if (j.is_array()) return "a list";
  if (j.is_string()) return "a string";
  if (j.is_boolean()) return "true/false";
  if (j.is_null()) return "null";
  return "a number";
}
}  // namespace

void apply_override(io::Json& j, const std::string& assignment) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) throw Error("--set '" + assignment + "': expected key.path=value");
  const std::string key = assignment.substr(0, eq), value = assignment.substr(eq + 1);
  // Bytes that are not UTF-8 would become a JSON string no message can print (found by fuzzing).
  io::check_text(assignment, "--set " + key);
  io::Json v;
  try {
    v = io::Json::parse(value);
  } catch (const nlohmann::json::exception&) {  // not JSON (or a number beyond double): the text itself
    v = value;
  }
  std::stringstream ss(key);
  std::string part, path;
  std::vector<std::string> parts;
  while (std::getline(ss, part, '.')) parts.push_back(part);
  if (parts.empty() || key.back() == '.') throw Error("--set '" + key + "': expected key.path=value with no empty part");
  // Sections are objects: a path through a value is refused (it once replaced the value with a
  // section, or threw from inside the JSON library when the spec itself was not an object).
  io::Json* cur = &j;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (parts[i].empty()) throw Error("--set '" + key + "': expected key.path=value with no empty part");
    if (!cur->is_object())
      throw Error("--set '" + key + "': " + (path.empty() ? std::string("the spec") : "'" + path + "'") + " is " + kind_of(*cur) +
                  ", not a section");
    if (i + 1 == parts.size()) break;
    path += (path.empty() ? "" : ".") + parts[i];
    if (!cur->contains(parts[i])) (*cur)[parts[i]] = io::Json::object();
    cur = &(*cur)[parts[i]];
  }
  (*cur)[parts.back()] = v;
}

Spec parse_spec(const io::Json& j, const fs::path& base_dir) {
  Reader r;
  r.base = base_dir;
  Spec s;
  s.source = j;
  if (!j.is_object()) throw SpecError({{"", "expected a JSON object, got " + j.dump()}});
  r.known(j, "",
          {"name", "seed", "model", "datasets", "finetune", "unlearn", "evaluation", "tracking", "output", "_base_dir",
           "_output_dir"});
  s.name = r.str(j, "name", "name", "run");
  const int64_t seed = r.num<int64_t>(j, "seed", "seed", 8888);
  if (seed < 0) r.fail("seed", "must be >= 0");
  s.seed = static_cast<uint64_t>(seed);

  if (const io::Json* m = r.obj(j, "model", "model", true)) {
    r.known(*m, "model", {"path", "dtype", "device", "prompt_format"});
    s.model = r.file(*m, "path", "model.path", true, true);
    s.dtype = r.str(*m, "dtype", "model.dtype", "fp32");
    if (s.dtype != "fp32" && s.dtype != "bf16" && s.dtype != "fp16")
      r.fail("model.dtype", "expected fp32, bf16 or fp16, got '" + s.dtype + "'");
    s.device = r.str(*m, "device", "model.device", "auto");
    const std::string pf = r.str(*m, "prompt_format", "model.prompt_format", "paper");
    if (pf == "paper" || pf == "chat") s.prompt_format = data::parse_prompt_style(pf);
    else r.fail("model.prompt_format", "expected paper or chat, got '" + pf + "'");
  }
  if (const io::Json* d = r.obj(j, "datasets", "datasets", true)) {
    r.known(*d, "datasets", {"forget", "normal", "random_answers", "idk", "protected", "passage_tokens"});
    if (auto f = r.dataset(*d, "forget", "datasets.forget", true)) s.forget = *f;
    if (auto n = r.dataset(*d, "normal", "datasets.normal", true)) s.normal = *n;
    s.random_answers = r.dataset(*d, "random_answers", "datasets.random_answers", false);
    s.protected_text = r.dataset(*d, "protected", "datasets.protected", false);
    s.idk = r.dataset(*d, "idk", "datasets.idk", false);
    s.passage_tokens = r.num<int64_t>(*d, "passage_tokens", "datasets.passage_tokens", 96);
    if (s.passage_tokens < 8) r.fail("datasets.passage_tokens", "must be at least 8");
  }
  // Training options: read by the options schema (unlearn/options.h), as the CLI and GUI do.
  s.finetune_options = unlearn::read_options(io::Json::object(), unlearn::Section::Finetune, "finetune", r.problems);
  s.unlearn = unlearn::read_options(io::Json::object(), unlearn::Section::Unlearn, "unlearn", r.problems);
  if (const io::Json* f = r.obj(j, "finetune", "finetune", false)) {
    s.finetune = r.flag(*f, "enabled", "finetune.enabled", true);
    s.finetune_options = unlearn::read_options(*f, unlearn::Section::Finetune, "finetune", r.problems, {"enabled"});
    if (s.finetune && !s.protected_text) r.fail("finetune", "needs datasets.protected (the text to teach, then unlearn)");
  }
  if (const io::Json* u = r.obj(j, "unlearn", "unlearn", false))
    s.unlearn = unlearn::read_options(*u, unlearn::Section::Unlearn, "unlearn", r.problems);
  if (unlearn::method_needs(s.unlearn).alternative && !s.idk)
    r.fail("datasets.idk", std::string("unlearn.method ") + unlearn::method_name(s.unlearn.method) +
                               " needs alternative (\"I don't know\") answers: a file, one per line or JSONL");
  if (const io::Json* e = r.obj(j, "evaluation", "evaluation", false)) {
    r.known(*e, "evaluation",
            {"classifier", "prompts", "samples", "max_new_tokens", "sample", "temperature", "top_p", "retention", "mc_questions",
             "prefix_tokens", "continuation_tokens", "tofu", "mia"});
    if (e->contains("classifier")) s.classifier = r.file(*e, "classifier", "evaluation.classifier", true, true);
    s.eval_prompts = r.dataset(*e, "prompts", "evaluation.prompts", false);
    if (s.eval_prompts && !s.classifier) r.fail("evaluation.classifier", "needed when evaluation.prompts is given");
    s.samples = r.num<int64_t>(*e, "samples", "evaluation.samples", 1);
    if (s.samples < 1) r.fail("evaluation.samples", "must be at least 1");
    s.max_new_tokens = r.num<int64_t>(*e, "max_new_tokens", "evaluation.max_new_tokens", 48);
    if (s.max_new_tokens < 1) r.fail("evaluation.max_new_tokens", "must be at least 1");
    s.sample = r.flag(*e, "sample", "evaluation.sample", false);
    s.temperature = r.num<double>(*e, "temperature", "evaluation.temperature", 1.0);
    if (!(s.temperature > 0)) r.fail("evaluation.temperature", "must be > 0");
    s.top_p = r.num<double>(*e, "top_p", "evaluation.top_p", 1.0);
    if (!(s.top_p > 0 && s.top_p <= 1)) r.fail("evaluation.top_p", "must be in (0, 1]");
    s.retention = r.flag(*e, "retention", "evaluation.retention", true);
    s.mc_questions = r.num<int64_t>(*e, "mc_questions", "evaluation.mc_questions", 0);
    s.prefix_tokens = r.num<int64_t>(*e, "prefix_tokens", "evaluation.prefix_tokens", 32);
    s.continuation_tokens = r.num<int64_t>(*e, "continuation_tokens", "evaluation.continuation_tokens", 32);
    if (s.prefix_tokens < 1 || s.continuation_tokens < 1)
      r.fail("evaluation", "prefix_tokens and continuation_tokens must be >= 1");
    if (s.protected_text && s.prefix_tokens + s.continuation_tokens > s.passage_tokens)
      r.fail("evaluation.prefix_tokens", "prefix_tokens + continuation_tokens (" +
                                             std::to_string(s.prefix_tokens + s.continuation_tokens) +
                                             ") exceed datasets.passage_tokens (" + std::to_string(s.passage_tokens) + ")");
    if (const io::Json* t = r.obj(*e, "tofu", "evaluation.tofu", false)) {
      r.known(*t, "evaluation.tofu", {"forget", "retain", "rouge", "max_new_tokens"});
      s.tofu_forget = r.dataset(*t, "forget", "evaluation.tofu.forget", false);
      s.tofu_retain = r.dataset(*t, "retain", "evaluation.tofu.retain", false);
      if (!s.tofu_forget && !s.tofu_retain) r.fail("evaluation.tofu", "give forget and/or retain (TOFU-format question sets)");
      s.tofu_rouge = r.flag(*t, "rouge", "evaluation.tofu.rouge", true);
      s.tofu_max_new_tokens = r.num<int64_t>(*t, "max_new_tokens", "evaluation.tofu.max_new_tokens", 200);
      if (s.tofu_max_new_tokens < 1) r.fail("evaluation.tofu.max_new_tokens", "must be at least 1");
    }
    if (const io::Json* m = r.obj(*e, "mia", "evaluation.mia", false)) {
      r.known(*m, "evaluation.mia", {"forget", "holdout", "k"});
      s.mia_forget = r.dataset(*m, "forget", "evaluation.mia.forget", true);
      s.mia_holdout = r.dataset(*m, "holdout", "evaluation.mia.holdout", true);
      s.mia_k = r.num<double>(*m, "k", "evaluation.mia.k", 0.4);
      if (!(s.mia_k > 0 && s.mia_k <= 1)) r.fail("evaluation.mia.k", "must be in (0, 1]");
    }
  }
  if (const io::Json* t = r.obj(j, "tracking", "tracking", false)) s.tracking = read_tracking(r, *t);
  if (const io::Json* o = r.obj(j, "output", "output", false)) {
    r.known(*o, "output", {"dir", "save"});
    const std::string dir = r.str(*o, "dir", "output.dir", "");
    if (!dir.empty()) {
      s.output_dir = resolve_spec_path(base_dir, dir);
      s.output_dir_given = true;
    }
    const std::string save = r.str(*o, "save", "output.save", "merged");
    if (save != "merged" && save != "adapter" && save != "both" && save != "none")
      r.fail("output.save", "expected merged, adapter, both or none, got '" + save + "'");
    else if ((save == "adapter" || save == "both") && !s.unlearn.lora.enabled())
      r.fail("output.save", "'" + save + "' needs LoRA (unlearn.lora.rank > 0)");
    else s.save = unlearn::parse_save_kind(save);
  }
  // LoRA targets are names of the model's own layers: checked against its family when the
  // model's config.json can be read (a missing model is reported above).
  if (!s.model.empty()) {
    std::error_code ec;
    if (fs::exists(s.model / "config.json", ec)) {
      try {
        auto cfg = model::parse_model_config(io::read_json_file(s.model / "config.json"), (s.model / "config.json").string());
        for (auto [opts, path] : {std::pair{&s.unlearn, "unlearn"}, std::pair{&s.finetune_options, "finetune"}}) {
          if (opts->lora.targets.empty()) continue;
          try {
            cfg->resolve_lora_targets(opts->lora.targets);
          } catch (const Error& e) {
            r.fail(std::string(path) + ".lora.targets", e.what());
          }
        }
        // RMU steers one of the model's layers and trains the span below it: checked here rather
        // than at the first step, with the model's layer count in the message.
        if (s.unlearn.method == unlearn::Method::Rmu) {
          const int64_t layers = cfg->info().num_layers, layer = s.unlearn.rmu_layer, span = s.unlearn.rmu_span;
          if (layer >= layers)
            r.fail("unlearn.rmu.layer", "the model has " + std::to_string(layers) + " decoder layers (0.." +
                                            std::to_string(layers - 1) + "), got " + std::to_string(layer));
          else if (span > layer + 1)
            r.fail("unlearn.rmu.span", "trains layers rmu.layer - span + 1 .. rmu.layer, so at most " +
                                           std::to_string(layer + 1) + " from layer " + std::to_string(layer) + ", got " +
                                           std::to_string(span));
        }
      } catch (const Error& e) {
        r.fail("model.path", e.what());
      }
    }
  }
  if (s.prompt_format == data::PromptStyle::Chat) {
    if (s.unlearn.mode == unlearn::Mode::Faithful)
      r.fail("unlearn.mode", "faithful mode reproduces llm_unlearn's '### Question: ... ### Answer:' template; "
                             "model.prompt_format \"chat\" needs corrected mode");
    std::error_code ec;
    if (!s.model.empty() && fs::exists(s.model, ec)) {
      try {
        if (!text::load_chat_template(s.model))
          r.fail("model.prompt_format", "\"chat\" needs a chat template in " + s.model.string() +
                                            " (chat_template.jinja or tokenizer_config.json 'chat_template')");
      } catch (const Error& e) {
        r.fail("model.prompt_format", e.what());
      }
    }
  }
  if (s.output_dir.empty()) {
    if (s.name.empty() || s.name.find_first_of("/\\") != std::string::npos || s.name == "." || s.name == "..")
      r.fail("name", "'" + s.name + "' cannot name the run's folder (no slashes; or set output.dir)");
    else try {
        s.output_dir = runs_home() / s.name;
      } catch (const Error& e) {
        r.fail("output.dir", std::string("not set, and the default folder is unknown: ") + e.what());
      }
  }
  s.unlearn.seed = s.finetune_options.seed = s.seed;
  if (!r.problems.empty()) throw SpecError(std::move(r.problems));
  return s;
}

std::vector<Problem> spec_problems(const io::Json& j, const fs::path& base_dir) {
  try {
    parse_spec(j, base_dir);
  } catch (const SpecError& e) {
    return e.problems();
  } catch (const Error& e) {
    return {{"", e.what()}};
  }
  return {};
}

Spec load_spec(const fs::path& file, const std::vector<std::string>& overrides) {
  io::Json j = io::read_json_file(file);
  for (const auto& o : overrides) apply_override(j, o);
  return with_context(file.string(), [&] { return parse_spec(j, fs::absolute(file).parent_path()); });
}

}  // namespace lethe::experiment
