#pragma once
// Where Lethe keeps the user's data and where it finds its own shipped data. Torch-free.
#include <filesystem>
#include <string>
#include <vector>

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

// Checks, before any work, that `file` can be written as an output: not a folder, not an existing
// file unless `overwrite`, in an existing folder this process can create files in. Throws
// lethe::Error starting with `option file` ("--out x.json: exists; --overwrite replaces it").
void check_output_file(const std::filesystem::path& file, bool overwrite, const std::string& option = "--out");

// Checks, before any work, that `folder` can take a command's output: a folder or nothing yet
// (created later), inside a place this process can write, not one of `inputs` (a model would be
// overwritten by its own output), and empty unless `overwrite` (what is there would be mixed with
// or replaced by the new output). Throws lethe::Error starting with `option folder`.
void check_output_folder(const std::filesystem::path& folder, bool overwrite, const std::vector<std::filesystem::path>& inputs,
                         const std::string& option = "--out");

// True when this process can create a file in `folder` (it tries: permission bits say nothing
// for root, read-only mounts or /proc).
bool can_create_in(const std::filesystem::path& folder);

}  // namespace lethe
