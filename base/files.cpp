#include "base/files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <random>
#include <system_error>

namespace troupe::base {

namespace fs = std::filesystem;

std::string errno_text(int e) { return std::generic_category().message(e); }

result<file_contents> read_regular_file(const fs::path& file, std::uint64_t max_bytes) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then refuses
  // it, and reads of a regular file ignore the flag.
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    const int e = errno;
    return make_error(e == ENOENT ? errc::not_found : errc::io,
                      file.string() + ": cannot open (" + errno_text(e) + ")");
  }
  struct stat st {};
  file_contents out;
  std::string problem;
  errc code = errc::io;
  if (::fstat(fd, &st) != 0) {
    problem = "cannot stat (" + errno_text(errno) + ")";
  } else if (!S_ISREG(st.st_mode)) {
    problem = "not a regular file";
    code = errc::refused;
  } else if (static_cast<std::uint64_t>(st.st_size) > max_bytes) {
    problem = "is " + std::to_string(st.st_size) + " bytes, over the limit of " + std::to_string(max_bytes);
    code = errc::refused;
  } else {
    out.mode = st.st_mode;
    out.bytes.resize(static_cast<std::size_t>(st.st_size));
    std::size_t got = 0;
    while (got < out.bytes.size()) {  // one read in practice; loops only if interrupted
      const ssize_t n = ::read(fd, out.bytes.data() + got, out.bytes.size() - got);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      got += static_cast<std::size_t>(n);
    }
    if (got != out.bytes.size()) problem = "read failed (changed while reading?)";
  }
  ::close(fd);
  if (!problem.empty()) return make_error(code, file.string() + ": " + problem);
  return out;
}

std::string unique_suffix() {
  std::random_device rd;
  char buf[40];
  std::snprintf(buf, sizeof buf, "%ld.%08x%08x", static_cast<long>(::getpid()), rd(), rd());
  return buf;
}

status write_file_atomically(const fs::path& file, std::string_view bytes, mode_t mode, sync_to_disk sync) {
  const fs::path tmp = file.parent_path() / ("." + file.filename().string() + ".tmp." + unique_suffix());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return make_error(errc::io, tmp.string() + ": cannot create (" + errno_text(errno) + ")");
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<std::size_t>(n);
  }
  int e = errno;
  // fchmod: the umask must neither open up nor lock out the owner of a key.
  bool written = done == bytes.size() && ::fchmod(fd, mode) == 0 && (sync == sync_to_disk::no || ::fsync(fd) == 0);
  if (!written) e = errno;
  if (::close(fd) != 0 && written) {
    written = false;
    e = errno;
  }
  if (written && ::rename(tmp.c_str(), file.c_str()) != 0) {
    written = false;
    e = errno;
  }
  if (!written) {
    ::unlink(tmp.c_str());
    return make_error(errc::io, file.string() + ": cannot write (" + errno_text(e) + ")");
  }
  if (sync == sync_to_disk::no) return ok_v;
  // The rename reaches the disk with the directory: a file that vanished
  // after a power cut would be worse than an old one.
  const int dfd = ::open(file.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
  return ok_v;
}

}  // namespace troupe::base
