#include "metric_charts.h"

#include <QCoreApplication>
#include <QEvent>
#include <QFrame>
#include <QGridLayout>
#include <QLabel>
#include <QResizeEvent>
#include <QScrollArea>
#include <QScrollBar>
#include <QVBoxLayout>
#include <algorithm>
#include <cmath>
#include <map>

#include "eval/metric_catalog.h"
#include "io/json.h"
#include "plot_style.h"
#include "qcustomplot_include.h"

namespace lethe::ui {

namespace {

// Okabe–Ito colours (readable for colour-blind people, on light and dark backgrounds).
const QColor kBefore(0xd5, 0x5e, 0x00);
const QColor kAfter(0x00, 0x72, 0xb2);
const QColor kProbe(0xcc, 0x79, 0xa7);
constexpr int kCellWidth = 140;  // the narrowest a small plot is laid out
constexpr int kPlotHeight = 120;

int groupIndex(eval::MetricGroup g) {
  const auto& groups = eval::metric_groups();
  return static_cast<int>(std::find(groups.begin(), groups.end(), g) - groups.begin());
}

// The y range: every bar, interval and reference line inside, the bars' zero included, room
// above for the value labels.
void fitRange(ChartSpec& s) {
  double lo = 0, hi = 0;
  auto take = [&](double v) {
    if (!std::isfinite(v)) return;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  };
  for (const auto& b : s.bars) {
    take(b.value);
    if (b.interval) {
      take(b.interval->first);
      take(b.interval->second);
    }
  }
  if (s.reference) take(*s.reference);
  if (hi - lo < 1e-12) hi = lo + 1;  // all zero: a unit range
  const double span = hi - lo;
  if (hi > 0) hi += 0.2 * span;
  if (lo < 0) lo -= 0.15 * span;
  s.lower = lo;
  s.upper = hi;
}

QString html(const std::string& s) { return QString::fromStdString(s).toHtmlEscaped(); }

// A bar's label: three significant digits or so, short enough for a narrow bar.
QString barText(double v) {
  const double a = std::abs(v);
  if (!std::isfinite(v)) return QString::number(v);
  if (a == 0) return "0";
  if (a >= 100) return QString::number(v, 'f', 0);
  if (a >= 10) return QString::number(v, 'f', 1);
  if (a >= 1) return QString::number(v, 'f', 2);
  if (a >= 0.01) return QString::number(v, 'f', 3);
  return QString::number(v, 'g', 2);
}

}  // namespace

QString formatMetricValue(double v, const eval::MetricInfo& info) {
  if (info.flag) return v > 0.5 ? QObject::tr("yes") : QObject::tr("no");
  if (!std::isfinite(v)) return QString::number(v);
  const double a = std::abs(v);
  if (a == 0) return "0.000";
  if (a < 1e-3) return QString::number(v, 'g', 3);
  return QString::number(v, 'f', a >= 100 ? 2 : a >= 1 ? 3 : 4);
}

QString metricToolTip(const eval::MetricInfo& info, const QStringList& storedNames) {
  QString t = "<b>" + html(info.label) + "</b>";
  QStringList about;
  if (!info.unit.empty()) about << html(info.unit);
  if (!info.direction().empty()) about << html(info.direction());
  if (!about.isEmpty()) t += " (" + about.join("; ") + ")";
  t += "<br>" + html(info.explanation);
  QStringList names;
  for (const auto& n : storedNames) names << "<code>" + n.toHtmlEscaped() + "</code>";
  t += "<br><small>" + QObject::tr("Stored as %1").arg(names.join(", ")) + "</small>";
  return t;
}

std::vector<ChartSpec> MetricCharts::chartsFor(const std::vector<store::EvaluationRow>& rows) {
  struct Pending {
    ChartSpec spec;
    int order = 0;
    std::string sortName;
    eval::MetricInfo info;
    QStringList stored;
    std::map<int, ChartBar> bars;  // by position: before 0, after 1, a one-off 0, probes in order
  };
  std::map<std::string, Pending> byKey;
  std::map<std::string, double> values;
  for (const auto& r : rows) values[r.name] = r.value;
  std::map<std::string, int> probeOrder;  // probes in the order first seen
  for (const auto& r : rows) {
    const eval::MetricInfo info = eval::describe_metric(r.name);
    if (info.flag) continue;                                       // yes/no: the table and headline say it
    if (!info.probe.empty() && !info.returned) continue;           // a probe's raw measure: in the table
    if (info.quantity == "fluent_reference_perplexity") continue;  // the answer perplexity's reference line
    const std::string key = info.returned ? "returned:" + info.measure : info.quantity;
    Pending& p = byKey[key];
    if (p.stored.isEmpty()) {
      p.info = info;
      p.spec.key = QString::fromStdString(key);
      p.spec.group = static_cast<int>(info.group);
      p.order = groupIndex(info.group) * 10000 + info.order;
      p.sortName = key;
      if (info.returned) {
        p.spec.title = QObject::tr("Forgetting returned: %1").arg(QString::fromStdString(info.measure_label));
        p.spec.unit = QObject::tr("fraction");
        p.spec.note = QObject::tr("0 = none, 1 = all; lower is better");
      } else {
        p.spec.title = QString::fromStdString(info.label);
        p.spec.unit = QString::fromStdString(info.unit);
        p.spec.note = QString::fromStdString(info.direction());
      }
    }
    p.stored << QString::fromStdString(r.name);
    ChartBar b;
    b.value = r.value;
    int pos = 0;
    if (info.returned) {
      const auto it = probeOrder.emplace(info.probe, static_cast<int>(probeOrder.size())).first;
      pos = it->second;
      b.label = QString::fromStdString(info.probe);
      b.color = kProbe;
    } else if (info.side == eval::MetricSide::Before) {
      b.label = QObject::tr("before");
      b.color = kBefore;
    } else if (info.side == eval::MetricSide::After) {
      pos = 1;
      b.label = QObject::tr("after");
      b.color = kAfter;
    } else {
      b.color = kAfter;
    }
    if (r.name == "harmful_rate_reduction") {
      try {
        const io::Json j = io::Json::parse(r.json);
        if (j.is_object() && j.contains("ci95") && j["ci95"].size() == 2)
          b.interval = std::make_pair(j["ci95"][0].get<double>(), j["ci95"][1].get<double>());
      } catch (const std::exception&) {
      }
    }
    p.bars[pos] = b;
  }
  std::vector<Pending*> order;
  for (auto& [key, p] : byKey) {
    for (auto& [pos, b] : p.bars) p.spec.bars << b;
    if (p.info.better == eval::Better::Target) {
      p.spec.reference = p.info.target;
      p.spec.referenceLabel = QObject::tr("chance");
      p.spec.note += QObject::tr("; dashed: chance");
    }
    if (key == "answer_perplexity") {
      for (const char* ref : {"fluent_reference_perplexity_after", "fluent_reference_perplexity_before"})
        if (values.count(ref)) {
          p.spec.reference = values[ref];
          p.spec.referenceLabel = QObject::tr("fluent text");
          p.spec.note += QObject::tr("; dashed: fluent text");
          p.stored << ref;
          break;
        }
    }
    // A returned-fraction plot explains each probe's row.
    QString tip = metricToolTip(p.info, p.stored);
    if (p.info.returned)
      tip = "<b>" + p.spec.title.toHtmlEscaped() + "</b> (" + QObject::tr("fraction; lower is better") + ")<br>" +
            QObject::tr("How much of the change unlearning made to the %1 came back under each probe: (probe − after) / "
                        "(before − after). 0 = none, 1 = all of it.")
                .arg(QString::fromStdString(p.info.measure_label).toHtmlEscaped()) +
            "<br><small>" + QObject::tr("Stored as %1").arg(p.stored.join(", ").toHtmlEscaped()) + "</small>";
    else if (p.spec.reference && key == "answer_perplexity")
      tip += "<br>" + QObject::tr("Dashed: the judge's perplexity of the normal data's reference answers (fluent text).");
    p.spec.tooltip = tip;
    fitRange(p.spec);
    order.push_back(&p);
  }
  std::stable_sort(order.begin(), order.end(), [](const Pending* a, const Pending* b) {
    return a->order != b->order ? a->order < b->order : a->sortName < b->sortName;
  });
  std::vector<ChartSpec> out;
  for (const Pending* p : order) out.push_back(p->spec);
  return out;
}

MetricCharts::MetricCharts(QWidget* parent) : QWidget(parent) {
  auto* root = new QVBoxLayout(this);
  root->setContentsMargins(0, 0, 0, 0);
  legend_ = new QLabel(this);
  legend_->setObjectName("metric_charts_legend");
  legend_->setTextFormat(Qt::RichText);
  legend_->setWordWrap(true);
  legend_->hide();
  root->addWidget(legend_);
  scroll_ = new QScrollArea(this);
  scroll_->setObjectName("metric_charts_scroll");
  scroll_->setWidgetResizable(true);
  scroll_->setFrameShape(QFrame::NoFrame);
  scroll_->setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
  root->addWidget(scroll_);
  build();
}

void MetricCharts::build() {
  content_ = new QWidget;
  grid_ = new QGridLayout(content_);
  grid_->setContentsMargins(4, 4, 4, 4);
  grid_->setHorizontalSpacing(6);
  grid_->setVerticalSpacing(6);
  empty_ = new QLabel(tr("No metrics stored for this run yet."), content_);
  empty_->setAlignment(Qt::AlignCenter);
  grid_->addWidget(empty_, 0, 0);
  scroll_->setWidget(content_);  // deletes the previous content
  sections_.clear();
  cells_.clear();
  plots_.clear();
  columns_ = 0;
}

void MetricCharts::clear() {
  specs_.clear();
  legend_->hide();
  build();
}

void MetricCharts::setEvaluations(const std::vector<store::EvaluationRow>& rows) {
  specs_ = chartsFor(rows);
  build();
  empty_->setVisible(specs_.empty());
  legend_->setVisible(!specs_.empty());
  const bool probes = std::any_of(specs_.begin(), specs_.end(), [](const ChartSpec& s) {
    return std::any_of(s.bars.begin(), s.bars.end(), [](const ChartBar& b) { return b.color == kProbe; });
  });
  QString legend = tr("<span style='color:%1'>■</span> before unlearning &nbsp; <span style='color:%2'>■</span> after")
                       .arg(kBefore.name(), kAfter.name());
  if (probes) legend += tr(" &nbsp; <span style='color:%1'>■</span> a probe").arg(kProbe.name());
  legend_->setText(legend + " · " + tr("hover a plot for what it measures"));
  int lastGroup = -1;
  for (const auto& s : specs_) {
    if (s.group != lastGroup) {
      lastGroup = s.group;
      const auto g = static_cast<eval::MetricGroup>(s.group);
      Section sec;
      sec.header = new QLabel(content_);
      sec.header->setObjectName(QString("metric_section_%1").arg(eval::metric_group_name(g)));
      sec.header->setTextFormat(Qt::RichText);
      sec.header->setWordWrap(true);
      sec.header->setText(
          QString("<b>%1</b> — %2").arg(tr(eval::metric_group_title(g)), tr(eval::metric_group_explanation(g)).toHtmlEscaped()));
      sections_ << sec;
    }
    QWidget* c = makeCell(s);
    sections_.last().cells << c;
    cells_[s.key] = c;
  }
  relayout(true);
}

QWidget* MetricCharts::makeCell(const ChartSpec& s) {
  auto* cell = new QFrame(content_);
  cell->setObjectName("metric_cell_" + s.key);
  cell->setFrameShape(QFrame::StyledPanel);
  cell->setToolTip(s.tooltip);
  cell->setMinimumWidth(kCellWidth - 10);
  cell->setSizePolicy(QSizePolicy::Preferred, QSizePolicy::Preferred);  // as tall as its row: plots line up
  auto* v = new QVBoxLayout(cell);
  v->setContentsMargins(4, 4, 4, 2);
  v->setSpacing(0);
  auto* title = new QLabel(cell);
  title->setObjectName("metric_title");
  title->setTextFormat(Qt::RichText);
  title->setWordWrap(true);
  title->setAlignment(Qt::AlignHCenter | Qt::AlignTop);
  QString t = "<b>" + s.title.toHtmlEscaped() + "</b>";
  if (!s.note.isEmpty()) t += "<br><span style='font-size:small'>" + s.note.toHtmlEscaped() + "</span>";
  title->setText(t);
  v->addWidget(title, 1);

  const QPalette pal = palette();
  auto* p = new QCustomPlot(cell);
  p->setObjectName("metric_plot_" + s.key);
  p->setToolTip(s.tooltip);
  p->setFixedHeight(kPlotHeight);
  p->setMinimumWidth(kCellWidth - 20);
  p->installEventFilter(this);
  applyPlotPalette(p, pal);
  QFont small = font();
  small.setPointSizeF(std::max(7.0, font().pointSizeF() * 0.85));
  for (QCPAxis* a : {p->xAxis, p->yAxis}) {
    a->setTickLabelFont(small);
    a->setLabelFont(small);
  }
  p->xAxis->grid()->setVisible(false);
  p->yAxis->setLabel(s.unit);
  p->yAxis->ticker()->setTickCount(4);
  p->yAxis->setNumberFormat("gb");
  p->xAxis->setTickLength(0, 0);
  p->xAxis->setSubTickLength(0, 0);

  QSharedPointer<QCPAxisTickerText> ticker(new QCPAxisTickerText);
  const int n = s.bars.size();
  for (int i = 0; i < n; ++i) {
    const ChartBar& b = s.bars[i];
    ticker->addTick(i, b.label);
    auto* bar = new QCPBars(p->xAxis, p->yAxis);
    bar->setWidth(0.6);
    bar->setPen(QPen(b.color.darker(130)));
    bar->setBrush(b.color);
    bar->setData(QVector<double>{double(i)}, QVector<double>{b.value});
    if (b.interval) {
      auto* err = new QCPErrorBars(p->xAxis, p->yAxis);
      err->setDataPlottable(bar);
      err->setPen(QPen(pal.color(QPalette::Text), 1.2));
      err->setData(QVector<double>{b.value - b.interval->first}, QVector<double>{b.interval->second - b.value});
    }
    auto* label = new QCPItemText(p);
    label->setFont(small);
    label->setColor(pal.color(QPalette::Text));
    label->setText(barText(b.value));
    label->position->setCoords(i, b.interval && b.value >= 0 ? std::max(b.value, b.interval->second) : b.value);
    label->setPositionAlignment(b.value >= 0 ? (Qt::AlignBottom | Qt::AlignHCenter) : (Qt::AlignTop | Qt::AlignHCenter));
    label->setPadding(QMargins(0, 1, 0, 1));
    label->setClipToAxisRect(false);
  }
  if (s.reference) {  // (what it is: the note under the title)
    auto* line = new QCPItemStraightLine(p);
    line->point1->setCoords(-1, *s.reference);
    line->point2->setCoords(n + 1, *s.reference);
    line->setPen(QPen(pal.color(QPalette::Text), 1, Qt::DashLine));
  }
  p->xAxis->setTicker(ticker);
  // Before and after are told by colour (the legend above the plots); probes by name.
  p->xAxis->setTickLabels(std::any_of(s.bars.begin(), s.bars.end(), [](const ChartBar& b) {
    return !b.label.isEmpty() && b.color != kBefore && b.color != kAfter;
  }));
  p->xAxis->setRange(n == 1 ? -1.0 : -0.75, n == 1 ? 1.0 : n - 0.25);  // one bar: not the plot's whole width
  p->yAxis->setRange(s.lower, s.upper);
  p->replot();
  plots_[s.key] = p;
  v->addWidget(p);
  return cell;
}

bool MetricCharts::eventFilter(QObject* o, QEvent* e) {
  // QCustomPlot takes every wheel event; scrolling over a plot scrolls the charts.
  if (e->type() == QEvent::Wheel && qobject_cast<QCustomPlot*>(o)) {
    QCoreApplication::sendEvent(scroll_->verticalScrollBar(), e);
    return true;
  }
  return QWidget::eventFilter(o, e);
}

void MetricCharts::resizeEvent(QResizeEvent* e) {
  QWidget::resizeEvent(e);
  relayout(false);
}

void MetricCharts::relayout(bool force) {
  const int width = std::max(1, scroll_->viewport()->width() - 8);
  const int cols = std::clamp(width / kCellWidth, 1, 6);
  if (!force && cols == columns_) return;
  for (int c = 0; c < grid_->columnCount(); ++c) grid_->setColumnStretch(c, 0);
  for (int r = 0; r < grid_->rowCount(); ++r) grid_->setRowStretch(r, 0);
  while (grid_->count() > 0) delete grid_->takeAt(0);  // the layout items, not the widgets
  columns_ = cols;
  int row = 0;
  if (sections_.isEmpty()) {
    grid_->addWidget(empty_, 0, 0);
    ++row;
  }
  for (const auto& sec : sections_) {
    grid_->addWidget(sec.header, row++, 0, 1, cols);
    for (int i = 0; i < sec.cells.size(); ++i) grid_->addWidget(sec.cells[i], row + i / cols, i % cols);
    row += (static_cast<int>(sec.cells.size()) + cols - 1) / cols;
  }
  for (int c = 0; c < cols; ++c) grid_->setColumnStretch(c, 1);
  grid_->setRowStretch(row, 1);
}

QStringList MetricCharts::keys() const {
  QStringList k;
  for (const auto& s : specs_) k << s.key;
  return k;
}

QStringList MetricCharts::sectionTitles() const {
  QStringList t;
  int last = -1;
  for (const auto& s : specs_)
    if (s.group != last) {
      last = s.group;
      t << tr(eval::metric_group_title(static_cast<eval::MetricGroup>(s.group)));
    }
  return t;
}

const ChartSpec* MetricCharts::spec(const QString& key) const {
  for (const auto& s : specs_)
    if (s.key == key) return &s;
  return nullptr;
}

QCustomPlot* MetricCharts::plot(const QString& key) const { return plots_.value(key, nullptr); }
QWidget* MetricCharts::cell(const QString& key) const { return cells_.value(key, nullptr); }

}  // namespace lethe::ui
