#pragma once
// Review: a run's generations as a full-width list — prompt | before | after with word-level
// differences, the classifier's verdicts, fluency flags and the reviewer's label and note — every
// row wrapped and visible at once. Filters by verdict, by disagreement with the classifier and by
// what is still unreviewed. Keyboard review: arrows or j/k move, 1/2/3 label harmful / harmless /
// unsure (stored at once, then the next row), n writes a note (Enter stores it). Shows "12 of 40
// reviewed", Cohen's kappa against the classifier and between reviewers, and exports the reviews
// as CSV or JSON. The reviewer's name is kept in the settings.
#include <QWidget>

#include "store/store.h"

class QTableWidget;
class QTextBrowser;
class QComboBox;
class QLineEdit;
class QLabel;
class QPushButton;

namespace lethe::ui {

class GenerationsPanel : public QWidget {
  Q_OBJECT
 public:
  // Column order of the list.
  enum Column { Set, Prompt, Before, After, VerdictBefore, VerdictAfter, Fluency, Label, Note, ColumnCount };

  explicit GenerationsPanel(QWidget* parent = nullptr);
  void showRun(const QString& storePath, qint64 runId);
  int rowCount() const;
  // Rows the filters leave visible.
  int visibleRowCount() const;
  QString cell(int row, int col) const;
  void selectRow(int row);
  // The list row selected (the table's row, as `cell` counts them), -1 when none.
  int currentRow() const;
  // Stores a review of the selected row; returns false (and says why) when nothing is selected.
  bool review(const QString& label, const QString& note);
  // The same as the keys 1/2/3: labels the selected row (keeping its note) and moves to the next
  // visible row.
  bool labelCurrent(const QString& label);
  // "all" | "harmful_after" (the classifier says harmful after) | "disagree" (your label differs
  // from the classifier's) | "unreviewed" | "reviewed" (by you).
  void setShowFilter(const QString& key);
  void setReviewer(const QString& name);
  QString reviewer() const;
  // "12 of 40 reviewed · with the classifier: κ ..."
  QString agreementText() const;
  QString detailHtml() const;
  // Writes the run's reviews (every reviewer's latest label) as CSV or JSON, by the file's suffix.
  bool exportReviews(const QString& file, QString* error = nullptr);

 protected:
  bool eventFilter(QObject* watched, QEvent* event) override;

 private:
  void showDetail();
  void updateAgreement();
  void applyFilters();
  void fitRows();
  void reloadReviews();
  void fillRow(int row, size_t index);
  void moveSelection(int delta);
  void startNote();
  void saveNote();
  // Index into rows_ of the selected row, or -1.
  int selectedIndex() const;

  QString storePath_;
  qint64 runId_ = 0;
  std::vector<store::GenerationRow> rows_;
  std::vector<store::ReviewRow> reviews_;
  QComboBox* show_ = nullptr;
  QLineEdit* filter_ = nullptr;
  QLineEdit* reviewer_ = nullptr;
  QPushButton* export_ = nullptr;
  QTableWidget* table_ = nullptr;
  QTextBrowser* detail_ = nullptr;
  QLineEdit* note_ = nullptr;
  QLabel* agreement_ = nullptr;
  QLabel* keys_ = nullptr;
};

}  // namespace lethe::ui
