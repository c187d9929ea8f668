#include "main_window.h"

#include <QAction>
#include <QActionGroup>
#include <QApplication>
#include <QCloseEvent>
#include <QDockWidget>
#include <QFileDialog>
#include <QLabel>
#include <QLayout>
#include <QMenuBar>
#include <QMessageBox>
#include <QSettings>
#include <QStatusBar>
#include <QDir>
#include <QScreen>
#include <QScrollArea>
#include <QSet>
#include <QTimer>
#include <QToolBar>
#include <algorithm>

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
#include "tracking_panel.h"
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
  trackingPanel_ = new TrackingPanel(controller_, spec_, this);
  connect(datasetsPanel_, &DatasetsPanel::redactedChanged, trackingPanel_, &TrackingPanel::setRedacted);

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

  buildPerspectives();
  QSettings settings;
  for (const QString& p : perspectives()) {
    const QByteArray state = settings.value("perspectives/" + p).toByteArray();
    if (!state.isEmpty()) layouts_[p] = state;
  }
  if (!restoreGeometry(settings.value("window/geometry").toByteArray())) fitToScreen();
  const QString last = settings.value("perspectives/current").toString();
  setPerspective(perspectives().contains(last) ? last : QString("setup"));
}

QStringList MainWindow::perspectives() { return {"setup", "train", "review", "compare"}; }

// The first start: a size that fits the screen (all of a small one, 85% of a large one), centred.
void MainWindow::fitToScreen() {
  const QScreen* screen = this->screen() ? this->screen() : QApplication::primaryScreen();
  if (!screen) {
    resize(1280, 800);
    return;
  }
  const QRect avail = screen->availableGeometry();
  const int w = std::min(avail.width(), std::max(1280, avail.width() * 85 / 100));
  const int h = std::min(avail.height(), std::max(800, avail.height() * 85 / 100));
  resize(w, h);
  move(avail.center() - QPoint(w / 2, h / 2));
}

void MainWindow::buildPerspectives() {
  auto* bar = new QToolBar(tr("Perspectives"), this);
  bar->setObjectName("perspectives_toolbar");
  bar->setMovable(false);
  bar->setToolButtonStyle(Qt::ToolButtonTextOnly);
  addToolBar(Qt::TopToolBarArea, bar);
  auto* group = new QActionGroup(this);
  const QStringList titles = {tr("Setup"), tr("Train"), tr("Review"), tr("Compare")};
  const QStringList tips = {tr("Model, datasets, method and weights"), tr("The live loss plot and the run controls"),
                            tr("Generations before and after, full width, for labelling"),
                            tr("Past runs, overlaid curves and the forgetting-vs-utility scatter")};
  auto* menu = new QMenu(tr("&Perspective"), viewMenu_);
  QAction* first = viewMenu_->actions().value(0);
  viewMenu_->insertMenu(first, menu);
  viewMenu_->insertSeparator(first);
  for (int i = 0; i < perspectives().size(); ++i) {
    const QString name = perspectives()[i];
    QAction* a = bar->addAction(titles[i]);
    a->setObjectName("perspective_" + name);
    a->setCheckable(true);
    a->setShortcut(QKeySequence(Qt::CTRL | static_cast<Qt::Key>(Qt::Key_1 + i)));
    a->setToolTip(QString("%1 — %2 (%3)").arg(titles[i], tips[i], a->shortcut().toString(QKeySequence::NativeText)));
    group->addAction(a);
    menu->addAction(a);
    connect(a, &QAction::triggered, this, [this, name] { setPerspective(name); });
    perspectiveActions_[name] = a;
  }
  menu->addSeparator();
  menu->addAction(tr("&Reset this perspective's layout"), this, [this] {
    layouts_.remove(perspective_);
    applyDefaultLayout(perspective_);
  });
}

void MainWindow::setPerspective(const QString& name) {
  if (!perspectives().contains(name)) return;
  if (!perspective_.isEmpty()) layouts_[perspective_] = saveState();
  perspective_ = name;
  if (QAction* a = perspectiveActions_.value(name)) a->setChecked(true);
  // The plot is the centre of Train and Compare; elsewhere the docks take its room.
  lossPanel_->setVisible(name == "train" || name == "compare");
  // In Train the tracked prompts run the full width under everything; elsewhere the side
  // columns run the full height.
  const bool wideBottom = name == "train";
  setCorner(Qt::BottomLeftCorner, wideBottom ? Qt::BottomDockWidgetArea : Qt::LeftDockWidgetArea);
  setCorner(Qt::BottomRightCorner, wideBottom ? Qt::BottomDockWidgetArea : Qt::RightDockWidgetArea);
  const QSize size = this->size();
  const QByteArray saved = layouts_.value(name);
  if (saved.isEmpty() || !restoreState(saved)) applyDefaultLayout(name);
  // Re-placing docks must not grow the window past the screen (the layout keeps the docks' old
  // sizes until it is activated): the window keeps its size, the docks share it.
  if (layout()) layout()->activate();
  if (!isMaximized() && !isFullScreen() && this->size() != size) resize(size);
  QSettings().setValue("perspectives/current", name);
}

