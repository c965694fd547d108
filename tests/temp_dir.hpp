// tests/temp_dir.hpp — a fresh directory for one test, made by mkdtemp under
// /tmp (short: ipc:// paths inside must stay under 107 bytes) and removed
// with everything in it afterwards, read-only package extractions included.
// Header-only; used by the unit tests of several components.
#pragma once

#include <catch2/catch.hpp>

#include <stdlib.h>

#include <filesystem>
#include <string>
#include <system_error>

namespace troupe::testing {

struct temp_dir {
  std::filesystem::path path;

  explicit temp_dir(const std::string& prefix = "troupe-test") {
    std::string tmpl = "/tmp/" + prefix + ".XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) FAIL("mkdtemp failed for " << tmpl);
    path = tmpl;
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  ~temp_dir() {
    namespace fs = std::filesystem;
    std::error_code ec;
    for (fs::recursive_directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec))
      if (it->is_directory() && !it->is_symlink())
        fs::permissions(it->path(), fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(path, ec);
  }
};

}  // namespace troupe::testing
