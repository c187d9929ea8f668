#include "model/llama_config.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "util/error.h"

namespace lethe::model {

namespace {

std::string fmt(double v) {
  std::ostringstream o;
  o << v;
  return o.str();
}

std::vector<double> number_list(const io::Json& obj, const std::string& key, const std::string& src) {
  std::vector<double> out;
  if (!obj.contains(key) || obj[key].is_null()) return out;
  if (!obj[key].is_array()) throw Error(src + ": field '" + key + "' must be a list of numbers");
  for (const auto& v : obj[key]) {
    if (!v.is_number()) throw Error(src + ": field '" + key + "' must be a list of numbers, got " + v.dump());
    out.push_back(v.get<double>());
  }
  return out;
}

// eos_token_id: an integer or a list of integers (Llama-3 lists several).
std::vector<int64_t> id_list(const io::Json& j, const std::string& key, std::vector<int64_t> fallback, const std::string& src) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  const io::Json& v = j[key];
  if (v.is_number_integer()) return {v.get<int64_t>()};
  if (!v.is_array()) throw Error(src + ": field '" + key + "' must be an integer or a list of integers, got " + v.dump());
  std::vector<int64_t> out;
  for (const auto& e : v) {
    if (!e.is_number_integer()) throw Error(src + ": field '" + key + "' must be a list of integers, got " + v.dump());
    out.push_back(e.get<int64_t>());
  }
  return out;
}

// The rope settings from either form; `where` names the object in messages.
RopeConfig parse_rope(const io::Json& j, const std::string& src, int64_t max_pos) {
  RopeConfig r;
  r.max_position_embeddings = max_pos;
  io::Json params = io::Json::object();
  std::string where = src;
  if (j.contains("rope_parameters") && !j["rope_parameters"].is_null()) {
    if (!j["rope_parameters"].is_object()) throw Error(src + ": field 'rope_parameters' must be an object");
    params = j["rope_parameters"];
    where = src + ": rope_parameters";
  } else if (j.contains("rope_scaling") && !j["rope_scaling"].is_null()) {
    if (!j["rope_scaling"].is_object()) throw Error(src + ": field 'rope_scaling' must be an object or null");
    params = j["rope_scaling"];
    where = src + ": rope_scaling";
  }
  r.theta = io::get_number(params, "rope_theta", io::get_number(j, "rope_theta", 10000.0, src), where);
  r.partial_rotary_factor =
      io::get_number(params, "partial_rotary_factor", io::get_number(j, "partial_rotary_factor", 1.0, src), where);
  if (params.contains("rope_type")) r.type = io::get_string(params, "rope_type", where);
  else if (params.contains("type")) r.type = io::get_string(params, "type", where);
  // transformers reads "su" as longrope (Phi-3's first configs) and "yarn"/"longrope" variants.
  if (r.type == "su") r.type = "longrope";
  static const char* kTypes[] = {"default", "linear", "dynamic", "llama3", "yarn", "longrope"};
  bool known = false;
  for (const char* t : kTypes) known = known || r.type == t;
  if (!known)
    throw Error(where + ": rope type '" + r.type + "' is not supported (default, linear, dynamic, llama3, yarn, longrope)");
  r.factor = io::get_number(params, "factor", 1.0, where);
  r.original_max_position_embeddings = io::get_int(params, "original_max_position_embeddings",
                                                   io::get_int(j, "original_max_position_embeddings", max_pos, src), where);
  r.low_freq_factor = io::get_number(params, "low_freq_factor", 1.0, where);
  r.high_freq_factor = io::get_number(params, "high_freq_factor", 4.0, where);
  r.beta_fast = io::get_number(params, "beta_fast", 32.0, where);
  r.beta_slow = io::get_number(params, "beta_slow", 1.0, where);
  r.mscale = io::get_number(params, "mscale", 0.0, where);
  r.mscale_all_dim = io::get_number(params, "mscale_all_dim", 0.0, where);
  r.truncate = io::get_bool(params, "truncate", true, where);
  r.attention_factor = io::get_number(params, "attention_factor", -1.0, where);
  r.short_factor = number_list(params, "short_factor", where);
  r.long_factor = number_list(params, "long_factor", where);

  if (!(r.theta > 0)) throw Error(where + ": rope_theta must be > 0, got " + fmt(r.theta));
  if (!(r.partial_rotary_factor > 0 && r.partial_rotary_factor <= 1))
    throw Error(where + ": partial_rotary_factor must be in (0, 1], got " + fmt(r.partial_rotary_factor));
  const bool needs_factor = r.type == "linear" || r.type == "dynamic" || r.type == "llama3" || r.type == "yarn";
  if (needs_factor && !(r.factor >= 1)) throw Error(where + ": rope " + r.type + " needs 'factor' >= 1, got " + fmt(r.factor));
  if (r.type == "llama3") {
    if (!params.contains("original_max_position_embeddings"))
      throw Error(where + ": rope llama3 needs 'original_max_position_embeddings'");
    if (!(r.high_freq_factor > r.low_freq_factor)) throw Error(where + ": rope llama3 needs high_freq_factor > low_freq_factor");
  }
  if (r.original_max_position_embeddings <= 0) throw Error(where + ": original_max_position_embeddings must be positive");
  return r;
}

}  // namespace

