// ipc/json_limits.hpp — parsing JSON that comes from outside the process
// (clients, workers, other systems) without letting it choose the depth of
// the daemon's recursion. nlohmann::json parses iteratively, but dump(),
// comparison and copies recurse: 80,000 levels of '[' (160 KB) overflow the
// stack. Text nested deeper than the limit is refused before it is parsed.
// Pure functions; any thread.
#pragma once

#include <troupe/result.hpp>

#include <nlohmann/json.hpp>

#include <cstddef>
#include <string_view>

namespace troupe::ipc {

/// Nesting accepted by default (`troupe start --max-json-depth`).
inline constexpr std::size_t default_max_json_depth = 256;

/// The deepest nesting of arrays and objects in text, counting no further
/// than limit + 1 (brackets inside strings do not count). Linear, no allocation.
[[nodiscard]] std::size_t json_depth(std::string_view text, std::size_t limit);

/// Parses text as JSON nested at most max_depth levels: errc::limit
/// ("JSON nested deeper than N levels") or errc::invalid_argument when it is
/// not JSON at all. Never throws.
[[nodiscard]] result<nlohmann::json> parse_json(std::string_view text, std::size_t max_depth = default_max_json_depth);

/// The value of key in the top-level object of text when it is a string or
/// a number, else null; text may be malformed or nested at any depth (it is
/// read by an iterative SAX pass that keeps nothing else). Lets an error
/// answer carry the request's rid when the request itself is refused.
[[nodiscard]] nlohmann::json top_level_scalar(std::string_view text, std::string_view key);

}  // namespace troupe::ipc
