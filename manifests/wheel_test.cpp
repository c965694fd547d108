#include "manifests/wheel.hpp"

#include "tests/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace troupe::manifests;
using troupe::errc;
namespace fs = std::filesystem;

using troupe::testing::slurp;
using troupe::testing::temp_dir;
using troupe::testing::write;

namespace {

const std::string pure_wheel_meta = "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n";

pack_entry file_entry(std::string path, std::string content) {
  return {std::move(path), entry_kind::file, std::move(content), "", false};
}

// A wheel's zip: files, then DIST_INFO/{METADATA,WHEEL} and a RECORD hashing
// them all (unless the test gives its own).
struct wheel_maker {
  std::string dist_info = "demo-1.0.dist-info";
  std::string wheel_meta = pure_wheel_meta;
  std::vector<pack_entry> files = {file_entry("demo/__init__.py", "VERSION = '1.0'\n")};
  std::vector<pack_entry> unrecorded;  // in the zip, not in RECORD
  std::string record_extra;            // rows appended to RECORD

  std::string bytes() const {
    std::vector<pack_entry> all = files;
    all.push_back(file_entry(dist_info + "/METADATA", "Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n"));
    all.push_back(file_entry(dist_info + "/WHEEL", wheel_meta));
    std::string record;
    for (const auto& f : all)
      if (f.kind == entry_kind::file)
        record += f.path + "," + record_hash(f.content) + "," + std::to_string(f.content.size()) + "\n";
    record += dist_info + "/RECORD,,\n" + record_extra;
    all.push_back(file_entry(dist_info + "/RECORD", record));
    all.insert(all.end(), unrecorded.begin(), unrecorded.end());
    return write_zip(all);
  }

  fs::path write_to(const fs::path& dir, const std::string& name = "demo-1.0-py3-none-any.whl") const {
    write(dir / name, bytes());
    return dir / name;
  }
};

std::vector<std::string> paths_of(const wheel_contents& w) {
  std::vector<std::string> out;
  for (const auto& f : w.files) out.push_back(f.path);
  return out;
}

// The refusal of a wheel: one line, starting with its path.
troupe::error refusal(const fs::path& wheel, const archive_limits& limits = {}) {
  auto r = read_wheel(wheel, limits);
  if (r.ok()) FAIL("the wheel was accepted");
  CHECK(r.err().message.find('\n') == std::string::npos);
  CHECK(r.err().message.starts_with(wheel.string() + ": "));
  return r.err();
}

}  // namespace

TEST_CASE("a pure-Python wheel is read with its dist-info", "[wheel]") {
  temp_dir t;
  wheel_maker m;
  m.files.push_back(file_entry("demo/util.py", "X = 1\n"));
  m.files.push_back(file_entry("demo/__pycache__/util.cpython-311.pyc", "byte code"));
  auto w = read_wheel(m.write_to(t.path));
  REQUIRE(w.ok());
  CHECK(w->distribution == "demo");
  CHECK(w->version == "1.0");
  CHECK(paths_of(*w) == std::vector<std::string>{"demo-1.0.dist-info/METADATA", "demo-1.0.dist-info/RECORD",
                                                 "demo-1.0.dist-info/WHEEL", "demo/__init__.py", "demo/util.py"});
  CHECK(w->files[3].content == "VERSION = '1.0'\n");

  SECTION("py2.py3-none-any and a build tag are pure too") {
    m.wheel_meta = "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py2-none-any\nTag: py3-none-any\n";
    CHECK(read_wheel(m.write_to(t.path, "demo-1.0-1-py2.py3-none-any.whl")).ok());
  }
  SECTION("names are compared as PEP 503 does") {
    m.dist_info = "Foo_Bar-1.0.dist-info";
    CHECK(read_wheel(m.write_to(t.path, "foo.bar-1.0-py3-none-any.whl")).ok());
    CHECK(canonical_distribution("Foo__Bar.baz") == "foo-bar-baz");
  }
}

