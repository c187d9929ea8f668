#pragma once
// Method & weights: method and mode, ε1/ε2/ε3 (slider + spin box each), lr, steps, batch, K,
// LoRA rank, seed, precision; presets; the spec saved/loaded as JSON; the validator's problems
// shown inline.
#include <QWidget>

class QComboBox;
class QDoubleSpinBox;
class QSpinBox;
class QSlider;
class QLabel;
class QFormLayout;

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
  void updatePrecisionWarning();
  void addEps(QFormLayout* form, const char* key, const QString& label);
  void updateProblems();

  SpecModel* spec_;
  QComboBox* method_ = nullptr;
  QComboBox* mode_ = nullptr;
  QDoubleSpinBox* eps_[3] = {nullptr, nullptr, nullptr};
  QSlider* epsSlider_[3] = {nullptr, nullptr, nullptr};
  QDoubleSpinBox* lr_ = nullptr;
  QSpinBox* steps_ = nullptr;
  QSpinBox* batch_ = nullptr;
  QSpinBox* k_ = nullptr;
  QSpinBox* loraRank_ = nullptr;
  QSpinBox* seed_ = nullptr;
  QComboBox* precision_ = nullptr;
  QLabel* precisionWarning_ = nullptr;
  QLabel* problems_ = nullptr;
  bool syncing_ = false;
};

}  // namespace lethe::ui
