#pragma once
// History: every stored run (status, name, steps, headline numbers); select runs to overlay their
// curves, open one in Generations/Metrics, export its HTML report, probe a completed run's
// robustness (relearning, int8/int4 weights: how much of the forgetting returns); a
// forget-vs-utility scatter (harmful-rate reduction against the normal-data perplexity change, one
// point per run, axes fitted to the runs; hovering a point names the run and its settings, a
// click opens it).
#include <QPointF>
#include <QStringList>
#include <QWidget>
#include <atomic>
#include <memory>
#include <vector>

#include "loss_buffer.h"

class QTableWidget;
class QCustomPlot;
class QPushButton;
class QThread;
class QMouseEvent;

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

  // What the "Probe robustness…" dialog asks for (experiment::probe_run's request).
  struct ProbeChoice {
    QStringList probes;   // "relearn", "int8", "int4"
    QString relearnData;  // a held-out part of the forget set (relearn)
    int relearnSteps = 10;
    double relearnLr = 1e-5;
  };
  // Probes a completed run in the background; probeFinished reports the outcome. False (and
  // nothing started) while another probe runs.
  bool probeRun(qint64 runId, const ProbeChoice& choice);
  bool probing() const { return probeThread_ != nullptr; }
  void cancelProbe();
  // The "Robustness" cell of a run: e.g. "relearn 40% · int8 0%" (what returned), "-" when never probed.
  QString robustnessAt(int row) const;

  // The scatter: its points (one per run with a harmful-rate reduction and a perplexity change),
  // a run's point in data coordinates (NaN when it has none), the run under a pixel of the plot
  // (0: none), the text hovering a run's point shows, and the last text hovering showed.
  QCustomPlot* scatter() const { return scatter_; }
  int scatterPointCount() const { return static_cast<int>(points_.size()); }
  QPointF scatterPoint(qint64 runId) const;
  qint64 runAtScatterPixel(const QPointF& pixel) const;
  QString scatterText(qint64 runId) const;
  QString scatterHoverText() const { return hoverText_; }
  ~HistoryPanel() override;

 Q_SIGNALS:
  void openRun(qint64 runId);
  // A stored run's curve, read from the store, for the loss plot to overlay.
  void overlayCurve(const QString& name, const std::vector<LossPoint>& points);
  void failed(const QString& message);
  // ok: stored (summary: what returned per probe); else the error or "cancelled".
  void probeFinished(qint64 runId, bool ok, const QString& summary);

 private:
  QString storePath_;
  QTableWidget* table_ = nullptr;
  QCustomPlot* scatter_ = nullptr;
  struct ScatterPoint {
    qint64 run = 0;
    double x = 0, y = 0;
    QString method;
    QString text;  // rich text: the run, its settings, its numbers
  };
  std::vector<ScatterPoint> points_;
  QString hoverText_;
  void drawScatter();
  void scatterMoved(QMouseEvent* e);
  void scatterPressed(QMouseEvent* e);
  QPushButton* probe_ = nullptr;
  QThread* probeThread_ = nullptr;
  std::shared_ptr<std::atomic<bool>> probeCancel_;
  void openProbeDialog(qint64 runId);
};

}  // namespace lethe::ui
