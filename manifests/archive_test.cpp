#include "manifests/archive.hpp"

#include "manifests/sha256.hpp"
#include "tests/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

using namespace troupe::manifests;
using troupe::errc;
namespace fs = std::filesystem;

using troupe::testing::slurp;
using troupe::testing::temp_dir;
using troupe::testing::write;

namespace {

unsigned mode_of(const fs::path& file) {
  struct stat st {};
  REQUIRE(::lstat(file.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

const std::string manifest_text =
    "# The encoder package.\n"
    "package: encoder\n"
    "version: 0.0.1   # set by troupe pack\n"
    "library: lib/libencoder.so\n"
    "actors:\n"
    "  Morse: {}  # one actor\n";

const std::string library_bytes =
    "\x7f"
    "ELF encoder";

// A system's view: a key pair dev in keys/, a package directory pkg/ with a
// manifest, its library and one private library.
struct fixture {
  temp_dir t;
  fs::path keys = t.path / "keys";
  fs::path pkg = t.path / "pkg";
  std::optional<signing_key> key;
  key_ring ring;

  fixture() {
    fs::create_directories(keys);
    REQUIRE(generate_key_pair(keys / "dev").ok());
    auto k = signing_key::read(keys / "dev.key");
    REQUIRE(k.ok());
    key = std::move(*k);
    ring = read_key_ring(keys);
    write(pkg / "manifest.yaml", manifest_text);
    write(pkg / "lib" / "libencoder.so", library_bytes);
    fs::permissions(pkg / "lib" / "libencoder.so", fs::perms(0755));
    write(t.path / "deps" / "libcodec.so.1.2", "codec bytes");
    fs::create_symlink("libcodec.so.1.2", t.path / "deps" / "libcodec.so.1");
  }

  pack_request request(std::optional<std::string> version = "1.4.2") const {
    return pack_request{
        pkg / "manifest.yaml", std::move(version), {t.path / "deps" / "libcodec.so.1"}, t.path / "out.tpkg", {}};
  }

  // A signed archive from entries, as a package author with this key could make.
  std::string crafted(const std::vector<pack_entry>& entries) const { return sign_payload(write_tar(entries), *key); }

  // The error open_archive_bytes gives for bytes; fails the test if they open.
  troupe::error refusal(std::string bytes, const archive_limits& limits = {}) const {
    auto a = open_archive_bytes(std::move(bytes), "pkg.tpkg", ring, limits);
    if (a.ok()) FAIL("the archive opened");
    CHECK(a.err().message.find('\n') == std::string::npos);
    return a.err();
  }
};

const std::string valid_manifest =
    "package: encoder\nversion: 1.0\nlibrary: lib/libencoder.so\nactors: { Morse: {} }\n";

// The entries of a valid package, plus extra.
std::vector<pack_entry> valid_plus(std::vector<pack_entry> extra = {}) {
  std::vector<pack_entry> entries = {
      {"manifest.yaml", entry_kind::file, valid_manifest, "", false},
      {"lib/libencoder.so", entry_kind::file, library_bytes, "", true},
  };
  entries.insert(entries.end(), extra.begin(), extra.end());
  return entries;
}

pack_entry file_entry(std::string path, std::string content = "x") {
  return {std::move(path), entry_kind::file, std::move(content), "", false};
}
pack_entry link_entry(std::string path, std::string target) {
  return {std::move(path), entry_kind::symlink, "", std::move(target), false};
}

std::vector<std::string> paths_of(const package_archive& a) {
  std::vector<std::string> out;
  for (const auto& e : a.entries) out.push_back(e.path);
  return out;
}

}  // namespace

TEST_CASE("a packed archive opens with its id, signer, entries and manifest", "[archive]") {
  fixture f;
  auto packed = pack_package(f.request(), *f.key);
  INFO((packed ? std::string() : packed.err().message));
  REQUIRE(packed.ok());
  CHECK(packed->file == f.t.path / "out.tpkg");
  CHECK(packed->id == *sha256_file_hex(packed->file));
  CHECK(packed->m.package == "encoder");
  CHECK(packed->m.version.text == "1.4.2");

  auto a = open_archive(packed->file, f.ring);
  INFO((a ? std::string() : a.err().message));
  REQUIRE(a.ok());
  CHECK(a->id == packed->id);
  CHECK(a->source == packed->file.string());
  CHECK(a->signer.name == "dev");
  CHECK(a->signer.fingerprint == f.key->pub().fingerprint);
  CHECK(a->m == packed->m);
  CHECK(paths_of(*a) == std::vector<std::string>{"manifest.yaml", "lib/libencoder.so", "lib/libcodec.so.1"});
  CHECK(a->entries[1].kind == entry_kind::file);
  CHECK(a->entries[1].executable);
  CHECK(a->entries[1].size == library_bytes.size());
  CHECK_FALSE(a->entries[2].executable);
  CHECK(a->payload.size() + signature_trailer_bytes == fs::file_size(packed->file));
  CHECK(*read_entry(*a, "lib/libcodec.so.1") == "codec bytes");  // the symlink was followed
  CHECK(to_string(entry_kind::symlink) == std::string("symlink"));
}

TEST_CASE("pack replaces only the version's text, keeping comments", "[archive][pack]") {
  fixture f;
  auto packed = pack_package(f.request("2.0"), *f.key);
  REQUIRE(packed.ok());
  auto a = open_archive(packed->file, f.ring);
  REQUIRE(a.ok());
  std::string expected = manifest_text;
  expected.replace(expected.find("0.0.1"), 5, "2.0");
  CHECK(*read_entry(*a, "manifest.yaml") == expected);

  SECTION("a quoted version") {
    write(f.pkg / "manifest.yaml",
          "package: encoder\nversion: \"0.1\" # quoted\nlibrary: lib/libencoder.so\n"
          "actors: { Morse: {} }\n");
    auto p = pack_package(f.request("3"), *f.key);
    REQUIRE(p.ok());
    CHECK(*read_entry(*open_archive(p->file, f.ring), "manifest.yaml") ==
          "package: encoder\nversion: 3 # quoted\nlibrary: lib/libencoder.so\n"
          "actors: { Morse: {} }\n");
  }
  SECTION("a flow-style manifest") {
    write(f.pkg / "manifest.yaml",
          "{package: encoder, version: 0.1, library: lib/libencoder.so, actors: {Morse: {}}}\n");
    auto p = pack_package(f.request("4.5"), *f.key);
    REQUIRE(p.ok());
    CHECK(p->m.version.text == "4.5");
  }
  SECTION("no version in the manifest: a line is added") {
    write(f.pkg / "manifest.yaml", "package: encoder\nlibrary: lib/libencoder.so\nactors: { Morse: {} }  # end");
    auto p = pack_package(f.request("1.2"), *f.key);
    REQUIRE(p.ok());
    CHECK(*read_entry(*open_archive(p->file, f.ring), "manifest.yaml") ==
          "package: encoder\nlibrary: lib/libencoder.so\nactors: { Morse: {} }  # end\n"
          "version: 1.2\n");
  }
  SECTION("no version anywhere is the manifest's error") {
    write(f.pkg / "manifest.yaml", "package: encoder\nlibrary: lib/libencoder.so\nactors: { Morse: {} }\n");
    auto p = pack_package(f.request(std::nullopt), *f.key);
    REQUIRE_FALSE(p.ok());
    CHECK(p.err().message == (f.pkg / "manifest.yaml").string() + ": version: missing (required)");
  }
  SECTION("without a requested version the text is archived as is") {
    auto p = pack_package(f.request(std::nullopt), *f.key);
    REQUIRE(p.ok());
    CHECK(p->m.version.text == "0.0.1");
    CHECK(*read_entry(*open_archive(p->file, f.ring), "manifest.yaml") == manifest_text);
  }
  SECTION("a bad requested version is refused before anything is written") {
    auto p = pack_package(f.request("1.x"), *f.key);
    REQUIRE_FALSE(p.ok());
    CHECK(p.err().code == errc::invalid_argument);
    CHECK_THAT(p.err().message, Catch::StartsWith("version: \"1.x\" is not a version"));
  }
}

TEST_CASE("pack --version date gives the current UTC minute as YYYYMMDDHHMM", "[archive][pack]") {
  fixture f;
  auto stamp = [] {
    const std::time_t now = std::time(nullptr);
    std::tm utc{};
    ::gmtime_r(&now, &utc);
    char buf[16];
    std::strftime(buf, sizeof buf, "%Y%m%d%H%M", &utc);
    return std::string(buf);
  };
  const std::string before = stamp();
  auto p = pack_package(f.request("date"), *f.key);
  const std::string after = stamp();
  REQUIRE(p.ok());
  const std::string v = p->m.version.text;
  CHECK(v.size() == 12);
  CHECK(v.find_first_not_of("0123456789") == std::string::npos);
  CHECK(v >= before);
  CHECK(v <= after);
  CHECK(p->m.version.fields.size() == 1);
}

TEST_CASE("equal inputs and key give byte-identical archives", "[archive][pack]") {
  fixture f;
  auto one = pack_package(f.request(), *f.key);
  auto req = f.request();
  req.output = f.t.path / "two.tpkg";
  auto two = pack_package(req, *f.key);
  REQUIRE((one.ok() && two.ok()));
  CHECK(one->id == two->id);
  CHECK(slurp(one->file) == slurp(two->file));
}

TEST_CASE("pack into a directory names the file <package>-<version>.tpkg, leaving no temp file", "[archive][pack]") {
  fixture f;
  auto req = f.request();
  req.output = f.t.path / "repo";
  fs::create_directories(req.output);
  auto p = pack_package(req, *f.key);
  REQUIRE(p.ok());
  CHECK(p->file == req.output / "encoder-1.4.2.tpkg");
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(req.output)) names.push_back(e.path().filename());
  CHECK(names == std::vector<std::string>{"encoder-1.4.2.tpkg"});
}

TEST_CASE("pack refuses missing and clashing private libraries", "[archive][pack]") {
  fixture f;
  auto req = f.request();
  SECTION("a missing private library") {
    req.private_libraries = {f.t.path / "deps" / "libnope.so"};
    auto p = pack_package(req, *f.key);
    REQUIRE_FALSE(p.ok());
    CHECK(p.err().code == errc::not_found);
    CHECK_THAT(p.err().message, Catch::StartsWith((f.t.path / "deps" / "libnope.so").string()));
  }
  SECTION("a private library stored where the library is") {
    write(f.t.path / "deps" / "libencoder.so", "other");
    req.private_libraries = {f.t.path / "deps" / "libencoder.so"};
    auto p = pack_package(req, *f.key);
    REQUIRE_FALSE(p.ok());
    CHECK(p.err().code == errc::refused);
    CHECK(p.err().message == (f.t.path / "deps" / "libencoder.so").string() +
                                 ": would be stored as \"lib/libencoder.so\", which is the "
                                 "package's library");
  }
  SECTION("two private libraries with one file name") {
    write(f.t.path / "other" / "libcodec.so.1", "other");
    req.private_libraries.push_back(f.t.path / "other" / "libcodec.so.1");
    auto p = pack_package(req, *f.key);
    REQUIRE_FALSE(p.ok());
    CHECK(p.err().code == errc::refused);
  }
  SECTION("a missing library") {
    fs::remove(f.pkg / "lib" / "libencoder.so");
    auto p = pack_package(req, *f.key);
    REQUIRE_FALSE(p.ok());
    CHECK(p.err().code == errc::not_found);
    CHECK_THAT(p.err().message, Catch::StartsWith((f.pkg / "lib" / "libencoder.so").string()));
  }
  SECTION("a manifest failing its schema") {
    write(f.pkg / "manifest.yaml", "package: encoder\nversion: 1\nlibrary: l.so\nactors: {}\n");
    auto p = pack_package(req, *f.key);
    REQUIRE_FALSE(p.ok());
    CHECK(p.err().message == (f.pkg / "manifest.yaml").string() + ": actors: must list at least one actor type");
  }
  CHECK_FALSE(fs::exists(f.t.path / "out.tpkg"));
}

TEST_CASE("a deps file lists library paths relative to itself", "[archive][pack]") {
  temp_dir t;
  write(t.path / "d" / "deps.txt",
        "# private libraries\n\nlibcodec.so.1\n  /opt/lib/libz.so.1  \r\n   # indented comment\n"
        "sub/libx.so");
  auto deps = read_deps_file(t.path / "d" / "deps.txt");
  REQUIRE(deps.ok());
  CHECK(*deps ==
        std::vector<fs::path>{t.path / "d" / "libcodec.so.1", "/opt/lib/libz.so.1", t.path / "d" / "sub" / "libx.so"});
  CHECK(read_deps_file(t.path / "missing").err().code == errc::not_found);
}

TEST_CASE("a plain tar is refused as unsigned", "[archive][refusals]") {
  fixture f;
  const auto e = f.refusal(write_tar(valid_plus()));
  CHECK(e.code == errc::refused);
  CHECK(e.message == "pkg.tpkg: not signed (no signature trailer), or truncated");
  CHECK(f.refusal("").message == "pkg.tpkg: not signed (no signature trailer), or truncated");
}

TEST_CASE("an archive signed by an unknown key is refused naming the key", "[archive][refusals]") {
  fixture f;
  REQUIRE(generate_key_pair(f.t.path / "stranger").ok());
  auto stranger = signing_key::read(f.t.path / "stranger.key");
  REQUIRE(stranger.ok());
  const auto e = f.refusal(sign_payload(write_tar(valid_plus()), *stranger));
  CHECK(e.code == errc::refused);
  CHECK(e.message == "pkg.tpkg: signed by an unknown key " + stranger->pub().fingerprint + " (trusted: dev)");
  auto none = open_archive_bytes(sign_payload(write_tar(valid_plus()), *f.key), "p", key_ring{});
  REQUIRE_FALSE(none.ok());
  CHECK_THAT(none.err().message, Catch::EndsWith("(trusted: none)"));
}

TEST_CASE("one flipped byte anywhere is refused, with the check that caught it named", "[archive][refusals]") {
  fixture f;
  const std::string good = f.crafted(valid_plus());
  REQUIRE(open_archive_bytes(good, "pkg.tpkg", f.ring).ok());
  const std::size_t trailer = good.size() - signature_trailer_bytes;
  auto flip = [&](std::size_t at) {
    std::string bad = good;
    bad[at] = static_cast<char>(bad[at] ^ 0x01);
    return bad;
  };
  const std::string prefix = "pkg.tpkg: ";
  CHECK(f.refusal(flip(0)).message == prefix + "modified after signing");    // tar header: name
  CHECK(f.refusal(flip(148)).message == prefix + "modified after signing");  // header checksum
  CHECK(f.refusal(flip(trailer - 1)).message == prefix + "modified after signing");
  const auto content = good.find(library_bytes);
  REQUIRE(content < trailer);
  CHECK(f.refusal(flip(content + 3)).message == prefix + "modified after signing");
  CHECK(f.refusal(flip(trailer)).message == prefix + "not signed (no signature trailer), or truncated");
  CHECK(f.refusal(flip(trailer + 15)).message == prefix + "truncated or extended after signing");
  CHECK(f.refusal(flip(trailer + 8)).message == prefix + "truncated or extended after signing");
  CHECK(f.refusal(flip(trailer + 16)).message == prefix + "modified after signing");
  CHECK(f.refusal(flip(trailer + 47)).message == prefix + "modified after signing");
  CHECK_THAT(f.refusal(flip(trailer + 48)).message, Catch::StartsWith(prefix + "signed by an unknown key "));
  CHECK_THAT(f.refusal(flip(trailer + 79)).message, Catch::StartsWith(prefix + "signed by an unknown key "));
  CHECK(f.refusal(flip(trailer + 80)).message == prefix + "signature does not verify with key dev");
  CHECK(f.refusal(flip(good.size() - 1)).message == prefix + "signature does not verify with key dev");

  // And every other position: refused, never a crash.
  for (std::size_t at = 0; at < good.size(); ++at) {
    auto a = open_archive_bytes(flip(at), "pkg.tpkg", f.ring);
    if (a.ok() || a.err().code != errc::refused) FAIL("flipping byte " << at << " was not refused");
  }
}

TEST_CASE("a truncated or extended archive is refused", "[archive][refusals]") {
  fixture f;
  const std::string good = f.crafted(valid_plus());
  const std::string unsigned_msg = "pkg.tpkg: not signed (no signature trailer), or truncated";
  for (std::size_t len : {std::size_t{0}, std::size_t{1}, std::size_t{143}, std::size_t{144}, std::size_t{512},
                          good.size() / 2, good.size() - signature_trailer_bytes, good.size() - 100, good.size() - 1}) {
    INFO("length " << len);
    CHECK(f.refusal(good.substr(0, len)).message == unsigned_msg);
  }
  CHECK(f.refusal(good + "x").message == unsigned_msg);
  // The trailer intact but payload bytes cut out or added.
  std::string cut = good;
  cut.erase(10, 1);
  CHECK(f.refusal(cut).message == "pkg.tpkg: truncated or extended after signing");
  std::string grown = good;
  grown.insert(0, 512, '\0');
  CHECK(f.refusal(grown).message == "pkg.tpkg: truncated or extended after signing");
}

TEST_CASE("an archive over a limit is refused", "[archive][refusals]") {
  fixture f;
  const std::string good = f.crafted(valid_plus({file_entry("a"), file_entry("b")}));
  archive_limits limits;
  limits.max_archive_bytes = good.size() - 1;
  const auto size = f.refusal(good, limits);
  CHECK(size.code == errc::refused);
  CHECK(size.message ==
        "pkg.tpkg: is " + std::to_string(good.size()) + " bytes, over the limit of " + std::to_string(good.size() - 1));

  write(f.t.path / "big.tpkg", good);
  auto from_file = open_archive(f.t.path / "big.tpkg", f.ring, limits);
  REQUIRE_FALSE(from_file.ok());
  CHECK(from_file.err().message == (f.t.path / "big.tpkg").string() + ": is " + std::to_string(good.size()) +
                                       " bytes, over the limit of " + std::to_string(good.size() - 1));

  limits = {};
  limits.max_extracted_bytes = valid_manifest.size() + library_bytes.size() + 1;
  CHECK(f.refusal(good, limits).message ==
        "pkg.tpkg: unpacks to more than " + std::to_string(limits.max_extracted_bytes) + " bytes (the limit)");
  limits.max_extracted_bytes += 1;
  CHECK(open_archive_bytes(good, "pkg.tpkg", f.ring, limits).ok());

  limits = {};
  limits.max_entries = 3;
  CHECK(f.refusal(good, limits).message == "pkg.tpkg: holds more than 3 entries (the limit)");
  limits.max_entries = 4;
  CHECK(open_archive_bytes(good, "pkg.tpkg", f.ring, limits).ok());
}

TEST_CASE("entries leaving the package are refused", "[archive][refusals]") {
  fixture f;
  auto message = [&](std::vector<pack_entry> extra) {
    const auto e = f.refusal(f.crafted(valid_plus(std::move(extra))));
    CHECK(e.code == errc::refused);
    return e.message;
  };
  CHECK(message({file_entry("../x")}) == "pkg.tpkg: entry \"../x\" escapes the package");
  CHECK(message({file_entry("/x")}) == "pkg.tpkg: entry \"/x\" escapes the package");
  CHECK(message({file_entry("a/../../x")}) == "pkg.tpkg: entry \"a/../../x\" escapes the package");
  CHECK(message({file_entry("a/..")}) == "pkg.tpkg: entry \"a/..\" escapes the package");
  CHECK(message({link_entry("lib/evil", "/etc/passwd")}) ==
        "pkg.tpkg: symlink \"lib/evil\" -> \"/etc/passwd\" escapes the package");
  CHECK(message({link_entry("lib/a", "../../x")}) == "pkg.tpkg: symlink \"lib/a\" -> \"../../x\" escapes the package");
  // Each link alone stays inside; through the first, the second climbs out.
  CHECK(message({link_entry("d", "."), link_entry("e", "d/..")}) ==
        "pkg.tpkg: symlink \"e\" -> \"d/..\" escapes the package");
  CHECK(message({link_entry("a", "b"), link_entry("b", "a")}) ==
        "pkg.tpkg: symlink \"a\" -> \"b\" goes through more than 40 links");
  CHECK(message({link_entry("d", "lib"), file_entry("d/x")}) ==
        "pkg.tpkg: entry \"d/x\" is under \"d\", which is not a directory");
  CHECK(message({file_entry("manifest.yaml/x")}) ==
        "pkg.tpkg: entry \"manifest.yaml/x\" is under \"manifest.yaml\", which is not a directory");
  CHECK(message({file_entry("a//b")}) == "pkg.tpkg: entry \"a//b\" is not a plain relative path");
  CHECK(message({file_entry("a/./b")}) == "pkg.tpkg: entry \"a/./b\" is not a plain relative path");
  CHECK(message({file_entry("./")}) == "pkg.tpkg: entry \"./\" is not a plain relative path");
  CHECK(message({file_entry(std::string(1100, 'a'))}) ==
        "pkg.tpkg: entry \"" + std::string(200, 'a') + "...\" has a path over 1024 bytes");
  CHECK(message({file_entry("../bad\nname")}) == "pkg.tpkg: entry \"../bad\\x0aname\" escapes the package");
}

TEST_CASE("links, special files and repeated paths are refused", "[archive][refusals]") {
  fixture f;
  auto message = [&](std::vector<pack_entry> extra) {
    const auto e = f.refusal(f.crafted(valid_plus(std::move(extra))));
    CHECK(e.code == errc::refused);
    return e.message;
  };
  CHECK(message({{"lib/h", entry_kind::hardlink, "", "manifest.yaml", false}}) ==
        "pkg.tpkg: entry \"lib/h\" is a hardlink");
  CHECK(message({{"fifo", entry_kind::other, "", "", false}}) ==
        "pkg.tpkg: entry \"fifo\" is not a regular file, directory or symlink");
  CHECK(message({file_entry("lib/libencoder.so")}) == "pkg.tpkg: entry \"lib/libencoder.so\" appears twice");
  CHECK(message({file_entry("./manifest.yaml")}) == "pkg.tpkg: entry \"manifest.yaml\" appears twice");
  CHECK(message({{"lib/", entry_kind::directory, "", "", false}, {"./lib", entry_kind::directory, "", "", false}}) ==
        "pkg.tpkg: entry \"lib\" appears twice");
}

TEST_CASE("the manifest and its library must be in the archive", "[archive][refusals]") {
  fixture f;
  SECTION("no manifest.yaml") {
    const auto e = f.refusal(f.crafted({file_entry("lib/libencoder.so")}));
    CHECK(e.code == errc::refused);
    CHECK(e.message == "pkg.tpkg: no manifest.yaml in the archive");
  }
  SECTION("manifest.yaml as a directory") {
    const auto e = f.refusal(f.crafted({{"manifest.yaml", entry_kind::directory, "", "", false}}));
    CHECK(e.message == "pkg.tpkg: manifest.yaml is not a regular file");
  }
  SECTION("a manifest failing its schema names the field") {
    const auto e = f.refusal(f.crafted({file_entry("manifest.yaml",
                                                   "package: encoder\nversion: 1\nlibrary: lib/libencoder.so\n"
                                                   "actors: { Morse: { isolation: sideways } }\n"),
                                        file_entry("lib/libencoder.so")}));
    CHECK(e.code == errc::invalid_argument);
    CHECK_THAT(e.message, Catch::StartsWith("pkg.tpkg:manifest.yaml: actors.Morse.isolation: "
                                            "\"sideways\" is not an isolation"));
  }
  SECTION("the library missing") {
    const auto e = f.refusal(f.crafted({file_entry("manifest.yaml", valid_manifest)}));
    CHECK(e.code == errc::refused);
    CHECK(e.message == "pkg.tpkg: library \"lib/libencoder.so\" named by the manifest is not in the archive");
  }
  SECTION("the library as a dangling symlink") {
    const auto e = f.refusal(
        f.crafted({file_entry("manifest.yaml", valid_manifest), link_entry("lib/libencoder.so", "libencoder.so.1")}));
    CHECK(e.code == errc::refused);
  }
  SECTION("the library through a symlink is accepted") {
    auto a = open_archive_bytes(
        f.crafted({file_entry("manifest.yaml", valid_manifest), link_entry("lib/libencoder.so", "libencoder.so.1"),
                   file_entry("lib/libencoder.so.1", "lib"), link_entry("lib/up", "../manifest.yaml")}),
        "pkg.tpkg", f.ring);
    INFO((a ? std::string() : a.err().message));
    REQUIRE(a.ok());
    CHECK(a->entries[1].kind == entry_kind::symlink);
    CHECK(a->entries[1].link_target == "libencoder.so.1");
    CHECK(*read_entry(*a, "lib/libencoder.so") == "lib");
    CHECK(*read_entry(*a, "lib/up") == valid_manifest);
  }
}

TEST_CASE("a signed payload that is not a tar is a corrupt archive", "[archive][refusals]") {
  fixture f;
  const auto garbage = f.refusal(f.crafted({}) + std::string(1024, 'z'));
  CHECK(garbage.code == errc::refused);  // the trailer is no longer at the end
  const auto e = f.refusal(sign_payload(std::string(2048, 'z'), *f.key));
  CHECK(e.code == errc::invalid_argument);
  CHECK_THAT(e.message, Catch::StartsWith("pkg.tpkg: corrupt archive: "));
  // A tar cut inside its last file's data, then signed.
  const std::string tar = write_tar(valid_plus({file_entry("big", std::string(5000, 'b'))}));
  const auto cut = f.refusal(sign_payload(tar.substr(0, tar.size() - 3000), *f.key));
  CHECK(cut.code == errc::invalid_argument);
  CHECK_THAT(cut.message, Catch::StartsWith("pkg.tpkg: corrupt archive: "));
}

TEST_CASE("read_entry returns a file's bytes or not_found naming the path", "[archive]") {
  fixture f;
  auto a = open_archive_bytes(
      f.crafted(valid_plus({{"docs", entry_kind::directory, "", "", false}, file_entry("docs/empty", "")})), "pkg.tpkg",
      f.ring);
  REQUIRE(a.ok());
  CHECK(*read_entry(*a, "manifest.yaml") == valid_manifest);
  CHECK(*read_entry(*a, "lib/libencoder.so") == library_bytes);
  CHECK(*read_entry(*a, "docs/empty") == "");
  auto missing = read_entry(*a, "lib/nope.so");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.err().code == errc::not_found);
  CHECK(missing.err().message == "pkg.tpkg: no file \"lib/nope.so\" in the archive");
  CHECK(read_entry(*a, "docs").err().code == errc::not_found);
}

TEST_CASE("extraction gives a read-only tree under the id, once", "[archive][extract]") {
  fixture f;
  auto packed = pack_package(f.request(), *f.key);
  REQUIRE(packed.ok());
  auto a = open_archive(packed->file, f.ring);
  REQUIRE(a.ok());
  const fs::path cache = f.t.path / "cache";

  auto dir = extract_archive(*a, cache);
  INFO((dir ? std::string() : dir.err().message));
  REQUIRE(dir.ok());
  CHECK(*dir == cache / a->id);
  CHECK(slurp(*dir / "manifest.yaml") == *read_entry(*a, "manifest.yaml"));
  CHECK(slurp(*dir / "lib" / "libencoder.so") == library_bytes);
  CHECK(slurp(*dir / "lib" / "libcodec.so.1") == "codec bytes");
  CHECK(mode_of(*dir / "manifest.yaml") == 0444);
  CHECK(mode_of(*dir / "lib" / "libencoder.so") == 0555);
  CHECK(mode_of(*dir / "lib" / "libcodec.so.1") == 0444);
  CHECK(mode_of(*dir / "lib") == 0555);
  CHECK(mode_of(*dir) == 0555);
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(cache)) names.push_back(e.path().filename());
  CHECK(names == std::vector<std::string>{a->id});  // no temporary directory left

