#include "manifests/sha256.hpp"

#include <openssl/evp.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>

namespace troupe::manifests {

namespace {

[[noreturn]] void openssl_failed(const char* what) {
  std::fprintf(stderr, "troupe: internal error: OpenSSL %s failed\n", what);
  std::abort();
}

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
  std::ifstream in(file, std::ios::binary);
  if (!in) return make_error(errc::io, file.string() + ": cannot open for reading");
  std::array<char, 64 * 1024> buf;
  while (in) {
    in.read(buf.data(), buf.size());
    update(std::string_view(buf.data(), static_cast<std::size_t>(in.gcount())));
  }
  if (!in.eof()) return make_error(errc::io, file.string() + ": read failed");
  return ok_v;
}

std::string sha256::finish_hex() {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int size = 0;
  if (EVP_DigestFinal_ex(ctx_, digest.data(), &size) != 1) openssl_failed("EVP_DigestFinal_ex");
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (unsigned int i = 0; i < size; ++i) {
    out.push_back(hex[digest[i] >> 4]);
    out.push_back(hex[digest[i] & 0xf]);
  }
  return out;
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
