#include "ipc/fence_page.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>

namespace fs = std::filesystem;
using troupe::ipc::fence_page;

namespace {
struct temp_dir {
  fs::path path;
  temp_dir() {
    std::string t = (fs::temp_directory_path() / "fence-XXXXXX").string();
    path = ::mkdtemp(t.data());
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};
}  // namespace

TEST_CASE("a fence page holds a lease until its deadline, and only that lease", "[fence]") {
  temp_dir d;
  const auto file = d.path / "fence";
  REQUIRE(troupe::ipc::create_fence_file(file));
  fence_page system, worker;
  REQUIRE(system.open(file, true));
  REQUIRE(worker.open(file, false));
  CHECK(worker.lease() == 0);
  CHECK(worker.until_ms() == fence_page::never);
  CHECK_FALSE(worker.holds(7, 100));  // no lease yet

  system.grant(7, 1000);
  CHECK(worker.holds(7, 999));
  CHECK_FALSE(worker.holds(7, 1000));  // at the deadline it is gone
  CHECK_FALSE(worker.holds(8, 10));    // another lease's actors

  system.extend(2000);  // renewed
  CHECK(worker.holds(7, 1500));
  system.extend(1200);  // lost at 1200
  CHECK_FALSE(worker.holds(7, 1200));
  system.grant(9, 5000);  // a new lease: the old one's actors never hold again
  CHECK_FALSE(worker.holds(7, 1300));
  CHECK(worker.holds(9, 1300));
}

TEST_CASE("a file that is not a fence page is refused", "[fence]") {
  temp_dir d;
  const auto file = d.path / "other";
  std::ofstream(file) << std::string(4096, 'x');
  fence_page p;
  auto s = p.open(file, false);
  REQUIRE_FALSE(s);
  CHECK(s.err().message.find("is not a fence page") != std::string::npos);
  CHECK_FALSE(p.is_open());
  CHECK_FALSE(p.open(d.path / "absent", false));
}
