// bench/signed_packages.cpp — the signed package archives a bench run loads:
// a key pair made for the run and trusted by the run's system, and archives
// packed with manifests::pack_package from the bench package the build made.
#include "bench/bench.hpp"

#include "manifests/archive.hpp"

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

namespace troupe::bench {

namespace fs = std::filesystem;

namespace {

/// A packing input: dir/manifest.yaml with text, beside a symlink to library.
void make_input(const fs::path& dir, const fs::path& library, const std::string& manifest) {
  fs::create_directories(dir);
  fs::create_symlink(library, dir / library.filename());
  std::ofstream out(dir / "manifest.yaml");
  out << manifest;
  if (!out) throw bench_error("cannot write " + (dir / "manifest.yaml").string());
}

std::string small_manifest(const std::string& group, const std::string& actors) {
  return "package: " + group + "\nversion: 1.0.0\nlibrary: libtroupebench.so\nactors:\n" + actors;
}

manifests::signing_key make_key(const fs::path& home) {
  const fs::path base = home / "signing" / "bench";
  fs::create_directories(base.parent_path());
  if (auto s = manifests::generate_key_pair(base); !s) throw bench_error("signing key: " + s.err().message);
  auto key = manifests::signing_key::read(base.string() + ".key");
  if (!key) throw bench_error("signing key: " + key.err().message);
  // The system re-reads HOME/keys at every verification: trusted from now on.
  fs::create_directories(home / "keys");
  fs::copy_file(base.string() + ".pub", home / "keys" / "bench.pub", fs::copy_options::overwrite_existing);
  return std::move(*key);
}

}  // namespace

bench_packages::bench_packages(const std::string& home, const std::string& package_dir)
    : home_(home),
      package_dir_(package_dir),
      library_((fs::path(package_dir) / "libtroupebench.so").string()),
      key_(make_key(home)) {
  if (!fs::exists(library_)) throw bench_error(library_ + " not found (build target troupebench)");
  const fs::path h(home);
  // The build's directory is packed as it is (its manifest names group
  // "bench"); the one-off groups get manifests of their own.
  make_input(h / "in-fresh", library_, small_manifest("benchfresh", "  Spawner: {}\n  Idle: {}\n"));
  make_input(h / "in-big", library_, small_manifest("benchbig", "  Spawner: {}\n"));
  make_input(h / "in-phoenix", library_,
             small_manifest("benchphoenix",
                            "  Idle: { restart: { policy: permanent, max_restarts: 1000, within: 60s, "
                            "backoff: 0ms } }\n"));
  // Placement by capabilities: a manifest variant, so that group "bench"
  // (every other figure) has no requirements.
  make_input(h / "in-conv", library_,
             small_manifest("benchconv",
                            "  Where: { requires: { bench_cap: true } }\n"
                            "  Pinger: { requires: { side_a: true } }\n"
                            "  Blaster: { requires: { side_a: true } }\n"
                            "  Ponger: { requires: { side_b: true } }\n"
                            "  Idle: {}\n"));
  fs::create_directories(h / "outbox");

  // Incompressible, so that the archive is as large on disk as in the tar
  // (the tar is not compressed anyway). The margin covers the tar headers
  // and the record padding of the tar writer.
  constexpr std::uint64_t tar_margin = 24 * 1024;
  const std::uint64_t library_bytes = fs::file_size(library_);
  if (library_bytes + tar_margin >= big_archive_bytes)
    throw bench_error(library_ + " is already over " + std::to_string(big_archive_bytes) + " bytes");
  std::string bytes(big_archive_bytes - library_bytes - tar_margin, '\0');
  std::mt19937_64 rng(20240607);
  for (std::size_t i = 0; i + 8 <= bytes.size(); i += 8) {
    const std::uint64_t r = rng();
    for (std::size_t b = 0; b < 8; ++b) bytes[i + b] = static_cast<char>((r >> (8 * b)) & 0xff);
  }
  fs::create_directories(h / "big-ballast");
  ballast_ = (h / "big-ballast" / "ballast.bin").string();
  std::ofstream(ballast_, std::ios::binary) << bytes;
  if (fs::file_size(ballast_) != bytes.size()) throw bench_error("cannot write " + ballast_);
}

std::string bench_packages::pack(const std::string& manifest_dir, const std::string& version,
                                 const std::vector<std::string>& private_files) const {
  manifests::pack_request req;
  req.manifest = fs::path(manifest_dir) / "manifest.yaml";
  req.version = version;
  for (const auto& f : private_files) req.private_libraries.emplace_back(f);
  req.output = fs::path(home_) / "outbox";
  auto r = manifests::pack_package(req, key_);
  if (!r) throw bench_error("pack " + req.manifest.string() + ": " + r.err().message);
  return r->file.string();
}

std::string bench_packages::bench(const std::string& version) const { return pack(package_dir_, version, {}); }

std::string bench_packages::fresh(int i) const {
  return pack((fs::path(home_) / "in-fresh").string(), "1.0." + std::to_string(i), {});
}

std::string bench_packages::phoenix() const { return pack((fs::path(home_) / "in-phoenix").string(), "1.0.0", {}); }

std::string bench_packages::convention(const std::string& version) const {
  return pack((fs::path(home_) / "in-conv").string(), version, {});
}

std::string bench_packages::big(int major, int i, std::uint64_t archive_bytes, bool same_bytes) const {
  constexpr std::uint64_t tar_margin = 24 * 1024;
  const std::uint64_t library_bytes = fs::file_size(library_);
  if (library_bytes + tar_margin >= archive_bytes) throw bench_error("archive size too small for " + library_);
  const fs::path dir = fs::path(home_) / "big-ballast" /
                       (std::to_string(archive_bytes) + "-" + (same_bytes ? std::string("same") : std::to_string(i)));
  const fs::path file = dir / "ballast.bin";
  if (!fs::exists(file)) {
    std::string bytes(archive_bytes - library_bytes - tar_margin, '\0');
    std::mt19937_64 rng(same_bytes ? 7 : 1000 + static_cast<std::uint64_t>(major) * 100000 + i);
    for (std::size_t b = 0; b + 8 <= bytes.size(); b += 8) {
      const std::uint64_t r = rng();
      std::memcpy(bytes.data() + b, &r, 8);
    }
    fs::create_directories(dir);
    std::ofstream(file, std::ios::binary) << bytes;
    if (fs::file_size(file) != bytes.size()) throw bench_error("cannot write " + file.string());
  }
  std::string archive =
      pack((fs::path(home_) / "in-big").string(), std::to_string(major) + ".0." + std::to_string(i), {file.string()});
  if (!same_bytes) fs::remove_all(dir);  // packed: its bytes live on in the archive
  return archive;
}

std::string bench_packages::big(int i) const {
  return pack((fs::path(home_) / "in-big").string(), "1.0." + std::to_string(i), {ballast_});
}

}  // namespace troupe::bench
