// Unit tests of the dashboard's pure checks: Host (DNS rebinding), the
// token's comparison, its URL. The HTTP API itself is tested against a live
// system (tests/integration/dashboard_test.cpp) and in a real Chromium.
#include "supervisor/dashboard.hpp"

#include <catch2/catch.hpp>

using troupe::supervisor::dashboard;

TEST_CASE("a Host header must be an IP address or localhost with the dashboard's port") {
  CHECK(dashboard::host_allowed("127.0.0.1:8080", 8080));
  CHECK(dashboard::host_allowed("localhost:8080", 8080));
  CHECK(dashboard::host_allowed("10.0.0.5:8080", 8080));
  CHECK(dashboard::host_allowed("[::1]:8080", 8080));
  CHECK_FALSE(dashboard::host_allowed("127.0.0.1:8081", 8080));     // another port
  CHECK_FALSE(dashboard::host_allowed("127.0.0.1", 8080));          // no port
  CHECK_FALSE(dashboard::host_allowed("evil.example:8080", 8080));  // a name DNS could point here
  CHECK_FALSE(dashboard::host_allowed("localhost.evil:8080", 8080));
  CHECK_FALSE(dashboard::host_allowed("::1:8080", 8080));  // IPv6 without brackets
  CHECK_FALSE(dashboard::host_allowed("[::1:8080", 8080));
  CHECK_FALSE(dashboard::host_allowed("", 8080));
  CHECK_FALSE(dashboard::host_allowed(":8080", 8080));
}

TEST_CASE("the token is compared whole") {
  CHECK(dashboard::same_secret("abcdef", "abcdef"));
  CHECK_FALSE(dashboard::same_secret("abcdef", "abcdeg"));
  CHECK_FALSE(dashboard::same_secret("abcdef", "abcde"));
  CHECK_FALSE(dashboard::same_secret("", "abcdef"));
  CHECK(dashboard::same_secret("", ""));
}

TEST_CASE("the dashboard's URL names its listener") {
  CHECK(dashboard::url_of("127.0.0.1:8080") == "http://127.0.0.1:8080/");
  CHECK(dashboard::url_of("::1:8080") == "http://[::1]:8080/");
  CHECK(dashboard::url_of("nonsense").empty());
}
