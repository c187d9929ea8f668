#pragma once
// History: every stored run (status, name, steps, headline numbers); select runs to overlay their
// curves, open one in Generations/Metrics, export its HTML report; a forget-vs-utility scatter.
#include <QWidget>
#include <vector>

#include "loss_buffer.h"

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
  // Reads each run's curve from the store and emits overlayCurve (the "Overlay curves" button).
  void overlayRuns(const QList<qint64>& ids);

 Q_SIGNALS:
  void openRun(qint64 runId);
  // A stored run's curve, read from the store, for the loss plot to overlay.
  void overlayCurve(const QString& name, const std::vector<LossPoint>& points);
  void failed(const QString& message);

 private:
  QString storePath_;
  QTableWidget* table_ = nullptr;
  QCustomPlot* scatter_ = nullptr;
};

}  // namespace lethe::ui
