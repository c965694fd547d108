#include "ipc/handling_marker.hpp"

#include "ipc/shared_page.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace troupe::ipc {

static_assert(sizeof(handling_page) <= shared_page_size);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free,
              "the page is shared between processes: its atomics must be plain memory");

status create_handling_file(const std::filesystem::path& file) {
  // A worker that never wrote reads as idle.
  handling_page header{};
  header.magic = handling_page::magic_value;
  header.version = 1;
  return create_page_file(file, &header, sizeof header);
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
  const std::uint64_t generation = page->generation.load();
  out.handled = (generation + 1) / 2;
  out.sent = page->sent.load();
  out.handling = generation % 2 == 1;
  if (!out.handling) return out;
  out.origin = {page->channel_id.load(), page->seq.load()};
  out.actor = address(page->actor.load());
  out.limit_ms = page->limit_ms.load();
  out.hung = page->hung.load() != 0;
  return out;
}

status handling_marker::open(const std::filesystem::path& file) {
  auto p = map_page_file(file, true, "handling marker");
  if (!p) return p.err();
  page_ = static_cast<handling_page*>(*p);
  return ok_v;
}

handling_marker::~handling_marker() { unmap_page(page_); }

}  // namespace troupe::ipc
