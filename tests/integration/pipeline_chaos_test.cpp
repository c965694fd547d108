// A pipeline loses no item while its stages are SIGKILLed at random
// (DESIGN.md §1.2, §6): examples/pipeline, three stages in three workers
// (isolation: dedicated), 100,000 numbered items streamed through it as asks
// of "emit" while a thread kills a random stage's worker every 200–400 ms.
// Delivery across workers is at least once (docs/PROTOCOL.md §8): the Sink
// may count duplicates, never a gap. A range whose ask fails (the Source died
// handling it: "poison: ...", or any other failure) is asked for again.
#include "tests/integration/harness.hpp"

#include <catch2/catch.hpp>

#include <signal.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <random>
#include <string>
#include <thread>

using troupe::testing::json;
using troupe::testing::test_system;
using namespace std::chrono_literals;

namespace {

constexpr std::uint64_t total_items = 100000;
constexpr std::uint64_t range_size = 1000;
// The load generator's pace, one range per slot. The pipeline handles the
// 100,000 items in well under a second: unpaced, they would be through before
// the first kill. Paced, the stream lasts about 10 s and some 30 kills land in
// it, every stage restarted about ten times, a few kills while items are in
// flight. Correctness never depends on it: nothing waits for a slot but the
// next range.
constexpr auto range_interval = 100ms;
const std::array<std::string, 3> stage_names{"pipeline.source", "pipeline.transform", "pipeline.sink"};

/// Whether pid runs troupe-worker: the pid comes from the system's listing
/// and may have been reused since; nothing else is ever killed.
bool is_troupe_worker(int pid) {
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/" + std::to_string(pid) + "/exe", ec);
  return !ec && exe.filename() == "troupe-worker";
}

/// From its own thread and its own client, SIGKILLs the worker of a random
/// stage every 200–400 ms until stopped.
class stage_killer {
 public:
  explicit stage_killer(const test_system& sys) : seed_(std::random_device{}()) {
    auto c = troupe::client::connect(sys.where(), sys.connect_options());
    if (!c) throw std::runtime_error("client::connect: " + c.err().message);
    thread_ = std::thread([this, cl = std::move(*c)]() mutable { run(cl); });
  }
  ~stage_killer() { stop(); }
  stage_killer(const stage_killer&) = delete;
  stage_killer& operator=(const stage_killer&) = delete;

  void stop() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  [[nodiscard]] int kills() const { return kills_; }
  [[nodiscard]] std::array<int, 3> kills_per_stage() const { return {per_stage_[0], per_stage_[1], per_stage_[2]}; }
  [[nodiscard]] unsigned seed() const { return seed_; }

 private:
  void run(troupe::client& cl) {
    std::mt19937 rng(seed_);
    std::uniform_int_distribution<int> interval_ms(200, 400);
    std::uniform_int_distribution<std::size_t> pick(0, stage_names.size() - 1);
    for (;;) {
      {
        // The kill interval is the one wait here; stop() cuts it short.
        std::unique_lock lock(mutex_);
        if (wake_.wait_for(lock, std::chrono::milliseconds(interval_ms(rng)), [this] { return stopping_; })) return;
      }
      const std::size_t stage = pick(rng);
      const int pid = worker_pid_of(cl, stage_names[stage]);
      // No pid: that worker is being restarted; this round kills nothing.
      if (pid > 0 && is_troupe_worker(pid) && ::kill(pid, SIGKILL) == 0) {
        ++kills_;
        ++per_stage_[stage];
      }
    }
  }

  static int worker_pid_of(troupe::client& cl, const std::string& name) {
    auto r = cl.call("actors", json::object(), 3s);
    if (!r) return 0;
    for (const auto& a : (*r)["actors"])
      if (a["name"] == name && a["worker_pid"].is_number()) return a["worker_pid"].get<int>();
    return 0;
  }

