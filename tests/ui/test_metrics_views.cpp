// The Metrics dock and History's scatter as a researcher reads them: human names with units and
// tooltips (the stored name in them), one small plot per quantity on its own scale, a scatter
// fitted to the runs whose hover names the run and its settings and whose click opens it. And
// every name a real run stores (the demo preset with membership inference, then a probe) has a
// description in the metric catalog.
#include <QApplication>
#include <QFontMetrics>
#include <QLabel>
#include <QMouseEvent>
#include <QSignalSpy>
#include <QStandardPaths>
#include <QTabWidget>
#include <QTableWidget>
#include <QtTest>
#include <cmath>
#include <map>

#include "eval/metric_catalog.h"
#include "experiment/jobs.h"
#include "experiment/pipeline.h"
#include "experiment/spec.h"
#include "history_panel.h"
#include "io/json.h"
#include "metric_charts.h"
#include "metrics_panel.h"
#include "qcustomplot_include.h"
#include "store/store.h"
#include "support/tiny_opt.h"
#include "workbench_app.h"

using namespace lethe::ui;
using lethe::testing::TempDir;

namespace {

void addRows(lethe::store::Store& st, int64_t run, const std::map<std::string, double>& values,
             const std::map<std::string, std::string>& json = {}) {
  std::vector<lethe::store::EvaluationRow> rows;
  for (const auto& [name, v] : values) {
    lethe::store::EvaluationRow r;
    r.run_id = run;
    r.name = name;
    r.value = v;
    r.json = json.count(name) ? json.at(name) : "{}";
    rows.push_back(r);
  }
  st.add_evaluations(rows);
}

// A run as the pipeline stores it, with a probe and a name the catalog does not know.
const std::map<std::string, double> kRun = {
    {"harmful_rate_before", 0.9},
    {"harmful_rate_after", 0.1},
    {"harmful_rate_reduction", 0.8889},
    {"classifier_validation_accuracy", 0.95},
    {"perplexity_before", 7.7},
    {"perplexity_after", 715.2},
    {"mc_accuracy_before", 0.5},
    {"mc_accuracy_after", 0.45},
    {"kl_from_original", 0.0347},
    {"non_word_rate_before", 0.0},
    {"non_word_rate_after", 0.25},
    {"repetition_before", 0.0},
    {"repetition_after", 0.5},
    {"answer_perplexity_before", 7.72},
    {"answer_perplexity_after", 215.4},
    {"fluent_reference_perplexity_after", 266.3},
    {"answers_collapsed_after", 1.0},
    {"mia_loss_auc_before", 0.81},
    {"mia_loss_auc_after", 0.55},
    {"probe_int8_harmful_rate", 0.3},
    {"probe_int8_harmful_rate_returned", 0.25},
    {"probe_relearn_harmful_rate_returned", 0.75},
    {"shiny_new_score_after", 42.0},
};

struct Quiet : lethe::experiment::RunObserver {};

}  // namespace

// A store in `d` with one run of kRun's metrics (and the reduction's interval), shown in `panel`
// at the Metrics dock's size.
static void showTheRun(const TempDir& d, MetricsPanel& panel) {
  const std::string db = (d / "lethe.db").string();
  int64_t id = 0;
  {
    lethe::store::Store st(db);
    id = st.create_run("r", "{}", "{}");
    addRows(st, id, kRun, {{"harmful_rate_reduction", R"({"ci95": [0.7, 1.0]})"}});
  }
  panel.resize(525, 540);
  panel.show();
  panel.showRun(QString::fromStdString(db), id);
}

