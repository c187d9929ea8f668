#include "unlearn/options.h"

#include <cmath>
#include <map>
#include <mutex>
#include <set>

#include "util/error.h"

namespace lethe::unlearn {

namespace {
struct MethodEntry {
  Method method;
  const char* name;
};
constexpr MethodEntry kMethods[] = {{Method::Paper, "paper"},   {Method::GradDiff, "graddiff"}, {Method::Npo, "npo"},
                                    {Method::SimNpo, "simnpo"}, {Method::IdkDpo, "idkdpo"},     {Method::Wga, "wga"},
                                    {Method::SatImp, "satimp"}, {Method::CeU, "ceu"},           {Method::Undial, "undial"},
                                    {Method::Rmu, "rmu"},       {Method::Finetune, "finetune"}};
}  // namespace

Method parse_method(const std::string& s) {
  std::string names;
  for (const auto& e : kMethods) {
    if (s == e.name) return e.method;
    names += std::string(names.empty() ? "" : ", ") + e.name;
  }
  throw Error("method '" + s + "': expected one of " + names);
}
const char* method_name(Method m) {
  for (const auto& e : kMethods)
    if (e.method == m) return e.name;
  return "?";
}
const std::vector<Method>& unlearning_methods() {
  static const std::vector<Method> all = [] {
    std::vector<Method> v;
    for (const auto& e : kMethods)
      if (e.method != Method::Finetune) v.push_back(e.method);
    return v;
  }();
  return all;
}

MethodNeeds method_needs(const UnlearnOptions& o) {
  MethodNeeds n;
  switch (o.method) {
    case Method::Finetune:
      return n;
    case Method::Paper:
      n.random = o.eps2 > 0;
      n.normal = n.reference = n.retain_kl = o.eps3 > 0;  // L_nor: the KL to the original
      return n;
    case Method::Npo:
      n.random = o.eps2 > 0;
      n.reference = true;
      n.normal = n.retain_kl = o.eps3 > 0;
      return n;
    case Method::GradDiff:
      n.normal = true;
      return n;
    case Method::IdkDpo:
      n.reference = n.alternative = true;
      n.normal = o.eps3 > 0;
      return n;
    case Method::Undial:
      n.reference = true;
      n.normal = o.eps3 > 0;
      return n;
    case Method::Rmu:
      n.reference = n.normal = o.eps3 > 0;  // the retain term compares activations with the original's
      return n;
    case Method::SimNpo:
    case Method::Wga:
    case Method::SatImp:
    case Method::CeU:
      n.normal = o.eps3 > 0;
      return n;
  }
  return n;
}

Mode parse_mode(const std::string& s) {
  if (s == "faithful") return Mode::Faithful;
  if (s == "corrected") return Mode::Corrected;
  throw Error("mode '" + s + "': expected faithful or corrected");
}
const char* mode_name(Mode m) { return m == Mode::Faithful ? "faithful" : "corrected"; }

Precision parse_precision(const std::string& s) {
  if (s == "fp32") return Precision::Fp32;
  if (s == "bf16") return Precision::Bf16;
  if (s == "auto") return Precision::Auto;
  throw Error("precision '" + s + "': expected fp32, bf16 or auto");
}
const char* precision_name(Precision p) { return p == Precision::Fp32 ? "fp32" : p == Precision::Bf16 ? "bf16" : "auto"; }

SaveKind parse_save_kind(const std::string& s) {
  if (s == "merged") return SaveKind::Merged;
  if (s == "adapter") return SaveKind::Adapter;
  if (s == "both") return SaveKind::Both;
  if (s == "none") return SaveKind::None;
  throw Error("save '" + s + "': expected merged, adapter, both or none");
}
const char* save_kind_name(SaveKind k) {
  switch (k) {
    case SaveKind::Merged:
      return "merged";
    case SaveKind::Adapter:
      return "adapter";
    case SaveKind::Both:
      return "both";
    case SaveKind::None:
      return "none";
  }
  return "?";
}

const char* section_name(Section s) { return s == Section::Unlearn ? "unlearn" : "finetune"; }

namespace {

std::string number_text(double v) {
  io::Json j = v;
  if (std::floor(v) == v && std::fabs(v) < 1e15) j = static_cast<int64_t>(v);
  return j.dump();
}

std::string or_list(const std::vector<std::string>& xs) {
  std::string s;
  for (size_t i = 0; i < xs.size(); ++i) s += (i == 0 ? "" : i + 1 == xs.size() ? " or " : ", ") + xs[i];
  return s;
}

bool name_like(const std::string& n) {
  return !n.empty() && n.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_-") == std::string::npos;
}

// Setters and getters for the common shapes.
template <typename T>
std::function<void(UnlearnOptions&, const io::Json&)> setter(T UnlearnOptions::*field) {
  return [field](UnlearnOptions& o, const io::Json& v) { o.*field = v.get<T>(); };
}
template <typename T>
std::function<io::Json(const UnlearnOptions&)> getter(T UnlearnOptions::*field) {
  return [field](const UnlearnOptions& o) { return io::Json(o.*field); };
}
template <typename T>
std::function<void(UnlearnOptions&, const io::Json&)> lora_setter(T LoraConfig::*field) {
  return [field](UnlearnOptions& o, const io::Json& v) { o.lora.*field = v.get<T>(); };
}
template <typename T>
std::function<io::Json(const UnlearnOptions&)> lora_getter(T LoraConfig::*field) {
  return [field](const UnlearnOptions& o) { return io::Json(o.lora.*field); };
}

OptionDef real(std::string key, std::string label, std::string help, double def, double UnlearnOptions::*field) {
  OptionDef d;
  d.key = std::move(key);
  d.type = OptionType::Real;
  d.label = std::move(label);
  d.help = std::move(help);
  d.unlearn_default = d.finetune_default = def;
  d.set = setter(field);
  d.get = getter(field);
  return d;
}
OptionDef integer(std::string key, std::string label, std::string help, int64_t def, int64_t UnlearnOptions::*field) {
  OptionDef d;
  d.key = std::move(key);
  d.type = OptionType::Integer;
  d.label = std::move(label);
  d.help = std::move(help);
  d.unlearn_default = d.finetune_default = def;
  d.set = setter(field);
  d.get = getter(field);
  return d;
}

std::vector<OptionDef> builtin_schema() {
  std::vector<OptionDef> s;
  const std::vector<Method> all_unlearn = unlearning_methods();
  {
    OptionDef d;
    d.key = "method";
    d.type = OptionType::Choice;
    d.label = "Method";
    d.help = "paper: gradient ascent + random answers + KL to the original (arXiv 2405.15152); graddiff: ascent + NLL on "
             "normal data; npo, simnpo: (simple) negative preference optimisation; idkdpo: DPO towards \"I don't know\"; "
             "wga, satimp: token-weighted ascent; ceu: cross-entropy unlearning; undial: self-distillation with the answer's "
             "logit lowered; rmu: representation misdirection (one layer's activations steered to a random vector)";
    d.unlearn_default = "paper";
    for (Method m : all_unlearn) d.choices.push_back(method_name(m));
    d.choice_labels = {"Paper: GA + random answers + KL",
                       "GradDiff: GA + NLL on normal data",
                       "NPO",
                       "SimNPO",
                       "IdkDPO: prefer \"I don't know\"",
                       "WGA: weighted gradient ascent",
                       "SatImp: saturation-importance weighted",
                       "CE-U: cross-entropy unlearning",
                       "UNDIAL: adjusted-logit distillation",
                       "RMU: representation misdirection"};
    d.basic = true;
    d.set = [](UnlearnOptions& o, const io::Json& v) { o.method = parse_method(v.get<std::string>()); };
    d.get = [](const UnlearnOptions& o) { return io::Json(method_name(o.method)); };
    s.push_back(d);
  }
  {
    OptionDef d;
    d.key = "mode";
    d.type = OptionType::Choice;
    d.label = "Mode";
    d.help = "corrected: answer tokens only and a true KL; faithful: llm_unlearn's conventions and quirks, for comparing "
             "with published runs";
    d.unlearn_default = "corrected";
    d.choices = {"corrected", "faithful"};
    d.choice_labels = {"corrected (answer tokens, true KL)", "faithful (llm_unlearn's conventions and quirks)"};
    d.basic = true;
    d.set = [](UnlearnOptions& o, const io::Json& v) { o.mode = parse_mode(v.get<std::string>()); };
    d.get = [](const UnlearnOptions& o) { return io::Json(mode_name(o.mode)); };
    s.push_back(d);
  }
  struct Eps {
    const char* key;
    const char* label;
    const char* help;
    double def;
    double UnlearnOptions::*field;
    std::vector<Method> methods;
  };
  for (const Eps& e :
       {Eps{"eps1", "ε1 forget (ascent)", "weight of the forget term L_fgt (gradient ascent on the forget answers)", 0.5,
            &UnlearnOptions::eps1, all_unlearn},
        Eps{"eps2",
            "ε2 random answers",
            "weight of L_rdn (cross-entropy on random normal answers to the forget questions)",
            1.0,
            &UnlearnOptions::eps2,
            {Method::Paper, Method::Npo}},
        Eps{"eps3", "ε3 normal data",
            "weight of the retain term L_nor: the KL to the original on normal data (paper, npo), the normal answers' NLL "
            "(graddiff and the newer methods, as open-unlearning), or RMU's alpha: the activation MSE to the original",
            1.0, &UnlearnOptions::eps3, all_unlearn}}) {
    OptionDef d = real(e.key, e.label, e.help, e.def, e.field);
    d.finetune_default = nullptr;
    d.min = 0;
    d.methods = e.methods;
    d.basic = d.slider = true;
    s.push_back(d);
  }
  {
    OptionDef d =
        real("lr", "Learning rate", "AdamW learning rate (linear decay to 0 at the last step)", 2e-6, &UnlearnOptions::lr);
    d.finetune_default = 1e-4;
    d.min = 0;
    d.min_exclusive = true;
    d.basic = true;
    s.push_back(d);
  }
  {
    OptionDef d = integer("steps", "Steps", "optimizer steps", 1000, &UnlearnOptions::max_steps);
    d.finetune_default = 200;
    d.min = 1;
    d.unit = "steps";
    d.basic = true;
    s.push_back(d);
  }
  {
    OptionDef d = integer("batch", "Batch", "sequences per batch (per term)", 2, &UnlearnOptions::batch_size);
    d.min = 1;
    d.unit = "sequences";
    d.basic = true;
    s.push_back(d);
  }
  {
    OptionDef d =
        integer("K", "K random answers", "random normal answers drawn per forget batch for L_rdn", 5, &UnlearnOptions::K);
    d.finetune_default = nullptr;
    d.min = 1;
    d.methods = {Method::Paper, Method::Npo};
    d.basic = true;
    s.push_back(d);
  }
  {
    OptionDef d;
    d.key = "precision";
    d.type = OptionType::Choice;
    d.label = "Precision";
    d.help = "bf16: bf16 compute with fp32 master weights; auto: bf16 where the hardware has native bf16 (a GPU of compute "
             "capability 8+, a CPU with AVX512-BF16 or AMX), else fp32";
    d.unlearn_default = d.finetune_default = "fp32";
    d.choices = {"fp32", "bf16", "auto"};
    d.basic = true;
    d.set = [](UnlearnOptions& o, const io::Json& v) { o.precision = parse_precision(v.get<std::string>()); };
    d.get = [](const UnlearnOptions& o) { return io::Json(precision_name(o.precision)); };
    s.push_back(d);
  }
  {
    OptionDef d;
    d.key = "lora.rank";
    d.type = OptionType::Integer;
    d.label = "LoRA rank";
    d.help = "train LoRA adapters of this rank instead of every parameter (0: full parameters)";
    d.unlearn_default = d.finetune_default = 0;
    d.min = 0;
    d.basic = true;
    d.set = lora_setter(&LoraConfig::rank);
    d.get = lora_getter(&LoraConfig::rank);
    d.zero_means = "off (full parameters)";
    s.push_back(d);
  }
  {
    OptionDef d = integer("warmup", "Warm-up", "linear learning-rate warm-up before the decay", 0, &UnlearnOptions::warmup_steps);
    d.min = 0;
    d.unit = "steps";
    d.zero_means = "none";
    s.push_back(d);
  }
  {
    OptionDef d = real("clip", "Gradient clipping", "clip the gradient norm to this value (0: no clipping, as llm_unlearn)", 0,
                       &UnlearnOptions::max_grad_norm);
    d.min = 0;
    d.zero_means = "off (no clipping)";
    s.push_back(d);
  }
  {
    OptionDef d =
        integer("grad_accum", "Gradient accumulation", "micro-batches per optimizer step", 1, &UnlearnOptions::grad_accum);
    d.min = 1;
    s.push_back(d);
  }
  {
    OptionDef d = real("weight_decay", "Weight decay", "AdamW's decoupled weight decay", 0.01, &UnlearnOptions::weight_decay);
    d.min = 0;
    s.push_back(d);
  }
  {
    OptionDef d;
    d.key = "dropout";
    d.type = OptionType::Switch;
    d.label = "Dropout";
    d.help = "dropout in the trained forward; auto: on in faithful mode and fine-tuning, off in corrected mode (so L_nor is "
             "the true KL)";
    d.unlearn_default = d.finetune_default = "auto";
    d.set = [](UnlearnOptions& o, const io::Json& v) {
      if (v.is_boolean()) o.dropout = v.get<bool>();
      else o.dropout.reset();
    };
    d.get = [](const UnlearnOptions& o) { return o.dropout ? io::Json(*o.dropout) : io::Json("auto"); };
    s.push_back(d);
  }
  {
    OptionDef d = real("stop_forget_ce", "Stop at forget CE", "stop once the forget set's answer cross-entropy exceeds this", 100,
                       &UnlearnOptions::stop_forget_ce);
    d.finetune_default = nullptr;
    d.min = 0;
    d.min_exclusive = true;
    d.aliases = {"--stop-ce"};
    s.push_back(d);
  }
  {
    OptionDef d = real("npo_beta", "NPO β", "NPO's inverse temperature", 0.1, &UnlearnOptions::npo_beta);
    d.finetune_default = nullptr;
    d.min = 0;
    d.min_exclusive = true;
    d.methods = {Method::Npo};
    s.push_back(d);
  }
  struct Hyper {
    const char* key;
    const char* label;
    const char* help;
    double def;
    double UnlearnOptions::*field;
    Method method;
    bool positive;  // > 0 (else >= 0)
  };
  for (const Hyper& h :
       {Hyper{"simnpo_beta", "SimNPO β", "SimNPO's inverse temperature", 4.5, &UnlearnOptions::simnpo_beta, Method::SimNpo, true},
        Hyper{"simnpo_delta", "SimNPO δ", "SimNPO's reward margin (subtracted from the mean answer NLL)", 0.0,
              &UnlearnOptions::simnpo_delta, Method::SimNpo, false},
        Hyper{"dpo_beta", "DPO β", "IdkDPO's inverse temperature", 0.1, &UnlearnOptions::dpo_beta, Method::IdkDpo, true},
        Hyper{"wga_beta", "WGA β", "WGA's exponent on the detached token probability", 1.0, &UnlearnOptions::wga_beta,
              Method::Wga, false},
        Hyper{"satimp_beta1", "SatImp β1", "SatImp's exponent on the token probability (saturation)", 5.0,
              &UnlearnOptions::satimp_beta1, Method::SatImp, false},
        Hyper{"satimp_beta2", "SatImp β2", "SatImp's exponent on one minus the token probability (importance)", 1.0,
              &UnlearnOptions::satimp_beta2, Method::SatImp, false},
        Hyper{"undial_beta", "UNDIAL β", "how far UNDIAL lowers the answer token's logit in the teacher", 10.0,
              &UnlearnOptions::undial_beta, Method::Undial, false},
        Hyper{"rmu.steering", "RMU steering c", "norm of RMU's random control vector", 6.5, &UnlearnOptions::rmu_steering,
              Method::Rmu, true}}) {
    OptionDef d = real(h.key, h.label, h.help, h.def, h.field);
    d.finetune_default = nullptr;
    d.min = 0;
    d.min_exclusive = h.positive;
    d.methods = {h.method};
    s.push_back(d);
  }
  struct Count {
    const char* key;
    const char* label;
    const char* help;
    int64_t def;
    int64_t UnlearnOptions::*field;
    Method method;
    int64_t min;
    const char* unit;
  };
  for (const Count& c : {Count{"ceu_ignore_first", "CE-U skipped tokens", "CE-U leaves each answer's first N tokens out", 1,
                               &UnlearnOptions::ceu_ignore_first, Method::CeU, 0, "tokens"},
                         Count{"rmu.layer", "RMU layer", "the decoder layer (0-based) whose output RMU steers", 7,
                               &UnlearnOptions::rmu_layer, Method::Rmu, 0, ""},
                         Count{"rmu.span", "RMU trained layers", "RMU trains this many layers, ending at its layer", 3,
                               &UnlearnOptions::rmu_span, Method::Rmu, 1, "layers"}}) {
    OptionDef d = integer(c.key, c.label, c.help, c.def, c.field);
    d.finetune_default = nullptr;
    d.min = static_cast<double>(c.min);
    d.unit = c.unit;
    d.methods = {c.method};
    s.push_back(d);
  }
  {
    OptionDef d;
    d.key = "rmu.modules";
    d.type = OptionType::Names;
    d.label = "RMU modules";
    d.help = "what RMU trains in its layers: down_proj (the MLP's output projection in every family) or leaf names";
    d.unlearn_default = io::Json::array({"down_proj"});
    d.methods = {Method::Rmu};
    d.set = [](UnlearnOptions& o, const io::Json& v) { o.rmu_modules = v.get<std::vector<std::string>>(); };
    d.get = [](const UnlearnOptions& o) { return io::Json(o.rmu_modules); };
    s.push_back(d);
  }
  {
    OptionDef d;
    d.key = "lora.alpha";
    d.type = OptionType::Real;
    d.label = "LoRA alpha";
    d.help = "LoRA scaling numerator (the update is scaled by alpha / rank)";
    d.unlearn_default = d.finetune_default = 16.0;
    d.min = 0;
    d.min_exclusive = true;
    d.set = lora_setter(&LoraConfig::alpha);
    d.get = lora_getter(&LoraConfig::alpha);
    s.push_back(d);
  }
  {
    OptionDef d;
    d.key = "lora.dropout";
    d.type = OptionType::Real;
    d.label = "LoRA dropout";
    d.help = "dropout on the LoRA branch's input";
    d.unlearn_default = d.finetune_default = 0.0;
    d.min = 0;
    d.max = 1;
    d.max_exclusive = true;
    d.set = lora_setter(&LoraConfig::dropout);
    d.get = lora_getter(&LoraConfig::dropout);
    s.push_back(d);
  }
  {
    OptionDef d;
    d.key = "lora.targets";
    d.type = OptionType::Names;
    d.label = "LoRA targets";
    d.help = "decoder-layer linears that get adapters (q_proj, v_proj, ... or all-linear); empty: the family's defaults, as PEFT";
    d.unlearn_default = d.finetune_default = io::Json::array();
    d.set = [](UnlearnOptions& o, const io::Json& v) { o.lora.targets = v.get<std::vector<std::string>>(); };
    d.get = [](const UnlearnOptions& o) { return io::Json(o.lora.targets); };
    s.push_back(d);
  }
  {
    OptionDef d = integer("checkpoint_every", "Checkpoint every", "save a resumable checkpoint every N steps (0: none)", 0,
                          &UnlearnOptions::checkpoint_every);
    d.min = 0;
    d.unit = "steps";
    d.zero_means = "off";
    s.push_back(d);
  }
  return s;
}

std::mutex& schema_mutex() {
  static std::mutex m;
  return m;
}
std::deque<OptionDef>& schema_storage() {
  static std::deque<OptionDef> s = [] {
    auto v = builtin_schema();
    return std::deque<OptionDef>(v.begin(), v.end());
  }();
  return s;
}

// Flags the training commands define themselves: an option may not take them.
const char* const kReservedFlags[] = {"--help",          "--model",      "--dtype",          "--device", "--forget",
                                      "--normal",        "--random",     "--data",           "--out",    "--save",
                                      "--prompt-format", "--seed",       "--passage-tokens", "--resume", "--log-json",
                                      "--dump-batches",  "--no-dropout", "--overwrite",      "--idk"};

// Whether every loss weight the method uses is 0 (only paper and npo have the eps2 term).
bool nothing_weighted(const UnlearnOptions& o) {
  const bool eps2_used = o.method == Method::Paper || o.method == Method::Npo;
  return o.eps1 == 0 && o.eps3 == 0 && (!eps2_used || o.eps2 == 0);
}
std::string nothing_weighted_message(const UnlearnOptions& o) {
  if (o.method != Method::Paper && o.method != Method::Npo)
    return std::string("eps1 and eps3 are both 0 (") + method_name(o.method) + " has no eps2 term): nothing would be optimised";
  return "eps1, eps2 and eps3 are all 0: nothing would be optimised";
}

std::vector<std::string> split_key(const std::string& key) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    const size_t dot = key.find('.', start);
    parts.push_back(key.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (dot == std::string::npos) return parts;
    start = dot + 1;
  }
}

}  // namespace

