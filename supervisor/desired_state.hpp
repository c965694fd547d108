// supervisor/desired_state.hpp — what a system must find again after its own
// crash (docs/OPERATIONS.md §4.3): its system id (the high half of its
// addresses), how far its serials went, and the actors clients created
// through the convention it leads, with their addresses, names, types,
// package versions and restart policies. Kept in systems/PORT/state.json
// (0600): a snapshot line, written atomically (base/files.hpp), then one
// journal line per change, appended at most once per loop turn and compacted
// into a new snapshot as the journal grows; removed by a clean stop. Packages
// are kept apart, in systems/PORT/loaded.
//
// The encoding is pure and unit-tested (desired_state_test.cpp); the file's
// writer runs on the loop's thread only.
#pragma once

#include "base/files.hpp"

#include <troupe/address.hpp>
#include <troupe/result.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
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
  std::vector<saved_actor> actors;  ///< by address
  auto operator<=>(const saved_state&) const = default;
};

/// The snapshot line: one JSON object, {"format": 1, ...}, and "\n".
[[nodiscard]] std::string encode_state(const saved_state& s);
/// The snapshot line made one actor at a time: what encode_state makes of
/// the same actors, without every one of them held as JSON at once.
class snapshot_encoder {
 public:
  snapshot_encoder();
  void add(const saved_actor& a);
  [[nodiscard]] std::string finish(std::uint32_t system_id, std::uint32_t serials_below) &&;

 private:
  std::string out_;
  bool first_ = true;
};
/// Journal lines: an actor kept or changed, an actor gone, serials reserved.
[[nodiscard]] std::string encode_put(const saved_actor& a);
[[nodiscard]] std::string encode_erase(address a);
[[nodiscard]] std::string encode_serials(std::uint32_t serials_below);
/// A snapshot line and the journal lines after it, replayed. Checks
/// everything: format 1, addresses of this system id below serials_below,
/// no address or name twice; a last line without its newline (cut short by
/// a crash) is ignored. Never throws; errors say what is wrong and where
/// (errc::invalid_argument).
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
  ~desired_state();
  desired_state(const desired_state&) = delete;
  desired_state& operator=(const desired_state&) = delete;

  [[nodiscard]] const std::filesystem::path& file() const { return file_; }

  /// What a snapshot holds: calls its argument with every actor kept now,
  /// in any order (a reader sorts them). Set by the
  /// owner of the truth (the leading convention's table), so that this
  /// class keeps no copy of it, only a fingerprint per actor (at 100,000
  /// actors a copy cost ~330 bytes each).
  using actor_visitor = std::function<void(const saved_actor&)>;
  std::function<void(const actor_visitor&)> source;

  /// Starts keeping the state: writes a snapshot at once, with the actors
  /// an earlier run left. Errors name the file.
  status begin(std::uint32_t system_id, std::uint32_t serials_below, std::vector<saved_actor> actors);
  /// Serials up to below may now be handed out: on disk (synced) before
  /// this returns (rare: once per block of serials, directory::on_reserve).
  void reserve(std::uint32_t serials_below);
  /// The actor at a is kept as s (nullopt: not kept). A change is appended
  /// at the end of this loop turn, with the others of the turn, without
  /// fsync (it survives a crash of the daemon at once), and synced within
  /// sync_period (it survives a crash of the host then).
  void set(address a, std::optional<saved_actor> s);
  static constexpr std::chrono::milliseconds sync_period{1000};
  /// Runs f once what changed so far is written (at once when nothing waits).
  void when_durable(std::function<void()> f);
  /// A clean stop: the next start begins afresh (no file, no id kept).
  void forget();
  [[nodiscard]] std::uint64_t writes() const { return writes_; }
  /// How many actors are kept.
  [[nodiscard]] std::size_t size() const { return kept_.size(); }

 private:
  void post_flush();
  void flush();
  /// Appends the pending lines (one write), or compacts when the journal
  /// outgrew the snapshot.
  void write_out(base::sync_to_disk sync);
  status write_snapshot(base::sync_to_disk sync);
  status write_snapshot(const std::function<void(const actor_visitor&)>& actors, base::sync_to_disk sync);
  void arm_sync();
  void failed(const std::string& why);

  boost::asio::io_context& io_;
  std::filesystem::path file_;
  bool active_ = false;
  bool posted_ = false;
  bool write_failed_logged_ = false;
  bool unsynced_ = false;  // written since the last fsync
  int fd_ = -1;            // state.json, for appending
  std::uint64_t writes_ = 0;
  std::uint64_t snapshot_bytes_ = 0, journal_bytes_ = 0;
  std::uint32_t system_id_ = 0, serials_below_ = 0;
  // Each kept actor's fingerprint (of its fields): a change that changes
  // nothing is not written, and an erase only of what is kept.
  std::unordered_map<address, std::uint64_t> kept_;
  std::string pending_;  // journal lines not written yet
  std::vector<std::function<void()>> after_write_;
  boost::asio::steady_timer sync_timer_{io_};
};

}  // namespace troupe::supervisor
