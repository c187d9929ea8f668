#pragma once
// Where Lethe keeps the user's data and where it finds its own shipped data. Torch-free.
#include <filesystem>

namespace lethe {

// $XDG_DATA_HOME/lethe when XDG_DATA_HOME is set and absolute (the XDG Base Directory spec says
// a relative value is invalid and must be ignored), else $HOME/.local/share/lethe. Throws
// lethe::Error when neither is usable. Creates nothing.
std::filesystem::path data_home();

// data_home()/runs: where runs write their outputs unless a spec names another folder.
std::filesystem::path runs_home();

// The folder holding Lethe's shipped data, laid out like the source tree (resources/presets,
// resources/demo, datasets/demo), so preset-relative paths resolve the same everywhere:
// $LETHE_DATA_DIR if set; else, from the running executable (/proc/self/exe), <exe dir>/../..
// when that is a source tree (a build in build/<dir>/), else the installed <exe dir>/../share/lethe.
// Throws lethe::Error naming every place looked at when none holds resources/presets.
std::filesystem::path resources_dir();

}  // namespace lethe
