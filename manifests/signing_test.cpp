#include "manifests/signing.hpp"

#include "manifests/sha256.hpp"
#include "tests/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>

using namespace troupe::manifests;
using troupe::errc;
namespace fs = std::filesystem;

using troupe::testing::slurp;
using troupe::testing::temp_dir;
using troupe::testing::write;

namespace {

unsigned mode_of(const fs::path& file) {
  struct stat st {};
  REQUIRE(::stat(file.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

// base.key and base.pub holding an RSA key, made with OpenSSL directly.
void write_rsa_pair(const fs::path& base) {
  EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(1024));
  REQUIRE(key != nullptr);
  std::FILE* priv = std::fopen((base.string() + ".key").c_str(), "w");
  std::FILE* pub = std::fopen((base.string() + ".pub").c_str(), "w");
  REQUIRE((priv != nullptr && pub != nullptr));
  CHECK(PEM_write_PrivateKey(priv, key, nullptr, nullptr, 0, nullptr, nullptr) == 1);
  CHECK(PEM_write_PUBKEY(pub, key) == 1);
  std::fclose(priv);
  std::fclose(pub);
  EVP_PKEY_free(key);
}

}  // namespace

TEST_CASE("a generated key pair reads back as PEM files with one fingerprint", "[signing]") {
  temp_dir t;
  REQUIRE(generate_key_pair(t.path / "dev").ok());
  CHECK(mode_of(t.path / "dev.key") == 0600);
  CHECK_THAT(slurp(t.path / "dev.key"), Catch::StartsWith("-----BEGIN PRIVATE KEY-----"));
  CHECK_THAT(slurp(t.path / "dev.pub"), Catch::StartsWith("-----BEGIN PUBLIC KEY-----"));

  auto key = signing_key::read(t.path / "dev.key");
  auto pub = read_public_key(t.path / "dev.pub");
  INFO((key ? std::string() : key.err().message) + (pub ? std::string() : pub.err().message));
  REQUIRE((key.ok() && pub.ok()));
  CHECK(pub->name == "dev");
  CHECK(pub->file == t.path / "dev.pub");
  CHECK(pub->raw.size() == ed25519_public_key_bytes);
  CHECK(pub->fingerprint == sha256_hex(pub->raw));
  CHECK(pub->fingerprint.find_first_not_of("0123456789abcdef") == std::string::npos);
  CHECK(key->pub().raw == pub->raw);
  CHECK(key->pub().fingerprint == pub->fingerprint);
  CHECK(key->pub().name == "dev");
}

TEST_CASE("two generated keys differ", "[signing]") {
  temp_dir t;
  REQUIRE(generate_key_pair(t.path / "a").ok());
  REQUIRE(generate_key_pair(t.path / "b").ok());
  CHECK(read_public_key(t.path / "a.pub")->fingerprint != read_public_key(t.path / "b.pub")->fingerprint);
}

TEST_CASE("generate_key_pair refuses to overwrite either file", "[signing]") {
  temp_dir t;
  REQUIRE(generate_key_pair(t.path / "dev").ok());
  const std::string before = slurp(t.path / "dev.key");
  auto again = generate_key_pair(t.path / "dev");
  REQUIRE_FALSE(again.ok());
  CHECK(again.err().code == errc::refused);
  CHECK(again.err().message == (t.path / "dev.key").string() + ": already exists, not overwritten");
  CHECK(slurp(t.path / "dev.key") == before);

  write(t.path / "other.pub", "mine");
  auto s = generate_key_pair(t.path / "other");
  REQUIRE_FALSE(s.ok());
  CHECK(s.err().code == errc::refused);
  CHECK(s.err().message == (t.path / "other.pub").string() + ": already exists, not overwritten");
  CHECK_FALSE(fs::exists(t.path / "other.key"));
  CHECK(slurp(t.path / "other.pub") == "mine");
}

TEST_CASE("generate_key_pair into a missing directory is an io error naming the file", "[signing]") {
  temp_dir t;
  auto s = generate_key_pair(t.path / "nope" / "dev");
  REQUIRE_FALSE(s.ok());
  CHECK(s.err().code == errc::io);
  CHECK_THAT(s.err().message, Catch::StartsWith((t.path / "nope" / "dev.key").string() + ": "));
}

TEST_CASE("an RSA key is refused as not Ed25519", "[signing]") {
  temp_dir t;
  write_rsa_pair(t.path / "rsa");
  auto key = signing_key::read(t.path / "rsa.key");
  REQUIRE_FALSE(key.ok());
  CHECK(key.err().code == errc::invalid_argument);
  CHECK(key.err().message == (t.path / "rsa.key").string() + ": an RSA key, not Ed25519");
  auto pub = read_public_key(t.path / "rsa.pub");
  REQUIRE_FALSE(pub.ok());
  CHECK(pub.err().message == (t.path / "rsa.pub").string() + ": an RSA key, not Ed25519");
}

TEST_CASE("unreadable key files are refused naming the file", "[signing]") {
  temp_dir t;
  write(t.path / "junk.key", "hello\n");
  auto junk = signing_key::read(t.path / "junk.key");
  REQUIRE_FALSE(junk.ok());
  CHECK(junk.err().code == errc::invalid_argument);
  CHECK(junk.err().message == (t.path / "junk.key").string() + ": not a PEM private key");

  auto missing = signing_key::read(t.path / "missing.key");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.err().code == errc::not_found);
  CHECK(missing.err().message == (t.path / "missing.key").string() + ": no such file");

  REQUIRE(generate_key_pair(t.path / "dev").ok());
  auto swapped = read_public_key(t.path / "dev.key");  // a private key where a public one goes
  REQUIRE_FALSE(swapped.ok());
  CHECK(swapped.err().message == (t.path / "dev.key").string() + ": not a PEM public key");
  CHECK(read_public_key(t.path / "missing.pub").err().code == errc::not_found);
}

TEST_CASE("a signature verifies with its key only, for its message only", "[signing]") {
  temp_dir t;
  REQUIRE(generate_key_pair(t.path / "a").ok());
  REQUIRE(generate_key_pair(t.path / "b").ok());
  auto a = signing_key::read(t.path / "a.key");
  auto b = read_public_key(t.path / "b.pub");
  REQUIRE((a.ok() && b.ok()));

  const std::string message("troupe\0message", 14);
  const std::string sig = a->sign(message);
  CHECK(sig.size() == ed25519_signature_bytes);
  CHECK(a->sign(message) == sig);  // Ed25519 is deterministic
  CHECK(verify_signature(a->pub(), message, sig));
  CHECK(verify_signature(*read_public_key(t.path / "a.pub"), message, sig));
  CHECK_FALSE(verify_signature(*b, message, sig));
  CHECK_FALSE(verify_signature(a->pub(), message + "x", sig));
  std::string flipped = sig;
  flipped[10] = static_cast<char>(flipped[10] ^ 1);
  CHECK_FALSE(verify_signature(a->pub(), message, flipped));
  CHECK_FALSE(verify_signature(a->pub(), message, sig.substr(0, 63)));
  CHECK_FALSE(verify_signature(a->pub(), message, ""));
  public_key broken = a->pub();
  broken.raw.pop_back();
  CHECK_FALSE(verify_signature(broken, message, sig));
}

TEST_CASE("a key ring holds the readable .pub files of a directory, sorted", "[signing]") {
  temp_dir t;
  REQUIRE(generate_key_pair(t.path / "zed").ok());
  REQUIRE(generate_key_pair(t.path / "alpha").ok());
  write(t.path / "junk.pub", "not a key");
  write_rsa_pair(t.path / "rsa");
  write(t.path / "notes.txt", "ignored");

  const key_ring ring = read_key_ring(t.path);
  CHECK(ring.dir == t.path);
  REQUIRE(ring.keys.size() == 2);
  CHECK(ring.keys[0].name == "alpha");
  CHECK(ring.keys[1].name == "zed");
  REQUIRE(ring.skipped.size() == 2);
  CHECK(ring.skipped[0] == (t.path / "junk.pub").string() + ": not a PEM public key");
  CHECK(ring.skipped[1] == (t.path / "rsa.pub").string() + ": an RSA key, not Ed25519");

  const public_key* zed = ring.find(ring.keys[1].fingerprint);
  REQUIRE(zed != nullptr);
  CHECK(zed->name == "zed");
  CHECK(ring.find(std::string(64, '0')) == nullptr);

  const key_ring none = read_key_ring(t.path / "missing");
  CHECK(none.keys.empty());
  CHECK(none.skipped.empty());
}
