#include "model/opt_config.h"

#include "util/error.h"

namespace lethe::model {

const char* supported_model_types() { return "opt"; }

OptConfig OptConfig::from_json(const io::Json& j, const std::string& src) {
  using namespace io;
  if (!j.is_object()) throw Error(src + ": expected a JSON object");
  if (!j.contains("model_type")) throw Error(src + ": missing field 'model_type'");
  const std::string type = get_string(j, "model_type", src);
  if (type != "opt")
    throw Error(src + ": model_type '" + type + "' is not supported (Lethe supports: " + supported_model_types() + ")");
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

  auto positive = [&](const char* name, int64_t v) {
    if (v <= 0) throw Error(src + ": field '" + name + "' must be positive, got " + std::to_string(v));
  };
  positive("vocab_size", c.vocab_size);
  positive("hidden_size", c.hidden_size);
  positive("num_hidden_layers", c.num_hidden_layers);
  positive("num_attention_heads", c.num_attention_heads);
  positive("ffn_dim", c.ffn_dim);
  positive("max_position_embeddings", c.max_position_embeddings);
  positive("word_embed_proj_dim", c.word_embed_proj_dim);
  if (c.hidden_size % c.num_attention_heads != 0)
    throw Error(src + ": hidden_size " + std::to_string(c.hidden_size) + " is not divisible by num_attention_heads " +
                std::to_string(c.num_attention_heads));
  static const char* kActs[] = {"relu", "gelu", "gelu_new", "gelu_pytorch_tanh", "silu", "swish", "tanh"};
  bool known = false;
  for (const char* a : kActs) known = known || c.activation_function == a;
  if (!known)
    throw Error(src + ": activation_function '" + c.activation_function +
                "' is not supported (relu, gelu, gelu_new, gelu_pytorch_tanh, silu, swish, tanh)");
  return c;
}

io::Json OptConfig::to_json() const {
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
  if (!torch_dtype.empty()) j["torch_dtype"] = torch_dtype;
  return j;
}

}  // namespace lethe::model