std::string OptionDef::flag() const {
  std::string f = "--" + key;
  for (char& c : f)
    if (c == '.' || c == '_') c = '-';
  return f;
}

bool OptionDef::used_by(Method m) const {
  if (methods.empty()) return true;
  for (Method x : methods)
    if (x == m) return true;
  return false;
}

std::string OptionDef::describe_range() const {
  switch (type) {
    case OptionType::Choice:
      return or_list(choices);
    case OptionType::Switch:
      return "true, false or \"auto\"";
    case OptionType::Names:
      return "module names";
    default:
      break;
  }
  if (min && max)
    return std::string(min_exclusive ? "(" : "[") + number_text(*min) + ", " + number_text(*max) + (max_exclusive ? ")" : "]");
  if (min) {
    if (min_exclusive) return "> " + number_text(*min);
    return type == OptionType::Integer ? "at least " + number_text(*min) : ">= " + number_text(*min);
  }
  if (max) return (max_exclusive ? "< " : "<= ") + number_text(*max);
  return type == OptionType::Integer ? "an integer" : "a number";
}

const std::deque<OptionDef>& option_schema() {
  std::lock_guard<std::mutex> lock(schema_mutex());
  return schema_storage();
}

void register_option(OptionDef def) {
  if (def.key.empty() ||
      def.key.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.") != std::string::npos)
    throw Error("option '" + def.key + "': a key is letters, digits, '_' and '.'");
  if (!def.set || !def.get) throw Error("option '" + def.key + "': needs set and get");
  if (def.unlearn_default.is_null() && def.finetune_default.is_null())
    throw Error("option '" + def.key + "': needs a default for the unlearn or the finetune section");
  for (const auto& d : {def.unlearn_default, def.finetune_default})
    if (!d.is_null())
      if (auto bad = check_value(def, d)) throw Error("option '" + def.key + "': its default " + d.dump() + " " + *bad);
  for (const char* f : kReservedFlags)
    if (def.flag() == f) throw Error("option '" + def.key + "': " + f + " is a flag of the training commands themselves");
  std::lock_guard<std::mutex> lock(schema_mutex());
  for (const auto& d : schema_storage())
    if (d.key == def.key || d.flag() == def.flag()) throw Error("option '" + def.key + "' is already defined");
  schema_storage().push_back(std::move(def));
}

const OptionDef* find_option(const std::string& key) {
  for (const auto& d : option_schema())
    if (d.key == key) return &d;
  return nullptr;
}

std::optional<std::string> check_value(const OptionDef& def, const io::Json& v) {
  switch (def.type) {
    case OptionType::Integer:
      if (!v.is_number_integer()) return "expected an integer, got " + v.dump();
      if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) return "is too large: " + v.dump();
      break;
    case OptionType::Real:
      if (!v.is_number()) return "expected a number, got " + v.dump();
      if (!std::isfinite(v.get<double>())) return "must be finite, got " + v.dump();
      break;
    case OptionType::Choice: {
      if (!v.is_string()) return "expected a string (" + or_list(def.choices) + "), got " + v.dump();
      const auto s = v.get<std::string>();
      for (const auto& c : def.choices)
        if (c == s) return std::nullopt;
      return "expected " + or_list(def.choices) + ", got '" + s + "'";
    }
    case OptionType::Switch:
      if (v.is_boolean() || (v.is_string() && v.get<std::string>() == "auto")) return std::nullopt;
      return "expected true, false or \"auto\", got " + v.dump();
    case OptionType::Names:
      if (!v.is_array()) return "expected an array of module names, got " + v.dump();
      for (const auto& n : v) {
        const std::string s = n.is_string() ? n.get<std::string>() : n.dump();
        if (!n.is_string() || !name_like(s)) return "'" + s + "' is not a module name (e.g. q_proj, or all-linear)";
      }
      return std::nullopt;
  }
  const double x = v.get<double>();
  const bool low = def.min && (def.min_exclusive ? !(x > *def.min) : !(x >= *def.min));
  const bool high = def.max && (def.max_exclusive ? !(x < *def.max) : !(x <= *def.max));
  if (low || high) {
    const std::string range = def.describe_range();
    const bool interval = def.min && def.max;
    return std::string("must be ") + (interval ? "in " : "") + range + ", got " + v.dump();
  }
  return std::nullopt;
}

