// supervisor/context.hpp — what every component of a system shares: its
// options, the loop and the ZeroMQ context, where its state lives, its id for
// this run and whether it is stopping. Owned by the system (system.cpp),
// which outlives every component; read on the loop's thread only.
#pragma once

#include "supervisor/event_ring.hpp"
#include "supervisor/system.hpp"

#include <boost/asio/io_context.hpp>
#include <zmq.hpp>

#include <cstdint>
#include <filesystem>
#include <string>

namespace troupe::ipc {
class zap_authenticator;
}

namespace troupe::supervisor {

struct system_context {
  system_options opts;  ///< as started; opts.caps changes with chgcap
  boost::asio::io_context& io;
  zmq::context_t& zmq;
  std::filesystem::path dir;      ///< HOME/systems/PORT
  std::filesystem::path run_dir;  ///< dir/run: sockets and worker links
  std::uint32_t id = 0;           ///< this run's system id (the first part of its addresses)
  bool stopping = false;          ///< set once by the system; every component then winds down
  /// The context's ZAP handler (ipc/curve.hpp), bound before any socket that
  /// authenticates; the client port and the peer link admit their domains.
  ipc::zap_authenticator* zap = nullptr;
  /// What happened, for `events` and metrics (event_ring.hpp); set by the
  /// system before any component runs.
  event_ring* events = nullptr;
  /// Records e in the ring (a component's one line where it logs an event).
  void note(event e) const {
    if (events != nullptr) events->record(std::move(e));
  }

  /// Drawn at every start, unlike id (kept across a crash): the names of this
  /// run's sockets, so that a process of an earlier run never reaches them.
  std::string run_tag{};

  /// "ipc://RUN_DIR/TAG-FILE"
  [[nodiscard]] std::string endpoint_of(const std::string& file) const {
    return "ipc://" + (run_dir / (run_tag + "-" + file)).string();
  }
  /// The fence page its workers map (ipc/fence_page.hpp).
  [[nodiscard]] std::filesystem::path fence_file() const { return run_dir / "fence"; }
  /// "HOST:PORT" of the public socket.
  [[nodiscard]] std::string where() const { return opts.bind_host + ":" + std::to_string(opts.port); }
};

}  // namespace troupe::supervisor
