// lethe-workbench: the Qt desktop workbench. All start-up lives in lethe_ui.
#include "workbench_app.h"

int main(int argc, char** argv) { return lethe::ui::run_workbench(argc, argv); }
