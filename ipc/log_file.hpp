// ipc/log_file.hpp — the daemon's log file: appended with one write(2) per
// record (nothing buffered that a crash could lose), created 0600, rotated by
// size (file -> file.1 -> ... -> file.N, the oldest dropped) and opened again
// at its path on demand (SIGHUP after logrotate renamed it).
//
// When stdio_follows is set, stdout and stderr are pointed at the file at
// every open: what the process or a library prints without the logger
// (a ZeroMQ assertion, std::terminate's message) lands in the current file,
// not in a rotated one.
//
// Not thread-safe: its owner (the spdlog sink of ipc/log.cpp) locks.
#pragma once

#include <troupe/result.hpp>

#include <cstdint>
#include <filesystem>
#include <string_view>

namespace troupe::ipc {

class log_file {
 public:
  log_file() = default;
  ~log_file();
  log_file(const log_file&) = delete;
  log_file& operator=(const log_file&) = delete;

  /// Opens (creates 0600) path for appending. max_size 0: never rotated.
  status open(const std::filesystem::path& path, std::uint64_t max_size, unsigned max_files, bool stdio_follows);
  /// Appends bytes whole, rotating first when they would take the file past
  /// max_size (a file holds at least one record). False when the write failed.
  bool write(std::string_view bytes);
  /// Closes the file and opens its path again (a new file if it was renamed).
  status reopen();

  [[nodiscard]] std::uint64_t size() const { return size_; }
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }
  [[nodiscard]] bool is_open() const { return fd_ >= 0; }

  /// file.N for N >= 1.
  [[nodiscard]] static std::filesystem::path rotated(const std::filesystem::path& path, unsigned n);

 private:
  status open_fd();
  void rotate();

  std::filesystem::path path_;
  std::uint64_t max_size_ = 0;
  unsigned max_files_ = 0;
  bool stdio_follows_ = false;
  int fd_ = -1;
  std::uint64_t size_ = 0;
};

}  // namespace troupe::ipc