int64_t RopeConfig::rotary_dim(int64_t head_dim) const {
  return static_cast<int64_t>(static_cast<double>(head_dim) * partial_rotary_factor);
}

std::string RopeConfig::describe() const {
  std::string s = type;
  if (type != "default" && type != "longrope") s += " factor " + fmt(factor);
  s += " (theta " + fmt(theta);
  if (type == "llama3" || type == "yarn" || type == "longrope")
    s += ", original " + std::to_string(original_max_position_embeddings);
  if (partial_rotary_factor != 1) s += ", rotary fraction " + fmt(partial_rotary_factor);
  return s + ")";
}

bool is_llama_like(const std::string& t) { return t == "llama" || t == "mistral" || t == "qwen2" || t == "phi3" || t == "gemma"; }

LlamaConfig LlamaConfig::from_json(const io::Json& j, const std::string& src) {
  using namespace io;
  if (!j.is_object()) throw Error(src + ": expected a JSON object");
  LlamaConfig c;
  c.model_type = get_string(j, "model_type", src);
  if (!is_llama_like(c.model_type)) throw Error(src + ": model_type '" + c.model_type + "' is not a Llama-family model");
  const std::string& t = c.model_type;
  c.raw = j;
  // Family defaults, as each transformers configuration class has them.
  if (t == "mistral") {
    c.intermediate_size = 14336;
    c.num_key_value_heads = 8;
    c.max_position_embeddings = 4096 * 32;
    c.sliding_window = 4096;
    c.rms_norm_eps = 1e-6;
  } else if (t == "qwen2") {
    c.vocab_size = 151936;
    c.intermediate_size = 22016;
    c.max_position_embeddings = 32768;
    c.sliding_window = 4096;
  } else if (t == "phi3") {
    c.vocab_size = 32064;
    c.hidden_size = 3072;
    c.intermediate_size = 8192;
    c.max_position_embeddings = 4096;
    c.rms_norm_eps = 1e-5;
    c.bos_token_id = 1;
    c.eos_token_ids = {32000};
    c.pad_token_id = 32000;
  } else if (t == "gemma") {
    c.vocab_size = 256000;
    c.hidden_size = 3072;
    c.intermediate_size = 24576;
    c.num_hidden_layers = 28;
    c.num_attention_heads = 16;
    c.num_key_value_heads = 16;
    c.max_position_embeddings = 8192;
    c.hidden_act = "gelu_pytorch_tanh";
    c.tie_word_embeddings = true;
    c.bos_token_id = 2;
    c.eos_token_ids = {1};
    c.pad_token_id = 0;
  } else if (t == "llama") {
    c.rms_norm_eps = 1e-6;
  }
  c.vocab_size = get_int(j, "vocab_size", c.vocab_size, src);
  c.hidden_size = get_int(j, "hidden_size", c.hidden_size, src);
  c.intermediate_size = get_int(j, "intermediate_size", c.intermediate_size, src);
  c.num_hidden_layers = get_int(j, "num_hidden_layers", c.num_hidden_layers, src);
  c.num_attention_heads = get_int(j, "num_attention_heads", c.num_attention_heads, src);
  c.num_key_value_heads = get_int(j, "num_key_value_heads", c.num_attention_heads, src);
  require_positive(src, "num_attention_heads", c.num_attention_heads);
  require_positive(src, "num_hidden_layers", c.num_hidden_layers);  // before per-layer tables are sized
  if ((!j.contains("head_dim") || j["head_dim"].is_null()) && c.hidden_size % c.num_attention_heads != 0)
    throw Error(src + ": hidden_size " + std::to_string(c.hidden_size) + " is not divisible by num_attention_heads " +
                std::to_string(c.num_attention_heads) + " (and there is no head_dim)");
  c.head_dim = get_int(j, "head_dim", c.hidden_size / c.num_attention_heads, src);
  c.max_position_embeddings = get_int(j, "max_position_embeddings", c.max_position_embeddings, src);
  c.rms_norm_eps = get_number(j, "rms_norm_eps", c.rms_norm_eps, src);
  if (t == "gemma") {
    c.hidden_act = get_string(j, "hidden_activation", get_string(j, "hidden_act", c.hidden_act, src), src);
    if (c.hidden_act == "gelu") c.hidden_act = "gelu_pytorch_tanh";  // transformers runs Gemma's "gelu" as the tanh form
  } else {
    c.hidden_act = get_string(j, "hidden_act", c.hidden_act, src);
  }
  c.tie_word_embeddings = get_bool(j, "tie_word_embeddings", c.tie_word_embeddings, src);
  if (t == "qwen2") {
    c.qkv_bias = true;
    c.o_bias = false;
  } else {
    c.qkv_bias = c.o_bias = get_bool(j, "attention_bias", false, src);
  }
  c.mlp_bias = get_bool(j, "mlp_bias", false, src);
  c.fused_projections = t == "phi3";
  c.gemma_norm = c.scale_embeddings = t == "gemma";
  c.attention_dropout = get_number(j, "attention_dropout", 0.0, src);
  if (t == "phi3") {
    c.resid_pdrop = get_number(j, "resid_pdrop", 0.0, src);
    c.embd_pdrop = get_number(j, "embd_pdrop", 0.0, src);
  }
  // Sliding window: mistral and phi3 when the field is set; qwen2 only with use_sliding_window.
  c.layer_slides.assign(static_cast<size_t>(std::max<int64_t>(c.num_hidden_layers, 0)), false);
  if (t == "mistral" || t == "phi3") {
    c.sliding_window = get_int(j, "sliding_window", t == "mistral" ? c.sliding_window : 0, src);
    c.layer_slides.assign(c.layer_slides.size(), c.sliding_window > 0);
  } else if (t == "qwen2") {
    const bool use = get_bool(j, "use_sliding_window", false, src);
    c.sliding_window = use ? get_int(j, "sliding_window", c.sliding_window, src) : 0;
    const int64_t from = get_int(j, "max_window_layers", c.num_hidden_layers, src);
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) c.layer_slides[static_cast<size_t>(i)] = c.sliding_window > 0 && i >= from;
  } else {
    c.sliding_window = 0;
  }
  if (c.sliding_window > 0 && j.contains("layer_types") && j["layer_types"].is_array()) {
    const auto& lt = j["layer_types"];
    if (static_cast<int64_t>(lt.size()) != c.num_hidden_layers)
      throw Error(src + ": layer_types has " + std::to_string(lt.size()) + " entries for " + std::to_string(c.num_hidden_layers) +
                  " layers");
    for (size_t i = 0; i < lt.size(); ++i) {
      const std::string kind = lt[i].is_string() ? lt[i].get<std::string>() : "";
      if (kind != "sliding_attention" && kind != "full_attention")
        throw Error(src + ": layer_types[" + std::to_string(i) + "] must be \"sliding_attention\" or \"full_attention\"");
      c.layer_slides[i] = kind == "sliding_attention";
    }
  }
  c.rope = parse_rope(j, src, c.max_position_embeddings);
  c.bos_token_id = get_int(j, "bos_token_id", c.bos_token_id, src);
  c.pad_token_id = get_int(j, "pad_token_id", c.pad_token_id, src);
  c.eos_token_ids = id_list(j, "eos_token_id", c.eos_token_ids, src);
  c.torch_dtype = get_string(j, "torch_dtype", get_string(j, "dtype", "", src), src);

  require_positive(src, "vocab_size", c.vocab_size);
  require_positive(src, "hidden_size", c.hidden_size);
  require_positive(src, "intermediate_size", c.intermediate_size);
  require_positive(src, "num_hidden_layers", c.num_hidden_layers);
  require_positive(src, "num_key_value_heads", c.num_key_value_heads);
  require_positive(src, "head_dim", c.head_dim);
  require_positive(src, "max_position_embeddings", c.max_position_embeddings);
  if (c.sliding_window < 0) throw Error(src + ": field 'sliding_window' must be >= 0 or null");
  if (c.num_attention_heads % c.num_key_value_heads != 0)
    throw Error(src + ": num_attention_heads " + std::to_string(c.num_attention_heads) +
                " is not a multiple of num_key_value_heads " + std::to_string(c.num_key_value_heads));
  if (!(c.rms_norm_eps > 0)) throw Error(src + ": field 'rms_norm_eps' must be > 0");
  const int64_t rot = c.rope.rotary_dim(c.head_dim);
  if (rot <= 0 || rot % 2 != 0)
    throw Error(src + ": the rotary dimension (head_dim " + std::to_string(c.head_dim) + " x partial_rotary_factor) is " +
                std::to_string(rot) + "; it must be even and positive");
  if (c.rope.type == "longrope") {
    const size_t half = static_cast<size_t>(rot / 2);
    if (c.rope.short_factor.size() != half || c.rope.long_factor.size() != half)
      throw Error(src + ": rope longrope needs short_factor and long_factor of length " + std::to_string(half) +
                  " (rotary dim / 2), got " + std::to_string(c.rope.short_factor.size()) + " and " +
                  std::to_string(c.rope.long_factor.size()));
  }
  require_activation(src, t == "gemma" ? "hidden_activation" : "hidden_act", c.hidden_act);
  for (int64_t e : c.eos_token_ids)
    if (e < 0 || e >= c.vocab_size)
      throw Error(src + ": eos_token_id " + std::to_string(e) + " is outside the vocabulary (" + std::to_string(c.vocab_size) +
                  ")");
  return c;
}

