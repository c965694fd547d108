// The etcd client against a real etcd (tests/etcd_cluster.hpp): key-value,
// transactions, leases and their expiry, watches, and what it says when the
// store is down or one endpoint is. Skipped where etcd is not installed.
#include "etcd/client.hpp"

#include "tests/etcd_cluster.hpp"

#include <catch2/catch.hpp>

#include <boost/asio/io_context.hpp>

#include <functional>
#include <optional>

using namespace troupe::etcd;
using troupe::errc;
using troupe::result;
using troupe::testing::etcd_cluster;
using namespace std::chrono_literals;

namespace {

/// Runs the loop until pred holds or timeout passes; returns whether it held.
bool run_until(boost::asio::io_context& io, const std::function<bool()>& pred,
               std::chrono::milliseconds timeout = 10s) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= until) return false;
    io.restart();
    io.run_for(20ms);
  }
  return true;
}

/// Calls f with a callback and runs the loop until the callback ran.
template <class T, class F>
result<T> call(boost::asio::io_context& io, F f) {
  std::optional<result<T>> got;
  f([&](result<T> r) { got.emplace(std::move(r)); });
  REQUIRE(run_until(io, [&] { return got.has_value(); }));
  return std::move(*got);
}

#define NEED_ETCD()                         \
  if (!etcd_cluster::available()) {         \
    WARN("etcd is not installed: skipped"); \
    return;                                 \
  }

}  // namespace

TEST_CASE("endpoints are parsed from a comma-separated list, with or without http://", "[etcd]") {
  auto e = parse_endpoints("http://127.0.0.1:2379,localhost:2380/");
  REQUIRE(e);
  REQUIRE(e->size() == 2);
  CHECK((*e)[0].text() == "127.0.0.1:2379");
  CHECK((*e)[1].text() == "localhost:2380");
  CHECK(parse_endpoints("https://h:1").err().message == "etcd endpoint 'https://h:1': https is not supported");
  CHECK(parse_endpoints("h").err().code == errc::invalid_argument);
  CHECK(parse_endpoints("h:0").err().code == errc::invalid_argument);
  CHECK(parse_endpoints("").err().message == "no etcd endpoint given");
  CHECK(prefix_end("a/") == "a0");
  CHECK(prefix_end(std::string("a\xff", 2)) == "b");
}

TEST_CASE("keys are put, read by prefix, changed in transactions and removed", "[etcd]") {
  NEED_ETCD();
  etcd_cluster etcd;
  boost::asio::io_context io;
  client c(io, *parse_endpoints(etcd.endpoints()));
  const auto r1 = call<std::int64_t>(io, [&](auto cb) { c.put("t/a", "1", 0, cb); });
  REQUIRE(r1);
  REQUIRE(call<std::int64_t>(io, [&](auto cb) { c.put("t/b", std::string("\0x", 2), 0, cb); }));
  REQUIRE(call<std::int64_t>(io, [&](auto cb) { c.put("u", "other", 0, cb); }));
  auto all = call<range_result>(io, [&](auto cb) { c.range("t/", prefix_end("t/"), cb); });
  REQUIRE(all);
  REQUIRE(all->kvs.size() == 2);
  CHECK(all->kvs[0].key == "t/a");
  CHECK(all->kvs[0].value == "1");
  CHECK(all->kvs[1].value == std::string("\0x", 2));
  CHECK(all->kvs[0].mod_revision == *r1);
  CHECK(all->revision > *r1);

  // Created only if absent: the second attempt fails and reads what is there.
  auto create = [&] {
    return call<txn_result>(io, [&](auto cb) {
      c.txn({compare::absent("t/leader")}, {operation::put("t/leader", "me")}, {operation::get("t/leader")}, cb);
    });
  };
  auto first = create();
  REQUIRE(first);
  CHECK(first->succeeded);
  auto second = create();
  REQUIRE(second);
  CHECK_FALSE(second->succeeded);
  REQUIRE(second->ranges.size() == 1);
  CHECK(second->ranges[0].kvs.at(0).value == "me");
  CHECK(second->ranges[0].kvs.at(0).create_revision == first->revision);
  // Guarded by the key's revision: a stale holder cannot write.
  auto stale = call<txn_result>(io, [&](auto cb) {
    c.txn({compare::create_revision_is("t/leader", first->revision - 1)}, {operation::put("t/x", "no")}, {}, cb);
  });
  REQUIRE(stale);
  CHECK_FALSE(stale->succeeded);
  REQUIRE(call<std::int64_t>(io, [&](auto cb) { c.erase("t/", prefix_end("t/"), cb); }));
  auto none = call<range_result>(io, [&](auto cb) { c.range("t/", prefix_end("t/"), cb); });
  REQUIRE(none);
  CHECK(none->kvs.empty());
}

