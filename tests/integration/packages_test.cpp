// Signed packages against a real system: every refusal of docs/OPERATIONS.md
// §5 made with a real tampered or malformed archive, each leaving the
// running system untouched; directory packages only with --unsigned on a
// system started with --allow-unsigned; keygen, pack and inspect; and what a
// worker gets of its package (its private libraries, read-only files).
#include "manifests/archive.hpp"
#include "manifests/sha256.hpp"
#include "tests/integration/harness.hpp"

#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>
#include <string>
#include <thread>

namespace fs = std::filesystem;
using troupe::testing::check_one_line_failure;
using troupe::testing::json;
using troupe::testing::run_result;
using troupe::testing::test_system;
namespace manifests = troupe::manifests;

namespace {

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_all(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes;
}

/// The relay fixture as archive entries, to be altered by a test.
std::vector<manifests::pack_entry> relay_entries(std::string manifest_text = {}) {
  if (manifest_text.empty()) manifest_text = read_all(fs::path(TROUPE_RELAY_V1_DIR) / "manifest.yaml");
  return {
      {"manifest.yaml", manifests::entry_kind::file, manifest_text, {}, false},
      {"libfixture_relay_v1.so",
       manifests::entry_kind::file,
       read_all(fs::path(TROUPE_RELAY_V1_DIR) / "libfixture_relay_v1.so"),
       {},
       true},
  };
}

std::string dev_signed(const std::vector<manifests::pack_entry>& entries) {
  auto key = manifests::signing_key::read(TROUPE_DEV_KEY);
  REQUIRE(key);
  return manifests::sign_payload(manifests::write_tar(entries), *key);
}

/// The system still serves what it served, and nothing of a refused package
/// is left: the same packages listed, no archive added to its directory.
struct untouched_check {
  const test_system& sys;
  std::string morse;
  std::size_t archives_before = 0;

  explicit untouched_check(const test_system& s) : sys(s) {
    sys.load(TROUPE_ENCODERS_PKG);
    morse = sys.spawn({"Morse"});
    archives_before = count_archives();
  }
  [[nodiscard]] std::size_t count_archives() const {
    std::size_t n = 0;
    for (const auto& e : fs::directory_iterator(sys.home() / "packages")) n += e.path().extension() == ".tpkg";
    return n;
  }
  void verify() const {
    auto list = sys.run({"list", "--json"});
    REQUIRE(list.exit_code == 0);
    CHECK(json::parse(list.out).size() == 1);
    CHECK(count_archives() == archives_before);
    CHECK(sys.ask(morse, "sos") == json("... --- ..."));
    auto status = sys.run({"status", "--json"});
    REQUIRE(status.exit_code == 0);
    CHECK(json::parse(status.out)["workers"] == 1);
  }
};

}  // namespace

