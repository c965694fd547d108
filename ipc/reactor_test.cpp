// Tests of the Asio/ZeroMQ glue: socket_watcher wakes the loop for a socket's
// messages and only then; data_link delivers batched records in order, also
// after the peer's pipe was full. Every wait is bounded by a deadline that
// fails the test instead of hanging it.
#include "ipc/reactor.hpp"

#include <catch2/catch.hpp>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

using troupe::address;
using namespace troupe::ipc;
namespace asio = boost::asio;

namespace {

/// A fresh directory under the system temp dir, removed with its contents.
class temp_dir {
 public:
  temp_dir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "troupe-ipc-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) FAIL("mkdtemp failed");
    path_ = pattern;
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

/// Stops io after limit unless cancelled first; expired() tells which happened.
class deadline {
 public:
  deadline(asio::io_context& io, std::chrono::seconds limit) : timer_(io, limit) {
    timer_.async_wait([this, &io](const boost::system::error_code& ec) {
      if (ec) return;
      expired_ = true;
      io.stop();
    });
  }
  void cancel() { timer_.cancel(); }
  [[nodiscard]] bool expired() const { return expired_; }

 private:
  asio::steady_timer timer_;
  bool expired_ = false;
};

/// Reads one message without blocking; empty optional when none is waiting.
std::optional<std::string> try_recv(zmq::socket_t& socket) {
  zmq::message_t msg;
  if (!socket.recv(msg, zmq::recv_flags::dontwait)) return std::nullopt;
  return msg.to_string();
}

record_view numbered_record(std::uint64_t seq, std::string_view type, std::string_view payload) {
  record_view r;
  r.kind = seq % 2 ? record_kind::ask : record_kind::tell;
  r.to = address(0x3fa9c012u, 17u);
  r.from = address(0x00000001u, static_cast<std::uint32_t>(16 + seq % 7));
  r.correlation = seq * 3;
  r.seq = seq;
  r.type = type;
  r.payload = payload;
  return r;
}

/// Collects the records of every batch a PULL socket receives, checking each.
struct batch_collector {
  std::vector<std::uint64_t> seqs;
  std::size_t batches = 0;
  bool all_well_formed = true;