  SECTION("a second extraction reuses the first") {
    struct stat before {
    }, after{};
    REQUIRE(::stat((*dir / "manifest.yaml").c_str(), &before) == 0);
    auto again = extract_archive(*a, cache);
    REQUIRE(again.ok());
    CHECK(*again == *dir);
    REQUIRE(::stat((*dir / "manifest.yaml").c_str(), &after) == 0);
    CHECK(before.st_ino == after.st_ino);
  }
  SECTION("remove_extracted removes the tree") {
    REQUIRE(remove_extracted(*dir).ok());
    CHECK_FALSE(fs::exists(*dir));
    CHECK(remove_extracted(*dir).ok());  // already gone
  }
}

TEST_CASE("extraction keeps symlinks and reuses an existing directory as is", "[archive][extract]") {
  fixture f;
  auto a = open_archive_bytes(f.crafted({file_entry("manifest.yaml", valid_manifest),
                                         link_entry("lib/libencoder.so", "libencoder.so.1"),
                                         {"lib/libencoder.so.1", entry_kind::file, "lib", "", true},
                                         {"share/", entry_kind::directory, "", "", false},
                                         link_entry("share/m", "../manifest.yaml")}),
                              "pkg.tpkg", f.ring);
  REQUIRE(a.ok());
  const fs::path cache = f.t.path / "cache";
  auto dir = extract_archive(*a, cache);
  INFO((dir ? std::string() : dir.err().message));
  REQUIRE(dir.ok());
  CHECK(fs::read_symlink(*dir / "lib" / "libencoder.so") == "libencoder.so.1");
  CHECK(slurp(*dir / "lib" / "libencoder.so") == "lib");
  CHECK(slurp(*dir / "share" / "m") == valid_manifest);
  CHECK(mode_of(*dir / "share") == 0555);
  CHECK(mode_of(*dir / "lib" / "libencoder.so.1") == 0555);
  REQUIRE(remove_extracted(*dir).ok());

  // Someone else's extraction already in place is taken as it is.
  fs::create_directories(cache / a->id);
  write(cache / a->id / "marker", "theirs");
  auto reused = extract_archive(*a, cache);
  REQUIRE(reused.ok());
  CHECK(*reused == cache / a->id);
  CHECK(slurp(*reused / "marker") == "theirs");
  CHECK_FALSE(fs::exists(*reused / "manifest.yaml"));
}

