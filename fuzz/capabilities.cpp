// fuzz/capabilities.cpp — capability expressions: a system's capability
// list (`troupe start --caps`, `troupe chgcap`: supervisor/capabilities.hpp),
// the `requires:` predicates of a manifest (manifests/requirement.hpp, parsed
// by the manifest parser's own section reader) and package versions; then
// the placement check of the one against the other, and the JSON form of the
// capabilities that other systems receive.
//
// Input: fuzz/common.hpp; part 0 the capability list, part 1 a YAML
// `requires:` map, part 2 a version. The flags byte is unused.

#include "supervisor/capabilities.hpp"
#include "fuzz/common.hpp"
#include "ipc/json_limits.hpp"
#include "manifests/manifest_sections.hpp"
#include "manifests/requirement.hpp"
#include "manifests/version.hpp"
#include "manifests/yaml_reader.hpp"

#include <yaml-cpp/yaml.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace troupe;
  using fuzz::expect;
  const auto in = fuzz::split(data, size);
  if (in.parts.empty()) return 0;

  auto caps = supervisor::parse_capabilities(in.parts[0]);
  if (caps) {
    // What other systems receive must decode (member_from_json reads the same).
    const auto text = supervisor::to_json(*caps).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    auto j = ipc::parse_json(text);
    expect(static_cast<bool>(j), "the JSON form of capabilities parses");
    auto back = supervisor::capabilities_from_json(*j);
    expect(static_cast<bool>(back), "parsed capabilities decode from their JSON form");
  }

  std::vector<manifests::requirement> reqs;
  if (in.parts.size() > 1) {
    // parse_manifest's own guard: yaml-cpp throws on syntax errors.
    try {
      const YAML::Node n = YAML::Load(std::string(in.parts[1]));
      const manifests::detail::yaml_reader reader("manifest.yaml");
      if (auto r = manifests::detail::parse_requirements(reader, n, "actors.A.requires")) reqs = std::move(*r);
    } catch (const YAML::Exception&) {
    }
  }
  if (caps) {
    for (const auto& r : reqs) (void)manifests::satisfies(*caps, r);
    (void)manifests::unmet(*caps, reqs);
  }

  if (in.parts.size() > 2) {
    if (auto v = manifests::parse_version(in.parts[2])) {
      expect(!v->fields.empty() && v->fields.size() <= 4, "a version has 1 to 4 fields");
      auto again = manifests::parse_version(v->text);
      expect(static_cast<bool>(again) && *again == *v, "a version round-trips through its text");
    }
  }
  return 0;
}
