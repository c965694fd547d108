#include "ipc/fence_page.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

namespace troupe::ipc {

namespace {
constexpr std::size_t page_size = 4096;
static_assert(sizeof(fence_layout) <= page_size);
static_assert(std::atomic<std::int64_t>::is_always_lock_free,
              "the page is shared between processes: its atomics must be plain memory");

std::string errno_text(const char* what, const std::filesystem::path& file) {
  return std::string(what) + " " + file.string() + ": " + std::strerror(errno);
}
}  // namespace

std::int64_t steady_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

status create_fence_file(const std::filesystem::path& file) {
  const int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return make_error(errc::io, errno_text("cannot create", file));
  char zeros[page_size] = {};
  auto* header = reinterpret_cast<fence_layout*>(zeros);
  header->magic = fence_layout::magic_value;
  header->version = 1;
  header->lease.store(0);
  header->until_ms.store(fence_page::never);
  const bool ok = ::write(fd, zeros, page_size) == static_cast<ssize_t>(page_size);
  const int saved = errno;
  ::close(fd);
  errno = saved;
  if (!ok) return make_error(errc::io, errno_text("cannot write", file));
  return ok_v;
}

status fence_page::open(const std::filesystem::path& file, bool writable) {
  const int fd = ::open(file.c_str(), (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) return make_error(errc::io, errno_text("cannot open fence page", file));
  void* p = ::mmap(nullptr, page_size, writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd, 0);
  const int saved = errno;
  ::close(fd);
  errno = saved;
  if (p == MAP_FAILED) return make_error(errc::io, errno_text("cannot map fence page", file));
  auto* page = static_cast<fence_layout*>(p);
  if (page->magic != fence_layout::magic_value || page->version != 1) {
    ::munmap(p, page_size);
    return make_error(errc::invalid_argument, file.string() + " is not a fence page");
  }
  page_ = page;
  return ok_v;
}

fence_page::~fence_page() {
  if (page_ != nullptr) ::munmap(page_, page_size);
}

}  // namespace troupe::ipc
