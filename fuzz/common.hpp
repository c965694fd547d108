// fuzz/common.hpp — shared by the fuzz targets: the input format of those that
// take several parts (a flags byte, then the parts separated by "\n--\n", so
// text seeds stay readable: JSON bodies never hold a raw newline inside a
// string), and the check of an invariant.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace troupe::fuzz {

/// Ends the run as a crash, saying which invariant broke.
inline void expect(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "fuzz invariant broken: %s\n", what);
  std::abort();
}

inline constexpr std::string_view part_separator = "\n--\n";

struct split_input {
  std::uint8_t flags = 0;
  std::vector<std::string_view> parts;
};

inline split_input split(const std::uint8_t* data, std::size_t size) {
  split_input out;
  if (size == 0) return out;
  out.flags = data[0];
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  while (true) {
    const auto at = rest.find(part_separator);
    out.parts.push_back(rest.substr(0, at));
    if (at == std::string_view::npos) break;
    rest.remove_prefix(at + part_separator.size());
  }
  return out;
}

/// The inverse of split, for writing seeds.
inline std::string join(std::uint8_t flags, const std::vector<std::string>& parts) {
  std::string out(1, static_cast<char>(flags));
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (i != 0) out += part_separator;
    out += parts[i];
  }
  return out;
}

}  // namespace troupe::fuzz
