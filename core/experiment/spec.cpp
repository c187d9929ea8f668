#include "experiment/spec.h"

#include <set>
#include <sstream>

#include "model/model_config.h"
#include "text/chat_template.h"
#include "util/error.h"

namespace lethe::experiment {
namespace fs = std::filesystem;

namespace {

// Collects problems with their JSON paths; reads typed fields with defaults.
struct Reader {
  std::vector<std::string> problems;
  fs::path base;

  void fail(const std::string& path, const std::string& what) { problems.push_back(path + ": " + what); }

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
    fs::path p = fs::path(s).is_absolute() ? fs::path(s) : base / s;
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

  void training(const io::Json& u, const std::string& path, unlearn::UnlearnOptions& o, bool finetune) {
    std::set<std::string> keys = {"lr", "steps", "batch", "warmup", "clip", "grad_accum", "weight_decay", "dropout",
                                  "precision", "lora", "checkpoint_every"};
    if (!finetune)
      for (const char* k : {"method", "mode", "eps1", "eps2", "eps3", "K", "stop_forget_ce", "npo_beta"}) keys.insert(k);
    else
      keys.insert("enabled");
    known(u, path, keys);
    if (!finetune) {
      const std::string method = str(u, "method", path + ".method", "paper");
      if (method != "paper" && method != "graddiff" && method != "npo")
        fail(path + ".method", "unknown method '" + method + "' (paper, graddiff, npo)");
      else
        o.method = unlearn::parse_method(method);
      const std::string mode = str(u, "mode", path + ".mode", "corrected");
      if (mode != "faithful" && mode != "corrected") fail(path + ".mode", "expected faithful or corrected, got '" + mode + "'");
      else o.mode = unlearn::parse_mode(mode);
      for (auto [k, dst] : {std::pair<const char*, double*>{"eps1", &o.eps1}, {"eps2", &o.eps2}, {"eps3", &o.eps3}}) {
        *dst = num<double>(u, k, path + "." + k, *dst);
        if (*dst < 0) fail(path + "." + k, "must be >= 0, got " + io::Json(*dst).dump());
      }
      if (o.eps1 == 0 && o.eps2 == 0 && o.eps3 == 0) fail(path, "eps1, eps2 and eps3 are all 0: nothing would be optimised");
      o.K = num<int64_t>(u, "K", path + ".K", o.K);
      if (o.K < 1) fail(path + ".K", "must be at least 1, got " + std::to_string(o.K));
      o.stop_forget_ce = num<double>(u, "stop_forget_ce", path + ".stop_forget_ce", o.stop_forget_ce);
      o.npo_beta = num<double>(u, "npo_beta", path + ".npo_beta", o.npo_beta);
      if (!(o.npo_beta > 0)) fail(path + ".npo_beta", "must be > 0");
    } else {
      o.method = unlearn::Method::Finetune;
      o.lr = 1e-4;
      o.max_steps = 200;
    }
    o.lr = num<double>(u, "lr", path + ".lr", o.lr);
    if (!(o.lr > 0)) fail(path + ".lr", "must be > 0, got " + io::Json(o.lr).dump());
    o.max_steps = num<int64_t>(u, "steps", path + ".steps", o.max_steps);
    if (o.max_steps < 1) fail(path + ".steps", "must be at least 1, got " + std::to_string(o.max_steps));
    o.batch_size = num<int64_t>(u, "batch", path + ".batch", o.batch_size);
    if (o.batch_size < 1) fail(path + ".batch", "must be at least 1, got " + std::to_string(o.batch_size));
    o.warmup_steps = num<int64_t>(u, "warmup", path + ".warmup", 0);
    if (o.warmup_steps < 0 || o.warmup_steps >= std::max<int64_t>(1, o.max_steps))
      fail(path + ".warmup", "must be in [0, steps)");
    o.max_grad_norm = num<double>(u, "clip", path + ".clip", 0);
    if (o.max_grad_norm < 0) fail(path + ".clip", "must be >= 0 (0 = no clipping)");
    o.grad_accum = num<int64_t>(u, "grad_accum", path + ".grad_accum", 1);
    if (o.grad_accum < 1) fail(path + ".grad_accum", "must be at least 1");
    o.weight_decay = num<double>(u, "weight_decay", path + ".weight_decay", o.weight_decay);
    if (u.contains("dropout")) {
      if (u["dropout"].is_boolean()) o.dropout = u["dropout"].get<bool>();
      else if (!(u["dropout"].is_string() && u["dropout"].get<std::string>() == "auto"))
        fail(path + ".dropout", "expected true, false or \"auto\", got " + u["dropout"].dump());
    }
    o.precision = str(u, "precision", path + ".precision", "fp32");
    if (o.precision != "fp32" && o.precision != "bf16" && o.precision != "auto")
      fail(path + ".precision", "expected fp32, bf16 or auto, got '" + o.precision + "'");
    o.checkpoint_every = num<int64_t>(u, "checkpoint_every", path + ".checkpoint_every", 0);
    if (o.checkpoint_every < 0) fail(path + ".checkpoint_every", "must be >= 0");
    if (const io::Json* l = obj(u, "lora", path + ".lora", false)) {
      known(*l, path + ".lora", {"rank", "alpha", "dropout", "targets"});
      o.lora.rank = num<int64_t>(*l, "rank", path + ".lora.rank", 0);
      if (o.lora.rank < 0) fail(path + ".lora.rank", "must be >= 0 (0 = full parameters)");
      o.lora.alpha = num<double>(*l, "alpha", path + ".lora.alpha", 16);
      o.lora.dropout = num<double>(*l, "dropout", path + ".lora.dropout", 0);
      if (l->contains("targets")) {
        if (!(*l)["targets"].is_array()) {
          fail(path + ".lora.targets", "expected an array of module names");
        } else {
          o.lora.targets.clear();
          for (const auto& t : (*l)["targets"]) {
            // Which names exist depends on the model's family: the run checks them against it.
            const std::string n = t.is_string() ? t.get<std::string>() : t.dump();
            const bool name_like = !n.empty() && n.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_-") == std::string::npos;
            if (!name_like) fail(path + ".lora.targets", "'" + n + "' is not a module name (e.g. q_proj, or all-linear)");
            o.lora.targets.push_back(n);
          }
        }
      }
    }
  }
};

}  // namespace

void apply_override(io::Json& j, const std::string& assignment) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) throw Error("--set '" + assignment + "': expected key.path=value");
  const std::string key = assignment.substr(0, eq), value = assignment.substr(eq + 1);
  io::Json v;
  try {
    v = io::Json::parse(value);
  } catch (const nlohmann::json::parse_error&) {
    v = value;
  }
  io::Json* cur = &j;
  std::stringstream ss(key);
  std::string part;
  std::vector<std::string> parts;
  while (std::getline(ss, part, '.')) parts.push_back(part);
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    if (!cur->contains(parts[i]) || !(*cur)[parts[i]].is_object()) (*cur)[parts[i]] = io::Json::object();
    cur = &(*cur)[parts[i]];
  }
  (*cur)[parts.back()] = v;
}

