// bench/package_figures.cpp — the figures of signed packages
// (docs/PERFORMANCE.md): loading a 5 MiB archive until its first actor
// answers, and the verification steps alone, each beside a baseline measured
// in the same run.
#include "bench/bench.hpp"

#include "manifests/archive.hpp"
#include "manifests/sha256.hpp"

#include <openssl/evp.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string_view>

namespace troupe::bench {

namespace fs = std::filesystem;

namespace {

double ms_between(std::int64_t a, std::int64_t b) { return static_cast<double>(b - a) / 1e6; }

std::size_t archives_in(const fs::path& dir) {
  std::size_t n = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.path().extension() == ".tpkg") ++n;
  return n;
}

std::string read_file(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in.good() && !in.eof()) throw bench_error("cannot read " + file);
  return bytes;
}

std::string to_hex(std::string_view raw) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  for (const unsigned char c : raw) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

/// The baseline of signature_verify: OpenSSL's Ed25519 verification with the
/// key object made once, as the least any verifier does per message.
class raw_ed25519 {
 public:
  explicit raw_ed25519(const std::string& raw_key)
      : key_(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr,
                                         reinterpret_cast<const unsigned char*>(raw_key.data()), raw_key.size())) {
    if (!key_) throw bench_error("OpenSSL refused the bench's public key");
  }
  [[nodiscard]] bool verify(std::string_view message, std::string_view signature) const {
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
    if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key_.get()) != 1) return false;
    return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
                            reinterpret_cast<const unsigned char*>(message.data()), message.size()) == 1;
  }

 private:
  struct pkey_free {
    void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
  };
  std::unique_ptr<EVP_PKEY, pkey_free> key_;
};

}  // namespace

double store_scan_ms(const std::string& home, std::size_t& archives) {
  const fs::path h(home);
  std::vector<double> passes;
  for (int pass = 0; pass < 3; ++pass) {
    archives = 0;
    std::error_code ec;
    const auto t0 = now_ns();
    for (const auto& e : fs::directory_iterator(h / "packages", ec)) {
      if (e.path().extension() != ".tpkg") continue;
      ++archives;
      (void)manifests::open_archive(e.path(), manifests::read_key_ring(h / "keys"));
    }
    passes.push_back(ms_between(t0, now_ns()));
  }
  return median(passes);
}

void measure_package_load(live_system& sys, const bench_packages& pk, int samples, const std::string& dlopen_exe,
                          std::string& last_archive, std::vector<figure>& out) {
  say("load of a fresh 5 MiB package + first answer vs a bare fork+exec+dlopen of its library");
  const fs::path store = fs::path(sys.home()) / "packages";
  (void)bare_fork_exec_ms(dlopen_exe, {pk.library()});  // warm-up
  std::vector<double> total, load_only, first_answer, bare;
  std::uintmax_t archive_bytes = 0;
  std::size_t stored = 0;
  for (int i = 0; i <= samples; ++i) {   // sample 0 is a warm-up
    const std::string file = pk.big(i);  // a new version: a new id, a new worker
    archive_bytes = fs::file_size(file);
    stored = archives_in(store);
    const double b = bare_fork_exec_ms(dlopen_exe, {pk.library()});
    sys.wait_settled();
    const auto t0 = now_ns();
    const std::string id = sys.load(file);  // answered once the worker registered
    const auto t1 = now_ns();
    const address a = sys.spawn("Spawner", id);
    sys.ask(a, json{{"op", "ping"}});
    const auto t2 = now_ns();
    (void)sys.worker_pid(id);  // tracked, should the bench be interrupted
    if (i > 0) {
      bare.push_back(b);
      total.push_back(ms_between(t0, t2));
      load_only.push_back(ms_between(t0, t1));
      first_answer.push_back(ms_between(t1, t2));
    }
    // Untimed: an operator rolling versions unloads the old ones; this also
    // keeps the worker count and the package directory (keep: 3) steady.
    sys.unload(id);
    last_archive = file;
  }
  std::size_t scanned = 0;
  const double scan = store_scan_ms(sys.home(), scanned);
  say("  archive " + std::to_string(archive_bytes) + " bytes; " + std::to_string(stored) +
      " archives in the package directory before a load; medians: load " + fmt(median(load_only)) +
      " ms, spawn + first ask " + fmt(median(first_answer)) + " ms; verifying the " + std::to_string(scanned) +
      " archives of the package directory (what avail and refresh do) takes " + fmt(scan) + " ms");
  figure f{"package_load_5mib",
           median(total),
           "ms",
           median(bare),
           "fork+exec of troupe-bench-dlopen: dlopen of the package library (RTLD_NOW), 'ready' on a pipe",
           "p50 <= 10 ms",
           {}};
  f.met = f.value <= 10;
  out.push_back(f);
}

