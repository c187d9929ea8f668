#include "unlearn/export.h"

#include "model/checkpoint.h"
#include "util/error.h"

namespace lethe::unlearn {
namespace fs = std::filesystem;

void copy_tokenizer_files(const fs::path& from, const fs::path& to) {
  fs::create_directories(to);
  for (const char* name :
       {"vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model",
        "spiece.model", "sentencepiece.model", "added_tokens.json", "generation_config.json", "chat_template.jinja"}) {
    std::error_code ec;
    if (fs::exists(from / name, ec) && !fs::equivalent(from, to, ec))
      fs::copy_file(from / name, to / name, fs::copy_options::overwrite_existing);
  }
}

void export_model(const fs::path& out, model::CausalLMImpl& m, const LoraConfig& lora, SaveKind what,
                  const fs::path& base_model_dir) {
  if (what == SaveKind::None) return;
  if (!lora.enabled() && what != SaveKind::Merged)
    throw Error(std::string("save ") + save_kind_name(what) + " needs LoRA (lora rank > 0)");
  fs::create_directories(out);
  if (lora.enabled() && (what == SaveKind::Adapter || what == SaveKind::Both))
    save_peft_adapter(out / "adapter", m, lora, fs::absolute(base_model_dir).string());
  if (what == SaveKind::Merged || what == SaveKind::Both) {
    merge_lora(m);
    model::save_model(out, m);
    copy_tokenizer_files(base_model_dir, out);
  }
}

}  // namespace lethe::unlearn
