#include "loss_plot_panel.h"

#include <QCheckBox>
#include <QFileDialog>
#include <QHBoxLayout>
#include <QPushButton>
#include <QVBoxLayout>
#include "plot_style.h"
#include "qcustomplot_include.h"

namespace lethe::ui {

LossPlotPanel::LossPlotPanel(QWidget* parent) : QWidget(parent) {
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  // The plot's parts in this order: graphs 0-3 are the terms and the total, 4 and 5 lr and grad
  // norm.
  buildPlot();
  buildLossCurves();
  buildEmptyNote();
  buildLegendToggles();
  buildLrGradCurves();
  buildReadout();
  QHBoxLayout* bar = buildToolbar();
  layout->addWidget(plot_, 1);
  layout->addLayout(bar);
}

// The plot with its axes drawn in the palette's colours.
void LossPlotPanel::buildPlot() {
  plot_ = new QCustomPlot(this);
  plot_->setObjectName("loss_plot");
  plot_->setMinimumSize(320, 200);
  applyPlotPalette(plot_, palette());
  plot_->xAxis->setLabel(tr("step"));
  plot_->yAxis->setLabel(tr("loss"));
  plot_->xAxis->setRange(0, 100);
  plot_->yAxis->setRange(0, 5);
}

// Graphs 0-3 (L_fgt, L_rdn, L_nor, total) and their legend.
void LossPlotPanel::buildLossCurves() {
  const QPalette pal = palette();
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
}

// The note in the middle of the empty plot.
void LossPlotPanel::buildEmptyNote() {
  note_ = new QCPItemText(plot_);
  note_->setObjectName("empty_note");
  note_->position->setType(QCPItemPosition::ptAxisRectRatio);
  note_->position->setCoords(0.5, 0.5);
  note_->setText(tr("No run yet.\nSet the spec and press Start (Ctrl+R)."));
  note_->setColor(palette().color(QPalette::Mid));
}

// Drag and zoom; clicking a legend entry hides or shows its curve.
void LossPlotPanel::buildLegendToggles() {
  plot_->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom | QCP::iSelectLegend);
  connect(plot_, &QCustomPlot::legendClick, this, [this](QCPLegend*, QCPAbstractLegendItem* item, QMouseEvent*) {
    if (auto* pi = qobject_cast<QCPPlottableLegendItem*>(item)) {
      pi->plottable()->setVisible(!pi->plottable()->visible());
      pi->setTextColor(pi->plottable()->visible() ? palette().color(QPalette::Text) : palette().color(QPalette::Mid));
      plot_->replot();
    }
  });
}

// lr and grad norm on the right axis (hidden until asked for; not in the legend).
void LossPlotPanel::buildLrGradCurves() {
  const QPalette pal = palette();
  lrGraph_ = plot_->addGraph(plot_->xAxis, plot_->yAxis2);
  lrGraph_->setName(tr("lr (right)"));
  lrGraph_->setPen(QPen(QColor(0xcc, 0x79, 0xa7), 1, Qt::DashLine));
  gradGraph_ = plot_->addGraph(plot_->xAxis, plot_->yAxis2);
  gradGraph_->setName(tr("grad norm (right)"));
  gradGraph_->setPen(QPen(QColor(0xe6, 0x9f, 0x00), 1, Qt::DotLine));
  for (auto* g : {lrGraph_, gradGraph_}) {
    g->setVisible(false);
    g->removeFromLegend();
  }
  plot_->yAxis2->setTickLabelColor(pal.color(QPalette::Text));
  plot_->yAxis2->setBasePen(QPen(pal.color(QPalette::Text)));
}

// Crosshair read-out: a tracer on the total curve follows the mouse.
void LossPlotPanel::buildReadout() {
  const QPalette pal = palette();
  tracer_ = new QCPItemTracer(plot_);
  tracer_->setGraph(plot_->graph(3));
  tracer_->setStyle(QCPItemTracer::tsCrosshair);
  tracer_->setPen(QPen(pal.color(QPalette::Mid), 0, Qt::DashLine));
  tracer_->setVisible(false);
  readout_ = new QCPItemText(plot_);
  readout_->setObjectName("readout");
  readout_->position->setType(QCPItemPosition::ptAxisRectRatio);
  readout_->position->setCoords(0.02, 0.98);
  readout_->setPositionAlignment(Qt::AlignLeft | Qt::AlignBottom);
  readout_->setColor(pal.color(QPalette::Text));
  readout_->setText({});
  connect(plot_, &QCustomPlot::mouseMove, this, [this](QMouseEvent* e) { track(plot_->xAxis->pixelToCoord(e->pos().x())); });
}

// The row under the plot: log scale, smoothing, lr/grad norm, and saving the image.
QHBoxLayout* LossPlotPanel::buildToolbar() {
  auto* bar = new QHBoxLayout;
  log_ = new QCheckBox(tr("log scale (|loss|)"), this);
  log_->setObjectName("log_scale");
  connect(log_, &QCheckBox::toggled, this, [this](bool on) {
    plot_->yAxis->setScaleType(on ? QCPAxis::stLogarithmic : QCPAxis::stLinear);
    rebuild();
  });
  smooth_ = new QCheckBox(tr("smooth"), this);
  smooth_->setObjectName("smooth");
  connect(smooth_, &QCheckBox::toggled, this, [this] { rebuild(); });
  lrGrad_ = new QCheckBox(tr("lr, grad norm"), this);
  lrGrad_->setObjectName("lr_grad");
  connect(lrGrad_, &QCheckBox::toggled, this, &LossPlotPanel::setShowLrGrad);
  auto* save = new QPushButton(tr("Save image…"), this);
  connect(save, &QPushButton::clicked, this, [this] {
    const QString f = QFileDialog::getSaveFileName(this, tr("Save the loss plot"), "losses.png", tr("PNG (*.png);;PDF (*.pdf)"));
    if (f.endsWith(".pdf")) plot_->savePdf(f);
    else if (!f.isEmpty()) savePng(f);
  });
  bar->addWidget(log_);
  bar->addWidget(smooth_);
  bar->addWidget(lrGrad_);
  bar->addStretch(1);
  bar->addWidget(save);
  return bar;
}

