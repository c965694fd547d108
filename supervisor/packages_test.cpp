#include "supervisor/packages.hpp"

#include <catch2/catch.hpp>

using namespace troupe;
using namespace troupe::supervisor;

namespace {

package_entry entry(std::string id, std::string group, std::string version) {
  package_entry e;
  e.id = std::move(id);
  e.m.package = std::move(group);
  e.m.version = *manifests::parse_version(version);
  return e;
}

// Adds and marks loaded, as the system does once the worker registered.
package_entry& loaded(package_set& set, package_entry e) {
  auto& p = set.add(std::move(e));
  p.phase = package_phase::loaded;
  return p;
}

}  // namespace

TEST_CASE("the highest loaded version of a group is active", "[packages]") {
  package_set set;
  loaded(set, entry("aa11", "codec", "1.2"));
  auto change = set.update_active("codec");
  CHECK(change.activated == "aa11");
  CHECK(change.deactivated.empty());

  loaded(set, entry("bb22", "codec", "1.10"));  // 1.10 > 1.2: numeric fields
  change = set.update_active("codec");
  CHECK(change.deactivated == "aa11");
  CHECK(change.activated == "bb22");
  CHECK(set.find("bb22")->active);
  CHECK_FALSE(set.find("aa11")->active);

  // An older version loaded later does not take over.
  loaded(set, entry("cc33", "codec", "1.0"));
  CHECK_FALSE(set.update_active("codec").changed());

  // Unloading the active one re-activates the highest of the rest.
  set.find("bb22")->phase = package_phase::unloading;
  change = set.update_active("codec");
  CHECK(change.deactivated == "bb22");
  CHECK(change.activated == "aa11");
}

TEST_CASE("for one version the later load is active; a loading package never is", "[packages]") {
  package_set set;
  loaded(set, entry("aa", "g", "2.0"));
  loaded(set, entry("bb", "g", "2.0.0"));
  CHECK(set.update_active("g").activated == "bb");
  set.add(entry("cc", "g", "9.0"));  // still loading
  CHECK_FALSE(set.update_active("g").changed());
  CHECK(set.update_active("other").activated.empty());
}

TEST_CASE("packages are named by id, unique id prefix or group", "[packages]") {
  package_set set;
  loaded(set, entry("abcdef0123", "enc", "1.0"));
  loaded(set, entry("abcdef4567", "enc", "2.0"));
  loaded(set, entry("cafe00", "cafe", "1.0"));
  set.update_active("enc");
  set.update_active("cafe");

  CHECK((*set.resolve("abcdef0123"))->id == "abcdef0123");
  CHECK((*set.resolve("abcdef01"))->id == "abcdef0123");
  CHECK((*set.resolve("enc"))->id == "abcdef4567");  // the active version
  CHECK((*set.resolve("cafe"))->id == "cafe00");     // a hex-looking group name is a group

  auto ambiguous = set.resolve("abcdef");
  REQUIRE_FALSE(ambiguous);
  CHECK(ambiguous.err().code == errc::invalid_argument);
  CHECK_THAT(ambiguous.err().message, Catch::Contains("ambiguous"));

  auto gone = set.resolve("0123456789");
  REQUIRE_FALSE(gone);
  CHECK(gone.err().code == errc::not_found);
  CHECK(gone.err().message == "package 0123456789 is not loaded on this system");

  auto no_group = set.resolve("morse");
  REQUIRE_FALSE(no_group);
  CHECK(no_group.err().message == "no package 'morse' is loaded");

  set.find("abcdef0123")->phase = package_phase::unloading;
  CHECK_FALSE(set.resolve("abcdef0123"));  // unloading: no longer named
  CHECK((*set.resolve("abcdef"))->id == "abcdef4567");
}

TEST_CASE("roles resolve to the active version's actor", "[packages]") {
  package_set set;
  auto& v1 = loaded(set, entry("aa", "foo", "1.0"));
  v1.roles["MainFoo"] = address(1, 100);
  auto& v2 = loaded(set, entry("bb", "foo", "2.0"));
  v2.roles["MainFoo"] = address(1, 200);
  auto& other = loaded(set, entry("cc", "bar", "1.0"));
  other.roles["Shared"] = address(1, 300);
  set.update_active("foo");
  set.update_active("bar");

  CHECK(*set.role("MainFoo", "") == address(1, 200));
  CHECK(*set.role("MainFoo", "foo") == address(1, 200));
  set.find("bb")->phase = package_phase::unloading;
  set.update_active("foo");
  CHECK(*set.role("MainFoo", "") == address(1, 100));

  auto missing = set.role("Nope", "");
  REQUIRE_FALSE(missing);
  CHECK(missing.err().message == "no loaded package has role 'Nope'");
  CHECK_FALSE(set.role("MainFoo", "bar"));

  auto& again = loaded(set, entry("dd", "baz", "1.0"));
  again.roles["Shared"] = address(1, 400);
  auto ambiguous = set.role("Shared", "");
  REQUIRE_FALSE(ambiguous);
  CHECK_THAT(ambiguous.err().message, Catch::Contains("pass --group"));
  CHECK(*set.role("Shared", "baz") == address(1, 400));
}

TEST_CASE("all() lists by group, newest first", "[packages]") {
  package_set set;
  loaded(set, entry("1", "b", "1.0"));
  loaded(set, entry("2", "a", "1.0"));
  loaded(set, entry("3", "b", "3.0"));
  auto all = set.all();
  REQUIRE(all.size() == 3);
  CHECK(all[0]->id == "2");
  CHECK(all[1]->id == "3");
  CHECK(all[2]->id == "1");
  set.erase("3");
  CHECK(set.size() == 2);
}
