// supervisor/capabilities.hpp — parsing of a system's capability list as given
// to `troupe start --caps` ("morse,Caesar cipher,gpu_mem=16"). Pure; any thread.
#pragma once

#include "manifests/requirement.hpp"

#include <troupe/result.hpp>

#include <nlohmann/json_fwd.hpp>

#include <string_view>

namespace troupe::supervisor {

/// Comma-separated entries; a bare NAME is `true`, NAME=VALUE takes VALUE as a
/// bool (true/false), an integer, a float or else a string. Names may contain
/// spaces (trimmed at both ends). Errors name the offending entry (one without
/// a name, or a number that is not finite: "inf", "nan").
result<manifests::capabilities> parse_capabilities(std::string_view text);

/// One capability value from its text, by the rules above.
manifests::capability_value parse_capability_value(std::string_view text);

/// Capabilities as a JSON object (for status output).
nlohmann::json to_json(const manifests::capabilities& caps);

/// The reverse: a JSON object of bool, integer, float or string values. The
/// error names the offending entry.
result<manifests::capabilities> capabilities_from_json(const nlohmann::json& j);

}  // namespace troupe::supervisor
