// ipc/shared_page.hpp — a one-page file that a system and its workers map
// (MAP_SHARED) and read without a message: the handling marker
// (handling_marker.hpp) and the fence page (fence_page.hpp) are two.
#pragma once

#include <troupe/result.hpp>

#include <cstddef>
#include <filesystem>

namespace troupe::ipc {

inline constexpr std::size_t shared_page_size = 4096;

/// Creates (or truncates) file, mode 0600, as one zeroed page that begins
/// with the header_size bytes at header.
[[nodiscard]] status create_page_file(const std::filesystem::path& file, const void* header, std::size_t header_size);

/// Maps the page of file, read-write or read-only; `what` names it in errors
/// ("cannot open WHAT FILE: ...").
[[nodiscard]] result<void*> map_page_file(const std::filesystem::path& file, bool writable, const char* what);

/// Unmaps what map_page_file returned (nullptr: nothing).
void unmap_page(void* page);

}  // namespace troupe::ipc
