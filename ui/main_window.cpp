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

#include "loss_plot_panel.h"
#include "model_panel.h"
#include "pending_panel.h"
#include "util/runtime.h"

namespace lethe::ui {
namespace {
constexpr int kMaxRecent = 8;
const char* kNotYet = QT_TRANSLATE_NOOP("MainWindow", "Not available in this build yet.");
}  // namespace

MainWindow::MainWindow(QWidget* parent) : QMainWindow(parent) {
  setObjectName("main_window");
  setWindowTitle(tr("Lethe — machine unlearning workbench"));
  setDockNestingEnabled(true);
  setDockOptions(AnimatedDocks | AllowTabbedDocks | AllowNestedDocks);

  lossPanel_ = new LossPlotPanel(this);
  setCentralWidget(lossPanel_);

  modelPanel_ = new ModelPanel(this);
  auto* model = addDock("dock_model", tr("Model"), modelPanel_, Qt::LeftDockWidgetArea);
  auto* datasets = addDock(
      "dock_datasets", tr("Datasets"),
      new PendingPanel(tr("Datasets"),
                       tr("Choose the forget set (PKU-SafeRLHF JSONL), the normal data (TruthfulQA CSV), the "
                          "random-answer pool and a protected corpus; preview samples and see which tokens each "
                          "loss term covers. Harmful text is shown only after a content warning."),
                       tr(kNotYet)),
      Qt::LeftDockWidgetArea);
  auto* method = addDock("dock_method", tr("Method && weights"),
                         new PendingPanel(tr("Method & weights"),
                                          tr("Method and mode (faithful or corrected), the weights ε1 ε2 ε3, learning "
                                             "rate, steps, batch, K random answers, LoRA, seed and presets."),
                                          tr(kNotYet)),
                         Qt::LeftDockWidgetArea);
  tabifyDockWidget(model, datasets);
  tabifyDockWidget(datasets, method);
  model->raise();
  auto* run = addDock("dock_run", tr("Run"),
                      new PendingPanel(tr("Run"),
                                       tr("Start, pause and stop an unlearning run on a background thread (on the GPU "
                                          "when libtorch has CUDA), with progress, ETA and tokens/s."),
                                       tr(kNotYet)),
                      Qt::RightDockWidgetArea);

  auto* metrics = addDock("dock_metrics", tr("Metrics"),
                          new PendingPanel(tr("Metrics"),
                                           tr("Harmful rate before and after, with its interval and the classifier's "
                                              "own held-out accuracy beside it; BLEU and ROUGE-L; perplexity and "
                                              "multiple-choice retention."),
                                           tr(kNotYet)),
                          Qt::RightDockWidgetArea);
  auto* history = addDock("dock_history", tr("History"),
                          new PendingPanel(tr("History"),
                                           tr("Every stored run with its settings and headline numbers; overlay "
                                              "curves, a forget-vs-utility scatter, and reports."),
                                           tr(kNotYet)),
                          Qt::RightDockWidgetArea);
  splitDockWidget(run, metrics, Qt::Vertical);
  tabifyDockWidget(metrics, history);
  metrics->raise();

  auto* gens = addDock("dock_generations", tr("Generations"),
                       new PendingPanel(tr("Generations"),
                                        tr("Prompt | before | after | classifier verdicts | BLEU, with word-level "
                                           "differences highlighted and review labels stored per row."),
                                        tr(kNotYet)),
                       Qt::BottomDockWidgetArea);
  auto* play = addDock("dock_playground", tr("Playground"),
                       new PendingPanel(tr("Playground"),
                                        tr("Type any prompt and see the original and the unlearned model answer side "
                                           "by side, streamed token by token."),
                                        tr(kNotYet)),
                       Qt::BottomDockWidgetArea);
  tabifyDockWidget(gens, play);
  gens->raise();
  // The side columns run the full height; generations sit under the plot.
  setCorner(Qt::BottomLeftCorner, Qt::LeftDockWidgetArea);
  setCorner(Qt::BottomRightCorner, Qt::RightDockWidgetArea);
  resizeDocks({model, run}, {540, 320}, Qt::Horizontal);
  resizeDocks({run, metrics}, {200, 500}, Qt::Vertical);
  resizeDocks({gens}, {230}, Qt::Vertical);

  buildMenus();
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

  auto* runtime = new QLabel(QString::fromStdString(lethe::runtime_summary()), this);
  runtime->setObjectName("runtime_label");
  statusBar()->addPermanentWidget(runtime);

  resize(1280, 800);
  QSettings settings;
  restoreGeometry(settings.value("window/geometry").toByteArray());
  restoreState(settings.value("window/state").toByteArray());
}

MainWindow::~MainWindow() = default;

QDockWidget* MainWindow::addDock(const QString& objectName, const QString& title, QWidget* content,
                                 Qt::DockWidgetArea area) {
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
  QSettings settings;
  settings.setValue("window/geometry", saveGeometry());
  settings.setValue("window/state", saveState());
  QMainWindow::closeEvent(event);
}

}  // namespace lethe::ui
