#pragma once
// lethe-workbench's start-up: the application object, command-line handling, the main window.
#include <QString>

namespace lethe::ui {

// lethe-workbench [MODEL_DIR] [--self-check]
//   MODEL_DIR      open this Hugging Face model folder at start
//   --self-check   exercise libtorch, sentencepiece and sqlite in this process, show the window,
//                  process events once and exit (0 on success): catches load-time clashes
int run_workbench(int argc, char** argv);

// "dark", "light" (Fusion with a matching palette) or "system" (leave the platform's).
void apply_palette(const QString& name);

}  // namespace lethe::ui
