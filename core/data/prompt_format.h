#pragma once
// How a question and its answer become the text a model is trained on and prompted with: the
// paper's template ("### Question: Q\n ### Answer: A", llm_unlearn's), or the model folder's own
// chat template (instruct models: the user turn, then the assistant turn). One object decides it
// for training examples, their answer-only loss positions, generation prompts, evaluation and
// the workbench's token view.
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "text/chat_template.h"
#include "text/tokenizer.h"

namespace lethe::data {

enum class PromptStyle { Paper, Chat };
PromptStyle parse_prompt_style(const std::string& s);  // "paper" | "chat"
const char* prompt_style_name(PromptStyle s);

class PromptFormat {
 public:
  // The paper's template; the tokenizer's conventions add BOS.
  static PromptFormat paper();
  // The chat template of `model_dir` (chat_template.jinja or tokenizer_config.json); its special
  // tokens (bos_token, eos_token, ...) are the tokenizer's. Throws lethe::Error naming the folder
  // when it has no chat template.
  static PromptFormat chat(const std::filesystem::path& model_dir, const text::Tokenizer& tok);
  static PromptFormat from_style(PromptStyle style, const std::filesystem::path& model_dir, const text::Tokenizer& tok);

  PromptStyle style() const { return style_; }
  // The text a model continues to answer `question` (paper: "... ### Answer:"; chat: the user
  // turn and the assistant header).
  std::string prompt(const std::string& question) const;
  // Question and answer as one training text (chat: the assistant turn ends with the template's
  // end of turn). An empty question: the answer alone (a corpus passage).
  std::string text(const std::string& question, const std::string& answer) const;
  // Ids of prompt()/text() as the model sees them: the paper's with the tokenizer's BOS
  // convention, the chat template's as rendered (it writes BOS itself where the model wants it).
  std::vector<int64_t> encode_prompt(const text::Tokenizer& tok, const std::string& question) const;
  std::vector<int64_t> encode_text(const text::Tokenizer& tok, const std::string& question, const std::string& answer) const;
  // The index of the first answer token in encode_text(question, answer): the longest common
  // prefix with the prompt's ids (the prompt's tokens are a prefix of the full text's).
  int64_t answer_start(const text::Tokenizer& tok, const std::string& question, const std::string& answer) const;

 private:
  PromptStyle style_ = PromptStyle::Paper;
  std::shared_ptr<const text::ChatTemplate> template_;
  std::map<std::string, std::string> special_;
};

}  // namespace lethe::data
