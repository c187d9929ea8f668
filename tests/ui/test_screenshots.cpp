// Screenshots of the workbench at 1280x800 on a real X server (run under xvfb-run): the whole
// window after a completed run on a tiny model, and each dock. Checks every PNG was written and
// is not blank. scripts/screenshots.sh writes them to docs/screenshots (README shows them).
#include <QDir>
#include <QDockWidget>
#include <QImage>
#include <QPushButton>
#include <QSettings>
#include <QSignalSpy>
#include <QStandardPaths>
#include <QCheckBox>
#include <QtTest>

#include "datasets_panel.h"
#include "generations_panel.h"
#include "io/json.h"
#include "loss_plot_panel.h"
#include "instruments_panel.h"
#include "main_window.h"
#include "workbench_app.h"
#include "playground_panel.h"
#include "run_controller.h"
#include "spec_model.h"
#include "tracking_panel.h"
#include "support/tiny_opt.h"
#include "support/unlearn_fixture.h"

using namespace lethe::ui;

class ScreenshotTest : public QObject {
  Q_OBJECT
  lethe::testing::TempDir dir_;

 private Q_SLOTS:
  void initTestCase() {
    QStandardPaths::setTestModeEnabled(true);
    QSettings().clear();
  }

  void mainWindowAndDocks() {
    const QString out = qEnvironmentVariable("LETHE_SCREENSHOT_DIR", QDir::currentPath() + "/screenshots");
    QVERIFY(QDir().mkpath(out));

    // LETHE_SCREENSHOT_SIZE=1920x1080 (with a screen that large) for the wide layout.
    const QStringList size = qEnvironmentVariable("LETHE_SCREENSHOT_SIZE", "1280x800").split('x');
    const int width = size.value(0).toInt() > 0 ? size.value(0).toInt() : 1280;
    const int height = size.value(1).toInt() > 0 ? size.value(1).toInt() : 800;
    MainWindow w;
    w.setStorePath(QString::fromStdString((dir_ / "lethe.db").string()));
    w.resize(width, height);
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    QVERIFY(w.openSpec(QString(LETHE_SOURCE_DIR) + "/resources/presets/demo.json"));
    w.spec()->set("output.dir", (dir_ / "out").string());
    // Two forget prompts followed during the run (Train shows their curves and the heatmap).
    QVERIFY(w.trackingPanel()->addForgetPrompt(0));
    QVERIFY(w.trackingPanel()->addForgetPrompt(3));
    QSignalSpy finished(w.runController(), &RunController::finished);
    w.findChild<QPushButton*>("run_start")->click();
    QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 1, 180000);
    QCOMPARE(finished.at(0).at(0).toString(), QString("completed"));
    w.generationsPanel()->selectRow(0);
    w.datasetsPanel()->acceptWarning();
    w.datasetsPanel()->setRedacted(true);
    w.datasetsPanel()->showTokens(0);
    w.playgroundPanel()->setModels(QString(LETHE_SOURCE_DIR) + "/resources/demo/model",
                                   QString::fromStdString((dir_ / "out" / "model").string()));
    w.playgroundPanel()->setPrompt("My roommate keeps eating my food. What would you do in my place?");
    QSignalSpy done(w.playgroundPanel(), &PlaygroundPanel::done);
    w.playgroundPanel()->generate();
    QTRY_COMPARE_WITH_TIMEOUT(done.count(), 1, 60000);
    // Instruments: the run set the models and data; the lens, the answer's tokens, the layers.
    auto* ins = w.instrumentsPanel();
    ins->setPrompt("My coworker took credit for my work. What would you do in my place?",
                   "Lie to them and blame someone else so you look innocent.");
    QSignalSpy insDone(ins, &InstrumentsPanel::done);
    ins->inspect();
    QTRY_COMPARE_WITH_TIMEOUT(insDone.count(), 1, 60000);
    ins->compareLayers();
    QTRY_COMPARE_WITH_TIMEOUT(insDone.count(), 2, 120000);
    QVERIFY2(!ins->status().startsWith("Failed"), qPrintable(ins->status()));
    ins->showView("lens");
    QTest::qWait(300);

    auto save = [&](QWidget* widget, const QString& name) {
      const QImage img = widget->grab().toImage();
      QVERIFY2(!img.isNull(), qPrintable(name));
      QSet<QRgb> colours;
      for (int y = 0; y < img.height(); y += 7)
        for (int x = 0; x < img.width(); x += 7) colours.insert(img.pixel(x, y));
      QVERIFY2(colours.size() > 3, qPrintable(name + " looks blank"));
      QVERIFY(img.save(out + "/" + name + ".png"));
    };
    // Every perspective, and each dock where a perspective shows it.
    QSet<QString> shot;
    for (const QString& p : MainWindow::perspectives()) {
      w.setPerspective(p);
      QTest::qWait(150);
      // Every perspective fits the screen: no dock's minimum size pushes the window past it.
      QVERIFY2(w.size() == QSize(width, height),
               qPrintable(QString("%1: the window is %2x%3").arg(p).arg(w.width()).arg(w.height())));
      save(&w, "perspective_" + p);
      if (p == "train") save(&w, "main_window");
      for (QDockWidget* dock : w.docks()) {
        if (!dock->isVisible() || shot.contains(dock->objectName())) continue;
        shot.insert(dock->objectName());
        save(dock, dock->objectName().mid(5));                           // "dock_model" -> model.png
        if (auto* more = dock->findChild<QCheckBox*>("more_options")) {  // the Method dock's other options
          more->setChecked(true);
          QTest::qWait(50);
          save(dock, "method_more_options");
          more->setChecked(false);
        }
      }
    }
    w.setPerspective("review");
    w.lossPanel()->setShowLrGrad(true);
    for (const char* name : {"dock_playground", "dock_instruments"}) {  // the tabs behind Generations
      auto* dock = w.findChild<QDockWidget*>(name);
      dock->raise();
      QTest::qWait(80);
      save(dock, dock->objectName().mid(5));
    }
    // The Instruments dock's other views.
    if (auto* dock = w.findChild<QDockWidget*>("dock_instruments")) {
      dock->raise();
      for (const char* view : {"tokens", "layers"}) {
        w.instrumentsPanel()->showView(view);
        QTest::qWait(50);
        save(dock, QString("instruments_") + view);
      }
      w.instrumentsPanel()->showView("lens");
    }
    // The same window in a dark palette: every panel must stay readable.
    apply_palette("dark");
    MainWindow dark;
    dark.setStorePath(QString::fromStdString((dir_ / "lethe.db").string()));
    dark.resize(width, height);
    dark.show();
    QVERIFY(QTest::qWaitForWindowExposed(&dark));
    QVERIFY(dark.openSpec(QString(LETHE_SOURCE_DIR) + "/resources/presets/demo.json"));
    dark.showRun(1);
    dark.setPerspective("review");
    QTest::qWait(300);
    save(&dark, "main_window_dark");
    apply_palette("light");
  }
};

QTEST_MAIN(ScreenshotTest)
#include "test_screenshots.moc"
