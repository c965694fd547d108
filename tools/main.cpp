// troupe: the operator's command line. See docs/OPERATIONS.md.
#include "tools/cli.hpp"

#include <unistd.h>

#include <climits>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  char self[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  const std::string self_path = n > 0 ? std::string(self, static_cast<std::size_t>(n)) : argv[0];
  return troupe::tools::run_cli(std::vector<std::string>(argv + 1, argv + argc), self_path);
}