void MainWindow::applyDefaultLayout(const QString& name) {
  auto dock = [this](const char* objectName) { return findChild<QDockWidget*>(objectName); };
  QDockWidget *model = dock("dock_model"), *datasets = dock("dock_datasets"), *method = dock("dock_method"),
              *run = dock("dock_run"), *metrics = dock("dock_metrics"), *history = dock("dock_history"),
              *gens = dock("dock_generations"), *play = dock("dock_playground"), *instruments = dock("dock_instruments"),
              *tracking = dock("dock_tracking");
  for (QDockWidget* d : docks()) {
    d->setFloating(false);
    removeDockWidget(d);
  }
  QSet<QDockWidget*> placed;
  auto place = [this, &placed](QDockWidget* d, Qt::DockWidgetArea area) {
    addDockWidget(area, d);
    d->show();
    placed.insert(d);
  };
  // The docks this perspective does not show stay in the layout, hidden (View shows them), so the
  // saved layout names every dock and restoring it puts each one back where it was.
  const auto parkRest = [this, &placed] {
    for (QDockWidget* d : docks())
      if (!placed.contains(d)) {
        addDockWidget(Qt::RightDockWidgetArea, d);
        d->hide();
      }
  };
  const int w = std::max(width(), 960), h = std::max(height(), 600);
  if (name == "setup") {
    // Model, data and method side by side; the run controls under the method, to start from here.
    place(model, Qt::LeftDockWidgetArea);
    place(datasets, Qt::LeftDockWidgetArea);
    place(method, Qt::LeftDockWidgetArea);
    splitDockWidget(model, datasets, Qt::Horizontal);
    splitDockWidget(datasets, method, Qt::Horizontal);
    place(run, Qt::LeftDockWidgetArea);
    splitDockWidget(method, run, Qt::Vertical);
    resizeDocks({model, datasets, method}, {w * 35 / 100, w * 30 / 100, w * 35 / 100}, Qt::Horizontal);
    resizeDocks({method, run}, {h * 58 / 100, h * 22 / 100}, Qt::Vertical);  // of the docks' ~80% of the window
  } else if (name == "train") {
    // The plot large with the tracked prompts under it; the weights at hand on the left; the run
    // and its metrics on the right.
    place(tracking, Qt::BottomDockWidgetArea);
    place(method, Qt::LeftDockWidgetArea);
    place(run, Qt::RightDockWidgetArea);
    place(metrics, Qt::RightDockWidgetArea);
    splitDockWidget(run, metrics, Qt::Vertical);
    const int methodWidth = std::max(w * 24 / 100, methodPanel_->minimumSizeHint().width() + 24);  // + a scroll bar
    resizeDocks({method, run}, {methodWidth, w * 22 / 100}, Qt::Horizontal);
    resizeDocks({run, metrics}, {h * 24 / 100, h * 56 / 100}, Qt::Vertical);
    resizeDocks({tracking}, {h * 32 / 100}, Qt::Vertical);
  } else if (name == "review") {
    // The generations full width and height; the playground and instruments one tab away.
    place(gens, Qt::BottomDockWidgetArea);
    place(play, Qt::BottomDockWidgetArea);
    place(instruments, Qt::BottomDockWidgetArea);
    tabifyDockWidget(gens, play);
    tabifyDockWidget(play, instruments);
    gens->raise();
  } else {
    // History and its scatter on the left, the overlaid curves in the middle, metrics on the right.
    place(history, Qt::LeftDockWidgetArea);
    place(metrics, Qt::RightDockWidgetArea);
    resizeDocks({history, metrics}, {w * 40 / 100, w * 27 / 100}, Qt::Horizontal);
  }
  parkRest();
}

