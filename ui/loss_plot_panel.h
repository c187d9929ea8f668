#pragma once
// Live losses: L_fgt, L_rdn, L_nor and the total against the step (QCustomPlot), drained from
// the run's LossBuffer; earlier runs' curves as overlays.
#include <QWidget>
#include <vector>

#include "loss_buffer.h"

class QCustomPlot;
class QCPItemText;
class QCPItemTracer;
class QCPGraph;
class QCheckBox;
class QHBoxLayout;

namespace lethe::ui {

class LossPlotPanel : public QWidget {
  Q_OBJECT
 public:
  explicit LossPlotPanel(QWidget* parent = nullptr);
  QCustomPlot* plot() const { return plot_; }
  // New points (already in step order) go to the four curves; one replot per call.
  void append(const std::vector<LossPoint>& points);
  void clear(const QString& title);
  // An earlier run's total loss as a dashed curve (History's overlay).
  void addOverlay(const QString& name, const std::vector<LossPoint>& points);
  int pointCount() const;
  int overlayCount() const { return overlays_; }
  bool savePng(const QString& file);
  void setSmoothing(bool on);   // exponential moving average (0.9) of each curve
  void setShowLrGrad(bool on);  // lr and grad norm on the right axis
  QString readout() const;      // the crosshair's text

 private:
  // The constructor's parts, in the order the plot's graphs and items are created.
  void buildPlot();
  void buildLossCurves();
  void buildEmptyNote();
  void buildLegendToggles();
  void buildLrGradCurves();
  void buildReadout();
  QHBoxLayout* buildToolbar();
  void rescale();
  void rebuild();  // all curves from the raw points (after a smoothing/axis change)
  void track(double x);
  QCustomPlot* plot_ = nullptr;
  QCPItemText* note_ = nullptr;
  QCheckBox* log_ = nullptr;
  QCheckBox* smooth_ = nullptr;
  QCheckBox* lrGrad_ = nullptr;
  QCPItemTracer* tracer_ = nullptr;
  QCPGraph* lrGraph_ = nullptr;
  QCPGraph* gradGraph_ = nullptr;
  QCPItemText* readout_ = nullptr;
  std::vector<LossPoint> raw_;
  int overlays_ = 0;
};

}  // namespace lethe::ui
