#include "workbench_app.h"

#include <QApplication>
#include <QCommandLineParser>
#include <QIcon>
#include <QPalette>
#include <QStyle>
#include <QTimer>
#include <cstdio>

#include "main_window.h"
#include "util/runtime.h"

// Q_INIT_RESOURCE must run at global namespace; lethe_ui is a static library, so the
// resources are not registered by themselves.
static void initLetheResources() { Q_INIT_RESOURCE(resources); }

namespace lethe::ui {

void apply_palette(const QString& name) {
  if (name == "system") return;
  QApplication::setStyle("Fusion");
  QPalette p;
  if (name == "dark") {
    const QColor window(0x2b, 0x2d, 0x31), base(0x1e, 0x1f, 0x22), text(0xe6, 0xe6, 0xe6), mid(0x8a, 0x8d, 0x93);
    p.setColor(QPalette::Window, window);
    p.setColor(QPalette::WindowText, text);
    p.setColor(QPalette::Base, base);
    p.setColor(QPalette::AlternateBase, window);
    p.setColor(QPalette::Text, text);
    p.setColor(QPalette::Button, window);
    p.setColor(QPalette::ButtonText, text);
    p.setColor(QPalette::ToolTipBase, base);
    p.setColor(QPalette::ToolTipText, text);
    p.setColor(QPalette::Highlight, QColor(0x2f, 0x6f, 0xb3));
    p.setColor(QPalette::HighlightedText, Qt::white);
    p.setColor(QPalette::Mid, mid);
    p.setColor(QPalette::Midlight, QColor(0x3a, 0x3c, 0x41));
    p.setColor(QPalette::PlaceholderText, mid);
    p.setColor(QPalette::Disabled, QPalette::Text, mid);
    p.setColor(QPalette::Disabled, QPalette::ButtonText, mid);
  } else {
    p = QApplication::style()->standardPalette();
  }
  QApplication::setPalette(p);
}

int run_workbench(int argc, char** argv) {
  initLetheResources();
  QApplication app(argc, argv);
  QApplication::setWindowIcon(QIcon(":/lethe/lethe.svg"));
  QApplication::setOrganizationName("Lethe");
  QApplication::setApplicationName("lethe-workbench");
  QApplication::setApplicationVersion(QString::fromStdString(lethe::runtime_info().lethe_version));
  lethe::init_threads();

  QCommandLineParser parser;
  parser.setApplicationDescription("Lethe — a workbench for machine unlearning in large language models");
  parser.addHelpOption();
  parser.addVersionOption();
  QCommandLineOption selfCheck("self-check", "Exercise libtorch, sentencepiece and sqlite, show the window, exit.");
  parser.addOption(selfCheck);
  QCommandLineOption storeOpt("store", "The experiment store (default: $LETHE_STORE or ~/.local/share/lethe/lethe.db).", "DB");
  parser.addOption(storeOpt);
  QCommandLineOption paletteOpt("palette", "dark, light or system (default).", "NAME", "system");
  parser.addOption(paletteOpt);
  parser.addPositionalArgument("MODEL_DIR|SPEC.json", "A Hugging Face model folder or an experiment spec to open.",
                               "[MODEL_DIR | SPEC.json]");
  parser.process(app);

  if (parser.isSet(selfCheck)) {
    try {
      std::printf("%s\n", lethe::self_check().c_str());
    } catch (const std::exception& e) {
      std::fprintf(stderr, "lethe-workbench: self-check failed: %s\n", e.what());
      return 1;
    }
  }

  apply_palette(parser.value(paletteOpt));
  MainWindow window;
  window.show();
  if (parser.isSet(storeOpt)) window.setStorePath(parser.value(storeOpt));
  const QStringList args = parser.positionalArguments();
  if (!args.isEmpty()) {
    if (args.first().endsWith(".json", Qt::CaseInsensitive)) window.openSpec(args.first());
    else window.openModel(args.first());
  }

  if (parser.isSet(selfCheck)) {
    QTimer::singleShot(0, &app, [&] {
      std::printf("lethe-workbench: window shown with %d docks; %s\n", static_cast<int>(window.docks().size()),
                  lethe::runtime_summary().c_str());
      app.quit();
    });
  }
  return app.exec();
}

}  // namespace lethe::ui