void LossPlotPanel::append(const std::vector<LossPoint>& points) {
  bool any = false;
  for (const auto& p : points)
    if (p.phase == "unlearn") {
      raw_.push_back(p);
      any = true;
    }
  if (!any) return;
  note_->setVisible(false);
  if (smooth_->isChecked()) {  // smoothing depends on history: redraw
    rebuild();
    return;
  }
  const bool log = log_->isChecked();
  for (const auto& p : points) {
    if (p.phase != "unlearn") continue;
    const double v[4] = {p.loss_fgt, p.loss_rdn, p.loss_nor, p.total};
    for (int g = 0; g < 4; ++g)
      plot_->graph(g)->addData(QVector<double>{static_cast<double>(p.step)}, QVector<double>{log ? std::abs(v[g]) : v[g]}, true);
    lrGraph_->addData(static_cast<double>(p.step), p.lr);
    gradGraph_->addData(static_cast<double>(p.step), p.grad_norm);
  }
  rescale();
}

void LossPlotPanel::rebuild() {
  const bool log = log_->isChecked(), smooth = smooth_->isChecked();
  for (int g = 0; g < 4; ++g) plot_->graph(g)->data()->clear();
  lrGraph_->data()->clear();
  gradGraph_->data()->clear();
  double ema[4] = {0, 0, 0, 0};
  bool first = true;
  for (const auto& p : raw_) {
    const double v[4] = {p.loss_fgt, p.loss_rdn, p.loss_nor, p.total};
    for (int g = 0; g < 4; ++g) {
      ema[g] = first ? v[g] : 0.9 * ema[g] + 0.1 * v[g];
      const double y = smooth ? ema[g] : v[g];
      plot_->graph(g)->addData(static_cast<double>(p.step), log ? std::abs(y) : y);
    }
    first = false;
    lrGraph_->addData(static_cast<double>(p.step), p.lr);
    gradGraph_->addData(static_cast<double>(p.step), p.grad_norm);
  }
  rescale();
}

void LossPlotPanel::setSmoothing(bool on) { smooth_->setChecked(on); }

void LossPlotPanel::setShowLrGrad(bool on) {
  if (lrGrad_->isChecked() != on) lrGrad_->setChecked(on);
  lrGraph_->setVisible(on);
  gradGraph_->setVisible(on);
  plot_->yAxis2->setVisible(on);
  rescale();
}

void LossPlotPanel::track(double x) {
  if (raw_.empty()) return;
  // The stored point nearest to x.
  const LossPoint* best = &raw_.front();
  for (const auto& p : raw_)
    if (std::abs(static_cast<double>(p.step) - x) < std::abs(static_cast<double>(best->step) - x)) best = &p;
  tracer_->setGraphKey(static_cast<double>(best->step));
  tracer_->setVisible(true);
  readout_->setText(tr("step %1   L_fgt %2   L_rdn %3   L_nor %4   total %5   lr %6   |g| %7")
                        .arg(best->step)
                        .arg(best->loss_fgt, 0, 'f', 4)
                        .arg(best->loss_rdn, 0, 'f', 4)
                        .arg(best->loss_nor, 0, 'f', 4)
                        .arg(best->total, 0, 'f', 4)
                        .arg(best->lr, 0, 'g', 3)
                        .arg(best->grad_norm, 0, 'f', 3));
  plot_->replot(QCustomPlot::rpQueuedReplot);
}

QString LossPlotPanel::readout() const { return readout_->text(); }

void LossPlotPanel::rescale() {
  plot_->rescaleAxes(true);
  if (lrGraph_->visible()) {
    lrGraph_->rescaleValueAxis(false, true);
    gradGraph_->rescaleValueAxis(true, true);
  }
  plot_->replot(QCustomPlot::rpQueuedReplot);
}

void LossPlotPanel::clear(const QString& title) {
  raw_.clear();
  for (int g = 0; g < 4; ++g) plot_->graph(g)->data()->clear();
  lrGraph_->data()->clear();
  gradGraph_->data()->clear();
  while (plot_->graphCount() > 6) plot_->removeGraph(plot_->graphCount() - 1);
  tracer_->setVisible(false);
  readout_->setText({});
  overlays_ = 0;
  note_->setText(title);
  note_->setVisible(!title.isEmpty());
  plot_->replot();
}

void LossPlotPanel::addOverlay(const QString& name, const std::vector<LossPoint>& points) {
  static const QColor colours[] = {QColor(0xcc, 0x79, 0xa7), QColor(0xe6, 0x9f, 0x00), QColor(0x56, 0xb4, 0xe9),
                                   QColor(0xf0, 0xe4, 0x42)};
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
