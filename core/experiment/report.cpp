#include "experiment/report.h"

#include "eval/agreement.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <sstream>
#include <set>

#include "util/error.h"

namespace lethe::experiment {

namespace {
store::RunRecord need_run(store::Store& st, int64_t id) {
  auto r = st.run(id);
  if (!r) throw Error("no run " + std::to_string(id) + " in " + st.path().string());
  return *r;
}
std::string html_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '&':
        o += "&amp;";
        break;
      case '<':
        o += "&lt;";
        break;
      case '>':
        o += "&gt;";
        break;
      case '"':
        o += "&quot;";
        break;
      default:
        o.push_back(c);
    }
  }
  return o;
}
std::string fmt(double v, const char* f = "%.4f") {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}
io::Json opt(const std::optional<double>& v) { return v ? io::Json(*v) : io::Json(nullptr); }
}  // namespace

io::Json tracks_json(store::Store& st, int64_t id) {
  if (!st.run(id)) throw Error("no run " + std::to_string(id) + " in " + st.path().string());
  const auto rows = st.tracks(id);
  io::Json prompts = io::Json::array();
  for (const auto& p : st.tracked_prompts(id)) {
    io::Json series = {{"answer", io::Json::array()}};
    if (!p.safe_answer.empty()) series["safe"] = io::Json::array();
    for (const auto& t : rows)
      if (t.prompt_id == p.prompt_id)
        series[t.kind].push_back(
            {{"step", t.step}, {"mean_logprob", t.mean_logprob}, {"token_logprobs", t.token_logprobs}, {"tokens", t.tokens}});
    prompts.push_back({{"id", p.prompt_id},
                       {"source", p.source},
                       {"prompt", p.prompt},
                       {"answer", p.answer},
                       {"safe_answer", p.safe_answer},
                       {"series", series}});
  }
  return {{"run", id}, {"prompts", prompts}};
}

io::Json run_json(store::Store& st, int64_t id) {
  auto r = need_run(st, id);
  io::Json steps = io::Json::array(), gens = io::Json::array(), evals = io::Json::object(), arts = io::Json::array(),
           reviews = io::Json::array();
  for (const auto& s : st.steps(id))
    steps.push_back({{"phase", s.phase},
                     {"step", s.step},
                     {"loss_fgt", s.loss_fgt},
                     {"loss_rdn", s.loss_rdn},
                     {"loss_nor", s.loss_nor},
                     {"total", s.total},
                     {"forget_ce", s.forget_ce},
                     {"lr", s.lr},
                     {"grad_norm", s.grad_norm},
                     {"tokens_per_s", s.tokens_per_s},
                     {"elapsed_s", s.elapsed_s}});
  for (const auto& g : st.generations(id))
    gens.push_back({{"id", g.id},
                    {"set", g.set},
                    {"idx", g.idx},
                    {"prompt", g.prompt},
                    {"before", g.before},
                    {"after", g.after},
                    {"reference", g.reference},
                    {"score_before", opt(g.score_before)},
                    {"score_after", opt(g.score_after)},
                    {"bleu_before", opt(g.bleu_before)},
                    {"bleu_after", opt(g.bleu_after)}});
  for (const auto& e : st.evaluations(id)) evals[e.name] = {{"value", e.value}, {"details", io::Json::parse(e.json)}};
  for (const auto& a : st.artefacts(id)) arts.push_back({{"kind", a.kind}, {"path", a.path}});
  const auto generation_rows = st.generations(id);
  const auto review_rows = st.reviews(id);
  // Per reviewer: how many rows they labelled, kappa with the classifier and with the others.
  io::Json agreement = io::Json::object();
  for (const auto& name : eval::summarize_reviews(generation_rows, review_rows, "").reviewers)
    agreement[name] = eval::review_summary_json(eval::summarize_reviews(generation_rows, review_rows, name));
  for (const auto& v : review_rows)
    reviews.push_back({{"generation_id", v.generation_id},
                       {"reviewer", v.reviewer},
                       {"label", v.label},
                       {"note", v.note},
                       {"at", v.created_at}});
  io::Json spec;
  try {
    spec = io::Json::parse(r.spec_json);
  } catch (...) {
    spec = r.spec_json;
  }
  return {{"id", r.id},
          {"name", r.name},
          {"status", r.status},
          {"error", r.error},
          {"created_at", r.created_at},
          {"finished_at", r.finished_at},
          {"versions", io::Json::parse(r.versions_json)},
          {"spec", spec},
          {"steps", steps},
          {"generations", gens},
          {"evaluations", evals},
          {"artefacts", arts},
          {"reviews", reviews},
          {"review_agreement", agreement},
          {"tracks", tracks_json(st, id)["prompts"]}};
}

