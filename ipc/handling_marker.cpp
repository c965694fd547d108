#include "ipc/handling_marker.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace troupe::ipc {

namespace {
constexpr std::size_t page_size = 4096;
static_assert(sizeof(handling_page) <= page_size);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free,
              "the page is shared between processes: its atomics must be plain memory");

std::string errno_text(const char* what, const std::filesystem::path& file) {
  return std::string(what) + " " + file.string() + ": " + std::strerror(errno);
}
}  // namespace

status create_handling_file(const std::filesystem::path& file) {
  const int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return make_error(errc::io, errno_text("cannot create", file));
  // A zeroed page, then the header: a worker that never wrote reads as idle.
  char zeros[page_size] = {};
  handling_page header{};
  header.magic = handling_page::magic_value;
  header.version = 1;
  std::memcpy(zeros, &header, sizeof header);
  const bool ok = ::write(fd, zeros, page_size) == static_cast<ssize_t>(page_size);
  const int saved = errno;
  ::close(fd);
  errno = saved;
  if (!ok) return make_error(errc::io, errno_text("cannot write", file));
  return ok_v;
}

handling_snapshot read_handling_file(const std::filesystem::path& file) {
  handling_snapshot out;
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  alignas(handling_page) char buf[sizeof(handling_page)];
  const bool ok = ::pread(fd, buf, sizeof buf, 0) == static_cast<ssize_t>(sizeof buf);
  ::close(fd);
  if (!ok) return out;
  const auto* page = reinterpret_cast<const handling_page*>(buf);
  if (page->magic != handling_page::magic_value || page->version != 1) return out;
  out.handling = page->generation.load() % 2 == 1;
  if (!out.handling) return out;
  out.origin = {page->channel_id.load(), page->seq.load()};
  out.actor = address(page->actor.load());
  out.limit_ms = page->limit_ms.load();
  out.hung = page->hung.load() != 0;
  return out;
}

status handling_marker::open(const std::filesystem::path& file) {
  const int fd = ::open(file.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return make_error(errc::io, errno_text("cannot open handling marker", file));
  void* p = ::mmap(nullptr, page_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  const int saved = errno;
  ::close(fd);
  errno = saved;
  if (p == MAP_FAILED) return make_error(errc::io, errno_text("cannot map handling marker", file));
  page_ = static_cast<handling_page*>(p);
  return ok_v;
}

handling_marker::~handling_marker() {
  if (page_ != nullptr) ::munmap(page_, page_size);
}

}  // namespace troupe::ipc
