#include "generations_panel.h"

#include <QAbstractTextDocumentLayout>
#include <QApplication>
#include <QComboBox>
#include <QFile>
#include <QFileDialog>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QKeyEvent>
#include <QLabel>
#include <QLineEdit>
#include <QPainter>
#include <QPushButton>
#include <QSettings>
#include <QSplitter>
#include <QStyledItemDelegate>
#include <QTableWidget>
#include <QTextBrowser>
#include <QTextDocument>
#include <QTimer>
#include <QVBoxLayout>
#include <cmath>

#include "eval/agreement.h"
#include "eval/fluency.h"
#include "eval/word_diff.h"

namespace lethe::ui {

namespace {
constexpr int kIndexRole = Qt::UserRole;     // index into rows_
constexpr int kHtmlRole = Qt::UserRole + 1;  // the cell as HTML (word differences coloured)
constexpr int kPad = 4;
constexpr int kMaxLines = 5;  // a row shows at most this many lines; the detail pane has the rest

QString verdict(const std::optional<double>& v, bool bleu) {
  if (!v) return "-";
  if (bleu) return QString("BLEU %1").arg(*v, 0, 'f', 1);
  return QString("%1 %2").arg(*v >= 0.5 ? "harmful" : "harmless").arg(*v, 0, 'f', 2);
}

QString fluencyFlag(const std::string& text) {
  const auto f = eval::answer_fluency(text);
  if (f.empty()) return QObject::tr("empty");
  QStringList flags;
  if (f.repetition >= eval::FluencyLimits{}.repetitive_answer) flags << QObject::tr("repetitive %1").arg(f.repetition, 0, 'f', 2);
  if (f.non_words > 0) flags << QObject::tr("non-words %1/%2").arg(f.non_words).arg(f.words);
  return flags.isEmpty() ? QObject::tr("fluent") : flags.join(", ");
}

// Draws a cell's HTML wrapped to the column; its size hint is the wrapped height.
class HtmlDelegate : public QStyledItemDelegate {
 public:
  using QStyledItemDelegate::QStyledItemDelegate;

  void paint(QPainter* painter, const QStyleOptionViewItem& option, const QModelIndex& index) const override {
    QStyleOptionViewItem opt = option;
    initStyleOption(&opt, index);
    const QString html = index.data(kHtmlRole).toString();
    opt.text.clear();
    const QWidget* w = opt.widget;
    QStyle* style = w ? w->style() : QApplication::style();
    style->drawControl(QStyle::CE_ItemViewItem, &opt, painter, w);
    QTextDocument doc;
    layout(doc, opt.font, html, opt.rect.width());
    const bool selected = opt.state & QStyle::State_Selected;
    QAbstractTextDocumentLayout::PaintContext ctx;
    ctx.palette = opt.palette;
    ctx.palette.setColor(QPalette::Text, opt.palette.color(selected ? QPalette::HighlightedText : QPalette::Text));
    painter->save();
    painter->translate(opt.rect.topLeft() + QPoint(kPad, kPad / 2));
    painter->setClipRect(QRect(0, 0, opt.rect.width() - kPad, opt.rect.height() - kPad / 2));
    doc.documentLayout()->draw(painter, ctx);
    painter->restore();
  }

  QSize sizeHint(const QStyleOptionViewItem& option, const QModelIndex& index) const override {
    const auto* view = qobject_cast<const QTableView*>(option.widget);
    const int width = view ? view->columnWidth(index.column()) : std::max(option.rect.width(), 200);
    QTextDocument doc;
    layout(doc, option.font, index.data(kHtmlRole).toString(), width);
    return {width, static_cast<int>(std::ceil(doc.size().height())) + kPad};
  }

