// fuzz/peer.cpp — the bodies of peer messages (docs/PROTOCOL.md §5) as the
// conventions decode them: the text goes through ipc::parse_json with the
// daemon's default depth limit (as decode_control does), then the pure
// decoders of supervisor/: member_from_json (join, member lists, etcd
// registrations) and capabilities_from_json (chgcap, saved capabilities),
// on the whole body and on the fields the handlers hand them. What decodes
// must encode and decode again to the same JSON.

#include "fuzz/common.hpp"
#include "ipc/json_limits.hpp"
#include "supervisor/capabilities.hpp"
#include "supervisor/membership.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string_view>

namespace {

using nlohmann::json;
using troupe::fuzz::expect;

void member(const json& j) {
  auto m = troupe::supervisor::member_from_json(j);
  if (!m) return;
  const json wire = troupe::supervisor::to_json(*m);
  auto again = troupe::supervisor::member_from_json(wire);
  expect(static_cast<bool>(again), "a decoded member encodes to a valid member");
  expect(troupe::supervisor::to_json(*again) == wire, "a member round-trips");
  (void)wire.dump(-1, ' ', false, json::error_handler_t::replace);
}

void capabilities(const json& j) {
  auto caps = troupe::supervisor::capabilities_from_json(j);
  if (!caps) return;
  const json wire = troupe::supervisor::to_json(*caps);
  auto again = troupe::supervisor::capabilities_from_json(wire);
  expect(static_cast<bool>(again), "decoded capabilities encode to valid capabilities");
  expect(*again == *caps, "capabilities round-trip");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto j = troupe::ipc::parse_json(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!j) return 0;
  member(*j);
  capabilities(*j);
  if (!j->is_object()) return 0;
  if (auto it = j->find("member"); it != j->end()) member(*it);
  if (auto it = j->find("capabilities"); it != j->end()) capabilities(*it);
  if (auto it = j->find("members"); it != j->end() && it->is_array())
    for (const auto& m : *it) member(m);
  return 0;
}
