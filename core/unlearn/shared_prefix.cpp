#include "unlearn/shared_prefix.h"

#include <ATen/ATen.h>

#include <algorithm>

#include "model/layers.h"
#include "unlearn/head_losses.h"
#include "util/error.h"

namespace lethe::unlearn {

namespace {
// A (rows, width) int64 tensor on the host, pinned when it goes to a GPU.
at::Tensor host(int64_t rows, int64_t width, int64_t fill, bool pinned) {
  return at::full({rows, width}, fill, at::TensorOptions().dtype(at::kLong).pinned_memory(pinned));
}
}  // namespace

std::optional<SharedPrefixBatch> share_prefixes(const std::vector<Example>& rows, int64_t K, int64_t pad_id,
                                                const at::Device& device) {
  if (K < 1 || rows.empty() || rows.size() % static_cast<size_t>(K) != 0)
    throw Error("share_prefixes: " + std::to_string(rows.size()) +
                " rows are not a whole number of samples of K = " + std::to_string(K));
  const size_t Ku = static_cast<size_t>(K);
  const int64_t B = static_cast<int64_t>(rows.size() / Ku);
  // Each sample's shared length: the tokens its K rows have in common, up to the earliest
  // answer start (the first target is predicted from the token before it).
  std::vector<int64_t> shared(static_cast<size_t>(B));
  int64_t P = 0, A = 0;
  for (int64_t i = 0; i < B; ++i) {
    const auto& first = rows[static_cast<size_t>(i) * Ku];
    int64_t p = first.start;
    for (size_t k = 0; k < Ku; ++k) {
      const auto& r = rows[static_cast<size_t>(i) * Ku + k];
      p = std::min<int64_t>(p, r.start);
      p = std::min<int64_t>(p, static_cast<int64_t>(r.ids.size()));
      int64_t n = 0;
      while (n < p && r.ids[static_cast<size_t>(n)] == first.ids[static_cast<size_t>(n)]) ++n;
      p = n;
    }
    if (p < 1) return std::nullopt;
    shared[static_cast<size_t>(i)] = p;
    P = std::max(P, p);
    for (size_t k = 0; k < Ku; ++k)
      A = std::max<int64_t>(A, static_cast<int64_t>(rows[static_cast<size_t>(i) * Ku + k].ids.size()) - p);
  }
  if (A < 1) return std::nullopt;

  const bool pinned = device.is_cuda();
  SharedPrefixBatch s;
  s.K = K;
  at::Tensor pid = host(B, P, pad_id, pinned), pmask = host(B, P, 0, pinned), pstart = host(B, 1, 0, pinned).view({B});
  at::Tensor rid = host(B * K, 1 + A, pad_id, pinned), rmask = host(B * K, 1 + A, 0, pinned),
             rstart = host(B * K, 1, 0, pinned).view({B * K});
  auto* pi = pid.data_ptr<int64_t>();
  auto* pm = pmask.data_ptr<int64_t>();
  auto* ri = rid.data_ptr<int64_t>();
  auto* rm = rmask.data_ptr<int64_t>();
  auto* rs = rstart.data_ptr<int64_t>();
  for (int64_t i = 0; i < B; ++i) {
    const int64_t p = shared[static_cast<size_t>(i)];
    const auto& first = rows[static_cast<size_t>(i) * Ku];
    for (int64_t t = 0; t < p; ++t) {  // left-padded: the prefix ends at column P - 1
      pi[i * P + P - p + t] = first.ids[static_cast<size_t>(t)];
      pm[i * P + P - p + t] = 1;
    }
    s.prefix.tokens += p;
    for (int64_t k = 0; k < K; ++k) {
      const int64_t r = i * K + k;
      const auto& e = rows[static_cast<size_t>(r)];
      // Column 0: the prefix's last token (its hidden state predicts the row's token p).
      ri[r * (1 + A)] = first.ids[static_cast<size_t>(p - 1)];
      rm[r * (1 + A)] = 1;
      for (int64_t t = p; t < static_cast<int64_t>(e.ids.size()); ++t) {
        ri[r * (1 + A) + 1 + t - p] = e.ids[static_cast<size_t>(t)];
        rm[r * (1 + A) + 1 + t - p] = 1;
      }
      rs[r] = e.start - p + 1;  // token t of the row is column t - p + 1
      s.rows.tokens += static_cast<int64_t>(e.ids.size()) - p;
    }
  }
  s.prefix.ids = pid.to(device, pinned);
  s.prefix.mask = pmask.to(device, pinned);
  s.prefix.start = pstart.to(device, pinned);
  s.rows.ids = rid.to(device, pinned);
  s.rows.mask = rmask.to(device, pinned);
  s.rows.start = rstart.to(device, pinned);
  return s;
}

at::Tensor shared_prefix_answer_loss(model::CausalLMImpl& m, const SharedPrefixBatch& s) {
  const int64_t K = s.K, P = s.prefix.ids.size(1), A = s.rows.ids.size(1) - 1;
  // The questions once, their keys and values kept with their autograd history.
  model::KVCache cache;
  cache.mode = model::KVCache::Mode::Record;
  const at::Tensor hp = m.hidden(s.prefix.ids, s.prefix.mask, &cache);  // (B, P, D)
  for (auto& t : cache.k) t = t.repeat_interleave(K, 0);                // (B*K, KV, P, hd)
  for (auto& t : cache.v) t = t.repeat_interleave(K, 0);
  cache.mode = model::KVCache::Mode::Prefix;
  // The answers after them: mask = the prefix's columns, then the rows' own.
  const at::Tensor mask = at::cat({s.prefix.mask.repeat_interleave(K, 0), s.rows.mask.narrow(1, 1, A)}, 1);
  const at::Tensor ha = m.hidden(s.rows.ids.narrow(1, 1, A), mask, &cache);  // (B*K, A, D)
  // Column 0's hidden state is the prefix's last (left padding puts it at P - 1 for every sample).
  const at::Tensor hidden = at::cat({hp.narrow(1, P - 1, 1).repeat_interleave(K, 0), ha}, 1);  // (B*K, 1 + A, D)
  return answer_ce_from_hidden(hidden, m.lm_head_weight(), s.rows);
}

}  // namespace lethe::unlearn
