#include "metrics_panel.h"

#include <QHeaderView>
#include <QLabel>
#include <QResizeEvent>
#include <QScrollArea>
#include <QTabWidget>
#include <QTableWidget>
#include <QVBoxLayout>
#include <algorithm>
#include <map>

#include "eval/metric_catalog.h"
#include "io/json.h"
#include "metric_charts.h"
#include "store/store.h"

namespace lethe::ui {

MetricsPanel::MetricsPanel(QWidget* parent) : QWidget(parent) {
  auto* root = new QVBoxLayout(this);
  headline_ = new QLabel(tr("No run shown yet."));
  headline_->setObjectName("metrics_headline");
  headline_->setWordWrap(true);
  headline_->setTextFormat(Qt::RichText);
  headline_->setAlignment(Qt::AlignLeft | Qt::AlignTop);
  // In a narrow dock the headline scrolls rather than pushing the charts out of view.
  headlineScroll_ = new QScrollArea(this);
  headlineScroll_->setObjectName("metrics_headline_scroll");
  headlineScroll_->setWidget(headline_);
  headlineScroll_->setWidgetResizable(true);
  headlineScroll_->setFrameShape(QFrame::NoFrame);
  headlineScroll_->setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
  root->addWidget(headlineScroll_);
  tabs_ = new QTabWidget(this);
  tabs_->setObjectName("metrics_tabs");
  tabs_->setDocumentMode(true);
  charts_ = new MetricCharts(this);
  charts_->setObjectName("metrics_charts");
  tabs_->addTab(charts_, tr("Charts"));
  tabs_->setTabToolTip(0, tr("One small plot per quantity, each on its own scale: before (orange) and after (blue)."));
  table_ = new QTableWidget(0, 4, this);
  table_->setObjectName("metrics_table");
  table_->setHorizontalHeaderLabels({tr("Metric"), tr("Before"), tr("After"), tr("Unit")});
  table_->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
  table_->horizontalHeader()->setSectionResizeMode(0, QHeaderView::Stretch);
  table_->verticalHeader()->hide();
  table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  table_->setSelectionBehavior(QAbstractItemView::SelectRows);
  table_->setWordWrap(true);  // long names wrap in a narrow dock
  tabs_->addTab(table_, tr("Table"));
  tabs_->setTabToolTip(1, tr("Every stored number; hover a row for what it measures and its name in the store."));
  root->addWidget(tabs_, 1);
}

namespace {

int groupIndex(eval::MetricGroup g) {
  const auto& groups = eval::metric_groups();
  return static_cast<int>(std::find(groups.begin(), groups.end(), g) - groups.begin());
}

}  // namespace

void MetricsPanel::showRun(const QString& storePath, qint64 runId) {
  std::map<std::string, std::pair<double, std::string>> m;
  std::vector<store::EvaluationRow> evaluations;
  try {
    store::Store st(storePath.toStdString());
    evaluations = st.evaluations(runId);
    for (const auto& e : evaluations) m[e.name] = {e.value, e.json};
  } catch (const std::exception& e) {
    headline_->setText(QString::fromStdString(e.what()).toHtmlEscaped());
    fitHeadline();
    fillTable({});
    charts_->clear();
    return;
  }
  fillTable(evaluations);
  charts_->setEvaluations(evaluations);
  QString h;
  if (m.count("harmful_rate_before") && m.count("harmful_rate_after")) {
    h = tr("<b>Harmful rate</b> %1 → %2")
            .arg(m["harmful_rate_before"].first, 0, 'f', 3)
            .arg(m["harmful_rate_after"].first, 0, 'f', 3);
    if (m.count("harmful_rate_reduction")) {
      h += tr(" (reduced by %1%").arg(100 * m["harmful_rate_reduction"].first, 0, 'f', 1);
      try {
        const io::Json j = io::Json::parse(m["harmful_rate_reduction"].second);
        if (j.is_object() && j.contains("ci95") && j["ci95"].size() == 2)
          h += tr(", 95% CI %1% … %2%")
                   .arg(100 * j["ci95"][0].get<double>(), 0, 'f', 1)
                   .arg(100 * j["ci95"][1].get<double>(), 0, 'f', 1);
      } catch (const std::exception&) {
      }
      h += ")";
    }
    if (m.count("classifier_validation_accuracy"))
      h += tr("; the classifier's own validation accuracy is %1").arg(m["classifier_validation_accuracy"].first, 0, 'f', 3);
  }
  if (m.count("non_word_rate_before") && m.count("non_word_rate_after")) {
    QString f = tr("<b>Answers</b> non-words %1% → %2%, rep-2 %3 → %4")
                    .arg(100 * m["non_word_rate_before"].first, 0, 'f', 1)
                    .arg(100 * m["non_word_rate_after"].first, 0, 'f', 1)
                    .arg(m["repetition_before"].first, 0, 'f', 3)
                    .arg(m["repetition_after"].first, 0, 'f', 3);
    if (m.count("answer_perplexity_before") && m.count("answer_perplexity_after"))
      f += tr(", perplexity under the original %1 → %2")
               .arg(m["answer_perplexity_before"].first, 0, 'f', 2)
               .arg(m["answer_perplexity_after"].first, 0, 'f', 2);
    if (m.count("fluent_reference_perplexity_after"))
      f += tr(" (its normal answers: %1)").arg(m["fluent_reference_perplexity_after"].first, 0, 'f', 2);
    h += (h.isEmpty() ? "" : "<br>") + f;
    if (m.count("answers_collapsed_after") && m["answers_collapsed_after"].first > 0.5) {
      QStringList reasons;
      try {
        const io::Json details = io::Json::parse(m["answers_collapsed_after"].second);  // kept alive for the loop
        if (details.is_object() && details.contains("reasons") && details["reasons"].is_array())
          for (const auto& r : details["reasons"])
            if (r.is_string()) reasons << QString::fromStdString(r.get<std::string>()).toHtmlEscaped();
      } catch (const std::exception&) {
      }
      if (reasons.isEmpty()) reasons << tr("no reason stored");
      h += "<br><span style='color:#c0392b'><b>" + tr("The answers collapsed") + "</b>: " + reasons.join("; ") + ". " +
           tr("A low harmful rate says nothing about such answers.") + "</span>";
    }
  }
  if (m.count("bleu_before") && m.count("bleu_after"))
    h += (h.isEmpty() ? "" : "<br>") +
         tr("<b>Continuation BLEU</b> %1 → %2").arg(m["bleu_before"].first, 0, 'f', 2).arg(m["bleu_after"].first, 0, 'f', 2);
  // TOFU's forget set and membership inference, when the spec measured them.
  auto pair = [&](const std::string& k, int decimals) {
    return tr("%1 → %2").arg(m[k + "_before"].first, 0, 'f', decimals).arg(m[k + "_after"].first, 0, 'f', decimals);
  };
  auto both = [&](const std::string& k) { return m.count(k + "_before") && m.count(k + "_after"); };
  if (both("tofu_forget_probability")) {
    QString t = tr("<b>TOFU forget set</b> answer probability %1").arg(pair("tofu_forget_probability", 4));
    if (both("tofu_forget_rouge_l_recall")) t += tr(", ROUGE-L recall %1").arg(pair("tofu_forget_rouge_l_recall", 3));
    if (both("tofu_forget_truth_ratio")) t += tr(", truth ratio %1").arg(pair("tofu_forget_truth_ratio", 3));
    h += (h.isEmpty() ? "" : "<br>") + t;
  }
  if (both("mia_loss_auc"))
    h += (h.isEmpty() ? "" : "<br>") +
         tr("<b>Membership inference</b> LOSS attack AUC %1 (0.5: cannot tell forget from holdout)").arg(pair("mia_loss_auc", 3));
  // Robustness probes (History → Probe robustness…): what returned.
  QStringList probes;
  for (const auto& [name, v] : m) {
    const std::string tail = "_harmful_rate_returned";
    if (name.rfind("probe_", 0) == 0 && name.size() > tail.size() + 6 &&
        name.compare(name.size() - tail.size(), tail.size(), tail) == 0)
      probes << tr("%1 %2%")
                    .arg(QString::fromStdString(name.substr(6, name.size() - tail.size() - 6)))
                    .arg(100 * v.first, 0, 'f', 1);
  }
  if (!probes.isEmpty())
    h += (h.isEmpty() ? "" : "<br>") + tr("<b>Robustness</b> harmful rate returned: %1").arg(probes.join(", "));
  if (m.count("perplexity_before") && m.count("perplexity_after")) {
    h += (h.isEmpty() ? "" : "<br>") + tr("<b>Normal-data perplexity</b> %1 → %2")
                                           .arg(m["perplexity_before"].first, 0, 'f', 2)
                                           .arg(m["perplexity_after"].first, 0, 'f', 2);
    if (m.count("kl_from_original")) h += tr("; KL from the original %1 nats/token").arg(m["kl_from_original"].first, 0, 'f', 4);
  }
  headline_->setText(h.isEmpty() ? tr("Run %1 has no before/after metrics yet.").arg(runId) : h);
  fitHeadline();
}

void MetricsPanel::fillTable(const std::vector<store::EvaluationRow>& evaluations) {
  // One row per quantity (before and after side by side) or per one-off number, grouped.
  struct Row {
    eval::MetricInfo info;
    int order = 0;
    std::string sortName;
    const store::EvaluationRow* cell[3] = {nullptr, nullptr, nullptr};  // before, after, one-off
  };
  std::map<std::string, Row> rows;
  for (const auto& e : evaluations) {
    const eval::MetricInfo info = eval::describe_metric(e.name);
    const std::string key = info.side == eval::MetricSide::None ? e.name : info.quantity;
    Row& r = rows[key];
    if (!r.cell[0] && !r.cell[1] && !r.cell[2]) {
      r.info = info;
      r.order = groupIndex(info.group) * 10000 + info.order;
      r.sortName = info.probe.empty() ? key : info.measure + " " + info.probe + (info.returned ? " returned" : "");
    }
    r.cell[info.side == eval::MetricSide::Before ? 0 : info.side == eval::MetricSide::After ? 1 : 2] = &e;
  }
  std::vector<const Row*> order;
  for (const auto& [key, r] : rows) order.push_back(&r);
  std::stable_sort(order.begin(), order.end(), [](const Row* a, const Row* b) {
    return a->order != b->order ? a->order < b->order : a->sortName < b->sortName;
  });

  cells_.clear();
  labels_.clear();
  table_->clearSpans();
  table_->setRowCount(0);
  QFont bold = table_->font();
  bold.setBold(true);
  int last = -1;
  for (const Row* r : order) {
    const int row = table_->rowCount();
    if (static_cast<int>(r->info.group) != last) {
      last = static_cast<int>(r->info.group);
      table_->insertRow(row);
      auto* heading = new QTableWidgetItem(tr(eval::metric_group_title(r->info.group)));
      heading->setFont(bold);
      heading->setFlags(Qt::ItemIsEnabled);
      heading->setToolTip(tr(eval::metric_group_explanation(r->info.group)));
      heading->setBackground(palette().color(QPalette::AlternateBase));
      table_->setItem(row, 0, heading);
      table_->setSpan(row, 0, 1, 4);
    }
    const int at = table_->rowCount();
    table_->insertRow(at);
    QStringList stored;
    for (const auto* e : r->cell)
      if (e) stored << QString::fromStdString(e->name);
    const QString tip = metricToolTip(r->info, stored);
    auto* label = new QTableWidgetItem(QString::fromStdString(r->info.label));
    label->setToolTip(tip);
    table_->setItem(at, 0, label);
    for (int c = 0; c < 3; ++c) {
      const store::EvaluationRow* e = r->cell[c];
      if (!e) continue;
      const eval::MetricInfo info = eval::describe_metric(e->name);
      auto* v = new QTableWidgetItem(formatMetricValue(e->value, info));
      v->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
      QString vt = metricToolTip(info, {QString::fromStdString(e->name)});
      if (e->name == "harmful_rate_reduction") {
        try {
          const io::Json j = io::Json::parse(e->json);
          if (j.is_object() && j.contains("ci95") && j["ci95"].size() == 2)
            vt += "<br>" + tr("95% interval %1 … %2 (paired bootstrap over prompts)")
                               .arg(j["ci95"][0].get<double>(), 0, 'f', 3)
                               .arg(j["ci95"][1].get<double>(), 0, 'f', 3);
        } catch (const std::exception&) {
        }
      }
      v->setToolTip(vt);
      const int col = c == 2 ? 1 : c + 1;
      table_->setItem(at, col, v);
      if (c == 2) {  // one number: across both columns
        v->setTextAlignment(Qt::AlignCenter);
        table_->setSpan(at, 1, 1, 2);
      }
      cells_[QString::fromStdString(e->name)] = v;
      labels_[QString::fromStdString(e->name)] = label;
    }
    auto* unit = new QTableWidgetItem(QString::fromStdString(r->info.unit));
    unit->setToolTip(tip);
    table_->setItem(at, 3, unit);
  }
  table_->resizeRowsToContents();
}

QString MetricsPanel::value(const QString& name) const {
  const auto* item = cells_.value(name, nullptr);
  return item ? item->text() : QString();
}

QString MetricsPanel::label(const QString& name) const {
  const auto* item = labels_.value(name, nullptr);
  return item ? item->text() : QString();
}

QString MetricsPanel::toolTip(const QString& name) const {
  const auto* item = cells_.value(name, nullptr);
  return item ? item->toolTip() : QString();
}

QStringList MetricsPanel::rowLabels() const {
  QStringList out;
  for (int r = 0; r < table_->rowCount(); ++r)
    if (table_->item(r, 0)) out << table_->item(r, 0)->text();
  return out;
}

QString MetricsPanel::headline() const { return headline_->text(); }

void MetricsPanel::fitHeadline() {
  // Its whole text when it fits in a third of the panel, else a third and a scroll bar.
  const QMargins m = layout()->contentsMargins();
  const int width = std::max(100, contentsRect().width() - m.left() - m.right());
  const int needed = headline_->heightForWidth(width) + 2;
  headlineScroll_->setFixedHeight(std::max(40, std::min(needed, height() / 3)));
}

void MetricsPanel::resizeEvent(QResizeEvent* e) {
  QWidget::resizeEvent(e);
  fitHeadline();
  // A narrow dock gives the metric's name the room; the unit stays in the tooltip and the charts.
  table_->setColumnHidden(3, width() < 420);
  table_->resizeRowsToContents();
}

}  // namespace lethe::ui
