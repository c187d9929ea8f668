#include "loss_plot_panel.h"

#include <QVBoxLayout>
#include "qcustomplot_include.h"

namespace lethe::ui {

LossPlotPanel::LossPlotPanel(QWidget* parent) : QWidget(parent) {
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  plot_ = new QCustomPlot(this);
  plot_->setObjectName("loss_plot");
  plot_->setMinimumSize(320, 200);
  const QPalette pal = palette();
  plot_->setBackground(pal.color(QPalette::Base));
  for (QCPAxis* axis : {plot_->xAxis, plot_->yAxis}) {
    axis->setBasePen(QPen(pal.color(QPalette::Text)));
    axis->setTickPen(QPen(pal.color(QPalette::Text)));
    axis->setSubTickPen(QPen(pal.color(QPalette::Mid)));
    axis->setTickLabelColor(pal.color(QPalette::Text));
    axis->setLabelColor(pal.color(QPalette::Text));
    axis->grid()->setPen(QPen(pal.color(QPalette::Midlight), 0, Qt::DotLine));
  }
  plot_->xAxis->setLabel(tr("step"));
  plot_->yAxis->setLabel(tr("loss"));
  plot_->xAxis->setRange(0, 100);
  plot_->yAxis->setRange(0, 5);
  struct Term {
    const char* name;
    QColor color;
  };
  // One colour per term, kept across the app (and readable for common colour-vision deficits).
  const Term terms[] = {{"L_fgt (forget, ascent)", QColor(0xd5, 0x5e, 0x00)},
                        {"L_rdn (random answers)", QColor(0x00, 0x72, 0xb2)},
                        {"L_nor (divergence, normal data)", QColor(0x00, 0x9e, 0x73)},
                        {"total", pal.color(QPalette::Text)}};
  for (const auto& t : terms) {
    QCPGraph* g = plot_->addGraph();
    g->setName(tr(t.name));
    g->setPen(QPen(t.color, 2));
  }
  plot_->legend->setVisible(true);
  plot_->legend->setBrush(pal.color(QPalette::Base));
  plot_->legend->setTextColor(pal.color(QPalette::Text));
  plot_->axisRect()->insetLayout()->setInsetAlignment(0, Qt::AlignTop | Qt::AlignRight);
  auto* note = new QCPItemText(plot_);
  note->setObjectName("empty_note");
  note->position->setType(QCPItemPosition::ptAxisRectRatio);
  note->position->setCoords(0.5, 0.5);
  note->setText(tr("No run yet.\nThis build inspects models;\nunlearning runs are not in it yet."));
  note->setColor(pal.color(QPalette::Mid));
  plot_->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
  layout->addWidget(plot_);
}

}  // namespace lethe::ui
