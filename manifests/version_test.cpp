#include "manifests/version.hpp"

#include <catch2/catch.hpp>

using troupe::manifests::parse_version;
using troupe::manifests::version;

namespace {

version v(std::string_view text) {
  auto r = parse_version(text);
  REQUIRE(r.ok());
  return *r;
}

}  // namespace

TEST_CASE("a version is 1 to 4 dot-separated numbers and keeps its text", "[version]") {
  CHECK(v("1.4.2").fields == std::vector<std::uint64_t>{1, 4, 2});
  CHECK(v("1.4.2").text == "1.4.2");
  CHECK(v("202611231015").fields == std::vector<std::uint64_t>{202611231015});
  CHECK(v("1.2.3.4").fields.size() == 4);
  CHECK(v("18446744073709551615").fields[0] == UINT64_MAX);
}

TEST_CASE("anything else is an error naming the text", "[version]") {
  for (const char* bad : {"", ".", "1.", ".1", "1..2", "1.2.3.4.5", "v1", "1.x", "-1", "+1", "1.2 ", " 1", "1,2",
                          "18446744073709551616"}) {
    auto r = parse_version(bad);
    INFO(bad);
    REQUIRE_FALSE(r.ok());
    CHECK(r.err().code == troupe::errc::invalid_argument);
    CHECK_THAT(r.err().message, Catch::Contains("\"" + std::string(bad) + "\" is not a version"));
  }
}

TEST_CASE("versions compare field by field numerically", "[version]") {
  CHECK(v("1.10") > v("1.9"));
  CHECK(v("1.9") < v("1.10"));
  CHECK(v("2.0") == v("2.0.0"));
  CHECK(v("2") == v("2.0.0.0"));
  CHECK(v("2.0.1") > v("2"));
  CHECK(v("10.0") > v("9.99.99"));
  CHECK(v("202611231015") > v("202611231014"));
  CHECK(v("1.4.2") != v("1.4.3"));
}
