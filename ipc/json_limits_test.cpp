// Tests of the JSON depth guard: text from outside may not choose how deep
// the daemon recurses (dump, copies and comparisons of nlohmann::json do).
#include "ipc/json_limits.hpp"

#include <catch2/catch.hpp>

#include <string>

using troupe::errc;
using namespace troupe::ipc;

namespace {
std::string nested(std::size_t levels, char open = '[', char close = ']') {
  return std::string(levels, open) + std::string(levels, close);
}
}  // namespace

TEST_CASE("json_depth counts arrays and objects, not brackets inside strings", "[json]") {
  CHECK(json_depth("1", 10) == 0);
  CHECK(json_depth("[]", 10) == 1);
  CHECK(json_depth(R"({"a":[{"b":[]}]})", 10) == 4);
  CHECK(json_depth(R"(["[[[[", "\"[[[", {"k]]}": "{{{"}])", 10) == 2);
  CHECK(json_depth(R"(["\\", [[]]])", 10) == 3);  // an escaped backslash ends before the quote
}

TEST_CASE("json_depth stops counting past its limit", "[json]") {
  CHECK(json_depth(nested(1000), 8) == 9);
  CHECK(json_depth(nested(8), 8) == 8);
}

TEST_CASE("parse_json takes text up to the limit and refuses deeper text before parsing it", "[json]") {
  auto ok = parse_json(nested(256), 256);
  REQUIRE(ok.ok());
  CHECK(ok->is_array());

  // 80,000 levels (160 KB) crashed the daemon through a recursive dump.
  auto deep = parse_json(nested(80000), 256);
  REQUIRE_FALSE(deep.ok());
  CHECK(deep.err().code == errc::limit);
  CHECK(deep.err().message == "JSON nested deeper than 256 levels");

  auto objects = parse_json(R"({"a":{"a":{"a":{}}}})", 3);
  REQUIRE_FALSE(objects.ok());
  CHECK(objects.err().code == errc::limit);
}

TEST_CASE("parse_json says when text is not JSON at all", "[json]") {
  auto bad = parse_json("{\"a\":", 256);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.err().code == errc::invalid_argument);
  CHECK(bad.err().message == "not valid JSON");
  // Unbalanced closers do not confuse the depth count; the parser refuses them.
  CHECK(parse_json("]]]]", 2).err().code == errc::invalid_argument);
}

TEST_CASE("top_level_scalar finds a request's rid however deep or broken the rest is", "[json]") {
  const std::string deep(80000, '[');
  CHECK(top_level_scalar(R"({"rid":7,"payload":)" + deep, "rid") == 7);
  CHECK(top_level_scalar(R"({"payload":)" + deep + std::string(80000, ']') + R"(,"rid":"x"})", "rid") == "x");
  CHECK(top_level_scalar(R"({"a":{"rid":7}})", "rid").is_null());  // not top-level
  CHECK(top_level_scalar(R"({"rid":[1]})", "rid").is_null());      // not a scalar
  CHECK(top_level_scalar(R"({"rid":)" + deep, "rid").is_null());
  CHECK(top_level_scalar("not json", "rid").is_null());
}
