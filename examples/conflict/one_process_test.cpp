// examples/conflict/one_process_test.cpp — why troupe runs one worker process
// per package version.
//
// conflict 1.0.0 and 2.0.0 are the same libconflict.so, each bundling its own
// lib/libcodec.so.1: codec 1.2 and codec 1.5, same soname, same symbols,
// different behaviour. Each layout loaded alone runs its own codec. Loaded into
// one process, the second package silently runs the first one's codec: the
// dynamic loader resolves NEEDED libcodec.so.1 to the library already loaded
// under that soname and never looks in the second package's lib/. No error, no
// warning, wrong answers. RTLD_LOCAL does not help (it scopes symbol lookup,
// not which file a soname names); only a separate process does, which is what
// a troupe worker is.
//
// Every dlopen happens in a forked child, so this binary never maps either
// codec and each case starts from a clean loader. A child reports key=value
// lines over a pipe and leaves with _exit.
#include "tests/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <dlfcn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <sstream>
#include <string>

namespace fs = std::filesystem;

using troupe::testing::temp_dir;

namespace {

/// Lays out one package version: dir/libconflict.so and dir/lib/libcodec.so.1,
/// both copies (copy_file follows the libcodec.so.1 symlink), so that the two
/// layouts share no file. Returns the package library's path.
fs::path lay_out(const fs::path& dir, const fs::path& codec) {
  fs::create_directories(dir / "lib");
  fs::copy_file(CONFLICT_LIBRARY, dir / "libconflict.so");
  fs::copy_file(codec, dir / "lib" / "libcodec.so.1");
  return dir / "libconflict.so";
}

using report = std::map<std::string, std::string>;

/// Runs body in a forked child and returns the key=value lines it produced;
/// "child" holds how the child ended ("ok" when it exited 0).
report in_child(const std::function<report()>& body) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(fds[0]);
    std::string out;
    try {
      for (const auto& [k, v] : body()) out += k + "=" + v + "\n";
    } catch (...) {
      ::_exit(3);  // never unwind into Catch2, which would go on running tests here
    }
    const char* p = out.data();
    std::size_t left = out.size();
    while (left > 0) {
      ssize_t n = ::write(fds[1], p, left);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) ::_exit(2);
      p += n;
      left -= static_cast<std::size_t>(n);
    }
    ::_exit(0);  // no atexit handlers, no Catch2 teardown in the child
  }
  ::close(fds[1]);
  std::string text;
  char buf[512];
  for (;;) {
    ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fds[0]);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  report r;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    auto eq = line.find('=');
    if (eq != std::string::npos) r[line.substr(0, eq)] = line.substr(eq + 1);
  }
  r["child"] = WIFEXITED(status) && WEXITSTATUS(status) == 0 ? "ok" : "failed, status " + std::to_string(status);
  return r;
}

// Child side. Loads one package library and records, under prefix, what its
// conflict_codec_version() answers, which file its libcodec.so.1 is and how
// that codec encodes "abc".
// Returns the handle (kept open on purpose), or nullptr after recording why.
void* load(const fs::path& library, const std::string& prefix, report& r) {
  void* h = ::dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (h == nullptr) {
    r[prefix + "error"] = ::dlerror();
    return nullptr;
  }
  using version_fn = const char* (*)();
  auto version = reinterpret_cast<version_fn>(::dlsym(h, "conflict_codec_version"));
  // Searched in h's dependency tree: the libcodec this package is bound to.
  void* codec_symbol = ::dlsym(h, "codec_version");
  using encode_fn = std::size_t (*)(const char*, char*, std::size_t);
  auto encode = reinterpret_cast<encode_fn>(::dlsym(h, "codec_encode"));
  Dl_info info{};
  if (version == nullptr || codec_symbol == nullptr || encode == nullptr || ::dladdr(codec_symbol, &info) == 0) {
    r[prefix + "error"] = "missing symbol in " + library.string();
    return nullptr;
  }
  r[prefix + "version"] = version();
  r[prefix + "codec_file"] = fs::canonical(info.dli_fname).string();
  char encoded[32];
  encode("abc", encoded, sizeof encoded);
  r[prefix + "encoded"] = encoded;
  return h;
}

std::string codec_file_of(const fs::path& package_dir) {
  return fs::canonical(package_dir / "lib" / "libcodec.so.1").string();
}

}  // namespace

TEST_CASE("each package version loaded alone runs the codec it bundles", "[conflict]") {
  temp_dir tmp;
  fs::path v1 = lay_out(tmp.path / "v1", CONFLICT_CODEC_1_2_PATH);
  fs::path v2 = lay_out(tmp.path / "v2", CONFLICT_CODEC_1_5_PATH);

  report r1 = in_child([&] {
    report r;
    load(v1, "", r);
    return r;
  });
  CHECK(r1["child"] == "ok");
  CHECK(r1["error"].empty());
  CHECK(r1["version"] == "1.2");
  CHECK(r1["encoded"] == "cba");
  CHECK(r1["codec_file"] == codec_file_of(tmp.path / "v1"));

  report r2 = in_child([&] {
    report r;
    load(v2, "", r);
    return r;
  });
  CHECK(r2["child"] == "ok");
  CHECK(r2["error"].empty());
  CHECK(r2["version"] == "1.5");
  CHECK(r2["encoded"] == "[1.5] ABC");
  CHECK(r2["codec_file"] == codec_file_of(tmp.path / "v2"));
}

TEST_CASE("in one process the second package version silently runs the first one's codec", "[conflict]") {
  temp_dir tmp;
  fs::path v1 = lay_out(tmp.path / "v1", CONFLICT_CODEC_1_2_PATH);
  fs::path v2 = lay_out(tmp.path / "v2", CONFLICT_CODEC_1_5_PATH);

  report r = in_child([&] {
    report out;
    void* h1 = load(v1, "v1.", out);
    void* h2 = h1 != nullptr ? load(v2, "v2.", out) : nullptr;
    // Two distinct package libraries were loaded; only libcodec was shared.
    out["distinct"] = h1 != nullptr && h2 != nullptr && h1 != h2 ? "yes" : "no";
    return out;
  });
  CHECK(r["child"] == "ok");
  CHECK(r["v1.error"].empty());
  CHECK(r["v2.error"].empty());
  CHECK(r["distinct"] == "yes");
  CHECK(r["v1.version"] == "1.2");
  // The point of the example: v2 bundles codec 1.5, yet reports 1.2, because
  // its libcodec.so.1 is v1's.
  CHECK(r["v2.version"] == "1.2");
  CHECK(r["v2.encoded"] == "cba");
  CHECK(r["v2.codec_file"] == codec_file_of(tmp.path / "v1"));
}