std::string LlamaConfig::architecture() const {
  if (model_type == "mistral") return "MistralForCausalLM";
  if (model_type == "qwen2") return "Qwen2ForCausalLM";
  if (model_type == "phi3") return "Phi3ForCausalLM";
  if (model_type == "gemma") return "GemmaForCausalLM";
  return "LlamaForCausalLM";
}

std::string LlamaConfig::classifier_architecture() const {
  std::string a = architecture();
  return a.substr(0, a.size() - std::string("ForCausalLM").size()) + "ForSequenceClassification";
}

ModelInfo LlamaConfig::info() const {
  ModelInfo i;
  i.family = model_type;
  i.architecture = architecture();
  i.vocab_size = vocab_size;
  i.hidden_size = hidden_size;
  i.output_dim = hidden_size;
  i.num_layers = num_hidden_layers;
  i.num_heads = num_attention_heads;
  i.num_kv_heads = num_key_value_heads;
  i.head_dim = head_dim;
  i.intermediate_size = intermediate_size;
  i.max_positions = max_position_embeddings;
  i.tied_head = tie_word_embeddings;
  i.bos_id = bos_token_id;
  i.pad_id = pad_token_id;
  i.eos_ids = eos_token_ids;
  i.dropout = std::max({attention_dropout, resid_pdrop, embd_pdrop});
  i.torch_dtype = torch_dtype;
  auto yn = [](bool b) { return std::string(b ? "yes" : "no"); };
  i.attributes.emplace_back("attention", num_key_value_heads < num_attention_heads
                                             ? "grouped-query, " + std::to_string(num_key_value_heads) + " kv heads"
                                             : std::string("multi-head"));
  i.attributes.emplace_back("rope", rope.describe());
  i.attributes.emplace_back("norm", std::string(gemma_norm ? "RMSNorm x(1+w), fp32" : "RMSNorm") + ", eps " + fmt(rms_norm_eps));
  i.attributes.emplace_back("mlp", std::string(fused_projections ? "gated (gate_up_proj), " : "gated, ") + hidden_act);
  i.attributes.emplace_back("biases", "qkv " + yn(qkv_bias) + ", o " + yn(o_bias) + ", mlp " + yn(mlp_bias));
  if (sliding_window > 0) i.attributes.emplace_back("sliding window", std::to_string(sliding_window));
  if (scale_embeddings) i.attributes.emplace_back("embeddings", "scaled by sqrt(hidden)");
  return i;
}