std::optional<io::Json> parse_text(const OptionDef& def, const std::string& text, std::string* error) {
  auto fail = [&](const std::string& what) -> std::optional<io::Json> {
    if (error) *error = what;
    return std::nullopt;
  };
  switch (def.type) {
    case OptionType::Integer: {
      size_t used = 0;
      try {
        const long long v = std::stoll(text, &used);
        if (used == text.size()) return io::Json(static_cast<int64_t>(v));
      } catch (const std::exception&) {
      }
      return fail("expected an integer, got '" + text + "'");
    }
    case OptionType::Real: {
      size_t used = 0;
      try {
        const double v = std::stod(text, &used);
        if (used == text.size()) return io::Json(v);
      } catch (const std::exception&) {
      }
      return fail("expected a number, got '" + text + "'");
    }
    case OptionType::Choice:
      return io::Json(text);
    case OptionType::Switch:
      if (text == "on" || text == "true") return io::Json(true);
      if (text == "off" || text == "false") return io::Json(false);
      if (text == "auto") return io::Json("auto");
      return fail("expected on, off or auto, got '" + text + "'");
    case OptionType::Names: {
      io::Json a = io::Json::array();
      size_t start = 0;
      while (start <= text.size()) {
        const size_t comma = text.find(',', start);
        std::string part = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        part.erase(0, part.find_first_not_of(" \t"));
        part.erase(part.find_last_not_of(" \t") + 1);
        if (!part.empty()) a.push_back(part);
        if (comma == std::string::npos) break;
        start = comma + 1;
      }
      return a;
    }
  }
  return fail("unreadable value '" + text + "'");
}