class MetricsViewsTest : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void initTestCase() { QStandardPaths::setTestModeEnabled(true); }

  // Human labels in the table (raw names only in the tooltips), units, and value() by store name.
  void tableShowsHumanNamesWithUnitsAndTooltips() {
    TempDir d;
    MetricsPanel panel;
    showTheRun(d, panel);
    const QStringList labels = panel.rowLabels();
    for (const char* l :
         {"Harmful-answer rate", "Normal-data perplexity", "KL divergence from the original", "Multiple-choice accuracy",
          "LOSS attack AUC", "Forgetting", "Utility", "Fluency", "Robustness", "Privacy", "Other", "shiny_new_score_after"})
      QVERIFY2(labels.contains(l), qPrintable(l + QString(" not in ") + labels.join(" | ")));
    for (const QString& l : labels)  // no store names, except the one nothing describes
      QVERIFY2(!l.contains('_') || l == "shiny_new_score_after", qPrintable(l));
    QCOMPARE(panel.label("harmful_rate_after"), QString("Harmful-answer rate"));
    QCOMPARE(panel.label("harmful_rate_before"), QString("Harmful-answer rate"));  // one row: before | after
    QCOMPARE(panel.value("harmful_rate_before"), QString("0.9000"));
    QCOMPARE(panel.value("non_word_rate_before"), QString("0.000"));
    QCOMPARE(panel.value("perplexity_after"), QString("715.20"));
    QCOMPARE(panel.value("answers_collapsed_after"), QString("yes"));
    QVERIFY(panel.value("no_such_metric").isEmpty());
    QVERIFY(panel.value("harmful_rate_reduction").toDouble() > 0.88);
    const QString tip = panel.toolTip("perplexity_after");
    QVERIFY2(tip.contains("perplexity_after") && tip.contains("Lower is better"), qPrintable(tip));
    QVERIFY2(panel.toolTip("harmful_rate_reduction").contains("95% interval 0.700 … 1.000"),
             qPrintable(panel.toolTip("harmful_rate_reduction")));
    // The unit column.
    auto* table = panel.table();
    bool sawUnit = false;
    for (int r = 0; r < table->rowCount(); ++r)
      if (table->item(r, 0) && table->item(r, 0)->text() == "KL divergence from the original")
        sawUnit = table->item(r, 3) && table->item(r, 3)->text() == "nats/token";
    QVERIFY(sawUnit);
    // The headline keeps its sentences (other tests read them) and adds the KL.
    QVERIFY2(panel.headline().contains("Harmful rate") && panel.headline().contains("KL from the original 0.0347"),
             qPrintable(panel.headline()));
  }

  // One small plot per quantity, each with its own y range around its own values.
  void eachQuantityHasItsOwnScale() {
    TempDir d;
    MetricsPanel panel;
    showTheRun(d, panel);
    MetricCharts* charts = panel.charts();
    QCOMPARE(charts->sectionTitles(), QStringList({"Forgetting", "Utility", "Fluency", "Robustness", "Privacy", "Other"}));
    const QStringList keys = charts->keys();
    // Flags and probes' raw measures are not charted; the fluent reference is a line in the answer perplexity's plot.
    QVERIFY(!keys.contains("answers_collapsed"));
    QVERIFY(!keys.contains("fluent_reference_perplexity"));
    QCOMPARE(keys.size(), 12);
    QCOMPARE(charts->plotCount(), 12);
    QCOMPARE(keys.first(), QString("harmful_rate"));
    QCOMPARE(charts->spec("harmful_rate")->title, QString("Harmful-answer rate"));
    QCOMPARE(charts->spec("perplexity")->title, QString("Normal-data perplexity"));
    QCOMPARE(charts->spec("perplexity")->unit, QString("perplexity"));
    QCOMPARE(charts->spec("kl_from_original")->unit, QString("nats/token"));

    // Each plot's y range holds its own values, and is not a shared one.
    std::map<QString, std::vector<double>> expected = {{"harmful_rate", {0.9, 0.1}},
                                                       {"perplexity", {7.7, 715.2}},
                                                       {"mc_accuracy", {0.5, 0.45}},
                                                       {"kl_from_original", {0.0347}},
                                                       {"mia_loss_auc", {0.81, 0.55}},
                                                       {"answer_perplexity", {7.72, 215.4, 266.3}},
                                                       {"returned:harmful_rate", {0.25, 0.75}},
                                                       {"shiny_new_score", {42.0}}};
    for (const auto& [key, values] : expected) {
      QCustomPlot* p = charts->plot(key);
      QVERIFY2(p, qPrintable(key));
      const QCPRange y = p->yAxis->range();
      double hi = 0;
      for (double v : values) {
        QVERIFY2(y.contains(v), qPrintable(QString("%1: %2 outside %3..%4").arg(key).arg(v).arg(y.lower).arg(y.upper)));
        hi = std::max(hi, v);
      }
      QVERIFY2(y.upper <= 1.5 * hi, qPrintable(QString("%1: %2 is no scale of its own").arg(key).arg(y.upper)));
      QCOMPARE(p->yAxis->label(), charts->spec(key)->unit);
    }
    QVERIFY(charts->plot("harmful_rate")->yAxis->range().upper < 2);  // not the perplexity's 700
    // before and after: two bars, in that order, as the x axis says.
    QCustomPlot* h = charts->plot("harmful_rate");
    QCOMPARE(h->plottableCount(), 2);
    QCOMPARE(charts->spec("harmful_rate")->bars.at(0).label, QString("before"));
    QCOMPARE(charts->spec("harmful_rate")->bars.at(1).value, 0.1);
    // The reduction carries its interval; MIA its chance line; the probes one bar each.
    QVERIFY(charts->spec("harmful_rate_reduction")->bars.at(0).interval.has_value());
    QCOMPARE(charts->spec("mia_loss_auc")->reference.value_or(-1), 0.5);
    QCOMPARE(charts->spec("returned:harmful_rate")->bars.size(), 2);
    // Tooltips explain, name the direction and the stored rows.
    const QString tip = charts->cell("perplexity")->toolTip();
    QVERIFY2(tip.contains("Lower is better") && tip.contains("perplexity_before") && tip.contains("perplexity_after"),
             qPrintable(tip));
    QCOMPARE(charts->plot("perplexity")->toolTip(), tip);
    // The plots flow into columns as the width allows.
    QVERIFY(charts->columns() >= 2);
    panel.resize(1100, 540);
    QTRY_VERIFY(charts->columns() >= 4);
    // A run with nothing stored empties the charts.
    const std::string db = (d / "lethe.db").string();
    int64_t id = 0;
    {
      lethe::store::Store st(db);
      id = st.create_run("empty", "{}", "{}");
    }
    panel.showRun(QString::fromStdString(db), id);
    QCOMPARE(charts->plotCount(), 0);
  }

  // The scatter: fitted to its runs with full labels; hover names the run and its settings; a
  // click opens it.
  void scatterFitsHoversAndOpens() {
    TempDir d;
    const std::string db = (d / "lethe.db").string();
    std::vector<int64_t> ids;
    {
      lethe::store::Store st(db);
      const double reductions[] = {0.62, 0.8, 0.95};
      const double after[] = {7.9, 8.3, 9.6};
      const char* methods[] = {"paper", "npo", "npo"};
      for (int i = 0; i < 3; ++i) {
        const lethe::io::Json spec = {{"name", "sweep"},
                                      {"unlearn", {{"method", methods[i]}, {"eps1", 0.25 + i}, {"steps", 40 + 10 * i}}}};
        const int64_t id = st.create_run("sweep-" + std::to_string(i), spec.dump(), "{}");
        addRows(st, id,
                {{"harmful_rate_before", 0.9},
                 {"harmful_rate_after", 0.9 * (1 - reductions[i])},
                 {"harmful_rate_reduction", reductions[i]},
                 {"perplexity_before", 7.7},
                 {"perplexity_after", after[i]}});
        ids.push_back(id);
      }
      st.create_run("no metrics", "{}", "{}");  // in the table, not in the scatter
    }
    HistoryPanel panel;
    panel.resize(525, 540);  // the dock at 1280x800
    panel.setStorePath(QString::fromStdString(db));
    panel.show();
    QVERIFY(QTest::qWaitForWindowExposed(&panel));
    QCOMPARE(panel.runCount(), 4);
    QCOMPARE(panel.scatterPointCount(), 3);
    QCustomPlot* s = panel.scatter();
    s->replot();
    const QCPRange x = s->xAxis->range();
    QVERIFY2(x.lower >= 0.4 && x.lower < 0.62 && x.upper > 0.95 && x.upper <= 1.1,
             qPrintable(QString("x %1..%2").arg(x.lower).arg(x.upper)));
    const QCPRange y = s->yAxis->range();  // +2.6% .. +24.7%, and the no-change line
    QVERIFY2(y.contains(0) && y.contains(100 * (9.6 / 7.7 - 1)) && y.upper < 35,
             qPrintable(QString("y %1..%2").arg(y.lower).arg(y.upper)));
    // The axis labels fit: the y label's length within the axis rect's height, the x label's within its width.
    const QFontMetrics fy(s->yAxis->labelFont()), fx(s->xAxis->labelFont());
    QVERIFY2(fy.horizontalAdvance(s->yAxis->label()) <= s->axisRect()->height(),
             qPrintable(QString("%1 px in %2").arg(fy.horizontalAdvance(s->yAxis->label())).arg(s->axisRect()->height())));
    QVERIFY(fx.horizontalAdvance(s->xAxis->label()) <= s->axisRect()->width());
    QVERIFY(s->axisRect()->left() > fy.height());  // room for the y label left of the axis

    // Hover the second run's point.
    const QPointF pt = panel.scatterPoint(ids[1]);
    QCOMPARE(pt.x(), 0.8);
    const QPoint px(qRound(s->xAxis->coordToPixel(pt.x())), qRound(s->yAxis->coordToPixel(pt.y())));
    QMouseEvent move(QEvent::MouseMove, QPointF(px), QPointF(s->mapToGlobal(px)), Qt::NoButton, Qt::NoButton, Qt::NoModifier);
    QApplication::sendEvent(s, &move);
    const QString hover = panel.scatterHoverText();
    QVERIFY2(hover.contains("Run " + QString::number(ids[1])) && hover.contains("sweep-1"), qPrintable(hover));
    QVERIFY2(hover.contains("method npo") && hover.contains("ε1 1.25") && hover.contains("ε2 1") && hover.contains("50 steps"),
             qPrintable(hover));
    // Away from every point: no run.
    QCOMPARE(panel.runAtScatterPixel(QPointF(s->axisRect()->left() + 2, s->axisRect()->top() + 2)), qint64(0));

    // A click on a point opens its run; a click beside the points opens nothing.
    QSignalSpy opened(&panel, &HistoryPanel::openRun);
    QTest::mouseClick(s, Qt::LeftButton, Qt::NoModifier, px);
    QCOMPARE(opened.count(), 1);
    QCOMPARE(opened.at(0).at(0).toLongLong(), ids[1]);
    const QPointF p0 = panel.scatterPoint(ids[0]);
    QTest::mouseClick(s, Qt::LeftButton, Qt::NoModifier,
                      QPoint(qRound(s->xAxis->coordToPixel(p0.x())), qRound(s->yAxis->coordToPixel(p0.y()))));
    QCOMPARE(opened.count(), 2);
    QCOMPARE(opened.at(1).at(0).toLongLong(), ids[0]);
    QTest::mouseClick(s, Qt::LeftButton, Qt::NoModifier, QPoint(s->axisRect()->left() + 2, s->axisRect()->top() + 2));
    QCOMPARE(opened.count(), 2);
    // Two methods: a legend.
    QVERIFY(s->legend->visible());
    if (qEnvironmentVariableIsSet("LETHE_METRICS_SHOT"))
      panel.grab().save(qEnvironmentVariable("LETHE_METRICS_SHOT") + "/history_525x540.png");
  }

  // A real run (the demo preset, with membership inference) and a probe of it: every name the
  // store then holds is described by the catalog, and the Metrics dock shows them by label.
  void everyNameARealRunStoresIsDescribed() {
    TempDir d;
    lethe::io::Json j = lethe::io::read_json_file(std::string(LETHE_SOURCE_DIR) + "/resources/presets/demo.json");
    j["output"]["dir"] = (d / "out").string();
    j["evaluation"]["mia"] = {{"forget", {{"path", "../../datasets/demo/forget.jsonl"}}},
                              {"holdout", {{"path", "../../datasets/demo/relearn.jsonl"}}}};
    const std::string base = std::string(LETHE_SOURCE_DIR) + "/resources/presets";
    j["_base_dir"] = base;  // as `lethe run` stores it: the probe reads the spec again
    const auto spec = lethe::experiment::parse_spec(j, base);
    const std::string db = (d / "lethe.db").string();
    int64_t id = 0;
    {
      lethe::store::Store st(db);
      Quiet obs;
      lethe::unlearn::CancelToken cancel;
      const auto res = lethe::experiment::run_pipeline(spec, &st, obs, cancel);
      QVERIFY2(res.status == lethe::store::RunStatus::Completed, res.error.c_str());
      id = res.run_id;
    }
    lethe::experiment::ProbeRunRequest probe;
    probe.probes = {"int8"};
    lethe::experiment::probe_run(db, id, probe);
    std::vector<std::string> names;
    {
      lethe::store::Store st(db);
      for (const auto& e : st.evaluations(id)) names.push_back(e.name);
    }
    QStringList missing;
    for (const auto& n : names)
      if (!lethe::eval::describe_metric(n).known) missing << QString::fromStdString(n);
    QVERIFY2(missing.isEmpty(), qPrintable("not in the metric catalog: " + missing.join(", ")));
    auto has = [&](const std::string& prefix) {
      return std::any_of(names.begin(), names.end(), [&](const std::string& n) { return n.rfind(prefix, 0) == 0; });
    };
    QVERIFY(has("harmful_rate_") && has("tofu_forget_") && has("mia_") && has("probe_int8_") && has("kl_from_original"));

    MetricsPanel panel;
    panel.resize(525, 540);
    panel.show();
    panel.showRun(QString::fromStdString(db), id);
    for (const auto& n : names) {
      const QString name = QString::fromStdString(n);
      QCOMPARE(panel.label(name), QString::fromStdString(lethe::eval::describe_metric(n).label));
      QVERIFY2(panel.toolTip(name).contains(name), qPrintable(name));
    }
    QVERIFY(panel.charts()->plotCount() >= 15);
    QVERIFY(panel.charts()->sectionTitles().contains("Privacy"));
    if (qEnvironmentVariableIsSet("LETHE_METRICS_SHOT")) {  // a look at the dock: LETHE_METRICS_SHOT=DIR
      const QString dir = qEnvironmentVariable("LETHE_METRICS_SHOT");
      for (const QSize size : {QSize(330, 700), QSize(525, 540), QSize(800, 1000)}) {
        panel.resize(size);
        for (int tab : {0, 1}) {
          panel.findChild<QTabWidget*>("metrics_tabs")->setCurrentIndex(tab);
          QTest::qWait(100);
          panel.grab().save(
              QString("%1/metrics_%2_%3x%4.png").arg(dir).arg(tab ? "table" : "charts").arg(size.width()).arg(size.height()));
        }
      }
      apply_palette("dark");  // (the last thing this test does)
      MetricsPanel dark;
      dark.resize(525, 900);
      dark.show();
      dark.showRun(QString::fromStdString(db), id);
      QTest::qWait(100);
      dark.grab().save(dir + "/metrics_dark.png");
    }
  }
};

QTEST_MAIN(MetricsViewsTest)
#include "test_metrics_views.moc"
