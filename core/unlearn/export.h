#pragma once
// Writing a trained model out as Hugging Face folders.
#include <filesystem>
#include <string>

#include "model/causal_lm.h"
#include "unlearn/lora.h"

namespace lethe::unlearn {

// Copies the tokenizer files of `from` (vocab.json, merges.txt, tokenizer.json, ..., *.model)
// into `to`, so the folder is complete on its own.
void copy_tokenizer_files(const std::filesystem::path& from, const std::filesystem::path& to);

// `what`: Merged (an HF folder with the adapters folded in), Adapter (a PEFT adapter in
// OUT/adapter), Both, or None (writes nothing). Without LoRA only Merged applies. Merging
// modifies `m`.
void export_model(const std::filesystem::path& out, model::CausalLMImpl& m, const LoraConfig& lora, SaveKind what,
                  const std::filesystem::path& base_model_dir);

}  // namespace lethe::unlearn
