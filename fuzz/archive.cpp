// fuzz/archive.cpp — package archives (.tpkg, manifests/archive.hpp) as a
// system reads them from disk or from a peer: open_archive_bytes.
//
// Random bytes never carry a valid Ed25519 signature, so on its own the
// fuzzer would only ever exercise the trailer checks. The first input byte
// picks the mode: even, the rest goes to open_archive_bytes as it is (the
// trailer checks, with a ring holding one throwaway key); odd, the rest is a
// tar payload this target signs with that key first, so that the tar walk,
// the entry checks (paths, symlinks, limits) and the manifest check below
// the signature are fuzzed through the same public entry point.

#include "manifests/archive.hpp"
#include "fuzz/common.hpp"
#include "manifests/signing.hpp"

#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace {

namespace fs = std::filesystem;
using namespace troupe::manifests;

struct throwaway_key {
  key_ring ring;
  std::optional<signing_key> key;
};

throwaway_key make_key() {
  std::string dir = (fs::temp_directory_path() / "troupe-fuzz-XXXXXX").string();
  troupe::fuzz::expect(::mkdtemp(dir.data()) != nullptr, "mkdtemp");
  throwaway_key k;
  troupe::fuzz::expect(static_cast<bool>(generate_key_pair(fs::path(dir) / "fuzz")), "generate a key");
  auto key = signing_key::read(fs::path(dir) / "fuzz.key");
  troupe::fuzz::expect(static_cast<bool>(key), "read the key");
  k.key = std::move(*key);
  k.ring = read_key_ring(dir);
  troupe::fuzz::expect(k.ring.keys.size() == 1, "a ring of one key");
  fs::remove_all(dir);
  return k;
}

const throwaway_key& the_key() {
  static const throwaway_key k = make_key();
  return k;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const auto& k = the_key();
  std::string bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  if ((data[0] & 1) != 0) bytes = sign_payload(std::move(bytes), *k.key);
  // The default limits but for the sizes, kept small enough for a fuzz run.
  const archive_limits limits{64ull << 20, 64ull << 20, 10000};
  auto a = open_archive_bytes(std::move(bytes), "fuzz.tpkg", k.ring, limits);
  if (!a) {
    troupe::fuzz::expect(a.err().message.find('\n') == std::string::npos, "an archive error is one line");
    return 0;
  }
  troupe::fuzz::expect(!a->m.actors.empty(), "an opened archive has a manifest");
  return 0;
}
