// manifests/sha256.hpp — SHA-256 through OpenSSL EVP, for package ids and
// (later) archive checks. Free functions are safe from any thread; a sha256
// object must not be shared between threads without a lock.
#pragma once

#include <troupe/result.hpp>

#include <filesystem>
#include <string>
#include <string_view>

struct evp_md_ctx_st;  // OpenSSL's EVP_MD_CTX, kept out of this header

namespace troupe::manifests {

/// Incremental SHA-256. OpenSSL failing to hash is treated as an impossible
/// state: the process aborts with "internal error".
class sha256 {
 public:
  sha256();
  sha256(const sha256&) = delete;
  sha256& operator=(const sha256&) = delete;
  ~sha256();

  void update(std::string_view bytes);
  /// Streams a file's contents in; io error naming the path on failure.
  [[nodiscard]] status update_file(const std::filesystem::path& file);
  /// The digest as 64 lowercase hex characters; call once, last.
  [[nodiscard]] std::string finish_hex();

 private:
  evp_md_ctx_st* ctx_;
};

/// SHA-256 of bytes, 64 lowercase hex characters.
[[nodiscard]] std::string sha256_hex(std::string_view bytes);

/// SHA-256 of a file's contents, streamed; io error naming the path.
[[nodiscard]] result<std::string> sha256_file_hex(const std::filesystem::path& file);

}  // namespace troupe::manifests
