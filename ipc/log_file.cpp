#include "ipc/log_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace troupe::ipc {

namespace fs = std::filesystem;

log_file::~log_file() {
  if (fd_ >= 0) ::close(fd_);
}

fs::path log_file::rotated(const fs::path& path, unsigned n) {
  return fs::path(path.string() + "." + std::to_string(n));
}

status log_file::open(const fs::path& path, std::uint64_t max_size, unsigned max_files, bool stdio_follows) {
  path_ = path;
  max_size_ = max_size;
  max_files_ = max_files;
  stdio_follows_ = stdio_follows;
  return open_fd();
}

status log_file::open_fd() {
  // 0600 whatever the umask: the log may hold payloads (at debug level) and
  // what packages print.
  const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0600);
  if (fd < 0) return make_error(errc::io, "cannot open the log " + path_.string() + ": " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return make_error(errc::io, "the log " + path_.string() + " is not a regular file");
  }
  // A file made by an older troupe (or by hand) is closed too.
  if ((st.st_mode & 077) != 0) (void)::fchmod(fd, 0600);
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
  size_ = static_cast<std::uint64_t>(st.st_size);
  if (stdio_follows_) {
    (void)::dup2(fd_, STDOUT_FILENO);
    (void)::dup2(fd_, STDERR_FILENO);
  }
  return ok_v;
}

void log_file::rotate() {
  // file.N-1 -> file.N, ..., file -> file.1: the oldest goes.
  std::error_code ec;
  if (max_files_ == 0) {
    fs::remove(path_, ec);
  } else {
    for (unsigned n = max_files_; n > 1; --n) fs::rename(rotated(path_, n - 1), rotated(path_, n), ec);
    fs::rename(path_, rotated(path_, 1), ec);
  }
  (void)open_fd();  // on failure the old descriptor stays: lines go on, unrotated
}

bool log_file::write(std::string_view bytes) {
  if (fd_ < 0) return false;
  if (max_size_ > 0 && size_ > 0 && size_ + bytes.size() > max_size_) rotate();
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd_, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  size_ += bytes.size();
  return true;
}

status log_file::reopen() {
  if (path_.empty()) return ok_v;
  return open_fd();
}

}  // namespace troupe::ipc
