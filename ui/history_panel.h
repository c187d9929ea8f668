#pragma once
// History: every stored run (status, name, steps, headline numbers); select runs to overlay their
// curves, open one in Generations/Metrics, export its HTML report; a forget-vs-utility scatter.
#include <QWidget>

class QTableWidget;
class QCustomPlot;

namespace lethe::ui {

class HistoryPanel : public QWidget {
  Q_OBJECT
 public:
  explicit HistoryPanel(QWidget* parent = nullptr);
  void setStorePath(const QString& p);
  void refresh();
  int runCount() const;
  qint64 runIdAt(int row) const;

 Q_SIGNALS:
  void openRun(qint64 runId);
  void overlayRun(qint64 runId);

 private:
  QString storePath_;
  QTableWidget* table_ = nullptr;
  QCustomPlot* scatter_ = nullptr;
};

}  // namespace lethe::ui
