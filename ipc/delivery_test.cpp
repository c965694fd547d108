// Tests of no-loss delivery's bookkeeping: the receiver's ledger acknowledges
// only a done prefix of each channel, counting the outputs of each record;
// data_link numbers records per peer, keeps them until acknowledged, releases
// their causes then, and hands back what a dead peer never acknowledged.
#include "ipc/delivery.hpp"
#include "ipc/reactor.hpp"

#include <catch2/catch.hpp>

#include <boost/asio/io_context.hpp>

#include <string>
#include <vector>

using troupe::address;
using namespace troupe::ipc;

namespace {

struct ack_seen {
  std::string endpoint;
  std::uint64_t channel;
  std::uint64_t first;
  std::uint64_t seq;  // last
};

std::vector<ack_seen> acks_of(inbound_ledger& ledger) {
  std::vector<ack_seen> out;
  ledger.take_acks([&](std::string_view ep, std::uint64_t ch, std::uint64_t first, std::uint64_t last) {
    out.push_back({std::string(ep), ch, first, last});
  });
  return out;
}

record_view tell(std::uint64_t n, std::string_view payload) {
  record_view r;
  r.kind = record_kind::tell;
  r.to = address(7, 20);
  r.from = address(7, static_cast<std::uint32_t>(16 + n));
  r.type = "t";
  r.payload = payload;
  return r;
}

std::vector<record_view> decode_all(const std::string& frame, std::vector<std::string>& keep) {
  std::vector<record_view> out;
  keep.push_back(frame);
  auto s = decode_batch(keep.back(), [&](const record_view& r) { out.push_back(r); });
  REQUIRE(s);
  return out;
}

}  // namespace

TEST_CASE("a record without outputs is acknowledged once handled", "[delivery]") {
  inbound_ledger ledger;
  const auto ch = ledger.open(42, "ipc://sender");
  CHECK(ledger.open(42, "ipc://sender") == ch);  // every batch names its channel again
  auto c1 = ledger.begin(ch, 1);
  auto c2 = ledger.begin(ch, 2);
  CHECK(acks_of(ledger).empty());
  ledger.release(c1);
  auto acks = acks_of(ledger);
  REQUIRE(acks.size() == 1);
  CHECK(acks[0].endpoint == "ipc://sender");
  CHECK(acks[0].channel == 42);
  CHECK(acks[0].seq == 1);
  ledger.release(c2);
  acks = acks_of(ledger);
  REQUIRE(acks.size() == 1);
  CHECK(acks[0].seq == 2);
  CHECK(ledger.unacknowledged() == 0);
  CHECK(acks_of(ledger).empty());  // nothing new
}

TEST_CASE("a record is acknowledged only once its outputs are; later ones do not wait for it", "[delivery]") {
  inbound_ledger ledger;
  const auto ch = ledger.open(9, "ipc://s");
  auto c1 = ledger.begin(ch, 1);
  ledger.hold(c1);     // the handler of 1 sent one message
  ledger.release(c1);  // ... and returned
  auto c2 = ledger.begin(ch, 2);
  ledger.release(c2);  // 2 is done although 1 is not: a ping-pong between two
                       // workers would deadlock if 2 waited for 1
  auto acks = acks_of(ledger);
  REQUIRE(acks.size() == 1);
  CHECK(acks[0].first == 2);
  CHECK(acks[0].seq == 2);
  CHECK(ledger.unacknowledged() == 1);
  CHECK(ledger.origin(c1).channel_id == 9);
  CHECK(ledger.origin(c1).seq == 1);
  ledger.release(c1);  // 1's output acknowledged downstream
  acks = acks_of(ledger);
  REQUIRE(acks.size() == 1);
  CHECK(acks[0].first == 1);
  CHECK(acks[0].seq == 1);
  CHECK(ledger.unacknowledged() == 0);
}

TEST_CASE("records done in a row are acknowledged as one run", "[delivery]") {
  inbound_ledger ledger;
  const auto ch = ledger.open(3, "ipc://s");
  for (std::uint64_t seq = 1; seq <= 100; ++seq) ledger.release(ledger.begin(ch, seq));
  auto acks = acks_of(ledger);
  REQUIRE(acks.size() == 1);
  CHECK(acks[0].first == 1);
  CHECK(acks[0].seq == 100);
}

TEST_CASE("channels are acknowledged separately and a dead sender's are forgotten", "[delivery]") {
  inbound_ledger ledger;
  const auto a = ledger.open(1, "ipc://a");
  const auto b = ledger.open(2, "ipc://b");
  auto ca = ledger.begin(a, 5);
  auto cb = ledger.begin(b, 1);
  ledger.forget_endpoint("ipc://a");
  ledger.release(ca);  // nothing to acknowledge to a dead sender
  ledger.hold(ca);
  ledger.release(cb);
  auto acks = acks_of(ledger);
  REQUIRE(acks.size() == 1);
  CHECK(acks[0].endpoint == "ipc://b");
  CHECK(ledger.unacknowledged() == 0);
  CHECK_FALSE(ledger.begin(a, 6));  // a forgotten channel tracks nothing
}

