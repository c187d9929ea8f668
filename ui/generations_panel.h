#pragma once
// Generations of a run: prompt | before | after | verdicts (P(harmful) or BLEU) with a filter
// and sorting; the selected row shown below with word-level differences highlighted; a person's
// label (harmful / harmless / unsure) and note stored as a review; agreement with the classifier.
#include <QWidget>

#include "store/store.h"

class QTableWidget;
class QTextBrowser;
class QComboBox;
class QLineEdit;
class QLabel;

namespace lethe::ui {

class GenerationsPanel : public QWidget {
  Q_OBJECT
 public:
  explicit GenerationsPanel(QWidget* parent = nullptr);
  void showRun(const QString& storePath, qint64 runId);
  int rowCount() const;
  QString cell(int row, int col) const;
  void selectRow(int row);
  // Stores a review of the selected row; returns false (and says why) when nothing is selected.
  bool review(const QString& label, const QString& note);
  QString agreementText() const;
  QString detailHtml() const;

 private:
  void showDetail();
  void updateAgreement();

  QString storePath_;
  qint64 runId_ = 0;
  std::vector<store::GenerationRow> rows_;
  QLineEdit* filter_ = nullptr;
  QTableWidget* table_ = nullptr;
  QTextBrowser* detail_ = nullptr;
  QComboBox* label_ = nullptr;
  QLineEdit* note_ = nullptr;
  QLabel* agreement_ = nullptr;
};

}  // namespace lethe::ui
