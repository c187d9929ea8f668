#pragma once
// Tracked prompts: choose forget-set prompts (or write one) before or during a run; every N steps
// the run measures each tracked answer's mean log-probability under the current model (the
// harmful answer, and the safe one when the forget set has one for the same question). Plotted
// live beside the losses; a token x step heatmap shows one prompt's answer token by token. A
// stored run shows its recorded points. The numbers come from core (unlearn/tracking.h).
#include <QStringList>
#include <QWidget>
#include <map>
#include <vector>

#include "unlearn/tracking.h"

class QComboBox;
class QLineEdit;
class QListWidget;
class QSpinBox;
class QLabel;
class QCustomPlot;
class QCPColorMap;

namespace lethe::ui {

class RunController;
class SpecModel;

class TrackingPanel : public QWidget {
  Q_OBJECT
 public:
  TrackingPanel(RunController* controller, SpecModel* spec, QWidget* parent = nullptr);
  // Reads the spec's forget set into the chooser.
  void refreshChoices();
  int choiceCount() const;
  // Tracks forget sample `index` (its harmful answer, and the safe answer to the same question
  // when the set has one). Returns false with the reason in status() otherwise.
  bool addForgetPrompt(int index);
  bool addCustom(const QString& prompt, const QString& answer, const QString& safeAnswer = {});
  int trackedCount() const;
  // Points arriving from the run (the main window drains the controller's buffer).
  void append(const std::vector<unlearn::TrackPoint>& points);
  void clearPoints();
  // A stored run's tracked prompts and points.
  void showRun(const QString& storePath, qint64 runId);
  int pointCount() const;
  // How many prompts have points.
  int promptsWithPoints() const;
  // The heatmap's prompt id and its cells (steps x tokens).
  void setHeatmapPrompt(qint64 promptId);
  QSize heatmapCells() const;
  // Answers drawn as blocks in the heatmap's token labels (the Datasets dock's "Redact answers").
  void setRedacted(bool on);
  bool redacted() const { return redacted_; }
  QStringList heatmapTokenLabels() const;  // top to bottom as drawn (tests)
  QString status() const;

 private:
  void rebuildList();
  void redraw();
  void redrawHeatmap();
  QString promptLabel(int64_t id) const;

  RunController* controller_;
  SpecModel* spec_;
  struct Choice {
    std::string prompt, answer, safe;
  };
  std::vector<Choice> choices_;
  // (prompt id, kind) -> step -> point
  std::map<std::pair<int64_t, std::string>, std::map<int64_t, unlearn::TrackPoint>> series_;
  std::map<int64_t, unlearn::TrackedPrompt> prompts_;  // what the points belong to
  QComboBox* choose_ = nullptr;
  QSpinBox* every_ = nullptr;
  QLineEdit* customPrompt_ = nullptr;
  QLineEdit* customAnswer_ = nullptr;
  QListWidget* list_ = nullptr;
  QComboBox* heatmapOf_ = nullptr;
  QCustomPlot* plot_ = nullptr;
  QCustomPlot* heatmap_ = nullptr;
  QCPColorMap* map_ = nullptr;
  QLabel* status_ = nullptr;
  int64_t heatmapPrompt_ = -1;
  bool redacted_ = false;
};

}  // namespace lethe::ui
