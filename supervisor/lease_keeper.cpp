// A system's etcd lease, on its own thread. See lease_keeper.hpp.
#include "supervisor/lease_keeper.hpp"

#include "ipc/log.hpp"

#include <boost/asio/post.hpp>

#include <future>

namespace troupe::supervisor {

namespace asio = boost::asio;
using ipc::log_line;
using std::chrono::milliseconds;
using steady = std::chrono::steady_clock;

namespace {
constexpr auto retry_delay = milliseconds(250);

std::int64_t to_ms(steady::time_point t) {
  return std::chrono::duration_cast<milliseconds>(t.time_since_epoch()).count();
}
}  // namespace

lease_keeper::lease_keeper(asio::io_context& owner, std::vector<etcd::endpoint> endpoints, std::chrono::seconds ttl,
                           milliseconds timeout, std::filesystem::path fence_file, handlers h)
    : owner_(owner),
      endpoints_(std::move(endpoints)),
      timeout_(timeout),
      fence_file_(std::move(fence_file)),
      handlers_(std::move(h)) {
  ttl_s_ = std::max<std::int64_t>(1, ttl.count());
}

lease_keeper::~lease_keeper() { stop(milliseconds(0)); }

status lease_keeper::start() {
  if (auto s = page_.open(fence_file_, true); !s) return s;
  client_ = std::make_unique<etcd::client>(io_, endpoints_, timeout_);
  asio::post(io_, [this] { grant(); });
  thread_ = std::thread([this] { io_.run(); });
  return ok_v;
}

void lease_keeper::stop(milliseconds bound) {
  *alive_ = false;
  if (!thread_.joinable()) return;
  // The member key and every key under the lease go with it: the leader
  // need not wait for the expiry.
  asio::post(io_, [this, bound] {
    stopping_ = true;
    renew_timer_.cancel();
    decide_timer_.cancel();
    retry_timer_.cancel();
    revoke_timer_.cancel();
    const auto lease = lease_.exchange(0);
    if (lease == 0 || bound.count() == 0) return io_.stop();
    if (page_.is_open()) page_.extend(ipc::steady_now_ms());
    revoke_timer_.expires_after(fence_grace());
    revoke_timer_.async_wait([this, lease](const boost::system::error_code&) {
      client_->revoke(lease, [this](result<ok_t>) { io_.stop(); });
    });
    retry_timer_.expires_after(fence_grace() + bound);
    retry_timer_.async_wait([this](const boost::system::error_code&) { io_.stop(); });
  });
  thread_.join();
  client_.reset();
}

void lease_keeper::give_up(std::int64_t lease, std::string why) {
  asio::post(io_, [this, lease, why = std::move(why)] {
    if (!stopping_ && lease != 0 && lease == lease_.load()) lose(why);
  });
}

milliseconds lease_keeper::valid_for() const {
  if (lease_.load() == 0) return milliseconds(0);
  return milliseconds(std::max<std::int64_t>(0, valid_until_ms_.load() - ipc::steady_now_ms()));
}

void lease_keeper::post_to_owner(std::function<void()> f) {
  asio::post(owner_, [alive = alive_, f = std::move(f)] {
    if (*alive) f();
  });
}

// ---------------------------------------------------------------- the keeper's thread

void lease_keeper::grant() {
  if (stopping_) return;
  const auto sent = steady::now();
  client_->grant(ttl_s_.load(), [this, sent](result<etcd::lease> l) {
    if (stopping_) return;
    if (!l || l->id == 0) {
      if (!store_down_.exchange(true))
        log_line(TROUPE_LOG_WARN, {},
                 "cannot register with etcd (" + (l ? std::string("no lease") : l.err().message) + "); retrying");
      return retry_grant();
    }
    ttl_s_ = std::max<std::int64_t>(1, l->ttl);
    lease_ = l->id;
    const auto until = sent + std::chrono::seconds(ttl_s_.load());
    valid_until_ms_ = to_ms(until);
    page_.grant(l->id, to_ms(until - milliseconds(ttl()) * 15 / 100));
    store_down_ = false;
    arm_decision();
    post_to_owner([this, id = l->id] { handlers_.granted(id); });
    // Counted from when it was asked for: a grant answered late (a link
    // that just came back) is renewed at once, or it would be given up soon.
    if (steady::now() - sent > milliseconds(ttl()) / 10) return renew();
    renew_timer_.expires_after(milliseconds(ttl()) / 3);
    renew_timer_.async_wait([this](const boost::system::error_code& e) {
      if (!e) renew();
    });
  });
}

void lease_keeper::retry_grant() {
  retry_timer_.expires_after(retry_delay);
  retry_timer_.async_wait([this](const boost::system::error_code& e) {
    if (!e) grant();
  });
}

void lease_keeper::renew() {
  const auto lease = lease_.load();
  if (stopping_ || lease == 0) return;
  renew_timer_.expires_after(milliseconds(ttl()) / 3);
  renew_timer_.async_wait([this](const boost::system::error_code& e) {
    if (!e) renew();
  });
  const auto sent = steady::now();
  client_->keep_alive(lease, [this, sent, lease](result<std::int64_t> ttl_s) {
    if (stopping_ || lease != lease_.load()) return;  // a renewal of a lease given up meanwhile
    if (ttl_s && *ttl_s > 0) return renewed(sent, *ttl_s);
    if (ttl_s) lose("its lease expired");  // the store forgot it: re-placed elsewhere by now
  });
}

void lease_keeper::renewed(steady::time_point sent, std::int64_t ttl_s) {
  // etcd counts the TTL from when it took the renewal, which is after it was sent.
  const auto until = sent + std::chrono::seconds(ttl_s);
  if (to_ms(until) <= valid_until_ms_.load()) return;  // an older renewal answered late
  // Answered after the workers' deadline (this thread was stopped, say):
  // they may have dropped the convention's actors already, so the lease
  // cannot simply go on.
  if (ipc::steady_now_ms() >= page_.until_ms()) return lose("its renewal came after the fence deadline");
  valid_until_ms_ = to_ms(until);
  page_.extend(to_ms(until - milliseconds(ttl()) * 15 / 100));
  if (store_down_.exchange(false)) log_line(TROUPE_LOG_INFO, {}, "etcd renewed the lease again");
  arm_decision();
}

void lease_keeper::arm_decision() {
  decide_timer_.expires_at(steady::time_point(milliseconds(valid_until_ms_.load())) - milliseconds(ttl()) * 30 / 100);
  decide_timer_.async_wait([this](const boost::system::error_code& e) {
    if (!e) decide();
  });
}

void lease_keeper::decide() {
  if (stopping_ || lease_.load() == 0) return;
  if (client_->all_refused() && ipc::steady_now_ms() < page_.until_ms()) {
    // Down for everyone: no leader can place anything again meanwhile, and
    // etcd renews every lease when it comes back. Serving on is safe.
    if (!store_down_.exchange(true))
      log_line(TROUPE_LOG_WARN, {},
               "every etcd endpoint refuses connections or has no leader: the store is down; serving on, "
               "nothing is placed again until it returns");
    const auto until = steady::now() + ttl();
    valid_until_ms_ = to_ms(until);
    page_.extend(to_ms(until - milliseconds(ttl()) * 15 / 100));
    arm_decision();
    return;
  }
  const auto failures = client_->last_failures();
  lose("cannot renew its lease in time (" + (failures.empty() ? "no renewal answered" : "etcd: " + failures) + ")");
}

void lease_keeper::lose(const std::string& why) {
  const auto old = lease_.exchange(0);
  if (old == 0) return;
  // The workers drop the convention's actors at once, whatever the loop does.
  page_.extend(ipc::steady_now_ms());
  valid_until_ms_ = 0;
  renew_timer_.cancel();
  decide_timer_.cancel();
  post_to_owner([this, old, why] { handlers_.lost(old, why); });
  // Gone from the store once the workers have dropped its actors (the
  // leader need not wait for the expiry), then registered again with a new
  // lease.
  revoke_timer_.expires_after(fence_grace());
  revoke_timer_.async_wait([this, old](const boost::system::error_code& e) {
    if (e || stopping_) return;
    client_->revoke(old, [](result<ok_t>) {});
    retry_grant();
  });
}

}  // namespace troupe::supervisor
