#include "base/files.hpp"

#include "tests/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <filesystem>

using namespace troupe::base;
namespace fs = std::filesystem;

TEST_CASE("a file written atomically has its mode and leaves no temporary behind", "[files]") {
  troupe::testing::temp_dir dir;
  const fs::path f = dir.path / "key";
  REQUIRE(write_file_atomically(f, "secret", 0600));
  auto back = read_regular_file(f, 100);
  REQUIRE(back);
  CHECK(back->bytes == "secret");
  CHECK((back->mode & 0777) == 0600);
  REQUIRE(write_file_atomically(f, "other", 0644));
  CHECK(read_regular_file(f, 100)->bytes == "other");
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir.path)) ++n;
  CHECK(n == 1);
}

TEST_CASE("a failed atomic write leaves nothing behind", "[files]") {
  troupe::testing::temp_dir dir;
  auto s = write_file_atomically(dir.path / "missing" / "f", "x", 0600);
  REQUIRE_FALSE(s);
  CHECK(s.err().code == troupe::errc::io);
}

TEST_CASE("reading refuses FIFOs without waiting, directories, and files over the limit", "[files]") {
  troupe::testing::temp_dir dir;
  const fs::path fifo = dir.path / "fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  auto r = read_regular_file(fifo, 100);
  REQUIRE_FALSE(r);
  CHECK(r.err().code == troupe::errc::refused);
  CHECK(r.err().message == fifo.string() + ": not a regular file");
  CHECK(read_regular_file(dir.path, 100).err().code == troupe::errc::refused);
  REQUIRE(write_file_atomically(dir.path / "big", std::string(101, 'x'), 0600));
  auto big = read_regular_file(dir.path / "big", 100);
  REQUIRE_FALSE(big);
  CHECK(big.err().message == (dir.path / "big").string() + ": is 101 bytes, over the limit of 100");
  CHECK(read_regular_file(dir.path / "absent", 100).err().code == troupe::errc::not_found);
}
