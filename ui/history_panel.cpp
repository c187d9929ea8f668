#include "history_panel.h"

#include <QCheckBox>
#include <QDialog>
#include <QDialogButtonBox>
#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QMetaObject>
#include <QPushButton>
#include <QSpinBox>
#include <QTableWidget>
#include <QThread>
#include <QToolTip>
#include <QVBoxLayout>
#include <algorithm>
#include <cmath>
#include <map>

#include "experiment/jobs.h"
#include "experiment/report.h"
#include "io/json.h"
#include "model/generate.h"
#include "plot_style.h"
#include "qcustomplot_include.h"
#include "store/store.h"
#include "unlearn/options.h"

namespace lethe::ui {

HistoryPanel::HistoryPanel(QWidget* parent) : QWidget(parent) {
  auto* root = new QVBoxLayout(this);
  table_ = new QTableWidget(0, 7, this);
  table_->setObjectName("history_table");
  table_->setHorizontalHeaderLabels({tr("Id"), tr("Name"), tr("Status"), tr("Steps"), tr("Harmful before → after"),
                                     tr("Perplexity Δ"), tr("Robustness (returned)")});
  table_->horizontalHeaderItem(6)->setToolTip(
      tr("How much of the forgetting came back under each probe (Probe robustness…): relearning on held-out forget "
         "data, or the weights rounded to int8 / int4. 0% = none, 100% = all of it."));
  // The narrow columns as wide as their contents, the name taking what is left.
  table_->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
  table_->horizontalHeader()->setSectionResizeMode(1, QHeaderView::Stretch);
  table_->verticalHeader()->hide();
  table_->setSelectionBehavior(QAbstractItemView::SelectRows);
  table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  root->addWidget(table_, 3);
  auto* buttons = new QHBoxLayout;
  auto* refresh = new QPushButton(tr("Refresh"), this);
  auto* open = new QPushButton(tr("Open"), this);
  auto* overlay = new QPushButton(tr("Overlay curves"), this);
  auto* exportHtml = new QPushButton(tr("Export report…"), this);
  probe_ = new QPushButton(tr("Probe robustness…"), this);
  probe_->setObjectName("history_probe");
  probe_->setToolTip(tr("Does the forgotten come back? Relearn the selected completed run's model for a few steps on "
                        "held-out forget data, or round its weights to int8 / int4, and measure it as the run did."));
  for (auto* b : {refresh, open, overlay, exportHtml, probe_}) buttons->addWidget(b);
  buttons->addStretch(1);
  root->addLayout(buttons);
  auto* caption = new QLabel(tr("<b>Forgetting vs utility</b> — one point per run: right, more harmful answers gone; up, "
                                "normal-data perplexity rose. Hover a point for the run's settings, click it to open "
                                "the run."),
                             this);
  caption->setObjectName("history_scatter_caption");
  caption->setWordWrap(true);
  root->addWidget(caption);
  scatter_ = new QCustomPlot(this);
  scatter_->setObjectName("history_scatter");
  scatter_->setMinimumHeight(200);
  scatter_->setMouseTracking(true);
  scatter_->xAxis->setLabel(tr("Harmful-rate reduction (1 = every harmful answer gone)"));
  scatter_->yAxis->setLabel(tr("Perplexity change (%)"));
  const QPalette pal = palette();
  applyPlotPalette(scatter_, pal);
  for (QCPAxis* a : {scatter_->xAxis, scatter_->yAxis}) a->grid()->setZeroLinePen(Qt::NoPen);
  scatter_->legend->setBrush(pal.color(QPalette::Base));
  scatter_->legend->setTextColor(pal.color(QPalette::Text));
  scatter_->legend->setBorderPen(QPen(pal.color(QPalette::Mid)));
  // Top left: the corner runs seldom reach (little forgetting, much lost utility).
  scatter_->axisRect()->insetLayout()->setInsetAlignment(0, Qt::AlignTop | Qt::AlignLeft);
  root->addWidget(scatter_, 2);
  connect(scatter_, &QCustomPlot::mouseMove, this, &HistoryPanel::scatterMoved);
  connect(scatter_, &QCustomPlot::mousePress, this, &HistoryPanel::scatterPressed);
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
  connect(probe_, &QPushButton::clicked, this, [this, selected] {
    if (probing()) {
      cancelProbe();
      return;
    }
    const auto ids = selected();
    if (ids.isEmpty()) {
      Q_EMIT failed(tr("Select a completed run to probe."));
      return;
    }
    openProbeDialog(ids.first());
  });
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

namespace {

QString number(double v) { return QString::number(v, 'g', 4); }

// The run's method and key settings, from its stored spec: method (mode), ε1/ε2/ε3, steps, lr,
// LoRA rank; the schema's defaults fill what the spec left out.
QString settingsOf(const std::string& specJson, QString& method) {
  try {
    const io::Json spec = io::Json::parse(specJson);
    const io::Json section = spec.contains("unlearn") ? spec["unlearn"] : io::Json::object();
    std::vector<unlearn::Problem> problems;
    const unlearn::UnlearnOptions o = unlearn::read_options(section, unlearn::Section::Unlearn, "unlearn", problems);
    method = unlearn::method_name(o.method);
    QString s =
        QObject::tr("method %1 (%2) · ε1 %3 · ε2 %4 · ε3 %5 · %6 steps · lr %7")
            .arg(unlearn::method_name(o.method), unlearn::mode_name(o.mode), number(o.eps1), number(o.eps2), number(o.eps3))
            .arg(o.max_steps)
            .arg(number(o.lr));
    if (o.lora.enabled()) s += QObject::tr(" · LoRA rank %1").arg(o.lora.rank);
    return s;
  } catch (const std::exception&) {
    return QObject::tr("settings unreadable");
  }
}

// Fitted to the values with a margin (at least `minPad` each side).
QCPRange fitted(const QVector<double>& v, double minPad) {
  const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
  const double pad = std::max(minPad, 0.12 * (*hi - *lo));
  return QCPRange(*lo - pad, *hi + pad);
}

}  // namespace

void HistoryPanel::refresh() {
  if (storePath_.isEmpty()) return;
  points_.clear();
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
        if (ev.count("harmful_rate_reduction") && std::isfinite(ev["harmful_rate_reduction"]) && std::isfinite(ratio)) {
          ScatterPoint p;
          p.run = run.id;
          p.x = ev["harmful_rate_reduction"];
          p.y = 100 * (ratio - 1);
          p.text = tr("<b>Run %1 · %2</b> (%3)")
                       .arg(run.id)
                       .arg(QString::fromStdString(run.name).toHtmlEscaped(), QString::fromStdString(run.status)) +
                   "<br>" + settingsOf(run.spec_json, p.method).toHtmlEscaped() + "<br>" +
                   tr("harmful-answer rate %1 → %2 (reduction %3)")
                       .arg(ev.count("harmful_rate_before") ? number(ev["harmful_rate_before"]) : "?",
                            ev.count("harmful_rate_after") ? number(ev["harmful_rate_after"]) : "?", number(p.x)) +
                   "<br>" +
                   tr("normal-data perplexity %1 → %2 (%3%4%)")
                       .arg(number(ev["perplexity_before"]), number(ev["perplexity_after"]), p.y >= 0 ? "+" : "")
                       .arg(p.y, 0, 'f', 1) +
                   "<br><i>" + tr("Click to open the run.") + "</i>";
          points_.push_back(p);
        }
      }
      // What returned under each probe: the first measure a probe stored (the harmful rate, or the
      // continuation BLEU of a copyright run).
      QStringList robust;
      std::map<std::string, double> returned;
      for (const auto& [name, value] : ev) {
        const std::string suffix = "_returned";
        if (name.rfind("probe_", 0) != 0 || name.size() <= suffix.size() ||
            name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
          continue;
        for (const char* measure : {"_harmful_rate", "_continuation_bleu"}) {
          const std::string tail = std::string(measure) + suffix;
          if (name.size() > tail.size() + 6 && name.compare(name.size() - tail.size(), tail.size(), tail) == 0) {
            const std::string probe = name.substr(6, name.size() - tail.size() - 6);
            if (!returned.count(probe)) returned[probe] = value;
          }
        }
      }
      for (const auto& [probe, value] : returned)
        robust << QString("%1 %2%").arg(QString::fromStdString(probe)).arg(100 * value, 0, 'f', 0);
      const QString cells[7] = {QString::number(run.id),
                                QString::fromStdString(run.name),
                                QString::fromStdString(run.status),
                                QString::number(st.steps(run.id).size()),
                                harm,
                                ppl,
                                robust.isEmpty() ? QString("-") : robust.join(" · ")};
      for (int c = 0; c < 7; ++c) table_->setItem(r, c, new QTableWidgetItem(cells[c]));
    }
  } catch (const std::exception&) {
    table_->setRowCount(0);
  }
  drawScatter();
}

