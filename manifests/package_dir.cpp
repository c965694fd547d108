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

// A python package directory: its module must be there; its id covers
// every file of the directory (by path, in order), since any may be imported.
result<package_info> open_python_dir(const fs::path& root, manifest m, const std::string& manifest_bytes) {
  fs::path module_file;
  for (const auto& file : module_files(m.module)) {
    std::error_code ec;
    if (module_file.empty() && fs::is_regular_file(root / file, ec)) module_file = root / file;
  }
  if (module_file.empty())
    return make_error(errc::not_found, (root / module_files(m.module)[0]).string() + ": module " + m.module +
                                           " named in manifest.yaml not found");
  sha256 id;
  id.update(manifest_bytes);
  std::vector<fs::path> files;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    const auto name = it->path().filename().string();
    if (name == "__pycache__") {
      it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file() && it->path() != root / "manifest.yaml" && !name.ends_with(".pyc"))
      files.push_back(it->path());
  }
  if (ec) return make_error(errc::io, root.string() + ": cannot list (" + ec.message() + ")");
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    id.update(fs::relative(f, root).generic_string());
    id.update(std::string_view("\0", 1));
    if (auto s = id.update_file(f); !s) return s.err();
  }
  return package_info{id.finish_hex(), std::move(m), root, module_file, root / "lib"};
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
  if (m->runtime == runtime_kind::python) return open_python_dir(root, std::move(*m), *bytes);
  auto library = resolve_library(root, m->library);
  if (!library) return library.err();

  sha256 id;
  id.update(*bytes);
  if (auto s = id.update_file(*library); !s) return s.err();
  return package_info{id.finish_hex(), std::move(*m), root, std::move(*library), root / "lib"};
}

}  // namespace troupe::manifests
