// Screenshots of the workbench at 1280x800 on a real X server (run under xvfb-run): the whole
// window with a model open, and each dock. Checks every PNG was written and is not blank.
#include <QDir>
#include <QDockWidget>
#include <QImage>
#include <QSettings>
#include <QStandardPaths>
#include <QtTest>

#include "main_window.h"
#include "support/tiny_opt.h"

using namespace lethe::ui;

class ScreenshotTest : public QObject {
  Q_OBJECT
  lethe::testing::TempDir store_;

 private Q_SLOTS:
  void initTestCase() {
    QStandardPaths::setTestModeEnabled(true);
    QSettings().clear();
    qputenv("LETHE_STORE", QByteArray(store_.path.c_str()) + "/lethe.db");
  }

  void mainWindowAndDocks() {
    const QString out = qEnvironmentVariable("LETHE_SCREENSHOT_DIR", QDir::currentPath() + "/screenshots");
    QVERIFY(QDir().mkpath(out));
    lethe::testing::TempDir d;
    lethe::testing::TinyOpt spec;  // a small but real-looking model: 4 layers, hidden 64
    spec.hidden = 64;
    spec.heads = 4;
    spec.layers = 4;
    spec.ffn = 256;
    spec.vocab = 512;
    spec.positions = 128;
    spec.embed_proj_dim = 64;
    lethe::testing::write_tiny_opt(d / "tiny-opt", spec);
    lethe::testing::write_text(d / "tiny-opt" / "vocab.json", "{}");
    lethe::testing::write_text(d / "tiny-opt" / "merges.txt", "");

    MainWindow w;
    w.resize(1280, 800);
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    QVERIFY(w.openModel(QString::fromStdString((d / "tiny-opt").string())));
    QTest::qWait(300);

    auto save = [&](QWidget* widget, const QString& name) {
      const QImage img = widget->grab().toImage();
      QVERIFY2(!img.isNull(), qPrintable(name));
      // Not blank: more than a handful of distinct colours.
      QSet<QRgb> colours;
      for (int y = 0; y < img.height(); y += 7)
        for (int x = 0; x < img.width(); x += 7) colours.insert(img.pixel(x, y));
      QVERIFY2(colours.size() > 3, qPrintable(name + " looks blank"));
      QVERIFY(img.save(out + "/" + name + ".png"));
    };
    save(&w, "main_window");
    for (QDockWidget* dock : w.docks()) {
      dock->raise();
      QTest::qWait(50);
      save(dock, dock->objectName().mid(5));  // "dock_model" -> model.png
    }
  }
};

QTEST_MAIN(ScreenshotTest)
#include "test_screenshots.moc"