TEST_CASE(
    "a reliable link numbers records per peer, keeps them until acknowledged and returns "
    "the rest when the peer dies",
    "[delivery]") {
  boost::asio::io_context io;
  zmq::context_t zmq;
  data_link link(io, zmq);
  link.enable_acks("ipc://me");
  auto* peer = link.connect("inproc://nowhere");
  // Without a binder the frames wait in ZeroMQ: enough to test the bookkeeping.
  const std::string payload = "x";
  link.send(peer, tell(1, payload), cause{3, 10});
  link.send(peer, tell(2, payload));
  link.flush();
  link.send(peer, tell(3, payload), cause{3, 11});
  record_view exit_request = tell(4, payload);
  exit_request.kind = record_kind::exit;  // the system's own: never numbered
  link.send(peer, exit_request);
  link.flush();
  CHECK(link.unacknowledged_batches() == 2);

  std::vector<cause> released;
  link.on_ack(0xdead, 1, 5, [&](cause c) { released.push_back(c); });  // unknown channel: ignored
  CHECK(released.empty());

  auto kept = link.take_unacked("inproc://nowhere");
  REQUIRE(kept.size() == 2);
  std::vector<std::string> frames;
  auto first = decode_all(*kept[0].frame, frames);
  REQUIRE(first.size() == 3);
  CHECK(first[0].kind == record_kind::channel);
  CHECK(first[0].payload == "ipc://me");
  CHECK(first[1].seq == 1);
  CHECK(first[2].seq == 2);
  CHECK(kept[0].first_seq == 1);
  REQUIRE(kept[0].causes.size() == 2);
  CHECK(kept[0].cause_of(1).entry == 10);
  CHECK_FALSE(kept[0].cause_of(2));
  CHECK_FALSE(kept[0].is_acked(1));
  auto second = decode_all(*kept[1].frame, frames);
  REQUIRE(second.size() == 3);
  CHECK(second[0].correlation == first[0].correlation);  // one channel per peer
  CHECK(second[1].seq == 3);
  CHECK(second[2].kind == record_kind::exit);
  CHECK(second[2].seq == 0);
  CHECK(link.unacknowledged_batches() == 0);  // the peer is gone
}

TEST_CASE("an ack drops what it covers and releases its causes, also within a batch", "[delivery]") {
  boost::asio::io_context io;
  zmq::context_t zmq;
  data_link link(io, zmq);
  link.enable_acks("ipc://me");
  auto* peer = link.connect("inproc://nowhere2");
  const std::string payload = "y";
  for (std::uint64_t n = 1; n <= 3; ++n) link.send(peer, tell(n, payload), cause{5, n});
  link.flush();
  link.send(peer, tell(4, payload), cause{5, 4});
  link.flush();
  const std::uint64_t channel = peer->channel_id;
  REQUIRE(channel != 0);

  std::vector<cause> released;
  auto release = [&](cause c) { released.push_back(c); };
  link.on_ack(channel, 1, 2, release);
  REQUIRE(released.size() == 2);  // seq 1 and 2 of the first batch
  CHECK(released[1].entry == 2);
  CHECK(link.unacknowledged_batches() == 2);  // the first batch is only partly acknowledged
  link.on_ack(channel, 4, 4, release);        // out of order: the second batch is done
  CHECK(released.size() == 3);
  CHECK(released[2].entry == 4);
  CHECK(link.unacknowledged_batches() == 2);  // kept until the frames before it are done
  link.on_ack(channel, 3, 3, release);
  CHECK(released.size() == 4);
  CHECK(link.unacknowledged_batches() == 0);
  link.on_ack(channel, 1, 4, release);  // a repeated ack changes nothing
  CHECK(released.size() == 4);
}

TEST_CASE("without acks a link numbers and keeps nothing", "[delivery]") {
  boost::asio::io_context io;
  zmq::context_t zmq;
  data_link link(io, zmq);
  auto* peer = link.connect("inproc://nowhere5");
  const std::string payload = "z";
  link.send(peer, tell(1, payload));
  link.flush();
  CHECK(link.unacknowledged_batches() == 0);
  CHECK(peer->channel_id == 0);
}

TEST_CASE("a channel's records are taken once and in order; a copy of a done one is acknowledged again", "[delivery]") {
  inbound_ledger ledger;
  const auto ch = ledger.open(77, "tcp://127.0.0.1:5000");
  using arrival = inbound_ledger::arrival;
  REQUIRE(ledger.arrive(ch, 1) == arrival::take);
  auto c1 = ledger.begin(ch, 1);
  CHECK(ledger.arrive(ch, 1) == arrival::duplicate);  // still being handled: no ack yet
  CHECK(acks_of(ledger).empty());
  CHECK(ledger.arrive(ch, 3) == arrival::gap);  // 2 was lost with a connection: 3 waits for it
  ledger.release(c1);
  auto acks = acks_of(ledger);
  REQUIRE(acks.size() == 1);
  CHECK((acks[0].first == 1 && acks[0].seq == 1));
  CHECK(acks[0].endpoint == "tcp://127.0.0.1:5000");
  // Its ack was lost: the sender sends it again, and gets the ack again.
  CHECK(ledger.arrive(ch, 1) == arrival::duplicate);
  acks = acks_of(ledger);
  REQUIRE(acks.size() == 1);
  CHECK((acks[0].first == 1 && acks[0].seq == 1));
  CHECK(ledger.arrive(ch, 2) == arrival::take);
  CHECK(ledger.arrive(ch, 3) == arrival::take);
}

