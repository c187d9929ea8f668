#include "plot_style.h"

#include "qcustomplot_include.h"

namespace lethe::ui {

void applyPlotPalette(QCustomPlot* plot, const QPalette& pal) {
  plot->setBackground(pal.color(QPalette::Base));
  plot->axisRect()->setBackground(pal.color(QPalette::Base));
  for (QCPAxis* axis : {plot->xAxis, plot->yAxis}) {
    axis->setBasePen(QPen(pal.color(QPalette::Text)));
    axis->setTickPen(QPen(pal.color(QPalette::Text)));
    axis->setSubTickPen(QPen(pal.color(QPalette::Mid)));
    axis->setTickLabelColor(pal.color(QPalette::Text));
    axis->setLabelColor(pal.color(QPalette::Text));
    axis->grid()->setPen(QPen(pal.color(QPalette::Midlight), 0, Qt::DotLine));
  }
}

}  // namespace lethe::ui
