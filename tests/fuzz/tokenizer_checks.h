#pragma once
// What the tokenizer harnesses do with a tokenizer the parser accepted: encode texts (a few fixed
// ones with special tokens, Unicode and bytes that are not UTF-8, plus one from the input) and
// decode what came out. Ids must lie inside the vocabulary the tokenizer reports.
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "text/tokenizer.h"

namespace lethe::fuzz {

inline const std::vector<std::string>& fixed_texts() {
  static const std::vector<std::string> texts = {"Hello world",
                                                 "  two  spaces\tand a tab\n",
                                                 "<s></s><pad><unk><|endoftext|><|im_end|>",
                                                 "h\xc3\xa9llo \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80",
                                                 "\xff\xfe\x80 not UTF-8",
                                                 ""};
  return texts;
}

inline void encode_and_decode(const text::Tokenizer& tok, const std::string& text) {
  run_parser("encode/decode", [&] {
    const std::vector<int64_t> ids = tok.encode_for_model(text);
    const int64_t vocab = tok.vocab_size();
    for (int64_t id : ids) {
      if (id < 0 || id >= vocab) std::fprintf(stderr, "fuzz: id %lld, vocab_size %lld\n", (long long)id, (long long)vocab);
      LETHE_FUZZ_CHECK(id >= 0 && id < vocab, "encoded ids lie inside the vocabulary");
    }
    (void)tok.decode(ids);
    (void)tok.decode_text(ids);
  });
}

inline void exercise_tokenizer(const text::Tokenizer& tok, const std::string& input_text) {
  LETHE_FUZZ_CHECK(tok.vocab_size() >= 0, "vocab_size is not negative");
  for (const auto& t : fixed_texts()) encode_and_decode(tok, t);
  encode_and_decode(tok, input_text);
  (void)tok.stop_ids();
  if (tok.vocab_size() > 0) {
    (void)tok.id_to_token(tok.vocab_size() - 1);
    run_parser("decode last id", [&] { (void)tok.decode({tok.vocab_size() - 1}); });
  }
}

}  // namespace lethe::fuzz