// Every dock is created once; the perspectives place them (applyDefaultLayout).
void MainWindow::arrangeDocks() {
  addDock("dock_model", tr("Model"), modelPanel_, Qt::LeftDockWidgetArea);
  addDock("dock_datasets", tr("Datasets"), datasetsPanel_, Qt::LeftDockWidgetArea);
  // The method's form grows with "More options": it scrolls rather than push the window past the screen.
  auto* methodScroll = new QScrollArea(this);
  methodScroll->setObjectName("method_scroll");
  methodScroll->setWidgetResizable(true);
  methodScroll->setFrameShape(QFrame::NoFrame);
  methodScroll->setWidget(methodPanel_);
  addDock("dock_method", tr("Method and weights"), methodScroll, Qt::LeftDockWidgetArea);
  addDock("dock_run", tr("Run"), runPanel_, Qt::RightDockWidgetArea);
  addDock("dock_metrics", tr("Metrics"), metricsPanel_, Qt::RightDockWidgetArea);
  addDock("dock_history", tr("History"), historyPanel_, Qt::RightDockWidgetArea);
  addDock("dock_generations", tr("Generations"), generationsPanel_, Qt::BottomDockWidgetArea);
  addDock("dock_playground", tr("Playground"), playgroundPanel_, Qt::BottomDockWidgetArea);
  addDock("dock_instruments", tr("Instruments"), instrumentsPanel_, Qt::BottomDockWidgetArea);
  addDock("dock_tracking", tr("Tracked prompts"), trackingPanel_, Qt::BottomDockWidgetArea);
  setCorner(Qt::BottomLeftCorner, Qt::LeftDockWidgetArea);
  setCorner(Qt::BottomRightCorner, Qt::RightDockWidgetArea);
}

// The run: the plot drains its buffer; when it ends, History, Generations and the Playground follow.
void MainWindow::connectRun() {
  // The plot drains the run's buffer every 40 ms on the GUI thread (never one signal per step).
  drain_ = new QTimer(this);
  drain_->setInterval(40);
  connect(drain_, &QTimer::timeout, this, [this] {
    lossPanel_->append(controller_->buffer().take());
    trackingPanel_->append(controller_->buffer().takeTracks());
  });
  drain_->start();
  connect(controller_, &RunController::started, this, [this](qint64 id) {
    if (perspective_ == "setup") setPerspective("train");  // started from Setup: watch it
    lossPanel_->clear({});
    trackingPanel_->clearPoints();
    statusBar()->showMessage(tr("Run %1 started").arg(id), 5000);
    historyPanel_->refresh();
  });
  connect(controller_, &RunController::finished, this, [this](const QString& status, const QString& error, qint64 id) {
    lossPanel_->append(controller_->buffer().take());
    trackingPanel_->append(controller_->buffer().takeTracks());
    statusBar()->showMessage(status == "completed" && perspective_ != "review"
                                 ? tr("Run %1 completed — Review (Ctrl+3) shows its generations for labelling").arg(id)
                                 : tr("Run %1 %2").arg(id).arg(status),
                             10000);
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
  // The Model dock's step estimate follows the spec's batch, K, precision and mode.
  auto stepShape = [this] {
    auto number = [this](const char* path, int fallback) {
      const io::Json v = spec_->get(path, fallback);
      return v.is_number_integer() ? v.get<int>() : fallback;
    };
    auto text = [this](const char* path, const char* fallback) {
      const io::Json v = spec_->get(path, fallback);
      return v.is_string() ? v.get<std::string>() : std::string(fallback);
    };
    const std::string precision = text("unlearn.precision", "fp32");
    static const bool native_bf16 = lethe::cpu_has_native_bf16();
    modelPanel_->setStepShape(number("unlearn.batch", 2), number("unlearn.K", 5),
                              precision == "bf16" || (precision == "auto" && native_bf16),
                              text("unlearn.mode", "corrected") == "faithful");
  };
  connect(spec_, &SpecModel::changed, this, stepShape);
  stepShape();
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
  if (!controller_->isRunning()) trackingPanel_->showRun(storePath_, runId);
}

bool MainWindow::openModel(const QString& dir) {
  if (auto* dock = findChild<QDockWidget*>("dock_model"); dock && !dock->isVisible()) setPerspective("setup");
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
  layouts_[perspective_] = saveState();
  for (auto it = layouts_.cbegin(); it != layouts_.cend(); ++it) settings.setValue("perspectives/" + it.key(), it.value());
  settings.setValue("perspectives/current", perspective_);
  QMainWindow::closeEvent(event);
}

}  // namespace lethe::ui
