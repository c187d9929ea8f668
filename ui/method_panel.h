#pragma once
// Method and weights: one row per option of core's options schema (unlearn/options.h) — the
// method, mode, ε1/ε2/ε3 (slider + spin box), lr, steps, batch, K, precision, LoRA rank in view;
// the rest under "More options" — plus the run's seed; presets; the spec saved/loaded as JSON;
// the validator's problems shown inline. Rows of options the chosen method does not use are
// hidden. An option registered in the schema gets a row here without edits.
#include <QWidget>
#include <functional>
#include <vector>

#include "io/json.h"
#include "unlearn/options.h"

class QComboBox;
class QSpinBox;
class QLabel;
class QFormLayout;
class QCheckBox;

namespace lethe::ui {

class SpecModel;

class MethodPanel : public QWidget {
  Q_OBJECT
 public:
  MethodPanel(SpecModel* spec, QWidget* parent = nullptr);
  // Fills the widgets from the spec (after a load or a preset).
  void syncFromSpec();
  QString problemsText() const;
  void loadPreset(const QString& file);

 Q_SIGNALS:
  void presetLoaded(const QString& file);

 private:
  // One schema option's row: its widget, and how to show a spec value in it.
  struct Row {
    std::string key;  // in the unlearn section, e.g. "lora.rank"
    QWidget* field = nullptr;
    QFormLayout* form = nullptr;
    std::function<void(const io::Json&)> show;
  };
  QWidget* buildPresetBar();
  void buildOptionRows(QFormLayout* basic, QFormLayout* more);
  Row makeRow(const unlearn::OptionDef& d, QFormLayout* form);
  void updateMethodRows();
  void updatePrecisionWarning();
  void updateProblems();
  void edit(const std::string& path, const io::Json& v);

  SpecModel* spec_;
  std::vector<Row> rows_;
  QSpinBox* seed_ = nullptr;
  QCheckBox* more_ = nullptr;
  QLabel* precisionWarning_ = nullptr;
  QLabel* problems_ = nullptr;
  bool syncing_ = false;
};

}  // namespace lethe::ui
