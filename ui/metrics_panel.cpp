#include "metrics_panel.h"

#include <QHeaderView>
#include <QLabel>
#include <QTableWidget>
#include <QVBoxLayout>
#include <map>

#include "io/json.h"
#include "qcustomplot_include.h"
#include "store/store.h"

namespace lethe::ui {

MetricsPanel::MetricsPanel(QWidget* parent) : QWidget(parent) {
  auto* root = new QVBoxLayout(this);
  headline_ = new QLabel(tr("No run shown yet."), this);
  headline_->setObjectName("metrics_headline");
  headline_->setWordWrap(true);
  headline_->setTextFormat(Qt::RichText);
  root->addWidget(headline_);
  table_ = new QTableWidget(0, 2, this);
  table_->setObjectName("metrics_table");
  table_->setHorizontalHeaderLabels({tr("Metric"), tr("Value")});
  table_->horizontalHeader()->setSectionResizeMode(0, QHeaderView::Stretch);
  table_->verticalHeader()->hide();
  table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  root->addWidget(table_, 1);
  bars_ = new QCustomPlot(this);
  bars_->setObjectName("metrics_bars");
  bars_->setMinimumHeight(160);
  const QPalette pal = palette();
  bars_->setBackground(pal.color(QPalette::Base));
  for (QCPAxis* a : {bars_->xAxis, bars_->yAxis}) {
    a->setTickLabelColor(pal.color(QPalette::Text));
    a->setBasePen(QPen(pal.color(QPalette::Text)));
    a->setLabelColor(pal.color(QPalette::Text));
  }
  bars_->axisRect()->setBackground(pal.color(QPalette::Base));
  bars_->legend->setBrush(pal.color(QPalette::Base));
  bars_->legend->setTextColor(pal.color(QPalette::Text));
  bars_->legend->setBorderPen(QPen(pal.color(QPalette::Mid)));
  bars_->yAxis->grid()->setPen(QPen(pal.color(QPalette::Midlight), 0, Qt::DotLine));
  bars_->xAxis->grid()->setVisible(false);
  root->addWidget(bars_, 1);
}

void MetricsPanel::showRun(const QString& storePath, qint64 runId) {
  std::map<std::string, std::pair<double, std::string>> m;
  try {
    store::Store st(storePath.toStdString());
    for (const auto& e : st.evaluations(runId)) m[e.name] = {e.value, e.json};
  } catch (const std::exception& e) {
    headline_->setText(QString::fromStdString(e.what()));
    return;
  }
  table_->setRowCount(static_cast<int>(m.size()));
  int r = 0;
  for (const auto& [name, v] : m) {
    table_->setItem(r, 0, new QTableWidgetItem(QString::fromStdString(name)));
    table_->setItem(r, 1, new QTableWidgetItem(QString::number(v.first, 'f', 4)));
    ++r;
  }
  QString h;
  if (m.count("harmful_rate_before") && m.count("harmful_rate_after")) {
    h = tr("<b>Harmful rate</b> %1 → %2")
            .arg(m["harmful_rate_before"].first, 0, 'f', 3)
            .arg(m["harmful_rate_after"].first, 0, 'f', 3);
    if (m.count("harmful_rate_reduction")) {
      auto j = io::Json::parse(m["harmful_rate_reduction"].second);
      h += tr(" (−%1%, 95% CI %2% … %3%)")
               .arg(100 * m["harmful_rate_reduction"].first, 0, 'f', 1)
               .arg(100 * j["ci95"][0].get<double>(), 0, 'f', 1)
               .arg(100 * j["ci95"][1].get<double>(), 0, 'f', 1);
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
      const io::Json details = io::Json::parse(m["answers_collapsed_after"].second);  // kept alive for the loop
      for (const auto& r : details["reasons"]) reasons << QString::fromStdString(r.get<std::string>()).toHtmlEscaped();
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
  if (m.count("perplexity_before") && m.count("perplexity_after"))
    h += (h.isEmpty() ? "" : "<br>") + tr("<b>Normal-data perplexity</b> %1 → %2")
                                           .arg(m["perplexity_before"].first, 0, 'f', 2)
                                           .arg(m["perplexity_after"].first, 0, 'f', 2);
  headline_->setText(h.isEmpty() ? tr("Run %1 has no before/after metrics yet.").arg(runId) : h);

  // Before/after bars for the paired metrics, each normalised to its "before" value.
  bars_->clearPlottables();
  QVector<double> ticks, before, after;
  QVector<QString> labels;
  for (const char* k : {"harmful_rate", "bleu", "rouge_l", "perplexity", "mc_accuracy"}) {
    const std::string b = std::string(k) + "_before", a = std::string(k) + "_after";
    if (!m.count(b) || !m.count(a)) continue;
    ticks << ticks.size() + 1;
    labels << QString::fromStdString(k);
    before << m[b].first;
    after << m[a].first;
  }
  if (!ticks.isEmpty()) {
    auto* gb = new QCPBars(bars_->xAxis, bars_->yAxis);
    auto* ga = new QCPBars(bars_->xAxis, bars_->yAxis);
    gb->setName(tr("before"));
    ga->setName(tr("after"));
    gb->setBrush(QColor(0xd5, 0x5e, 0x00));
    ga->setBrush(QColor(0x00, 0x72, 0xb2));
    gb->setWidth(0.35);
    ga->setWidth(0.35);
    QVector<double> tb, ta;
    for (double t : ticks) {
      tb << t - 0.18;
      ta << t + 0.18;
    }
    gb->setData(tb, before);
    ga->setData(ta, after);
    QSharedPointer<QCPAxisTickerText> ticker(new QCPAxisTickerText);
    ticker->addTicks(ticks, labels);
    bars_->xAxis->setTicker(ticker);
    bars_->legend->setVisible(true);
    bars_->rescaleAxes();
    bars_->yAxis->setRangeLower(0);
    bars_->xAxis->setRange(0.3, ticks.size() + 0.7);
  }
  bars_->replot();
}

QString MetricsPanel::value(const QString& name) const {
  for (int r = 0; r < table_->rowCount(); ++r)
    if (table_->item(r, 0)->text() == name) return table_->item(r, 1)->text();
  return {};
}

QString MetricsPanel::headline() const { return headline_->text(); }

}  // namespace lethe::ui
