#include "history_panel.h"

#include <QFileDialog>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QPushButton>
#include <QTableWidget>
#include <QVBoxLayout>

#include "experiment/report.h"
#include "io/json.h"
#include "qcustomplot_include.h"
#include "store/store.h"

namespace lethe::ui {

HistoryPanel::HistoryPanel(QWidget* parent) : QWidget(parent) {
  auto* root = new QVBoxLayout(this);
  table_ = new QTableWidget(0, 6, this);
  table_->setObjectName("history_table");
  table_->setHorizontalHeaderLabels(
      {tr("Id"), tr("Name"), tr("Status"), tr("Steps"), tr("Harmful before → after"), tr("Perplexity Δ")});
  table_->horizontalHeader()->setSectionResizeMode(1, QHeaderView::Stretch);
  table_->verticalHeader()->hide();
  table_->setSelectionBehavior(QAbstractItemView::SelectRows);
  table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  root->addWidget(table_, 2);
  auto* buttons = new QHBoxLayout;
  auto* refresh = new QPushButton(tr("Refresh"), this);
  auto* open = new QPushButton(tr("Open"), this);
  auto* overlay = new QPushButton(tr("Overlay curves"), this);
  auto* exportHtml = new QPushButton(tr("Export report…"), this);
  for (auto* b : {refresh, open, overlay, exportHtml}) buttons->addWidget(b);
  buttons->addStretch(1);
  root->addLayout(buttons);
  scatter_ = new QCustomPlot(this);
  scatter_->setObjectName("history_scatter");
  scatter_->setMinimumHeight(140);
  scatter_->xAxis->setLabel(tr("harmful-rate reduction"));
  scatter_->yAxis->setLabel(tr("perplexity change (after / before)"));
  const QPalette pal = palette();
  scatter_->setBackground(pal.color(QPalette::Base));
  for (QCPAxis* a : {scatter_->xAxis, scatter_->yAxis}) {
    a->setTickLabelColor(pal.color(QPalette::Text));
    a->setLabelColor(pal.color(QPalette::Text));
    a->setBasePen(QPen(pal.color(QPalette::Text)));
    a->grid()->setPen(QPen(pal.color(QPalette::Midlight), 0, Qt::DotLine));
  }
  root->addWidget(scatter_, 1);
  auto selected = [this] {
    QList<qint64> ids;
    for (const auto& r : table_->selectionModel()->selectedRows()) ids << table_->item(r.row(), 0)->text().toLongLong();
    return ids;
  };
  connect(refresh, &QPushButton::clicked, this, &HistoryPanel::refresh);
  connect(open, &QPushButton::clicked, this, [this, selected] {
    for (qint64 id : selected()) Q_EMIT openRun(id);
  });
  connect(table_, &QTableWidget::cellDoubleClicked, this,
          [this](int row, int) { Q_EMIT openRun(table_->item(row, 0)->text().toLongLong()); });
  connect(overlay, &QPushButton::clicked, this, [this, selected] { overlayRuns(selected()); });
  connect(exportHtml, &QPushButton::clicked, this, [this, selected] {
    const auto ids = selected();
    if (ids.isEmpty()) return;
    const QString f = QFileDialog::getSaveFileName(this, tr("Export the run's report"), QString("run-%1.html").arg(ids.first()),
                                                   tr("HTML (*.html);;JSON (*.json);;CSV (*.csv)"));
    if (f.isEmpty()) return;
    try {
      store::Store st(storePath_.toStdString());
      const std::string fmt = f.endsWith(".json") ? "json" : f.endsWith(".csv") ? "csv" : "html";
      io::write_file_atomic(f.toStdString(), experiment::export_run(st, ids.first(), fmt));
    } catch (const std::exception&) {
    }
  });
}

void HistoryPanel::setStorePath(const QString& p) {
  storePath_ = p;
  refresh();
}

void HistoryPanel::refresh() {
  if (storePath_.isEmpty()) return;
  QVector<double> xs, ys;
  try {
    store::Store st(storePath_.toStdString());
    const auto runs = st.runs();
    table_->setRowCount(static_cast<int>(runs.size()));
    for (int r = 0; r < static_cast<int>(runs.size()); ++r) {
      const auto& run = runs[static_cast<size_t>(runs.size() - 1 - r)];  // newest first
      std::map<std::string, double> ev;
      for (const auto& e : st.evaluations(run.id)) ev[e.name] = e.value;
      QString harm = "-", ppl = "-";
      if (ev.count("harmful_rate_before") && ev.count("harmful_rate_after"))
        harm = QString("%1 → %2").arg(ev["harmful_rate_before"], 0, 'f', 2).arg(ev["harmful_rate_after"], 0, 'f', 2);
      if (ev.count("perplexity_before") && ev.count("perplexity_after") && ev["perplexity_before"] > 0) {
        const double ratio = ev["perplexity_after"] / ev["perplexity_before"];
        ppl = QString("%1%2%").arg(ratio >= 1 ? "+" : "").arg(100 * (ratio - 1), 0, 'f', 1);
        if (ev.count("harmful_rate_reduction")) {
          xs << ev["harmful_rate_reduction"];
          ys << ratio;
        }
      }
      const QString cells[6] = {QString::number(run.id),
                                QString::fromStdString(run.name),
                                QString::fromStdString(run.status),
                                QString::number(st.steps(run.id).size()),
                                harm,
                                ppl};
      for (int c = 0; c < 6; ++c) table_->setItem(r, c, new QTableWidgetItem(cells[c]));
    }
  } catch (const std::exception&) {
    table_->setRowCount(0);
  }
  scatter_->clearGraphs();
  auto* g = scatter_->addGraph();
  g->setLineStyle(QCPGraph::lsNone);
  g->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, QColor(0x00, 0x72, 0xb2), 7));
  g->setData(xs, ys);
  scatter_->rescaleAxes();
  scatter_->replot();
}

void HistoryPanel::overlayRuns(const QList<qint64>& ids) {
  for (qint64 id : ids) {
    try {
      store::Store st(storePath_.toStdString());
      if (!st.run(id)) throw std::runtime_error("no run " + std::to_string(id) + " in the store");
      std::vector<LossPoint> pts;
      for (const auto& s : st.steps(id)) {
        LossPoint p;  // the overlay draws the total only
        p.phase = s.phase;
        p.step = s.step;
        p.loss_fgt = s.loss_fgt;
        p.loss_rdn = s.loss_rdn;
        p.loss_nor = s.loss_nor;
        p.total = s.total;
        pts.push_back(p);
      }
      Q_EMIT overlayCurve(tr("run %1 total").arg(id), pts);
    } catch (const std::exception& e) {
      Q_EMIT failed(QString::fromStdString(e.what()));
    }
  }
}

int HistoryPanel::runCount() const { return table_->rowCount(); }
qint64 HistoryPanel::runIdAt(int row) const { return table_->item(row, 0) ? table_->item(row, 0)->text().toLongLong() : 0; }

}  // namespace lethe::ui