TEST_CASE("tampered, untrusted and malformed archives are refused with one line, system untouched",
          "[integration][packages][errors]") {
  test_system sys({"--max-package-size", "16M"});
  untouched_check untouched(sys);
  const fs::path craft = sys.home() / "craft";
  fs::create_directories(craft);
  const std::string good = read_all(TROUPE_RELAY_V1_PKG);
  REQUIRE(good.size() > 4096);

  fs::path bad = craft / "bad.tpkg";
  std::string expected;
  SECTION("unsigned: a plain tar") {
    write_all(bad, manifests::write_tar(relay_entries()));
    expected = "not signed";
  }
  SECTION("signed by a key the system does not trust") {
    REQUIRE(manifests::generate_key_pair(craft / "stranger"));
    auto key = manifests::signing_key::read(craft / "stranger.key");
    REQUIRE(key);
    write_all(bad, manifests::sign_payload(manifests::write_tar(relay_entries()), *key));
    expected = "unknown key " + key->pub().fingerprint;
  }
  SECTION("one byte flipped in the library") {
    std::string bytes = good;
    bytes[bytes.size() / 2] ^= 0x01;
    write_all(bad, bytes);
    expected = "modified after signing";
  }
  SECTION("one byte flipped in a tar header") {
    std::string bytes = good;
    bytes[10] ^= 0x20;
    write_all(bad, bytes);
    expected = "modified after signing";
  }
  SECTION("one byte flipped in the signature") {
    std::string bytes = good;
    bytes[bytes.size() - 10] ^= 0x01;
    write_all(bad, bytes);
    expected = "signature does not verify";
  }
  SECTION("truncated") {
    write_all(bad, good.substr(0, good.size() - 1000));
    expected = "truncated";
  }
  SECTION("an entry path escaping with ..") {
    auto entries = relay_entries();
    entries.push_back({"../escaped", manifests::entry_kind::file, "x", {}, false});
    write_all(bad, dev_signed(entries));
    expected = "escapes the package";
  }
  SECTION("an absolute entry path") {
    auto entries = relay_entries();
    entries.push_back({"/tmp/troupe-absolute", manifests::entry_kind::file, "x", {}, false});
    write_all(bad, dev_signed(entries));
    expected = "escapes the package";
  }
  SECTION("a symlink out of the package") {
    auto entries = relay_entries();
    entries.push_back({"lib/passwd", manifests::entry_kind::symlink, {}, "/etc/passwd", false});
    write_all(bad, dev_signed(entries));
    expected = "escapes the package";
  }
  SECTION("over the system's size limit") {
    auto entries = relay_entries();
    entries.push_back({"lib/ballast", manifests::entry_kind::file, std::string(17u << 20, 'x'), {}, false});
    write_all(bad, dev_signed(entries));
    expected = "over the limit";
  }
  SECTION("a manifest that fails its schema names the field") {
    write_all(bad, dev_signed(relay_entries("package: relay\nversion: 1.x\nlibrary: libfixture_relay_v1.so\n"
                                            "actors:\n  Relay: {}\n")));
    expected = "version: \"1.x\" is not a version";
  }
  SECTION("a manifest declaring an actor type the library does not register") {
    write_all(bad, dev_signed(relay_entries("package: relay\nversion: 1.0.0\nlibrary: libfixture_relay_v1.so\n"
                                            "actors:\n  Relay: {}\n  Phantom: {}\n")));
    expected = "does not register actor type Phantom";
  }
  SECTION("a FIFO, which the daemon must not wait on") {
    // Opening it blocked the daemon's loop until a writer came: every client stalled.
    REQUIRE(::mkfifo(bad.c_str(), 0600) == 0);
    expected = "not a regular file";
  }
  SECTION("a manifest naming a library the archive lacks") {
    write_all(bad, dev_signed(relay_entries("package: relay\nversion: 1.0.0\nlibrary: lib/missing.so\n"
                                            "actors:\n  Relay: {}\n")));
    expected = "lib/missing.so";
  }
  auto r = sys.run({"load", bad.string()});
  check_one_line_failure(r, 1);
  CHECK_THAT(r.err, Catch::Contains(expected));
  untouched.verify();
}

TEST_CASE("a FIFO among the kept archives is refused when loaded by group and skipped by avail",
          "[integration][packages][errors]") {
  test_system sys;
  untouched_check untouched(sys);
  const fs::path fifo = sys.home() / "packages" / "relay-9.0.0.tpkg";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  auto r = sys.run({"load", "relay"});
  check_one_line_failure(r, 1);
  CHECK_THAT(r.err, Catch::Contains("not a regular file"));
  CHECK(sys.run({"avail", "--json"}).exit_code == 0);
  fs::remove(fifo);
  untouched.verify();
}

TEST_CASE("keys are re-read at every load: trusting a key later makes its package load", "[integration][packages]") {
  test_system sys;
  const fs::path craft = sys.home() / "craft";
  fs::create_directories(craft);
  REQUIRE(manifests::generate_key_pair(craft / "team"));
  auto key = manifests::signing_key::read(craft / "team.key");
  REQUIRE(key);
  const fs::path pkg = craft / "relay-1.0.0.tpkg";
  write_all(pkg, manifests::sign_payload(manifests::write_tar(relay_entries()), *key));

  auto refused = sys.run({"load", pkg.string()});
  check_one_line_failure(refused, 1);
  CHECK_THAT(refused.err, Catch::Contains("unknown key") && Catch::Contains("trusted: dev"));

  fs::copy_file(craft / "team.pub", sys.home() / "keys" / "team.pub");
  auto loaded = sys.run({"load", pkg.string()});
  REQUIRE(loaded.exit_code == 0);
  CHECK_THAT(loaded.out, Catch::Contains("signed by team"));
  CHECK(loaded.last_line() == *manifests::sha256_file_hex(pkg));
}

