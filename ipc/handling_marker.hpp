// ipc/handling_marker.hpp — what a worker is handling, in a small shared file
// that outlives the worker (docs/PROTOCOL.md §3.5).
//
// A worker killed by SIGKILL cannot say which message it was handling; its
// supervisor must know, to return that message to its sender as poison
// instead of delivering it again into a crash loop. So before each handler
// the worker notes the record's origin (channel id and sequence number) in a
// MAP_SHARED page of a file the supervisor created, and the supervisor reads
// it after the death. Plain stores into shared memory: a few nanoseconds a
// message, no system call. The worker's watchdog (max_handle_time) reads the
// same page and marks it "hung" before it kills the worker.
#pragma once

#include "ipc/delivery.hpp"

#include <troupe/address.hpp>
#include <troupe/result.hpp>

#include <atomic>
#include <cstdint>
#include <filesystem>

namespace troupe::ipc {

/// The page's layout (one host, so native byte order).
struct handling_page {
  static constexpr std::uint32_t magic_value = 0x4d485254;  // "TRHM"
  std::uint32_t magic;
  std::uint32_t version;
  std::atomic<std::uint64_t> generation;  ///< odd while a handler runs
  std::atomic<std::uint64_t> channel_id;  ///< origin of the record being handled (0: none)
  std::atomic<std::uint64_t> seq;
  std::atomic<std::uint64_t> actor;     ///< the actor handling it
  std::atomic<std::uint32_t> limit_ms;  ///< its max_handle_time (0: none)
  std::atomic<std::uint32_t> hung;      ///< set by the watchdog before it kills the worker
  /// Messages its actors sent (the worker's thread alone writes it; the
  /// supervisor reads it for metrics). Messages handled are generation / 2.
  std::atomic<std::uint64_t> sent;
};

/// What the supervisor reads after a worker died.
struct handling_snapshot {
  bool handling = false;  ///< a handler was running
  record_origin origin;   ///< the record it handled (channel 0: none, e.g. a timer)
  address actor;
  std::uint32_t limit_ms = 0;
  bool hung = false;          ///< killed by its watchdog: it ran past limit_ms
  std::uint64_t handled = 0;  ///< messages its handlers took (finished or running)
  std::uint64_t sent = 0;     ///< messages its actors sent
};

/// Creates (or empties) the marker file of a worker about to start.
status create_handling_file(const std::filesystem::path& file);

/// Reads the marker file of a worker that exited; an absent or foreign file
/// reads as "nothing was being handled".
handling_snapshot read_handling_file(const std::filesystem::path& file);

/// The worker's side: the mapped page.
class handling_marker {
 public:
  handling_marker() = default;
  ~handling_marker();
  handling_marker(const handling_marker&) = delete;
  handling_marker& operator=(const handling_marker&) = delete;

  /// Maps the file the supervisor created.
  status open(const std::filesystem::path& file);
  [[nodiscard]] bool is_open() const { return page_ != nullptr; }

  void begin(address actor, record_origin origin, std::uint32_t limit_ms) {
    if (page_ == nullptr) return;
    page_->channel_id.store(origin.channel_id, std::memory_order_relaxed);
    page_->seq.store(origin.seq, std::memory_order_relaxed);
    page_->actor.store(actor.value(), std::memory_order_relaxed);
    page_->limit_ms.store(limit_ms, std::memory_order_relaxed);
    page_->generation.fetch_add(1, std::memory_order_release);
  }
  void end() {
    if (page_ != nullptr) page_->generation.fetch_add(1, std::memory_order_release);
  }
  /// One message sent by an actor: a plain store (one writer), for metrics.
  void count_sent() {
    if (page_ != nullptr) page_->sent.store(page_->sent.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }

  /// For the watchdog thread.
  [[nodiscard]] handling_page* page() const { return page_; }

 private:
  handling_page* page_ = nullptr;
};

}  // namespace troupe::ipc
