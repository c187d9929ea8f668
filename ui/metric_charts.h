#pragma once
// Small multiples of a run's metrics: one small plot per quantity, each on its own y scale with
// its unit, before and after as two bars (a one-off number as one bar), titled with the metric
// catalog's human label (eval/metric_catalog.h) and explained in a tooltip that also names the
// stored rows. Plots are grouped in sections (forgetting, utility, fluency, robustness, privacy,
// other) and flow into as many columns as the width allows. What returned under each robustness
// probe is one plot per measure with a bar per probe. 0/1 flags are not charted.
#include <QColor>
#include <QMap>
#include <QString>
#include <QStringList>
#include <QVector>
#include <QWidget>
#include <optional>
#include <vector>

#include "store/store.h"

class QCustomPlot;
class QGridLayout;
class QLabel;
class QScrollArea;

namespace lethe::eval {
struct MetricInfo;
}

namespace lethe::ui {

// A stored value as a person reads it: 3–4 significant decimals, "yes"/"no" for a flag.
QString formatMetricValue(double value, const eval::MetricInfo& info);
// The tooltip of a stored metric: label, explanation, unit and direction, the stored name(s).
QString metricToolTip(const eval::MetricInfo& info, const QStringList& storedNames);

struct ChartBar {
  QString label;  // "before", "after", "int8"
  double value = 0;
  QColor color;
  std::optional<std::pair<double, double>> interval;  // a 95% interval drawn as an error bar
};

// One small plot.
struct ChartSpec {
  QString key;      // the quantity ("harmful_rate"), or "returned:<measure>" for the probes
  QString title;    // the human label
  QString unit;     // the y axis label
  QString note;     // "lower is better" (under the title)
  QString tooltip;  // rich text
  int group = 0;    // eval::MetricGroup
  QVector<ChartBar> bars;
  std::optional<double> reference;  // a dashed line (an MIA AUC's 0.5: chance)
  QString referenceLabel;           // "chance", "fluent text"
  double lower = 0, upper = 1;      // the y range: every bar (and interval, reference) inside
};

class MetricCharts : public QWidget {
  Q_OBJECT
 public:
  explicit MetricCharts(QWidget* parent = nullptr);
  // One plot per quantity of a run's stored evaluations (st.evaluations(run)).
  void setEvaluations(const std::vector<store::EvaluationRow>& rows);
  void clear();
  // What setEvaluations draws, without widgets: the plots in the order shown.
  static std::vector<ChartSpec> chartsFor(const std::vector<store::EvaluationRow>& rows);

  int plotCount() const { return static_cast<int>(specs_.size()); }
  QStringList keys() const;           // the plots' keys, in the order shown
  QStringList sectionTitles() const;  // "Forgetting", ... the sections shown
  const ChartSpec* spec(const QString& key) const;
  QCustomPlot* plot(const QString& key) const;
  QWidget* cell(const QString& key) const;  // the plot with its title (the tooltip's owner)
  int columns() const { return columns_; }

 protected:
  void resizeEvent(QResizeEvent* e) override;
  bool eventFilter(QObject* o, QEvent* e) override;

 private:
  QLabel* legend_ = nullptr;  // the colours: before, after, probes
  QScrollArea* scroll_ = nullptr;
  QWidget* content_ = nullptr;
  QGridLayout* grid_ = nullptr;
  QLabel* empty_ = nullptr;
  std::vector<ChartSpec> specs_;
  struct Section {
    QLabel* header = nullptr;
    QVector<QWidget*> cells;
  };
  QVector<Section> sections_;
  QMap<QString, QWidget*> cells_;
  QMap<QString, QCustomPlot*> plots_;
  int columns_ = 0;
  void build();
  void relayout(bool force);
  QWidget* makeCell(const ChartSpec& s);
};

}  // namespace lethe::ui
