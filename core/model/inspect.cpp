#include "model/inspect.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cinttypes>
#include <cstdio>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>

#include "util/error.h"

namespace lethe::model {
namespace fs = std::filesystem;

namespace {

// Sizes a config may make absurd are counted in long double: no overflow, exact enough to compare.
long double numel_of(const std::vector<int64_t>& shape) {
  long double n = 1;
  for (int64_t d : shape) n *= static_cast<long double>(d);
  return n;
}

std::string count_text(long double n) {
  if (n < 1e12L) return human_count(static_cast<int64_t>(n));
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3Lg", n);
  return buf;
}

std::string dims_text(const ExpectedTensor& t) {
  std::string s = "[";
  for (size_t i = 0; i < t.dims.size(); ++i) s += (i ? ", " : "") + t.dims[i];
  return s + "]";
}

// "'NAME' [1000000000000, 128] (vocab_size, word_embed_proj_dim)"
std::string tensor_text(const ExpectedTensor& t) {
  return "'" + t.name + "' " + io::shape_string(t.shape) + " from the config's " + dims_text(t);
}

bool skipped(const ExpectedTensor& t, bool backbone_only) { return backbone_only && t.name == "lm_head.weight"; }

// The layers' linear maps alone, before the full tensor list is built: a config with absurdly
// many layers must not make that list.
void check_layers_fit(const ModelConfig& cfg, long double stored, const std::string& stored_what, const std::string& src) {
  const ModelInfo info = cfg.info();
  long double per_layer = 0;
  for (const auto& l : cfg.layer_linears()) per_layer += static_cast<long double>(l.in) * static_cast<long double>(l.out);
  const long double layers = static_cast<long double>(info.num_layers) * per_layer;
  if (layers > stored)
    throw Error(src + ": num_hidden_layers " + std::to_string(info.num_layers) + " implies " + count_text(layers) +
                " values in the layers' linear maps alone, but the weights hold " + stored_what);
}

void check_total_fits(const std::vector<ExpectedTensor>& expected, bool backbone_only, long double stored,
                      const std::string& stored_what, const std::string& src) {
  long double total = 0;
  const ExpectedTensor* largest = nullptr;
  for (const auto& t : expected) {
    if (skipped(t, backbone_only)) continue;
    total += numel_of(t.shape);
    if (!largest || numel_of(t.shape) > numel_of(largest->shape)) largest = &t;
  }
  if (total > stored)
    throw Error(src + ": the config implies " + count_text(total) + " parameters (the largest, " + tensor_text(*largest) +
                "), but the weights hold " + stored_what);
}

}  // namespace

void check_tensor_shapes(const ModelConfig& cfg, const std::map<std::string, StoredTensor>& stored, const std::string& dir,
                         bool backbone_only) {
  for (const auto& t : cfg.expected_tensors()) {
    auto it = stored.find(t.name);
    if (it == stored.end()) {
      if (skipped(t, backbone_only)) continue;
      throw Error(dir + ": missing tensor '" + t.name + "' (expected shape " + io::shape_string(t.shape) + ", the config's " +
                  dims_text(t) + ")");
    }
    const StoredTensor& s = it->second;
    if (s.shape == t.shape) continue;
    std::string msg = dir + "/" + s.file + ": tensor '" + s.key + "': shape " + io::shape_string(s.shape) +
                      " disagrees with config.json (expected " + io::shape_string(t.shape) + "), the config's " + dims_text(t);
    if (s.shape.size() == 2 && t.shape.size() == 2 && s.shape[0] == t.shape[1] && s.shape[1] == t.shape[0])
      msg += "; it looks transposed";
    throw Error(msg);
  }
}

void check_fits_memory(const ModelConfig& cfg, int64_t bytes_per_value, int64_t available, const std::string& memory,
                       const std::string& config_src) {
  if (available <= 0) return;  // the system does not say: the allocation itself will tell
  long double total = 0;
  const ExpectedTensor* largest = nullptr;
  const auto expected = cfg.expected_tensors();
  for (const auto& t : expected) {
    total += numel_of(t.shape);
    if (!largest || numel_of(t.shape) > numel_of(largest->shape)) largest = &t;
  }
  const long double bytes = total * static_cast<long double>(bytes_per_value);
  if (bytes > static_cast<long double>(available)) {
    const std::string need = bytes < 9e18L ? human_bytes(static_cast<int64_t>(bytes)) : count_text(bytes) + " B";
    throw Error(config_src + ": the model needs " + need + " for its " + count_text(total) + " parameters at " +
                std::to_string(bytes_per_value) + " bytes each (the largest, " + tensor_text(*largest) + "), more than " +
                memory + " (" + human_bytes(available) + ")");
  }
}

int64_t physical_memory_bytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page <= 0) return 0;
  return static_cast<int64_t>(pages) * static_cast<int64_t>(page);
}

