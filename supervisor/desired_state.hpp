// supervisor/desired_state.hpp — what a system must find again after its own
// crash (docs/OPERATIONS.md §4.3): its system id (the high half of its
// addresses), how far its serials went, and the actors clients created
// through the convention it leads, with their addresses, names, types,
// package versions and restart policies. Kept in systems/PORT/state.json,
// written atomically (base/files.hpp, 0600), at most once per loop turn;
// removed by a clean stop. Packages are kept apart, in systems/PORT/loaded.
//
// The encoding is pure and unit-tested (desired_state_test.cpp); the file's
// writer runs on the loop's thread only.
#pragma once

#include <troupe/address.hpp>
#include <troupe/result.hpp>

#include <boost/asio/io_context.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace troupe::supervisor {

struct saved_actor {
  address addr;
  std::string type;
  std::string package_id;  ///< 64 hex digits
  std::string group;       ///< for operators reading the file; the id decides
  std::string version;
  std::string name;     ///< global name, may be empty
  std::string restart;  ///< its type's policy when saved (permanent, transient, temporary)
  std::uint32_t restarts = 0;
  bool pending = false;  ///< waiting for a system that fits, not placed anywhere
  auto operator<=>(const saved_actor&) const = default;
};

struct saved_state {
  std::uint32_t system_id = 0;
  /// Every serial this system handed out is below it (actors, worker blocks).
  std::uint32_t serials_below = 0;
  std::vector<saved_actor> actors;
  auto operator<=>(const saved_state&) const = default;
};

/// The file's bytes: one JSON object, {"format": 1, ...}.
[[nodiscard]] std::string encode_state(const saved_state& s);
/// Checks everything: a well-formed object of format 1, addresses of this
/// system id below serials_below, no address or name twice. Never throws;
/// errors say what is wrong (errc::invalid_argument).
[[nodiscard]] result<saved_state> decode_state(std::string_view bytes);

/// What was found at start, read before anything else is set up.
struct recovered_state {
  std::optional<saved_state> state;  ///< a run that did not stop cleanly
  std::string problem;               ///< a file that could not be used, and why
};
[[nodiscard]] recovered_state read_state_file(const std::filesystem::path& file);

class desired_state {
 public:
  desired_state(boost::asio::io_context& io, std::filesystem::path file) : io_(io), file_(std::move(file)) {}

  [[nodiscard]] const std::filesystem::path& file() const { return file_; }
  /// The actors to keep, asked at each write (set by the convention).
  std::function<std::vector<saved_actor>()> snapshot;

  /// Starts keeping the state: writes it at once, with the actors an
  /// earlier run left (kept until they are in the table again). Errors name
  /// the file.
  status begin(std::uint32_t system_id, std::uint32_t serials_below, std::vector<saved_actor> actors);
  /// Serials up to below may now be handed out: written before this returns
  /// (rare: once per block of serials, directory::on_reserve).
  void reserve(std::uint32_t serials_below);
  /// Something snapshot() returns changed: written at the end of this loop
  /// turn, once however many changes the turn made.
  void changed();
  /// Runs f once what changed so far is on disk (at once when nothing waits).
  void when_durable(std::function<void()> f);
  /// A clean stop: the next start begins afresh (no file, no id kept).
  void forget();
  [[nodiscard]] std::uint64_t writes() const { return writes_; }

 private:
  void post_flush();
  void flush();
  void write();

  boost::asio::io_context& io_;
  std::filesystem::path file_;
  bool active_ = false;
  bool dirty_ = false;
  bool posted_ = false;
  bool write_failed_logged_ = false;
  std::uint64_t writes_ = 0;
  saved_state base_;
  std::vector<std::function<void()>> after_write_;
};

}  // namespace troupe::supervisor
