// fuzz/manifest.cpp — manifest.yaml text (manifests/manifest.hpp) as the
// daemon reads it from a package it is given or fetches: parse_manifest,
// then what the daemon sends of a parsed manifest (its hook messages, as
// JSON text).

#include "manifests/manifest.hpp"
#include "fuzz/common.hpp"

#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace troupe::manifests;
  using troupe::fuzz::expect;
  auto m = parse_manifest(std::string_view(reinterpret_cast<const char*>(data), size), "manifest.yaml");
  if (!m) {
    expect(m.err().message.find('\n') == std::string::npos, "a manifest error is one line");
    return 0;
  }
  expect(!m->actors.empty(), "a manifest has an actor");
  for (const auto& a : m->actors) {
    expect(m->find_actor(a.type) != nullptr, "every actor can be found by type");
    auto dump = [](const std::optional<json>& j) {
      if (j) (void)j->dump(-1, ' ', false, json::error_handler_t::replace);
    };
    if (a.on_load) dump(a.on_load->message);
    if (a.on_deactivate) dump(a.on_deactivate->message);
    if (a.on_reactivate) dump(a.on_reactivate->message);
  }
  return 0;
}
