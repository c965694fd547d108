#include "manifests/manifest.hpp"

#include <catch2/catch.hpp>

using namespace troupe::manifests;

namespace {

// The message parse_manifest gives for text; fails the test if it parses.
std::string error_of(const std::string& text) {
  auto m = parse_manifest(text, "manifest.yaml");
  REQUIRE_FALSE(m.ok());
  CHECK(m.err().code == troupe::errc::invalid_argument);
  CHECK(m.err().message.find('\n') == std::string::npos);  // one line
  return m.err().message;
}

// A manifest from its package, version and library lines (any may be left
// out), one trivial actor and extra top-level lines.
std::string top(const std::string& package, const std::string& version, const std::string& library,
                const std::string& extra = "") {
  return package + version + library + "actors: { A: {} }\n" + extra;
}

// A valid manifest whose one actor, Morse, has the given body.
std::string actor(const std::string& body) {
  return "package: p\nversion: 1\nlibrary: l.so\nactors:\n  Morse: " + body + "\n";
}

const std::string pkg = "package: p\n", ver = "version: 1.0\n", lib = "library: l.so\n";

}  // namespace

TEST_CASE("a missing required field is named", "[manifest][errors]") {
  CHECK(error_of(top("", ver, lib)) == "manifest.yaml: package: missing (required)");
  CHECK(error_of(top(pkg, "", lib)) == "manifest.yaml: version: missing (required)");
  CHECK(error_of(top(pkg, ver, "")) == "manifest.yaml: library: missing (required)");
  CHECK(error_of(pkg + ver + lib) == "manifest.yaml: actors: missing (required)");
  CHECK(error_of("") == "manifest.yaml: package: missing (required)");
}

TEST_CASE("a bad package name is an error naming package", "[manifest][errors]") {
  const std::string too_long(65, 'x');
  for (const std::string bad : {"\"\"", "en coder", "a/b", "..", too_long.c_str()}) {
    CHECK_THAT(error_of(top("package: " + bad + "\n", ver, lib)),
               Catch::StartsWith("manifest.yaml: package: ") && Catch::Contains("is not a package name"));
  }
  CHECK_THAT(error_of(top("package: [a]\n", ver, lib)),
             Catch::Equals("manifest.yaml: package: must be a string, got a sequence"));
}

TEST_CASE("a bad version is an error naming version and the text", "[manifest][errors]") {
  CHECK_THAT(error_of(top(pkg, "version: 1.x\n", lib)),
             Catch::StartsWith("manifest.yaml: version: \"1.x\" is not a version"));
}

TEST_CASE("a library outside the package is an error naming library", "[manifest][errors]") {
  CHECK(error_of(top(pkg, ver, "library: /usr/lib/libx.so\n")) ==
        "manifest.yaml: library: \"/usr/lib/libx.so\" must be a path relative to the package");
  CHECK(error_of(top(pkg, ver, "library: ../libx.so\n")) ==
        "manifest.yaml: library: \"../libx.so\" must stay inside the package (no ..)");
  CHECK_THAT(error_of(top(pkg, ver, "library: lib/../../x.so\n")), Catch::StartsWith("manifest.yaml: library: "));
  CHECK(error_of(top(pkg, ver, "library: \"\"\n")) == "manifest.yaml: library: must not be empty");
}

TEST_CASE("actors must list at least one valid type name", "[manifest][errors]") {
  CHECK(error_of(pkg + ver + lib + "actors: {}\n") == "manifest.yaml: actors: must list at least one actor type");
  CHECK(error_of(pkg + ver + lib + "actors:\n") == "manifest.yaml: actors: must list at least one actor type");
  CHECK(error_of(pkg + ver + lib + "actors: [A]\n") == "manifest.yaml: actors: must be a map, got a sequence");
  CHECK_THAT(error_of(pkg + ver + lib + "actors: { Mor-se: {} }\n"),
             Catch::StartsWith("manifest.yaml: actors.Mor-se: \"Mor-se\" is not an actor type"));
}

