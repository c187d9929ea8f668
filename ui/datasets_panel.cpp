#include "datasets_panel.h"

#include <QCheckBox>
#include <QFileDialog>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QSignalBlocker>
#include <QStackedWidget>
#include <QTableWidget>
#include <QToolButton>
#include <QVBoxLayout>

#include <QTextBrowser>

#include "data/datasets.h"
#include "text/load_tokenizer.h"
#include "unlearn/losses.h"
#include "spec_model.h"

namespace lethe::ui {

DatasetsPanel::DatasetsPanel(SpecModel* spec, QWidget* parent) : QWidget(parent), spec_(spec) {
  auto* root = new QVBoxLayout(this);
  auto* form = new QFormLayout;
  pathRow(form, tr("Forget set"), "datasets.forget.path", false,
          tr("PKU-SafeRLHF or QA JSONL (*.jsonl);;Text corpus (*.txt);;All (*)"));
  pathRow(form, tr("Normal data"), "datasets.normal.path", false,
          tr("TruthfulQA CSV (*.csv);;QA JSONL (*.jsonl);;Text corpus (*.txt);;All (*)"));
  pathRow(form, tr("Random answers"), "datasets.random_answers.path", false, tr("All (*)"));
  pathRow(form, tr("\"I don't know\" answers"), "datasets.idk.path", false,
          tr("Text, one per line (*.txt);;JSONL (*.jsonl);;All (*)"));
  pathRow(form, tr("Protected text"), "datasets.protected.path", false, tr("Text (*.txt);;All (*)"));
  pathRow(form, tr("Classifier"), "evaluation.classifier", true, {});
  pathRow(form, tr("Evaluation prompts"), "evaluation.prompts.path", false, tr("All (*)"));
  root->addLayout(form);
  summary_ = new QLabel(this);
  summary_->setObjectName("datasets_summary");
  summary_->setWordWrap(true);
  root->addWidget(summary_);

  stack_ = new QStackedWidget(this);
  auto* warn = new QWidget(stack_);
  auto* wl = new QVBoxLayout(warn);
  auto* wtext = new QLabel(tr("<b>Content warning.</b> The forget set holds harmful answers (rude, dishonest or unethical) "
                              "collected for unlearning research. They are shown only on request."),
                           warn);
  wtext->setWordWrap(true);
  wtext->setObjectName("content_warning");
  auto* show = new QPushButton(tr("Show the samples"), warn);
  show->setObjectName("show_samples");
  connect(show, &QPushButton::clicked, this, &DatasetsPanel::acceptWarning);
  wl->addWidget(wtext);
  wl->addWidget(show, 0, Qt::AlignLeft);
  wl->addStretch(1);
  auto* table = new QWidget(stack_);
  auto* tl = new QVBoxLayout(table);
  tl->setContentsMargins(0, 0, 0, 0);
  redact_ = new QCheckBox(tr("Redact answers (for teaching)"), table);
  redact_->setObjectName("redact");
  connect(redact_, &QCheckBox::toggled, this, [this](bool on) {
    setRedacted(on);
    Q_EMIT redactedChanged(on);
  });
  preview_ = new QTableWidget(0, 3, table);
  preview_->setObjectName("forget_preview");
  preview_->setHorizontalHeaderLabels({tr("Line"), tr("Prompt"), tr("Answer (forget target)")});
  preview_->horizontalHeader()->setSectionResizeMode(0, QHeaderView::ResizeToContents);
  preview_->horizontalHeader()->setSectionResizeMode(1, QHeaderView::Stretch);
  preview_->horizontalHeader()->setSectionResizeMode(2, QHeaderView::Stretch);
  preview_->verticalHeader()->hide();
  preview_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  preview_->setWordWrap(true);
  tl->addWidget(redact_);
  tl->addWidget(preview_, 2);
  tokens_ = new QTextBrowser(table);
  tokens_->setObjectName("token_view");
  tokens_->setHtml(tr("Select a sample to see which of its tokens each loss term trains on."));
  tl->addWidget(tokens_, 1);
  connect(preview_, &QTableWidget::currentCellChanged, this, [this](int row, int, int, int) {
    if (row >= 0) showTokens(row);
  });
  stack_->addWidget(warn);
  stack_->addWidget(table);
  root->addWidget(stack_, 1);
  connect(spec_, &SpecModel::changed, this, [this] {
    if (!syncing_) syncFromSpec();
  });
  syncFromSpec();
}

QLineEdit* DatasetsPanel::pathRow(QFormLayout* form, const QString& label, const std::string& key, bool folder,
                                  const QString& filter) {
  auto* row = new QHBoxLayout;
  auto* edit = new QLineEdit(this);
  edit->setObjectName(QString::fromStdString(key));
  edit->setPlaceholderText(tr("not set"));
  auto* browse = new QToolButton(this);
  browse->setText("…");
  row->addWidget(edit, 1);
  row->addWidget(browse);
  form->addRow(label, row);
  auto commit = [this, key, edit] {
    syncing_ = true;
    const std::string v = edit->text().trimmed().toStdString();
    // Optional sources disappear from the spec when cleared.
    const size_t dot = key.rfind(".path");
    if (v.empty() && key != "datasets.forget.path" && key != "datasets.normal.path") {
      io::Json doc = spec_->doc();
      const std::string parent = dot != std::string::npos ? key.substr(0, dot) : key;
      const size_t p = parent.rfind('.');
      io::Json* cur = &doc;
      std::string rest = parent.substr(0, p);
      size_t start = 0;
      bool ok = true;
      while (ok && start < rest.size()) {
        const size_t d = rest.find('.', start);
        const std::string k = rest.substr(start, d == std::string::npos ? std::string::npos : d - start);
        ok = cur->contains(k);
        if (ok) cur = &(*cur)[k];
        start = d == std::string::npos ? rest.size() : d + 1;
      }
      if (ok) cur->erase(parent.substr(p + 1));
      spec_->replace(doc, spec_->baseDir());
    } else {
      spec_->set(key, v);
    }
    syncing_ = false;
    if (key == "datasets.forget.path") refreshPreview();
  };
  connect(edit, &QLineEdit::editingFinished, this, commit);
  connect(browse, &QToolButton::clicked, this, [this, edit, folder, filter, commit, label] {
    const QString f = folder ? QFileDialog::getExistingDirectory(this, label)
                             : QFileDialog::getOpenFileName(this, label, {}, filter);
    if (!f.isEmpty()) {
      edit->setText(f);
      commit();
    }
  });
  rows_.push_back({edit, key});
  return edit;
}

void DatasetsPanel::syncFromSpec() {
  for (auto& r : rows_) {
    const io::Json v = spec_->get(r.key, "");
    r.edit->setText(v.is_string() ? QString::fromStdString(v.get<std::string>()) : QString());
  }
  refreshPreview();
}

void DatasetsPanel::refreshPreview() {
  samples_.clear();
  const io::Json p = spec_->get("datasets.forget.path", "");
  QString summary;
  if (p.is_string() && !p.get<std::string>().empty()) {
    const std::filesystem::path path = spec_->resolvedPath("datasets.forget.path").toStdString();
    try {
      std::vector<data::QaPair> pairs;
      if (path.extension() == ".jsonl") {
        auto pku = data::read_pku_jsonl(path);
        pairs = pku.unsafe;
        summary = tr("%1 forget samples (unsafe responses), %2 safe responses").arg(pku.unsafe.size()).arg(pku.safe.size());
      }
      double words = 0;
      for (const auto& q : pairs) {
        samples_.emplace_back(q.prompt, q.response);
        words += std::count(q.response.begin(), q.response.end(), ' ') + 1;
      }
      if (!pairs.empty()) summary += tr("; answers average %1 words").arg(words / pairs.size(), 0, 'f', 1);
      if (pairs.empty() && summary.isEmpty()) summary = tr("Preview shows PKU-SafeRLHF JSONL files.");
    } catch (const std::exception& e) {
      summary = tr("Could not read the forget set: %1").arg(QString::fromStdString(e.what()));
    }
  } else {
    summary =
        tr("Choose the forget and normal data. Real datasets (PKU-SafeRLHF, TruthfulQA) are opened from wherever you keep them.");
  }
  summary_->setText(summary);
  preview_->setRowCount(static_cast<int>(std::min<size_t>(samples_.size(), 200)));
  setRedacted(redact_->isChecked());
}

void DatasetsPanel::setRedacted(bool on) {
  if (redact_->isChecked() != on) {
    {
      const QSignalBlocker block(redact_);
      redact_->setChecked(on);
    }
    Q_EMIT redactedChanged(on);
  }
  for (int r = 0; r < preview_->rowCount(); ++r) {
    const auto& s = samples_[static_cast<size_t>(r)];
    preview_->setItem(r, 0, new QTableWidgetItem(QString::number(r + 1)));
    preview_->setItem(r, 1, new QTableWidgetItem(QString::fromStdString(s.first)));
    QString answer = QString::fromStdString(s.second);
    if (on) answer = QString(std::min<int>(answer.size(), 40), QChar(0x2588));
    preview_->setItem(r, 2, new QTableWidgetItem(answer));
  }
}

QString DatasetsPanel::showTokens(int row) {
  if (row < 0 || row >= static_cast<int>(samples_.size())) return {};
  QString html;
  try {
    const std::filesystem::path dir = spec_->resolvedPath("model.path").toStdString();
    if (dir.empty()) throw std::runtime_error("open a model first: the token view needs its tokenizer");
    auto tok = text::load_tokenizer(dir);
    const auto& s = samples_[static_cast<size_t>(row)];
    const bool redact = redact_->isChecked();
    auto render = [&](const unlearn::Example& e, unlearn::Mode m, const QString& title, const QString& colour) {
      const auto targets = unlearn::loss_targets(e, m);
      QString line = "<p><b>" + title.toHtmlEscaped() + "</b><br>";
      for (size_t i = 0; i < e.ids.size(); ++i) {
        QString piece = QString::fromStdString(tok->decode({e.ids[i]}));
        if (redact && static_cast<int64_t>(i) >= e.start) piece = QString(std::max<int>(1, piece.size()), QChar(0x2588));
        piece = piece.toHtmlEscaped().replace(" ", "&nbsp;").replace("\n", "↵");
        line += targets[i] ? "<span style='background:" + colour + "'>" + piece + "</span>|"
                           : "<span style='color:gray'>" + piece + "</span>|";
      }
      return line + "</p>";
    };
    const io::Json pf = spec_->get("model.prompt_format", "paper");
    const std::string answer = "Nine minus four is five.";
    if (pf.is_string() && pf.get<std::string>() == "chat") {
      // The model's chat template: corrected mode only (faithful reproduces llm_unlearn's template).
      const auto format = data::PromptFormat::chat(dir, *tok);
      html += render(unlearn::make_qa_example(*tok, s.first, s.second, unlearn::Mode::Corrected, format),
                     unlearn::Mode::Corrected, tr("L_fgt, chat template: the assistant's answer and its end of turn"), "#f6c5a0");
      html += render(unlearn::make_random_example(*tok, s.first, answer, unlearn::Mode::Corrected, format),
                     unlearn::Mode::Corrected, tr("L_rdn, chat template: the random answer only"), "#b3d4f0");
      html += "<p style='color:gray'>" +
              tr("Highlighted tokens are loss targets; | separates tokens. Faithful mode needs the "
                 "paper's template.") +
              "</p>";
      tokens_->setHtml(html);
      return html;
    }
    const auto ff = unlearn::make_qa_example(*tok, s.first, s.second, unlearn::Mode::Faithful);
    const auto fc = unlearn::make_qa_example(*tok, s.first, s.second, unlearn::Mode::Corrected);
    html += render(ff, unlearn::Mode::Faithful, tr("L_fgt, faithful (llm_unlearn): the first answer token is never a target"),
                   "#f6c5a0");
    html += render(fc, unlearn::Mode::Corrected, tr("L_fgt, corrected: every answer token"), "#f6c5a0");
    const auto rf = unlearn::make_random_example(*tok, s.first, answer, unlearn::Mode::Faithful);
    const auto rc = unlearn::make_random_example(*tok, s.first, answer, unlearn::Mode::Corrected);
    html += render(rf, unlearn::Mode::Faithful, tr("L_rdn with a random answer, faithful: from token 3 on, the question too"),
                   "#b3d4f0");
    html += render(rc, unlearn::Mode::Corrected, tr("L_rdn, corrected: the answer only"), "#b3d4f0");
    html += "<p style='color:gray'>" + tr("Highlighted tokens are loss targets; | separates tokens.") + "</p>";
  } catch (const std::exception& e) {
    html = "<p>" + QString::fromStdString(e.what()).toHtmlEscaped() + "</p>";
  }
  tokens_->setHtml(html);
  return html;
}

void DatasetsPanel::acceptWarning() { stack_->setCurrentIndex(1); }
bool DatasetsPanel::previewVisible() const { return stack_->currentIndex() == 1; }
int DatasetsPanel::previewRows() const { return preview_->rowCount(); }
QString DatasetsPanel::previewCell(int row, int col) const {
  auto* it = preview_->item(row, col);
  return it ? it->text() : QString();
}
QString DatasetsPanel::summaryText() const { return summary_->text(); }

}  // namespace lethe::ui
