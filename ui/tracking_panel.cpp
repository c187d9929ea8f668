#include "tracking_panel.h"

#include <QComboBox>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QPushButton>
#include <QSpinBox>
#include <QSplitter>
#include <QVBoxLayout>
#include <cmath>
#include <filesystem>
#include <set>

#include "data/datasets.h"
#include "experiment/track_rows.h"
#include "plot_style.h"
#include "qcustomplot_include.h"
#include "run_controller.h"
#include "spec_model.h"
#include "store/store.h"

namespace lethe::ui {

namespace {
// A plot over optimizer steps in the workbench's palette.
QCustomPlot* stepPlot(QWidget* parent, const char* name) {
  auto* p = new QCustomPlot(parent);
  p->setObjectName(name);
  p->setMinimumSize(160, 120);
  applyPlotPalette(p, parent->palette());
  p->xAxis->setLabel(QObject::tr("step"));
  return p;
}

// Okabe-Ito colours, as the loss plot's (readable for common colour-vision deficits).
const QColor kColours[] = {QColor(0xd5, 0x5e, 0x00), QColor(0x00, 0x72, 0xb2), QColor(0x00, 0x9e, 0x73),
                           QColor(0xcc, 0x79, 0xa7), QColor(0xe6, 0x9f, 0x00), QColor(0x56, 0xb4, 0xe9)};

QString shortText(const std::string& s, int n = 48) {
  const QString q = QString::fromStdString(s).simplified();
  return q.size() > n ? q.left(n - 1) + "…" : q;
}

}  // namespace

TrackingPanel::TrackingPanel(RunController* controller, SpecModel* spec, QWidget* parent)
    : QWidget(parent), controller_(controller), spec_(spec) {
  auto* root = new QHBoxLayout(this);
  root->setContentsMargins(4, 4, 4, 4);
  auto* split = new QSplitter(Qt::Horizontal, this);
  root->addWidget(split);

  auto* controls = new QWidget(split);
  auto* cl = new QVBoxLayout(controls);
  cl->setContentsMargins(0, 0, 0, 0);
  // Always shown, apart from the status line (which reports what the panel did).
  auto* warning = new QLabel(tr("<b>Content warning.</b> The forget set's answers are harmful by design "
                                "(non-operational, for research); the heatmap shows them token by token. "
                                "<i>Redact answers</i> in the Datasets dock hides them here too."),
                             controls);
  warning->setObjectName("tracking_content_warning");
  warning->setWordWrap(true);
  cl->addWidget(warning);
  auto* pick = new QHBoxLayout;
  choose_ = new QComboBox(controls);
  choose_->setObjectName("tracking_choose");
  choose_->setMinimumContentsLength(12);
  choose_->setSizeAdjustPolicy(QComboBox::AdjustToMinimumContentsLengthWithIcon);
  choose_->setToolTip(tr("A forget-set question to follow; its harmful answer (and the safe one, when the set has it)"));
  auto* add = new QPushButton(tr("Track"), controls);
  add->setObjectName("tracking_add");
  pick->addWidget(choose_, 1);
  pick->addWidget(add);
  cl->addLayout(pick);
  customPrompt_ = new QLineEdit(controls);
  customPrompt_->setObjectName("tracking_custom_prompt");
  customPrompt_->setPlaceholderText(tr("…or your own question"));
  customAnswer_ = new QLineEdit(controls);
  customAnswer_->setObjectName("tracking_custom_answer");
  customAnswer_->setPlaceholderText(tr("and the answer to follow (Enter tracks it)"));
  cl->addWidget(customPrompt_);
  cl->addWidget(customAnswer_);
  auto* everyRow = new QHBoxLayout;
  every_ = new QSpinBox(controls);
  every_->setObjectName("tracking_every");
  every_->setRange(1, 10000);
  every_->setValue(controller_->trackEvery());
  every_->setSuffix(tr(" steps"));
  everyRow->addWidget(new QLabel(tr("Measure every"), controls));
  everyRow->addWidget(every_);
  everyRow->addStretch(1);
  cl->addLayout(everyRow);
  list_ = new QListWidget(controls);
  list_->setObjectName("tracking_list");
  cl->addWidget(list_, 1);
  status_ = new QLabel(controls);
  status_->setObjectName("tracking_status");
  status_->setWordWrap(true);
  cl->addWidget(status_);

  plot_ = stepPlot(split, "tracking_plot");
  plot_->yAxis->setLabel(tr("mean log-prob"));
  plot_->setToolTip(tr("Each tracked answer's mean log-probability under the model at that step: solid the harmful "
                       "answer, dashed the safe one; the colours are the list's"));

  auto* hm = new QWidget(split);
  auto* hl = new QVBoxLayout(hm);
  hl->setContentsMargins(0, 0, 0, 0);
  heatmapOf_ = new QComboBox(hm);
  heatmapOf_->setObjectName("tracking_heatmap_of");
  heatmapOf_->setToolTip(tr("Whose answer the heatmap shows, token by token"));
  hl->addWidget(heatmapOf_);
  heatmap_ = stepPlot(hm, "tracking_heatmap");
  map_ = new QCPColorMap(heatmap_->xAxis, heatmap_->yAxis);
  QCPColorGradient gradient(QCPColorGradient::gpThermal);
  map_->setGradient(gradient);
  map_->setDataRange(QCPRange(0, 1));
  map_->setInterpolate(false);
  auto* scale = new QCPColorScale(heatmap_);
  heatmap_->plotLayout()->addElement(0, 1, scale);
  scale->setLabel(tr("p(token)"));
  scale->axis()->setTickLabelColor(palette().color(QPalette::Text));
  scale->axis()->setLabelColor(palette().color(QPalette::Text));
  map_->setColorScale(scale);
  scale->setDataRange(QCPRange(0, 1));
  hl->addWidget(heatmap_, 1);
  split->setStretchFactor(0, 2);
  split->setStretchFactor(1, 3);
  split->setStretchFactor(2, 3);

  connect(add, &QPushButton::clicked, this, [this] { addForgetPrompt(choose_->currentIndex()); });
  connect(customAnswer_, &QLineEdit::returnPressed, this, [this] {
    if (addCustom(customPrompt_->text(), customAnswer_->text())) {
      customPrompt_->clear();
      customAnswer_->clear();
    }
  });
  connect(every_, &QSpinBox::valueChanged, this, [this](int n) { controller_->setTrackEvery(n); });
  connect(heatmapOf_, &QComboBox::currentIndexChanged, this, [this](int i) {
    if (i >= 0) setHeatmapPrompt(heatmapOf_->itemData(i).toLongLong());
  });
  connect(spec_, &SpecModel::changed, this, &TrackingPanel::refreshChoices);
  status_->setText(tr("Pick prompts to follow while the model unlearns; they can be added during a run."));
  refreshChoices();
}

void TrackingPanel::refreshChoices() {
  const QString path = spec_->resolvedPath("datasets.forget.path");
  if (path == choose_->property("path").toString() && !choices_.empty()) return;
  choose_->setProperty("path", path);
  choices_.clear();
  choose_->clear();
  if (path.isEmpty() || !std::filesystem::exists(path.toStdString())) return;
  try {
    if (!path.endsWith(".jsonl")) return;
    const auto pku = data::read_pku_jsonl(path.toStdString());
    std::map<std::string, std::string> safe;
    for (const auto& s : pku.safe) safe.emplace(s.prompt, s.response);
    for (const auto& u : pku.unsafe) {
      const auto it = safe.find(u.prompt);
      choices_.push_back({u.prompt, u.response, it == safe.end() ? std::string() : it->second});
      choose_->addItem(QString("%1. %2").arg(choices_.size()).arg(shortText(u.prompt, 60)));
      choose_->setItemData(choose_->count() - 1, QString::fromStdString(u.prompt), Qt::ToolTipRole);
    }
  } catch (const std::exception& e) {
    status_->setText(tr("Could not read the forget set: %1").arg(QString::fromStdString(e.what())));
  }
}

int TrackingPanel::choiceCount() const { return static_cast<int>(choices_.size()); }

bool TrackingPanel::addForgetPrompt(int index) {
  if (index < 0 || index >= choiceCount()) {
    status_->setText(tr("Choose a forget prompt first (the spec's forget set, a PKU-style JSONL file)."));
    return false;
  }
  const auto& c = choices_[static_cast<size_t>(index)];
  unlearn::TrackedPrompt p;
  p.prompt = c.prompt;
  p.answer = c.answer;
  p.safe_answer = c.safe;
  p.source = "forget[" + std::to_string(index) + "]";
  QString error;
  if (!controller_->addTrackedPrompt(p, &error)) {
    status_->setText(error);
    return false;
  }
  rebuildList();
  return true;
}

bool TrackingPanel::addCustom(const QString& prompt, const QString& answer, const QString& safeAnswer) {
  if (prompt.trimmed().isEmpty() || answer.trimmed().isEmpty()) {
    status_->setText(tr("A tracked prompt needs a question and the answer to follow."));
    return false;
  }
  unlearn::TrackedPrompt p;
  p.prompt = prompt.trimmed().toStdString();
  p.answer = answer.trimmed().toStdString();
  p.safe_answer = safeAnswer.trimmed().toStdString();
  p.source = "custom";
  QString error;
  if (!controller_->addTrackedPrompt(p, &error)) {
    status_->setText(error);
    return false;
  }
  rebuildList();
  return true;
}

int TrackingPanel::trackedCount() const { return static_cast<int>(controller_->trackedPrompts().size()); }

void TrackingPanel::rebuildList() {
  list_->clear();
  const auto tracked = controller_->trackedPrompts();
  for (const auto& p : tracked) {
    prompts_[p.id] = p;
    auto* item = new QListWidgetItem(QString("#%1 %2").arg(p.id).arg(shortText(p.prompt)), list_);
    item->setData(Qt::UserRole, QVariant::fromValue<qint64>(p.id));
    item->setToolTip(
        QString::fromStdString(p.prompt + "\n→ " + p.answer + (p.safe_answer.empty() ? "" : "\nsafe: " + p.safe_answer)));
  }
  status_->setText(controller_->isRunning()
                       ? tr("%1 tracked; a prompt added now is measured from the next due step.").arg(tracked.size())
                       : tr("%1 tracked; measured every %2 steps during the next run.").arg(tracked.size()).arg(every_->value()));
  redraw();
}

QString TrackingPanel::promptLabel(int64_t id) const {
  const auto it = prompts_.find(id);
  return it == prompts_.end() ? QString("#%1").arg(id) : QString("#%1 %2").arg(id).arg(shortText(it->second.prompt, 28));
}

void TrackingPanel::append(const std::vector<unlearn::TrackPoint>& points) {
  if (points.empty()) return;
  // Prompts added by the spec (or during the run) become known with their first points.
  for (const auto& p : controller_->trackedPrompts()) prompts_.emplace(p.id, p);
  for (const auto& p : points) series_[{p.prompt_id, p.kind}][p.step] = p;
  redraw();
}

void TrackingPanel::clearPoints() {
  series_.clear();
  heatmapPrompt_ = -1;
  redraw();
}

void TrackingPanel::showRun(const QString& storePath, qint64 runId) {
  series_.clear();
  prompts_.clear();
  heatmapPrompt_ = -1;
  try {
    store::Store st(storePath.toStdString());
    for (const auto& r : st.tracked_prompts(runId)) prompts_[r.prompt_id] = experiment::tracked_prompt(r);
    for (const auto& r : st.tracks(runId)) series_[{r.prompt_id, r.kind}][r.step] = experiment::track_point(r);
  } catch (const std::exception& e) {
    status_->setText(QString::fromStdString(e.what()));
  }
  redraw();
}

int TrackingPanel::pointCount() const {
  int n = 0;
  for (const auto& [key, points] : series_) n += static_cast<int>(points.size());
  return n;
}

int TrackingPanel::promptsWithPoints() const {
  std::set<int64_t> ids;
  for (const auto& [key, points] : series_)
    if (!points.empty()) ids.insert(key.first);
  return static_cast<int>(ids.size());
}

void TrackingPanel::redraw() {
  plot_->clearGraphs();
  int colour = 0;
  double lo = 0, hi = 0, maxStep = 1;
  bool first = true;
  std::map<int64_t, QColor> byPrompt;
  for (const auto& p : controller_->trackedPrompts()) byPrompt.emplace(p.id, kColours[colour++ % 6]);
  for (const auto& [key, points] : series_) {
    if (!byPrompt.count(key.first)) byPrompt[key.first] = kColours[colour++ % 6];
    QCPGraph* g = plot_->addGraph();
    g->setName(promptLabel(key.first) + (key.second == "safe" ? tr(" (safe)") : QString()));
    QPen pen(byPrompt[key.first], 2);
    if (key.second == "safe") pen.setStyle(Qt::DashLine);
    g->setPen(pen);
    g->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDisc, 4));
    for (const auto& [step, p] : points) {
      if (!std::isfinite(p.mean_logprob)) continue;
      g->addData(static_cast<double>(step), p.mean_logprob);
      lo = first ? p.mean_logprob : std::min(lo, p.mean_logprob);
      hi = first ? p.mean_logprob : std::max(hi, p.mean_logprob);
      maxStep = std::max(maxStep, static_cast<double>(step));
      first = false;
    }
  }
  const double pad = std::max(0.1, (hi - lo) * 0.08);
  plot_->xAxis->setRange(0, maxStep);
  plot_->yAxis->setRange(lo - pad, std::min(0.0, hi) + pad);
  plot_->replot(QCustomPlot::rpQueuedReplot);

  // The heatmap chooser: every prompt with points.
  // The list shows each prompt in its curve's colour (the plot has no room for a legend).
  for (int i = 0; i < list_->count(); ++i) {
    const qint64 id = list_->item(i)->data(Qt::UserRole).toLongLong();
    if (byPrompt.count(id)) list_->item(i)->setForeground(byPrompt[id]);
  }
  const qint64 keep = heatmapPrompt_;
  heatmapOf_->blockSignals(true);
  heatmapOf_->clear();
  for (const auto& [id, c] : byPrompt) heatmapOf_->addItem(promptLabel(id), QVariant::fromValue<qint64>(id));
  const int at = heatmapOf_->findData(QVariant::fromValue<qint64>(keep));
  heatmapOf_->setCurrentIndex(at >= 0 ? at : 0);
  heatmapOf_->blockSignals(false);
  heatmapPrompt_ = heatmapOf_->count() ? heatmapOf_->currentData().toLongLong() : -1;
  redrawHeatmap();
}