UnlearnOptions read_options(const io::Json& section, Section which, const std::string& prefix, std::vector<Problem>& problems,
                            const std::vector<std::string>& also_known) {
  auto where = [&](const std::string& key) { return prefix.empty() ? key : prefix + "." + key; };
  UnlearnOptions o;
  o.method = which == Section::Finetune ? Method::Finetune : Method::Paper;
  const auto& schema = option_schema();
  for (const auto& d : schema)
    if (d.in(which)) d.set(o, d.default_for(which));
  if (!section.is_object()) {
    problems.push_back({prefix, "expected an object, got " + section.dump()});
    return o;
  }
  // Unknown fields: at the top and inside nested objects ("lora").
  std::set<std::string> top(also_known.begin(), also_known.end());
  std::map<std::string, std::set<std::string>> nested;
  for (const auto& d : schema) {
    if (!d.in(which)) continue;
    const auto parts = split_key(d.key);
    top.insert(parts[0]);
    if (parts.size() == 2) nested[parts[0]].insert(parts[1]);
  }
  for (auto it = section.begin(); it != section.end(); ++it) {
    if (!top.count(it.key())) {
      problems.push_back({where(it.key()), "unknown field"});
      continue;
    }
    auto n = nested.find(it.key());
    if (n == nested.end()) continue;
    if (!it.value().is_object()) {
      problems.push_back({where(it.key()), "expected an object"});
      continue;
    }
    for (auto jt = it.value().begin(); jt != it.value().end(); ++jt)
      if (!n->second.count(jt.key())) problems.push_back({where(it.key() + "." + jt.key()), "unknown field"});
  }
  // Each option present: checked, then set.
  for (const auto& d : schema) {
    if (!d.in(which)) continue;
    const auto parts = split_key(d.key);
    const io::Json* v = &section;
    for (const auto& p : parts) {
      if (!v->is_object() || !v->contains(p)) {
        v = nullptr;
        break;
      }
      v = &(*v)[p];
    }
    if (!v) continue;
    if (auto bad = check_value(d, *v)) problems.push_back({where(d.key), *bad});
    else d.set(o, *v);
  }
  // Rules across options.
  if (which == Section::Unlearn && nothing_weighted(o)) problems.push_back({prefix, nothing_weighted_message(o)});
  if (o.max_steps >= 1 && o.warmup_steps >= o.max_steps)
    problems.push_back({where("warmup"), "must be shorter than the run (steps = " + std::to_string(o.max_steps) + "), got " +
                                             std::to_string(o.warmup_steps)});
  return o;
}

