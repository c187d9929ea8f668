#pragma once
// Datasets: the forget, normal, random-answer and protected sources, the classifier and the
// evaluation prompts; a preview table of the forget set with counts and lengths, shown only after
// a content warning, with a redact toggle for classroom use.
#include <QWidget>

class QLabel;
class QLineEdit;
class QTableWidget;
class QCheckBox;
class QStackedWidget;
class QFormLayout;
class QTextBrowser;

namespace lethe::ui {

class SpecModel;

class DatasetsPanel : public QWidget {
  Q_OBJECT
 public:
  DatasetsPanel(SpecModel* spec, QWidget* parent = nullptr);
  void syncFromSpec();
  // Reads the forget file for the preview (errors shown in the panel).
  void refreshPreview();
  void acceptWarning();  // the "Show the samples" button
  bool previewVisible() const;
  int previewRows() const;
  void setRedacted(bool on);
  QString previewCell(int row, int col) const;
  QString summaryText() const;
  // The token view of preview row `row`: which tokens each loss term trains on, faithful and
  // corrected side by side (needs the model's tokenizer). Returns the HTML shown.
  QString showTokens(int row);

 Q_SIGNALS:
  void redactedChanged(bool on);  // the user's toggle or setRedacted

 private:
  QLineEdit* pathRow(QFormLayout* form, const QString& label, const std::string& key, bool folder, const QString& filter);

  SpecModel* spec_;
  struct Row {
    QLineEdit* edit;
    std::string key;
  };
  std::vector<Row> rows_;
  QLabel* summary_ = nullptr;
  QStackedWidget* stack_ = nullptr;
  QTableWidget* preview_ = nullptr;
  QCheckBox* redact_ = nullptr;
  QTextBrowser* tokens_ = nullptr;
  std::vector<std::pair<std::string, std::string>> samples_;
  bool syncing_ = false;
};

}  // namespace lethe::ui
