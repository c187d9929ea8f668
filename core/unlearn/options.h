#pragma once
// What a training run (unlearning or fine-tuning) is configured by, torch-free, and the options
// schema: each option described once — its spec key, command-line flag, type, default, range,
// unit, help, which methods use it. The spec reader (experiment/spec.cpp), the CLI's options and
// --help (app/lethe/) and the workbench's Method panel (ui/method_panel.cpp) are all built from
// `option_schema()`; an option registered there appears in all three.
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "io/json.h"

namespace lethe::unlearn {

// The unlearning methods (docs/METHODS.md: formulas, papers, published defaults) and fine-tuning.
enum class Method { Paper, GradDiff, Npo, SimNpo, IdkDpo, Wga, SatImp, CeU, Undial, Rmu, Finetune };
// "paper" | "graddiff" | "npo" | "simnpo" | "idkdpo" | "wga" | "satimp" | "ceu" | "undial" | "rmu" | "finetune"
Method parse_method(const std::string& s);
const char* method_name(Method m);
// Every unlearning method (not fine-tuning), in the order the workbench lists them.
const std::vector<Method>& unlearning_methods();

// Loss conventions (../shared/METHOD.md): llm_unlearn's, quirks included, or answer tokens only
// with a true KL.
enum class Mode { Faithful, Corrected };
Mode parse_mode(const std::string& s);  // "faithful" | "corrected"
const char* mode_name(Mode m);

// fp32 | bf16 (autocast compute, fp32 master weights) | auto: bf16 where the hardware has native
// bf16 (a CUDA GPU of compute capability >= 8, a CPU with AVX512-BF16 or AMX) and the weights
// are fp32, else fp32.
enum class Precision { Fp32, Bf16, Auto };
Precision parse_precision(const std::string& s);
const char* precision_name(Precision p);

// What a finished run writes: the merged model (an HF folder with any adapters folded in), the
// PEFT adapter only (OUT/adapter), both, or nothing.
enum class SaveKind { Merged, Adapter, Both, None };
SaveKind parse_save_kind(const std::string& s);  // "merged" | "adapter" | "both" | "none"
const char* save_kind_name(SaveKind k);

struct LoraConfig {
  int64_t rank = 0;  // 0: full-parameter training
  double alpha = 16;
  double dropout = 0.0;
  // Leaf names of decoder-layer linears ("q_proj", "gate_up_proj") or "all-linear"; empty: the
  // family's defaults (PEFT's: q_proj, v_proj; Phi-3: qkv_proj).
  std::vector<std::string> targets;
  bool enabled() const { return rank > 0; }
};

struct UnlearnOptions {
  Method method = Method::Paper;
  Mode mode = Mode::Corrected;
  double eps1 = 0.5, eps2 = 1.0, eps3 = 1.0;  // forget, random answers, normal divergence
  int64_t K = 5;                              // random answers per batch
  double lr = 2e-6;
  int64_t warmup_steps = 0;  // linear warm-up, then linear decay to 0 at max_steps
  double weight_decay = 0.01, beta1 = 0.9, beta2 = 0.999, adam_eps = 1e-8;
  double max_grad_norm = 0;  // 0: no clipping (llm_unlearn clips nothing)
  int64_t batch_size = 2;
  int64_t grad_accum = 1;  // micro-batches per optimizer step
  int64_t max_steps = 1000;
  double stop_forget_ce = 100;  // faithful: llm_unlearn's rule, which never fires
  // Dropout in the trained forward. Unset (auto): on in faithful mode and for fine-tuning, as
  // upstream's model.train() runs; off in corrected unlearning, where the reference runs without
  // it, so that L_nor is the KL it claims to be (0 while the model equals the reference).
  std::optional<bool> dropout;
  bool dropout_active() const { return dropout ? *dropout : (mode == Mode::Faithful || method == Method::Finetune); }
  uint64_t seed = 8888;
  double npo_beta = 0.1;
  // The newer methods' hyperparameters (their defaults: open-unlearning's configs; METHODS.md).
  double simnpo_beta = 4.5, simnpo_delta = 0.0;
  double dpo_beta = 0.1;
  double wga_beta = 1.0;
  double satimp_beta1 = 5.0, satimp_beta2 = 1.0;
  double undial_beta = 10.0;
  int64_t ceu_ignore_first = 1;                          // CE-U leaves each answer's first tokens out
  int64_t rmu_layer = 7;                                 // the decoder layer whose output RMU steers (0-based)
  int64_t rmu_span = 3;                                  // RMU trains layers rmu_layer - span + 1 .. rmu_layer
  double rmu_steering = 6.5;                             // c: the control vector's norm
  std::vector<std::string> rmu_modules = {"down_proj"};  // what RMU trains in those layers
  LoraConfig lora;
  Precision precision = Precision::Fp32;
  int64_t checkpoint_every = 0;  // 0: none
  std::filesystem::path checkpoint_dir;
  // Throws lethe::Error listing the first bad value (negative weights, all three zero, lr <= 0,
  // K < 1, batch < 1, ...): the same rules as the schema, for options built in code.
  void validate() const;
  io::Json to_json() const;
};

// What a method needs each step, from the options alone (the trainer, the CLI and the spec
// reader check the data against it before any compute).
struct MethodNeeds {
  bool random = false;       // the paper's K random answers to each forget question (L_rdn, eps2 > 0)
  bool normal = false;       // a normal/retain batch (the retain term, eps3 > 0; GradDiff always)
  bool reference = false;    // the frozen original model
  bool alternative = false;  // an alternative ("I don't know") answer per forget question (IdkDPO)
  // The retain term is the KL to the original (the paper, NPO as Lethe has always run it); else
  // the normal answers' NLL (GradDiff, and open-unlearning's retain loss for the newer methods).
  bool retain_kl = false;
};
MethodNeeds method_needs(const UnlearnOptions& o);

// ---- The options schema ----------------------------------------------------------------------

// The two sections of a spec that hold training options: "unlearn" and "finetune".
enum class Section { Unlearn, Finetune };
const char* section_name(Section s);

enum class OptionType {
  Integer,  // JSON integer; CLI: a whole number
  Real,     // JSON number
  Choice,   // JSON string, one of `choices`
  Switch,   // true, false or "auto" (CLI: on, off or auto)
  Names,    // JSON array of module-like names (CLI: comma-separated)
};

struct OptionDef {
  std::string key;  // the field in the spec's section; nested with dots: "lora.rank"
  OptionType type = OptionType::Real;
  std::string label;  // the workbench's row label
  std::string help;   // one sentence, for --help and tooltips
  std::string unit;   // shown after the value: "steps", "sequences" (may be empty)
  // Default per section; null: the option is not in that section.
  io::Json unlearn_default, finetune_default;
  std::optional<double> min, max;  // bounds, inclusive unless marked exclusive
  bool min_exclusive = false, max_exclusive = false;
  std::vector<std::string> choices;        // Choice: the allowed values
  std::vector<std::string> choice_labels;  // Choice: what the workbench shows (same order; optional)
  std::vector<Method> methods;             // unlearning methods that use it; empty: every method
  bool basic = false;                      // the workbench shows it without opening "More options"
  bool slider = false;                     // the workbench adds a slider (0..3) beside the spin box
  std::string zero_means;                  // what 0 means, shown instead of "0" ("off (full parameters)")
  // Writes a checked value into the options (and reads it back, for the GUI and reports).
  std::function<void(UnlearnOptions&, const io::Json&)> set;
  std::function<io::Json(const UnlearnOptions&)> get;

