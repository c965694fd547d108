// manifests/wheel.hpp — pure-Python wheels (.whl, PEP 427) unpacked into a
// python package's site-packages/ at pack time (`troupe pack --wheel`).
//
// A wheel is a zip. read_wheel checks it the way a careful installer does
// before anything of it is used: the file name's tag and the WHEEL metadata
// say pure Python (py3-none-any, Root-Is-Purelib: true), every entry is a
// regular file at a plain relative path, every file matches its RECORD hash,
// and .data/ holds nothing but purelib/ (moved to the root, as pip does).
// The *.dist-info directory is kept, so importlib.metadata finds the
// distribution in the package's site-packages/.
//
// Every function is safe from any thread (no shared state).
#pragma once

#include "manifests/archive.hpp"

#include <troupe/result.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace troupe::manifests {

struct wheel_contents {
  std::string distribution;  ///< as the file name spells it ("attrs")
  std::string canonical;     ///< PEP 503 normalised, for comparing ("foo-bar")
  std::string version;
  /// Regular files only, paths relative to site-packages/, sorted.
  std::vector<pack_entry> files;
  std::uint64_t bytes = 0;  ///< sum of the files' sizes
};

/// Reads and checks a wheel. limits bound the wheel file (max_archive_bytes),
/// the bytes it unpacks to (max_extracted_bytes, counted while inflating, not
/// taken from the zip's headers) and its entries (max_entries). Every error
/// is one line starting with the wheel's path.
[[nodiscard]] result<wheel_contents> read_wheel(const std::filesystem::path& wheel, const archive_limits& limits = {});

/// The PEP 503 form of a distribution name: lower case, runs of -_. as one -.
[[nodiscard]] std::string canonical_distribution(std::string_view name);

/// "sha256=<urlsafe base64 without padding>" of bytes: a RECORD row's hash.
[[nodiscard]] std::string record_hash(std::string_view bytes);

}  // namespace troupe::manifests