int64_t available_memory_bytes() {
  int64_t m = physical_memory_bytes();
  auto lower = [&m](int64_t v) {
    if (v > 0 && (m <= 0 || v < m)) m = v;
  };
  rlimit as{};
  if (::getrlimit(RLIMIT_AS, &as) == 0 && as.rlim_cur != RLIM_INFINITY) lower(static_cast<int64_t>(as.rlim_cur));
  std::ifstream cg("/sys/fs/cgroup/memory.max");  // cgroup v2; "max" when unlimited
  std::string v;
  if (cg >> v && !v.empty() && std::isdigit(static_cast<unsigned char>(v[0]))) lower(std::stoll(v));
  return m;
}

CheckedFolder check_model_folder(const fs::path& dir, bool backbone_only) {
  return check_model_folder(io::ModelFolder::open(dir), backbone_only);
}

CheckedFolder check_model_folder(io::ModelFolder opened, bool backbone_only) {
  CheckedFolder c{std::move(opened), nullptr, {}};
  const fs::path dir = c.folder.dir();
  const std::string src = (dir / "config.json").string();
  c.config = parse_model_config(c.folder.config(), src);
  long double stored = 0;
  std::string stored_what;
  if (c.folder.format() == io::WeightsFormat::PytorchBin) {
    // Its tensor table is read when the model loads; every value takes at least a byte of the file.
    std::error_code ec;
    const auto& bin = c.folder.weight_files().front();
    const auto size = fs::file_size(bin, ec);
    stored = static_cast<long double>(ec ? 0 : size);
    stored_what = "at most " + count_text(stored) + " (" + bin.filename().string() + " has " +
                  human_bytes(static_cast<int64_t>(ec ? 0 : size)) + ")";
  } else {
    for (const auto& [name, e] : c.folder.tensors()) {
      c.stored[c.config->canonical_key(name)] =
          StoredTensor{e.info->shape, c.folder.weight_files()[e.shard].filename().string(), name};
      stored += static_cast<long double>(e.info->numel());
    }
    stored_what = count_text(stored) + " values in all";
  }
  // A config with absurdly many layers must not build the tensor list it implies: with a tensor
  // table, every layer holds at least one tensor; without one, its linear maps need the bytes.
  const int64_t layers = c.config->info().num_layers;
  if (c.folder.format() == io::WeightsFormat::PytorchBin) check_layers_fit(*c.config, stored, stored_what, src);
  else if (layers > static_cast<int64_t>(c.stored.size()))
    throw Error(src + ": num_hidden_layers " + std::to_string(layers) + ", but the weights hold " +
                std::to_string(c.stored.size()) + " tensors in all");
  // Stored shapes name the config field that disagrees (an absurd vocab_size included); without a
  // tensor table (pytorch_model.bin) the file's size bounds what the config may imply.
  if (c.folder.format() == io::WeightsFormat::PytorchBin)
    check_total_fits(c.config->expected_tensors(), backbone_only, stored, stored_what, src);
  else check_tensor_shapes(*c.config, c.stored, dir.string(), backbone_only);
  return c;
}