TEST_CASE("directory packages load only with --unsigned on a system started with --allow-unsigned",
          "[integration][packages][errors]") {
  SECTION("a default system refuses them, even with --unsigned") {
    test_system sys;
    auto plain = sys.run({"load", TROUPE_ENCODERS_DIR});
    check_one_line_failure(plain, 1);
    CHECK_THAT(plain.err, Catch::Contains("directory package") && Catch::Contains("--unsigned"));
    auto flagged = sys.run({"load", "--unsigned", TROUPE_ENCODERS_DIR});
    check_one_line_failure(flagged, 1);
    CHECK_THAT(flagged.err, Catch::Contains("--allow-unsigned"));
    CHECK(json::parse(sys.run({"list", "--json"}).out).empty());
  }
  SECTION("an --allow-unsigned system still wants the flag, then loads it") {
    test_system sys({"--allow-unsigned"});
    auto plain = sys.run({"load", TROUPE_ENCODERS_DIR});
    check_one_line_failure(plain, 1);
    const std::string id = sys.load(TROUPE_ENCODERS_DIR, {"--unsigned"});
    auto list = json::parse(sys.run({"list", "--json"}).out);
    REQUIRE(list.size() == 1);
    CHECK(list[0]["id"] == id);
    CHECK(list[0]["signer"].is_null());
    CHECK(sys.ask(sys.spawn({"Rot13"}), "abc") == json("nop"));
  }
}

TEST_CASE("keygen, pack and inspect from the command line", "[integration][packages][cli]") {
  test_system sys;
  const fs::path work = sys.home() / "work";
  fs::create_directories(work);
  const std::string key = (work / "release").string();

  auto keygen = sys.run({"keygen", key});
  REQUIRE(keygen.exit_code == 0);
  CHECK(fs::exists(key + ".key"));
  CHECK(fs::exists(key + ".pub"));
  CHECK((fs::status(key + ".key").permissions() & fs::perms::group_read) == fs::perms::none);
  check_one_line_failure(sys.run({"keygen", key}), 1);  // never overwrites a key

  auto pack =
      sys.run({"pack", TROUPE_RELAY_V1_DIR, "--key", key + ".key", "--version", "date", "--out", work.string()});
  INFO(pack.err);
  REQUIRE(pack.exit_code == 0);
  const std::string id = pack.last_line();
  fs::path archive;
  for (const auto& e : fs::directory_iterator(work))
    if (e.path().extension() == ".tpkg") archive = e.path();
  CHECK(std::regex_match(archive.filename().string(), std::regex(R"(relay-20\d{10}\.tpkg)")));
  CHECK(id == *manifests::sha256_file_hex(archive));  // the id is the archive's SHA-256

  // Not trusted yet by this system's keys.
  auto untrusted = sys.run({"inspect", archive.string()});
  check_one_line_failure(untrusted, 1);
  CHECK_THAT(untrusted.err, Catch::Contains("unknown key"));

  fs::copy_file(key + ".pub", sys.home() / "keys" / "release.pub");
  auto inspect = sys.run({"inspect", archive.string()});
  REQUIRE(inspect.exit_code == 0);
  CHECK_THAT(inspect.out, Catch::Contains("verified with key release"));
  CHECK(inspect.last_line() == id);

  auto contents = sys.run({"inspect", archive.string(), "--contents"});
  REQUIRE(contents.exit_code == 0);
  CHECK_THAT(contents.out, Catch::Contains(" manifest.yaml") && Catch::Contains(" libfixture_relay_v1.so"));

  auto manifest = sys.run({"inspect", archive.string(), "manifest.yaml"});
  REQUIRE(manifest.exit_code == 0);
  CHECK_THAT(manifest.out, Catch::Contains("package: relay") && Catch::Contains("version: 20"));
  check_one_line_failure(sys.run({"inspect", archive.string(), "nothing.txt"}), 5);

  // Wrong arguments are usage errors.
  CHECK(sys.run({"pack", TROUPE_RELAY_V1_DIR}).exit_code == 2);  // no --key
  CHECK(sys.run({"inspect"}).exit_code == 2);
  // A version that does not parse is a wrong argument too (it exited 1, as a refused manifest, before).
  const auto bad_version = sys.run({"pack", TROUPE_RELAY_V1_DIR, "--key", key + ".key", "--version", "1.x"});
  CHECK(bad_version.exit_code == 2);
  CHECK_THAT(bad_version.err, Catch::StartsWith("troupe pack: --version takes X.Y.Z or date, not '1.x'"));
}

