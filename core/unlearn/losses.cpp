#include "unlearn/losses.h"

#include <ATen/ATen.h>

#include "data/datasets.h"
#include "util/error.h"

namespace lethe::unlearn {

std::string qa_text(const std::string& prompt, const std::string& response) { return data::qa_text(prompt, response); }

namespace {
int64_t common_prefix(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  size_t n = 0;
  while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
  return static_cast<int64_t>(n);
}
}  // namespace

Example make_qa_example(const text::Tokenizer& tok, const std::string& prompt, const std::string& response, Mode m,
                        const data::PromptFormat& format) {
  Example e;
  if (format.style() == data::PromptStyle::Chat) {
    if (m == Mode::Faithful)
      throw Error("faithful mode reproduces llm_unlearn's '### Question: ... ### Answer:' template; the chat prompt format "
                  "needs corrected mode");
    e.ids = format.encode_text(tok, prompt, response);
    e.start = format.answer_start(tok, prompt, response);
    return e;
  }
  e.ids = tok.encode_for_model(qa_text(prompt, response));
  if (m == Mode::Faithful) {
    e.start = static_cast<int64_t>(tok.encode_for_model(qa_text(prompt, "")).size()) - 1;
  } else {
    std::string prefix = qa_text(prompt, "");
    prefix.pop_back();  // "... ### Answer:" — its tokens are a prefix of the full text's
    e.start = common_prefix(e.ids, tok.encode_for_model(prefix));
  }
  return e;
}

namespace {
// transformers' clean_up_tokenization (on by default in decode when llm_unlearn was written).
std::string clean_up_tokenization(std::string s) {
  const std::pair<const char*, const char*> rules[] = {{" .", "."},     {" ?", "?"},     {" !", "!"},   {" ,", ","},
                                                       {" ' ", "'"},    {" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"},
                                                       {" 've", "'ve"}, {" 're", "'re"}};
  for (const auto& [from, to] : rules) {
    std::string out;
    const std::string f = from;
    size_t i = 0;
    while (true) {
      size_t at = s.find(f, i);
      if (at == std::string::npos) break;
      out.append(s, i, at - i);
      out += to;
      i = at + f.size();
    }
    out.append(s, i, std::string::npos);
    s = out;
  }
  return s;
}
}  // namespace

std::string recover_question(const text::Tokenizer& tok, const std::vector<int64_t>& ids) {
  const std::string text = clean_up_tokenization(tok.decode(ids));
  // split("###")[1]
  size_t a = text.find("###");
  if (a == std::string::npos) return data::py_strip(text);  // Python would raise IndexError; keep the text
  size_t b = text.find("###", a + 3);
  std::string part = text.substr(a + 3, b == std::string::npos ? std::string::npos : b - a - 3);
  // .split("Question:")[-1]
  size_t q = part.rfind("Question:");
  if (q != std::string::npos) part = part.substr(q + 9);
  return data::py_strip(part);
}

Example make_random_example(const text::Tokenizer& tok, const std::string& question, const std::string& answer, Mode m,
                            const data::PromptFormat& format) {
  if (m == Mode::Corrected || format.style() == data::PromptStyle::Chat) return make_qa_example(tok, question, answer, m, format);
  Example e;
  e.ids = tok.encode_for_model(qa_text(question, answer));
  e.start = 2;  // len(BatchEncoding) = its two keys
  return e;
}

std::vector<bool> loss_targets(const Example& e, Mode m) {
  std::vector<bool> t(e.ids.size(), false);
  const int64_t first = m == Mode::Faithful ? e.start + 1 : e.start;
  for (int64_t i = std::max<int64_t>(first, 1); i < static_cast<int64_t>(e.ids.size()); ++i) t[static_cast<size_t>(i)] = true;
  return t;
}

int64_t batch_pad_id(const text::Tokenizer& tok) {
  if (tok.pad_id() >= 0) return tok.pad_id();
  if (tok.eos_id() >= 0) return tok.eos_id();
  return 0;
}

TokenBatch collate(const std::vector<Example>& ex, int64_t pad_id, const at::Device& device) {
  if (ex.empty()) throw Error("empty batch");
  int64_t T = 0;
  for (const auto& e : ex) T = std::max<int64_t>(T, static_cast<int64_t>(e.ids.size()));
  const int64_t B = static_cast<int64_t>(ex.size());
  // Built once on the host; for a GPU in pinned memory, so that the three copies run without
  // blocking the host (the caching host allocator keeps the buffers until the copies finish).
  const bool to_gpu = device.is_cuda();
  const auto opts = at::TensorOptions().dtype(at::kLong).pinned_memory(to_gpu);
  at::Tensor ids = at::full({B, T}, pad_id, opts), mask = at::zeros({B, T}, opts), start = at::empty({B}, opts);
  auto* ip = ids.data_ptr<int64_t>();
  auto* mp = mask.data_ptr<int64_t>();
  auto* sp = start.data_ptr<int64_t>();
  TokenBatch b;
  for (int64_t i = 0; i < B; ++i) {
    const auto& e = ex[static_cast<size_t>(i)];
    for (size_t t = 0; t < e.ids.size(); ++t) {
      ip[i * T + static_cast<int64_t>(t)] = e.ids[t];
      mp[i * T + static_cast<int64_t>(t)] = 1;
    }
    sp[i] = e.start;
    b.tokens += static_cast<int64_t>(e.ids.size());
  }
  b.ids = ids.to(device, /*non_blocking=*/to_gpu);
  b.mask = mask.to(device, /*non_blocking=*/to_gpu);
  b.start = start.to(device, /*non_blocking=*/to_gpu);
  return b;
}

namespace {
// Loss arithmetic in fp32 at least (bf16/fp16 logits are upcast; fp64 stays, for gradient checks).
at::Tensor wide(const at::Tensor& t) { return t.scalar_type() == at::kDouble ? t : t.to(at::kFloat); }

// Per-position cross-entropy of predicting ids[:, t+1] from position t: (B, T-1), fp32;
// positions whose label is ignored give 0.
at::Tensor position_ce(const at::Tensor& logits, const at::Tensor& labels_next) {
  const int64_t B = logits.size(0), T = logits.size(1), V = logits.size(2);
  at::Tensor l = wide(logits.narrow(1, 0, T - 1)).reshape({B * (T - 1), V});
  return at::cross_entropy_loss(l, labels_next.reshape({B * (T - 1)}), {}, at::Reduction::None, -100).view({B, T - 1});
}
}  // namespace

at::Tensor loss_answer(const at::Tensor& logits, const TokenBatch& b, Mode m, int64_t pad_id) {
  const int64_t T = b.ids.size(1);
  at::Tensor pos = at::arange(T, b.ids.options()).unsqueeze(0);  // (1, T)
  if (m == Mode::Faithful) {
    // Labels are the ids with -100 where the id is the pad id (DataCollatorForLanguageModeling).
    at::Tensor labels = b.ids.masked_fill(b.ids == pad_id, -100).narrow(1, 1, T - 1);
    at::Tensor pl = position_ce(logits, labels);                                              // (B, T-1)
    at::Tensor w = ((pos >= b.start.unsqueeze(1)) & (b.ids != pad_id)).to(pl.scalar_type());  // (B, T)
    at::Tensor s = w.sum(1, true);
    w = at::where(s > 0, w / s.clamp_min(1), w);
    return (w.narrow(1, 0, T - 1) * pl).sum(1).mean();
  }
  at::Tensor labels = b.ids.masked_fill(b.mask == 0, -100).narrow(1, 1, T - 1);
  at::Tensor pl = position_ce(logits, labels);  // (B, T-1)
  // Target t (predicted from t-1) counts when t >= start and token t is real.
  at::Tensor tgt = ((pos >= b.start.unsqueeze(1)) & (b.mask == 1)).narrow(1, 1, T - 1).to(pl.scalar_type());
  at::Tensor n = tgt.sum(1);  // (B)
  at::Tensor per_sample = (tgt * pl).sum(1) / n.clamp_min(1);
  at::Tensor has = (n > 0).to(pl.scalar_type());
  return (per_sample * has).sum() / has.sum().clamp_min(1);
}

at::Tensor answer_logprob(const at::Tensor& logits, const TokenBatch& b) {
  const int64_t T = b.ids.size(1);
  at::Tensor pos = at::arange(T, b.ids.options()).unsqueeze(0);
  at::Tensor labels = b.ids.masked_fill(b.mask == 0, -100).narrow(1, 1, T - 1);
  at::Tensor pl = position_ce(logits, labels);
  at::Tensor tgt = ((pos >= b.start.unsqueeze(1)) & (b.mask == 1)).narrow(1, 1, T - 1).to(pl.scalar_type());
  return -(tgt * pl).sum(1);
}

at::Tensor loss_divergence(const at::Tensor& logits_q, const at::Tensor& logits_p, const TokenBatch& b, Mode m) {
  at::Tensor q = wide(logits_q), p = wide(logits_p);
  if (m == Mode::Faithful) {
    at::Tensor prob_p = p.softmax(-1), prob_q = q.softmax(-1);
    return -(prob_p * (prob_q + 1e-12).log()).sum(-1).mean();
  }
  const int64_t T = b.ids.size(1);
  at::Tensor lp = p.log_softmax(-1), lq = q.log_softmax(-1);
  at::Tensor kl = (lp.exp() * (lp - lq)).sum(-1).narrow(1, 0, T - 1);      // (B, T-1)
  at::Tensor real_next = b.mask.narrow(1, 1, T - 1).to(kl.scalar_type());  // position t predicts a real token
  return (kl * real_next).sum() / real_next.sum().clamp_min(1);
}

}  // namespace lethe::unlearn