MemoryEstimate estimate_memory(int64_t n_params, int64_t lora_params, int lora_rank) {
  MemoryEstimate m;
  m.n_params = n_params;
  m.lora_params = lora_params;
  m.lora_rank = lora_rank;
  m.inference_fp32 = 4 * n_params;
  m.inference_bf16 = 2 * n_params;
  m.unlearn_full_fp32 = 20 * n_params;
  m.unlearn_lora_fp32 = 4 * n_params + 16 * lora_params;
  m.unlearn_lora_bf16 = 2 * n_params + 16 * lora_params;
  return m;
}

ModelSummary inspect_model(const fs::path& dir, int lora_rank, const StepShape& step) {
  io::ModelFolder opened = io::ModelFolder::open(dir);
  // A sequence classifier's folder (its `score` head stored) is a backbone without an LM head.
  const bool classifier = opened.tensors().count("score.weight") > 0;
  CheckedFolder checked = check_model_folder(std::move(opened), classifier);
  const io::ModelFolder& folder = checked.folder;
  ModelSummary s;
  s.dir = dir.string();
  s.config = checked.config;
  s.info = s.config->info();
  s.model_type = s.info.family;
  if (folder.config().contains("architectures") && folder.config()["architectures"].is_array())
    for (const auto& a : folder.config()["architectures"])
      if (a.is_string()) s.architectures.push_back(a.get<std::string>());
  s.weights_format = io::weights_format_name(folder.format());
  for (const auto& f : folder.weight_files()) {
    s.weight_files.push_back(f.filename().string());
    std::error_code ec;
    auto sz = fs::file_size(f, ec);
    if (!ec) s.weights_bytes += sz;
  }
  s.tokenizer_files = folder.tokenizer_files();
  s.warnings = folder.warnings();

  s.tensors_listed = folder.format() != io::WeightsFormat::PytorchBin;
  if (s.tensors_listed) {
    std::map<std::string, int64_t> by_dtype;
    const io::TensorInfo* embed = nullptr;
    const io::TensorInfo* head = nullptr;
    for (const auto& [name, e] : folder.tensors()) {
      TensorRow r{name, std::string(io::dtype_name(e.info->dtype)), e.info->shape, e.info->numel(),
                  folder.weight_files()[e.shard].filename().string()};
      s.tensors.push_back(r);
      by_dtype[r.dtype] += r.numel;
      s.n_params += r.numel;
      const std::string canonical = s.config->canonical_key(name);
      if (canonical == "model.decoder.embed_tokens.weight" || canonical == "model.embed_tokens.weight") embed = e.info;
      if (name == "lm_head.weight") head = e.info;
    }
    // A stored lm_head that the config ties to the embedding is the same parameter.
    s.lm_head_tied = s.info.tied_head;
    if (head && embed && s.info.tied_head && head->shape == embed->shape) {
      s.n_params -= head->numel();
      by_dtype[std::string(io::dtype_name(head->dtype))] -= head->numel();
    }
    for (auto& [d, n] : by_dtype)
      if (n > 0) s.params_by_dtype.emplace_back(d, n);
  } else {
    s.n_params = s.config->param_count();
    s.lm_head_tied = s.info.tied_head;
  }
  const auto targets = s.config->default_lora_targets();
  s.memory = estimate_memory(s.n_params, s.config->lora_param_count(lora_rank, targets), lora_rank);
  s.memory.lora_targets = targets;
  s.step = step;
  StepShape full = step, lora = step;
  full.lora_params = 0;
  lora.lora_params = s.memory.lora_params;
  lora.lora_targets = static_cast<int64_t>(s.config->resolve_lora_targets(targets).size());
  s.step_full = estimate_step_memory(s.info, s.n_params, full);
  s.step_lora = estimate_step_memory(s.info, s.n_params, lora);
  s.physical_memory = physical_memory_bytes();
  return s;
}

std::string human_bytes(int64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024.0 && u < 4) {
    v /= 1024.0;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.2f %s", v, units[u]);
  return buf;
}

