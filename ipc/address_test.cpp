// Tests of troupe::address and its text form "@%08x.%u".
#include <troupe/address.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <unordered_set>

using troupe::address;

TEST_CASE("an address splits into its system and serial", "[address]") {
  const address a(0x3fa9c012u, 17u);
  CHECK(a.system() == 0x3fa9c012u);
  CHECK(a.serial() == 17u);
  CHECK(a.value() == 0x3fa9c01200000011u);
  CHECK(address(0x3fa9c01200000011u) == a);
  CHECK(a.valid());
  CHECK_FALSE(address().valid());
  CHECK_FALSE(static_cast<bool>(address()));
}

TEST_CASE("an address prints as @, eight hex digits, a dot and the serial", "[address]") {
  CHECK(address(1u, 16u).to_string() == "@00000001.16");
  CHECK(address(0x3fa9c012u, 17u).to_string() == "@3fa9c012.17");
  CHECK(address(0xffffffffu, 0xffffffffu).to_string() == "@ffffffff.4294967295");
  CHECK(address().to_string() == "@00000000.0");
}

TEST_CASE("@00000001.16 parses to system 1, serial 16", "[address]") {
  const auto a = address::parse("@00000001.16");
  REQUIRE(a);
  CHECK(a->system() == 1u);
  CHECK(a->serial() == 16u);
}

TEST_CASE("an address survives to_string and parse", "[address]") {
  for (const address a : {address(1u, 16u), address(0x3fa9c012u, 17u), address(0u, 1u), address(1u, 0u),
                          address(0xffffffffu, 0xffffffffu), address(0x80000000u, 4096u)}) {
    INFO(a.to_string());
    const auto back = address::parse(a.to_string());
    REQUIRE(back);
    CHECK(*back == a);
  }
}

TEST_CASE("malformed address text is refused", "[address]") {
  const char* bad[] = {
      "",
      "@",
      "@.",
      "@zz.1",
      "@1.",
      "@.1",
      "1.2",
      "@0.0",
      "@00000000.0",
      "@123456789.1",  // nine hex digits
      "@1.2 ",         // trailing junk
      "@1.2x",
      "@1.2.3",
      "@00000001.16\n",
      " @1.2",  // leading junk
      "@ 1.2",
      "@1. 2",
      "@0x1.2",
      "@-1.2",
      "@1.-2",
      "@+1.2",
      "@1.+2",
      "@1.4294967296",  // serial does not fit in 32 bits
      "#00000001.16",
      "@00000001,16",
      "@00000001",
  };
  for (const char* text : bad) {
    INFO('"' << text << '"');
    CHECK_FALSE(address::parse(text));
  }
}

TEST_CASE("a string_view without a terminating NUL is parsed by its length only", "[address]") {
  const std::string text = "@00000001.16789";
  const auto a = address::parse(std::string_view(text).substr(0, 12));
  REQUIRE(a);
  CHECK(*a == address(1u, 16u));
}

TEST_CASE("addresses order by system, then serial, and hash by value", "[address]") {
  CHECK(address(1u, 500u) < address(2u, 16u));
  CHECK(address(2u, 16u) < address(2u, 17u));
  std::unordered_set<address> set{address(1u, 16u), address(1u, 16u), address(1u, 17u)};
  CHECK(set.size() == 2);
}
