// troupe/address.hpp — the actor address: a stable logical id, valid across
// restarts and moves. Value type; safe to copy between threads.
//
// Text form: "@" + 8 lowercase hex digits of the allocating system + "." +
// decimal serial, for example "@3fa9c012.17". The leading "@" keeps addresses
// apart from global names, which may not start with it.
#pragma once

#include <charconv>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace troupe {

class address {
 public:
  constexpr address() = default;
  constexpr explicit address(std::uint64_t value) : value_(value) {}
  constexpr address(std::uint32_t system, std::uint32_t serial) : value_((std::uint64_t{system} << 32) | serial) {}

  [[nodiscard]] constexpr std::uint64_t value() const { return value_; }
  [[nodiscard]] constexpr std::uint32_t system() const { return static_cast<std::uint32_t>(value_ >> 32); }
  [[nodiscard]] constexpr std::uint32_t serial() const { return static_cast<std::uint32_t>(value_); }
  [[nodiscard]] constexpr bool valid() const { return value_ != 0; }
  constexpr explicit operator bool() const { return valid(); }
  constexpr auto operator<=>(const address&) const = default;

  [[nodiscard]] std::string to_string() const {
    char buf[32];
    int n = std::snprintf(buf, sizeof buf, "@%08x.%u", system(), serial());
    return std::string(buf, static_cast<std::size_t>(n));
  }

  /// Parses the text form; nullopt for anything else (including "@0.0").
  [[nodiscard]] static std::optional<address> parse(std::string_view text) {
    if (text.size() < 4 || text.front() != '@') return std::nullopt;
    auto dot = text.find('.');
    if (dot == std::string_view::npos || dot == 1 || dot > 9) return std::nullopt;
    std::uint32_t sys = 0;
    std::uint32_t ser = 0;
    auto hex = text.substr(1, dot - 1);
    auto dec = text.substr(dot + 1);
    if (dec.empty()) return std::nullopt;
    auto r1 = std::from_chars(hex.data(), hex.data() + hex.size(), sys, 16);
    if (r1.ec != std::errc{} || r1.ptr != hex.data() + hex.size()) return std::nullopt;
    auto r2 = std::from_chars(dec.data(), dec.data() + dec.size(), ser, 10);
    if (r2.ec != std::errc{} || r2.ptr != dec.data() + dec.size()) return std::nullopt;
    address a(sys, ser);
    if (!a.valid()) return std::nullopt;
    return a;
  }

 private:
  std::uint64_t value_ = 0;
};

}  // namespace troupe

template <>
struct std::hash<troupe::address> {
  std::size_t operator()(const troupe::address& a) const noexcept { return std::hash<std::uint64_t>{}(a.value()); }
};
