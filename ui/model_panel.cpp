#include "model_panel.h"

#include <algorithm>

#include <QComboBox>
#include <QFormLayout>
#include <QSignalBlocker>
#include <QGroupBox>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QScrollArea>
#include <QSortFilterProxyModel>
#include <QSpinBox>
#include <QTableView>
#include <QToolButton>
#include <QVBoxLayout>

#include "tensor_table_model.h"
#include "util/error.h"
#include "util/cuda_info.h"
#include "util/runtime.h"

namespace lethe::ui {
namespace {
QString qs(const std::string& s) { return QString::fromStdString(s); }
QString yesNo(bool b) { return b ? QObject::tr("yes") : QObject::tr("no"); }

// Summary rows: key (object name and field() key), label shown to the user.
const std::pair<const char*, const char*> kFields[] = {
    {"type", "Type"},        {"layers", "Layers"},       {"hidden", "Hidden / heads"}, {"ffn", "MLP width"},
    {"vocab", "Vocabulary"}, {"positions", "Positions"}, {"details", "Details"},       {"special", "Special ids"},
    {"weights", "Weights"},  {"tokenizer", "Tokenizer"}, {"parameters", "Parameters"},
};
const std::pair<const char*, const char*> kMemory[] = {
    {"mem_inference_fp32", "Inference, fp32"},
    {"mem_inference_bf16", "Inference, bf16"},
    {"mem_full", "Unlearn, full (fp32, AdamW, reference copy)"},
    {"mem_lora", "Unlearn, LoRA (fp32 base = reference)"},
    {"mem_lora_bf16", "Unlearn, LoRA (bf16 base)"},
    {"mem_step_full", "One step, full parameters"},
    {"mem_step_lora", "One step, LoRA"},
};
}  // namespace

ModelPanel::ModelPanel(QWidget* parent) : QWidget(parent) {
  QVBoxLayout* root = buildScrollArea();
  buildTitleRow(root);
  buildRuntimeRow(root);
  buildErrorLabel(root);
  buildArchitecture(root);
  buildMemory(root);
  buildTensorTable(root);
}

// Everything scrolls together, so the dock stays usable on small screens. Returns the layout of
// the scrolled content.
QVBoxLayout* ModelPanel::buildScrollArea() {
  auto* outer = new QVBoxLayout(this);
  outer->setContentsMargins(0, 0, 0, 0);
  auto* scroll = new QScrollArea(this);
  scroll->setWidgetResizable(true);
  scroll->setFrameShape(QFrame::NoFrame);
  // Vertical only: long values wrap to the dock's width (the tensor table scrolls on its own).
  scroll->setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
  auto* content = new QWidget(scroll);
  scroll->setWidget(content);
  outer->addWidget(scroll);
  return new QVBoxLayout(content);
}

// The folder's name (or what to open) and the Open button.
void ModelPanel::buildTitleRow(QVBoxLayout* root) {
  auto* top = new QHBoxLayout;
  title_ = new QLabel(tr("No model open. Open a Hugging Face model folder (config.json + safetensors)."), this);
  title_->setObjectName("model_title");
  title_->setWordWrap(true);
  title_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  auto* open = new QPushButton(tr("Open…"), this);
  open->setObjectName("model_open");
  open->setToolTip(tr("Open a model folder (Ctrl+O)"));
  connect(open, &QPushButton::clicked, this, &ModelPanel::openRequested);
  top->addWidget(title_, 1);
  top->addWidget(open, 0, Qt::AlignTop);
  root->addLayout(top);
}

// Where and in what precision runs load the model, and the prompt format.
void ModelPanel::buildRuntimeRow(QVBoxLayout* root) {
  auto* rt = new QHBoxLayout;
  rt->addWidget(new QLabel(tr("Run on"), this));
  device_ = new QComboBox(this);
  device_->setObjectName("model_device");
  device_->addItems({"auto", "cpu"});
  // Each visible GPU with its name and free memory; none on a CPU-only libtorch.
  for (const auto& d : lethe::cuda_devices()) {
    device_->addItem(QString("cuda:%1").arg(d.index));
    device_->setItemData(
        device_->count() - 1,
        QString("%1, %2 of %3 MiB free").arg(QString::fromStdString(d.name)).arg(d.free_bytes >> 20).arg(d.total_bytes >> 20),
        Qt::ToolTipRole);
  }
  device_->setToolTip(tr("auto: CUDA when this libtorch has it and a GPU is visible, else the CPU"));
  dtype_ = new QComboBox(this);
  dtype_->setObjectName("model_dtype");
  dtype_->addItems({"fp32", "bf16", "fp16"});
  dtype_->setToolTip(tr("fp16 needs CUDA; bf16 is fast on recent CPUs"));
  promptFormat_ = new QComboBox(this);
  promptFormat_->setObjectName("model_prompt_format");
  promptFormat_->addItems({"paper", "chat"});
  promptFormat_->setToolTip(tr("How questions and answers are put to the model: paper = \"### Question: … ### Answer: …\" "
                               "(llm_unlearn's template); chat = the folder's chat template (instruct models; corrected mode)"));
  connect(promptFormat_, &QComboBox::currentTextChanged, this, [this](const QString& f) { Q_EMIT promptFormatChanged(f); });
  rt->addWidget(device_);
  rt->addWidget(dtype_);
  rt->addWidget(new QLabel(tr("Prompt"), this));
  rt->addWidget(promptFormat_);
  rt->addStretch(1);
  root->addLayout(rt);
  auto emitRuntime = [this] { Q_EMIT runtimeChanged(device_->currentText(), dtype_->currentText()); };
  connect(device_, &QComboBox::currentTextChanged, this, emitRuntime);
  connect(dtype_, &QComboBox::currentTextChanged, this, emitRuntime);
}

// Why the last folder did not open (hidden until then).
void ModelPanel::buildErrorLabel(QVBoxLayout* root) {
  error_ = new QLabel(this);
  error_->setObjectName("model_error");
  error_->setWordWrap(true);
  error_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  error_->setStyleSheet("QLabel { color: #c62828; }");
  error_->hide();
  root->addWidget(error_);
}

// One row per summary field (kFields), filled by showSummary().
void ModelPanel::buildArchitecture(QVBoxLayout* root) {
  auto* arch = new QGroupBox(tr("Architecture"), this);
  form_ = new QFormLayout(arch);
  form_->setFieldGrowthPolicy(QFormLayout::AllNonFixedFieldsGrow);
  for (const auto& [key, label] : kFields) {
    auto* v = new QLabel(QStringLiteral("—"), arch);
    v->setObjectName(QString("field_") + key);
    v->setTextInteractionFlags(Qt::TextSelectableByMouse);
    v->setWordWrap(true);
    form_->addRow(tr(label), v);
  }
  root->addWidget(arch);
}

// The LoRA rank and one row per memory estimate (kMemory), filled by updateMemory().
void ModelPanel::buildMemory(QVBoxLayout* root) {
  auto* mem = new QGroupBox(tr("Memory"), this);
  auto* memLayout = new QVBoxLayout(mem);
  auto* rankRow = new QHBoxLayout;
  loraLabel_ = new QLabel(tr("LoRA rank on the default targets"), mem);
  rankRow->addWidget(loraLabel_);
  loraRank_ = new QSpinBox(mem);
  loraRank_->setObjectName("lora_rank");
  loraRank_->setRange(1, 1024);
  loraRank_->setValue(32);
  rankRow->addWidget(loraRank_);
  rankRow->addStretch(1);
  memLayout->addLayout(rankRow);
  memoryForm_ = new QFormLayout;
  for (const auto& [key, label] : kMemory) {
    auto* v = new QLabel(QStringLiteral("—"), mem);
    v->setObjectName(QString("field_") + key);
    v->setWordWrap(true);
    memoryForm_->addRow(tr(label), v);
  }
  memLayout->addLayout(memoryForm_);
  stepNote_ = new QLabel(mem);
  stepNote_->setObjectName("step_memory_note");
  stepNote_->setWordWrap(true);
  memLayout->addWidget(stepNote_);
  connect(loraRank_, &QSpinBox::valueChanged, this, [this] { updateMemory(); });
  root->addWidget(mem);
}

// The filter box and the sortable, filterable table of tensors: an advanced section, collapsed
// until asked for (the architecture summary above is what most people open a model for).
void ModelPanel::buildTensorTable(QVBoxLayout* root) {
  auto* toggle = new QToolButton(this);
  toggle->setObjectName("tensors_toggle");
  toggle->setText(tr("Tensors (advanced)"));
  toggle->setCheckable(true);
  toggle->setChecked(false);
  toggle->setToolButtonStyle(Qt::ToolButtonTextBesideIcon);
  toggle->setArrowType(Qt::RightArrow);
  toggle->setAutoRaise(true);
  root->addWidget(toggle);
  filter_ = new QLineEdit(this);
  filter_->setPlaceholderText(tr("Filter tensors (e.g. layers.0. or q_proj)"));
  filter_->setClearButtonEnabled(true);
  root->addWidget(filter_);
  tensors_ = new TensorTableModel(this);
  proxy_ = new QSortFilterProxyModel(this);
  proxy_->setSourceModel(tensors_);
  proxy_->setSortRole(Qt::UserRole);
  proxy_->setFilterKeyColumn(TensorTableModel::Name);
  proxy_->setFilterCaseSensitivity(Qt::CaseInsensitive);
  connect(filter_, &QLineEdit::textChanged, proxy_, &QSortFilterProxyModel::setFilterFixedString);
  table_ = new QTableView(this);
  table_->setObjectName("tensor_table");
  table_->setModel(proxy_);
  table_->setSortingEnabled(true);
  table_->sortByColumn(TensorTableModel::Name, Qt::AscendingOrder);
  table_->setAlternatingRowColors(true);
  table_->setSelectionBehavior(QAbstractItemView::SelectRows);
  table_->verticalHeader()->hide();
  table_->horizontalHeader()->setSectionResizeMode(TensorTableModel::Name, QHeaderView::Stretch);
  table_->horizontalHeader()->setSectionResizeMode(TensorTableModel::Shape, QHeaderView::ResizeToContents);
  table_->horizontalHeader()->setSectionResizeMode(TensorTableModel::Params, QHeaderView::ResizeToContents);
  table_->horizontalHeader()->setSectionResizeMode(TensorTableModel::DType, QHeaderView::ResizeToContents);
  table_->horizontalHeader()->setSectionResizeMode(TensorTableModel::File, QHeaderView::ResizeToContents);
  table_->setMinimumHeight(220);
  table_->setWordWrap(false);
  table_->setTextElideMode(Qt::ElideLeft);  // the distinctive end of a name stays visible
  root->addWidget(table_, 1);
  filter_->setVisible(false);
  table_->setVisible(false);
  root->addStretch(1);  // keeps the summary at the top while the table is folded away
  const int spacer = root->count() - 1;
  connect(toggle, &QToolButton::toggled, this, [this, toggle, root, spacer](bool open) {
    toggle->setArrowType(open ? Qt::DownArrow : Qt::RightArrow);
    filter_->setVisible(open);
    table_->setVisible(open);
    root->setStretch(spacer, open ? 0 : 1);
  });
}

bool ModelPanel::openFolder(const QString& dir) {
  try {
    summary_ = model::inspect_model(dir.toStdString(), loraRank_->value());
  } catch (const std::exception& e) {
    const QString msg = QString::fromStdString(e.what());
    error_->setText(tr("Could not open the model: %1").arg(msg));
    error_->show();
    Q_EMIT loadFailed(msg);
    return false;
  }
  error_->hide();
  showSummary();
  Q_EMIT modelOpened(dir);
  return true;
}

void ModelPanel::showSummary() {
  const auto& s = *summary_;
  const auto& c = s.info;
  auto set = [this](const char* key, const QString& text) {
    if (auto* l = findChild<QLabel*>(QString("field_") + key)) l->setText(text);
  };
  title_->setText(QString("<b>%1</b>").arg(qs(s.dir).toHtmlEscaped()));
  set("type", qs(s.model_type) + (s.architectures.empty() ? QString() : " (" + qs(s.architectures.front()) + ")"));
  set("layers", QString::number(c.num_layers));
  QString heads = tr("%1 / %2 heads").arg(c.hidden_size).arg(c.num_heads);
  if (c.num_kv_heads != c.num_heads) heads += tr(", %1 kv heads").arg(c.num_kv_heads);
  set("hidden", heads + tr(" (head dim %1)").arg(c.head_dim));
  set("ffn", QString::number(c.intermediate_size));
  set("vocab", QString::number(c.vocab_size) + tr(", tied lm_head %1").arg(yesNo(s.lm_head_tied)));
  set("positions", QString::number(c.max_positions));
  QStringList details;
  for (const auto& [k, v] : c.attributes) details << qs(k) + ": " + qs(v);
  set("details", details.join("\n"));
  QStringList eos;
  for (int64_t e : c.eos_ids) eos << QString::number(e);
  set("special", tr("bos %1, eos %2, pad %3").arg(c.bos_id).arg(eos.join(",")).arg(c.pad_id));
  QStringList files;
  for (const auto& f : s.weight_files) files << qs(f);
  set("weights", tr("%1: %2 (%3 on disk)")
                     .arg(qs(s.weights_format), files.join(", "), qs(model::human_bytes(static_cast<int64_t>(s.weights_bytes)))));
  QStringList tok;
  for (const auto& f : s.tokenizer_files) tok << qs(f);
  set("tokenizer", tok.isEmpty() ? tr("none in folder") : tok.join(", "));
  QString params = QLocale().toString(static_cast<qlonglong>(s.n_params)) + " (" + qs(model::human_count(s.n_params)) + ")";
  if (!s.tensors_listed) params += tr(" — from config.json; pytorch_model.bin is read when the model loads");
  set("parameters", params);
  tensors_->setTensors(s.tensors);
  updateMemory();
}

void ModelPanel::updateMemory() {
  if (!summary_) return;
  const int rank = loraRank_->value();
  const auto targets = summary_->config->default_lora_targets();
  auto m = model::estimate_memory(summary_->n_params, summary_->config->lora_param_count(rank, targets), rank);
  QStringList names;
  for (const auto& t : targets) names << qs(t);
  loraLabel_->setText(tr("LoRA rank on %1").arg(names.join(", ")));
  auto set = [this](const char* key, int64_t bytes, const QString& extra = {}) {
    if (auto* l = findChild<QLabel*>(QString("field_") + key)) l->setText(qs(model::human_bytes(bytes)) + extra);
  };
  set("mem_inference_fp32", m.inference_fp32);
  set("mem_inference_bf16", m.inference_bf16);
  set("mem_full", m.unlearn_full_fp32);
  set("mem_lora", m.unlearn_lora_fp32, tr("  (%1 adapter params)").arg(qs(model::human_count(m.lora_params))));
  set("mem_lora_bf16", m.unlearn_lora_bf16);

  // One step's peak, activations included, at the spec's batch, K, precision and mode.
  model::StepShape shape = step_;
  static const bool explicit_attention = lethe::runtime_info().explicit_attention;
  shape.explicit_attention = explicit_attention;
  const int64_t ram = model::physical_memory_bytes();
  auto setStep = [&](const char* key, int64_t lora_params) {
    shape.lora_params = lora_params;
    shape.lora_targets = static_cast<int64_t>(targets.size());
    const model::StepMemory e = model::estimate_step_memory(summary_->info, summary_->n_params, shape);
    auto* l = findChild<QLabel*>(QString("field_") + key);
    if (!l) return;
    const std::string warning = model::memory_warning(e.total(), ram, "this machine's memory (RAM)", shape);
    l->setText(warning.empty()
                   ? qs(model::human_bytes(e.total()))
                   : tr("%1 — more than this machine's %2").arg(qs(model::human_bytes(e.total())), qs(model::human_bytes(ram))));
    l->setStyleSheet(warning.empty() ? QString() : QStringLiteral("color: #c0392b;"));
    l->setToolTip(qs(e.describe()) + (warning.empty() ? QString() : "\n" + qs(warning)));
  };
  setStep("mem_step_full", 0);
  setStep("mem_step_lora", m.lora_params);
  stepNote_->setText(tr("The first five rows: weights and optimizer state. A step adds activations: at batch %1, "
                        "%2 tokens per row, K %3, %4 mode, %5 (the spec's; hover for the parts).")
                         .arg(step_.batch)
                         .arg(step_.seq)
                         .arg(step_.K)
                         .arg(step_.faithful ? tr("faithful") : tr("corrected"))
                         .arg(step_.bf16 ? tr("bf16 compute") : tr("fp32")));
}

void ModelPanel::setStepShape(int batch, int K, bool bf16, bool faithful) {
  step_.batch = std::max(1, batch);
  step_.K = std::max(0, K);
  step_.bf16 = bf16;
  step_.faithful = faithful;
  updateMemory();
}

void ModelPanel::setRuntime(const QString& device, const QString& dtype) {
  const QSignalBlocker a(device_), b(dtype_);
  device_->setCurrentText(device);
  dtype_->setCurrentText(dtype);
}

void ModelPanel::setPromptFormat(const QString& format) {
  const QSignalBlocker b(promptFormat_);
  promptFormat_->setCurrentText(format == "chat" ? "chat" : "paper");
}

QString ModelPanel::field(const QString& key) const {
  auto* l = findChild<QLabel*>("field_" + key);
  return l ? l->text() : QString();
}

QString ModelPanel::errorText() const { return error_->isHidden() ? QString() : error_->text(); }
int ModelPanel::tensorRows() const { return proxy_->rowCount(); }

}  // namespace lethe::ui
