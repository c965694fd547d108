// base/files.hpp — reading and writing whole files the way the daemon must:
// a read never waits on a FIFO or a device and takes regular files only; a
// write lands whole or not at all (temporary sibling, fsync, rename, fsync of
// the directory), with the mode it asks for whatever the umask.
// Pure functions of the file system; any thread.
#pragma once

#include <troupe/result.hpp>

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace troupe::base {

/// strerror as a std::string (thread-safe).
[[nodiscard]] std::string errno_text(int e);

struct file_contents {
  std::string bytes;
  mode_t mode = 0;  ///< st_mode of the file read
};

/// The whole of file, at most max_bytes, symlinks followed. Opened without
/// blocking and refused unless it is a regular file. Errors name the file:
/// errc::not_found (absent), errc::refused ("not a regular file", "is N bytes,
/// over the limit of M"), errc::io.
[[nodiscard]] result<file_contents> read_regular_file(const std::filesystem::path& file, std::uint64_t max_bytes);

enum class sync_to_disk { yes, no };

/// Replaces file with bytes atomically: a reader sees the old file or the
/// whole new one, with exactly mode, and (sync_to_disk::yes) the rename is on
/// disk before this returns. With sync_to_disk::no the file survives a crash
/// of the process at once, a crash of the host only once the kernel wrote it
/// back (no fsync: about 1000 times cheaper on a disk). No partial file is
/// left behind on failure.
[[nodiscard]] status write_file_atomically(const std::filesystem::path& file, std::string_view bytes, mode_t mode,
                                           sync_to_disk sync = sync_to_disk::yes);

/// A name no other process or thread picks at the same time (pid + random).
[[nodiscard]] std::string unique_suffix();

}  // namespace troupe::base
