#include "loss_plot_panel.h"

#include <QCheckBox>
#include <QFileDialog>
#include <QHBoxLayout>
#include <QPushButton>
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
  note_ = new QCPItemText(plot_);
  note_->setObjectName("empty_note");
  note_->position->setType(QCPItemPosition::ptAxisRectRatio);
  note_->position->setCoords(0.5, 0.5);
  note_->setText(tr("No run yet.\nSet the spec and press Start (Ctrl+R)."));
  note_->setColor(pal.color(QPalette::Mid));
  plot_->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom | QCP::iSelectLegend);
  // Legend toggles: clicking an entry hides or shows its curve.
  connect(plot_, &QCustomPlot::legendClick, this, [this](QCPLegend*, QCPAbstractLegendItem* item, QMouseEvent*) {
    if (auto* pi = qobject_cast<QCPPlottableLegendItem*>(item)) {
      pi->plottable()->setVisible(!pi->plottable()->visible());
      pi->setTextColor(pi->plottable()->visible() ? palette().color(QPalette::Text) : palette().color(QPalette::Mid));
      plot_->replot();
    }
  });
  auto* bar = new QHBoxLayout;
  log_ = new QCheckBox(tr("log scale (|loss|)"), this);
  log_->setObjectName("log_scale");
  connect(log_, &QCheckBox::toggled, this, [this](bool on) {
    plot_->yAxis->setScaleType(on ? QCPAxis::stLogarithmic : QCPAxis::stLinear);
    rescale();
  });
  auto* save = new QPushButton(tr("Save image…"), this);
  connect(save, &QPushButton::clicked, this, [this] {
    const QString f = QFileDialog::getSaveFileName(this, tr("Save the loss plot"), "losses.png", tr("PNG (*.png);;PDF (*.pdf)"));
    if (f.endsWith(".pdf")) plot_->savePdf(f);
    else if (!f.isEmpty()) savePng(f);
  });
  bar->addWidget(log_);
  bar->addStretch(1);
  bar->addWidget(save);
  layout->addWidget(plot_, 1);
  layout->addLayout(bar);
}

void LossPlotPanel::append(const std::vector<LossPoint>& points) {
  if (points.empty()) return;
  note_->setVisible(false);
  const bool log = log_->isChecked();
  for (const auto& p : points) {
    if (p.phase != "unlearn") continue;
    const double v[4] = {p.loss_fgt, p.loss_rdn, p.loss_nor, p.total};
    for (int g = 0; g < 4; ++g) {
      QVector<double> x{static_cast<double>(p.step)}, y{log ? std::abs(v[g]) : v[g]};
      plot_->graph(g)->addData(x, y, /*alreadySorted=*/true);
    }
  }
  rescale();
}

void LossPlotPanel::rescale() {
  plot_->rescaleAxes(true);
  plot_->replot(QCustomPlot::rpQueuedReplot);
}

void LossPlotPanel::clear(const QString& title) {
  for (int g = 0; g < 4; ++g) plot_->graph(g)->data()->clear();
  while (plot_->graphCount() > 4) plot_->removeGraph(plot_->graphCount() - 1);
  overlays_ = 0;
  note_->setText(title);
  note_->setVisible(!title.isEmpty());
  plot_->replot();
}

void LossPlotPanel::addOverlay(const QString& name, const std::vector<LossPoint>& points) {
  static const QColor colours[] = {QColor(0xcc, 0x79, 0xa7), QColor(0xe6, 0x9f, 0x00), QColor(0x56, 0xb4, 0xe9), QColor(0xf0, 0xe4, 0x42)};
  QCPGraph* g = plot_->addGraph();
  g->setName(name);
  g->setPen(QPen(colours[overlays_++ % 4], 1.5, Qt::DashLine));
  for (const auto& p : points)
    if (p.phase == "unlearn") g->addData(static_cast<double>(p.step), p.total);
  note_->setVisible(false);
  rescale();
}

int LossPlotPanel::pointCount() const { return plot_->graph(3)->dataCount(); }

bool LossPlotPanel::savePng(const QString& file) { return plot_->savePng(file, 0, 0, 1.0, -1, 144); }

}  // namespace lethe::ui
