#include "supervisor/actor_query.hpp"

#include <algorithm>
#include <charconv>

namespace troupe::supervisor {

using json = nlohmann::json;

result<actor_query> actor_query::from_json(const json& body) {
  actor_query q;
  if (!body.is_object()) return q;
  auto bad = [](const std::string& why) { return make_error(errc::invalid_argument, "actors: " + why); };
  if (auto it = body.find("limit"); it != body.end() && !it->is_null()) {
    if (!it->is_number_integer() || it->get<std::int64_t>() < 0 ||
        it->get<std::int64_t>() > static_cast<std::int64_t>(max_limit))
      return bad("limit must be an integer from 0 to " + std::to_string(max_limit));
    q.limit = it->get<std::size_t>();
  }
  if (auto it = body.find("after"); it != body.end() && !it->is_null()) {
    const auto a = it->is_string() ? address::parse(it->get<std::string>()) : std::nullopt;
    if (!a) return bad("after must be an address (@SYSTEM.SERIAL)");
    q.after = *a;
  }
  for (auto [key, field] : {std::pair{"package", &q.package}, {"state", &q.state}, {"system", &q.system}}) {
    auto it = body.find(key);
    if (it == body.end() || it->is_null()) continue;
    if (!it->is_string() || it->get<std::string>().size() > 256)
      return bad(std::string(key) + " must be a string of at most 256 bytes");
    *field = it->get<std::string>();
  }
  return q;
}

bool actor_query::matches(const json& row) const {
  auto text = [&row](const char* key) {
    auto it = row.find(key);
    return it != row.end() && it->is_string() ? std::string_view(it->get_ref<const std::string&>())
                                              : std::string_view();
  };
  return matches(text("package"), text("package_id"), text("state"), text("system"));
}

bool actor_query::matches(std::string_view pkg, std::string_view package_id, std::string_view st,
                          std::string_view sys) const {
  if (!package.empty() && pkg != package && !package_id.starts_with(package)) return false;
  if (!state.empty() && st != state) return false;
  if (!system.empty()) {
    const bool bare_port = system.find(':') == std::string::npos;
    if (bare_port ? !(sys.size() > system.size() && sys.ends_with(system) && sys[sys.size() - system.size() - 1] == ':')
                  : sys != system)
      return false;
  }
  return true;
}

actor_query::bounds actor_query::page_bounds(const std::vector<address>& sorted) const {
  bounds b;
  b.first =
      after ? static_cast<std::size_t>(std::upper_bound(sorted.begin(), sorted.end(), *after) - sorted.begin()) : 0;
  b.last = limit == 0 || sorted.size() - b.first <= limit ? sorted.size() : b.first + limit;
  b.more = b.last < sorted.size() && b.last > b.first;
  return b;
}

}  // namespace troupe::supervisor