  const unsigned seed_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::atomic<int> kills_{0};
  std::array<std::atomic<int>, 3> per_stage_{};
  std::thread thread_;
};

/// Lines of the system log holding text (the stages log each resent item).
std::size_t count_lines_with(const std::string& log, const std::string& text) {
  std::size_t n = 0;
  for (auto at = log.find(text); at != std::string::npos; at = log.find(text, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("a pipeline whose stages are SIGKILLed at random delivers every item at least once",
          "[integration][pipeline][chaos]") {
  const auto started = std::chrono::steady_clock::now();
  // Bounds, so that a pipeline that loses items fails the test instead of
  // hanging CI: streaming, then the Sink catching up after the last kill.
  const auto stream_deadline = started + 40s;  // about 10 s when nothing is lost
  constexpr auto drain_limit = 15s;
  constexpr auto stalled_limit = 5s;  // no new item for this long after the kills: give up early

  test_system sys;
  sys.load(TROUPE_PIPELINE_PKG);
  // Downstream first: each stage looks the next one up by name.
  const std::string sink = sys.spawn({"Sink", "--name", "pipeline.sink"});
  sys.spawn({"Transform", "--name", "pipeline.transform"});
  sys.spawn({"Source", "--name", "pipeline.source"});
  auto& client = sys.client();

  int retried_ranges = 0;
  int poisoned_asks = 0;
  std::string last_failure;
  int kills = 0;
  std::array<int, 3> kills_per_stage{};
  unsigned seed = 0;
  auto stream_started = std::chrono::steady_clock::now();
  {
    stage_killer killer(sys);
    seed = killer.seed();
    stream_started = std::chrono::steady_clock::now();
    for (std::uint64_t from = 0; from < total_items; from += range_size) {
      std::this_thread::sleep_until(stream_started + range_interval * (from / range_size));
      for (;;) {
        INFO("range from " << from << ", last failure: " << last_failure << ", kill seed " << seed);
        REQUIRE(std::chrono::steady_clock::now() < stream_deadline);
        auto r = client.ask("pipeline.source", json{{"from", from}, {"count", range_size}}, 2s, "emit");
        if (r && r->value("emitted", std::uint64_t{0}) == range_size) break;
        ++retried_ranges;
        last_failure = r ? r->dump() : r.err().message;
        if (!r && r.err().message.find("poison:") != std::string::npos) ++poisoned_asks;
      }
    }
    killer.stop();
    kills = killer.kills();
    kills_per_stage = killer.kills_per_stage();
  }
  const auto streamed = std::chrono::steady_clock::now();

  // Every range was acknowledged: wait (bounded) for the Sink to have it all.
  json stats;
  const auto drain_deadline = streamed + drain_limit;
  auto last_progress = streamed;
  std::uint64_t last_distinct = 0;
  while (std::chrono::steady_clock::now() < drain_deadline &&
         std::chrono::steady_clock::now() - last_progress < stalled_limit) {
    if (auto r = client.ask("pipeline.sink", json(), 2s, "stats"); r && r->is_object()) {
      stats = *r;
      const auto distinct = stats.value("distinct", std::uint64_t{0});
      if (distinct >= total_items) break;
      if (distinct > last_distinct) last_progress = std::chrono::steady_clock::now();
      last_distinct = distinct;
    }
    std::this_thread::sleep_for(50ms);  // poll interval, not a synchronisation
  }
  const auto done = std::chrono::steady_clock::now();
  auto seconds = [](auto d) { return std::chrono::duration<double>(d).count(); };

  const std::string log = sys.log();
  std::cout << "pipeline chaos: " << total_items << " items in ranges of " << range_size << ", " << kills
            << " SIGKILLs (source " << kills_per_stage[0] << ", transform " << kills_per_stage[1] << ", sink "
            << kills_per_stage[2] << "; seed " << seed << "), " << retried_ranges << " ranges asked again ("
            << poisoned_asks << " poisoned), " << count_lines_with(log, "resending ")
            << " poisoned tells resent; streamed in " << seconds(streamed - stream_started)
            << " s, sink complete after " << seconds(done - streamed) << " s more; sink stats " << stats.dump()
            << std::endl;

  INFO("sink stats " << stats.dump() << "; sink " << sink
                     << " as listed: " << (sys.actor(sink) ? sys.actor(sink)->raw.dump() : "not listed"));
  REQUIRE(stats.is_object());
  CHECK(stats["missing_below"] == 0);
  CHECK(stats["distinct"] == total_items);
  CHECK(stats["max"] == total_items - 1);
  CHECK(stats["malformed"] == 0);
  // Every stage survived its kills under its restart policy.
  for (const auto& name : stage_names) {
    INFO(name);
    bool listed_running = false;
    for (const auto& a : sys.actors())
      if (a["name"] == name) listed_running = a["state"] == "running" || a["state"] == "starting";
    CHECK(listed_running);
  }
}
