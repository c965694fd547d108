// manifests/yaml_reader.hpp — internal to manifests/: typed, checked reads of
// yaml-cpp nodes for the manifest parser. Every failure becomes an error value
// "<source>: <path>: <what>"; no method throws on bad input (parse_manifest
// still catches yaml-cpp exceptions as the last line of defence). Stateless
// apart from the source name; one instance per parse.
#pragma once

#include <troupe/result.hpp>

#include <yaml-cpp/yaml.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace troupe::manifests::detail {

/// "text" in double quotes, as messages show values.
[[nodiscard]] std::string quote(std::string_view s);

/// A node for messages: its scalar in quotes, or "a map", "a sequence", "nothing".
[[nodiscard]] std::string describe(const YAML::Node& n);

/// "a.b" from "a" and "b"; just "b" at the top level.
[[nodiscard]] std::string join(std::string_view path, std::string_view key);

/// True for an unquoted, untagged scalar, whose type comes from its text
/// (YAML 1.2 core schema); quoted scalars are always strings.
[[nodiscard]] bool is_plain(const YAML::Node& n);

/// Text typed as a plain scalar would be: null, bool, integer (int64, else
/// uint64), float or, failing all of those, string.
[[nodiscard]] nlohmann::json plain_scalar(std::string_view s);

/// A scalar as JSON: plain_scalar for plain ones, string for quoted ones.
[[nodiscard]] nlohmann::json scalar_to_json(const YAML::Node& n);

/// "250ms", "10s", "2m", "1h"; nullopt for anything else (a bare number too).
[[nodiscard]] std::optional<std::chrono::milliseconds> parse_duration(std::string_view s);

class yaml_reader {
 public:
  explicit yaml_reader(std::string_view source) : source_(source) {}

  [[nodiscard]] error fail(std::string_view path, std::string_view what) const;

  /// The entries of a map (null reads as empty) in document order. Errors on
  /// a non-map, a non-scalar or repeated key, or a key not in allowed (unless
  /// allowed is empty, meaning any key).
  [[nodiscard]] result<std::vector<std::pair<std::string, YAML::Node>>> entries(
      const YAML::Node& n, std::string_view path, std::initializer_list<std::string_view> allowed) const;

  [[nodiscard]] result<std::string> text(const YAML::Node& n, std::string_view path) const;
  [[nodiscard]] result<bool> boolean(const YAML::Node& n, std::string_view path) const;
  [[nodiscard]] result<std::uint64_t> count(const YAML::Node& n, std::string_view path) const;
  [[nodiscard]] result<std::chrono::milliseconds> duration(const YAML::Node& n, std::string_view path) const;
  /// Any YAML value as JSON: maps → objects, sequences → arrays.
  [[nodiscard]] result<nlohmann::json> value(const YAML::Node& n, std::string_view path) const;

 private:
  result<nlohmann::json> value_at(const YAML::Node& n, const std::string& path, int depth, std::size_t& budget) const;

  std::string source_;
};

}  // namespace troupe::manifests::detail
