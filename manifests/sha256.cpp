#include "manifests/sha256.hpp"

#include "base/check.hpp"
#include "base/hex.hpp"

#include <openssl/evp.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <array>
#include <cstdio>
#include <cstdlib>

#include <cerrno>

namespace troupe::manifests {

namespace {

[[noreturn]] void openssl_failed(const char* what) { base::internal_error(std::string("OpenSSL ") + what + " failed"); }

}  // namespace

sha256::sha256() : ctx_(EVP_MD_CTX_new()) {
  if (ctx_ == nullptr) openssl_failed("EVP_MD_CTX_new");
  if (EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr) != 1) openssl_failed("EVP_DigestInit_ex");
}

sha256::~sha256() { EVP_MD_CTX_free(ctx_); }

void sha256::update(std::string_view bytes) {
  if (EVP_DigestUpdate(ctx_, bytes.data(), bytes.size()) != 1) openssl_failed("EVP_DigestUpdate");
}

status sha256::update_file(const std::filesystem::path& file) {
  // Non-blocking open, then regular files only: a FIFO must not stall the caller.
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) return make_error(errc::io, file.string() + ": cannot open for reading");
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return make_error(errc::refused, file.string() + ": not a regular file");
  }
  std::array<char, 64 * 1024> buf;
  for (;;) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      return make_error(errc::io, file.string() + ": read failed");
    }
    if (n == 0) break;
    update(std::string_view(buf.data(), static_cast<std::size_t>(n)));
  }
  ::close(fd);
  return ok_v;
}

std::string sha256::finish_hex() {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int size = 0;
  if (EVP_DigestFinal_ex(ctx_, digest.data(), &size) != 1) openssl_failed("EVP_DigestFinal_ex");
  return base::hex_encode(std::string_view(reinterpret_cast<const char*>(digest.data()), size));
}

std::string sha256_hex(std::string_view bytes) {
  sha256 h;
  h.update(bytes);
  return h.finish_hex();
}

result<std::string> sha256_file_hex(const std::filesystem::path& file) {
  sha256 h;
  if (auto s = h.update_file(file); !s) return s.err();
  return h.finish_hex();
}

}  // namespace troupe::manifests
