#include "method_panel.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDir>
#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QMenu>
#include <QPushButton>
#include <QSlider>
#include <QSpinBox>
#include <QToolButton>
#include <QVBoxLayout>
#include <cmath>

#include "spec_model.h"
#include "util/paths.h"
#include "util/runtime.h"

namespace lethe::ui {

namespace {
// The presets shipped with Lethe (source tree or installed), or none.
QString presetsDir() {
  try {
    return QString::fromStdString((resources_dir() / "resources" / "presets").string());
  } catch (const std::exception&) {
    return {};
  }
}

QString objectNameOf(const std::string& key) {
  QString n = QString::fromStdString(key);
  return n.replace('.', '_');
}

QString tooltipOf(const unlearn::OptionDef& d) {
  QString range = QString::fromStdString(d.describe_range());
  return QString::fromStdString(d.help) + " [" + range + "]";
}

int decimalsFor(const unlearn::OptionDef& d) {
  const double def = d.unlearn_default.is_number() ? d.unlearn_default.get<double>() : 1.0;
  return def != 0 && std::fabs(def) < 0.01 ? 8 : 3;
}
}  // namespace

MethodPanel::MethodPanel(SpecModel* spec, QWidget* parent) : QWidget(parent), spec_(spec) {
  auto* root = new QVBoxLayout(this);
  root->addWidget(buildPresetBar());
  auto* basic = new QFormLayout;
  root->addLayout(basic);
  // "More options": a check box that shows the other options' rows below it.
  more_ = new QCheckBox(tr("More options"), this);
  more_->setObjectName("more_options");
  auto* moreBody = new QWidget(this);
  auto* moreForm = new QFormLayout(moreBody);
  moreForm->setContentsMargins(0, 0, 0, 0);
  moreBody->setVisible(false);
  connect(more_, &QCheckBox::toggled, moreBody, &QWidget::setVisible);
  buildOptionRows(basic, moreForm);
  root->addWidget(more_);
  root->addWidget(moreBody);

  problems_ = new QLabel(this);
  problems_->setObjectName("spec_problems");
  problems_->setWordWrap(true);
  problems_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  root->addWidget(problems_);
  root->addStretch(1);
  connect(spec_, &SpecModel::changed, this, &MethodPanel::updateProblems);
  syncFromSpec();
}

QWidget* MethodPanel::buildPresetBar() {
  auto* bar = new QWidget(this);
  auto* top = new QHBoxLayout(bar);
  top->setContentsMargins(0, 0, 0, 0);
  auto* presets = new QToolButton(bar);
  presets->setText(tr("Presets"));
  presets->setObjectName("presets_button");
  presets->setPopupMode(QToolButton::InstantPopup);
  auto* menu = new QMenu(presets);
  const QString dir = presetsDir();
  if (!dir.isEmpty())
    for (const QString& f : QDir(dir).entryList({"*.json"}, QDir::Files, QDir::Name))
      menu->addAction(QFileInfo(f).baseName(), this, [this, dir, f] { loadPreset(dir + "/" + f); });
  presets->setMenu(menu);
  presets->setEnabled(!menu->isEmpty());
  auto* load = new QPushButton(tr("Load spec…"), bar);
  auto* save = new QPushButton(tr("Save spec…"), bar);
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
  return bar;
}

void MethodPanel::buildOptionRows(QFormLayout* basic, QFormLayout* more) {
  for (const auto& d : unlearn::option_schema()) {
    if (!d.in(unlearn::Section::Unlearn)) continue;
    QFormLayout* form = d.basic ? basic : more;
    rows_.push_back(makeRow(d, form));
    if (d.key == "precision") {
      precisionWarning_ = new QLabel(this);
      precisionWarning_->setObjectName("precision_warning");
      precisionWarning_->setWordWrap(true);
      precisionWarning_->setStyleSheet("QLabel { color: #b26a00; }");
      precisionWarning_->hide();
      form->addRow(QString(), precisionWarning_);
    }
  }
  seed_ = new QSpinBox(this);
  seed_->setObjectName("seed");
  seed_->setRange(0, 2147483647);
  seed_->setToolTip(tr("the run's seed: data order, random answers, dropout, LoRA initialisation, sampling"));
  basic->addRow(tr("Seed"), seed_);
  connect(seed_, &QSpinBox::valueChanged, this, [this](int v) { edit("seed", v); });
}

MethodPanel::Row MethodPanel::makeRow(const unlearn::OptionDef& d, QFormLayout* form) {
  Row row;
  row.key = d.key;
  row.form = form;
  const std::string path = "unlearn." + d.key;
  const QString name = objectNameOf(d.key);
  const QString unit = d.unit.empty() ? QString() : " " + QString::fromStdString(d.unit);
  switch (d.type) {
    case unlearn::OptionType::Choice: {
      auto* c = new QComboBox(this);
      for (size_t i = 0; i < d.choices.size(); ++i)
        c->addItem(QString::fromStdString(i < d.choice_labels.size() ? d.choice_labels[i] : d.choices[i]),
                   QString::fromStdString(d.choices[i]));
      connect(c, &QComboBox::currentIndexChanged, this, [this, c, path, key = d.key] {
        edit(path, c->currentData().toString().toStdString());
        if (key == "method") updateMethodRows();
        if (key == "precision") updatePrecisionWarning();
      });
      row.show = [c](const io::Json& v) {
        c->setCurrentIndex(std::max(0, c->findData(QString::fromStdString(v.get<std::string>()))));
      };
      row.field = c;
      break;
    }
    case unlearn::OptionType::Switch: {
      auto* c = new QComboBox(this);
      c->addItem(tr("auto"), "auto");
      c->addItem(tr("on"), "on");
      c->addItem(tr("off"), "off");
      connect(c, &QComboBox::currentIndexChanged, this, [this, c, path] {
        const QString v = c->currentData().toString();
        edit(path, v == "auto" ? io::Json("auto") : io::Json(v == "on"));
      });
      row.show = [c](const io::Json& v) { c->setCurrentIndex(v.is_boolean() ? (v.get<bool>() ? 1 : 2) : 0); };
      row.field = c;
      break;
    }
    case unlearn::OptionType::Integer: {
      auto* s = new QSpinBox(this);
      s->setRange(d.min ? static_cast<int>(*d.min + (d.min_exclusive ? 1 : 0)) : -1000000000,
                  d.max ? static_cast<int>(*d.max - (d.max_exclusive ? 1 : 0)) : 1000000000);
      s->setSuffix(unit);
      if (!d.zero_means.empty()) s->setSpecialValueText(QString::fromStdString(d.zero_means));
      connect(s, &QSpinBox::valueChanged, this, [this, path](int v) { edit(path, v); });
      row.show = [s](const io::Json& v) { s->setValue(static_cast<int>(v.get<int64_t>())); };
      row.field = s;
      break;
    }
    case unlearn::OptionType::Real: {
      auto* s = new QDoubleSpinBox(this);
      const int decimals = decimalsFor(d);
      s->setDecimals(decimals);
      const double step = std::pow(10.0, -decimals);
      s->setRange(d.min ? *d.min + (d.min_exclusive ? step : 0) : -1e9, d.max ? *d.max - (d.max_exclusive ? step : 0) : 1e9);
      s->setSingleStep(decimals > 3 ? 1e-6 : 0.05);
      s->setSuffix(unit);
      if (!d.zero_means.empty()) s->setSpecialValueText(QString::fromStdString(d.zero_means));
      row.field = s;
      if (d.slider) {
        auto* box = new QWidget(this);
        auto* h = new QHBoxLayout(box);
        h->setContentsMargins(0, 0, 0, 0);
        auto* slider = new QSlider(Qt::Horizontal, box);
        slider->setObjectName(name + "_slider");
        slider->setRange(0, 300);  // 0.00 .. 3.00; the spin box goes further
        h->addWidget(slider, 1);
        h->addWidget(s);
        connect(slider, &QSlider::valueChanged, this, [this, s](int v) {
          if (!syncing_ && std::abs(s->value() - v / 100.0) > 1e-9) s->setValue(v / 100.0);
        });
        connect(s, &QDoubleSpinBox::valueChanged, this, [this, slider](double v) {
          const bool was = syncing_;
          syncing_ = true;
          slider->setValue(static_cast<int>(std::lround(std::min(v, 3.0) * 100)));
          syncing_ = was;
        });
        row.field = box;
      }
      connect(s, &QDoubleSpinBox::valueChanged, this, [this, path](double v) { edit(path, v); });
      row.show = [s](const io::Json& v) { s->setValue(v.get<double>()); };
      break;
    }
    case unlearn::OptionType::Names: {
      auto* e = new QLineEdit(this);
      e->setPlaceholderText(tr("the family's defaults"));
      connect(e, &QLineEdit::textChanged, this, [this, e, path, d] {
        std::string err;
        if (auto v = unlearn::parse_text(d, e->text().toStdString(), &err)) edit(path, *v);
      });
      row.show = [e](const io::Json& v) {
        QStringList names;
        for (const auto& n : v) names << QString::fromStdString(n.is_string() ? n.get<std::string>() : n.dump());
        e->setText(names.join(","));
      };
      row.field = e;
      break;
    }
  }
  // The widget carrying the value is found by the option's name ("lora_rank").
  QWidget* value = row.field;
  if (d.slider) value = row.field->findChild<QDoubleSpinBox*>();
  value->setObjectName(name);
  row.field->setToolTip(tooltipOf(d));
  value->setToolTip(tooltipOf(d));
  form->addRow(QString::fromStdString(d.label), row.field);
  return row;
}

void MethodPanel::edit(const std::string& path, const io::Json& v) {
  if (!syncing_) spec_->set(path, v);
}

void MethodPanel::syncFromSpec() {
  syncing_ = true;
  for (const auto& r : rows_) {
    const auto* d = unlearn::find_option(r.key);
    const io::Json v = spec_->get("unlearn." + r.key, d->unlearn_default);
    if (!unlearn::check_value(*d, v)) r.show(v);  // an invalid value stays in the spec, reported below
  }
  const io::Json seed = spec_->get("seed", 8888);
  if (seed.is_number_integer()) seed_->setValue(static_cast<int>(seed.get<int64_t>()));
  syncing_ = false;
  updateMethodRows();
  updatePrecisionWarning();
  updateProblems();
}

void MethodPanel::updateMethodRows() {
  const io::Json m = spec_->get("unlearn.method", "paper");
  unlearn::Method method = unlearn::Method::Paper;
  try {
    method = unlearn::parse_method(m.is_string() ? m.get<std::string>() : "paper");
  } catch (const std::exception&) {
  }
  for (const auto& r : rows_) r.form->setRowVisible(r.field, unlearn::find_option(r.key)->used_by(method));
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
  if (!precisionWarning_) return;
  // bf16 on a CPU without native bf16 runs libtorch's matmuls many times slower than fp32.
  const io::Json dev = spec_->get("model.device", "auto");
  const io::Json prec = spec_->get("unlearn.precision", "fp32");
  const bool cpu = !(dev.is_string() && dev.get<std::string>().rfind("cuda", 0) == 0);
  const bool slow = prec.is_string() && prec.get<std::string>() == "bf16" && cpu && !lethe::cpu_has_native_bf16();
  precisionWarning_->setText(QString::fromStdString(lethe::slow_bf16_warning(false)));
  precisionWarning_->setVisible(slow);
}

}  // namespace lethe::ui
