#include "manifests/requirement.hpp"

#include <charconv>
#include <compare>

namespace troupe::manifests {

namespace {

std::optional<double> as_number(const capability_value& v) {
  if (const auto* i = std::get_if<std::int64_t>(&v)) return static_cast<double>(*i);
  if (const auto* d = std::get_if<double>(&v)) return *d;
  return std::nullopt;
}

// Exact when both are integers (no rounding above 2^53), else through double.
std::optional<std::partial_ordering> compare(const capability_value& a, const capability_value& b) {
  const auto* ai = std::get_if<std::int64_t>(&a);
  const auto* bi = std::get_if<std::int64_t>(&b);
  if (ai && bi) return *ai <=> *bi;
  auto x = as_number(a);
  auto y = as_number(b);
  if (!x || !y) return std::nullopt;
  return *x <=> *y;
}

bool equal(const capability_value& a, const capability_value& b) {
  if (auto c = compare(a, b)) return *c == 0;
  return a == b;  // different alternatives (bool vs string, ...) are unequal
}

std::string wanted(const requirement& r) {
  switch (r.op) {
    case requirement::op::equals:
      return "requires " + to_string(r.value);
    case requirement::op::at_least:
      return "requires >= " + to_string(r.value);
    case requirement::op::at_most:
      return "requires <= " + to_string(r.value);
    case requirement::op::exists:
      return "requires it to exist";
    case requirement::op::absent:
      return "requires it to be absent";
  }
  return "requires ?";
}

}  // namespace

std::string to_string(const capability_value& v) {
  if (const auto* b = std::get_if<bool>(&v)) return *b ? "true" : "false";
  if (const auto* i = std::get_if<std::int64_t>(&v)) return std::to_string(*i);
  if (const auto* d = std::get_if<double>(&v)) {
    char buf[32];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, *d);
    return ec == std::errc{} ? std::string(buf, end) : std::string("?");
  }
  return "\"" + std::get<std::string>(v) + "\"";
}

bool satisfies(const capabilities& caps, const requirement& r) {
  auto it = caps.find(r.capability);
  const bool present = it != caps.end();
  switch (r.op) {
    case requirement::op::equals:
      return present && equal(it->second, r.value);
    case requirement::op::at_least: {
      auto c = present ? compare(it->second, r.value) : std::nullopt;
      return c && *c >= 0;
    }
    case requirement::op::at_most: {
      auto c = present ? compare(it->second, r.value) : std::nullopt;
      return c && *c <= 0;
    }
    case requirement::op::exists:
      return present;
    case requirement::op::absent:
      return !present;
  }
  return false;
}

std::optional<std::string> unmet(const capabilities& caps, const std::vector<requirement>& reqs) {
  for (const auto& r : reqs) {
    if (satisfies(caps, r)) continue;
    auto it = caps.find(r.capability);
    const std::string has = it == caps.end() ? "none" : to_string(it->second);
    return r.capability + ": " + wanted(r) + ", system has " + has;
  }
  return std::nullopt;
}

}  // namespace troupe::manifests