TEST_CASE("platform and Python 2 wheels are refused naming the tag", "[wheel]") {
  temp_dir t;
  wheel_maker m;
  auto e = refusal(m.write_to(t.path, "demo-1.0-cp311-cp311-manylinux_2_17_x86_64.whl"));
  CHECK(e.code == errc::refused);
  CHECK_THAT(e.message, Catch::Contains("tag cp311-cp311-manylinux_2_17_x86_64 is not pure Python 3"));
  CHECK_THAT(refusal(m.write_to(t.path, "demo-1.0-py2-none-any.whl")).message,
             Catch::Contains("tag py2-none-any is not pure Python 3"));
  CHECK_THAT(refusal(m.write_to(t.path, "demo-1.0-py3-none-linux_x86_64.whl")).message,
             Catch::Contains("not pure Python 3"));

  SECTION("WHEEL saying Root-Is-Purelib: false") {
    m.wheel_meta = "Wheel-Version: 1.0\nRoot-Is-Purelib: false\nTag: py3-none-any\n";
    CHECK_THAT(refusal(m.write_to(t.path)).message, Catch::Contains("Root-Is-Purelib is false, not true"));
  }
  SECTION("WHEEL with a platform tag") {
    m.wheel_meta = "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: cp311-cp311-linux_x86_64\n";
    CHECK_THAT(refusal(m.write_to(t.path)).message, Catch::Contains("has Tag: cp311-cp311-linux_x86_64"));
  }
  SECTION("WHEEL with Python 2 tags only") {
    m.wheel_meta = "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py2-none-any\n";
    CHECK_THAT(refusal(m.write_to(t.path)).message, Catch::Contains("has no Tag for Python 3"));
  }
  SECTION("a wheel format of another major version") {
    m.wheel_meta = "Wheel-Version: 2.0\nRoot-Is-Purelib: true\n";
    CHECK_THAT(refusal(m.write_to(t.path)).message, Catch::Contains("Wheel-Version 2.0"));
  }
}

TEST_CASE("a wheel's entries must be plain relative regular files", "[wheel]") {
  temp_dir t;
  wheel_maker m;
  SECTION("..") {
    m.files.push_back(file_entry("demo/../../evil.py", "x"));
    CHECK_THAT(refusal(m.write_to(t.path)).message, Catch::Contains("\"demo/../../evil.py\" is not a plain relative"));
  }
  SECTION("absolute") {
    m.files.push_back(file_entry("/etc/evil.py", "x"));
    CHECK_THAT(refusal(m.write_to(t.path)).message, Catch::Contains("is not a plain relative path"));
  }
  SECTION("a backslash") {
    m.files.push_back(file_entry("demo\\..\\..\\evil.py", "x"));
    CHECK_THAT(refusal(m.write_to(t.path)).message, Catch::Contains("is not a plain relative path"));
  }
  SECTION("a symlink, escaping or not") {
    m.unrecorded.push_back({"demo/passwd", entry_kind::symlink, "", "../../../etc/passwd", false});
    CHECK_THAT(refusal(m.write_to(t.path)).message,
               Catch::Contains("entry \"demo/passwd\" is a symlink (a wheel holds regular files only)"));
  }
  SECTION("one path twice") {
    m.unrecorded.push_back(file_entry("demo/__init__.py", "shadow"));
    CHECK_THAT(refusal(m.write_to(t.path)).message, Catch::Contains("entry \"demo/__init__.py\" appears twice"));
  }
  SECTION("not a zip at all") {
    write(t.path / "demo-1.0-py3-none-any.whl", "PK but not really");
    CHECK_THAT(refusal(t.path / "demo-1.0-py3-none-any.whl").message, Catch::Contains("not a readable zip"));
  }
  SECTION("not a wheel's file name") {
    write(t.path / "demo.whl", m.bytes());
    CHECK_THAT(refusal(t.path / "demo.whl").message, Catch::Contains("not a wheel file name"));
  }
}

TEST_CASE("a wheel's files must match RECORD and its dist-info its name", "[wheel]") {
  temp_dir t;
  wheel_maker m;
  SECTION("a file not in RECORD") {
    m.unrecorded.push_back(file_entry("demo/extra.py", "x"));
    CHECK_THAT(refusal(m.write_to(t.path)).message,
               Catch::Contains("\"demo/extra.py\" is not hashed in demo-1.0.dist-info/RECORD"));
  }
  SECTION("a file modified after RECORD was written") {
    m.record_extra = "demo/late.py,sha256=AAAA,1\n";
    m.unrecorded.push_back(file_entry("demo/late.py", "x"));
    CHECK_THAT(refusal(m.write_to(t.path)).message, Catch::Contains("does not match its hash"));
  }
  SECTION("a weak hash") {
    m.record_extra = "demo/late.py,md5=AAAA,1\n";
    m.unrecorded.push_back(file_entry("demo/late.py", "x"));
    CHECK_THAT(refusal(m.write_to(t.path)).message, Catch::Contains("(sha256, sha384 or sha512 required)"));
  }
  SECTION("a dist-info of another distribution") {
    m.dist_info = "other-1.0.dist-info";
    CHECK_THAT(refusal(m.write_to(t.path)).message,
               Catch::Contains("other-1.0.dist-info does not match the file name's demo 1.0"));
  }
  SECTION("no dist-info") {
    write(t.path / "demo-1.0-py3-none-any.whl", write_zip({file_entry("demo/__init__.py", "")}));
    CHECK_THAT(refusal(t.path / "demo-1.0-py3-none-any.whl").message, Catch::Contains("has no NAME-VERSION.dist-info"));
  }
}

