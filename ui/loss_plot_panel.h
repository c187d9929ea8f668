#pragma once
// Live losses: L_fgt, L_rdn, L_nor and the total against the step (QCustomPlot). Until this
// build can run unlearning, the plot is empty and says so.
#include <QWidget>
#include <vector>

#include "loss_buffer.h"

class QCustomPlot;
class QCPItemText;
class QCheckBox;

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
  bool savePng(const QString& file);

 private:
  void rescale();
  QCustomPlot* plot_ = nullptr;
  QCPItemText* note_ = nullptr;
  QCheckBox* log_ = nullptr;
  int overlays_ = 0;
};

}  // namespace lethe::ui