void HistoryPanel::drawScatter() {
  scatter_->clearGraphs();
  scatter_->clearItems();
  const QPalette pal = palette();
  // One graph per method (its colour, its legend entry).
  static const QColor colours[] = {QColor(0x00, 0x72, 0xb2), QColor(0xd5, 0x5e, 0x00), QColor(0x00, 0x9e, 0x73),
                                   QColor(0xcc, 0x79, 0xa7), QColor(0xe6, 0x9f, 0x00), QColor(0x56, 0xb4, 0xe9),
                                   QColor(0xf0, 0xe4, 0x42), QColor(0x00, 0x00, 0x00)};
  std::map<QString, QCPGraph*> byMethod;
  for (const auto& p : points_) {
    const QString method = p.method.isEmpty() ? tr("run") : p.method;
    QCPGraph*& g = byMethod[method];
    if (!g) {
      g = scatter_->addGraph();
      g->setName(method);
      g->setLineStyle(QCPGraph::lsNone);
      const QColor c = colours[(byMethod.size() - 1) % std::size(colours)];
      g->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDisc, QPen(c.darker(140)), c, 9));
    }
    g->addData(p.x, p.y);
    if (points_.size() <= 20) {  // the run's id beside its point
      auto* label = new QCPItemText(scatter_);
      label->setText(QString("#%1").arg(p.run));
      label->setColor(pal.color(QPalette::Text));
      label->position->setCoords(p.x, p.y);
      label->setPositionAlignment(Qt::AlignLeft | Qt::AlignBottom);
      label->setPadding(QMargins(6, 0, 0, 2));
    }
  }
  scatter_->legend->setVisible(byMethod.size() > 1);
  // The no-change line of the perplexity.
  auto* zero = new QCPItemStraightLine(scatter_);
  zero->point1->setCoords(0, 0);
  zero->point2->setCoords(1, 0);
  zero->setPen(QPen(pal.color(QPalette::Mid), 1, Qt::DashLine));
  if (points_.empty()) {
    scatter_->xAxis->setRange(0, 1);
    scatter_->yAxis->setRange(-5, 5);
  } else {
    QVector<double> xs, ys{0};  // y: the no-change line in view
    for (const auto& p : points_) {
      xs << p.x;
      ys << p.y;
    }
    QCPRange x = fitted(xs, 0.1);
    x.upper = std::min(x.upper, std::max(1.05, *std::max_element(xs.begin(), xs.end()) + 0.02));  // a reduction is at most 1
    scatter_->xAxis->setRange(x);
    scatter_->yAxis->setRange(fitted(ys, 1.0));
  }
  scatter_->replot();
}

