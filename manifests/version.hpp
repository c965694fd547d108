// manifests/version.hpp — package versions: 1 to 4 dot-separated non-negative
// integers ("1.4.2", or a `troupe pack` date version "202611231015"), compared
// field by field numerically with missing fields counting as 0 (2.0 == 2.0.0,
// 1.10 > 1.9). Plain value type; no shared state, safe from any thread.
#pragma once

#include <troupe/result.hpp>

#include <compare>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace troupe::manifests {

struct version {
  std::vector<std::uint64_t> fields;  ///< 1..4 numbers, most significant first
  std::string text;                   ///< as written, for messages and file names

  /// Numeric field-by-field order; text is ignored, so "2.0" == "2.0.0".
  friend std::strong_ordering operator<=>(const version& a, const version& b);
  friend bool operator==(const version& a, const version& b) { return (a <=> b) == 0; }
};

/// Parses "1.4.2". Error invalid_argument naming the text when a field is
/// empty, not a decimal number, too large for 64 bits, or there are more than
/// 4 fields.
[[nodiscard]] result<version> parse_version(std::string_view text);

}  // namespace troupe::manifests