io::Json default_section(Section which) {
  io::Json j = io::Json::object();
  for (const auto& d : option_schema()) {
    if (!d.in(which)) continue;
    const auto parts = split_key(d.key);
    io::Json* cur = &j;
    for (size_t i = 0; i + 1 < parts.size(); ++i) cur = &(*cur)[parts[i]];
    (*cur)[parts.back()] = d.default_for(which);
  }
  return j;
}

void UnlearnOptions::validate() const {
  const Section which = method == Method::Finetune ? Section::Finetune : Section::Unlearn;
  for (const auto& d : option_schema()) {
    if (!d.in(which)) continue;
    if (auto bad = check_value(d, d.get(*this))) throw Error(d.key + ": " + *bad);
  }
  if (which == Section::Unlearn && nothing_weighted(*this)) throw Error(nothing_weighted_message(*this));
  const bool classic = method == Method::Paper || method == Method::GradDiff || method == Method::Npo ||
                       method == Method::Finetune;
  if (mode == Mode::Faithful && !classic)
    throw Error(std::string("mode faithful reproduces llm_unlearn's conventions, which ") + method_name(method) +
                " never had: use mode corrected");
  if (method == Method::Rmu && lora.enabled())
    throw Error("rmu trains its layers' modules directly (rmu.modules): set lora.rank to 0");
  if (warmup_steps >= max_steps) throw Error("warmup: must be shorter than the run (steps = " + std::to_string(max_steps) + ")");
  if (checkpoint_every > 0 && checkpoint_dir.empty()) throw Error("checkpoints need a folder");
}

