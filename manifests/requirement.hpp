// manifests/requirement.hpp — capability predicates an actor type places on
// the system that hosts it (`requires:` in docs/MANIFEST.md), and the check of
// a system's capabilities against them. Pure functions over value types; safe
// from any thread.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace troupe::manifests {

/// A capability's value. Numbers compare across int64 and double.
using capability_value = std::variant<bool, std::int64_t, double, std::string>;

/// What a system offers: capability name → value.
using capabilities = std::map<std::string, capability_value>;

struct requirement {
  std::string capability;
  enum class op {
    equals,    ///< present and equal to value (numbers compare across int/double)
    at_least,  ///< present, numeric and >= value
    at_most,   ///< present, numeric and <= value
    exists,    ///< present, whatever its value; value is unused
    absent,    ///< not present; value is unused
  } op = op::equals;
  capability_value value;

  friend bool operator==(const requirement&, const requirement&) = default;
};

/// The member op hides the enum's name inside requirement, so
/// requirement::op::at_least works but declaring a variable of the type needs
/// this alias (or `enum requirement::op`).
using requirement_op = enum requirement::op;

/// Renders a value as in messages: true, 16, 1.5, "eu".
[[nodiscard]] std::string to_string(const capability_value& v);

/// Whether caps meets r.
[[nodiscard]] bool satisfies(const capabilities& caps, const requirement& r);

/// The first requirement caps does not meet, as one line such as
/// "morse: requires true, system has none"; nullopt when all are met.
[[nodiscard]] std::optional<std::string> unmet(const capabilities& caps, const std::vector<requirement>& reqs);

}  // namespace troupe::manifests
