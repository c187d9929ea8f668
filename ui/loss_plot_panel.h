#pragma once
// Live losses: L_fgt, L_rdn, L_nor and the total against the step (QCustomPlot). Until this
// build can run unlearning, the plot is empty and says so.
#include <QWidget>

class QCustomPlot;

namespace lethe::ui {

class LossPlotPanel : public QWidget {
  Q_OBJECT
 public:
  explicit LossPlotPanel(QWidget* parent = nullptr);
  QCustomPlot* plot() const { return plot_; }

 private:
  QCustomPlot* plot_ = nullptr;
};

}  // namespace lethe::ui
