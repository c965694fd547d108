// ipc/fence_page.hpp — the lease a system's convention actors live under and
// the instant they must be gone by, in a small shared file every worker of
// the system maps (docs/PROTOCOL.md §5.12).
//
// A system coordinated by etcd must stop the actors the convention placed on
// it before its lease can expire, even while its own loop is busy (a 45 MB
// message being parsed) or the system is stopped by SIGSTOP. So the thread
// that renews the lease writes the deadline into this page after each
// renewal, and each worker reads it before every message and from its
// watchdog: a fenced actor whose lease is not the page's, or that is past the
// deadline, handles nothing more and is destroyed; a worker that cannot do
// so within 30 ms kills itself. No message, no system call on the path.
#pragma once

#include <troupe/result.hpp>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <limits>

namespace troupe::ipc {

/// The page's layout (one host, so native byte order). Times are
/// CLOCK_MONOTONIC milliseconds (std::chrono::steady_clock), shared by every
/// process of the host.
struct fence_layout {
  static constexpr std::uint32_t magic_value = 0x46485254;  // "TRHF"
  std::uint32_t magic;
  std::uint32_t version;
  std::atomic<std::int64_t> lease;     ///< the system's current lease (0: none)
  std::atomic<std::int64_t> until_ms;  ///< actors of that lease are gone by then
};

/// Creates the file with no lease and no deadline.
status create_fence_file(const std::filesystem::path& file);

class fence_page {
 public:
  fence_page() = default;
  ~fence_page();
  fence_page(const fence_page&) = delete;
  fence_page& operator=(const fence_page&) = delete;

  /// Maps the file: read-only for a worker, writable for its system.
  status open(const std::filesystem::path& file, bool writable);
  [[nodiscard]] bool is_open() const { return page_ != nullptr; }

  /// Whether an actor created under `lease` may still run at `now_ms`. The
  /// deadline is read first: a writer moves to a new lease by storing the
  /// lease, then its deadline, so a reader that sees the new deadline sees
  /// the new lease too.
  [[nodiscard]] bool holds(std::int64_t lease, std::int64_t now_ms) const {
    if (page_ == nullptr) return false;
    const std::int64_t until = page_->until_ms.load(std::memory_order_acquire);
    return now_ms < until && page_->lease.load(std::memory_order_acquire) == lease;
  }
  [[nodiscard]] std::int64_t lease() const { return page_ ? page_->lease.load(std::memory_order_acquire) : 0; }
  [[nodiscard]] std::int64_t until_ms() const { return page_ ? page_->until_ms.load(std::memory_order_acquire) : 0; }

  // The system's side.
  /// A new lease, valid until until_ms.
  void grant(std::int64_t lease, std::int64_t until_ms) {
    page_->lease.store(lease, std::memory_order_release);
    page_->until_ms.store(until_ms, std::memory_order_release);
  }
  /// The same lease, renewed or lost (until_ms: now).
  void extend(std::int64_t until_ms) { page_->until_ms.store(until_ms, std::memory_order_release); }

  static constexpr std::int64_t never = std::numeric_limits<std::int64_t>::max();

 private:
  fence_layout* page_ = nullptr;
};

/// steady_clock::now() in milliseconds, the page's unit.
[[nodiscard]] std::int64_t steady_now_ms();

}  // namespace troupe::ipc