std::string runs_table(store::Store& st) {
  std::ostringstream o;
  char line[512];
  std::snprintf(line, sizeof line, "%-5s %-24s %-12s %-21s %7s %12s %12s\n", "id", "name", "status", "created", "steps",
                "harmful→", "reduction");
  o << line;
  for (const auto& r : st.runs()) {
    auto ev = st.evaluations(r.id);
    auto find = [&](const std::string& n) -> std::string {
      for (const auto& e : ev)
        if (e.name == n) return fmt(e.value, "%.3f");
      return "-";
    };
    std::string harm = find("harmful_rate_before") + "→" + find("harmful_rate_after");
    std::snprintf(line, sizeof line, "%-5lld %-24s %-12s %-21s %7zu %12s %12s\n", (long long)r.id, r.name.substr(0, 24).c_str(),
                  r.status.c_str(), r.created_at.c_str(), st.steps(r.id).size(), harm.c_str(),
                  find("harmful_rate_reduction").c_str());
    o << line;
  }
  return o.str();
}

std::string run_summary(store::Store& st, int64_t id) {
  auto r = need_run(st, id);
  std::ostringstream o;
  o << "run " << r.id << "  " << r.name << "  " << r.status << (r.error.empty() ? "" : ": " + r.error) << "\n";
  o << "created " << r.created_at << "  finished " << (r.finished_at.empty() ? "-" : r.finished_at) << "\n";
  auto steps = st.steps(id);
  if (!steps.empty()) {
    const auto& last = steps.back();
    o << steps.size() << " steps; last (" << last.phase << " " << last.step << "): L_fgt " << fmt(last.loss_fgt) << "  L_rdn "
      << fmt(last.loss_rdn) << "  L_nor " << fmt(last.loss_nor) << "  total " << fmt(last.total) << "\n";
  }
  for (const auto& e : st.evaluations(id))
    o << "  " << e.name << std::string(e.name.size() < 32 ? 32 - e.name.size() : 1, ' ') << fmt(e.value) << "\n";
  for (const auto& a : st.artefacts(id)) o << "  " << a.kind << ": " << a.path << "\n";
  const auto gens = st.generations(id);
  o << gens.size() << " generations, " << st.reviews(id).size() << " reviews\n";
  return o.str();
}

std::string compare_runs(store::Store& st, int64_t a, int64_t b) {
  auto ra = need_run(st, a), rb = need_run(st, b);
  std::map<std::string, std::pair<std::optional<double>, std::optional<double>>> m;
  for (const auto& e : st.evaluations(a)) m[e.name].first = e.value;
  for (const auto& e : st.evaluations(b)) m[e.name].second = e.value;
  std::ostringstream o;
  char line[256];
  std::snprintf(line, sizeof line, "%-32s %14s %14s\n", "", ("run " + std::to_string(a)).c_str(),
                ("run " + std::to_string(b)).c_str());
  o << line;
  std::snprintf(line, sizeof line, "%-32s %14s %14s\n", "status", ra.status.c_str(), rb.status.c_str());
  o << line;
  auto sa = st.steps(a), sb = st.steps(b);
  std::snprintf(line, sizeof line, "%-32s %14zu %14zu\n", "steps", sa.size(), sb.size());
  o << line;
  for (const auto& [name, v] : m) {
    std::snprintf(line, sizeof line, "%-32s %14s %14s\n", name.c_str(), v.first ? fmt(*v.first).c_str() : "-",
                  v.second ? fmt(*v.second).c_str() : "-");
    o << line;
  }
  return o.str();
}