TEST_CASE("a bad duration names its field and the accepted forms", "[manifest][errors]") {
  CHECK(error_of(actor("{ restart: { within: 10 } }")) ==
        "manifest.yaml: actors.Morse.restart.within: \"10\" is not a duration (use 250ms, 10s, 2m)");
  CHECK(error_of(actor("{ max_handle_time: 3 days }")) ==
        "manifest.yaml: actors.Morse.max_handle_time: \"3 days\" is not a duration (use 250ms, "
        "10s, 2m)");
  CHECK(error_of(actor("{ restart: { within: -1s } }")) ==
        "manifest.yaml: actors.Morse.restart.within: \"-1s\" is not a duration (use 250ms, 10s, "
        "2m)");
  CHECK(error_of(actor("{ restart: { within: 0s } }")) ==
        "manifest.yaml: actors.Morse.restart.within: must be longer than 0");
  CHECK_THAT(error_of(actor("{ restart: { backoff: 10ms-2s } }")),
             Catch::StartsWith("manifest.yaml: actors.Morse.restart.backoff: \"10ms-2s\" is not"));
  CHECK_THAT(error_of(actor("{ restart: { backoff: 2s..10ms } }")),
             Catch::Contains("restart.backoff: \"2s..10ms\": the first bound is larger"));
}

TEST_CASE("a bad restart policy or count is named", "[manifest][errors]") {
  CHECK(error_of(actor("{ restart: { policy: forever } }")) ==
        "manifest.yaml: actors.Morse.restart.policy: \"forever\" is not a restart policy (use "
        "permanent, transient or temporary)");
  CHECK(error_of(actor("{ restart: { max_restarts: -1 } }")) ==
        "manifest.yaml: actors.Morse.restart.max_restarts: \"-1\" is not a whole number");
  CHECK(error_of(actor("{ isolation: alone }")) ==
        "manifest.yaml: actors.Morse.isolation: \"alone\" is not an isolation (use shared or "
        "dedicated)");
}

TEST_CASE("unknown keys are errors at every level", "[manifest][errors]") {
  CHECK_THAT(error_of(top(pkg, ver, lib, "auto_unlaod: true\n")),
             Catch::StartsWith("manifest.yaml: auto_unlaod: unknown key (expected package,"));
  CHECK_THAT(error_of(actor("{ restrat: {} }")),
             Catch::StartsWith("manifest.yaml: actors.Morse.restrat: unknown key (expected"));
  CHECK(error_of(actor("{ restart: { polcy: permanent } }")) ==
        "manifest.yaml: actors.Morse.restart.polcy: unknown key (expected policy, max_restarts, "
        "within, backoff)");
  CHECK(error_of(actor("{ on_load: { name: x } }")) ==
        "manifest.yaml: actors.Morse.on_load.name: unknown key (expected role, global_name, "
        "message)");
  CHECK(error_of(actor("{ on_deactivate: { msg: x } }")) ==
        "manifest.yaml: actors.Morse.on_deactivate.msg: unknown key (expected message)");
  CHECK(error_of(top(pkg, ver, lib, "keep: 2\nkeep: 3\n")) == "manifest.yaml: keep: repeated key");
}

TEST_CASE("a bad requirement is named with its capability", "[manifest][errors]") {
  CHECK(error_of(actor("{ requires: { gpu_mem: \">=lots\" } }")) ==
        "manifest.yaml: actors.Morse.requires.gpu_mem: \">=lots\" needs a number after >= (e.g. "
        "\">=16\")");
  CHECK_THAT(error_of(actor("{ requires: { gpu_mem: [16] } }")),
             Catch::StartsWith("manifest.yaml: actors.Morse.requires.gpu_mem: must be true, a"));
  CHECK_THAT(error_of(actor("{ requires: { gpu_mem: } }")),
             Catch::StartsWith("manifest.yaml: actors.Morse.requires.gpu_mem: must be"));
  CHECK_THAT(error_of(actor("{ requires: { \"gpu,mem\": 1 } }")),
             Catch::Contains("requires.gpu,mem: \"gpu,mem\" is not a capability name"));
  CHECK_THAT(error_of(actor("{ requires: { \" gpu\": 1 } }")), Catch::Contains("is not a capability name"));
  CHECK(parse_manifest(actor("{ requires: { \"Caesar cipher\": true } }"), "manifest.yaml").ok());
  CHECK(error_of(actor("{ requires: [morse] }")) ==
        "manifest.yaml: actors.Morse.requires: must be a map, got a sequence");
}

