// etcd/client.hpp — a client of etcd v3 through its JSON gateway (HTTP/1.1,
// Boost.Beast) on an Asio loop: the key-value store, transactions, leases and
// watches, which is what a convention coordinated by etcd needs
// (docs/OPERATIONS.md §8.7). Why the gateway and not gRPC: Debian ships etcd
// 3.4 with it enabled, it needs no code generation and no gRPC runtime, and
// every call here is small and rare (a lease renewal a few times a second,
// placement writes, one watch stream); see docs/PROTOCOL.md §5.12.
//
// Requests go out one at a time per lane, in order: one lane for leases (so a
// renewal never waits behind a slow transaction), one for the rest. A lane
// keeps its connection open and moves to the next endpoint when one fails.
// A request that could not be sent to any endpoint fails with
// errc::unavailable; one whose answer was lost after it was sent fails with
// errc::io (its outcome is unknown); etcd's own refusals are errc::refused.
//
// Threading: the loop's thread only; callbacks run on it. Destroying the
// client (or a watch) cancels what is pending: no callback runs after.
#pragma once

#include <troupe/result.hpp>

#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace troupe::etcd {

struct endpoint {
  std::string host;
  std::string port;
  [[nodiscard]] std::string text() const { return host + ":" + port; }
};

/// "http://HOST:PORT[,http://HOST:PORT...]" (the scheme may be left out).
/// Errors name the entry: https is not supported, a port is missing or not a number.
[[nodiscard]] result<std::vector<endpoint>> parse_endpoints(std::string_view list);

struct key_value {
  std::string key;
  std::string value;
  std::int64_t create_revision = 0;
  std::int64_t mod_revision = 0;
  std::int64_t version = 0;
  std::int64_t lease = 0;
};

struct range_result {
  std::vector<key_value> kvs;
  std::int64_t revision = 0;  ///< the store's revision when it answered
};

struct lease {
  std::int64_t id = 0;
  std::int64_t ttl = 0;  ///< seconds
};

struct event {
  bool deleted = false;  ///< a DELETE (a lease expired, a key removed); else a PUT
  key_value kv;          ///< for a delete: the key and its mod_revision
};

/// One condition of a transaction (all must hold for its success branch).
struct compare {
  nlohmann::json j;
  /// The key does not exist.
  static compare absent(std::string_view key);
  static compare value_is(std::string_view key, std::string_view value);
  static compare create_revision_is(std::string_view key, std::int64_t revision);
  static compare mod_revision_is(std::string_view key, std::int64_t revision);
};

/// One operation of a transaction.
struct operation {
  nlohmann::json j;
  static operation put(std::string_view key, std::string_view value, std::int64_t lease = 0);
  static operation erase(std::string_view key, std::string_view range_end = {});
  static operation get(std::string_view key, std::string_view range_end = {});
};

struct txn_result {
  bool succeeded = false;
  std::int64_t revision = 0;
  std::vector<range_result> ranges;  ///< one per get of the branch that ran, in order
};

/// The range_end that makes a range cover every key starting with prefix.
[[nodiscard]] std::string prefix_end(std::string_view prefix);

class client {
 public:
  template <class T>
  using done = std::function<void(result<T>)>;
  using events_fn = std::function<void(const std::vector<event>& events, std::int64_t revision)>;
  using end_fn = std::function<void(const error& why)>;

  client(boost::asio::io_context& io, std::vector<endpoint> endpoints,
         std::chrono::milliseconds timeout = std::chrono::milliseconds(1000));
  ~client();
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  void range(std::string key, std::string range_end, done<range_result> cb);
  /// The store's revision after the put.
  void put(std::string key, std::string value, std::int64_t lease, done<std::int64_t> cb);
  /// The store's revision after the delete.
  void erase(std::string key, std::string range_end, done<std::int64_t> cb);
  void txn(std::vector<compare> if_all, std::vector<operation> then, std::vector<operation> otherwise,
           done<txn_result> cb);
  void grant(std::int64_t ttl_seconds, done<lease> cb);
  /// Renews a lease: its TTL again, or 0 when the lease is gone (expired, revoked).
  void keep_alive(std::int64_t id, done<std::int64_t> cb);
  void revoke(std::int64_t id, done<ok_t> cb);

  /// Whether the last attempt at every endpoint was refused (the hosts
  /// answered, nothing listens): the store is down, not cut off from us.
  [[nodiscard]] bool all_refused() const;
  /// How each endpoint last failed, "HOST:PORT: REASON; ..." (empty when none did).
  [[nodiscard]] std::string last_failures() const;

  class watch;
  /// Streams the changes of every key under prefix from start_revision (0:
  /// from now). on_events gets them in order; on_end once, when the stream
  /// ends (connection lost, compacted, cancelled by the server): watch again,
  /// from a fresh read. Destroying the watch cancels it.
  [[nodiscard]] std::unique_ptr<watch> watch_prefix(std::string prefix, std::int64_t start_revision,
                                                    events_fn on_events, end_fn on_end);

  struct impl;

 private:
  std::shared_ptr<impl> impl_;
};

class client::watch {
 public:
  ~watch();
  struct state;
  explicit watch(std::shared_ptr<state> s) : s_(std::move(s)) {}

 private:
  std::shared_ptr<state> s_;
};

}  // namespace troupe::etcd
