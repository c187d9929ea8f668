// Chat templates (text/chat_template.*): the Jinja program a model folder's
// tokenizer_config.json or chat_template.jinja carries. The input is the template; it is parsed
// and rendered over a fixed conversation, with and without the generation prompt.
#include <map>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "text/chat_template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<lethe::text::ChatMessage> conversation = {
      {"system", "Be brief."}, {"user", "Hi \xf0\x9f\x98\x80"}, {"assistant", "Hello."}, {"user", "Bye"}};
  static const std::map<std::string, std::string> specials = {{"bos_token", "<s>"}, {"eos_token", "</s>"}};
  const std::string source(lethe::fuzz::as_text(data, size));
  lethe::fuzz::run_parser("ChatTemplate", [&] {
    auto t = lethe::text::ChatTemplate::parse(source, "chat_template.jinja");
    (void)t.unsupported_features();
    lethe::fuzz::run_parser("render", [&] { (void)t.render(conversation, true, specials); });
    lethe::fuzz::run_parser("render", [&] { (void)t.render(conversation, false, specials); });
  });
  return 0;
}