  std::string flag() const;          // "--lora-rank" from "lora.rank", "--grad-accum" from "grad_accum"
  std::vector<std::string> aliases;  // older CLI names that still work ("--stop-ce")
  bool in(Section s) const { return !(s == Section::Unlearn ? unlearn_default : finetune_default).is_null(); }
  const io::Json& default_for(Section s) const { return s == Section::Unlearn ? unlearn_default : finetune_default; }
  bool used_by(Method m) const;
  std::string describe_range() const;  // "at least 1", "> 0", "0 .. 1", "fp32, bf16 or auto"
};

// Every option, in the order the CLI lists and the workbench shows them.
const std::deque<OptionDef>& option_schema();  // a deque: registering never moves an option
// Adds an option (an extension, or a test): it appears in the spec, the CLI and the workbench's
// Method panel built after this call. Throws lethe::Error on a duplicate or malformed definition.
void register_option(OptionDef def);
const OptionDef* find_option(const std::string& key);

// One problem with where it is: a JSON path in a spec ("unlearn.lr") or a CLI flag ("--lr").
struct Problem {
  std::string path;
  std::string message;
  std::string text() const { return path.empty() ? message : path + ": " + message; }
};

// Checks a JSON value against its definition; nullopt when it is valid.
std::optional<std::string> check_value(const OptionDef& def, const io::Json& v);
// A command-line or text-field value to the option's JSON value (integers, numbers, on/off/auto,
// comma lists); nullopt and *error set when the text does not parse.
std::optional<io::Json> parse_text(const OptionDef& def, const std::string& text, std::string* error);

// Reads a section object ({"eps1": 0.3, "lora": {"rank": 4}}) into `o`, starting from the
// section's defaults (fine-tuning: lr 1e-4, 200 steps). Every problem is appended with its path
// `prefix + "." + key` (prefix "" gives the bare key); unknown fields are problems unless listed
// in `also_known`. Then the rules that tie options together (not all three weights 0, warm-up
// shorter than the run, ...).
UnlearnOptions read_options(const io::Json& section, Section which, const std::string& prefix, std::vector<Problem>& problems,
                            const std::vector<std::string>& also_known = {});
// The section's defaults as a JSON object in the spec's shape (the workbench's new document).
io::Json default_section(Section which);

}  // namespace lethe::unlearn