  void take(std::string_view frame) {
    ++batches;
    const auto s = decode_batch(frame, [&](const record_view& r) {
      const std::string expected_payload(r.seq % 500, static_cast<char>('a' + r.seq % 26));
      if (r.kind != (r.seq % 2 ? record_kind::ask : record_kind::tell) || r.to != address(0x3fa9c012u, 17u) ||
          r.correlation != r.seq * 3 || r.type != "troupe.test" || r.payload != expected_payload)
        all_well_formed = false;
      seqs.push_back(r.seq);
    });
    if (!s) all_well_formed = false;
  }
};

std::string payload_for(std::uint64_t seq) { return std::string(seq % 500, static_cast<char>('a' + seq % 26)); }

bool in_order(const std::vector<std::uint64_t>& seqs, std::uint64_t n) {
  if (seqs.size() != n) return false;
  for (std::uint64_t i = 0; i < n; ++i)
    if (seqs[i] != i) return false;
  return true;
}

}  // namespace

TEST_CASE("a watched PULL socket receives every message a PUSH socket sends from another thread", "[reactor]") {
  constexpr int count = 10000;
  zmq::context_t ctx;
  zmq::socket_t pull(ctx, zmq::socket_type::pull);
  pull.bind("inproc://watcher-many");

  asio::io_context io;
  deadline limit(io, std::chrono::seconds(20));
  int received = 0;
  bool in_sequence = true;
  std::unique_ptr<socket_watcher> watcher;
  watcher = std::make_unique<socket_watcher>(io, pull, [&] {
    auto msg = try_recv(pull);
    if (!msg) return;
    if (*msg != std::to_string(received)) in_sequence = false;
    if (++received == count) {
      watcher->stop();
      limit.cancel();
    }
  });
  watcher->start();

  std::thread sender([&ctx] {
    zmq::socket_t push(ctx, zmq::socket_type::push);
    push.connect("inproc://watcher-many");
    for (int i = 0; i < count; ++i) {
      const std::string text = std::to_string(i);
      (void)push.send(zmq::buffer(text), zmq::send_flags::none);
    }
  });

  // run() returns by itself once the watcher is stopped and the deadline cancelled.
  io.run();
  sender.join();
  CHECK_FALSE(limit.expired());
  CHECK(received == count);
  CHECK(in_sequence);
}

TEST_CASE("an idle watched socket never calls its callback", "[reactor]") {
  zmq::context_t ctx;
  zmq::socket_t pull(ctx, zmq::socket_type::pull);
  zmq::socket_t push(ctx, zmq::socket_type::push);
  pull.bind("inproc://watcher-idle");
  push.connect("inproc://watcher-idle");

  asio::io_context io;
  int calls = 0;
  std::vector<std::string> got;
  socket_watcher watcher(io, pull, [&] {
    ++calls;
    if (auto msg = try_recv(pull)) got.push_back(*msg);
  });
  watcher.start();

  // Nothing was sent: the loop wakes only for its own start-up check.
  io.run_for(std::chrono::milliseconds(100));
  CHECK(calls == 0);

  // One message wakes it exactly once; afterwards it is idle again.
  (void)push.send(zmq::str_buffer("one"), zmq::send_flags::none);
  deadline limit(io, std::chrono::seconds(10));
  while (got.empty() && !limit.expired()) io.run_one();
  REQUIRE(got == std::vector<std::string>{"one"});
  io.run_for(std::chrono::milliseconds(100));
  CHECK(calls == 1);
  limit.cancel();
}

TEST_CASE("a message queued before the watcher starts is delivered", "[reactor]") {
  zmq::context_t ctx;
  zmq::socket_t pull(ctx, zmq::socket_type::pull);
  zmq::socket_t push(ctx, zmq::socket_type::push);
  pull.bind("inproc://watcher-early");
  push.connect("inproc://watcher-early");
  (void)push.send(zmq::str_buffer("early"), zmq::send_flags::none);
  // Let ZeroMQ consume the edge on the socket's descriptor before anyone waits on it.
  (void)pull.get(zmq::sockopt::events);

  asio::io_context io;
  deadline limit(io, std::chrono::seconds(10));
  std::optional<std::string> got;
  socket_watcher watcher(io, pull, [&] {
    got = try_recv(pull);
    watcher.stop();
    limit.cancel();
  });
  watcher.start();
  io.run();
  CHECK_FALSE(limit.expired());
  CHECK(got == "early");
}

TEST_CASE("a stopped watcher delivers nothing until started again", "[reactor]") {
  zmq::context_t ctx;
  zmq::socket_t pull(ctx, zmq::socket_type::pull);
  zmq::socket_t push(ctx, zmq::socket_type::push);
  pull.bind("inproc://watcher-stop");
  push.connect("inproc://watcher-stop");

  asio::io_context io;
  int calls = 0;
  socket_watcher watcher(io, pull, [&] {
    ++calls;
    (void)try_recv(pull);
  });
  watcher.start();
  watcher.stop();
  (void)push.send(zmq::str_buffer("x"), zmq::send_flags::none);
  io.run_for(std::chrono::milliseconds(100));
  CHECK(calls == 0);

  io.restart();
  deadline limit(io, std::chrono::seconds(10));
  watcher.start();
  while (calls == 0 && !limit.expired()) io.run_one();
  CHECK(calls == 1);
  limit.cancel();
}

TEST_CASE("a watcher callback may destroy its own watcher", "[reactor]") {
  zmq::context_t ctx;
  zmq::socket_t pull(ctx, zmq::socket_type::pull);
  zmq::socket_t push(ctx, zmq::socket_type::push);
  pull.bind("inproc://watcher-self");
  push.connect("inproc://watcher-self");
  for (int i = 0; i < 3; ++i) (void)push.send(zmq::str_buffer("m"), zmq::send_flags::none);

  asio::io_context io;
  int calls = 0;
  std::unique_ptr<socket_watcher> watcher;
  watcher = std::make_unique<socket_watcher>(io, pull, [&] {
    ++calls;
    (void)try_recv(pull);
    watcher.reset();
  });
  watcher->start();
  io.run_for(std::chrono::milliseconds(200));
  CHECK(calls == 1);
  CHECK_FALSE(watcher);
}

TEST_CASE("data_link delivers records to an ipc endpoint in order", "[reactor]") {
  temp_dir dir;
  const std::string endpoint = "ipc://" + (dir.path() / "inbox.sock").string();
  zmq::context_t ctx;
  zmq::socket_t pull(ctx, zmq::socket_type::pull);
  configure_data_socket(pull);
  pull.bind(endpoint);

  // Enough bytes for several full batches plus a partial one at the end of the turn.
  constexpr std::uint64_t count = 3000;
  asio::io_context io;
  deadline limit(io, std::chrono::seconds(20));
  batch_collector got;
  socket_watcher inbox(io, pull, [&] {
    auto frame = try_recv(pull);
    if (!frame) return;
    got.take(*frame);
    if (got.seqs.size() == count) {
      inbox.stop();
      limit.cancel();
    }
  });
  inbox.start();

  data_link link(io, ctx);
  asio::post(io, [&] {
    data_link::peer* p = link.connect(endpoint);
    CHECK(link.connect(endpoint) == p);
    for (std::uint64_t i = 0; i < count; ++i) {
      const std::string payload = payload_for(i);
      link.send(p, numbered_record(i, "troupe.test", payload));
    }
    // The tail waits for the end of this loop turn.
    CHECK(link.pending_batches() == 1);
  });
  io.run();

  CHECK_FALSE(limit.expired());
  CHECK(got.all_well_formed);
  CHECK(in_order(got.seqs, count));
  // Records were batched: far fewer frames than records, and no batch left behind.
  CHECK(got.batches > 1);
  CHECK(got.batches < count / 10);
  CHECK(link.pending_batches() == 0);
}

TEST_CASE("data_link keeps batches refused by a full pipe and sends them in order later", "[reactor]") {
  temp_dir dir;
  const std::string endpoint = "ipc://" + (dir.path() / "late.sock").string();
  zmq::context_t ctx;
  asio::io_context io;
  data_link link(io, ctx);

  // Nobody listens yet, so the pipe fills at the send high-water mark; one
  // batch per record overflows it.
  data_link::peer* p = link.connect(endpoint);
  const auto count = static_cast<std::uint64_t>(p->socket.get(zmq::sockopt::sndhwm)) + 500;
  for (std::uint64_t i = 0; i < count; ++i) {
    link.send(p, numbered_record(i, "troupe.test", {}));
    link.flush();
  }
  REQUIRE(link.pending_batches() > 0);
  REQUIRE(link.pending_batches() < count);

  zmq::socket_t pull(ctx, zmq::socket_type::pull);
  configure_data_socket(pull);
  pull.bind(endpoint);

  deadline limit(io, std::chrono::seconds(20));
  std::vector<std::uint64_t> seqs;
  bool well_formed = true;
  socket_watcher inbox(io, pull, [&] {
    auto frame = try_recv(pull);
    if (!frame) return;
    const auto s = decode_batch(*frame, [&](const record_view& r) { seqs.push_back(r.seq); });
    if (!s) well_formed = false;
    if (seqs.size() == count) {
      inbox.stop();
      limit.cancel();
    }
  });
  inbox.start();
  io.run();

  CHECK_FALSE(limit.expired());
  CHECK(well_formed);
  CHECK(in_order(seqs, count));
  CHECK(link.pending_batches() == 0);
}

TEST_CASE("data_link batches records for different peers separately", "[reactor]") {
  temp_dir dir;
  const std::string a_endpoint = "ipc://" + (dir.path() / "a.sock").string();
  const std::string b_endpoint = "ipc://" + (dir.path() / "b.sock").string();
  zmq::context_t ctx;
  zmq::socket_t a(ctx, zmq::socket_type::pull);
  zmq::socket_t b(ctx, zmq::socket_type::pull);
  a.bind(a_endpoint);
  b.bind(b_endpoint);

  asio::io_context io;
  data_link link(io, ctx);
  auto* pa = link.connect(a_endpoint);
  auto* pb = link.connect(b_endpoint);
  REQUIRE(pa != pb);
  for (std::uint64_t i = 0; i < 10; ++i) {
    link.send(i % 2 ? pb : pa, numbered_record(i, "t", "p"));
  }
  CHECK(link.pending_batches() == 2);
  io.run();  // the flush posted by the first send
  CHECK(link.pending_batches() == 0);

  auto seqs_of = [](zmq::socket_t& s) {
    zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
    REQUIRE(zmq::poll(&item, 1, std::chrono::milliseconds(5000)) == 1);
    auto frame = try_recv(s);
    REQUIRE(frame);
    std::vector<std::uint64_t> seqs;
    REQUIRE(decode_batch(*frame, [&](const record_view& r) { seqs.push_back(r.seq); }).ok());
    return seqs;
  };
  CHECK(seqs_of(a) == std::vector<std::uint64_t>{0, 2, 4, 6, 8});
  CHECK(seqs_of(b) == std::vector<std::uint64_t>{1, 3, 5, 7, 9});

  // A disconnected peer's pending records are dropped with it.
  link.send(pa, numbered_record(99, "t", "p"));
  CHECK(link.pending_batches() == 1);
  link.disconnect(a_endpoint);
  CHECK(link.pending_batches() == 0);
  io.restart();
  io.run();
}

TEST_CASE("what before_flush sends joins the batch of the flush that called it", "[reactor]") {
  // The gateway's acknowledgements wait for the next batch to a worker and
  // go in it: one frame, one wake-up of the worker, not two.
  temp_dir dir;
  const std::string endpoint = "ipc://" + (dir.path() / "inbox.sock").string();
  zmq::context_t ctx;
  zmq::socket_t pull(ctx, zmq::socket_type::pull);
  configure_data_socket(pull);
  pull.bind(endpoint);
  asio::io_context io;
  deadline limit(io, std::chrono::seconds(20));
  batch_collector got;
  socket_watcher inbox(io, pull, [&] {
    auto frame = try_recv(pull);
    if (!frame) return;
    got.take(*frame);
    if (got.seqs.size() == 2) {
      inbox.stop();
      limit.cancel();
    }
  });
  inbox.start();

  data_link link(io, ctx);
  data_link::peer* p = link.connect(endpoint);
  int hooks = 0;
  bool held_back = true;  // what the owner holds back until something goes
  link.before_flush = [&] {
    ++hooks;
    if (std::exchange(held_back, false)) link.send(p, numbered_record(0, "troupe.test", payload_for(0)));
  };
  asio::post(io, [&] { link.send(p, numbered_record(1, "troupe.test", payload_for(1))); });
  io.run();

  CHECK_FALSE(limit.expired());
  CHECK(got.all_well_formed);
  CHECK(got.batches == 1);  // both records in one frame
  CHECK(got.seqs.size() == 2);
  CHECK(hooks == 1);  // and no second flush for what the hook added
  CHECK(link.pending_batches() == 0);
}
