#pragma once
// A test double for text::Tokenizer whose text is space-separated integer ids: "2 5 9" <->
// {2, 5, 9}. It lets generation tests use reference models with tiny vocabularies.
#include <sstream>

#include "text/tokenizer.h"

namespace lethe::testing {

class IdTokenizer : public text::Tokenizer {
 public:
  IdTokenizer(int64_t vocab, int64_t eos = 2, int64_t pad = 1) : vocab_(vocab), eos_(eos), pad_(pad) {}
  std::vector<int64_t> encode(const std::string& text) const override {
    std::istringstream in(text);
    std::vector<int64_t> ids;
    int64_t x;
    while (in >> x) ids.push_back(x);
    return ids;
  }
  std::string decode(const std::vector<int64_t>& ids) const override {
    std::string s;
    for (int64_t id : ids) s += " " + std::to_string(id);
    return s;
  }
  int64_t vocab_size() const override { return vocab_; }
  int64_t bos_id() const override { return -1; }
  int64_t eos_id() const override { return eos_; }
  int64_t pad_id() const override { return pad_; }
  bool is_special(int64_t id) const override { return id == pad_ || id == eos_; }
  void set_eos(int64_t e) { eos_ = e; }

 private:
  int64_t vocab_, eos_, pad_;
};

}  // namespace lethe::testing
