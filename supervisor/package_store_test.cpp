// How a load keeps an archive: by a link to the inode verified, never a
// byte of a file that does not verify, the read buffer handed back.
#include "supervisor/package_store.hpp"

#include "manifests/signing.hpp"
#include "tests/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <sys/stat.h>

namespace fs = std::filesystem;
using namespace troupe;
using namespace troupe::supervisor;
using troupe::testing::slurp;
using troupe::testing::temp_dir;
using troupe::testing::write;

namespace {

struct store_fixture {
  temp_dir t;
  package_store store = store_in(t.path / "home");
  fs::path outbox = t.path / "outbox";

  store_fixture() {
    REQUIRE(prepare(store).ok());
    REQUIRE(manifests::generate_key_pair(t.path / "dev").ok());
    fs::copy_file(t.path / "dev.pub", store.keys / "dev.pub");
    write(t.path / "pkg" / "manifest.yaml", "package: enc\nversion: 1.0.0\nlibrary: lib/libenc.so\nactors:\n  A: {}\n");
    write(t.path / "pkg" / "lib" / "libenc.so",
          "\x7f"
          "ELF enc");
  }

  fs::path pack(const std::string& version) {
    auto key = manifests::signing_key::read(t.path / "dev.key");
    REQUIRE(key.ok());
    fs::create_directories(outbox);
    manifests::pack_request req{t.path / "pkg" / "manifest.yaml", version, {}, outbox, {}};
    auto r = manifests::pack_package(req, *key);
    REQUIRE(r.ok());
    return r->file;
  }

  static ino_t inode(const fs::path& p) {
    struct stat st {};
    REQUIRE(::stat(p.c_str(), &st) == 0);
    return st.st_ino;
  }
};

}  // namespace

TEST_CASE("a verified archive is kept by a link to the file read, its bytes in the buffer given", "[package_store]") {
  store_fixture f;
  const fs::path file = f.pack("1.2.3");
  std::string buffer;
  buffer.reserve(1 << 20);
  const auto* memory = buffer.data();
  bool copied = false;
  auto a = verify_and_keep(f.store, file, &copied, &buffer);
  INFO((a ? std::string() : a.err().message));
  REQUIRE(a.ok());
  CHECK(copied);
  CHECK(fs::path(a->source) == f.store.packages / "enc-1.2.3.tpkg");
  CHECK(store_fixture::inode(a->source) == store_fixture::inode(file));  // one file system here: a link
  CHECK(a->payload.data() == memory);                                    // read into the buffer, then moved
  CHECK(a->payload + a->trailer == slurp(file));

  SECTION("loading it again keeps nothing new") {
    bool again = true;
    REQUIRE(verify_and_keep(f.store, file, &again).ok());
    CHECK_FALSE(again);
  }
}

TEST_CASE("a file that does not verify leaves nothing in the package directory", "[package_store]") {
  store_fixture f;
  const fs::path file = f.pack("1.2.3");
  std::string bytes = slurp(file);
  bytes[bytes.size() / 2] ^= 1;
  write(f.outbox / "bad.tpkg", bytes);
  auto a = verify_and_keep(f.store, f.outbox / "bad.tpkg");
  REQUIRE_FALSE(a.ok());
  CHECK(a.err().message.find("modified after signing") != std::string::npos);
  CHECK(fs::is_empty(f.store.packages));
}
