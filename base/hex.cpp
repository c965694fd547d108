#include "base/hex.hpp"

#include <charconv>

namespace troupe::base {

namespace {
constexpr char digits[] = "0123456789abcdef";
}

std::string hex32(std::uint32_t id) {
  std::string out(8, '0');
  for (int i = 7; i >= 0; --i, id >>= 4) out[static_cast<std::size_t>(i)] = digits[id & 0xf];
  return out;
}

std::uint32_t parse_hex32(std::string_view text) {
  if (text.empty() || text.size() > 8) return 0;
  std::uint32_t v = 0;
  auto r = std::from_chars(text.data(), text.data() + text.size(), v, 16);
  return r.ec == std::errc{} && r.ptr == text.data() + text.size() ? v : 0;
}

std::string hex_encode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 0xf]);
  }
  return out;
}

bool is_lower_hex(std::string_view text) {
  return !text.empty() && text.find_first_not_of(digits) == std::string_view::npos;
}

std::string escape_controls(std::string_view text) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u != 0x7f) {
      out.push_back(c);
      continue;
    }
    out += "\\x";
    out.push_back(digits[u >> 4]);
    out.push_back(digits[u & 15]);
  }
  return out;
}

}  // namespace troupe::base
