#include "model/opt_config.h"

#include <algorithm>
#include <sstream>

#include "util/error.h"

namespace lethe::model {

OptConfig OptConfig::from_json(const io::Json& j, const std::string& src) {
  using namespace io;
  if (!j.is_object()) throw Error(src + ": expected a JSON object");
  if (!j.contains("model_type")) throw Error(src + ": missing field 'model_type'");
  const std::string type = get_string(j, "model_type", src);
  if (type != "opt") throw Error(src + ": model_type '" + type + "' is not OPT");
  OptConfig c;
  c.vocab_size = get_int(j, "vocab_size", c.vocab_size, src);
  c.hidden_size = get_int(j, "hidden_size", c.hidden_size, src);
  c.num_hidden_layers = get_int(j, "num_hidden_layers", c.num_hidden_layers, src);
  c.num_attention_heads = get_int(j, "num_attention_heads", c.num_attention_heads, src);
  c.ffn_dim = get_int(j, "ffn_dim", c.ffn_dim, src);
  c.max_position_embeddings = get_int(j, "max_position_embeddings", c.max_position_embeddings, src);
  c.word_embed_proj_dim = get_int(j, "word_embed_proj_dim", c.hidden_size, src);
  c.do_layer_norm_before = get_bool(j, "do_layer_norm_before", c.do_layer_norm_before, src);
  c.remove_final_layer_norm = get_bool(j, "_remove_final_layer_norm", c.remove_final_layer_norm, src);
  c.enable_bias = get_bool(j, "enable_bias", c.enable_bias, src);
  c.layer_norm_elementwise_affine = get_bool(j, "layer_norm_elementwise_affine", c.layer_norm_elementwise_affine, src);
  c.tie_word_embeddings = get_bool(j, "tie_word_embeddings", c.tie_word_embeddings, src);
  c.activation_function = get_string(j, "activation_function", c.activation_function, src);
  c.dropout = get_number(j, "dropout", c.dropout, src);
  c.attention_dropout = get_number(j, "attention_dropout", c.attention_dropout, src);
  c.pad_token_id = get_int(j, "pad_token_id", c.pad_token_id, src);
  c.bos_token_id = get_int(j, "bos_token_id", c.bos_token_id, src);
  c.eos_token_id = get_int(j, "eos_token_id", c.eos_token_id, src);
  c.torch_dtype = get_string(j, "torch_dtype", "", src);

  require_positive(src, "vocab_size", c.vocab_size);
  require_positive(src, "hidden_size", c.hidden_size);
  require_positive(src, "num_hidden_layers", c.num_hidden_layers);
  require_positive(src, "num_attention_heads", c.num_attention_heads);
  require_positive(src, "ffn_dim", c.ffn_dim);
  require_positive(src, "max_position_embeddings", c.max_position_embeddings);
  require_positive(src, "word_embed_proj_dim", c.word_embed_proj_dim);
  if (c.hidden_size % c.num_attention_heads != 0)
    throw Error(src + ": hidden_size " + std::to_string(c.hidden_size) + " is not divisible by num_attention_heads " +
                std::to_string(c.num_attention_heads));
  require_activation(src, "activation_function", c.activation_function);
  return c;
}

io::Json OptConfig::to_json(const std::string& dtype) const {
  io::Json j = {
      {"model_type", "opt"},
      {"architectures", {"OPTForCausalLM"}},
      {"vocab_size", vocab_size},
      {"hidden_size", hidden_size},
      {"num_hidden_layers", num_hidden_layers},
      {"num_attention_heads", num_attention_heads},
      {"ffn_dim", ffn_dim},
      {"max_position_embeddings", max_position_embeddings},
      {"word_embed_proj_dim", word_embed_proj_dim},
      {"do_layer_norm_before", do_layer_norm_before},
      {"_remove_final_layer_norm", remove_final_layer_norm},
      {"enable_bias", enable_bias},
      {"layer_norm_elementwise_affine", layer_norm_elementwise_affine},
      {"tie_word_embeddings", tie_word_embeddings},
      {"activation_function", activation_function},
      {"dropout", dropout},
      {"attention_dropout", attention_dropout},
      {"pad_token_id", pad_token_id},
      {"bos_token_id", bos_token_id},
      {"eos_token_id", eos_token_id},
  };
  if (!dtype.empty()) j["torch_dtype"] = dtype;
  return j;
}

ModelInfo OptConfig::info() const {
  ModelInfo i;
  i.family = "opt";
  i.architecture = "OPTForCausalLM";
  i.vocab_size = vocab_size;
  i.hidden_size = hidden_size;
  i.output_dim = word_embed_proj_dim;
  i.num_layers = num_hidden_layers;
  i.num_heads = num_attention_heads;
  i.num_kv_heads = num_attention_heads;
  i.head_dim = head_dim();
  i.intermediate_size = ffn_dim;
  i.max_positions = max_position_embeddings;
  i.tied_head = tie_word_embeddings;
  i.bos_id = bos_token_id;
  i.pad_id = pad_token_id;
  i.eos_ids = {eos_token_id};
  i.dropout = std::max(dropout, attention_dropout);
  i.torch_dtype = torch_dtype;
  auto yn = [](bool b) { return std::string(b ? "yes" : "no"); };
  i.attributes = {
      {"positions", "learned (offset 2), from the mask"},
      {"layer norm", std::string(do_layer_norm_before ? "pre-LN" : "post-LN") + ", final LN " + yn(has_final_layer_norm()) +
                         ", affine " + yn(layer_norm_elementwise_affine)},
      {"activation", activation_function},
      {"biases", yn(enable_bias)},
      {"embed proj dim", std::to_string(word_embed_proj_dim) + (has_project() ? " (project_in/out)" : "")},
      {"dropout",
       [&] {
         std::ostringstream o;
         o << dropout;
         return o.str();
       }()},
  };
  return i;
}

int64_t OptConfig::param_count() const {
  const int64_t H = hidden_size, E = word_embed_proj_dim, F = ffn_dim, L = num_hidden_layers;
  const int64_t b = enable_bias ? 1 : 0;
  const int64_t ln = layer_norm_elementwise_affine ? 2 * H : 0;
  int64_t n = vocab_size * E + (max_position_embeddings + 2) * H;  // tokens + learned positions (offset 2)
  if (has_project()) n += 2 * H * E;                               // project_in, project_out (no bias)
  const int64_t layer = 4 * (H * H + b * H) + (H * F + b * F) + (F * H + b * H) + 2 * ln;
  n += L * layer;
  if (has_final_layer_norm()) n += ln;
  if (!tie_word_embeddings) n += vocab_size * E;
  return n;
}

std::vector<LayerLinear> OptConfig::layer_linears() const {
  const int64_t H = hidden_size, F = ffn_dim;
  return {{"q_proj", H, H}, {"k_proj", H, H}, {"v_proj", H, H}, {"out_proj", H, H}, {"fc1", H, F}, {"fc2", F, H}};
}

std::vector<ExpectedTensor> OptConfig::expected_tensors() const {
  using D = std::pair<int64_t, const char*>;
  const D V{vocab_size, "vocab_size"}, H{hidden_size, "hidden_size"}, E{word_embed_proj_dim, "word_embed_proj_dim"},
      F{ffn_dim, "ffn_dim"}, P{max_position_embeddings + 2, "max_position_embeddings+2"};
  std::vector<ExpectedTensor> out;
  auto add = [&](const std::string& name, std::initializer_list<D> dims) {
    ExpectedTensor t{name, {}, {}};
    for (const auto& [n, field] : dims) {
      t.shape.push_back(n);
      t.dims.push_back(field);
    }
    out.push_back(std::move(t));
  };
  auto linear = [&](const std::string& name, D in, D o, bool bias) {
    add(name + ".weight", {o, in});
    if (bias) add(name + ".bias", {o});
  };
  auto layer_norm = [&](const std::string& name) {
    if (!layer_norm_elementwise_affine) return;
    add(name + ".weight", {H});
    add(name + ".bias", {H});
  };
  const std::string d = "model.decoder.";
  add(d + "embed_tokens.weight", {V, E});
  add(d + "embed_positions.weight", {P, H});
  if (has_project()) {
    linear(d + "project_out", H, E, false);
    linear(d + "project_in", E, H, false);
  }
  if (has_final_layer_norm()) layer_norm(d + "final_layer_norm");
  for (int64_t i = 0; i < num_hidden_layers; ++i) {
    const std::string l = d + "layers." + std::to_string(i) + ".";
    for (const char* proj : {"k_proj", "v_proj", "q_proj", "out_proj"}) linear(l + "self_attn." + proj, H, H, enable_bias);
    layer_norm(l + "self_attn_layer_norm");
    linear(l + "fc1", H, F, enable_bias);
    linear(l + "fc2", F, H, enable_bias);
    layer_norm(l + "final_layer_norm");
  }
  if (!tie_word_embeddings) linear("lm_head", E, V, false);
  return out;
}

std::string OptConfig::canonical_key(const std::string& k) const {
  if (k.rfind("decoder.", 0) == 0) return "model." + k;
  return k;
}

}  // namespace lethe::model
