#pragma once
// Reading stored runs back: listing, one run in full, two runs compared, and exports
// (json: everything; csv: the step curve; html: one self-contained report with the settings, the
// loss plot as an inline SVG image, the metrics before/after and the generations). No torch.
#include <cstdint>
#include <string>

#include "io/json.h"
#include "store/store.h"

namespace lethe::experiment {

io::Json run_json(store::Store& st, int64_t run_id);  // throws when the run does not exist
// A run's tracked prompts, each with its series by kind ("answer", "safe") and step:
// {"run": ID, "prompts": [{id, source, prompt, answer, safe_answer, series}]}.
io::Json tracks_json(store::Store& st, int64_t run_id);
std::string runs_table(store::Store& st);
std::string run_summary(store::Store& st, int64_t run_id);
std::string compare_runs(store::Store& st, int64_t a, int64_t b);
// format: json | csv (the steps) | tracks-csv (the tracked answers' measurements, long form:
// prompt_id, kind, step, mean_logprob) | html (with the tracked prompts' table)
inline constexpr const char* kExportFormats = "csv, tracks-csv, json or html";
std::string export_run(store::Store& st, int64_t run_id, const std::string& format);
// The loss curves as an SVG document (width x height px).
std::string loss_svg(const std::vector<store::StepRow>& steps, int width = 720, int height = 320);

}  // namespace lethe::experiment
