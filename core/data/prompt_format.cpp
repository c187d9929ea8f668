#include "data/prompt_format.h"

#include "data/datasets.h"
#include "util/error.h"

namespace lethe::data {

PromptStyle parse_prompt_style(const std::string& s) {
  if (s == "paper") return PromptStyle::Paper;
  if (s == "chat") return PromptStyle::Chat;
  throw Error("prompt format '" + s + "': expected paper or chat");
}

const char* prompt_style_name(PromptStyle s) { return s == PromptStyle::Chat ? "chat" : "paper"; }

PromptFormat PromptFormat::paper() { return PromptFormat(); }

PromptFormat PromptFormat::chat(const std::filesystem::path& model_dir, const text::Tokenizer& tok) {
  auto t = text::load_chat_template(model_dir);
  if (!t)
    throw Error(model_dir.string() + ": no chat template (chat_template.jinja or tokenizer_config.json 'chat_template'); "
                                     "use the paper's prompt format");
  PromptFormat f;
  f.style_ = PromptStyle::Chat;
  f.template_ = std::make_shared<const text::ChatTemplate>(std::move(*t));
  // Only the tokens the tokenizer has: transformers leaves a missing one undefined.
  for (auto [name, id] : {std::pair{"bos_token", tok.bos_id()}, {"eos_token", tok.eos_id()}, {"pad_token", tok.pad_id()}}) {
    const std::string t = id >= 0 ? tok.id_to_token(id) : std::string();
    if (!t.empty()) f.special_[name] = t;
  }
  return f;
}

PromptFormat PromptFormat::from_style(PromptStyle style, const std::filesystem::path& model_dir, const text::Tokenizer& tok) {
  return style == PromptStyle::Chat ? chat(model_dir, tok) : paper();
}

std::string PromptFormat::prompt(const std::string& question) const {
  if (style_ == PromptStyle::Paper) return "### Question: " + question + "\n ### Answer:";
  return template_->render({{"user", question}}, true, special_);
}

std::string PromptFormat::text(const std::string& question, const std::string& answer) const {
  if (question.empty()) return answer;
  if (style_ == PromptStyle::Paper) return qa_text(question, answer);
  return template_->render({{"user", question}, {"assistant", answer}}, false, special_);
}

std::vector<int64_t> PromptFormat::encode_prompt(const text::Tokenizer& tok, const std::string& question) const {
  return style_ == PromptStyle::Paper ? tok.encode_for_model(prompt(question)) : tok.encode(prompt(question));
}

std::vector<int64_t> PromptFormat::encode_text(const text::Tokenizer& tok, const std::string& question,
                                               const std::string& answer) const {
  if (style_ == PromptStyle::Paper || question.empty()) return tok.encode_for_model(text(question, answer));
  return tok.encode(text(question, answer));
}

int64_t PromptFormat::answer_start(const text::Tokenizer& tok, const std::string& question, const std::string& answer) const {
  if (question.empty()) return 0;
  const auto full = encode_text(tok, question, answer);
  std::vector<int64_t> prefix;
  if (style_ == PromptStyle::Paper) {
    // "... ### Answer:" without the trailing space the full text has before the answer.
    prefix = tok.encode_for_model(qa_text(question, "").substr(0, qa_text(question, "").size() - 1));
  } else {
    prefix = encode_prompt(tok, question);
  }
  size_t n = 0;
  while (n < full.size() && n < prefix.size() && full[n] == prefix[n]) ++n;
  return static_cast<int64_t>(n);
}

}  // namespace lethe::data
