// lethe: the command line. See cli.h for the command table and the exit-code policy.
#include <string>
#include <vector>

#include "cli.h"

int main(int argc, char** argv) { return lethe::cli::run(std::vector<std::string>(argv + 1, argv + argc)); }
