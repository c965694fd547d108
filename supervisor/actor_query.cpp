#include "supervisor/actor_query.hpp"

#include <algorithm>
#include <charconv>

namespace troupe::supervisor {

using json = nlohmann::json;

namespace {

std::uint64_t address_value(const json& row) {
  const auto a = address::parse(row.value("address", std::string()));
  return a ? a->value() : 0;
}

}  // namespace

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
    return it != row.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  if (!package.empty() && text("package") != package && text("package_id").rfind(package, 0) != 0) return false;
  if (!state.empty() && text("state") != state) return false;
  if (!system.empty()) {
    const std::string s = text("system");
    const bool bare_port = system.find(':') == std::string::npos;
    if (bare_port
            ? s.size() <= system.size() || s.compare(s.size() - system.size() - 1, std::string::npos, ":" + system) != 0
            : s != system)
      return false;
  }
  return true;
}

json actor_query::page(std::vector<json> rows) const {
  std::erase_if(rows, [this](const json& r) { return !matches(r); });
  const std::size_t total = rows.size();
  std::sort(rows.begin(), rows.end(), [](const json& a, const json& b) { return address_value(a) < address_value(b); });
  auto first = rows.begin();
  if (after)
    first = std::upper_bound(rows.begin(), rows.end(), after->value(),
                             [](std::uint64_t v, const json& r) { return v < address_value(r); });
  auto last = limit == 0 || static_cast<std::size_t>(rows.end() - first) <= limit ? rows.end() : first + limit;
  json out = json::array();
  for (auto it = first; it != last; ++it) out.push_back(std::move(*it));
  const json next = last == rows.end() || out.empty() ? json() : out.back()["address"];
  return json{{"actors", std::move(out)}, {"total", total}, {"next", next}};
}

}  // namespace troupe::supervisor
