#include "ipc/fence_page.hpp"

#include "ipc/shared_page.hpp"

#include <chrono>

namespace troupe::ipc {

static_assert(sizeof(fence_layout) <= shared_page_size);
static_assert(std::atomic<std::int64_t>::is_always_lock_free,
              "the page is shared between processes: its atomics must be plain memory");

std::int64_t steady_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

status create_fence_file(const std::filesystem::path& file) {
  fence_layout header{fence_layout::magic_value, 1, {0}, {fence_page::never}};
  return create_page_file(file, &header, sizeof header);
}

status fence_page::open(const std::filesystem::path& file, bool writable) {
  auto p = map_page_file(file, writable, "fence page");
  if (!p) return p.err();
  auto* page = static_cast<fence_layout*>(*p);
  if (page->magic != fence_layout::magic_value || page->version != 1) {
    unmap_page(*p);
    return make_error(errc::invalid_argument, file.string() + " is not a fence page");
  }
  page_ = page;
  return ok_v;
}

fence_page::~fence_page() { unmap_page(page_); }

}  // namespace troupe::ipc