io::Json UnlearnOptions::to_json() const {
  return {{"method", method_name(method)},
          {"mode", mode_name(mode)},
          {"eps1", eps1},
          {"eps2", eps2},
          {"eps3", eps3},
          {"K", K},
          {"lr", lr},
          {"warmup_steps", warmup_steps},
          {"weight_decay", weight_decay},
          {"max_grad_norm", max_grad_norm},
          {"batch_size", batch_size},
          {"grad_accum", grad_accum},
          {"max_steps", max_steps},
          {"stop_forget_ce", stop_forget_ce},
          {"dropout", dropout ? io::Json(*dropout) : io::Json("auto")},
          {"dropout_active", dropout_active()},
          {"seed", seed},
          {"npo_beta", npo_beta},
          {"simnpo_beta", simnpo_beta},
          {"simnpo_delta", simnpo_delta},
          {"dpo_beta", dpo_beta},
          {"wga_beta", wga_beta},
          {"satimp_beta1", satimp_beta1},
          {"satimp_beta2", satimp_beta2},
          {"undial_beta", undial_beta},
          {"ceu_ignore_first", ceu_ignore_first},
          {"rmu", {{"layer", rmu_layer}, {"span", rmu_span}, {"steering", rmu_steering}, {"modules", rmu_modules}}},
          {"precision", precision_name(precision)},
          {"lora", {{"rank", lora.rank}, {"alpha", lora.alpha}, {"dropout", lora.dropout}, {"targets", lora.targets}}}};
}

}  // namespace lethe::unlearn
