#pragma once
// Instruments: where and how the model forgot, for one prompt. The logit lens (the probability of
// the tracked answer token read from every layer, original beside unlearned), the answer's tokens
// coloured by how much less likely unlearning made each, and per-layer similarity of the two
// models' residual streams on forget vs normal data. Computed by core (eval/instruments.h,
// model::score_ids) on a worker thread. No torch in this header.
#include <QVector>
#include <QWidget>
#include <memory>

class QComboBox;
class QTabWidget;
class QLineEdit;
class QPushButton;
class QLabel;
class QTextBrowser;
class QThread;
class QCustomPlot;

namespace lethe::ui {

struct InstrumentModels;  // the two loaded models (instruments_panel.cpp)

class InstrumentsPanel : public QWidget {
  Q_OBJECT
 public:
  explicit InstrumentsPanel(QWidget* parent = nullptr);
  ~InstrumentsPanel() override;
  void setModels(const QString& original, const QString& unlearned);
  // The forget and normal data the layer similarity reads (a run's datasets).
  void setData(const QString& forget, const QString& normal);
  void setPrompt(const QString& prompt, const QString& answer);
  void setPromptFormat(const QString& format);
  // Lens and token log-probabilities for the prompt (and answer); done() when finished.
  void inspect();
  // Per-layer similarity on the forget and normal data; done() when finished.
  void compareLayers();
  bool busy() const { return busy_; }
  // What the charts show (for tests): per layer, p(target) under each model; similarity per set.
  QVector<double> lens(bool unlearned) const { return unlearned ? lensAfter_ : lensBefore_; }
  QVector<double> similarity(bool forget) const { return forget ? simForget_ : simNormal_; }
  int tokenCount() const { return tokens_; }
  QString tokensHtml() const;
  QString status() const;
  // Shows one view: "lens", "tokens" or "layers".
  void showView(const QString& view);

 Q_SIGNALS:
  void done();

 private:
  QLineEdit *original_ = nullptr, *unlearned_ = nullptr, *prompt_ = nullptr, *answer_ = nullptr, *forget_ = nullptr,
            *normal_ = nullptr;
  QComboBox* format_ = nullptr;
  QPushButton *inspect_ = nullptr, *layers_ = nullptr;
  QCustomPlot *lensPlot_ = nullptr, *simPlot_ = nullptr;
  QTextBrowser* tokenView_ = nullptr;
  QTabWidget* views_ = nullptr;
  QLabel* status_ = nullptr;
  QThread* thread_ = nullptr;
  std::shared_ptr<InstrumentModels> models_;
  bool busy_ = false;
  QVector<double> lensBefore_, lensAfter_, simForget_, simNormal_;
  int tokens_ = 0;
  void startWork(bool layers);
  void drawLens(const QString& target);
  void drawSimilarity();
};

}  // namespace lethe::ui
