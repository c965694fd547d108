#include "manifests/package_dir.hpp"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <system_error>

namespace troupe::manifests {

namespace {

namespace fs = std::filesystem;

result<std::string> read_manifest(const fs::path& file) {
  std::error_code ec;
  const auto size = fs::file_size(file, ec);
  if (ec) return make_error(errc::not_found, file.string() + ": no manifest (" + ec.message() + ")");
  if (size > max_manifest_bytes) return make_error(errc::invalid_argument, file.string() + ": larger than 1 MiB");
  std::ifstream in(file, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in && !in.eof()) return make_error(errc::io, file.string() + ": read failed");
  return bytes;
}

bool inside(const fs::path& root, const fs::path& p) {
  auto [r, q] = std::mismatch(root.begin(), root.end(), p.begin(), p.end());
  return r == root.end() && q != p.end();
}

// The library, symlinks resolved, as a regular file inside root.
result<fs::path> resolve_library(const fs::path& root, const std::string& library) {
  const fs::path named = root / library;
  std::error_code ec;
  fs::path real = fs::canonical(named, ec);
  if (ec) return make_error(errc::not_found, named.string() + ": library named in manifest.yaml not found");
  if (!inside(root, real))
    return make_error(errc::refused,
                      named.string() + ": library resolves to " + real.string() + ", outside the package directory");
  if (!fs::is_regular_file(real, ec))
    return make_error(errc::refused, named.string() + ": library is not a regular file");
  return real;
}

}  // namespace

result<package_info> open_package_dir(const fs::path& dir) {
  std::error_code ec;
  const fs::path root = fs::canonical(dir, ec);
  if (ec || !fs::is_directory(root, ec))
    return make_error(errc::not_found, dir.string() + ": no such package directory");
  const fs::path manifest_file = root / "manifest.yaml";
  auto bytes = read_manifest(manifest_file);
  if (!bytes) return bytes.err();
  auto m = parse_manifest(*bytes, manifest_file.string());
  if (!m) return m.err();
  auto library = resolve_library(root, m->library);
  if (!library) return library.err();

  sha256 id;
  id.update(*bytes);
  if (auto s = id.update_file(*library); !s) return s.err();
  return package_info{id.finish_hex(), std::move(*m), root, std::move(*library), root / "lib"};
}

}  // namespace troupe::manifests