io::Json LlamaConfig::to_json(const std::string& dtype) const {
  io::Json j = raw;
  if (j.empty()) throw Error("LlamaConfig::to_json: the config was not read from config.json");
  if (!dtype.empty()) {
    if (j.contains("dtype") && !j.contains("torch_dtype")) j["dtype"] = dtype;
    else j["torch_dtype"] = dtype;
  }
  if (!j.contains("architectures")) j["architectures"] = {architecture()};
  return j;
}

std::vector<LayerLinear> LlamaConfig::layer_linears() const {
  const int64_t H = hidden_size, I = intermediate_size, q = num_attention_heads * head_dim, kv = num_key_value_heads * head_dim;
  if (fused_projections) return {{"qkv_proj", H, q + 2 * kv}, {"o_proj", q, H}, {"gate_up_proj", H, 2 * I}, {"down_proj", I, H}};
  return {{"q_proj", H, q},    {"k_proj", H, kv}, {"v_proj", H, kv},  {"o_proj", q, H},
          {"gate_proj", H, I}, {"up_proj", H, I}, {"down_proj", I, H}};
}

std::vector<ExpectedTensor> LlamaConfig::expected_tensors() const {
  using D = std::pair<int64_t, std::string>;
  const int64_t q = num_attention_heads * head_dim, kv = num_key_value_heads * head_dim;
  const D V{vocab_size, "vocab_size"}, H{hidden_size, "hidden_size"}, I{intermediate_size, "intermediate_size"},
      Q{q, "num_attention_heads*head_dim"}, KV{kv, "num_key_value_heads*head_dim"},
      QKV{q + 2 * kv, "(num_attention_heads+2*num_key_value_heads)*head_dim"}, I2{2 * intermediate_size, "2*intermediate_size"};
  std::vector<ExpectedTensor> out;
  auto add = [&](const std::string& name, std::vector<D> dims) {
    ExpectedTensor t{name, {}, {}};
    for (auto& [n, field] : dims) {
      t.shape.push_back(n);
      t.dims.push_back(std::move(field));
    }
    out.push_back(std::move(t));
  };
  auto linear = [&](const std::string& name, const D& in, const D& o, bool bias) {
    add(name + ".weight", {o, in});
    if (bias) add(name + ".bias", {o});
  };
  add("model.embed_tokens.weight", {V, H});
  for (int64_t i = 0; i < num_hidden_layers; ++i) {
    const std::string l = "model.layers." + std::to_string(i) + ".";
    if (fused_projections) {
      linear(l + "self_attn.qkv_proj", H, QKV, qkv_bias);
    } else {
      linear(l + "self_attn.q_proj", H, Q, qkv_bias);
      linear(l + "self_attn.k_proj", H, KV, qkv_bias);
      linear(l + "self_attn.v_proj", H, KV, qkv_bias);
    }
    linear(l + "self_attn.o_proj", Q, H, o_bias);
    if (fused_projections) {
      linear(l + "mlp.gate_up_proj", H, I2, mlp_bias);
    } else {
      linear(l + "mlp.gate_proj", H, I, mlp_bias);
      linear(l + "mlp.up_proj", H, I, mlp_bias);
    }
    linear(l + "mlp.down_proj", I, H, mlp_bias);
    add(l + "input_layernorm.weight", {H});
    add(l + "post_attention_layernorm.weight", {H});
  }
  add("model.norm.weight", {H});
  if (!tie_word_embeddings) linear("lm_head", H, V, false);
  return out;
}

std::vector<std::string> LlamaConfig::default_lora_targets() const {
  // PEFT's defaults (TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING).
  if (fused_projections) return {"qkv_proj"};
  return {"q_proj", "v_proj"};
}

int64_t LlamaConfig::param_count() const {
  const int64_t H = hidden_size, I = intermediate_size, q = num_attention_heads * head_dim, kv = num_key_value_heads * head_dim;
  int64_t layer = H * (q + 2 * kv) + q * H + 3 * H * I + 2 * H;  // attention, MLP, two norms
  if (qkv_bias) layer += q + 2 * kv;
  if (o_bias) layer += H;
  if (mlp_bias) layer += 2 * I + H;
  int64_t n = vocab_size * H + num_hidden_layers * layer + H;  // embeddings, layers, final norm
  if (!tie_word_embeddings) n += vocab_size * H;
  return n;
}

}  // namespace lethe::model