std::string loss_svg(const std::vector<store::StepRow>& steps, int W, int H) {
  std::vector<const store::StepRow*> u;
  for (const auto& s : steps)
    if (s.phase == "unlearn") u.push_back(&s);
  if (u.empty())
    for (const auto& s : steps) u.push_back(&s);
  std::ostringstream o;
  o << "<svg xmlns='http://www.w3.org/2000/svg' width='" << W << "' height='" << H << "' viewBox='0 0 " << W << " " << H
    << "' font-family='sans-serif' font-size='11'>";
  o << "<rect width='100%' height='100%' fill='#fff'/>";
  if (u.empty()) {
    o << "<text x='" << W / 2 << "' y='" << H / 2 << "' text-anchor='middle' fill='#777'>no steps</text></svg>";
    return o.str();
  }
  const int L = 52, R = 12, T = 12, B = 34;
  double lo = 1e300, hi = -1e300;
  for (auto* s : u)
    for (double v : {s->loss_fgt, s->loss_rdn, s->loss_nor, s->total}) {
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
  if (hi - lo < 1e-9) hi = lo + 1;
  const double x0 = static_cast<double>(u.front()->step), x1 = std::max(x0 + 1, static_cast<double>(u.back()->step));
  auto X = [&](double x) { return L + (x - x0) / (x1 - x0) * (W - L - R); };
  auto Y = [&](double y) { return T + (hi - y) / (hi - lo) * (H - T - B); };
  o << "<line x1='" << L << "' y1='" << H - B << "' x2='" << W - R << "' y2='" << H - B << "' stroke='#444'/>";
  o << "<line x1='" << L << "' y1='" << T << "' x2='" << L << "' y2='" << H - B << "' stroke='#444'/>";
  for (int k = 0; k <= 4; ++k) {
    const double v = lo + (hi - lo) * k / 4;
    o << "<text x='" << L - 4 << "' y='" << Y(v) + 4 << "' text-anchor='end'>" << fmt(v, "%.2f") << "</text>";
    o << "<line x1='" << L << "' y1='" << Y(v) << "' x2='" << W - R << "' y2='" << Y(v) << "' stroke='#eee'/>";
  }
  o << "<text x='" << (L + W - R) / 2 << "' y='" << H - 8 << "' text-anchor='middle'>step " << static_cast<long long>(x0) << " – "
    << static_cast<long long>(x1) << "</text>";
  struct Series {
    const char* name;
    const char* colour;
    double store::StepRow::*field;
  };
  const Series series[] = {{"L_fgt", "#d55e00", &store::StepRow::loss_fgt},
                           {"L_rdn", "#0072b2", &store::StepRow::loss_rdn},
                           {"L_nor", "#009e73", &store::StepRow::loss_nor},
                           {"total", "#222222", &store::StepRow::total}};
  int legend = 0;
  for (const auto& s : series) {
    o << "<polyline fill='none' stroke='" << s.colour << "' stroke-width='1.6' points='";
    for (auto* r : u) o << fmt(X(static_cast<double>(r->step)), "%.1f") << "," << fmt(Y(r->*s.field), "%.1f") << " ";
    o << "'/>";
    o << "<text x='" << W - R - 60 << "' y='" << T + 12 + 14 * legend << "' fill='" << s.colour << "'>" << s.name << "</text>";
    ++legend;
  }
  o << "</svg>";
  return o.str();
}

std::string export_run(store::Store& st, int64_t id, const std::string& format) {
  if (format == "json") return run_json(st, id).dump(2) + "\n";
  if (format == "csv") {
    need_run(st, id);
    std::ostringstream o;
    o << "phase,step,loss_fgt,loss_rdn,loss_nor,total,forget_ce,lr,grad_norm,tokens_per_s,elapsed_s\n";
    o.precision(10);
    for (const auto& s : st.steps(id))
      o << s.phase << "," << s.step << "," << s.loss_fgt << "," << s.loss_rdn << "," << s.loss_nor << "," << s.total << ","
        << s.forget_ce << "," << s.lr << "," << s.grad_norm << "," << s.tokens_per_s << "," << s.elapsed_s << "\n";
    return o.str();
  }
  if (format == "tracks-csv") {  // long form: one measurement of one tracked answer per row
    need_run(st, id);
    std::ostringstream o;
    o.precision(10);
    o << "prompt_id,kind,step,mean_logprob\n";
    for (const auto& t : st.tracks(id)) {
      o << t.prompt_id << "," << t.kind << "," << t.step << ",";
      if (!std::isnan(t.mean_logprob)) o << t.mean_logprob;  // none: an empty field
      o << "\n";
    }
    return o.str();
  }
  if (format != "html") throw Error("export format '" + format + "': expected " + kExportFormats);
  auto r = need_run(st, id);
  std::ostringstream o;
  o << "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Lethe run " << r.id << " – " << html_escape(r.name) << "</title>"
    << "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}table{border-collapse:collapse;width:100%}"
       "td,th{border:1px solid #ddd;padding:4px 6px;vertical-align:top;font-size:13px}th{background:#f4f4f4}"
       ".warn{background:#fff4e5;border:1px solid #f0b37e;padding:8px}pre{background:#f8f8f8;padding:8px;overflow:auto}</style>"
    << "</head><body>";
  o << "<h1>Lethe run " << r.id << ": " << html_escape(r.name) << "</h1>";
  o << "<p>Status <b>" << html_escape(r.status) << "</b>" << (r.error.empty() ? "" : " – " + html_escape(r.error)) << ". Created "
    << r.created_at << ", finished " << (r.finished_at.empty() ? "-" : r.finished_at) << ".</p>";
  o << "<h2>Loss curves</h2>" << loss_svg(st.steps(id));
  o << "<h2>Metrics</h2><table><tr><th>metric</th><th>value</th></tr>";
  for (const auto& e : st.evaluations(id)) o << "<tr><td>" << html_escape(e.name) << "</td><td>" << fmt(e.value) << "</td></tr>";
  o << "</table>";
  const auto gens = st.generations(id);
  if (!gens.empty()) {
    o << "<h2>Generations</h2><p class='warn'>Content warning: the prompts and the answers before unlearning may be rude, "
         "dishonest or otherwise harmful. They are shown for unlearning research.</p>";
    o << "<table><tr><th>set</th><th>prompt</th><th>before</th><th>after</th><th>P(harmful) / BLEU before → after</th></tr>";
    for (const auto& g : gens) {
      std::string score;
      if (g.score_before || g.score_after)
        score = (g.score_before ? fmt(*g.score_before, "%.2f") : "-") + " → " +
                (g.score_after ? fmt(*g.score_after, "%.2f") : "-");
      else if (g.bleu_before || g.bleu_after)
        score = (g.bleu_before ? fmt(*g.bleu_before, "%.1f") : "-") + " → " + (g.bleu_after ? fmt(*g.bleu_after, "%.1f") : "-");
      o << "<tr><td>" << html_escape(g.set) << "</td><td>" << html_escape(g.prompt) << "</td><td>" << html_escape(g.before)
        << "</td><td>" << html_escape(g.after) << "</td><td>" << score << "</td></tr>";
    }
    o << "</table>";
  }
  const auto tracked = st.tracked_prompts(id);
  if (!tracked.empty()) {
    // The tracked answers' mean log-probability at every measured step (the Tracked prompts
    // dock's curves), a column per answer.
    o << "<h2>Tracked prompts</h2><p class='warn'>Content warning: the tracked answers from the forget set are "
         "harmful by design (non-operational, for unlearning research).</p>";
    o << "<table><tr><th>#</th><th>prompt</th><th>answer followed</th><th>safe answer</th></tr>";
    for (const auto& p : tracked)
      o << "<tr><td>" << p.prompt_id << "</td><td>" << html_escape(p.prompt) << "</td><td>" << html_escape(p.answer)
        << "</td><td>" << html_escape(p.safe_answer) << "</td></tr>";
    o << "</table>";
    std::map<std::pair<int64_t, std::string>, std::map<int64_t, double>> series;  // (prompt, kind) -> step -> value
    std::set<int64_t> steps;
    for (const auto& t : st.tracks(id)) {
      series[{t.prompt_id, t.kind}][t.step] = t.mean_logprob;
      steps.insert(t.step);
    }
    o << "<p>Mean log-probability of each answer's tokens under the model at each measured step.</p>";
    o << "<table><tr><th>step</th>";
    for (const auto& [key, _] : series) o << "<th>#" << key.first << " " << html_escape(key.second) << "</th>";
    o << "</tr>";
    for (int64_t step : steps) {
      o << "<tr><td>" << step << "</td>";
      for (const auto& [key, values] : series) {
        const auto at = values.find(step);
        o << "<td>" << (at == values.end() || std::isnan(at->second) ? "-" : fmt(at->second, "%.3f")) << "</td>";
      }
      o << "</tr>";
    }
    o << "</table>";
  }
  o << "<h2>Settings</h2><pre>" << html_escape(io::Json::parse(r.spec_json).dump(2)) << "</pre>";
  o << "<p>Versions: " << html_escape(r.versions_json) << "</p></body></html>\n";
  return o.str();
}

}  // namespace lethe::experiment