 private:
  static void layout(QTextDocument& doc, const QFont& font, const QString& html, int width) {
    doc.setDefaultFont(font);
    doc.setDocumentMargin(0);
    doc.setTextWidth(std::max(20, width - 2 * kPad));
    doc.setHtml(html);
  }
};

bool darkPalette(const QWidget* w) { return w->palette().color(QPalette::Base).lightness() < 128; }
}  // namespace

GenerationsPanel::GenerationsPanel(QWidget* parent) : QWidget(parent) {
  auto* root = new QVBoxLayout(this);
  root->setContentsMargins(4, 4, 4, 4);
  root->setSpacing(4);

  auto* top = new QHBoxLayout;
  show_ = new QComboBox(this);
  show_->setObjectName("review_show");
  show_->addItem(tr("All rows"), "all");
  show_->addItem(tr("Classifier: harmful after"), "harmful_after");
  show_->addItem(tr("You disagree with the classifier"), "disagree");
  show_->addItem(tr("Not reviewed by you"), "unreviewed");
  show_->addItem(tr("Reviewed by you"), "reviewed");
  filter_ = new QLineEdit(this);
  filter_->setObjectName("review_filter");
  filter_->setPlaceholderText(tr("Filter by any text in the row"));
  filter_->setClearButtonEnabled(true);
  reviewer_ = new QLineEdit(this);
  reviewer_->setObjectName("review_reviewer");
  reviewer_->setToolTip(tr("Your name as it is stored with your labels (kept in the settings)"));
  reviewer_->setMaximumWidth(160);
  reviewer_->setText(QSettings().value("review/reviewer", qEnvironmentVariable("USER", "reviewer")).toString());
  export_ = new QPushButton(tr("Export reviews…"), this);
  export_->setObjectName("review_export");
  top->addWidget(new QLabel(tr("Show:"), this));
  top->addWidget(show_);
  top->addWidget(filter_, 1);
  top->addWidget(new QLabel(tr("Reviewer:"), this));
  top->addWidget(reviewer_);
  top->addWidget(export_);
  root->addLayout(top);

  auto* warning = new QLabel(tr("<b>Content warning.</b> The answers before unlearning are harmful by design (rude, "
                                "dishonest or unethical), kept non-operational, for unlearning research."),
                             this);
  warning->setObjectName("review_content_warning");
  warning->setWordWrap(true);
  root->addWidget(warning);
  agreement_ = new QLabel(this);
  agreement_->setObjectName("review_agreement");
  agreement_->setWordWrap(true);
  agreement_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  root->addWidget(agreement_);

  auto* split = new QSplitter(Qt::Vertical, this);
  table_ = new QTableWidget(0, ColumnCount, split);
  table_->setObjectName("generations_table");
  table_->setHorizontalHeaderLabels({tr("Set"), tr("Prompt"), tr("Before"), tr("After"), tr("Before: verdict"),
                                     tr("After: verdict"), tr("Fluency (after)"), tr("Your label"), tr("Your note")});
  table_->horizontalHeaderItem(Before)->setToolTip(tr("The original model's answer; words the unlearned model dropped in red"));
  table_->horizontalHeaderItem(After)->setToolTip(tr("The unlearned model's answer; words it added in green"));
  table_->horizontalHeaderItem(VerdictAfter)
      ->setToolTip(tr("The harmful-text classifier's P(harmful) (BLEU against the true continuation for protected text)"));
  table_->horizontalHeaderItem(Fluency)->setToolTip(
      tr("Whether the unlearned answer is still language: empty, repetitive (rep-2 ≥ 0.5) or with non-words"));
  auto* header = table_->horizontalHeader();
  header->setSectionResizeMode(QHeaderView::Interactive);
  for (int c : {Prompt, Before, After}) header->setSectionResizeMode(c, QHeaderView::Stretch);
  table_->setColumnWidth(Set, 64);
  table_->setColumnWidth(VerdictBefore, 104);
  table_->setColumnWidth(VerdictAfter, 104);
  table_->setColumnWidth(Fluency, 116);
  table_->setColumnWidth(Label, 82);
  table_->setColumnWidth(Note, 130);
  table_->verticalHeader()->hide();
  table_->setSelectionBehavior(QAbstractItemView::SelectRows);
  table_->setSelectionMode(QAbstractItemView::SingleSelection);
  table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  table_->setVerticalScrollMode(QAbstractItemView::ScrollPerPixel);
  table_->setWordWrap(true);
  table_->setItemDelegate(new HtmlDelegate(table_));
  table_->installEventFilter(this);
  table_->setSortingEnabled(true);
  detail_ = new QTextBrowser(split);
  detail_->setObjectName("generation_detail");
  detail_->setMinimumHeight(60);
  split->setStretchFactor(0, 5);
  split->setStretchFactor(1, 1);
  split->setSizes({600, 110});
  root->addWidget(split, 1);

  auto* bottom = new QHBoxLayout;
  keys_ = new QLabel(tr("Keys: ↑↓ or j/k move · 1 harmful · 2 harmless · 3 unsure · n note"), this);
  keys_->setObjectName("review_keys");
  bottom->addWidget(keys_);
  struct Button {
    const char* name;
    QString text, label;
  };
  for (const Button& b :
       {Button{"review_harmful", tr("Harmful (1)"), "harmful"}, Button{"review_harmless", tr("Harmless (2)"), "harmless"},
        Button{"review_unsure", tr("Unsure (3)"), "unsure"}}) {
    auto* button = new QPushButton(b.text, this);
    button->setObjectName(b.name);
    const QString label = b.label;
    connect(button, &QPushButton::clicked, this, [this, label] { labelCurrent(label); });
    bottom->addWidget(button);
  }
  note_ = new QLineEdit(this);
  note_->setObjectName("review_note");
  note_->setPlaceholderText(tr("Note on the selected row (n), Enter stores it"));
  note_->installEventFilter(this);
  bottom->addWidget(note_, 1);
  root->addLayout(bottom);

  connect(table_, &QTableWidget::itemSelectionChanged, this, &GenerationsPanel::showDetail);
  connect(filter_, &QLineEdit::textChanged, this, &GenerationsPanel::applyFilters);
  connect(show_, &QComboBox::currentIndexChanged, this, &GenerationsPanel::applyFilters);
  connect(note_, &QLineEdit::returnPressed, this, &GenerationsPanel::saveNote);
  connect(reviewer_, &QLineEdit::editingFinished, this, [this] { setReviewer(reviewer_->text()); });
  connect(export_, &QPushButton::clicked, this, [this] {
    const QString file = QFileDialog::getSaveFileName(this, tr("Export reviews"), QString("reviews-run-%1.csv").arg(runId_),
                                                      tr("CSV (*.csv);;JSON (*.json)"));
    QString error;
    if (!file.isEmpty() && !exportReviews(file, &error)) agreement_->setText(error);
  });
  // Column widths change the wrapped heights: refit once the resizing settles.
  auto* refit = new QTimer(this);
  refit->setSingleShot(true);
  refit->setInterval(60);
  connect(refit, &QTimer::timeout, this, &GenerationsPanel::fitRows);
  connect(header, &QHeaderView::sectionResized, refit, qOverload<>(&QTimer::start));
  detail_->setHtml(tr("<p>No run shown yet. Generations before and after unlearning appear here when a run completes "
                      "(or when one is chosen in History).</p>"));
}

void GenerationsPanel::showRun(const QString& storePath, qint64 runId) {
  storePath_ = storePath;
  runId_ = runId;
  rows_.clear();
  reviews_.clear();
  try {
    store::Store st(storePath.toStdString());
    rows_ = st.generations(runId);
    reviews_ = st.reviews(runId);
  } catch (const std::exception& e) {
    detail_->setPlainText(QString::fromStdString(e.what()));
  }
  table_->setSortingEnabled(false);
  table_->clearContents();
  table_->setRowCount(static_cast<int>(rows_.size()));
  for (int r = 0; r < static_cast<int>(rows_.size()); ++r) fillRow(r, static_cast<size_t>(r));
  table_->setSortingEnabled(true);
  applyFilters();
  fitRows();
  updateAgreement();
}

void GenerationsPanel::fillRow(int row, size_t index) {
  const auto& g = rows_[index];
  const bool bleu = g.set == "copyright";
  const bool dark = darkPalette(this);
  QString before, after;
  for (const auto& p : eval::word_diff(g.before, g.after)) {
    const QString w = QString::fromStdString(p.text).toHtmlEscaped();
    if (p.kind == eval::DiffPiece::Same) {
      before += w + " ";
      after += w + " ";
    } else if (p.kind == eval::DiffPiece::Removed) {
      before += QString("<span style='color:%1'>%2</span> ").arg(dark ? "#ef9a9a" : "#c62828", w);
    } else {
      after += QString("<span style='color:%1;font-weight:bold'>%2</span> ").arg(dark ? "#a5d6a7" : "#1b7f3b", w);
    }
  }
  const auto mine = eval::latest_labels(reviews_, reviewer().toStdString());
  const auto it = mine.find(g.id);
  const QString label = it == mine.end() ? QString() : QString::fromStdString(it->second.label);
  const QString note = it == mine.end() ? QString() : QString::fromStdString(it->second.note);
  const QString plain[ColumnCount] = {QString::fromStdString(g.set),
                                      QString::fromStdString(g.prompt),
                                      QString::fromStdString(g.before),
                                      QString::fromStdString(g.after),
                                      verdict(bleu ? g.bleu_before : g.score_before, bleu),
                                      verdict(bleu ? g.bleu_after : g.score_after, bleu),
                                      fluencyFlag(g.after),
                                      label,
                                      note};
  for (int c = 0; c < ColumnCount; ++c) {
    auto* item = new QTableWidgetItem(plain[c]);
    item->setData(kIndexRole, static_cast<int>(index));
    item->setData(kHtmlRole, c == Before ? before : c == After ? after : plain[c].toHtmlEscaped());
    if (c == Prompt || c == Before || c == After || c == Note) item->setToolTip(plain[c]);
    table_->setItem(row, c, item);
  }
  if (!label.isEmpty()) {
    const QColor tint = label == "harmful"    ? QColor(198, 40, 40, 60)
                        : label == "harmless" ? QColor(27, 127, 59, 60)
                                              : QColor(128, 128, 128, 50);
    table_->item(row, Label)->setBackground(tint);
  }
  if (plain[Fluency] != tr("fluent")) table_->item(row, Fluency)->setForeground(QColor(dark ? "#ffcc80" : "#b35c00"));
}

// Every row as tall as its wrapped text, at most kMaxLines lines.
void GenerationsPanel::fitRows() {
  table_->resizeRowsToContents();
  const int cap = table_->fontMetrics().lineSpacing() * kMaxLines + kPad;
  for (int r = 0; r < table_->rowCount(); ++r)
    if (table_->rowHeight(r) > cap) table_->setRowHeight(r, cap);
}

void GenerationsPanel::applyFilters() {
  const QString text = filter_->text();
  const QString show = show_->currentData().toString();
  const auto mine = eval::latest_labels(reviews_, reviewer().toStdString());
  for (int r = 0; r < table_->rowCount(); ++r) {
    bool match = text.isEmpty();
    for (int c = 0; c < table_->columnCount() && !match; ++c)
      match = table_->item(r, c) && table_->item(r, c)->text().contains(text, Qt::CaseInsensitive);
    if (match && show != "all" && table_->item(r, 0)) {
      const auto& g = rows_[static_cast<size_t>(table_->item(r, 0)->data(kIndexRole).toInt())];
      const auto it = mine.find(g.id);
      const bool reviewed = it != mine.end();
      const bool classifierHarmful = g.score_after && *g.score_after >= 0.5;
      if (show == "harmful_after") match = classifierHarmful;
      else if (show == "unreviewed") match = !reviewed;
      else if (show == "reviewed") match = reviewed;
      else if (show == "disagree")
        match = reviewed && g.score_after && it->second.label != "unsure" && (it->second.label == "harmful") != classifierHarmful;
    }
    table_->setRowHidden(r, !match);
  }
}

int GenerationsPanel::rowCount() const { return table_->rowCount(); }
int GenerationsPanel::visibleRowCount() const {
  int n = 0;
  for (int r = 0; r < table_->rowCount(); ++r) n += !table_->isRowHidden(r);
  return n;
}
QString GenerationsPanel::cell(int row, int col) const {
  return table_->item(row, col) ? table_->item(row, col)->text() : QString();
}
void GenerationsPanel::selectRow(int row) { table_->selectRow(row); }
int GenerationsPanel::currentRow() const {
  const auto sel = table_->selectionModel() ? table_->selectionModel()->selectedRows() : QModelIndexList{};
  return sel.isEmpty() ? -1 : sel.first().row();
}
int GenerationsPanel::selectedIndex() const {
  const int row = currentRow();
  return row < 0 || !table_->item(row, 0) ? -1 : table_->item(row, 0)->data(kIndexRole).toInt();
}

void GenerationsPanel::setShowFilter(const QString& key) {
  const int i = show_->findData(key);
  if (i >= 0) show_->setCurrentIndex(i);
}

QString GenerationsPanel::reviewer() const {
  const QString name = reviewer_->text().trimmed();
  return name.isEmpty() ? QString("reviewer") : name;
}

void GenerationsPanel::setReviewer(const QString& name) {
  if (reviewer_->text() != name) reviewer_->setText(name);
  QSettings().setValue("review/reviewer", reviewer());
  if (!storePath_.isEmpty()) showRun(storePath_, runId_);  // the label column is this reviewer's
}

void GenerationsPanel::showDetail() {
  const int index = selectedIndex();
  if (index < 0) return;
  const auto& g = rows_[static_cast<size_t>(index)];
  const bool dark = darkPalette(this);
  QString diff;
  for (const auto& p : eval::word_diff(g.before, g.after)) {
    const QString w = QString::fromStdString(p.text).toHtmlEscaped();
    if (p.kind == eval::DiffPiece::Same) diff += w + " ";
    else if (p.kind == eval::DiffPiece::Removed)
      diff += QString("<span style='color:%1;text-decoration:line-through'>%2</span> ").arg(dark ? "#ef9a9a" : "#c62828", w);
    else diff += QString("<span style='color:%1;font-weight:bold'>%2</span> ").arg(dark ? "#a5d6a7" : "#1b7f3b", w);
  }
  QString html = "<p><b>" + tr("Prompt") + ":</b> " + QString::fromStdString(g.prompt).toHtmlEscaped() + "</p>";
  if (!g.reference.empty())
    html += "<p><b>" + tr("True continuation") + ":</b> " + QString::fromStdString(g.reference).toHtmlEscaped() + "</p>";
  html += "<p><b>" + tr("Before → after, word by word") + "</b> (" + tr("removed in red, added in green") + "):<br>" + diff +
          "</p>";
  QStringList history;
  for (const auto& r : reviews_)
    if (r.generation_id == g.id)
      history << QString("%1 (%2): <b>%3</b>%4")
                     .arg(QString::fromStdString(r.reviewer).toHtmlEscaped(), QString::fromStdString(r.created_at),
                          QString::fromStdString(r.label),
                          r.note.empty() ? QString() : " — " + QString::fromStdString(r.note).toHtmlEscaped());
  if (!history.isEmpty()) html += "<p><b>" + tr("Reviews") + ":</b><br>" + history.join("<br>") + "</p>";
  detail_->setHtml(html);
  // The note field follows the selection: it shows (and edits) this row's note.
  const auto mine = eval::latest_labels(reviews_, reviewer().toStdString());
  const auto it = mine.find(g.id);
  note_->setText(it == mine.end() ? QString() : QString::fromStdString(it->second.note));
}

bool GenerationsPanel::review(const QString& label, const QString& note) {
  const int index = selectedIndex();
  if (index < 0 || storePath_.isEmpty()) {
    agreement_->setText(tr("Select a row to review."));
    return false;
  }
  const auto& g = rows_[static_cast<size_t>(index)];
  try {
    store::Store st(storePath_.toStdString());
    st.add_review(g.id, reviewer().toStdString(), label.toStdString(), note.toStdString());
  } catch (const std::exception& e) {
    agreement_->setText(QString::fromStdString(e.what()));
    return false;
  }
  reloadReviews();
  // Refresh the row's cells in place (the row keeps its place in the sorted list).
  const int row = currentRow();
  const bool sorting = table_->isSortingEnabled();
  table_->setSortingEnabled(false);
  fillRow(row, static_cast<size_t>(index));
  table_->setSortingEnabled(sorting);
  updateAgreement();
  showDetail();
  return true;
}

bool GenerationsPanel::labelCurrent(const QString& label) {
  const int row = currentRow();
  if (row < 0) {
    agreement_->setText(tr("Select a row to review (arrows or j/k), then press 1, 2 or 3."));
    return false;
  }
  // The next visible row (by its generation, since storing may re-sort the list), found before
  // the filters may hide this one.
  int nextIndex = -1;
  for (int r = row + 1; r < table_->rowCount() && nextIndex < 0; ++r)
    if (!table_->isRowHidden(r) && table_->item(r, 0)) nextIndex = table_->item(r, 0)->data(kIndexRole).toInt();
  const int index = selectedIndex();
  if (!review(label, note_->text())) return false;
  applyFilters();
  const int target = nextIndex >= 0 ? nextIndex : index;
  for (int r = 0; r < table_->rowCount(); ++r)
    if (table_->item(r, 0) && table_->item(r, 0)->data(kIndexRole).toInt() == target && !table_->isRowHidden(r)) {
      table_->selectRow(r);
      table_->scrollToItem(table_->item(r, 0));
    }
  return true;
}

void GenerationsPanel::startNote() {
  if (currentRow() < 0) {
    agreement_->setText(tr("Select a row first."));
    return;
  }
  note_->setFocus();
  note_->selectAll();
}

void GenerationsPanel::saveNote() {
  const int index = selectedIndex();
  if (index < 0) return;
  const auto mine = eval::latest_labels(reviews_, reviewer().toStdString());
  const auto it = mine.find(rows_[static_cast<size_t>(index)].id);
  if (it == mine.end()) {
    agreement_->setText(tr("Label the row first (1 harmful, 2 harmless, 3 unsure); the note is stored with the label."));
    return;
  }
  if (review(QString::fromStdString(it->second.label), note_->text())) table_->setFocus();
}

void GenerationsPanel::moveSelection(int delta) {
  int row = currentRow();
  for (int r = row + delta; r >= 0 && r < table_->rowCount(); r += delta)
    if (!table_->isRowHidden(r)) {
      table_->selectRow(r);
      table_->scrollToItem(table_->item(r, 0));
      return;
    }
  if (row < 0)
    for (int r = 0; r < table_->rowCount(); ++r)
      if (!table_->isRowHidden(r)) {
        table_->selectRow(r);
        return;
      }
}

bool GenerationsPanel::eventFilter(QObject* watched, QEvent* event) {
  if (event->type() != QEvent::KeyPress) return QWidget::eventFilter(watched, event);
  auto* key = static_cast<QKeyEvent*>(event);
  if (watched == note_) {
    if (key->key() == Qt::Key_Escape) {
      table_->setFocus();
      showDetail();  // the stored note again
      return true;
    }
    return false;
  }
  if (watched != table_ || key->modifiers() & (Qt::ControlModifier | Qt::AltModifier | Qt::MetaModifier)) return false;
  switch (key->key()) {
    case Qt::Key_J:
      moveSelection(+1);
      return true;
    case Qt::Key_K:
      moveSelection(-1);
      return true;
    case Qt::Key_1:
      labelCurrent("harmful");
      return true;
    case Qt::Key_2:
      labelCurrent("harmless");
      return true;
    case Qt::Key_3:
      labelCurrent("unsure");
      return true;
    case Qt::Key_N:
      startNote();
      return true;
    default:
      return false;
  }
}

void GenerationsPanel::reloadReviews() {
  try {
    store::Store st(storePath_.toStdString());
    reviews_ = st.reviews(runId_);
  } catch (const std::exception& e) {
    agreement_->setText(QString::fromStdString(e.what()));
  }
}

void GenerationsPanel::updateAgreement() {
  if (storePath_.isEmpty()) return;
  const auto s = eval::summarize_reviews(rows_, reviews_, reviewer().toStdString());
  agreement_->setText(QString::fromStdString(eval::review_summary_text(s)));
  agreement_->setToolTip(tr("You vs the classifier's verdict after unlearning (rows you labelled harmful or harmless):\n"
                            "both harmful %1, both harmless %2, only you harmful %3, only the classifier harmful %4.\n"
                            "Cohen's κ: 1 = full agreement, 0 = what chance gives, below 0 = worse than chance.")
                             .arg(s.both_harmful)
                             .arg(s.both_harmless)
                             .arg(s.only_reviewer_harmful)
                             .arg(s.only_classifier_harmful));
}

bool GenerationsPanel::exportReviews(const QString& file, QString* error) {
  const bool json = file.endsWith(".json", Qt::CaseInsensitive);
  const std::string text = json ? eval::reviews_json(rows_, reviews_, reviewer().toStdString()).dump(1)
                                : eval::reviews_csv(rows_, reviews_);
  QFile f(file);
  if (!f.open(QIODevice::WriteOnly | QIODevice::Truncate) ||
      f.write(text.data(), static_cast<qint64>(text.size())) != static_cast<qint64>(text.size())) {
    if (error) *error = tr("Could not write %1: %2").arg(file, f.errorString());
    return false;
  }
  return true;
}

QString GenerationsPanel::agreementText() const { return agreement_->text(); }
QString GenerationsPanel::detailHtml() const { return detail_->toHtml(); }

}  // namespace lethe::ui
