#include "supervisor/capabilities.hpp"

#include <nlohmann/json.hpp>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <string>

namespace troupe::supervisor {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

manifests::capability_value parse_capability_value(std::string_view text) {
  text = trim(text);
  if (text == "true") return true;
  if (text == "false") return false;
  std::int64_t i = 0;
  auto ri = std::from_chars(text.data(), text.data() + text.size(), i);
  if (!text.empty() && ri.ec == std::errc{} && ri.ptr == text.data() + text.size()) return i;
  double d = 0;
  auto rd = std::from_chars(text.data(), text.data() + text.size(), d);
  if (!text.empty() && rd.ec == std::errc{} && rd.ptr == text.data() + text.size()) return d;
  return std::string(text);
}

result<manifests::capabilities> parse_capabilities(std::string_view text) {
  manifests::capabilities caps;
  std::size_t start = 0;
  while (start <= text.size()) {
    auto comma = text.find(',', start);
    if (comma == std::string_view::npos) comma = text.size();
    auto entry = trim(text.substr(start, comma - start));
    start = comma + 1;
    if (entry.empty()) {
      if (comma == text.size()) break;
      continue;
    }
    auto eq = entry.find('=');
    auto name = trim(entry.substr(0, eq));
    if (name.empty())
      return make_error(errc::invalid_argument, "capability entry '" + std::string(entry) + "' has no name");
    auto value =
        eq == std::string_view::npos ? manifests::capability_value(true) : parse_capability_value(entry.substr(eq + 1));
    // "inf" and "nan" read as doubles, which JSON cannot carry: other systems
    // would see null and refuse this one's membership (chgcap refuses them too).
    if (const auto* d = std::get_if<double>(&value); d != nullptr && !std::isfinite(*d))
      return make_error(errc::invalid_argument, "capability entry '" + std::string(entry) + "' is not a finite number");
    caps[std::string(name)] = std::move(value);
  }
  return caps;
}

nlohmann::json to_json(const manifests::capabilities& caps) {
  nlohmann::json out = nlohmann::json::object();
  // Not a structured binding: clang 14 cannot capture one in a lambda.
  for (const auto& entry : caps) std::visit([&](const auto& v) { out[entry.first] = v; }, entry.second);
  return out;
}

result<manifests::capabilities> capabilities_from_json(const nlohmann::json& j) {
  if (!j.is_object()) return make_error(errc::invalid_argument, "capabilities must be a JSON object");
  manifests::capabilities caps;
  for (const auto& [name, v] : j.items()) {
    if (name.empty()) return make_error(errc::invalid_argument, "a capability has an empty name");
    if (v.is_boolean())
      caps[name] = v.get<bool>();
    else if (v.is_number_integer() && !v.is_number_unsigned())
      caps[name] = v.get<std::int64_t>();
    else if (v.is_number_unsigned() && v.get<std::uint64_t>() <= static_cast<std::uint64_t>(INT64_MAX))
      caps[name] = static_cast<std::int64_t>(v.get<std::uint64_t>());
    else if (v.is_number_float())
      caps[name] = v.get<double>();
    else if (v.is_string())
      caps[name] = v.get<std::string>();
    else
      return make_error(errc::invalid_argument, "capability '" + name + "' must be a bool, a number or a string");
  }
  return caps;
}

}  // namespace troupe::supervisor
