#include "ipc/shared_page.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace troupe::ipc {

namespace {
std::string errno_text(const std::string& what, const std::filesystem::path& file) {
  return what + " " + file.string() + ": " + std::strerror(errno);
}
}  // namespace

status create_page_file(const std::filesystem::path& file, const void* header, std::size_t header_size) {
  if (header_size > shared_page_size) return make_error(errc::invalid_argument, "a page header over one page");
  const int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return make_error(errc::io, errno_text("cannot create", file));
  // A zeroed page, then the header: fields nobody wrote read as zero.
  char page[shared_page_size] = {};
  std::memcpy(page, header, header_size);
  const bool ok = ::write(fd, page, shared_page_size) == static_cast<ssize_t>(shared_page_size);
  const int saved = errno;
  ::close(fd);
  errno = saved;
  if (!ok) return make_error(errc::io, errno_text("cannot write", file));
  return ok_v;
}

result<void*> map_page_file(const std::filesystem::path& file, bool writable, const char* what) {
  const int fd = ::open(file.c_str(), (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) return make_error(errc::io, errno_text(std::string("cannot open ") + what, file));
  void* p = ::mmap(nullptr, shared_page_size, writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd, 0);
  const int saved = errno;
  ::close(fd);
  errno = saved;
  if (p == MAP_FAILED) return make_error(errc::io, errno_text(std::string("cannot map ") + what, file));
  return p;
}

void unmap_page(void* page) {
  if (page != nullptr) ::munmap(page, shared_page_size);
}

}  // namespace troupe::ipc
