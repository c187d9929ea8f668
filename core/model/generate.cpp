#include "model/generate.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <limits>
#include <set>

#include "model/decode_linear.h"
#include "util/error.h"

namespace lethe::model {

void SamplingOptions::validate() const {
  if (max_new_tokens < 1) throw Error("max_new_tokens must be at least 1, got " + std::to_string(max_new_tokens));
  if (!(temperature > 0)) throw Error("temperature must be > 0, got " + std::to_string(temperature));
  if (top_k < 0) throw Error("top_k must be >= 0 (0 = off), got " + std::to_string(top_k));
  if (!(top_p > 0 && top_p <= 1)) throw Error("top_p must be in (0, 1], got " + std::to_string(top_p));
  if (!(repetition_penalty > 0)) throw Error("repetition_penalty must be > 0, got " + std::to_string(repetition_penalty));
  if (batch_size < 1) throw Error("batch size must be at least 1, got " + std::to_string(batch_size));
  for (const auto& s : stop_strings)
    if (s.empty()) throw Error("stop strings must not be empty");
}

at::Tensor process_logits(at::Tensor logits, const at::Tensor& seen, const SamplingOptions& o) {
  if (o.repetition_penalty != 1.0) {
    at::Tensor s = logits.gather(1, seen);  // (B, L)
    s = at::where(s < 0, s * o.repetition_penalty, s / o.repetition_penalty);
    logits = logits.scatter(1, seen, s);
  }
  if (!o.do_sample) return logits;
  logits = logits / o.temperature;
  const double neg_inf = -std::numeric_limits<double>::infinity();
  if (o.top_k > 0 && o.top_k < logits.size(-1)) {
    at::Tensor kth = std::get<0>(logits.topk(o.top_k, -1)).narrow(-1, o.top_k - 1, 1);  // (B, 1)
    logits = logits.masked_fill(logits < kth, neg_inf);
  }
  if (o.top_p < 1.0) {
    auto [sorted, order] = logits.sort(-1, /*descending=*/true);
    at::Tensor probs = sorted.softmax(-1);
    // Drop a token when the mass before it already reaches top_p (the first always stays).
    at::Tensor drop = (probs.cumsum(-1) - probs) >= o.top_p;
    logits = logits.scatter(1, order, sorted.masked_fill(drop, neg_inf));
  }
  return logits;
}

namespace {

// logits (B, V) fp32 -> next tokens (B): argmax, or a draw from the processed distribution on
// the CPU generator (the same seed gives the same tokens on every device).
at::Tensor pick(const at::Tensor& logits, const at::Tensor& seen, const SamplingOptions& o, at::Generator& gen) {
  at::Tensor l = process_logits(logits, seen, o);
  if (!o.do_sample) return l.argmax(-1);
  at::Tensor probs = l.softmax(-1).to(at::kCPU);
  return at::multinomial(probs, 1, false, gen).squeeze(1).to(logits.device());
}

// What every batch of one generate_ids call shares.
struct GenerateContext {
  GenerateContext(CausalLMImpl& m, const text::Tokenizer& t, const SamplingOptions& opts, const TokenCallback& cb)
      : model(m),
        tok(t),
        o(opts),
        on_token(cb),
        dev(m.options().device()),
        max_pos(m.info().max_positions),
        pad(t.pad_id() >= 0 ? t.pad_id() : 0),
        gen(at::make_generator<at::CPUGeneratorImpl>(opts.seed)) {
    for (int64_t id : t.stop_ids()) stop.insert(id);
    for (int64_t id : m.info().eos_ids) stop.insert(id);
  }
  CausalLMImpl& model;
  const text::Tokenizer& tok;
  const SamplingOptions& o;
  const TokenCallback& on_token;
  const at::Device dev;
  const int64_t max_pos;
  const int64_t pad;
  std::set<int64_t> stop;  // the tokenizer's stop ids and the config's eos ids
  at::Generator gen;       // one draw sequence across the batches
  bool cancelled = false;  // the callback or the cancel check asked to stop
  // Asks the caller's cancel check (once it said yes, the answer stays yes).
  bool cancel_requested() {
    if (!cancelled && o.cancelled && o.cancelled()) cancelled = true;
    return cancelled;
  }
};

// Copies the batch's prompts [start, end) into `out`, checked against the model's positions;
// returns the longest prompt's length.
int64_t take_prompts(const GenerateContext& c, const std::vector<std::vector<int64_t>>& prompts, size_t start, size_t end,
                     std::vector<Generation>& out) {
  int64_t L = 0;
  for (size_t i = start; i < end; ++i) {
    out[i].prompt_ids = prompts[i];
    if (out[i].prompt_ids.empty()) throw Error("prompt " + std::to_string(i + 1) + " is empty (and the tokenizer adds no BOS)");
    if (static_cast<int64_t>(out[i].prompt_ids.size()) >= c.max_pos)
      throw Error("prompt " + std::to_string(i + 1) + " has " + std::to_string(out[i].prompt_ids.size()) +
                  " tokens; the model takes at most " + std::to_string(c.max_pos) + " positions");
    L = std::max<int64_t>(L, static_cast<int64_t>(out[i].prompt_ids.size()));
  }
  return L;
}

// Left padding to (B, L) ids and mask on the CPU: every prompt ends at column L - 1, so one step
// extends all of them.
void left_pad(const GenerateContext& c, const std::vector<Generation>& out, size_t start, int64_t B, int64_t L, at::Tensor& ids,
              at::Tensor& mask) {
  ids = at::full({B, L}, c.pad, at::kLong);
  mask = at::zeros({B, L}, at::kLong);
  for (int64_t b = 0; b < B; ++b) {
    const auto& p = out[start + b].prompt_ids;
    const int64_t off = L - static_cast<int64_t>(p.size());
    for (size_t t = 0; t < p.size(); ++t) ids[b][off + static_cast<int64_t>(t)] = p[t];
    mask[b].narrow(0, off, L - off).fill_(1);
  }
}

// Prefill: the prompts into the cache and the logits (B, V) of the next token, with the LM head
// only on the last position (all of them would cost B*L*V*E).
at::Tensor prefill(CausalLMImpl& model, const at::Tensor& ids, const at::Tensor& mask, KVCache& cache, int64_t L) {
  at::Tensor last = model.hidden(ids, mask, &cache).select(1, L - 1);  // (B, E)
  return model::linear(last, model.lm_head_weight()).to(at::kFloat);   // (B, V)
}

// Whether token `t`, just appended to g.ids, ends the sequence: an EOS (when stopping there) or a
// stop string in the text so far (the text is cut before it). The text is decoded here only when
// stop strings or the callback need it; else once at the end.
void check_stop(const GenerateContext& c, Generation& g, int64_t t) {
  if (c.o.stop_at_eos && c.stop.count(t)) {
    g.stop_reason = "eos";
  } else if (!c.o.stop_strings.empty() || c.on_token) {
    g.text = c.tok.decode_text(g.ids);
    for (const auto& s : c.o.stop_strings) {
      const auto at = g.text.find(s);
      if (at != std::string::npos) {
        g.text.resize(at);
        g.stop_reason = "stop_string";
        break;
      }
    }
  }
}

// One chosen token per row (`next_cpu`, (B)) into the unfinished sequences; finished rows get
// the pad id in `next_cpu`. Calls the callback per unfinished row. Returns how many rows finished.
int64_t take_tokens(GenerateContext& c, at::Tensor& next_cpu, size_t start, std::vector<bool>& done,
                    std::vector<Generation>& out) {
  int64_t finished = 0;
  for (int64_t b = 0; b < static_cast<int64_t>(done.size()); ++b) {
    if (done[b]) {
      next_cpu[b] = c.pad;
      continue;
    }
    Generation& g = out[start + b];
    const int64_t t = next_cpu[b].item<int64_t>();
    g.ids.push_back(t);
    check_stop(c, g, t);
    if (!g.stop_reason.empty()) {
      done[b] = true;
      ++finished;
    }
    if (c.on_token && !c.on_token(start + static_cast<size_t>(b), g.text)) c.cancelled = true;
  }
  return finished;
}

// The batch's final texts (unless a stop string already cut them) and the reasons the
// sequences that did not stop themselves ended.
void finish_batch(const GenerateContext& c, std::vector<Generation>& out, size_t start, int64_t B, int64_t n_new) {
  for (int64_t b = 0; b < B; ++b) {
    Generation& g = out[start + b];
    if (g.stop_reason != "stop_string") g.text = c.tok.decode_text(g.ids);
    if (!g.stop_reason.empty()) continue;
    g.stop_reason = c.cancelled ? "cancelled" : (n_new < c.o.max_new_tokens ? "max_positions" : "max_new_tokens");
  }
}

// Prompts [start, end) as one left-padded batch: prefill, then one token per step for every
// row until all stopped, the token budget (or the model's positions) ran out, or cancel.
void generate_batch(GenerateContext& c, const std::vector<std::vector<int64_t>>& prompts, size_t start, size_t end,
                    std::vector<Generation>& out) {
  const int64_t B = static_cast<int64_t>(end - start);
  const int64_t L = take_prompts(c, prompts, start, end, out);
  const int64_t n_new = std::min(c.o.max_new_tokens, c.max_pos - L);
  at::Tensor ids, mask;
  left_pad(c, out, start, B, L, ids, mask);
  ids = ids.to(c.dev);
  mask = mask.to(c.dev);
  KVCache cache = c.model.make_cache(B, L + n_new);
  at::Tensor seen = ids;  // for the repetition penalty: (B, L + generated)
  at::Tensor logits = prefill(c.model, ids, mask, cache, L);
  std::vector<bool> done(static_cast<size_t>(B), false);
  int64_t remaining = B;
  for (int64_t step = 0; step < n_new && remaining > 0 && !c.cancel_requested(); ++step) {
    at::Tensor next = pick(logits, seen, c.o, c.gen);  // (B)
    at::Tensor next_cpu = next.to(at::kCPU);
    remaining -= take_tokens(c, next_cpu, start, done, out);
    if (remaining == 0 || c.cancel_requested() || step + 1 == n_new) break;
    next = next_cpu.to(c.dev).unsqueeze(1);  // (B, 1)
    seen = at::cat({seen, next}, 1);
    mask = at::cat({mask, at::ones({B, 1}, mask.options())}, 1);
    logits = c.model.forward(next, mask, &cache).select(1, 0).to(at::kFloat);
  }
  finish_batch(c, out, start, B, n_new);
}

}  // namespace

std::vector<Generation> generate(CausalLMImpl& model, const text::Tokenizer& tok, const std::vector<std::string>& prompts,
                                 const SamplingOptions& o, const TokenCallback& on_token) {
  std::vector<std::vector<int64_t>> ids;
  for (const auto& p : prompts) ids.push_back(tok.encode_for_model(p));
  auto out = generate_ids(model, tok, ids, o, on_token);
  for (size_t i = 0; i < out.size(); ++i) out[i].prompt = prompts[i];
  return out;
}

std::vector<Generation> generate(CausalLMImpl& model, const text::Tokenizer& tok, const data::PromptFormat& format,
                                 const std::vector<std::string>& questions, const SamplingOptions& o,
                                 const TokenCallback& on_token) {
  std::vector<std::vector<int64_t>> ids;
  for (const auto& q : questions) ids.push_back(format.encode_prompt(tok, q));
  auto out = generate_ids(model, tok, ids, o, on_token);
  for (size_t i = 0; i < out.size(); ++i) out[i].prompt = format.prompt(questions[i]);
  return out;
}

std::vector<Generation> generate_ids(CausalLMImpl& model, const text::Tokenizer& tok,
                                     const std::vector<std::vector<int64_t>>& prompts, const SamplingOptions& o,
                                     const TokenCallback& on_token) {
  o.validate();
  if (prompts.empty()) throw Error("no prompts to generate from");
  at::NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  GenerateContext c(model, tok, o, on_token);
  std::vector<Generation> out(prompts.size());
  // The prompts of the batches not started end as cancelled, with nothing generated.
  auto end_unstarted = [&](size_t from) {
    for (size_t i = from; i < prompts.size(); ++i) {
      out[i].prompt_ids = prompts[i];
      out[i].stop_reason = "cancelled";
    }
  };
  for (size_t start = 0; start < prompts.size(); start += static_cast<size_t>(o.batch_size)) {
    const size_t end = std::min(prompts.size(), start + static_cast<size_t>(o.batch_size));
    if (c.cancel_requested()) {
      end_unstarted(start);
      break;
    }
    generate_batch(c, prompts, start, end, out);
    if (c.cancelled) {
      end_unstarted(end);
      break;
    }
  }
  if (was_training) model.train();
  return out;
}

std::vector<Scored> score_texts(CausalLMImpl& model, const text::Tokenizer& tok, const std::vector<std::string>& texts,
                                int64_t batch_size, std::vector<at::Tensor>* logits_out, const CancelCheck& cancelled) {
  std::vector<std::vector<int64_t>> ids;
  for (const auto& t : texts) ids.push_back(tok.encode_for_model(t));
  return score_ids(model, tok.pad_id() >= 0 ? tok.pad_id() : 0, ids, batch_size, logits_out, cancelled);
}

std::vector<Scored> score_ids(CausalLMImpl& model, int64_t pad, const std::vector<std::vector<int64_t>>& texts,
                              int64_t batch_size, std::vector<at::Tensor>* logits_out, const CancelCheck& cancelled) {
  if (batch_size < 1) throw Error("batch size must be at least 1");
  at::NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  const auto dev = model.options().device();
  const int64_t max_pos = model.info().max_positions;
  std::vector<Scored> out(texts.size());
  for (size_t start = 0; start < texts.size(); start += static_cast<size_t>(batch_size)) {
    if (cancelled && cancelled()) {
      if (was_training) model.train();
      throw Cancelled("cancelled while scoring texts " + std::to_string(start + 1) + ".." + std::to_string(texts.size()));
    }
    const size_t end = std::min(texts.size(), start + static_cast<size_t>(batch_size));
    const int64_t B = static_cast<int64_t>(end - start);
    int64_t T = 0;
    for (size_t i = start; i < end; ++i) {
      out[i].ids = texts[i];
      if (static_cast<int64_t>(out[i].ids.size()) > max_pos)
        throw Error("text " + std::to_string(i + 1) + " has " + std::to_string(out[i].ids.size()) +
                    " tokens; the model takes at most " + std::to_string(max_pos));
      T = std::max<int64_t>(T, static_cast<int64_t>(out[i].ids.size()));
    }
    at::Tensor ids = at::full({B, T}, pad, at::kLong), mask = at::zeros({B, T}, at::kLong);
    for (int64_t b = 0; b < B; ++b) {
      const auto& s = out[start + b].ids;
      for (size_t t = 0; t < s.size(); ++t) ids[b][static_cast<int64_t>(t)] = s[t];
      mask[b].narrow(0, 0, static_cast<int64_t>(s.size())).fill_(1);
    }
    at::Tensor logits = model.forward(ids.to(dev), mask.to(dev)).to(at::kFloat).to(at::kCPU);  // (B, T, V)
    at::Tensor logp = logits.log_softmax(-1);
    for (int64_t b = 0; b < B; ++b) {
      Scored& s = out[start + b];
      const int64_t n = static_cast<int64_t>(s.ids.size());
      double sum = 0;
      for (int64_t t = 1; t < n; ++t) {
        const double lp = logp[b][t - 1][s.ids[t]].item<double>();
        s.logprobs.push_back(lp);
        sum += lp;
      }
      s.mean_nll = n > 1 ? -sum / static_cast<double>(n - 1) : 0.0;
      if (logits_out) logits_out->push_back(logits[b].narrow(0, 0, n).clone());
    }
  }
  if (was_training) model.train();
  return out;
}

}  // namespace lethe::model