TEST_CASE("bad top-level values and YAML syntax are one-line errors", "[manifest][errors]") {
  CHECK(error_of(top(pkg, ver, lib, "auto_unload: yes\n")) ==
        "manifest.yaml: auto_unload: \"yes\" is not a boolean (use true or false)");
  CHECK(error_of(top(pkg, ver, lib, "keep: 0\n")) == "manifest.yaml: keep: \"0\" must be between 1 and 4294967295");
  CHECK(error_of(top(pkg, ver, lib, "keep: 2.5\n")) == "manifest.yaml: keep: \"2.5\" is not a whole number");
  CHECK(error_of("- a\n- b\n") == "manifest.yaml: (top): must be a map, got a sequence");
  CHECK_THAT(error_of("package: [p\n"), Catch::StartsWith("manifest.yaml: line 2, column 1: "));
  CHECK(error_of(std::string(2 << 20, ' ')) == "manifest.yaml: larger than 1 MiB");
}

TEST_CASE("message values that would not end are refused", "[manifest][errors]") {
  CHECK_THAT(error_of(actor("{ on_load: { message: &m [1, *m] } }")),
             Catch::StartsWith("manifest.yaml: actors.Morse.on_load.message[1]") &&
                 Catch::Contains("nested deeper than 64 levels"));
}

// Found by fuzz/manifest.cpp: a key or value holding a control character
// (a NUL, or "\n" in a double-quoted scalar) reached the message as is, and a
// manifest from a peer could write lines of its own into the log.
TEST_CASE("control characters in keys and values are escaped, not written", "[manifest][errors]") {
  CHECK(error_of(std::string("package: p\nversi\0n: 1.0.0\nlibrary: l.so\nactors: { A: {} }\n", 58)) ==
        "manifest.yaml: versi\\x0a: unknown key (expected package, version, runtime, library, module, "
        "system_packages, actors, auto_unload, keep, "
        "limits)");
  CHECK(error_of(top(pkg, ver, lib, "\"x\\nINFO forged\": 1\n")) ==
        "manifest.yaml: x\\x0aINFO forged: unknown key (expected package, version, runtime, library, module, "
        "system_packages, actors, auto_unload, "
        "keep, limits)");
  CHECK(error_of(actor("{ restart: { within: \"1\\r0\\u007f\" } }")) ==
        "manifest.yaml: actors.Morse.restart.within: \"1\\x0d0\\x7f\" is not a duration (use 250ms, 10s, 2m)");
}

TEST_CASE("limits are read and bounded", "[manifest][limits]") {
  auto m = parse_manifest(
      top(pkg, ver, lib, "limits: { memory: 256M, cpu_time: 2m, open_files: 128, processes: 32 }\n"), "manifest.yaml");
  REQUIRE(m.ok());
  CHECK(m->limits.memory == 256ULL << 20);
  CHECK(m->limits.cpu_time == std::chrono::seconds(120));
  CHECK(m->limits.open_files == 128);
  CHECK(m->limits.processes == 32);
  auto none = parse_manifest(top(pkg, ver, lib), "manifest.yaml");
  REQUIRE(none.ok());
  CHECK(none->limits.empty());
  auto bytes = parse_manifest(top(pkg, ver, lib, "limits: { memory: 1073741824 }\n"), "manifest.yaml");
  REQUIRE(bytes.ok());
  CHECK(bytes->limits.memory == 1ULL << 30);
}

