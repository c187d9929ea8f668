#include "method_panel.h"

#include <QComboBox>
#include <QCoreApplication>
#include <QDir>
#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QMenu>
#include <QPushButton>
#include <QSlider>
#include <QSpinBox>
#include <QToolButton>
#include <QVBoxLayout>

#include "spec_model.h"
#include "util/runtime.h"

namespace lethe::ui {

namespace {
const char* kEpsKeys[3] = {"eps1", "eps2", "eps3"};

// The presets folder: beside the executable's source tree when run from a build, or installed.
QString presetsDir() {
  for (const QString& c : {QCoreApplication::applicationDirPath() + "/../../resources/presets",
                           QCoreApplication::applicationDirPath() + "/../share/lethe/presets", QDir::currentPath() + "/resources/presets"})
    if (QDir(c).exists()) return QDir(c).absolutePath();
  return {};
}
}  // namespace

MethodPanel::MethodPanel(SpecModel* spec, QWidget* parent) : QWidget(parent), spec_(spec) {
  auto* root = new QVBoxLayout(this);
  auto* top = new QHBoxLayout;
  auto* presets = new QToolButton(this);
  presets->setText(tr("Presets"));
  presets->setObjectName("presets_button");
  presets->setPopupMode(QToolButton::InstantPopup);
  auto* menu = new QMenu(presets);
  const QString dir = presetsDir();
  for (const QString& f : QDir(dir).entryList({"*.json"}, QDir::Files, QDir::Name))
    menu->addAction(QFileInfo(f).baseName(), this, [this, dir, f] { loadPreset(dir + "/" + f); });
  presets->setMenu(menu);
  presets->setEnabled(!menu->isEmpty());
  auto* load = new QPushButton(tr("Load spec…"), this);
  auto* save = new QPushButton(tr("Save spec…"), this);
  connect(load, &QPushButton::clicked, this, [this] {
    const QString f = QFileDialog::getOpenFileName(this, tr("Load an experiment spec"), {}, tr("Spec (*.json)"));
    if (!f.isEmpty()) loadPreset(f);
  });
  connect(save, &QPushButton::clicked, this, [this] {
    const QString f = QFileDialog::getSaveFileName(this, tr("Save the experiment spec"), "spec.json", tr("Spec (*.json)"));
    QString err;
    if (!f.isEmpty() && !spec_->save(f, &err)) problems_->setText(err);
  });
  top->addWidget(presets);
  top->addWidget(load);
  top->addWidget(save);
  top->addStretch(1);
  root->addLayout(top);

  auto* form = new QFormLayout;
  method_ = new QComboBox(this);
  method_->setObjectName("method");
  method_->addItem(tr("Paper: GA + random answers + KL"), "paper");
  method_->addItem(tr("GradDiff: GA + NLL on normal data"), "graddiff");
  method_->addItem(tr("NPO"), "npo");
  form->addRow(tr("Method"), method_);
  mode_ = new QComboBox(this);
  mode_->setObjectName("mode");
  mode_->addItem(tr("corrected (answer tokens, true KL)"), "corrected");
  mode_->addItem(tr("faithful (llm_unlearn's conventions and quirks)"), "faithful");
  form->addRow(tr("Mode"), mode_);
  addEps(form, "eps1", tr("ε1 forget (ascent)"));
  addEps(form, "eps2", tr("ε2 random answers"));
  addEps(form, "eps3", tr("ε3 normal-data KL"));
  lr_ = new QDoubleSpinBox(this);
  lr_->setObjectName("lr");
  lr_->setDecimals(8);
  lr_->setRange(1e-8, 1.0);
  lr_->setSingleStep(1e-6);
  form->addRow(tr("Learning rate"), lr_);
  steps_ = new QSpinBox(this);
  steps_->setObjectName("steps");
  steps_->setRange(1, 1000000);
  form->addRow(tr("Steps"), steps_);
  batch_ = new QSpinBox(this);
  batch_->setObjectName("batch");
  batch_->setRange(1, 512);
  form->addRow(tr("Batch"), batch_);
  k_ = new QSpinBox(this);
  k_->setObjectName("K");
  k_->setRange(1, 64);
  form->addRow(tr("K random answers"), k_);
  loraRank_ = new QSpinBox(this);
  loraRank_->setObjectName("lora_rank");
  loraRank_->setRange(0, 1024);
  loraRank_->setSpecialValueText(tr("off (full parameters)"));
  form->addRow(tr("LoRA rank"), loraRank_);
  seed_ = new QSpinBox(this);
  seed_->setObjectName("seed");
  seed_->setRange(0, 2147483647);
  form->addRow(tr("Seed"), seed_);
  precision_ = new QComboBox(this);
  precision_->setObjectName("precision");
  precision_->addItem("fp32");
  precision_->addItem("bf16");
  precision_->addItem("auto");
  precision_->setToolTip(tr("bf16: bf16 compute with fp32 master weights. auto: bf16 where the hardware has native bf16 "
                            "(a GPU of compute capability 8+, a CPU with AVX512-BF16 or AMX), else fp32."));
  form->addRow(tr("Precision"), precision_);
  precisionWarning_ = new QLabel(this);
  precisionWarning_->setObjectName("precision_warning");
  precisionWarning_->setWordWrap(true);
  precisionWarning_->setStyleSheet("QLabel { color: #b26a00; }");
  precisionWarning_->hide();
  form->addRow(QString(), precisionWarning_);
  root->addLayout(form);
  problems_ = new QLabel(this);
  problems_->setObjectName("spec_problems");
  problems_->setWordWrap(true);
  problems_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  root->addWidget(problems_);
  root->addStretch(1);

  auto edit = [this](const std::string& path, const io::Json& v) {
    if (!syncing_) spec_->set(path, v);
  };
  connect(method_, &QComboBox::currentIndexChanged, this, [this, edit] { edit("unlearn.method", method_->currentData().toString().toStdString()); });
  connect(mode_, &QComboBox::currentIndexChanged, this, [this, edit] { edit("unlearn.mode", mode_->currentData().toString().toStdString()); });
  connect(lr_, &QDoubleSpinBox::valueChanged, this, [edit](double v) { edit("unlearn.lr", v); });
  connect(steps_, &QSpinBox::valueChanged, this, [edit](int v) { edit("unlearn.steps", v); });
  connect(batch_, &QSpinBox::valueChanged, this, [edit](int v) { edit("unlearn.batch", v); });
  connect(k_, &QSpinBox::valueChanged, this, [edit](int v) { edit("unlearn.K", v); });
  connect(loraRank_, &QSpinBox::valueChanged, this, [edit](int v) { edit("unlearn.lora.rank", v); });
  connect(seed_, &QSpinBox::valueChanged, this, [edit](int v) { edit("seed", v); });
  connect(precision_, &QComboBox::currentTextChanged, this, [this, edit](const QString& v) {
    edit("unlearn.precision", v.toStdString());
    updatePrecisionWarning();
  });
  connect(spec_, &SpecModel::changed, this, &MethodPanel::updateProblems);
  syncFromSpec();
}

void MethodPanel::addEps(QFormLayout* form, const char* key, const QString& label) {
  const int i = key[3] - '1';
  auto* row = new QHBoxLayout;
  epsSlider_[i] = new QSlider(Qt::Horizontal, this);
  epsSlider_[i]->setRange(0, 300);  // 0.00 .. 3.00
  eps_[i] = new QDoubleSpinBox(this);
  eps_[i]->setObjectName(key);
  eps_[i]->setRange(0, 100);
  eps_[i]->setDecimals(2);
  eps_[i]->setSingleStep(0.05);
  row->addWidget(epsSlider_[i], 1);
  row->addWidget(eps_[i]);
  form->addRow(label, row);
  connect(epsSlider_[i], &QSlider::valueChanged, this, [this, i](int v) {
    if (!syncing_ && std::abs(eps_[i]->value() - v / 100.0) > 1e-9) eps_[i]->setValue(v / 100.0);
  });
  connect(eps_[i], &QDoubleSpinBox::valueChanged, this, [this, i, key](double v) {
    const bool s = syncing_;
    syncing_ = true;
    epsSlider_[i]->setValue(static_cast<int>(std::lround(std::min(v, 3.0) * 100)));
    syncing_ = s;
    if (!syncing_) spec_->set(std::string("unlearn.") + key, v);
  });
}

void MethodPanel::syncFromSpec() {
  syncing_ = true;
  auto setCombo = [](QComboBox* c, const QString& v) {
    const int i = c->findData(v);
    c->setCurrentIndex(i >= 0 ? i : c->findText(v));
  };
  setCombo(method_, QString::fromStdString(spec_->get("unlearn.method", "paper").get<std::string>()));
  setCombo(mode_, QString::fromStdString(spec_->get("unlearn.mode", "corrected").get<std::string>()));
  const double eps_default[3] = {0.5, 1.0, 1.0};
  for (int i = 0; i < 3; ++i) {
    const double v = spec_->get(std::string("unlearn.") + kEpsKeys[i], eps_default[i]).get<double>();
    eps_[i]->setValue(v);
    epsSlider_[i]->setValue(static_cast<int>(std::lround(std::min(v, 3.0) * 100)));
  }
  lr_->setValue(spec_->get("unlearn.lr", 2e-6).get<double>());
  steps_->setValue(spec_->get("unlearn.steps", 1000).get<int>());
  batch_->setValue(spec_->get("unlearn.batch", 2).get<int>());
  k_->setValue(spec_->get("unlearn.K", 5).get<int>());
  loraRank_->setValue(spec_->get("unlearn.lora.rank", 0).get<int>());
  seed_->setValue(spec_->get("seed", 8888).get<int>());
  precision_->setCurrentText(QString::fromStdString(spec_->get("unlearn.precision", "fp32").get<std::string>()));
  updatePrecisionWarning();
  syncing_ = false;
  updateProblems();
}

void MethodPanel::loadPreset(const QString& file) {
  QString err;
  if (!spec_->load(file, &err)) {
    problems_->setText(err);
    return;
  }
  syncFromSpec();
  Q_EMIT presetLoaded(file);
}

void MethodPanel::updateProblems() {
  const QStringList p = spec_->problems();
  problems_->setStyleSheet(p.isEmpty() ? "QLabel { color: palette(text); }" : "QLabel { color: #c62828; }");
  problems_->setText(p.isEmpty() ? tr("The spec is valid.") : p.join("\n"));
}

QString MethodPanel::problemsText() const { return problems_->text(); }

void MethodPanel::updatePrecisionWarning() {
  // bf16 on a CPU without native bf16 runs libtorch's matmuls many times slower than fp32.
  const io::Json dev = spec_->get("model.device", "auto");
  const bool cpu = !(dev.is_string() && dev.get<std::string>().rfind("cuda", 0) == 0);
  const bool slow = precision_->currentText() == "bf16" && cpu && !lethe::cpu_has_native_bf16();
  precisionWarning_->setText(QString::fromStdString(lethe::slow_bf16_warning(false)));
  precisionWarning_->setVisible(slow);
}

}  // namespace lethe::ui
