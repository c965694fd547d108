// supervisor/dashboard_assets.hpp — the dashboard's page, script and style
// (supervisor/dashboard/), built into the binary: cmake/embed_assets.cmake
// writes their bytes into dashboard_assets.cpp at build time, so the daemon
// serves them without reading a file or reaching a network.
#pragma once

#include <string_view>
#include <vector>

namespace troupe::supervisor {

struct dashboard_asset {
  const char* path;          ///< "/index.html", "/app.js", ...
  const char* content_type;  ///< by its extension
  std::string_view bytes;
};

/// Every asset, in the order of supervisor/CMakeLists.txt.
[[nodiscard]] const std::vector<dashboard_asset>& dashboard_assets();

}  // namespace troupe::supervisor
