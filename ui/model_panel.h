#pragma once
// The Model dock: open a Hugging Face folder and show what `lethe inspect` shows — the
// architecture, the tensors, and the memory a run would need (full vs LoRA).
#include <QWidget>
#include <optional>

#include "model/inspect.h"

class QLabel;
class QLineEdit;
class QSpinBox;
class QTableView;
class QSortFilterProxyModel;
class QFormLayout;
class QComboBox;
class QVBoxLayout;

namespace lethe::ui {

class TensorTableModel;

class ModelPanel : public QWidget {
  Q_OBJECT
 public:
  explicit ModelPanel(QWidget* parent = nullptr);

  // Reads the folder's headers (no weights are loaded). On failure shows the reason in the
  // panel, keeps the previous model, emits loadFailed and returns false.
  bool openFolder(const QString& dir);
  const std::optional<model::ModelSummary>& summary() const { return summary_; }
  // The text of a summary field by its key ("parameters", "layers", ...), for tests and copy.
  QString field(const QString& key) const;
  QString errorText() const;
  int tensorRows() const;
  // Where and in what precision runs load the model (the spec's model.device / model.dtype).
  void setRuntime(const QString& device, const QString& dtype);
  // The spec's model.prompt_format: "paper" or "chat".
  void setPromptFormat(const QString& format);
  // The step the memory estimate is for (the spec's unlearn.batch, K, precision, mode).
  void setStepShape(int batch, int K, bool bf16, bool faithful);

 Q_SIGNALS:
  void runtimeChanged(const QString& device, const QString& dtype);
  void promptFormatChanged(const QString& format);
  void modelOpened(const QString& dir);
  void loadFailed(const QString& message);
  void openRequested();

 private:
  // The constructor's parts, top to bottom.
  QVBoxLayout* buildScrollArea();
  void buildTitleRow(QVBoxLayout* root);
  void buildRuntimeRow(QVBoxLayout* root);
  void buildErrorLabel(QVBoxLayout* root);
  void buildArchitecture(QVBoxLayout* root);
  void buildMemory(QVBoxLayout* root);
  void buildTensorTable(QVBoxLayout* root);
  void showSummary();
  void updateMemory();

  std::optional<model::ModelSummary> summary_;
  QLabel* title_ = nullptr;
  QLabel* error_ = nullptr;
  QFormLayout* form_ = nullptr;
  QFormLayout* memoryForm_ = nullptr;
  QSpinBox* loraRank_ = nullptr;
  QLabel* stepNote_ = nullptr;
  model::StepShape step_;
  QLabel* loraLabel_ = nullptr;
  QComboBox* device_ = nullptr;
  QComboBox* dtype_ = nullptr;
  QComboBox* promptFormat_ = nullptr;
  QLineEdit* filter_ = nullptr;
  QTableView* table_ = nullptr;
  TensorTableModel* tensors_ = nullptr;
  QSortFilterProxyModel* proxy_ = nullptr;
};

}  // namespace lethe::ui
