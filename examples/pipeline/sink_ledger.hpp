// examples/pipeline/sink_ledger.hpp — what the pipeline's Sink has received,
// kept in a file so that it outlives the Sink's worker. No troupe dependency:
// the unit tests use it without a worker. Not thread-safe; one owner.
//
// The file holds one decimal number per line, appended with one write(2) per
// number before record() returns. A SIGKILL can cut the last line short; a
// ledger opened on such a file drops the partial line (it was never
// acknowledged, so it will be delivered again).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace pipeline {

/// The Sink's answer to "stats".
struct ledger_stats {
  std::uint64_t distinct = 0;       ///< numbers seen at least once
  std::uint64_t duplicates = 0;     ///< receptions of a number already seen
  std::uint64_t missing_below = 0;  ///< numbers in [0, max] never seen
  std::int64_t max = -1;            ///< highest number seen; -1 before the first
};

class sink_ledger {
 public:
  /// Numbers at or above this are refused (a stray huge number must not make
  /// the Sink allocate gigabytes).
  static constexpr std::uint64_t limit = std::uint64_t{1} << 26;

  /// Opens (creating it and its directory) the ledger at path and replays it.
  /// Throws std::runtime_error naming the path and the system error.
  explicit sink_ledger(std::string path);
  ~sink_ledger();
  sink_ledger(const sink_ledger&) = delete;
  sink_ledger& operator=(const sink_ledger&) = delete;

  /// Appends n to the file, then counts it. Throws std::invalid_argument for
  /// n >= limit (nothing written) and std::runtime_error when the write fails.
  void record(std::uint64_t n);

  [[nodiscard]] ledger_stats stats() const;
  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  void count(std::uint64_t n);
  void replay();

  std::string path_;
  int fd_ = -1;
  std::vector<bool> seen_;
  std::uint64_t distinct_ = 0;
  std::uint64_t duplicates_ = 0;
  std::int64_t max_ = -1;
};

}  // namespace pipeline
