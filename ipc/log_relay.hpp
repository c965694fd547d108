// ipc/log_relay.hpp — the daemon's reader of its workers' output. Each
// worker's stdout and stderr are sockets (socketpair) whose other ends this
// reads on a thread of its own, away from the daemon's loop: a chatty
// package costs the message path nothing but CPU. Lines are logged through
// ipc/log.hpp under the worker's tag: records a worker's logger encoded
// (encode_relay_line) with their own level, time and actor; anything else
// (the package's printf, std::cerr, a crash message) as one record per line
// at the level given for that stream (stdout info, stderr warn).
//
// Threading: add() and stop() from any one thread; the reading happens on the
// relay's own thread. A stream ends when every process holding its other end
// is gone (the worker and whatever it started): what was written is read to
// the end first.
#pragma once

#include <memory>
#include <string>

namespace troupe::ipc {

class log_relay {
 public:
  log_relay();
  ~log_relay();  ///< stop()
  log_relay(const log_relay&) = delete;
  log_relay& operator=(const log_relay&) = delete;

  /// Reads fd (taken over: closed at its end) until its end; its lines are
  /// records of proc; raw lines at raw_level.
  void add(int fd, std::string proc, int raw_level);
  /// Waits until every stream has ended (at most 500 ms; what is still open
  /// then is abandoned), then ends the thread.
  void stop();

  /// Longest line kept whole; a longer one is logged in pieces of this size.
  static constexpr std::size_t max_line = 16 * 1024;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// Splits the bytes of one stream into records (a line at a time); what
/// log_relay does with each stream, exposed for tests. finish() logs what is
/// left without its '\n'.
class log_line_splitter {
 public:
  log_line_splitter(std::string proc, int raw_level) : proc_(std::move(proc)), raw_level_(raw_level) {}
  void feed(std::string_view bytes);
  void finish();

 private:
  void emit(std::string_view line);
  std::string proc_;
  int raw_level_;
  std::string partial_;
};

}  // namespace troupe::ipc