TEST_CASE("frames received twice (a go-back over tcp) deliver each record once, in order", "[delivery]") {
  boost::asio::io_context io;
  zmq::context_t zmq;
  data_link sender(io, zmq);
  sender.enable_acks("ipc://sender");
  auto* peer = sender.connect("inproc://nowhere6");
  const std::string payload = "p";
  for (std::uint64_t n = 1; n <= 3; ++n) sender.send(peer, tell(n, payload));
  sender.flush();
  sender.send(peer, tell(4, payload));
  sender.flush();
  auto kept = sender.take_unacked("inproc://nowhere6");
  REQUIRE(kept.size() == 2);

  data_link receiver_link(io, zmq);
  inbound_ledger ledger;
  std::vector<std::uint64_t> delivered;
  auto receive = [&](const std::string& frame) {
    auto s = receive_frame(
        frame, true, receiver_link, ledger,
        [&](const record_view& r, cause c) {
          delivered.push_back(r.seq);
          ledger.release(c);
        },
        [](cause) {});
    REQUIRE(s);
  };
  receive(*kept[1].frame);  // the first frame was lost: 4 is past a gap
  CHECK(delivered.empty());
  receive(*kept[0].frame);
  receive(*kept[0].frame);  // sent again: copies
  receive(*kept[1].frame);
  CHECK(delivered == std::vector<std::uint64_t>{1, 2, 3, 4});
}

TEST_CASE("a direct (tcp) peer gets what it has not acknowledged again after the timeout, backing off", "[delivery]") {
  boost::asio::io_context io;
  zmq::context_t zmq;
  data_link link(io, zmq);
  link.enable_acks("ipc://me");
  auto own = generate_curve_keypair();
  auto server = generate_curve_keypair();
  REQUIRE((own && server));
  link.enable_direct("tcp://127.0.0.1:5999", *own, std::chrono::milliseconds(500));
  auto t = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
  link.clock = [&] { return t; };
  // Nothing listens there: ZeroMQ keeps the frames, as a dropped connection would lose them.
  auto* peer = link.connect("tcp://127.0.0.1:1", server->public_key);
  REQUIRE(peer->direct);
  const std::string payload = "q";
  link.send(peer, tell(1, payload), cause{2, 1});
  link.flush();
  link.send(peer, tell(2, payload), cause{2, 2});
  link.flush();
  std::vector<std::string> frames;
  CHECK(decode_all(*peer->unacked.front().frame, frames)[0].payload == "tcp://127.0.0.1:5999");  // acks go there

  using std::chrono::milliseconds;
  link.resend_due(t + milliseconds(499));
  CHECK(link.resent_frames() == 0);
  t += milliseconds(500);
  link.resend_due(t);
  CHECK(link.resent_frames() == 2);  // everything unacknowledged, from the oldest
  t += milliseconds(999);
  link.resend_due(t);
  CHECK(link.resent_frames() == 2);  // the timeout doubled
  t += milliseconds(1);
  link.resend_due(t);
  CHECK(link.resent_frames() == 4);
  // Progress resets the timeout; a fully acknowledged peer gets nothing again.
  std::vector<cause> released;
  t += milliseconds(10);
  link.on_ack(peer->channel_id, 1, 1, [&](cause c) { released.push_back(c); });
  CHECK(released.size() == 1);
  link.resend_due(t + milliseconds(499));
  CHECK(link.resent_frames() == 4);
  link.resend_due(t + milliseconds(500));
  CHECK(link.resent_frames() == 5);
  link.on_ack(peer->channel_id, 2, 2, [&](cause c) { released.push_back(c); });
  link.resend_due(t + std::chrono::hours(1));
  CHECK(link.resent_frames() == 5);
  CHECK(link.direct_peers() == 1);
  CHECK(link.idle_direct_peers(t + std::chrono::seconds(59), std::chrono::seconds(60)).empty());
  CHECK(link.idle_direct_peers(t + std::chrono::seconds(61), std::chrono::seconds(60)).size() == 1);
  // An ipc peer never needs that: nothing is lost on ipc.
  CHECK_FALSE(link.connect("inproc://nowhere7")->direct);
  CHECK(link.reachable("ipc://x"));
  CHECK_FALSE(link.reachable("tcp://127.0.0.1:2"));
  CHECK(link.reachable("tcp://127.0.0.1:1"));
}
