#include "base/hex.hpp"

#include <catch2/catch.hpp>

using namespace troupe::base;

TEST_CASE("system ids are 8 lowercase hex digits both ways", "[hex]") {
  CHECK(hex32(0x3fa9c012) == "3fa9c012");
  CHECK(hex32(1) == "00000001");
  CHECK(parse_hex32("3fa9c012") == 0x3fa9c012u);
  CHECK(parse_hex32("1") == 1u);
  CHECK(parse_hex32("") == 0u);
  CHECK(parse_hex32("123456789") == 0u);
  CHECK(parse_hex32("12g4") == 0u);
  CHECK(hex_encode(std::string("\x00\xff\x10", 3)) == "00ff10");
  CHECK(is_lower_hex("00ff"));
  CHECK_FALSE(is_lower_hex("00FF"));
  CHECK_FALSE(is_lower_hex(""));
}

TEST_CASE("escape_controls keeps text on one line", "[hex]") {
  CHECK(troupe::base::escape_controls("plain text, \xc3\xa9") == "plain text, \xc3\xa9");
  CHECK(troupe::base::escape_controls(std::string("a\nb\r\x7f\0", 6)) == "a\\x0ab\\x0d\\x7f\\x00");
  CHECK(troupe::base::escape_controls("").empty());
}
