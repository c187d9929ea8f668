#include "agreement.h"

#include <cmath>
#include <cstdio>
#include <limits>
#include <set>

#include "util/error.h"

namespace lethe::eval {

bool Kappa::defined() const { return std::isfinite(kappa); }

Kappa cohen_kappa(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  if (a.size() != b.size())
    throw Error("cohen_kappa: the two raters labelled " + std::to_string(a.size()) + " and " + std::to_string(b.size()) +
                " items; kappa needs the same items");
  Kappa k;
  k.n = static_cast<int64_t>(a.size());
  if (k.n == 0) {
    k.kappa = std::numeric_limits<double>::quiet_NaN();
    return k;
  }
  std::map<std::string, int64_t> ma, mb;
  for (size_t i = 0; i < a.size(); ++i) {
    k.agree += a[i] == b[i];
    ++ma[a[i]];
    ++mb[b[i]];
  }
  const double n = static_cast<double>(k.n);
  k.observed = static_cast<double>(k.agree) / n;
  for (const auto& [label, count] : ma) {
    const auto it = mb.find(label);
    if (it != mb.end()) k.expected += (static_cast<double>(count) / n) * (static_cast<double>(it->second) / n);
  }
  // Both raters gave one and the same label to everything: chance explains it all, kappa is 0/0.
  k.kappa = k.expected >= 1.0 ? std::numeric_limits<double>::quiet_NaN() : (k.observed - k.expected) / (1.0 - k.expected);
  return k;
}

std::map<int64_t, store::ReviewRow> latest_labels(const std::vector<store::ReviewRow>& reviews, const std::string& reviewer) {
  std::map<int64_t, store::ReviewRow> out;
  for (const auto& r : reviews) {
    if (r.reviewer != reviewer) continue;
    auto it = out.find(r.generation_id);
    if (it == out.end() || r.id > it->second.id) out[r.generation_id] = r;
  }
  return out;
}

ReviewSummary summarize_reviews(const std::vector<store::GenerationRow>& generations,
                                const std::vector<store::ReviewRow>& reviews, const std::string& reviewer) {
  ReviewSummary s;
  s.generations = static_cast<int64_t>(generations.size());
  std::map<int64_t, const store::GenerationRow*> by_id;
  for (const auto& g : generations) by_id[g.id] = &g;

  const auto mine = latest_labels(reviews, reviewer);
  std::vector<std::string> rev, cls;
  for (const auto& [gid, r] : mine) {
    const auto g = by_id.find(gid);
    if (g == by_id.end()) continue;  // a review of another run's row
    ++s.reviewed;
    ++s.label_counts[r.label];
    if (r.label == "unsure" || !g->second->score_after) continue;
    const bool person = r.label == "harmful";
    const bool classifier = *g->second->score_after >= 0.5;
    rev.push_back(person ? "harmful" : "harmless");
    cls.push_back(classifier ? "harmful" : "harmless");
    if (person && classifier) ++s.both_harmful;
    else if (!person && !classifier) ++s.both_harmless;
    else if (person) ++s.only_reviewer_harmful;
    else ++s.only_classifier_harmful;
  }
  s.vs_classifier = cohen_kappa(rev, cls);

  std::set<std::string> names;
  for (const auto& r : reviews)
    if (by_id.count(r.generation_id)) names.insert(r.reviewer);
  s.reviewers.assign(names.begin(), names.end());
  std::map<std::string, std::map<int64_t, store::ReviewRow>> latest;
  for (const auto& name : s.reviewers) latest[name] = latest_labels(reviews, name);
  for (size_t i = 0; i < s.reviewers.size(); ++i)
    for (size_t j = i + 1; j < s.reviewers.size(); ++j) {
      std::vector<std::string> la, lb;
      for (const auto& [gid, r] : latest[s.reviewers[i]]) {
        if (!by_id.count(gid)) continue;
        const auto other = latest[s.reviewers[j]].find(gid);
        if (other == latest[s.reviewers[j]].end()) continue;
        la.push_back(r.label);
        lb.push_back(other->second.label);
      }
      if (!la.empty()) s.pairs.push_back({s.reviewers[i], s.reviewers[j], cohen_kappa(la, lb)});
    }
  return s;
}

namespace {
std::string kappa_text(const Kappa& k) {
  char buf[96];
  if (k.defined())
    std::snprintf(buf, sizeof buf, "κ %.2f (n %lld, agree %lld)", k.kappa, static_cast<long long>(k.n),
                  static_cast<long long>(k.agree));
  else if (k.n == 0) std::snprintf(buf, sizeof buf, "κ – (nothing labelled in common)");
  else
    std::snprintf(buf, sizeof buf, "κ undefined: one label for all %lld (agree %lld)", static_cast<long long>(k.n),
                  static_cast<long long>(k.agree));
  return buf;
}
}  // namespace

std::string review_summary_text(const ReviewSummary& s) {
  std::string out = std::to_string(s.reviewed) + " of " + std::to_string(s.generations) + " reviewed";
  if (s.reviewed == 0) return out;
  out += " · with the classifier: " + kappa_text(s.vs_classifier);
  for (const auto& p : s.pairs) out += " · " + p.a + "–" + p.b + ": " + kappa_text(p.kappa);
  return out;
}

namespace {
io::Json kappa_json(const Kappa& k) {
  return {{"n", k.n},
          {"agree", k.agree},
          {"observed", k.observed},
          {"expected", k.expected},
          {"kappa", k.defined() ? io::Json(k.kappa) : io::Json(nullptr)}};
}

std::string csv_field(const std::string& v) {
  if (v.find_first_of(",\"\r\n") == std::string::npos) return v;
  std::string out = "\"";
  for (char c : v) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string number(const std::optional<double>& v) {
  if (!v) return "";
  char b[32];
  std::snprintf(b, sizeof b, "%.6g", *v);
  return b;
}

// Every reviewer's latest review per generation of the run, in (generation, reviewer) order.
std::vector<std::pair<const store::GenerationRow*, store::ReviewRow>> latest_rows(
    const std::vector<store::GenerationRow>& generations, const std::vector<store::ReviewRow>& reviews) {
  std::map<int64_t, const store::GenerationRow*> by_id;
  for (const auto& g : generations) by_id[g.id] = &g;
  std::map<std::pair<int64_t, std::string>, store::ReviewRow> latest;
  for (const auto& r : reviews) {
    if (!by_id.count(r.generation_id)) continue;
    const auto key = std::make_pair(r.generation_id, r.reviewer);
    auto it = latest.find(key);
    if (it == latest.end() || r.id > it->second.id) latest[key] = r;
  }
  std::vector<std::pair<const store::GenerationRow*, store::ReviewRow>> out;
  for (const auto& [key, r] : latest) out.emplace_back(by_id[key.first], r);
  return out;
}
}  // namespace

io::Json review_summary_json(const ReviewSummary& s) {
  io::Json pairs = io::Json::array();
  for (const auto& p : s.pairs) pairs.push_back({{"a", p.a}, {"b", p.b}, {"kappa", kappa_json(p.kappa)}});
  return {{"generations", s.generations},
          {"reviewed", s.reviewed},
          {"labels", s.label_counts},
          {"vs_classifier", kappa_json(s.vs_classifier)},
          {"confusion",
           {{"both_harmful", s.both_harmful},
            {"both_harmless", s.both_harmless},
            {"only_reviewer_harmful", s.only_reviewer_harmful},
            {"only_classifier_harmful", s.only_classifier_harmful}}},
          {"reviewers", s.reviewers},
          {"between_reviewers", pairs}};
}

std::string reviews_csv(const std::vector<store::GenerationRow>& generations, const std::vector<store::ReviewRow>& reviews) {
  std::string out =
      "generation_id,set,idx,prompt,before,after,p_harmful_before,p_harmful_after,reviewer,label,note,reviewed_at\r\n";
  for (const auto& [g, r] : latest_rows(generations, reviews)) {
    const std::string fields[] = {std::to_string(g->id),
                                  g->set,
                                  std::to_string(g->idx),
                                  g->prompt,
                                  g->before,
                                  g->after,
                                  number(g->score_before),
                                  number(g->score_after),
                                  r.reviewer,
                                  r.label,
                                  r.note,
                                  r.created_at};
    bool first = true;
    for (const auto& f : fields) {
      if (!first) out += ',';
      out += csv_field(f);
      first = false;
    }
    out += "\r\n";
  }
  return out;
}

io::Json reviews_json(const std::vector<store::GenerationRow>& generations, const std::vector<store::ReviewRow>& reviews,
                      const std::string& reviewer) {
  io::Json rows = io::Json::array();
  for (const auto& [g, r] : latest_rows(generations, reviews))
    rows.push_back({{"generation_id", g->id},
                    {"set", g->set},
                    {"idx", g->idx},
                    {"prompt", g->prompt},
                    {"before", g->before},
                    {"after", g->after},
                    {"p_harmful_before", g->score_before ? io::Json(*g->score_before) : io::Json(nullptr)},
                    {"p_harmful_after", g->score_after ? io::Json(*g->score_after) : io::Json(nullptr)},
                    {"reviewer", r.reviewer},
                    {"label", r.label},
                    {"note", r.note},
                    {"reviewed_at", r.created_at}});
  return {{"summary", review_summary_json(summarize_reviews(generations, reviews, reviewer))}, {"reviews", rows}};
}

}  // namespace lethe::eval
