// troupe/json.hpp — JSON payload helpers (nlohmann::json) for actors and
// clients. Kept out of actor.hpp so packages that do not speak JSON do not pay
// for the header. A JSON payload is the UTF-8 serialisation of one JSON value;
// its conventional type tag is "json".
#pragma once

#include <troupe/actor.hpp>

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace troupe {

using json = nlohmann::json;

inline constexpr std::string_view json_type = "json";

/// Parses a payload as JSON; nullopt when it is not valid JSON.
[[nodiscard]] inline std::optional<json> parse_json(std::string_view payload) {
  json j = json::parse(payload.begin(), payload.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

/// Parses a message payload as JSON; throws std::invalid_argument naming the
/// message type when it is not JSON (the actor then fails like any handler that
/// throws).
[[nodiscard]] inline json json_of(const message& m) {
  auto j = parse_json(m.payload());
  if (!j) throw std::invalid_argument("payload of message '" + std::string(m.type()) + "' is not valid JSON");
  return std::move(*j);
}

[[nodiscard]] inline std::string to_payload(const json& j) { return j.dump(); }

inline void tell_json(context& ctx, address to, const json& j, std::string_view type = json_type) {
  ctx.tell(to, type, to_payload(j));
}

inline void reply_json(context& ctx, const json& j, std::string_view type = json_type) {
  ctx.reply(type, to_payload(j));
}

inline void reply_later_json(context& ctx, const reply_handle& h, const json& j, std::string_view type = json_type) {
  ctx.reply_later(h, type, to_payload(j));
}

}  // namespace troupe
