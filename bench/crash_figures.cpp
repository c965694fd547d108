// crash_restart_answering: a lone system with named actors (spawned by a
// client, so kept in its desired state) is SIGKILLed while a client asks them
// steadily, and started again on the same home and port; timed from the
// SIGKILL until every named actor has answered an ask by its name. The
// baseline, interleaved sample by sample: the same SIGKILL and start of an
// empty system, until it answers `status` (a bare restart of the daemon).
#include "bench/bench.hpp"

#include <atomic>
#include <thread>

namespace troupe::bench {

using namespace std::chrono_literals;

namespace {

/// Asks the names in turn from a client of its own until stopped.
class steady_asks {
 public:
  steady_asks(std::uint16_t port, std::vector<std::string> names) : names_(std::move(names)) {
    auto c = client::connect("127.0.0.1:" + std::to_string(port));
    if (!c) throw bench_error("steady asks: " + c.err().message);
    client_ = std::make_unique<client>(std::move(*c));
    t_ = std::thread([this] {
      for (std::size_t i = 0; !stop_; ++i)
        (client_->ask(names_[i % names_.size()], json{{"op", "ping"}}, 200ms) ? ok_ : failed_)++;
    });
  }
  ~steady_asks() {
    stop_ = true;
    t_.join();
  }
  steady_asks(const steady_asks&) = delete;
  steady_asks& operator=(const steady_asks&) = delete;
  [[nodiscard]] long ok() const { return ok_; }
  [[nodiscard]] long failed() const { return failed_; }

 private:
  std::vector<std::string> names_;
  std::unique_ptr<client> client_;
  std::atomic<bool> stop_{false};
  std::atomic<long> ok_{0}, failed_{0};
  std::thread t_;
};

}  // namespace

void measure_crash_restart(const std::string& troupe_exe, const std::string& package_dir, int samples, int named_actors,
                           std::vector<figure>& out) {
  say("SIGKILL of a system under steady asks until its " + std::to_string(named_actors) +
      " named actors answer again vs a bare restart of an empty system");
  live_system sys(troupe_exe);
  live_system bare(troupe_exe);
  sys.start();
  bare.start();
  const bench_packages packages(sys.home(), package_dir);
  const std::string id = sys.load(packages.bench("1.0.0"));
  std::vector<std::string> names;
  std::vector<double> spawn_ms;
  for (int i = 0; i < named_actors; ++i) {
    names.push_back("crash-" + std::to_string(i));
    const auto t0 = now_ns();
    (void)sys.call("spawn", json{{"type", "Idle"}, {"package", id}, {"name", names.back()}});
    spawn_ms.push_back(static_cast<double>(now_ns() - t0) / 1e6);
  }
  sys.track_workers();
  say("  spawn call (kept in the desired state before it is answered): median " + fmt(median(spawn_ms)) + " ms");

  std::vector<double> crash_ms, bare_ms, started_ms;
  long ok = 0, failed = 0;
  for (int i = 0; i <= samples; ++i) {  // sample 0 is a warm-up
    const auto b0 = bare.kill();
    bare.start();  // returns once it answers status
    const double b = static_cast<double>(now_ns() - b0) / 1e6;

    double c = 0;
    {
      steady_asks client(sys.port(), names);
      std::this_thread::sleep_for(50ms);  // traffic under way
      const auto t0 = sys.kill();
      sys.start();
      const auto started = now_ns();
      for (const auto& name : names)
        for (;;) {
          if (sys.try_ask(name, json{{"op", "ping"}}, 2s)) break;
          if (now_ns() - t0 > 20'000'000'000) throw bench_error(name + " does not answer 20 s after the SIGKILL");
        }
      c = static_cast<double>(now_ns() - t0) / 1e6;
      started_ms.push_back(static_cast<double>(started - t0) / 1e6);
      ok += client.ok();
      failed += client.failed();
    }
    sys.track_workers();
    if (i > 0) {
      crash_ms.push_back(c);
      bare_ms.push_back(b);
    }
  }
  say("  of which SIGKILL to `troupe start` answering status: median " + fmt(median(started_ms)) + " ms");
  say("  steady asks: " + std::to_string(ok) + " answered, " + std::to_string(failed) +
      " failed or timed out (200 ms) around the crashes");
  sys.stop();
  bare.stop();
  figure f{"crash_restart_answering_p50",
           median(crash_ms),
           "ms",
           median(bare_ms),
           "SIGKILL of an empty system (no package, no actor), `troupe start` on the same home and port until it "
           "answers status",
           "-",
           {}};
  out.push_back(f);
}

}  // namespace troupe::bench