TEST_CASE("bad limits are one-line errors naming the field", "[manifest][limits]") {
  auto limits = [](const std::string& body) { return error_of(top(pkg, ver, lib, "limits: " + body + "\n")); };
  CHECK(limits("{ memory: lots }") == "manifest.yaml: limits.memory: \"lots\" is not a size (use 512M, 2G)");
  CHECK(limits("{ memory: 1.5G }") == "manifest.yaml: limits.memory: \"1.5G\" is not a size (use 512M, 2G)");
  CHECK(limits("{ memory: [1] }") == "manifest.yaml: limits.memory: a sequence is not a size (use 512M, 2G)");
  CHECK(limits("{ memory: 99999999999999999T }") ==
        "manifest.yaml: limits.memory: \"99999999999999999T\" is not a size (use 512M, 2G)");
  CHECK(limits("{ memory: 16777216T }") == "manifest.yaml: limits.memory: \"16777216T\" is not a size (use 512M, 2G)");
  CHECK(limits("{ memory: 1M }") == "manifest.yaml: limits.memory: \"1M\" must be at least 32M");
  CHECK(limits("{ cpu_time: 10 }") == "manifest.yaml: limits.cpu_time: \"10\" is not a duration (use 250ms, 10s, 2m)");
  CHECK(limits("{ cpu_time: 500ms }") ==
        "manifest.yaml: limits.cpu_time: \"500ms\" must be a whole number of seconds, at least 1s");
  CHECK(limits("{ cpu_time: 1500ms }") ==
        "manifest.yaml: limits.cpu_time: \"1500ms\" must be a whole number of seconds, at least 1s");
  CHECK(limits("{ open_files: 10 }") == "manifest.yaml: limits.open_files: \"10\" must be between 64 and 1048576");
  CHECK(limits("{ open_files: -1 }") == "manifest.yaml: limits.open_files: \"-1\" is not a whole number");
  CHECK(limits("{ processes: 5000000 }") ==
        "manifest.yaml: limits.processes: \"5000000\" must be between 16 and 4194304");
  CHECK(limits("{ threads: 4 }") ==
        "manifest.yaml: limits.threads: unknown key (expected memory, cpu_time, open_files, processes)");
  CHECK(limits("64M") == "manifest.yaml: limits: must be a map, got a scalar");
}

TEST_CASE("runtime python: module instead of library, class per actor", "[manifest][errors]") {
  const std::string py = "runtime: python\n";
  CHECK(error_of(pkg + ver + "runtime: java\nlibrary: l.so\nactors: { A: {} }\n") ==
        "manifest.yaml: runtime: \"java\" is not a runtime (use native or python)");
  CHECK(error_of(pkg + ver + py + "actors: { A: {} }\n") ==
        "manifest.yaml: module: missing (required for runtime: python)");
  CHECK(error_of(pkg + ver + py + lib + "module: m\nactors: { A: {} }\n") ==
        "manifest.yaml: library: not for runtime: python (a python package names its module instead)");
  CHECK(error_of(pkg + ver + py + "module: 9lives\nactors: { A: {} }\n") ==
        "manifest.yaml: module: \"9lives\" is not a Python module name (e.g. encoders or app.actors)");
  CHECK(error_of(pkg + ver + py + "module: a..b\nactors: { A: {} }\n") ==
        "manifest.yaml: module: \"a..b\" is not a Python module name (e.g. encoders or app.actors)");
  CHECK(error_of(pkg + ver + lib + "module: m\nactors: { A: {} }\n") ==
        "manifest.yaml: module: only for runtime: python");
  CHECK(error_of(pkg + ver + lib + "system_packages: true\nactors: { A: {} }\n") ==
        "manifest.yaml: system_packages: only for runtime: python");
  CHECK(error_of(pkg + ver + lib + "actors: { A: { class: Foo } }\n") ==
        "manifest.yaml: actors.A.class: only for runtime: python");
  CHECK(error_of(pkg + ver + py + "module: m\nactors: { A: { class: a-b } }\n") ==
        "manifest.yaml: actors.A.class: \"a-b\" is not a Python class name (letters, digits and _)");
}

TEST_CASE("a python manifest reads its module, classes and system_packages", "[manifest]") {
  auto m = parse_manifest(pkg + ver +
                              "runtime: python\nmodule: app.actors\nsystem_packages: true\n"
                              "actors: { A: { class: Alpha }, B: {} }\n",
                          "manifest.yaml");
  REQUIRE(m.ok());
  CHECK(m->runtime == runtime_kind::python);
  CHECK(m->module == "app.actors");
  CHECK(m->system_packages);
  CHECK(m->library.empty());
  CHECK(m->actors[0].class_name() == "Alpha");
  CHECK(m->actors[1].class_name() == "B");
  CHECK(module_files("app.actors") == std::vector<std::string>{"app/actors.py", "app/actors/__init__.py"});
  auto native = parse_manifest(pkg + ver + lib + "actors: { A: {} }\n", "manifest.yaml");
  REQUIRE(native.ok());
  CHECK(native->runtime == runtime_kind::native);
}
