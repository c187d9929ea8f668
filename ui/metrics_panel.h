#pragma once
// Metrics of a run: a headline (harmful rate before/after with its interval and the classifier's
// own validation accuracy beside it, the answers' fluency, TOFU, membership inference, robustness,
// normal-data perplexity), small multiples (ui/metric_charts.h: one plot per quantity, each on its
// own scale, grouped forgetting / utility / fluency / robustness / privacy) and a table with
// before and after side by side. Every metric shows its human name and unit (eval/metric_catalog.h);
// its tooltip says what it measures, which way is better and the stored name.
#include <QMap>
#include <QStringList>
#include <QWidget>
#include <vector>

#include "store/store.h"

class QTableWidget;
class QTableWidgetItem;
class QTabWidget;
class QLabel;
class QScrollArea;

namespace lethe::ui {

class MetricCharts;

class MetricsPanel : public QWidget {
  Q_OBJECT
 public:
  explicit MetricsPanel(QWidget* parent = nullptr);
  void showRun(const QString& storePath, qint64 runId);
  // The table's text for a stored metric (its store name, e.g. "perplexity_after"), "" when absent.
  QString value(const QString& name) const;
  // The human label the table shows for a stored metric ("Normal-data perplexity"), "" when absent.
  QString label(const QString& name) const;
  // The tooltip of a stored metric's value cell (explanation, unit, direction, the stored name).
  QString toolTip(const QString& name) const;
  QStringList rowLabels() const;  // the table's metric column, group headings included
  QString headline() const;
  MetricCharts* charts() const { return charts_; }
  QTableWidget* table() const { return table_; }

 private:
  QLabel* headline_ = nullptr;
  QScrollArea* headlineScroll_ = nullptr;
  QTabWidget* tabs_ = nullptr;
  MetricCharts* charts_ = nullptr;
  QTableWidget* table_ = nullptr;
  QMap<QString, QTableWidgetItem*> cells_;   // store name -> its value cell
  QMap<QString, QTableWidgetItem*> labels_;  // store name -> its row's label cell
  void fillTable(const std::vector<store::EvaluationRow>& evaluations);
  void fitHeadline();

 protected:
  void resizeEvent(QResizeEvent* e) override;
};

}  // namespace lethe::ui
