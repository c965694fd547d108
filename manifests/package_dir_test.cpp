#include "manifests/package_dir.hpp"
#include "tests/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <fstream>
#include <random>
#include <string>

using namespace troupe::manifests;
namespace fs = std::filesystem;

using troupe::testing::temp_dir;

namespace {

void write(const fs::path& file, const std::string& bytes) {
  fs::create_directories(file.parent_path());
  std::ofstream(file, std::ios::binary) << bytes;
}

const std::string manifest_text =
    "package: encoder\nversion: 2.0.0\nlibrary: lib/libencoder.so\nactors: { Morse: {} }\n";

// A valid package in its own directory: pkg/manifest.yaml, pkg/lib/libencoder.so.
fs::path make_package(const temp_dir& t, const std::string& library_bytes =
                                             "\x7f"
                                             "ELF v1") {
  const fs::path root = t.path / "pkg";
  write(root / "manifest.yaml", manifest_text);
  write(root / "lib" / "libencoder.so", library_bytes);
  return root;
}

}  // namespace

TEST_CASE("sha256_hex matches the standard test vectors", "[package_dir]") {
  CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  temp_dir t;
  write(t.path / "f", std::string(200000, 'a'));  // more than one read chunk
  CHECK(*sha256_file_hex(t.path / "f") == sha256_hex(std::string(200000, 'a')));
  CHECK(sha256_file_hex(t.path / "nope").err().code == troupe::errc::io);
}

TEST_CASE("a valid package directory opens with its manifest, paths and id", "[package_dir]") {
  temp_dir t;
  const fs::path root = make_package(t);
  auto p = open_package_dir(root);
  INFO((p.ok() ? std::string() : p.err().message));
  REQUIRE(p.ok());
  CHECK(p->m.package == "encoder");
  CHECK(p->root == fs::canonical(root));
  CHECK(p->library == fs::canonical(root / "lib" / "libencoder.so"));
  CHECK(p->lib_dir == fs::canonical(root) / "lib");
  CHECK(p->id == sha256_hex(manifest_text + "\x7f"
                                            "ELF v1"));
}

TEST_CASE("the package id is stable and changes with one library byte", "[package_dir]") {
  temp_dir t;
  const fs::path root = make_package(t);
  const std::string first = open_package_dir(root)->id;
  CHECK(open_package_dir(root)->id == first);
  write(root / "lib" / "libencoder.so",
        "\x7f"
        "ELF v2");
  CHECK(open_package_dir(root)->id != first);
}

TEST_CASE("a directory without manifest.yaml is an error naming the path", "[package_dir]") {
  temp_dir t;
  auto p = open_package_dir(t.path);
  REQUIRE_FALSE(p.ok());
  CHECK(p.err().code == troupe::errc::not_found);
  CHECK_THAT(p.err().message, Catch::Contains((fs::canonical(t.path) / "manifest.yaml").string()));
  CHECK(open_package_dir(t.path / "missing").err().code == troupe::errc::not_found);
}

TEST_CASE("manifest errors name the manifest file", "[package_dir]") {
  temp_dir t;
  write(t.path / "manifest.yaml", "package: p\n");
  auto p = open_package_dir(t.path);
  REQUIRE_FALSE(p.ok());
  CHECK(p.err().message == (fs::canonical(t.path) / "manifest.yaml").string() + ": version: missing (required)");
}

TEST_CASE("a missing library is an error naming its path", "[package_dir]") {
  temp_dir t;
  const fs::path root = make_package(t);
  fs::remove(root / "lib" / "libencoder.so");
  auto p = open_package_dir(root);
  REQUIRE_FALSE(p.ok());
  CHECK(p.err().code == troupe::errc::not_found);
  CHECK_THAT(p.err().message, Catch::Contains("lib/libencoder.so"));
}

TEST_CASE("a library symlink that escapes the directory is refused", "[package_dir]") {
  temp_dir t;
  const fs::path root = make_package(t);
  write(t.path / "outside.so",
        "\x7f"
        "ELF outside");
  fs::remove(root / "lib" / "libencoder.so");
  fs::create_symlink(t.path / "outside.so", root / "lib" / "libencoder.so");
  auto p = open_package_dir(root);
  REQUIRE_FALSE(p.ok());
  CHECK(p.err().code == troupe::errc::refused);
  CHECK_THAT(p.err().message, Catch::Contains("outside the package directory"));
}

TEST_CASE("a library symlink within the directory is followed", "[package_dir]") {
  temp_dir t;
  const fs::path root = make_package(t);
  fs::rename(root / "lib" / "libencoder.so", root / "lib" / "libencoder.so.2");
  fs::create_symlink("libencoder.so.2", root / "lib" / "libencoder.so");
  auto p = open_package_dir(root);
  REQUIRE(p.ok());
  CHECK(p->library.filename() == "libencoder.so.2");
}

TEST_CASE("a library that is a directory is refused", "[package_dir]") {
  temp_dir t;
  const fs::path root = make_package(t);
  fs::remove(root / "lib" / "libencoder.so");
  fs::create_directories(root / "lib" / "libencoder.so");
  CHECK(open_package_dir(root).err().code == troupe::errc::refused);
}
