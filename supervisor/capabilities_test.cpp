#include "supervisor/capabilities.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace troupe;
using namespace troupe::supervisor;
using troupe::manifests::capability_value;

TEST_CASE("a capability list gives typed values, names may hold spaces", "[capabilities]") {
  auto caps = parse_capabilities("morse, Caesar cipher ,gpu_mem=16,ratio=0.5,region=eu,legacy=false");
  REQUIRE(caps.ok());
  CHECK(caps->at("morse") == capability_value(true));
  CHECK(caps->at("Caesar cipher") == capability_value(true));
  CHECK(caps->at("gpu_mem") == capability_value(std::int64_t{16}));
  CHECK(caps->at("ratio") == capability_value(0.5));
  CHECK(caps->at("region") == capability_value(std::string("eu")));
  CHECK(caps->at("legacy") == capability_value(false));
  CHECK(to_json(*caps)["gpu_mem"] == 16);
}

TEST_CASE("an empty capability list is empty and an entry without a name is an error", "[capabilities]") {
  CHECK(parse_capabilities("")->empty());
  CHECK(parse_capabilities(" , ,")->empty());
  auto bad = parse_capabilities("morse,=3");
  REQUIRE_FALSE(bad.ok());
  CHECK_THAT(bad.err().message, Catch::Contains("=3"));
}

// Found by fuzz/capabilities.cpp: "gpu=nan" was taken as a double, which the
// JSON sent to other systems carries as null, and member_from_json refuses.
TEST_CASE("a capability that is not a finite number is an error", "[capabilities]") {
  for (const char* text : {"gpu=nan", "gpu=inf", "morse, gpu = -infinity"}) {
    auto bad = parse_capabilities(text);
    REQUIRE_FALSE(bad.ok());
    CHECK_THAT(bad.err().message, Catch::Contains("gpu") && Catch::Contains("not a finite number"));
  }
  CHECK(parse_capabilities("gpu=1e400")->at("gpu") == capability_value(std::string("1e400")));  // out of range: text
}
