#pragma once
// The workbench window: builds the docks and menus and connects them. No logic lives here.
#include <QMainWindow>

class QDockWidget;

namespace lethe::ui {

class ModelPanel;
class LossPlotPanel;

class MainWindow : public QMainWindow {
  Q_OBJECT
 public:
  explicit MainWindow(QWidget* parent = nullptr);
  ~MainWindow() override;

  ModelPanel* modelPanel() const { return modelPanel_; }
  LossPlotPanel* lossPanel() const { return lossPanel_; }
  // Every dock by object name ("dock_model", "dock_datasets", ...).
  QList<QDockWidget*> docks() const;
  // Opens a model folder through the Model panel (also the command-line argument).
  bool openModel(const QString& dir);

 public Q_SLOTS:
  void chooseModel();

 protected:
  void closeEvent(QCloseEvent* event) override;

 private:
  QDockWidget* addDock(const QString& objectName, const QString& title, QWidget* content, Qt::DockWidgetArea area);
  void buildMenus();
  void addRecent(const QString& dir);
  void rebuildRecentMenu();

  ModelPanel* modelPanel_ = nullptr;
  LossPlotPanel* lossPanel_ = nullptr;
  QMenu* recentMenu_ = nullptr;
  QMenu* viewMenu_ = nullptr;
};

}  // namespace lethe::ui
