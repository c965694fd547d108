#include "manifests/signing.hpp"

#include "manifests/sha256.hpp"

#include "base/check.hpp"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <system_error>

namespace troupe::manifests {

namespace {

namespace fs = std::filesystem;

[[noreturn]] void openssl_failed(const char* what) { base::internal_error(std::string("OpenSSL ") + what + " failed"); }

struct file_closer {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using file_ptr = std::unique_ptr<std::FILE, file_closer>;

struct pkey_deleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_deleter>;

struct md_ctx_deleter {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using md_ctx_ptr = std::unique_ptr<EVP_MD_CTX, md_ctx_deleter>;

error fail(errc code, const fs::path& file, const std::string& what) {
  return make_error(code, file.string() + ": " + what);
}

result<file_ptr> open_for_reading(const fs::path& file) {
  std::FILE* f = std::fopen(file.c_str(), "re");
  if (f == nullptr) {
    const int e = errno;
    if (e == ENOENT) return fail(errc::not_found, file, "no such file");
    return fail(errc::io, file, std::string("cannot open (") + std::strerror(e) + ")");
  }
  return file_ptr(f);
}

// Passphrase callback: troupe keys are unencrypted, and OpenSSL's default
// callback would prompt on the terminal of a daemon.
int refuse_passphrase(char*, int, int, void* asked) {
  *static_cast<bool*>(asked) = true;
  return -1;
}

// "an RSA key", "a DSA key": the article goes by how the letter is spoken.
std::string describe_key_type(const EVP_PKEY* key) {
  const char* name = EVP_PKEY_get0_type_name(key);
  if (name == nullptr || *name == '\0') return "a key of another type";
  const char first = static_cast<char>(std::toupper(static_cast<unsigned char>(name[0])));
  const bool an = std::string_view("AEFHILMNORSX").find(first) != std::string_view::npos;
  return std::string(an ? "an " : "a ") + name + " key";
}

// The public half of an Ed25519 key; refuses any other key type.
result<public_key> public_part(const EVP_PKEY* key, const fs::path& file) {
  if (EVP_PKEY_get_base_id(key) != EVP_PKEY_ED25519)
    return fail(errc::invalid_argument, file, describe_key_type(key) + ", not Ed25519");
  std::string raw(ed25519_public_key_bytes, '\0');
  std::size_t size = raw.size();
  if (EVP_PKEY_get_raw_public_key(key, reinterpret_cast<unsigned char*>(raw.data()), &size) != 1 ||
      size != ed25519_public_key_bytes)
    openssl_failed("EVP_PKEY_get_raw_public_key");
  std::string fingerprint = sha256_hex(raw);
  return public_key{file.stem().string(), file, std::move(raw), std::move(fingerprint)};
}

// Creates file exclusively with mode and fills it through write; a partly
// written file is removed.
status write_new_file(const fs::path& file, mode_t mode, const std::function<bool(std::FILE*)>& write) {
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) {
    const int e = errno;
    if (e == EEXIST) return fail(errc::refused, file, "already exists, not overwritten");
    return fail(errc::io, file, std::string("cannot create (") + std::strerror(e) + ")");
  }
  std::FILE* f = ::fdopen(fd, "w");
  if (f == nullptr) {
    ::close(fd);
    ::unlink(file.c_str());
    return fail(errc::io, file, "cannot write");
  }
  const bool written = write(f) && std::fflush(f) == 0 && ::fsync(fd) == 0;
  const bool closed = std::fclose(f) == 0;
  if (written && closed) return ok_v;
  ERR_clear_error();
  ::unlink(file.c_str());
  return fail(errc::io, file, "write failed");
}

}  // namespace

void signing_key::pkey_free::operator()(evp_pkey_st* k) const { EVP_PKEY_free(k); }

result<signing_key> signing_key::read(const fs::path& file) {
  auto f = open_for_reading(file);
  if (!f) return f.err();
  bool asked = false;
  pkey_ptr key(PEM_read_PrivateKey(f->get(), nullptr, refuse_passphrase, &asked));
  ERR_clear_error();  // a failed parse leaves its reasons queued on this thread
  if (!key) {
    return fail(errc::invalid_argument, file,
                asked ? "an encrypted private key (troupe keys have no passphrase)" : "not a PEM private key");
  }
  auto pub = public_part(key.get(), file);
  if (!pub) return pub.err();
  signing_key k;
  k.key_.reset(key.release());
  k.pub_ = std::move(*pub);
  return k;
}

std::string signing_key::sign(std::string_view message) const {
  md_ctx_ptr ctx(EVP_MD_CTX_new());
  if (!ctx) openssl_failed("EVP_MD_CTX_new");
  // Ed25519 hashes internally: no digest is named.
  if (EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key_.get()) != 1) openssl_failed("EVP_DigestSignInit");
  std::string sig(ed25519_signature_bytes, '\0');
  std::size_t size = sig.size();
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &size,
                     reinterpret_cast<const unsigned char*>(message.data()), message.size()) != 1 ||
      size != ed25519_signature_bytes)
    openssl_failed("EVP_DigestSign");
  return sig;
}

