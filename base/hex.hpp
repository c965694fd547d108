// base/hex.hpp — lowercase hexadecimal: system ids ("3fa9c012", the first
// part of an address) and digests. Pure functions; any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace troupe::base {

/// 8 lowercase hex digits: how a system id is written everywhere.
[[nodiscard]] std::string hex32(std::uint32_t id);
/// The value of 1 to 8 hex digits; 0 (never a valid id) for anything else.
[[nodiscard]] std::uint32_t parse_hex32(std::string_view text);
/// Two lowercase hex digits per byte.
[[nodiscard]] std::string hex_encode(std::string_view bytes);
/// Whether text is non-empty and lowercase hex digits only.
[[nodiscard]] bool is_lower_hex(std::string_view text);
/// text with each control character (below 0x20, and 0x7f) written \xNN, so
/// that text quoted from outside stays on one line of an error or a log.
[[nodiscard]] std::string escape_controls(std::string_view text);

}  // namespace troupe::base