TEST_CASE("a key put under a lease goes when the lease is not renewed; a renewal says when it is gone", "[etcd]") {
  NEED_ETCD();
  etcd_cluster etcd;
  boost::asio::io_context io;
  client c(io, *parse_endpoints(etcd.endpoints()));
  auto l = call<lease>(io, [&](auto cb) { c.grant(1, cb); });
  REQUIRE(l);
  CHECK(l->ttl == 1);
  REQUIRE(call<std::int64_t>(io, [&](auto cb) { c.put("m/1", "up", l->id, cb); }));
  auto renewed = call<std::int64_t>(io, [&](auto cb) { c.keep_alive(l->id, cb); });
  REQUIRE(renewed);
  CHECK(*renewed == 1);
  // Not renewed: within a few TTLs the key is gone and a renewal answers 0.
  bool gone = false;
  REQUIRE(run_until(
      io,
      [&] {
        auto r = call<range_result>(io, [&](auto cb) { c.range("m/1", "", cb); });
        gone = r && r->kvs.empty();
        return gone;
      },
      10s));
  auto late = call<std::int64_t>(io, [&](auto cb) { c.keep_alive(l->id, cb); });
  REQUIRE(late);
  CHECK(*late == 0);
}

TEST_CASE("a watch streams puts and deletes under its prefix, in order", "[etcd]") {
  NEED_ETCD();
  etcd_cluster etcd;
  boost::asio::io_context io;
  client c(io, *parse_endpoints(etcd.endpoints()));
  std::vector<event> seen;
  std::optional<troupe::error> ended;
  auto w = c.watch_prefix(
      "w/", 0, [&](const std::vector<event>& es, std::int64_t) { seen.insert(seen.end(), es.begin(), es.end()); },
      [&](const troupe::error& e) { ended = e; });
  // The watch is created asynchronously: write until it sees the first key.
  REQUIRE(run_until(io, [&] {
    (void)call<std::int64_t>(io, [&](auto cb) { c.put("w/first", "x", 0, cb); });
    return !seen.empty();
  }));
  seen.clear();
  REQUIRE(call<std::int64_t>(io, [&](auto cb) { c.put("w/a", "1", 0, cb); }));
  REQUIRE(call<std::int64_t>(io, [&](auto cb) { c.put("other", "1", 0, cb); }));
  REQUIRE(call<std::int64_t>(io, [&](auto cb) { c.erase("w/a", "", cb); }));
  REQUIRE(run_until(io, [&] { return seen.size() >= 2; }));
  REQUIRE(seen.size() == 2);
  CHECK_FALSE(seen[0].deleted);
  CHECK(seen[0].kv.key == "w/a");
  CHECK(seen[0].kv.value == "1");
  CHECK(seen[1].deleted);
  CHECK(seen[1].kv.key == "w/a");
  CHECK_FALSE(ended);
  // The store goes away: the watch says so, once.
  etcd.kill(0);
  REQUIRE(run_until(io, [&] { return ended.has_value(); }));
}

TEST_CASE("a dead endpoint is passed over; with every endpoint refusing, the store is down", "[etcd]") {
  NEED_ETCD();
  etcd_cluster etcd;
  boost::asio::io_context io;
  // A port nothing listens on (the cluster's own port once it is killed is
  // not needed: any closed loopback port refuses).
  const std::string dead = "http://127.0.0.1:1";
  client c(io, *parse_endpoints(dead + "," + etcd.endpoints()));
  REQUIRE(call<std::int64_t>(io, [&](auto cb) { c.put("k", "v", 0, cb); }));
  CHECK_FALSE(c.all_refused());
  etcd.kill(0);
  auto r = call<std::int64_t>(io, [&](auto cb) { c.put("k", "v", 0, cb); });
  REQUIRE_FALSE(r);
  CHECK((r.err().code == errc::unavailable || r.err().code == errc::io));
  auto again = call<std::int64_t>(io, [&](auto cb) { c.put("k", "v", 0, cb); });
  REQUIRE_FALSE(again);
  CHECK(again.err().code == errc::unavailable);
  CHECK_THAT(again.err().message, Catch::Contains("etcd unreachable") && Catch::Contains("127.0.0.1:1"));
  CHECK(c.all_refused());
}

TEST_CASE("destroying a client with requests in flight runs no callback", "[etcd]") {
  NEED_ETCD();
  etcd_cluster etcd;
  boost::asio::io_context io;
  bool called = false;
  {
    client c(io, *parse_endpoints(etcd.endpoints()));
    c.put("k", "v", 0, [&](result<std::int64_t>) { called = true; });
  }
  io.restart();
  io.run_for(200ms);
  CHECK_FALSE(called);
}
