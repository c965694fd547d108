#include "manifests/requirement.hpp"

#include <catch2/catch.hpp>

using namespace troupe::manifests;
using op = requirement_op;

namespace {

const capabilities caps = {
    {"morse", true}, {"gpu_mem", std::int64_t{16}}, {"cpu_ghz", 3.5}, {"region", std::string("eu")}, {"tls", false},
};

}  // namespace

TEST_CASE("equals needs the capability with an equal value", "[requirement]") {
  CHECK(satisfies(caps, {"morse", op::equals, true}));
  CHECK_FALSE(satisfies(caps, {"morse", op::equals, false}));
  CHECK(satisfies(caps, {"region", op::equals, std::string("eu")}));
  CHECK_FALSE(satisfies(caps, {"region", op::equals, std::string("us")}));
  CHECK_FALSE(satisfies(caps, {"missing", op::equals, true}));
  CHECK_FALSE(satisfies(caps, {"morse", op::equals, std::int64_t{1}}));  // bool is not a number
}

TEST_CASE("numbers compare across int and double", "[requirement]") {
  CHECK(satisfies(caps, {"gpu_mem", op::equals, 16.0}));
  CHECK(satisfies(caps, {"gpu_mem", op::at_least, 15.5}));
  CHECK(satisfies(caps, {"cpu_ghz", op::at_least, std::int64_t{3}}));
  CHECK_FALSE(satisfies(caps, {"cpu_ghz", op::at_most, std::int64_t{3}}));
}

TEST_CASE("at_least and at_most need a numeric capability within the bound", "[requirement]") {
  CHECK(satisfies(caps, {"gpu_mem", op::at_least, std::int64_t{16}}));
  CHECK_FALSE(satisfies(caps, {"gpu_mem", op::at_least, std::int64_t{17}}));
  CHECK(satisfies(caps, {"gpu_mem", op::at_most, std::int64_t{16}}));
  CHECK_FALSE(satisfies(caps, {"gpu_mem", op::at_most, std::int64_t{15}}));
  CHECK_FALSE(satisfies(caps, {"region", op::at_least, std::int64_t{1}}));
  CHECK_FALSE(satisfies(caps, {"missing", op::at_most, std::int64_t{1}}));
}

TEST_CASE("exists and absent look only at presence", "[requirement]") {
  CHECK(satisfies(caps, {"tls", op::exists, {}}));  // even when false
  CHECK_FALSE(satisfies(caps, {"missing", op::exists, {}}));
  CHECK(satisfies(caps, {"missing", op::absent, {}}));
  CHECK_FALSE(satisfies(caps, {"tls", op::absent, {}}));
}

TEST_CASE("unmet names the first failing requirement and what the system has", "[requirement]") {
  CHECK(unmet(caps, {}) == std::nullopt);
  CHECK(unmet(caps, {{"morse", op::equals, true}, {"tls", op::exists, {}}}) == std::nullopt);
  CHECK(unmet({}, {{"morse", op::equals, true}}) == "morse: requires true, system has none");
  CHECK(unmet(caps, {{"morse", op::equals, true}, {"region", op::equals, std::string("us")}}) ==
        "region: requires \"us\", system has \"eu\"");
  CHECK(unmet(caps, {{"gpu_mem", op::at_least, std::int64_t{32}}}) == "gpu_mem: requires >= 32, system has 16");
  CHECK(unmet(caps, {{"cpu_ghz", op::at_most, 2.5}}) == "cpu_ghz: requires <= 2.5, system has 3.5");
  CHECK(unmet(caps, {{"fpga", op::exists, {}}}) == "fpga: requires it to exist, system has none");
  CHECK(unmet(caps, {{"tls", op::absent, {}}}) == "tls: requires it to be absent, system has false");
}
