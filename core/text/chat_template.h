#pragma once
// Chat templates: the Jinja2 program an instruct model's folder carries (tokenizer_config.json
// "chat_template", or chat_template.jinja) that turns a conversation into the prompt text the
// model was trained on. This is a torch-free renderer of the Jinja subset chat templates use,
// written to give byte for byte what transformers' apply_chat_template(..., tokenize=False)
// gives: jinja2's ImmutableSandboxedEnvironment with trim_blocks, lstrip_blocks and loopcontrols,
// transformers' raise_exception, tojson, strftime_now, namespace and dict, and Python's semantics
// for the values (str(), repr(), comparisons, arithmetic, Unicode case mapping and whitespace).
//
// Whatever it cannot reproduce exactly it refuses with a lethe::Error instead of rendering
// something else: syntax errors and unknown tags when the template is parsed; Jinja features
// outside the subset (filters such as `sort` or `safe`, tags such as `{% include %}`, integers
// beyond 64 bits) when a render reaches them, so a template whose unsupported parts lie on
// branches a conversation never takes (tool calling, images) still renders.
// unsupported_features() lists them up front. The supported subset and what is refused are
// listed in chat_template.cpp's header comment; tests/fixtures/chat_templates/expected.json,
// written by tests/reference/chat_template_reference.py with transformers, is the reference.
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/error.h"

namespace lethe::text {

struct ChatMessage {
  std::string role;
  std::string content;
};

// raise_exception(message) called by the template. what() is "SOURCE:LINE:COLUMN: MESSAGE";
// template_message() is MESSAGE alone, as transformers' TemplateError carries it.
class ChatTemplateRaised : public Error {
 public:
  ChatTemplateRaised(const std::string& where, std::string message)
      : Error(where + ": " + message), message_(std::move(message)) {}
  const std::string& template_message() const { return message_; }

 private:
  std::string message_;
};

namespace detail {
struct ChatTemplateProgram;
}

class ChatTemplate {
 public:
  // Parses once (a ChatTemplate is immutable; renders may run concurrently). Throws lethe::Error
  // "SOURCE:LINE:COLUMN: what is wrong" for syntax errors, unknown tags and text that is not
  // UTF-8; unknown filters and tests fail when reached, as in jinja.
  static ChatTemplate parse(const std::string& source_text, const std::string& source_name);

  // Renders like transformers' apply_chat_template(messages, tokenize=False,
  // add_generation_prompt=...): variables `messages` (dicts with keys role, content, in that
  // order), `add_generation_prompt`, `tools` and `documents` (none), and each entry of
  // special_tokens (bos_token, eos_token, ... as the tokenizer's special_tokens_map has them).
  // Errors name the source, line and column: lethe::text::ChatTemplateRaised for raise_exception,
  // lethe::Error for everything else (undefined values used, type errors, refused features).
  // An empty conversation is refused, as transformers refuses it.
  std::string render(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                     const std::map<std::string, std::string>& special_tokens) const;

  // The general form: the template's variables are exactly the members of `variables` (a JSON
  // object, key order kept: messages with tool calls, tools, extra keyword arguments...). No
  // transformers preprocessing is applied (it drops message keys whose value is null).
  std::string render_variables(const nlohmann::ordered_json& variables) const;

  // "LINE:COLUMN: filter 'map'"-style notes for each construct the template contains that
  // rendering refuses when reached; empty when every path of the template is supported.
  const std::vector<std::string>& unsupported_features() const;

  const std::string& source_name() const;
  const std::string& source_text() const;

 private:
  std::shared_ptr<const detail::ChatTemplateProgram> program_;
};

// The folder's chat template, found as transformers finds it: chat_template.jinja first (it
// takes priority over the config), else tokenizer_config.json "chat_template" (a string, or a
// list of {name, template} of which "default" is used). std::nullopt when the folder has none.
// Throws lethe::Error naming the file for unreadable files, malformed entries, a template list
// without "default", and templates that do not parse.
std::optional<ChatTemplate> load_chat_template(const std::filesystem::path& model_dir);

}  // namespace lethe::text