TEST_CASE("a worker gets its own package's read-only files and private libraries only", "[integration][packages]") {
  test_system sys;
  const std::string v1 = sys.load(TROUPE_CONFLICT_V1_PKG);
  const std::string v2 = sys.load(TROUPE_CONFLICT_V2_PKG);
  auto list = json::parse(sys.run({"list", "--json"}).out);
  REQUIRE(list.size() == 2);
  for (const auto& p : list) {
    const std::string id = p["id"];
    const fs::path root = sys.home() / "cache" / id;
    REQUIRE(p["worker_pid"].is_number());
    const int pid = p["worker_pid"];
    // Library path: links to this package's lib/ and root, nothing of the
    // other one (links, so that a standby worker can be given a package).
    const std::string env = read_all("/proc/" + std::to_string(pid) + "/environ");
    const auto at = env.find("LD_LIBRARY_PATH=");
    REQUIRE(at != std::string::npos);
    const std::string path = env.substr(at + 16, env.find('\0', at) - at - 16);
    const auto colon = path.find(':');
    REQUIRE(colon != std::string::npos);
    CHECK(fs::canonical(path.substr(0, colon)) == fs::canonical(root / "lib"));
    CHECK(fs::canonical(path.substr(colon + 1)) == fs::canonical(root));
    const std::string other = id == v1 ? v2 : v1;
    // The libcodec.so.1 mapped is this package's copy.
    const std::string maps = read_all("/proc/" + std::to_string(pid) + "/maps");
    CHECK_THAT(maps, Catch::Contains((root / "lib" / "libcodec.so.1").string()));
    CHECK_THAT(maps, !Catch::Contains(other));
    // Extracted once, read-only.
    struct stat st {};
    REQUIRE(::stat((root / "manifest.yaml").c_str(), &st) == 0);
    CHECK((st.st_mode & 0222) == 0);
    REQUIRE(::stat((root / "lib").c_str(), &st) == 0);
    CHECK((st.st_mode & 0222) == 0);
  }
}

TEST_CASE("a standby worker takes the next package; --standby 0 starts workers on demand", "[integration][packages]") {
  // The count once it settles: a load's replacement standby starts a moment
  // after the load is answered.
  auto standby = [](const test_system& sys) {
    int n = -1;
    troupe::testing::eventually(
        [&] {
          auto r = sys.run({"status", "--json"});
          REQUIRE(r.exit_code == 0);
          const auto s = json::parse(r.out);
          n = s["standby_workers"].get<int>();
          return n == s["standby_target"].get<int>();
        },
        std::chrono::seconds(10));
    return n;
  };
  SECTION("default: one standby, replaced once a load took it") {
    test_system sys;
    CHECK(standby(sys) == 1);
    sys.load(TROUPE_ENCODERS_PKG);
    CHECK(sys.ask(sys.spawn({"Morse"}), "sos") == json("... --- ..."));
    CHECK(standby(sys) == 1);
    CHECK_THAT(sys.log(),
               Catch::Contains("worker w1 is a standby") && Catch::Contains("worker w1 runs encoders 1.0.0"));
  }
  SECTION("none") {
    test_system sys({"--standby", "0"});
    CHECK(standby(sys) == 0);
    sys.load(TROUPE_ENCODERS_PKG);
    CHECK(sys.ask(sys.spawn({"Morse"}), "sos") == json("... --- ..."));
    CHECK(standby(sys) == 0);
  }
  SECTION("a wrong count is a usage error") {
    test_system sys;
    CHECK(sys.run({"start", "--port", "1", "--standby", "many"}).exit_code == 2);
  }
}
