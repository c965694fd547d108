#include "sink_ledger.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <utility>

namespace pipeline {

namespace {

std::runtime_error system_error(const std::string& what, const std::string& path) {
  return std::runtime_error(what + " " + path + ": " + std::strerror(errno));
}

}  // namespace

sink_ledger::sink_ledger(std::string path) : path_(std::move(path)) {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path_).parent_path(), ec);
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) throw system_error("cannot open", path_);
  try {
    replay();
  } catch (...) {
    ::close(fd_);
    throw;
  }
}

sink_ledger::~sink_ledger() {
  if (fd_ >= 0) ::close(fd_);
}

void sink_ledger::replay() {
  std::string text;
  char buf[65536];
  for (;;) {
    const ssize_t got = ::pread(fd_, buf, sizeof buf, static_cast<off_t>(text.size()));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) throw system_error("cannot read", path_);
    if (got == 0) break;
    text.append(buf, static_cast<std::size_t>(got));
  }
  // A line without its '\n' was cut by a crash in the middle of its write:
  // drop it, so the next append starts a line of its own.
  const std::size_t complete = text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1;
  if (complete < text.size() && ::ftruncate(fd_, static_cast<off_t>(complete)) != 0)
    throw system_error("cannot truncate", path_);
  std::size_t at = 0;
  while (at < complete) {
    const std::size_t end = text.find('\n', at);
    std::uint64_t n = 0;
    const auto [ptr, err] = std::from_chars(text.data() + at, text.data() + end, n);
    if (err == std::errc{} && ptr == text.data() + end && n < limit) count(n);
    at = end + 1;
  }
}

void sink_ledger::record(std::uint64_t n) {
  if (n >= limit) throw std::invalid_argument("number " + std::to_string(n) + " is too large");
  char line[24];
  auto [end, err] = std::to_chars(line, line + sizeof line - 1, n);
  (void)err;  // a uint64 always fits in 20 digits
  *end++ = '\n';
  const auto size = static_cast<std::size_t>(end - line);
  // One write(2) per number: what a SIGKILL can cut is the last line only.
  ssize_t wrote = 0;
  do {
    wrote = ::write(fd_, line, size);
  } while (wrote < 0 && errno == EINTR);
  if (wrote != static_cast<ssize_t>(size)) throw system_error("cannot append to", path_);
  count(n);
}

void sink_ledger::count(std::uint64_t n) {
  if (n >= seen_.size()) seen_.resize(std::max<std::size_t>(n + 1, seen_.size() * 2), false);
  if (seen_[n]) {
    ++duplicates_;
    return;
  }
  seen_[n] = true;
  ++distinct_;
  max_ = std::max(max_, static_cast<std::int64_t>(n));
}

ledger_stats sink_ledger::stats() const {
  ledger_stats s{distinct_, duplicates_, 0, max_};
  s.missing_below = static_cast<std::uint64_t>(max_ + 1) - distinct_;
  return s;
}

}  // namespace pipeline
