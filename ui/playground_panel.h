#pragma once
// Playground: type a prompt and see the original and the unlearned model answer side by side,
// streamed token by token from a worker thread. No torch in this header.
#include <QWidget>
#include <memory>

class QCheckBox;
class QComboBox;
class QLineEdit;
class QPlainTextEdit;
class QPushButton;
class QLabel;
class QThread;

namespace lethe::ui {

struct PlaygroundModels;  // the two loaded models (playground_panel.cpp)

class PlaygroundPanel : public QWidget {
  Q_OBJECT
 public:
  explicit PlaygroundPanel(QWidget* parent = nullptr);
  ~PlaygroundPanel() override;
  void setModels(const QString& original, const QString& unlearned);
  void setPrompt(const QString& p);
  // "paper" (### Question: ... ### Answer:) or "chat" (the model folder's chat template).
  void setPromptFormat(const QString& format);
  // int8 weights for the decoder layers (eval::use_int8_weights): faster on the CPU, approximate.
  void setInt8(bool on);
  QString statusText() const;
  // Generates for both models on the worker thread; done() when both have finished.
  void generate();
  QString originalText() const;
  QString unlearnedText() const;
  bool busy() const { return busy_; }

 Q_SIGNALS:
  void done();

 private:
  QLineEdit* original_ = nullptr;
  QLineEdit* unlearned_ = nullptr;
  QLineEdit* prompt_ = nullptr;
  QComboBox* format_ = nullptr;
  QCheckBox* int8_ = nullptr;
  QPushButton* go_ = nullptr;
  QPlainTextEdit* left_ = nullptr;
  QPlainTextEdit* right_ = nullptr;
  QLabel* status_ = nullptr;
  QThread* thread_ = nullptr;
  std::shared_ptr<PlaygroundModels> models_;
  bool busy_ = false;
};

}  // namespace lethe::ui