Spec parse_spec(const io::Json& j, const fs::path& base_dir) {
  Reader r;
  r.base = base_dir;
  Spec s;
  s.source = j;
  if (!j.is_object()) throw Error("spec: expected a JSON object");
  r.known(j, "", {"name", "seed", "model", "datasets", "finetune", "unlearn", "evaluation", "output", "_base_dir"});
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
    r.known(*d, "datasets", {"forget", "normal", "random_answers", "protected", "passage_tokens"});
    if (auto f = r.dataset(*d, "forget", "datasets.forget", true)) s.forget = *f;
    if (auto n = r.dataset(*d, "normal", "datasets.normal", true)) s.normal = *n;
    s.random_answers = r.dataset(*d, "random_answers", "datasets.random_answers", false);
    s.protected_text = r.dataset(*d, "protected", "datasets.protected", false);
    s.passage_tokens = r.num<int64_t>(*d, "passage_tokens", "datasets.passage_tokens", 96);
    if (s.passage_tokens < 8) r.fail("datasets.passage_tokens", "must be at least 8");
  }
  if (const io::Json* f = r.obj(j, "finetune", "finetune", false)) {
    s.finetune = r.flag(*f, "enabled", "finetune.enabled", true);
    r.training(*f, "finetune", s.finetune_options, true);
    if (s.finetune && !s.protected_text) r.fail("finetune", "needs datasets.protected (the text to teach, then unlearn)");
  }
  if (const io::Json* u = r.obj(j, "unlearn", "unlearn", false)) r.training(*u, "unlearn", s.unlearn, false);
  if (const io::Json* e = r.obj(j, "evaluation", "evaluation", false)) {
    r.known(*e, "evaluation", {"classifier", "prompts", "samples", "max_new_tokens", "sample", "temperature", "top_p", "retention",
                               "mc_questions", "prefix_tokens", "continuation_tokens"});
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
    if (s.prefix_tokens < 1 || s.continuation_tokens < 1) r.fail("evaluation", "prefix_tokens and continuation_tokens must be >= 1");
    if (s.protected_text && s.prefix_tokens + s.continuation_tokens > s.passage_tokens)
      r.fail("evaluation.prefix_tokens", "prefix_tokens + continuation_tokens (" + std::to_string(s.prefix_tokens + s.continuation_tokens) +
                                             ") exceed datasets.passage_tokens (" + std::to_string(s.passage_tokens) + ")");
  }
  if (const io::Json* o = r.obj(j, "output", "output", false)) {
    r.known(*o, "output", {"dir", "save"});
    const std::string dir = r.str(*o, "dir", "output.dir", "");
    if (!dir.empty()) s.output_dir = fs::path(dir).is_absolute() ? fs::path(dir) : base_dir / dir;
    s.save = r.str(*o, "save", "output.save", "merged");
    if (s.save != "merged" && s.save != "adapter" && s.save != "both" && s.save != "none")
      r.fail("output.save", "expected merged, adapter, both or none, got '" + s.save + "'");
    else if ((s.save == "adapter" || s.save == "both") && !s.unlearn.lora.enabled())
      r.fail("output.save", "'" + s.save + "' needs LoRA (unlearn.lora.rank > 0)");
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
  if (s.output_dir.empty()) s.output_dir = base_dir / "runs" / s.name;
  s.unlearn.seed = s.finetune_options.seed = s.seed;
  if (!r.problems.empty()) {
    std::string msg = "invalid spec (" + std::to_string(r.problems.size()) + " problem" + (r.problems.size() > 1 ? "s" : "") + "):";
    for (const auto& p : r.problems) msg += "\n  " + p;
    throw Error(msg);
  }
  return s;
}

Spec load_spec(const fs::path& file, const std::vector<std::string>& overrides) {
  io::Json j = io::read_json_file(file);
  for (const auto& o : overrides) apply_override(j, o);
  return with_context(file.string(), [&] { return parse_spec(j, fs::absolute(file).parent_path()); });
}

}  // namespace lethe::experiment
