// manifests/manifest_sections.hpp — internal to manifests/: parsers for the
// parts of one actor entry (requires, restart, isolation, hooks), used by
// parse_manifest. Each names its field path in errors; none throws on bad
// input. Stateless; safe from any thread.
#pragma once

#include "manifests/manifest.hpp"
#include "manifests/yaml_reader.hpp"

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace troupe::manifests::detail {

/// Whether s is non-empty and made of letters, digits, '_' and the chars in extra.
[[nodiscard]] bool name_chars(std::string_view s, std::string_view extra);

/// Moves a parsed value into out, or passes its error on.
template <class T, class U>
[[nodiscard]] status assign(result<T> parsed, U& out) {
  if (!parsed) return parsed.err();
  out = std::move(*parsed);
  return ok_v;
}

[[nodiscard]] result<std::vector<requirement>> parse_requirements(const yaml_reader& r, const YAML::Node& n,
                                                                  const std::string& path);
[[nodiscard]] result<restart_spec> parse_restart(const yaml_reader& r, const YAML::Node& n, const std::string& path);
[[nodiscard]] result<isolation_mode> parse_isolation(const yaml_reader& r, const YAML::Node& n,
                                                     const std::string& path);
[[nodiscard]] result<load_hook> parse_on_load(const yaml_reader& r, const YAML::Node& n, const std::string& path);
[[nodiscard]] result<resource_limits> parse_limits(const yaml_reader& r, const YAML::Node& n, const std::string& path);
/// "512M", "2G", "1048576": bytes, K/M/G/T counting 1024; nullopt for anything else.
[[nodiscard]] std::optional<std::uint64_t> parse_size(std::string_view s);
[[nodiscard]] result<hook> parse_hook(const yaml_reader& r, const YAML::Node& n, const std::string& path);

}  // namespace troupe::manifests::detail
