// manifests/signing.hpp — Ed25519 keys and signatures (OpenSSL 3 EVP) for
// package archives. Key files are PEM, readable by `openssl pkey`:
// NAME.key holds the private key (PKCS#8, mode 0600), NAME.pub the public
// key (SubjectPublicKeyInfo). A key is identified by its fingerprint, the hex
// SHA-256 of its 32 raw public-key bytes. Free functions are safe from any
// thread; a signing_key may be used from one thread at a time.
#pragma once

#include <troupe/result.hpp>

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

struct evp_pkey_st;  // OpenSSL's EVP_PKEY, kept out of this header

namespace troupe::manifests {

inline constexpr std::size_t ed25519_public_key_bytes = 32;
inline constexpr std::size_t ed25519_signature_bytes = 64;

struct public_key {
  std::string name;  ///< the file's stem: "dev" for keys/dev.pub
  std::filesystem::path file;
  std::string raw;          ///< the 32 raw public-key bytes
  std::string fingerprint;  ///< 64 lowercase hex characters: SHA-256 of raw
};

/// A private key read from NAME.key, able to sign.
class signing_key {
 public:
  /// Reads a PEM Ed25519 private key. Errors name the file: not_found,
  /// invalid_argument ("not a PEM private key", "an RSA key, not Ed25519").
  [[nodiscard]] static result<signing_key> read(const std::filesystem::path& file);

  [[nodiscard]] const public_key& pub() const { return pub_; }
  /// The 64-byte Ed25519 signature of message.
  [[nodiscard]] std::string sign(std::string_view message) const;

 private:
  struct pkey_free {
    void operator()(evp_pkey_st* k) const;
  };
  std::unique_ptr<evp_pkey_st, pkey_free> key_;
  public_key pub_;
};

/// Writes base.key (0600) and base.pub, e.g. base "keys/dev" gives
/// keys/dev.key and keys/dev.pub. Refuses (errc::refused) to overwrite either
/// file; io errors name the path.
[[nodiscard]] status generate_key_pair(const std::filesystem::path& base);

/// Reads a PEM Ed25519 public key; errors name the file.
[[nodiscard]] result<public_key> read_public_key(const std::filesystem::path& file);

/// True when signature (64 bytes) is key's signature of message.
[[nodiscard]] bool verify_signature(const public_key& key, std::string_view message, std::string_view signature);

/// The trusted keys of a system: every *.pub file of a directory.
struct key_ring {
  std::filesystem::path dir;
  std::vector<public_key> keys;      ///< sorted by file name
  std::vector<std::string> skipped;  ///< "FILE: why", for *.pub files that could not be read

  /// The key with this fingerprint, or nullptr.
  [[nodiscard]] const public_key* find(std::string_view fingerprint) const;
};

/// Reads every *.pub in dir (a missing directory gives an empty ring).
[[nodiscard]] key_ring read_key_ring(const std::filesystem::path& dir);

}  // namespace troupe::manifests