TEST_CASE("a wheel's .data/purelib goes to the root; other .data schemes are refused", "[wheel]") {
  temp_dir t;
  wheel_maker m;
  m.files.push_back(file_entry("demo-1.0.data/purelib/demo_extra.py", "Y = 2\n"));
  auto w = read_wheel(m.write_to(t.path));
  REQUIRE(w.ok());
  CHECK(paths_of(*w) == std::vector<std::string>{"demo-1.0.dist-info/METADATA", "demo-1.0.dist-info/RECORD",
                                                 "demo-1.0.dist-info/WHEEL", "demo/__init__.py", "demo_extra.py"});
  // RECORD names the installed path, as an installer rewrites it.
  CHECK_THAT(w->files[1].content, Catch::Contains("\ndemo_extra.py,sha256="));
  CHECK_THAT(w->files[1].content, !Catch::Contains("purelib"));

  SECTION("purelib and the root installing one path") {
    m.files.push_back(file_entry("demo_extra.py", "Z\n"));
    CHECK_THAT(refusal(m.write_to(t.path)).message, Catch::Contains("both install \"demo_extra.py\""));
  }
  SECTION("scripts") {
    m.files.push_back(file_entry("demo-1.0.data/scripts/demo", "#!python\n"));
    CHECK_THAT(refusal(m.write_to(t.path)).message,
               Catch::Contains("demo-1.0.data/scripts cannot go into a package (troupe installs .data/purelib only)"));
  }
  SECTION("platlib") {
    m.files.push_back(file_entry("demo-1.0.data/platlib/x.py", ""));
    CHECK_THAT(refusal(m.write_to(t.path)).message, Catch::Contains("demo-1.0.data/platlib cannot go"));
  }
}

TEST_CASE("a wheel over the limits is refused while it is read", "[wheel]") {
  temp_dir t;
  wheel_maker m;
  m.files.push_back(file_entry("demo/big.py", std::string(100000, '#')));  // deflates to a few hundred bytes
  const fs::path w = m.write_to(t.path);
  CHECK(fs::file_size(w) < 5000);
  archive_limits small;
  small.max_extracted_bytes = 50000;
  CHECK_THAT(refusal(w, small).message, Catch::Contains("unpacks to more than 50000 bytes (the limit)"));
  archive_limits few;
  few.max_entries = 3;
  CHECK_THAT(refusal(w, few).message, Catch::Contains("holds more than 3 entries (the limit)"));
  archive_limits tiny;
  tiny.max_archive_bytes = 100;
  CHECK_FALSE(read_wheel(w, tiny).ok());
}

// ---------------------------------------------------------------- troupe pack --wheel

namespace {

struct pack_fixture {
  temp_dir t;
  fs::path py = t.path / "py";
  std::optional<signing_key> key;
  key_ring ring;

  pack_fixture() {
    fs::create_directories(t.path / "keys");
    REQUIRE(generate_key_pair(t.path / "keys" / "dev").ok());
    auto k = signing_key::read(t.path / "keys" / "dev.key");
    REQUIRE(k.ok());
    key = std::move(*k);
    ring = read_key_ring(t.path / "keys");
    write(py / "manifest.yaml",
          "package: greeter\nversion: 1.0.0\nruntime: python\nmodule: greeter\nactors: { Greeter: {} }\n");
    write(py / "greeter.py", "import demo\n");
  }

  troupe::result<pack_result> pack(std::vector<fs::path> wheels, const fs::path& manifest = {}) const {
    pack_request r{
        manifest.empty() ? py / "manifest.yaml" : manifest, std::nullopt, {}, t.path / "out.tpkg", std::move(wheels)};
    return pack_package(r, *key);
  }

  troupe::error refusal(std::vector<fs::path> wheels, const fs::path& manifest = {}) const {
    auto r = pack(std::move(wheels), manifest);
    if (r.ok()) FAIL("packed");
    CHECK(r.err().message.find('\n') == std::string::npos);
    CHECK_FALSE(fs::exists(t.path / "out.tpkg"));
    return r.err();
  }
};

}  // namespace