status generate_key_pair(const fs::path& base) {
  const fs::path key_file = base.string() + ".key";
  const fs::path pub_file = base.string() + ".pub";
  for (const auto& f : {key_file, pub_file}) {
    std::error_code ec;
    if (fs::exists(fs::symlink_status(f, ec))) return fail(errc::refused, f, "already exists, not overwritten");
  }
  pkey_ptr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  if (!key) openssl_failed("EVP_PKEY_Q_keygen");

  auto s = write_new_file(key_file, 0600, [&](std::FILE* f) {
    return PEM_write_PrivateKey(f, key.get(), nullptr, nullptr, 0, nullptr, nullptr) == 1;
  });
  if (!s) return s;
  s = write_new_file(pub_file, 0644, [&](std::FILE* f) { return PEM_write_PUBKEY(f, key.get()) == 1; });
  if (!s) ::unlink(key_file.c_str());  // half a pair is no use to anyone
  return s;
}

result<public_key> read_public_key(const fs::path& file) {
  auto f = open_for_reading(file);
  if (!f) return f.err();
  bool asked = false;
  pkey_ptr key(PEM_read_PUBKEY(f->get(), nullptr, refuse_passphrase, &asked));
  ERR_clear_error();
  if (!key) return fail(errc::invalid_argument, file, "not a PEM public key");
  return public_part(key.get(), file);
}

bool verify_signature(const public_key& key, std::string_view message, std::string_view signature) {
  if (signature.size() != ed25519_signature_bytes || key.raw.size() != ed25519_public_key_bytes) return false;
  pkey_ptr pkey(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr,
                                            reinterpret_cast<const unsigned char*>(key.raw.data()), key.raw.size()));
  if (!pkey) {
    ERR_clear_error();
    return false;
  }
  md_ctx_ptr ctx(EVP_MD_CTX_new());
  if (!ctx) openssl_failed("EVP_MD_CTX_new");
  if (EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, pkey.get()) != 1)
    openssl_failed("EVP_DigestVerifyInit");
  const bool ok =
      EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
                       reinterpret_cast<const unsigned char*>(message.data()), message.size()) == 1;
  ERR_clear_error();  // a bad signature queues an error
  return ok;
}

const public_key* key_ring::find(std::string_view fingerprint) const {
  for (const auto& k : keys) {
    if (k.fingerprint == fingerprint) return &k;
  }
  return nullptr;
}

key_ring read_key_ring(const fs::path& dir) {
  key_ring ring;
  ring.dir = dir;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return ring;
  std::vector<fs::path> files;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().extension() == ".pub" && it->is_regular_file(ec)) files.push_back(it->path());
  }
  // An unreadable directory is reported, not mistaken for an empty one.
  if (ec) ring.skipped.push_back(dir.string() + ": cannot list (" + ec.message() + ")");
  std::sort(files.begin(), files.end(),
            [](const fs::path& a, const fs::path& b) { return a.filename() < b.filename(); });
  for (const auto& f : files) {
    auto k = read_public_key(f);
    if (k)
      ring.keys.push_back(std::move(*k));
    else
      ring.skipped.push_back(k.err().message);
  }
  return ring;
}

}  // namespace troupe::manifests
