// supervisor/lease_keeper.hpp — a system's etcd lease, kept on a thread of
// its own (docs/ARCHITECTURE.md, "Threads").
//
// Whether a system is a member of an etcd convention must not depend on how
// busy its loop is: a 45 MB message parsed on the loop would otherwise starve
// the renewals and fence a healthy system. So this thread, with its own loop
// and its own etcd client, grants the lease, renews it every third of its
// TTL and decides when it is lost; it writes the fence page the workers read
// after each renewal (the deadline: 15% of the TTL before the lease could
// expire) and moves it to "now" on a loss, so the convention's actors stop in
// time even when the system's loop cannot run. The loop learns of each new
// lease and each loss through the handlers, posted to it in order.
//
// The decision, at 30% of the TTL before the lease could expire without a
// renewal: if every etcd endpoint refuses connections (or answers that it has
// no leader, a cluster coming back) the store is down for
// everyone, nothing can be placed again and etcd renews every lease when it
// returns, so the system serves on; otherwise the lease is lost.
#pragma once

#include "etcd/client.hpp"
#include "ipc/fence_page.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <thread>

namespace troupe::supervisor {

class lease_keeper {
 public:
  struct handlers {
    std::function<void(std::int64_t lease)> granted;                       ///< a new lease, registered nowhere yet
    std::function<void(std::int64_t lease, const std::string& why)> lost;  ///< its actors must be gone now
  };

  /// owner: the loop the handlers run on. fence_file: the system's fence page.
  lease_keeper(boost::asio::io_context& owner, std::vector<etcd::endpoint> endpoints, std::chrono::seconds ttl,
               std::chrono::milliseconds timeout, std::filesystem::path fence_file, handlers h);
  ~lease_keeper();
  lease_keeper(const lease_keeper&) = delete;
  lease_keeper& operator=(const lease_keeper&) = delete;

  /// Maps the fence page and starts the thread, which asks for a lease.
  status start();
  /// Revokes the lease (waiting at most `bound` for etcd) and ends the thread.
  /// No handler runs after it.
  void stop(std::chrono::milliseconds bound);
  /// Gives the lease up as lost (the store forgot this system's key): from
  /// the owner's loop; ignored if that lease is gone already.
  void give_up(std::int64_t lease, std::string why);

  // Readable from any thread.
  [[nodiscard]] std::int64_t lease() const { return lease_.load(); }
  [[nodiscard]] std::chrono::seconds ttl() const { return std::chrono::seconds(ttl_s_.load()); }
  /// How long the lease holds at least without another renewal (0 when none).
  [[nodiscard]] std::chrono::milliseconds valid_for() const;
  /// Every etcd endpoint refuses connections or has no leader: serving on.
  [[nodiscard]] bool store_down() const { return store_down_.load(); }

 private:
  // On the keeper's thread.
  void grant();
  void renew();
  void renewed(std::chrono::steady_clock::time_point sent, std::int64_t ttl_s);
  void arm_decision();
  void decide();
  void lose(const std::string& why);
  void retry_grant();
  void post_to_owner(std::function<void()> f);

  boost::asio::io_context& owner_;
  std::vector<etcd::endpoint> endpoints_;
  std::chrono::milliseconds timeout_;
  std::filesystem::path fence_file_;
  handlers handlers_;
  ipc::fence_page page_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // read and cleared on the owner's loop only

  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{io_.get_executor()};
  std::unique_ptr<etcd::client> client_;
  boost::asio::steady_timer renew_timer_{io_};
  boost::asio::steady_timer decide_timer_{io_};
  boost::asio::steady_timer retry_timer_{io_};
  boost::asio::steady_timer revoke_timer_{io_};
  /// How long after the fence page says "fenced" the workers have certainly
  /// dropped (or been killed with) the convention's actors: their watchdog
  /// polls every 50 ms and kills 30 ms after telling. The same margin as an
  /// expiry gets (15% of the TTL), at least 150 ms. A lease given up is
  /// revoked only after it, so that no successor starts beside a dying copy.
  [[nodiscard]] std::chrono::milliseconds fence_grace() const {
    return std::max(std::chrono::milliseconds(150), std::chrono::milliseconds(ttl()) * 15 / 100);
  }
  std::thread thread_;

  std::atomic<std::int64_t> lease_{0};
  std::atomic<std::int64_t> ttl_s_{1};
  std::atomic<std::int64_t> valid_until_ms_{0};
  std::atomic<bool> store_down_{false};
  bool stopping_ = false;  // keeper's thread
};

}  // namespace troupe::supervisor