TEST_CASE("troupe pack --wheel unpacks wheels into site-packages/", "[wheel][archive]") {
  pack_fixture f;
  wheel_maker demo;
  wheel_maker other;
  other.dist_info = "other-2.0.dist-info";
  other.files = {file_entry("other.py", "O = 2\n")};
  write(f.py / "site-packages" / "vendored" / "__init__.py", "V = 3\n");
  auto r = f.pack({demo.write_to(f.t.path), other.write_to(f.t.path, "other-2.0-py3-none-any.whl")});
  REQUIRE(r.ok());
  auto a = open_archive(r->file, f.ring);
  REQUIRE(a.ok());
  std::vector<std::string> paths;
  for (const auto& e : a->entries) paths.push_back(e.path);
  CHECK(paths == std::vector<std::string>{
                     "manifest.yaml", "greeter.py", "site-packages", "site-packages/vendored",
                     "site-packages/vendored/__init__.py", "site-packages/demo", "site-packages/demo-1.0.dist-info",
                     "site-packages/demo-1.0.dist-info/METADATA", "site-packages/demo-1.0.dist-info/RECORD",
                     "site-packages/demo-1.0.dist-info/WHEEL", "site-packages/demo/__init__.py",
                     "site-packages/other-2.0.dist-info", "site-packages/other-2.0.dist-info/METADATA",
                     "site-packages/other-2.0.dist-info/RECORD", "site-packages/other-2.0.dist-info/WHEEL",
                     "site-packages/other.py"});
  auto dir = extract_archive(*a, f.t.path / "cache");
  REQUIRE(dir.ok());
  CHECK(slurp(*dir / "site-packages" / "demo" / "__init__.py") == "VERSION = '1.0'\n");
  // Equal inputs give equal archives, whatever the order of the wheels.
  const std::string first = slurp(r->file);
  auto again = f.pack({other.write_to(f.t.path, "other-2.0-py3-none-any.whl"), demo.write_to(f.t.path)});
  REQUIRE(again.ok());
  CHECK(slurp(again->file) == first);
}

TEST_CASE("troupe pack --wheel refuses paths two sources fill, naming both", "[wheel][archive]") {
  pack_fixture f;
  wheel_maker demo;
  const fs::path demo_whl = demo.write_to(f.t.path);
  SECTION("two wheels installing one file") {
    wheel_maker clash;
    clash.dist_info = "clash-1.0.dist-info";
    const fs::path clash_whl = clash.write_to(f.t.path, "clash-1.0-py3-none-any.whl");
    auto e = f.refusal({demo_whl, clash_whl});
    CHECK(e.code == errc::refused);
    CHECK(e.message == clash_whl.string() + ": site-packages/demo/__init__.py is also in " + demo_whl.string());
  }
  SECTION("a wheel and site-packages/ beside the manifest") {
    write(f.py / "site-packages" / "demo" / "__init__.py", "vendored\n");
    CHECK(f.refusal({demo_whl}).message == demo_whl.string() + ": site-packages/demo/__init__.py is also in " +
                                               (f.py / "site-packages").string() + " (beside the manifest)");
  }
  SECTION("a file of one, a directory of the other") {
    wheel_maker flat;
    flat.dist_info = "flat-1.0.dist-info";
    flat.files = {file_entry("demo", "a file")};
    const fs::path flat_whl = flat.write_to(f.t.path, "flat-1.0-py3-none-any.whl");
    CHECK_THAT(f.refusal({flat_whl, demo_whl}).message,
               Catch::Contains(demo_whl.string() + ": has files under site-packages/demo, which is a file in " +
                               flat_whl.string()));
    CHECK_THAT(f.refusal({demo_whl, flat_whl}).message,
               Catch::Contains(flat_whl.string() + ": site-packages/demo is a file here and a directory in " +
                               demo_whl.string()));
  }
  SECTION("one distribution twice") {
    wheel_maker newer;
    newer.dist_info = "demo-2.0.dist-info";
    newer.files = {file_entry("demo2/__init__.py", "")};
    const fs::path newer_whl = newer.write_to(f.t.path, "demo-2.0-py3-none-any.whl");
    CHECK_THAT(f.refusal({demo_whl, newer_whl}).message,
               Catch::Contains(newer_whl.string() + ": distribution demo is also in " + demo_whl.string()));
    write(f.py / "site-packages" / "Demo-0.9.dist-info" / "METADATA", "");
    CHECK_THAT(f.refusal({demo_whl}).message, Catch::Contains(": distribution demo is also in "));
  }
  SECTION("a bad wheel fails the pack") {
    CHECK_THAT(f.refusal({demo.write_to(f.t.path, "demo-1.0-cp312-cp312-win_amd64.whl")}).message,
               Catch::Contains("demo-1.0-cp312-cp312-win_amd64.whl: tag cp312-cp312-win_amd64 is not pure Python 3"));
  }
  SECTION("a native package") {
    write(f.t.path / "native" / "manifest.yaml",
          "package: n\nversion: 1.0.0\nlibrary: lib/libn.so\nactors: { A: {} }\n");
    write(f.t.path / "native" / "lib" / "libn.so",
          "\x7f"
          "ELF");
    auto e = f.refusal({demo_whl}, f.t.path / "native" / "manifest.yaml");
    CHECK(e.code == errc::invalid_argument);
    CHECK_THAT(e.message, Catch::Contains("wheels (--wheel) are for runtime: python packages"));
  }
}