std::string human_count(int64_t n) {
  char buf[32];
  if (n >= 1'000'000'000) std::snprintf(buf, sizeof buf, "%.2fB", n / 1e9);
  else if (n >= 1'000'000) std::snprintf(buf, sizeof buf, "%.1fM", n / 1e6);
  else if (n >= 1'000) std::snprintf(buf, sizeof buf, "%.1fK", n / 1e3);
  else std::snprintf(buf, sizeof buf, "%" PRId64, n);
  return buf;
}

std::string summary_text(const ModelSummary& s, bool list_tensors) {
  const ModelInfo& c = s.info;
  std::ostringstream o;
  auto yn = [](bool b) { return b ? "yes" : "no"; };
  auto ids = [](const std::vector<int64_t>& v) {
    std::string r;
    for (size_t i = 0; i < v.size(); ++i) r += (i ? "," : "") + std::to_string(v[i]);
    return r;
  };
  o << "model         " << s.dir << "\n";
  o << "type          " << s.model_type;
  if (!s.architectures.empty()) o << " (" << s.architectures.front() << ")";
  o << "\n";
  o << "layers        " << c.num_layers << "   hidden " << c.hidden_size << "   heads " << c.num_heads;
  if (c.num_kv_heads != c.num_heads) o << " (kv " << c.num_kv_heads << ")";
  o << "   head dim " << c.head_dim << "   mlp " << c.intermediate_size << "\n";
  o << "vocab         " << c.vocab_size << "   positions " << c.max_positions << "   tied lm_head " << yn(s.lm_head_tied) << "\n";
  for (const auto& [k, v] : c.attributes) {
    std::string key = k;
    key.resize(std::max<size_t>(key.size() + 1, 14), ' ');
    o << key << v << "\n";
  }
  o << "special ids   bos " << c.bos_id << "   eos " << ids(c.eos_ids) << "   pad " << c.pad_id << "\n";
  o << "weights       " << s.weights_format << ": ";
  for (size_t i = 0; i < s.weight_files.size(); ++i) o << (i ? ", " : "") << s.weight_files[i];
  o << " (" << human_bytes(static_cast<int64_t>(s.weights_bytes)) << " on disk)\n";
  o << "tokenizer     ";
  if (s.tokenizer_files.empty()) o << "none in folder";
  for (size_t i = 0; i < s.tokenizer_files.size(); ++i) o << (i ? ", " : "") << s.tokenizer_files[i];
  o << "\n";
  o << "parameters    " << s.n_params << " (" << human_count(s.n_params) << ")";
  if (!s.tensors_listed) o << ", from config.json (pytorch_model.bin is read when the model loads)";
  for (const auto& [d, n] : s.params_by_dtype) o << "   " << d << ": " << human_count(n);
  o << "\n\n";
  const MemoryEstimate& m = s.memory;
  o << "memory (weights and optimizer state; activations and KV cache not included)\n";
  o << "  inference fp32                         " << human_bytes(m.inference_fp32) << "\n";
  o << "  inference bf16                         " << human_bytes(m.inference_bf16) << "\n";
  o << "  unlearn full, fp32 + AdamW + reference " << human_bytes(m.unlearn_full_fp32) << "\n";
  std::string targets;
  for (const auto& t : m.lora_targets) targets += (targets.empty() ? "" : ",") + t;
  o << "  unlearn LoRA r=" << m.lora_rank << " " << targets << " fp32: " << human_bytes(m.unlearn_lora_fp32) << "   ("
    << human_count(m.lora_params) << " adapter params; reference = adapters off)\n";
  o << "  unlearn LoRA r=" << m.lora_rank << " " << targets << " bf16 base: " << human_bytes(m.unlearn_lora_bf16) << "\n";
  const StepShape& st = s.step;
  o << "\none unlearning step, activations included (batch " << st.batch << ", " << st.seq << " tokens, K " << st.K << ", "
    << (st.faithful ? "faithful" : "corrected") << " mode, " << (st.bf16 ? "bf16 compute" : "fp32") << ")\n";
  o << "  full parameters  " << human_bytes(s.step_full.total()) << "   (" << s.step_full.describe() << ")\n";
  std::string lora_label = "LoRA r=" + std::to_string(m.lora_rank);
  lora_label.resize(std::max<size_t>(lora_label.size() + 1, 17), ' ');  // the width of "full parameters  "
  o << "  " << lora_label << human_bytes(s.step_lora.total()) << "   (" << s.step_lora.describe() << ")\n";
  for (const auto* e : {&s.step_full, &s.step_lora}) {
    StepShape shape = st;
    shape.lora_params = e == &s.step_lora ? m.lora_params : 0;
    const std::string w = memory_warning(e->total(), s.physical_memory, "this machine's memory (RAM)", shape);
    if (!w.empty()) o << "warning: " << (e == &s.step_lora ? "LoRA: " : "full parameters: ") << w << "\n";
  }
  for (const auto& w : s.warnings) o << "warning: " << w << "\n";
  if (list_tensors && s.tensors_listed) {
    o << "\ntensors (" << s.tensors.size() << ")\n";
    size_t width = 0;
    for (const auto& t : s.tensors) width = std::max(width, t.name.size());
    for (const auto& t : s.tensors) {
      o << "  " << t.name << std::string(width - t.name.size() + 2, ' ') << t.dtype
        << std::string(t.dtype.size() < 5 ? 5 - t.dtype.size() : 1, ' ') << io::shape_string(t.shape) << "\n";
    }
  }
  return o.str();
}

namespace {
io::Json step_json(const StepMemory& m) {
  return {{"weights", m.weights}, {"training", m.training}, {"autocast", m.autocast}, {"activations", m.activations},
          {"head", m.head},       {"runtime", m.runtime},   {"total", m.total()}};
}
}  // namespace

io::Json summary_json(const ModelSummary& s) {
  io::Json t = io::Json::array();
  for (const auto& r : s.tensors)
    t.push_back({{"name", r.name}, {"dtype", r.dtype}, {"shape", r.shape}, {"numel", r.numel}, {"file", r.file}});
  io::Json by_dtype = io::Json::object();
  for (const auto& [d, n] : s.params_by_dtype) by_dtype[d] = n;
  const MemoryEstimate& m = s.memory;
  return {
      {"dir", s.dir},
      {"model_type", s.model_type},
      {"architectures", s.architectures},
      {"family", s.info.family},
      {"config", s.config->to_json(s.info.torch_dtype)},
      {"weights", {{"format", s.weights_format}, {"files", s.weight_files}, {"bytes_on_disk", s.weights_bytes}}},
      {"tokenizer_files", s.tokenizer_files},
      {"n_params", s.n_params},
      {"params_by_dtype", by_dtype},
      {"lm_head_tied", s.lm_head_tied},
      {"tensors_listed", s.tensors_listed},
      {"tensors", t},
      {"memory_bytes",
       {{"inference_fp32", m.inference_fp32},
        {"inference_bf16", m.inference_bf16},
        {"unlearn_full_fp32", m.unlearn_full_fp32},
        {"unlearn_lora_fp32", m.unlearn_lora_fp32},
        {"unlearn_lora_bf16", m.unlearn_lora_bf16},
        {"lora_rank", m.lora_rank},
        {"lora_targets", m.lora_targets},
        {"lora_params", m.lora_params},
        {"note", "weights and optimizer state only; activations and KV cache not included"}}},
      {"step_memory_bytes",
       {{"batch", s.step.batch},
        {"seq", s.step.seq},
        {"K", s.step.K},
        {"mode", s.step.faithful ? "faithful" : "corrected"},
        {"precision", s.step.bf16 ? "bf16" : "fp32"},
        {"full", step_json(s.step_full)},
        {"lora", step_json(s.step_lora)},
        {"physical_memory", s.physical_memory}}},
      {"warnings", s.warnings},
  };
}

}  // namespace lethe::model
