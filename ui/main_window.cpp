#include "main_window.h"

#include <QAction>
#include <QApplication>
#include <QCloseEvent>
#include <QDockWidget>
#include <QFileDialog>
#include <QLabel>
#include <QMenuBar>
#include <QMessageBox>
#include <QSettings>
#include <QStatusBar>
#include <QDir>
#include <QTimer>

#include "datasets_panel.h"
#include "generations_panel.h"
#include "history_panel.h"
#include "loss_plot_panel.h"
#include "method_panel.h"
#include "metrics_panel.h"
#include "model_panel.h"
#include "instruments_panel.h"
#include "playground_panel.h"
#include "run_controller.h"
#include "run_panel.h"
#include "spec_model.h"
#include "store/store.h"
#include "util/runtime.h"

namespace lethe::ui {
namespace {
constexpr int kMaxRecent = 8;
}  // namespace

MainWindow::MainWindow(QWidget* parent) : QMainWindow(parent) {
  setObjectName("main_window");
  setWindowTitle(tr("Lethe — machine unlearning workbench"));
  setDockNestingEnabled(true);
  setDockOptions(AnimatedDocks | AllowTabbedDocks | AllowNestedDocks);

  spec_ = new SpecModel(this);
  controller_ = new RunController(this);
  lossPanel_ = new LossPlotPanel(this);
  setCentralWidget(lossPanel_);

  modelPanel_ = new ModelPanel(this);
  datasetsPanel_ = new DatasetsPanel(spec_, this);
  methodPanel_ = new MethodPanel(spec_, this);
  runPanel_ = new RunPanel(controller_, spec_, this);
  generationsPanel_ = new GenerationsPanel(this);
  metricsPanel_ = new MetricsPanel(this);
  historyPanel_ = new HistoryPanel(this);
  playgroundPanel_ = new PlaygroundPanel(this);
  instrumentsPanel_ = new InstrumentsPanel(this);

  arrangeDocks();
  connectRun();
  connectPanels();
  try {
    setStorePath(QString::fromStdString(store::default_store_path().string()));
  } catch (const std::exception& e) {  // no HOME and no XDG_DATA_HOME: runs are not recorded
    statusBar()->showMessage(tr("No store: %1").arg(QString::fromStdString(e.what())));
  }

  buildMenus();
  connectModelDialogs();
  auto* runtime = new QLabel(QString::fromStdString(lethe::runtime_summary()), this);
  runtime->setObjectName("runtime_label");
  statusBar()->addPermanentWidget(runtime);

  resize(1280, 800);
  QSettings settings;
  restoreGeometry(settings.value("window/geometry").toByteArray());
  restoreState(settings.value("window/state").toByteArray());
}

// The docks around the plot: Model, Datasets, Method tabbed on the left; Run over Metrics and
// History on the right; Generations and Playground under the plot.
void MainWindow::arrangeDocks() {
  auto* model = addDock("dock_model", tr("Model"), modelPanel_, Qt::LeftDockWidgetArea);
  auto* datasets = addDock("dock_datasets", tr("Datasets"), datasetsPanel_, Qt::LeftDockWidgetArea);
  auto* method = addDock("dock_method", tr("Method and weights"), methodPanel_, Qt::LeftDockWidgetArea);
  tabifyDockWidget(model, datasets);
  tabifyDockWidget(datasets, method);
  model->raise();
  auto* run = addDock("dock_run", tr("Run"), runPanel_, Qt::RightDockWidgetArea);
  auto* metrics = addDock("dock_metrics", tr("Metrics"), metricsPanel_, Qt::RightDockWidgetArea);
  auto* history = addDock("dock_history", tr("History"), historyPanel_, Qt::RightDockWidgetArea);
  splitDockWidget(run, metrics, Qt::Vertical);
  tabifyDockWidget(metrics, history);
  metrics->raise();
  auto* gens = addDock("dock_generations", tr("Generations"), generationsPanel_, Qt::BottomDockWidgetArea);
  auto* play = addDock("dock_playground", tr("Playground"), playgroundPanel_, Qt::BottomDockWidgetArea);
  auto* instruments = addDock("dock_instruments", tr("Instruments"), instrumentsPanel_, Qt::BottomDockWidgetArea);
  tabifyDockWidget(gens, play);
  tabifyDockWidget(play, instruments);
  gens->raise();
  // The side columns run the full height; generations sit under the plot.
  setCorner(Qt::BottomLeftCorner, Qt::LeftDockWidgetArea);
  setCorner(Qt::BottomRightCorner, Qt::RightDockWidgetArea);
  resizeDocks({model, run}, {540, 360}, Qt::Horizontal);
  resizeDocks({run, metrics}, {190, 510}, Qt::Vertical);
  resizeDocks({gens}, {260}, Qt::Vertical);
}

// The run: the plot drains its buffer; when it ends, History, Generations and the Playground follow.
void MainWindow::connectRun() {
  // The plot drains the run's buffer every 40 ms on the GUI thread (never one signal per step).
  drain_ = new QTimer(this);
  drain_->setInterval(40);
  connect(drain_, &QTimer::timeout, this, [this] { lossPanel_->append(controller_->buffer().take()); });
  drain_->start();
  connect(controller_, &RunController::started, this, [this](qint64 id) {
    lossPanel_->clear({});
    statusBar()->showMessage(tr("Run %1 started").arg(id), 5000);
    historyPanel_->refresh();
  });
  connect(controller_, &RunController::finished, this, [this](const QString& status, const QString& error, qint64 id) {
    lossPanel_->append(controller_->buffer().take());
    statusBar()->showMessage(tr("Run %1 %2").arg(id).arg(status), 8000);
    if (id > 0) showRun(id);
    historyPanel_->refresh();
    if (status == "completed") {
      // The run's own folder (a default one is unique per run), and the original as the spec names it.
      const QString original = spec_->resolvedPath("model.path");
      const io::Json save = spec_->get("output.save", "merged");
      const bool saved = save == io::Json("merged") || save == io::Json("both");  // a merged model in OUT/model
      playgroundPanel_->setModels(original, saved ? controller_->lastOutputDir() + "/model" : original);
      const auto pf = spec_->get("model.prompt_format", "paper");
      playgroundPanel_->setPromptFormat(pf.is_string() ? QString::fromStdString(pf.get<std::string>()) : QString("paper"));
      if (saved) instrumentsPanel_->setModels(original, controller_->lastOutputDir() + "/model");
      instrumentsPanel_->setPromptFormat(pf.is_string() ? QString::fromStdString(pf.get<std::string>()) : QString("paper"));
      instrumentsPanel_->setData(spec_->resolvedPath("datasets.forget.path"), spec_->resolvedPath("datasets.normal.path"));
    }
  });
}

// The panels edit one spec document; a preset reloads the panels that show it.
void MainWindow::connectPanels() {
  connect(historyPanel_, &HistoryPanel::openRun, this, &MainWindow::showRun);
  connect(historyPanel_, &HistoryPanel::overlayCurve, lossPanel_, &LossPlotPanel::addOverlay);
  connect(historyPanel_, &HistoryPanel::failed, this, [this](const QString& m) { statusBar()->showMessage(m, 8000); });
  connect(historyPanel_, &HistoryPanel::probeFinished, this, [this](qint64 id, bool ok, const QString& summary) {
    if (ok) statusBar()->showMessage(tr("Probe of run %1: %2").arg(id).arg(summary), 15000);
  });
  connect(modelPanel_, &ModelPanel::modelOpened, this,
          [this](const QString& dir) { spec_->set("model.path", dir.toStdString()); });
  connect(modelPanel_, &ModelPanel::runtimeChanged, this, [this](const QString& device, const QString& dtype) {
    spec_->set("model.device", device.toStdString());
    spec_->set("model.dtype", dtype.toStdString());
  });
  connect(modelPanel_, &ModelPanel::promptFormatChanged, this, [this](const QString& f) {
    spec_->set("model.prompt_format", f.toStdString());
    datasetsPanel_->syncFromSpec();
  });
  connect(methodPanel_, &MethodPanel::presetLoaded, this, [this](const QString&) {
    datasetsPanel_->syncFromSpec();
    modelPanel_->setRuntime(QString::fromStdString(spec_->get("model.device", "auto").get<std::string>()),
                            QString::fromStdString(spec_->get("model.dtype", "fp32").get<std::string>()));
    const auto pf = spec_->get("model.prompt_format", "paper");
    modelPanel_->setPromptFormat(pf.is_string() ? QString::fromStdString(pf.get<std::string>()) : QString("paper"));
    const QString dir = spec_->resolvedPath("model.path");
    if (!dir.isEmpty()) modelPanel_->openFolder(QDir::cleanPath(dir));
  });
}

// Opening a model: recent folders, and a non-blocking dialog when it fails.
void MainWindow::connectModelDialogs() {
  connect(modelPanel_, &ModelPanel::openRequested, this, &MainWindow::chooseModel);
  connect(modelPanel_, &ModelPanel::modelOpened, this, [this](const QString& dir) {
    addRecent(dir);
    statusBar()->showMessage(tr("Opened %1").arg(dir), 5000);
  });
  connect(modelPanel_, &ModelPanel::loadFailed, this, [this](const QString& message) {
    statusBar()->showMessage(tr("Could not open the model"), 5000);
    // Window-modal and non-blocking: the event loop (and any run) keeps going.
    auto* box = new QMessageBox(QMessageBox::Critical, tr("Could not open the model"), message, QMessageBox::Ok, this);
    box->setObjectName("error_dialog");
    box->setAttribute(Qt::WA_DeleteOnClose);
    box->open();
  });
}

MainWindow::~MainWindow() = default;

QDockWidget* MainWindow::addDock(const QString& objectName, const QString& title, QWidget* content, Qt::DockWidgetArea area) {
  auto* dock = new QDockWidget(title, this);
  dock->setObjectName(objectName);
  dock->setWidget(content);
  addDockWidget(area, dock);
  return dock;
}

QList<QDockWidget*> MainWindow::docks() const { return findChildren<QDockWidget*>(); }

void MainWindow::buildMenus() {
  QMenu* file = menuBar()->addMenu(tr("&File"));
  QAction* open = file->addAction(tr("&Open Model…"), this, &MainWindow::chooseModel);
  open->setShortcut(QKeySequence::Open);
  file->addAction(tr("Open &Spec…"), this, [this] {
    const QString f = QFileDialog::getOpenFileName(this, tr("Open an experiment spec"), {}, tr("Spec (*.json)"));
    if (!f.isEmpty()) openSpec(f);
  });
  recentMenu_ = file->addMenu(tr("Open &Recent"));
  rebuildRecentMenu();
  file->addSeparator();
  QAction* quit = file->addAction(tr("&Quit"), this, &QWidget::close);
  quit->setShortcut(QKeySequence::Quit);

  viewMenu_ = menuBar()->addMenu(tr("&View"));
  for (QDockWidget* d : docks()) viewMenu_->addAction(d->toggleViewAction());

  QMenu* help = menuBar()->addMenu(tr("&Help"));
  help->addAction(tr("&About Lethe"), this, [this] {
    QMessageBox::about(this, tr("About Lethe"),
                       tr("<b>Lethe</b> — a workbench for machine unlearning in large language models "
                          "(arXiv 2405.15152, after Yao et al.'s llm_unlearn).<br><br>%1")
                           .arg(QString::fromStdString(lethe::runtime_summary()).toHtmlEscaped()));
  });
}

void MainWindow::chooseModel() {
  QSettings settings;
  const QString start = settings.value("recent/models").toStringList().value(0);
  const QString dir = QFileDialog::getExistingDirectory(this, tr("Open a Hugging Face model folder"), start);
  if (!dir.isEmpty()) openModel(dir);
}

void MainWindow::setStorePath(const QString& path) {
  storePath_ = path;
  runPanel_->setStorePath(path);
  historyPanel_->setStorePath(path);
}

bool MainWindow::openSpec(const QString& file) {
  methodPanel_->loadPreset(file);
  return methodPanel_->problemsText() != QString() && spec_->problems().isEmpty();
}

void MainWindow::showRun(qint64 runId) {
  generationsPanel_->showRun(storePath_, runId);
  metricsPanel_->showRun(storePath_, runId);
}

bool MainWindow::openModel(const QString& dir) {
  if (auto* dock = findChild<QDockWidget*>("dock_model")) dock->raise();
  return modelPanel_->openFolder(dir);
}

void MainWindow::addRecent(const QString& dir) {
  QSettings settings;
  QStringList recent = settings.value("recent/models").toStringList();
  recent.removeAll(dir);
  recent.prepend(dir);
  while (recent.size() > kMaxRecent) recent.removeLast();
  settings.setValue("recent/models", recent);
  rebuildRecentMenu();
}

void MainWindow::rebuildRecentMenu() {
  recentMenu_->clear();
  const QStringList recent = QSettings().value("recent/models").toStringList();
  for (const QString& dir : recent) recentMenu_->addAction(dir, this, [this, dir] { openModel(dir); });
  recentMenu_->setEnabled(!recent.isEmpty());
}

void MainWindow::closeEvent(QCloseEvent* event) {
  // A run going on is cancelled now (its state saved, the store marked) rather than when the
  // controller is destroyed, so the worker is already stopping while the window closes.
  if (controller_->isRunning()) controller_->stop();
  QSettings settings;
  settings.setValue("window/geometry", saveGeometry());
  settings.setValue("window/state", saveState());
  QMainWindow::closeEvent(event);
}

}  // namespace lethe::ui
