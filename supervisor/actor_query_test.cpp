#include "supervisor/actor_query.hpp"

#include <catch2/catch.hpp>

using troupe::supervisor::actor_query;
using json = nlohmann::json;

namespace {

json row(const std::string& addr, const std::string& package, const std::string& state, const std::string& system) {
  return json{
      {"address", addr}, {"package", package}, {"package_id", "ab12" + package}, {"state", state}, {"system", system}};
}

std::vector<json> rows() {
  return {row("@0000000a.3", "encoders", "running", "127.0.0.1:1900"),
          row("@0000000a.1", "encoders", "failed", "127.0.0.1:1900"),
          row("@0000000b.2", "pipeline", "running", "127.0.0.1:10000"),
          row("@0000000a.2", "pipeline", "pending", "127.0.0.1:10000")};
}

std::vector<std::string> addresses(const json& page) {
  std::vector<std::string> out;
  for (const auto& r : page["actors"]) out.push_back(r["address"]);
  return out;
}

}  // namespace

namespace troupe::supervisor {
namespace {
// What the daemon answers (supervision::cmd_actors), on rows given as JSON.
json page_of(const actor_query& q, std::vector<json> rows) {
  auto addr = [](const json& r) { return *address::parse(r["address"].get<std::string>()); };
  std::erase_if(rows, [&q](const json& r) { return !q.matches(r); });
  std::sort(rows.begin(), rows.end(), [&](const json& a, const json& b) { return addr(a) < addr(b); });
  std::vector<address> sorted;
  for (const auto& r : rows) sorted.push_back(addr(r));
  const auto b = q.page_bounds(sorted);
  json out = json::array();
  for (auto i = b.first; i != b.last; ++i) out.push_back(rows[i]);
  const json next = b.more ? out.back()["address"] : json();
  return json{{"actors", out}, {"total", rows.size()}, {"next", next}};
}
}  // namespace
}  // namespace troupe::supervisor
using troupe::supervisor::page_of;

TEST_CASE("actors pages come in address order and chain through next", "[actors]") {
  auto q = actor_query::from_json(json{{"limit", 2}});
  REQUIRE(q);
  auto p1 = page_of(*q, rows());
  CHECK(addresses(p1) == std::vector<std::string>{"@0000000a.1", "@0000000a.2"});
  CHECK(p1["total"] == 4);
  REQUIRE(p1["next"] == "@0000000a.2");
  auto q2 = actor_query::from_json(json{{"limit", 2}, {"after", p1["next"]}});
  REQUIRE(q2);
  auto p2 = page_of(*q2, rows());
  CHECK(addresses(p2) == std::vector<std::string>{"@0000000a.3", "@0000000b.2"});
  CHECK(p2["next"].is_null());  // the last page
  // No limit: everything, no next.
  auto all = page_of(*actor_query::from_json(json::object()), rows());
  CHECK(all["actors"].size() == 4);
  CHECK(all["next"].is_null());
}

TEST_CASE("actors filters by package, state and system", "[actors]") {
  auto by = [](const json& body) { return addresses(page_of(*actor_query::from_json(body), rows())); };
  CHECK(by(json{{"package", "pipeline"}}) == std::vector<std::string>{"@0000000a.2", "@0000000b.2"});
  CHECK(by(json{{"package", "ab12enc"}}) == std::vector<std::string>{"@0000000a.1", "@0000000a.3"});  // id prefix
  CHECK(by(json{{"state", "failed"}}) == std::vector<std::string>{"@0000000a.1"});
  CHECK(by(json{{"system", "10000"}}) == std::vector<std::string>{"@0000000a.2", "@0000000b.2"});
  CHECK(by(json{{"system", "127.0.0.1:1900"}}) == std::vector<std::string>{"@0000000a.1", "@0000000a.3"});
  CHECK(by(json{{"system", "900"}}).empty());  // a port, not a suffix of one
  CHECK(by(json{{"state", "running"}, {"package", "encoders"}}) == std::vector<std::string>{"@0000000a.3"});
}

TEST_CASE("actors refuses a malformed query with one line", "[actors]") {
  for (const auto& body :
       {json{{"limit", -1}}, json{{"limit", "10"}}, json{{"limit", 100001}}, json{{"after", "nowhere"}},
        json{{"after", 7}}, json{{"state", 3}}, json{{"package", std::string(300, 'x')}}}) {
    auto q = actor_query::from_json(body);
    INFO(body.dump());
    REQUIRE_FALSE(q);
    CHECK(q.err().code == troupe::errc::invalid_argument);
    CHECK(q.err().message.find('\n') == std::string::npos);
  }
}
