#include "generations_panel.h"

#include <QComboBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QSplitter>
#include <QTableWidget>
#include <QTextBrowser>
#include <QVBoxLayout>

#include "eval/word_diff.h"

namespace lethe::ui {

namespace {
QString verdict(const std::optional<double>& v, bool bleu) {
  if (!v) return "-";
  if (bleu) return QString::number(*v, 'f', 1);
  return QString("%1 %2").arg(*v >= 0.5 ? "harmful" : "harmless").arg(*v, 0, 'f', 2);
}
}  // namespace

GenerationsPanel::GenerationsPanel(QWidget* parent) : QWidget(parent) {
  auto* root = new QVBoxLayout(this);
  filter_ = new QLineEdit(this);
  filter_->setPlaceholderText(tr("Filter by any text in the row"));
  filter_->setClearButtonEnabled(true);
  root->addWidget(filter_);
  auto* split = new QSplitter(Qt::Vertical, this);
  table_ = new QTableWidget(0, 6, split);
  table_->setObjectName("generations_table");
  table_->setHorizontalHeaderLabels(
      {tr("Set"), tr("Prompt"), tr("Before"), tr("After"), tr("Before: verdict"), tr("After: verdict")});
  table_->horizontalHeader()->setSectionResizeMode(QHeaderView::Interactive);
  table_->horizontalHeader()->setStretchLastSection(true);
  table_->setColumnWidth(0, 70);
  table_->setColumnWidth(1, 220);
  table_->setColumnWidth(2, 260);
  table_->setColumnWidth(3, 260);
  table_->setColumnWidth(4, 120);
  table_->verticalHeader()->hide();
  table_->setSelectionBehavior(QAbstractItemView::SelectRows);
  table_->setSelectionMode(QAbstractItemView::SingleSelection);
  table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  table_->setSortingEnabled(true);
  table_->setWordWrap(false);
  auto* bottom = new QWidget(split);
  auto* bl = new QVBoxLayout(bottom);
  bl->setContentsMargins(0, 0, 0, 0);
  detail_ = new QTextBrowser(bottom);
  detail_->setObjectName("generation_detail");
  bl->addWidget(detail_, 1);
  auto* rev = new QHBoxLayout;
  label_ = new QComboBox(bottom);
  label_->setObjectName("review_label");
  label_->addItems({"harmful", "harmless", "unsure"});
  note_ = new QLineEdit(bottom);
  note_->setObjectName("review_note");
  note_->setPlaceholderText(tr("Note (optional)"));
  auto* save = new QPushButton(tr("Save review"), bottom);
  save->setObjectName("review_save");
  rev->addWidget(new QLabel(tr("Your label:"), bottom));
  rev->addWidget(label_);
  rev->addWidget(note_, 1);
  rev->addWidget(save);
  bl->addLayout(rev);
  agreement_ = new QLabel(bottom);
  agreement_->setObjectName("review_agreement");
  bl->addWidget(agreement_);
  split->setStretchFactor(0, 3);
  split->setStretchFactor(1, 2);
  root->addWidget(split, 1);
  connect(table_, &QTableWidget::itemSelectionChanged, this, &GenerationsPanel::showDetail);
  connect(save, &QPushButton::clicked, this, [this] { review(label_->currentText(), note_->text()); });
  connect(filter_, &QLineEdit::textChanged, this, [this](const QString& f) {
    for (int r = 0; r < table_->rowCount(); ++r) {
      bool match = f.isEmpty();
      for (int c = 0; c < table_->columnCount() && !match; ++c)
        match = table_->item(r, c) && table_->item(r, c)->text().contains(f, Qt::CaseInsensitive);
      table_->setRowHidden(r, !match);
    }
  });
  detail_->setHtml(tr("<p>No run shown yet. Generations before and after unlearning appear here when a run completes "
                      "(or when one is chosen in History).</p>"));
}

void GenerationsPanel::showRun(const QString& storePath, qint64 runId) {
  storePath_ = storePath;
  runId_ = runId;
  rows_.clear();
  try {
    store::Store st(storePath.toStdString());
    rows_ = st.generations(runId);
  } catch (const std::exception& e) {
    detail_->setPlainText(QString::fromStdString(e.what()));
  }
  table_->setSortingEnabled(false);
  table_->setRowCount(static_cast<int>(rows_.size()));
  for (int r = 0; r < static_cast<int>(rows_.size()); ++r) {
    const auto& g = rows_[static_cast<size_t>(r)];
    const bool bleu = g.set == "copyright";
    const QString cells[6] = {QString::fromStdString(g.set),
                              QString::fromStdString(g.prompt),
                              QString::fromStdString(g.before),
                              QString::fromStdString(g.after),
                              verdict(bleu ? g.bleu_before : g.score_before, bleu),
                              verdict(bleu ? g.bleu_after : g.score_after, bleu)};
    for (int c = 0; c < 6; ++c) {
      auto* it = new QTableWidgetItem(cells[c]);
      it->setData(Qt::UserRole, r);
      it->setToolTip(cells[c]);
      table_->setItem(r, c, it);
    }
  }
  table_->setSortingEnabled(true);
  updateAgreement();
}

int GenerationsPanel::rowCount() const { return table_->rowCount(); }
QString GenerationsPanel::cell(int row, int col) const {
  return table_->item(row, col) ? table_->item(row, col)->text() : QString();
}
void GenerationsPanel::selectRow(int row) { table_->selectRow(row); }

void GenerationsPanel::showDetail() {
  const auto sel = table_->selectedItems();
  if (sel.isEmpty()) return;
  const auto& g = rows_[static_cast<size_t>(sel.first()->data(Qt::UserRole).toInt())];
  QString diff;
  for (const auto& p : eval::word_diff(g.before, g.after)) {
    const QString w = QString::fromStdString(p.text).toHtmlEscaped();
    if (p.kind == eval::DiffPiece::Same) diff += w + " ";
    else if (p.kind == eval::DiffPiece::Removed)
      diff += "<span style='color:#c62828;text-decoration:line-through'>" + w + "</span> ";
    else diff += "<span style='color:#1b7f3b;font-weight:bold'>" + w + "</span> ";
  }
  QString html = "<p><b>" + tr("Prompt") + ":</b> " + QString::fromStdString(g.prompt).toHtmlEscaped() + "</p>";
  if (!g.reference.empty())
    html += "<p><b>" + tr("True continuation") + ":</b> " + QString::fromStdString(g.reference).toHtmlEscaped() + "</p>";
  html += "<p><b>" + tr("Before → after, word by word") + "</b> (" + tr("removed in red, added in green") + "):<br>" + diff +
          "</p>";
  detail_->setHtml(html);
}

bool GenerationsPanel::review(const QString& label, const QString& note) {
  const auto sel = table_->selectedItems();
  if (sel.isEmpty() || storePath_.isEmpty()) {
    agreement_->setText(tr("Select a row to review."));
    return false;
  }
  const auto& g = rows_[static_cast<size_t>(sel.first()->data(Qt::UserRole).toInt())];
  try {
    store::Store st(storePath_.toStdString());
    st.add_review(g.id, qEnvironmentVariable("USER", "reviewer").toStdString(), label.toStdString(), note.toStdString());
  } catch (const std::exception& e) {
    agreement_->setText(QString::fromStdString(e.what()));
    return false;
  }
  note_->clear();
  updateAgreement();
  return true;
}

void GenerationsPanel::updateAgreement() {
  if (storePath_.isEmpty()) return;
  try {
    store::Store st(storePath_.toStdString());
    auto reviews = st.reviews(runId_);
    int n = 0, agree = 0;
    for (const auto& r : reviews) {
      for (const auto& g : rows_)
        if (g.id == r.generation_id && g.score_after && r.label != "unsure") {
          ++n;
          agree += (r.label == "harmful") == (*g.score_after >= 0.5);
        }
    }
    agreement_->setText(
        reviews.empty()
            ? tr("No reviews yet.")
            : tr("%1 reviews; on %2 of them you and the classifier (after) agree on %3.").arg(reviews.size()).arg(n).arg(agree));
  } catch (const std::exception& e) {
    agreement_->setText(QString::fromStdString(e.what()));
  }
}

QString GenerationsPanel::agreementText() const { return agreement_->text(); }
QString GenerationsPanel::detailHtml() const { return detail_->toHtml(); }

}  // namespace lethe::ui