void measure_package_load_sizes(live_system& sys, const bench_packages& pk, int samples, const std::string& dlopen_exe,
                                std::vector<figure>& out) {
  say("loads whose bytes are all new (nothing to reuse from an earlier version): 5 MiB and 50 MiB");
  struct series {
    const char* name;
    int major;
    std::uint64_t bytes;
    int samples;
    std::vector<double> total, bare;
  };
  std::vector<series> all{{"package_load_5mib_new_bytes", 2, 5ull << 20, samples, {}, {}},
                          {"package_load_50mib", 3, 50ull << 20, std::max(3, samples / 3), {}, {}}};
  (void)bare_fork_exec_ms(dlopen_exe, {pk.library()});  // warm-up
  for (auto& z : all) {
    for (int i = 0; i <= z.samples; ++i) {  // sample 0 is a warm-up
      const std::string file = pk.big(z.major, i, z.bytes, false);
      const double b = bare_fork_exec_ms(dlopen_exe, {pk.library()});
      sys.wait_settled();
      const auto t0 = now_ns();
      const std::string id = sys.load(file);
      const address a = sys.spawn("Spawner", id);
      sys.ask(a, json{{"op", "ping"}});
      const auto t1 = now_ns();
      if (i > 0) {
        z.total.push_back(ms_between(t0, t1));
        z.bare.push_back(b);
      }
      sys.unload(id);
      std::error_code ec;
      fs::remove(file, ec);  // 50 MiB each: the outbox need not keep them
    }
  }
  figure five{all[0].name,
              median(all[0].total),
              "ms",
              median(all[0].bare),
              "fork+exec of troupe-bench-dlopen: dlopen of the package library (RTLD_NOW), 'ready' on a pipe",
              "-",
              {}};
  five.samples = all[0].total;
  five.baseline_samples = all[0].bare;
  out.push_back(five);
  figure fifty{all[1].name,
               median(all[1].total),
               "ms",
               median(all[0].total) * 10,
               "10 x package_load_5mib_new_bytes of this run (linear scaling)",
               "<= 1x baseline",
               {}};
  fifty.samples = all[1].total;
  fifty.met = fifty.value <= fifty.baseline;
  out.push_back(fifty);
}

void measure_verification(const std::string& home, const std::string& archive, int signature_calls, int archive_samples,
                          std::vector<figure>& out) {
  const std::string bytes = read_file(archive);
  if (bytes.size() < manifests::signature_trailer_bytes) throw bench_error(archive + " has no trailer");
  const std::string_view trailer = std::string_view(bytes).substr(bytes.size() - manifests::signature_trailer_bytes);
  // What open_archive verifies: "troupe package v1" NUL || trailer bytes 8..80.
  const std::string statement = std::string("troupe package v1\0", 18) + std::string(trailer.substr(8, 72));
  const std::string_view signature = trailer.substr(80, 64);
  const auto ring = manifests::read_key_ring(fs::path(home) / "keys");
  const manifests::public_key* key = ring.find(to_hex(trailer.substr(48, 32)));
  if (key == nullptr) throw bench_error(archive + ": its key is not in " + ring.dir.string());

  say("Ed25519 signature verification vs OpenSSL with the key object made once");
  const raw_ed25519 raw(key->raw);
  std::vector<double> ours, theirs;
  constexpr int block = 100;  // alternate blocks, so both see the same machine
  for (int done = 0; done < signature_calls; done += block) {
    for (int i = 0; i < block; ++i) {
      const auto t0 = now_ns();
      const bool ok = manifests::verify_signature(*key, statement, signature);
      const auto t1 = now_ns();
      if (!ok) throw bench_error("verify_signature refused the bench's own signature");
      ours.push_back(static_cast<double>(t1 - t0) / 1e3);
    }
    for (int i = 0; i < block; ++i) {
      const auto t0 = now_ns();
      const bool ok = raw.verify(statement, signature);
      const auto t1 = now_ns();
      if (!ok) throw bench_error("OpenSSL refused the bench's own signature");
      theirs.push_back(static_cast<double>(t1 - t0) / 1e3);
    }
  }
  figure s{"signature_verify",
           median(ours),
           "us",
           median(theirs),
           "OpenSSL EVP_DigestVerify (Ed25519), key object made once, same 90-byte statement",
           "<= 1 ms",
           {}};
  s.met = s.value <= 1000;
  out.push_back(s);

  say("open_archive of the " + std::to_string(bytes.size()) + "-byte archive vs SHA-256 of its bytes");
  std::vector<double> open_ms, sha_ms;
  (void)manifests::sha256_hex(bytes);  // warm-up, both
  if (auto a = manifests::open_archive(archive, ring); !a) throw bench_error(a.err().message);
  for (int i = 0; i < archive_samples; ++i) {
    auto t0 = now_ns();
    const std::string digest = manifests::sha256_hex(bytes);
    auto t1 = now_ns();
    sha_ms.push_back(ms_between(t0, t1));
    t0 = now_ns();
    auto a = manifests::open_archive(archive, ring);
    t1 = now_ns();
    if (!a) throw bench_error(a.err().message);
    if (a->id != digest) throw bench_error("open_archive's id is not the file's SHA-256");
    open_ms.push_back(ms_between(t0, t1));
  }
  out.push_back({"archive_verify_5mib",
                 median(open_ms),
                 "ms",
                 median(sha_ms),
                 "OpenSSL SHA-256 of the same bytes, in memory (manifests::sha256_hex)",
                 "-",
                 {}});
}

}  // namespace troupe::bench