void TrackingPanel::setHeatmapPrompt(qint64 promptId) {
  heatmapPrompt_ = promptId;
  const int at = heatmapOf_->findData(QVariant::fromValue<qint64>(promptId));
  if (at >= 0 && at != heatmapOf_->currentIndex()) {
    heatmapOf_->blockSignals(true);
    heatmapOf_->setCurrentIndex(at);
    heatmapOf_->blockSignals(false);
  }
  redrawHeatmap();
}

// The answer's tokens (rows) at every recorded step (columns), coloured by p(token | prefix).
void TrackingPanel::redrawHeatmap() {
  const auto it = series_.find({heatmapPrompt_, "answer"});
  map_->data()->clear();
  if (it == series_.end() || it->second.empty()) {
    map_->data()->setSize(0, 0);
    heatmap_->replot(QCustomPlot::rpQueuedReplot);
    return;
  }
  const auto& points = it->second;
  const auto& tokens = points.begin()->second.tokens;
  const int nx = static_cast<int>(points.size()), ny = static_cast<int>(tokens.size());
  map_->data()->setSize(nx, std::max(ny, 1));
  map_->data()->setRange(QCPRange(0, std::max(1, nx - 1)), QCPRange(0, std::max(1, ny - 1)));
  int x = 0;
  QSharedPointer<QCPAxisTickerText> xt(new QCPAxisTickerText), yt(new QCPAxisTickerText);
  // Step labels at most every ~45 pixels of the plot.
  const int room = std::max(1, heatmap_->axisRect()->width() / 45);
  const int every = std::max(1, (nx + room - 1) / room);
  for (const auto& [step, p] : points) {
    for (int y = 0; y < ny && y < static_cast<int>(p.token_logprobs.size()); ++y)
      map_->data()->setCell(x, ny - 1 - y, std::exp(p.token_logprobs[static_cast<size_t>(y)]));
    if (x % every == 0) xt->addTick(x, QString::number(step));
    ++x;
  }
  for (int y = 0; y < ny; ++y) {
    QString t = QString::fromStdString(tokens[static_cast<size_t>(y)]).trimmed().left(12);
    if (redacted_) t = QString(std::max<qsizetype>(1, t.size()), QChar(0x2588));  // as the Datasets dock redacts
    yt->addTick(ny - 1 - y, t.isEmpty() ? QString("␣") : t);
  }
  heatmap_->xAxis->setTicker(xt);
  heatmap_->yAxis->setTicker(yt);
  heatmap_->xAxis->setRange(-0.5, nx - 0.5);
  heatmap_->yAxis->setRange(-0.5, ny - 0.5);
  heatmap_->yAxis->setLabel(tr("answer token"));
  heatmap_->replot(QCustomPlot::rpQueuedReplot);
}

void TrackingPanel::setRedacted(bool on) {
  if (redacted_ == on) return;
  redacted_ = on;
  redrawHeatmap();
}

QStringList TrackingPanel::heatmapTokenLabels() const {
  QStringList out;
  auto* ticker = dynamic_cast<QCPAxisTickerText*>(heatmap_->yAxis->ticker().data());
  if (ticker)
    for (const QString& t : ticker->ticks()) out << t;
  return out;
}

QSize TrackingPanel::heatmapCells() const { return {map_->data()->keySize(), map_->data()->valueSize()}; }
QString TrackingPanel::status() const { return status_->text(); }

}  // namespace lethe::ui