TEST_CASE("extraction links a large file equal to an earlier version's, and writes one that differs",
          "[archive][extract]") {
  fixture f;
  const std::string big(200 * 1024, 'b');
  std::string changed = big;
  changed[150 * 1024] = 'c';  // the same size, one byte apart
  auto version = [&](const std::string& manifest_text, const std::string& data, const std::string& other) {
    auto a = open_archive_bytes(f.crafted({file_entry("manifest.yaml", manifest_text),
                                           {"lib/libencoder.so", entry_kind::file, "lib", "", true},
                                           {"lib/data.bin", entry_kind::file, data, "", false},
                                           {"lib/other.bin", entry_kind::file, other, "", false}}),
                                "pkg.tpkg", f.ring);
    REQUIRE(a.ok());
    return std::move(*a);
  };
  auto ino = [](const fs::path& p) {
    struct stat st {};
    REQUIRE(::stat(p.c_str(), &st) == 0);
    return st.st_ino;
  };
  const fs::path cache = f.t.path / "cache";
  const auto v1 = version(valid_manifest, big, big);
  auto d1 = extract_archive(v1, cache);
  REQUIRE(d1.ok());
  const auto v2 = version(valid_manifest + "# two\n", big, changed);
  auto d2 = extract_archive(v2, cache, {*d1, f.t.path / "no-such-tree"});
  INFO((d2 ? std::string() : d2.err().message));
  REQUIRE(d2.ok());
  CHECK(*d2 != *d1);
  CHECK(ino(*d2 / "lib" / "data.bin") == ino(*d1 / "lib" / "data.bin"));    // equal: linked
  CHECK(ino(*d2 / "lib" / "other.bin") != ino(*d1 / "lib" / "other.bin"));  // one byte apart: written
  CHECK(slurp(*d2 / "lib" / "other.bin") == changed);
  CHECK(slurp(*d2 / "lib" / "data.bin") == big);
  CHECK(ino(*d2 / "manifest.yaml") != ino(*d1 / "manifest.yaml"));  // small files are always written
  CHECK(mode_of(*d2 / "lib" / "data.bin") == 0444);
  CHECK(mode_of(*d2 / "lib") == 0555);
  // Removing the first tree leaves the second whole.
  REQUIRE(remove_extracted(*d1).ok());
  CHECK(slurp(*d2 / "lib" / "data.bin") == big);
}