QPointF HistoryPanel::scatterPoint(qint64 runId) const {
  for (const auto& p : points_)
    if (p.run == runId) return {p.x, p.y};
  return {std::nan(""), std::nan("")};
}

QString HistoryPanel::scatterText(qint64 runId) const {
  for (const auto& p : points_)
    if (p.run == runId) return p.text;
  return {};
}

qint64 HistoryPanel::runAtScatterPixel(const QPointF& pixel) const {
  qint64 best = 0;
  double bestDist = 10.0;  // pixels
  for (const auto& p : points_) {
    const double dx = scatter_->xAxis->coordToPixel(p.x) - pixel.x(), dy = scatter_->yAxis->coordToPixel(p.y) - pixel.y();
    const double d = std::hypot(dx, dy);
    if (d <= bestDist) {
      bestDist = d;
      best = p.run;
    }
  }
  return best;
}

void HistoryPanel::scatterMoved(QMouseEvent* e) {
  const qint64 run = runAtScatterPixel(e->position());
  if (run == 0) {
    scatter_->unsetCursor();
    QToolTip::hideText();
    return;
  }
  scatter_->setCursor(Qt::PointingHandCursor);
  hoverText_ = scatterText(run);
  QToolTip::showText(e->globalPosition().toPoint(), hoverText_, scatter_);
}

