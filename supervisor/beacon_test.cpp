#include "supervisor/beacon.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <thread>

using namespace std::chrono_literals;
using troupe::supervisor::beacon;

namespace {

/// The context's ZAP handler, trusting every key given, served on a thread.
struct zap_thread {
  std::atomic<bool> stop{false};
  std::atomic<bool> ready{false};
  std::thread t;
  zap_thread(zmq::context_t& ctx, std::vector<std::string> keys) {
    t = std::thread([this, &ctx, keys] {
      troupe::ipc::zap_authenticator auth(
          ctx,
          [keys] {
            troupe::ipc::trusted_set set;
            for (const auto& k : keys) set.name_by_key.emplace(k, std::string("trusted"));
            return set;
          },
          [](const std::string&, const std::string&) {});
      ready = true;
      while (!stop) {
        zmq::pollitem_t item{auth.socket().handle(), 0, ZMQ_POLLIN, 0};
        zmq::poll(&item, 1, 10ms);
        auth.handle_pending();
      }
    });
    for (int i = 0; i < 500 && !ready; ++i) std::this_thread::sleep_for(2ms);
  }
  ~zap_thread() {
    stop = true;
    t.join();
  }
};

troupe::ipc::curve_keypair keys() {
  auto k = troupe::ipc::generate_curve_keypair();
  REQUIRE(k);
  return *k;
}

template <class F>
bool within(std::chrono::milliseconds limit, F f) {
  for (auto end = std::chrono::steady_clock::now() + limit; std::chrono::steady_clock::now() < end;) {
    if (f()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return f();
}

}  // namespace

TEST_CASE("a member's beacon and its leader's hear each other; a hung loop falls silent", "[beacon]") {
  zmq::context_t ctx;
  const auto leader_keys = keys(), member_keys = keys();
  zap_thread zap(ctx, {leader_keys.public_key, member_keys.public_key});
  {
    beacon leader(ctx, 0x1111, leader_keys, 20ms, 300ms);
    beacon member(ctx, 0x2222, member_keys, 20ms, 300ms);
    REQUIRE(leader.listen("127.0.0.1"));
    CHECK(leader.endpoint().rfind("tcp://127.0.0.1:", 0) == 0);
    leader.start();
    member.start();
    CHECK_FALSE(leader.heard(0x2222));
    member.beat_to(leader.endpoint(), leader_keys.public_key);

    // Both loops turn: each hears the other.
    std::atomic<bool> turning{true};
    std::thread loops([&] {
      while (turning) {
        leader.loop_turned();
        member.loop_turned();
        std::this_thread::sleep_for(10ms);
      }
    });
    CHECK(within(5s, [&] { return leader.heard(0x2222) && member.leader_heard(); }));
    turning = false;
    loops.join();

    // The member's loop hangs: past the stall limit it beats no more.
    std::this_thread::sleep_for(400ms);
    const auto last = *leader.heard(0x2222);
    std::this_thread::sleep_for(200ms);
    CHECK(*leader.heard(0x2222) == last);
    member.stop();
    leader.stop();
  }
}

TEST_CASE("a beacon beats to nobody until told, and to a key the leader does not hold, never heard", "[beacon]") {
  zmq::context_t ctx;
  const auto leader_keys = keys(), member_keys = keys(), other = keys();
  zap_thread zap(ctx, {leader_keys.public_key, member_keys.public_key});
  beacon leader(ctx, 1, leader_keys, 20ms, 10s);
  beacon member(ctx, 2, member_keys, 20ms, 10s);
  REQUIRE(leader.listen("127.0.0.1"));
  leader.start();
  member.start();
  std::this_thread::sleep_for(100ms);
  CHECK_FALSE(leader.heard(2));
  member.beat_to(leader.endpoint(), other.public_key);  // the wrong server key: no handshake
  std::this_thread::sleep_for(300ms);
  CHECK_FALSE(leader.heard(2));
  CHECK_FALSE(member.leader_heard());
  member.beat_to(leader.endpoint(), leader_keys.public_key);
  CHECK(within(5s, [&] { return leader.heard(2).has_value(); }));
}