TEST_CASE("extraction checks the payload again and writes nothing when it is bad", "[archive][extract]") {
  temp_dir t;
  package_archive a;  // filled in by hand, not by open_archive
  a.id = std::string(64, 'a');
  a.source = "hand-made";
  a.payload = write_tar({file_entry("ok"), file_entry("../escaped")});
  a.entries = {{"ok", entry_kind::file, 1, false, ""}};
  const fs::path cache = t.path / "cache";
  auto dir = extract_archive(a, cache);
  REQUIRE_FALSE(dir.ok());
  CHECK(dir.err().code == errc::refused);
  CHECK(dir.err().message == "hand-made: entry \"../escaped\" escapes the package");
  CHECK(fs::is_empty(cache));
  CHECK_FALSE(fs::exists(t.path / "escaped"));

  a.id = "../../x";
  CHECK(extract_archive(a, cache).err().code == errc::internal);
}

TEST_CASE("a python package packs its module and site-packages, without byte code", "[archive][python]") {
  fixture f;
  const fs::path py = f.t.path / "py";
  write(py / "manifest.yaml",
        "package: greeter\nversion: 1.0.0\nruntime: python\nmodule: greeter\nactors: { Greeter: {} }\n");
  write(py / "greeter" / "__init__.py", "import dep\n");
  write(py / "greeter" / "__pycache__" / "x.cpython-311.pyc", "byte code");
  write(py / "site-packages" / "dep" / "__init__.py", "VERSION = '1'\n");
  write(py / "unrelated.txt", "not packed");
  auto r = pack_package(pack_request{py / "manifest.yaml", "2.0.0", {}, f.t.path / "out.tpkg", {}}, *f.key);
  REQUIRE(r.ok());
  auto a = open_archive(r->file, f.ring);
  REQUIRE(a.ok());
  CHECK(a->m.runtime == runtime_kind::python);
  std::vector<std::string> files;
  for (const auto& e : a->entries)
    if (e.kind == entry_kind::file) files.push_back(e.path);
  CHECK(files == std::vector<std::string>{"manifest.yaml", "greeter/__init__.py", "site-packages/dep/__init__.py"});
  auto dir = extract_archive(*a, f.t.path / "cache");
  REQUIRE(dir.ok());
  CHECK(slurp(*dir / "site-packages" / "dep" / "__init__.py") == "VERSION = '1'\n");

  SECTION("private libraries are refused") {
    auto refused = pack_package(
        pack_request{py / "manifest.yaml", "2.0.0", {f.t.path / "deps" / "libcodec.so.1"}, f.t.path / "o.tpkg", {}},
        *f.key);
    REQUIRE_FALSE(refused.ok());
    CHECK_THAT(refused.err().message, Catch::Contains("are for native packages"));
  }
  SECTION("a missing module is named") {
    fs::remove_all(py / "greeter");
    auto missing = pack_package(pack_request{py / "manifest.yaml", "2.0.0", {}, f.t.path / "o.tpkg", {}}, *f.key);
    REQUIRE_FALSE(missing.ok());
    CHECK_THAT(missing.err().message, Catch::Contains("module: \"greeter\" not found"));
  }
  SECTION("an archive without its module is refused") {
    const std::string text =
        "package: greeter\nversion: 1.0.0\nruntime: python\nmodule: greeter\nactors: { Greeter: {} }\n";
    auto bad = f.refusal(f.crafted({{"manifest.yaml", entry_kind::file, text, "", false}}));
    CHECK_THAT(bad.message, Catch::Contains("module \"greeter\" named by the manifest is not in the archive"));
  }
}