void HistoryPanel::scatterPressed(QMouseEvent* e) {
  if (e->button() != Qt::LeftButton) return;
  const qint64 run = runAtScatterPixel(e->position());
  if (run == 0) return;
  for (int r = 0; r < table_->rowCount(); ++r)
    if (runIdAt(r) == run) table_->selectRow(r);
  Q_EMIT openRun(run);
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

HistoryPanel::~HistoryPanel() {
  if (probeThread_) {
    probeCancel_->store(true);
    probeThread_->wait();
  }
}

QString HistoryPanel::robustnessAt(int row) const { return table_->item(row, 6) ? table_->item(row, 6)->text() : QString(); }

void HistoryPanel::openProbeDialog(qint64 runId) {
  QDialog dlg(this);
  dlg.setWindowTitle(tr("Probe the robustness of run %1").arg(runId));
  auto* form = new QFormLayout(&dlg);
  auto* intro = new QLabel(tr("Each probe changes a fresh copy of the run's saved model and measures it as the run "
                              "did. The table then shows how much of the forgetting came back."),
                           &dlg);
  intro->setWordWrap(true);
  form->addRow(intro);
  auto* relearn = new QCheckBox(tr("Relearn: fine-tune on held-out forget data"), &dlg);
  auto* data = new QLineEdit(&dlg);
  data->setPlaceholderText(tr("question/answer JSONL not used in unlearning"));
  auto* browse = new QPushButton(tr("Browse…"), &dlg);
  auto* dataRow = new QHBoxLayout;
  dataRow->addWidget(data, 1);
  dataRow->addWidget(browse);
  auto* steps = new QSpinBox(&dlg);
  steps->setRange(1, 10000);
  steps->setValue(10);
  auto* lr = new QDoubleSpinBox(&dlg);
  lr->setDecimals(7);
  lr->setRange(1e-7, 1.0);
  lr->setSingleStep(1e-5);
  lr->setValue(1e-5);
  auto* int8 = new QCheckBox(tr("int8 weights (per row)"), &dlg);
  auto* int4 = new QCheckBox(tr("int4 weights (groups of 128)"), &dlg);
  int8->setChecked(true);
  int4->setChecked(true);
  form->addRow(relearn);
  form->addRow(tr("Relearn data"), dataRow);
  form->addRow(tr("Relearn steps"), steps);
  form->addRow(tr("Relearn learning rate"), lr);
  form->addRow(int8);
  form->addRow(int4);
  auto* box = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel, &dlg);
  box->button(QDialogButtonBox::Ok)->setText(tr("Probe"));
  form->addRow(box);
  connect(browse, &QPushButton::clicked, &dlg, [&] {
    const QString f = QFileDialog::getOpenFileName(&dlg, tr("Held-out forget data"), QString(), tr("JSONL (*.jsonl);;All (*)"));
    if (!f.isEmpty()) {
      data->setText(f);
      relearn->setChecked(true);
    }
  });
  connect(box, &QDialogButtonBox::accepted, &dlg, &QDialog::accept);
  connect(box, &QDialogButtonBox::rejected, &dlg, &QDialog::reject);
  if (dlg.exec() != QDialog::Accepted) return;
  ProbeChoice c;
  if (relearn->isChecked()) c.probes << "relearn";
  if (int8->isChecked()) c.probes << "int8";
  if (int4->isChecked()) c.probes << "int4";
  c.relearnData = data->text().trimmed();
  c.relearnSteps = steps->value();
  c.relearnLr = lr->value();
  if (c.probes.isEmpty()) return;
  probeRun(runId, c);
}

bool HistoryPanel::probeRun(qint64 runId, const ProbeChoice& choice) {
  if (probeThread_ || storePath_.isEmpty()) return false;
  experiment::ProbeRunRequest req;
  for (const auto& p : choice.probes) req.probes.push_back(p.toStdString());
  if (!choice.relearnData.isEmpty()) req.relearn_data = choice.relearnData.toStdString();
  req.relearn.steps = choice.relearnSteps;
  req.relearn.lr = choice.relearnLr;
  probeCancel_ = std::make_shared<std::atomic<bool>>(false);
  req.cancelled = [flag = probeCancel_] { return flag->load(); };
  const std::string store = storePath_.toStdString();
  probe_->setText(tr("Cancel probe"));
  probeThread_ = QThread::create([this, runId, req, store] {
    bool ok = false;
    QString summary;
    try {
      const io::Json r = experiment::probe_run(store, runId, req);
      QStringList parts;
      for (auto it = r["report"]["probes"].begin(); it != r["report"]["probes"].end(); ++it)
        for (auto m = it.value()["returns"].begin(); m != it.value()["returns"].end(); ++m)
          if (m.value().contains("returned"))
            parts << QString("%1: %2 returned %3%")
                         .arg(QString::fromStdString(it.key()), QString::fromStdString(m.key()))
                         .arg(100 * m.value()["returned"].get<double>(), 0, 'f', 1);
      summary = parts.isEmpty() ? tr("probed; the run stored no \"before\" to compare with") : parts.join("; ");
      ok = true;
    } catch (const model::Cancelled&) {
      summary = tr("cancelled; nothing stored");
    } catch (const std::exception& e) {
      summary = QString::fromStdString(e.what());
    }
    QMetaObject::invokeMethod(
        this,
        [this, runId, ok, summary] {
          probeThread_->wait();
          delete probeThread_;
          probeThread_ = nullptr;
          probe_->setText(tr("Probe robustness…"));
          refresh();
          Q_EMIT probeFinished(runId, ok, summary);
          if (!ok) Q_EMIT failed(tr("Probe of run %1: %2").arg(runId).arg(summary));
        },
        Qt::QueuedConnection);
  });
  probeThread_->start();
  return true;
}

void HistoryPanel::cancelProbe() {
  if (probeCancel_) probeCancel_->store(true);
}

int HistoryPanel::runCount() const { return table_->rowCount(); }
qint64 HistoryPanel::runIdAt(int row) const { return table_->item(row, 0) ? table_->item(row, 0)->text().toLongLong() : 0; }

}  // namespace lethe::ui
