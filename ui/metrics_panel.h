#pragma once
// Metrics of a run: harmful rate before/after with its interval and the classifier's own
// validation accuracy beside it, BLEU/ROUGE, perplexity, multiple choice, KL — as a table and as
// before/after bars.
#include <QWidget>

class QTableWidget;
class QCustomPlot;
class QLabel;

namespace lethe::ui {

class MetricsPanel : public QWidget {
  Q_OBJECT
 public:
  explicit MetricsPanel(QWidget* parent = nullptr);
  void showRun(const QString& storePath, qint64 runId);
  QString value(const QString& name) const;  // the table's text for a metric, "" when absent
  QString headline() const;

 private:
  QLabel* headline_ = nullptr;
  QTableWidget* table_ = nullptr;
  QCustomPlot* bars_ = nullptr;
};

}  // namespace lethe::ui
