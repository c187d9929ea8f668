#pragma once
// The workbench window: builds the docks and menus and connects them. No logic lives here.
#include <QHash>
#include <QMainWindow>

class QDockWidget;

namespace lethe::ui {

class ModelPanel;
class LossPlotPanel;
class SpecModel;
class RunController;
class MethodPanel;
class DatasetsPanel;
class RunPanel;
class GenerationsPanel;
class MetricsPanel;
class HistoryPanel;
class PlaygroundPanel;
class InstrumentsPanel;
class TrackingPanel;

class MainWindow : public QMainWindow {
  Q_OBJECT
 public:
  explicit MainWindow(QWidget* parent = nullptr);
  ~MainWindow() override;

  ModelPanel* modelPanel() const { return modelPanel_; }
  LossPlotPanel* lossPanel() const { return lossPanel_; }
  SpecModel* spec() const { return spec_; }
  RunController* runController() const { return controller_; }
  MethodPanel* methodPanel() const { return methodPanel_; }
  DatasetsPanel* datasetsPanel() const { return datasetsPanel_; }
  RunPanel* runPanel() const { return runPanel_; }
  GenerationsPanel* generationsPanel() const { return generationsPanel_; }
  MetricsPanel* metricsPanel() const { return metricsPanel_; }
  HistoryPanel* historyPanel() const { return historyPanel_; }
  PlaygroundPanel* playgroundPanel() const { return playgroundPanel_; }
  InstrumentsPanel* instrumentsPanel() const { return instrumentsPanel_; }
  TrackingPanel* trackingPanel() const { return trackingPanel_; }
  // The experiment store the runs are recorded in (default: $LETHE_STORE or ~/.local/share/...).
  void setStorePath(const QString& path);
  QString storePath() const { return storePath_; }
  // Opens a spec file (also the command-line argument).
  bool openSpec(const QString& file);
  // Shows a stored run in Generations, Metrics and the plot.
  void showRun(qint64 runId);
  // Every dock by object name ("dock_model", "dock_datasets", ...).
  QList<QDockWidget*> docks() const;
  // Opens a model folder through the Model panel (also the command-line argument).
  bool openModel(const QString& dir);
  // Perspectives: "setup" (model, data, method), "train" (the plot large, run controls),
  // "review" (generations full width), "compare" (history, overlays, scatter). Each remembers
  // its own dock layout (in the settings, across sessions); Ctrl+1..4 switch.
  static QStringList perspectives();
  void setPerspective(const QString& name);
  QString perspective() const { return perspective_; }

 public Q_SLOTS:
  void chooseModel();

 protected:
  void closeEvent(QCloseEvent* event) override;

 private:
  QDockWidget* addDock(const QString& objectName, const QString& title, QWidget* content, Qt::DockWidgetArea area);
  void buildMenus();
  void arrangeDocks();
  void buildPerspectives();
  // The perspective's layout as shipped (used until the user changes it, and by View > Reset).
  void applyDefaultLayout(const QString& name);
  void fitToScreen();
  void connectRun();
  void connectPanels();
  void connectModelDialogs();
  void addRecent(const QString& dir);
  void rebuildRecentMenu();

  ModelPanel* modelPanel_ = nullptr;
  LossPlotPanel* lossPanel_ = nullptr;
  SpecModel* spec_ = nullptr;
  RunController* controller_ = nullptr;
  MethodPanel* methodPanel_ = nullptr;
  DatasetsPanel* datasetsPanel_ = nullptr;
  RunPanel* runPanel_ = nullptr;
  GenerationsPanel* generationsPanel_ = nullptr;
  MetricsPanel* metricsPanel_ = nullptr;
  HistoryPanel* historyPanel_ = nullptr;
  PlaygroundPanel* playgroundPanel_ = nullptr;
  InstrumentsPanel* instrumentsPanel_ = nullptr;
  TrackingPanel* trackingPanel_ = nullptr;
  QString storePath_;
  QMenu* recentMenu_ = nullptr;
  class QTimer* drain_ = nullptr;
  QMenu* viewMenu_ = nullptr;
  QString perspective_;
  QHash<QString, QByteArray> layouts_;  // perspective -> saveState()
  QHash<QString, class QAction*> perspectiveActions_;
};

}  // namespace lethe::ui
