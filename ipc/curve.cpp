#include "ipc/curve.hpp"

#include "base/files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <random>
#include <system_error>

namespace troupe::ipc {

namespace fs = std::filesystem;

namespace {

constexpr std::size_t z85_key_chars = 40;
constexpr std::size_t binary_key_bytes = 32;
// A key file is one line; anything longer is malformed, so reading stops here.
constexpr std::size_t max_key_file_bytes = 4096;
constexpr std::string_view zap_endpoint = "inproc://zeromq.zap.01";
// ZMQ_ZAP_ENFORCE_DOMAIN: implemented by libzmq 4.3 but declared in zmq.h only
// under ZMQ_BUILD_DRAFT_API.
#ifdef ZMQ_ZAP_ENFORCE_DOMAIN
constexpr int zap_enforce_domain_option = ZMQ_ZAP_ENFORCE_DOMAIN;
#else
constexpr int zap_enforce_domain_option = 93;
#endif

using base::errno_text;
using base::write_file_atomically;

std::string_view trim(std::string_view s) {
  constexpr std::string_view space = " \t\r\n\v\f";
  const auto first = s.find_first_not_of(space);
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(space) - first + 1);
}

// The 32 bytes of a Z85 key, or nothing when text (trimmed) is not one.
std::optional<std::array<std::uint8_t, binary_key_bytes>> decode_key(std::string_view text) {
  text = trim(text);
  if (text.size() != z85_key_chars) return std::nullopt;
  const std::string z(text);  // zmq_z85_decode reads up to a NUL
  std::array<std::uint8_t, binary_key_bytes> raw{};
  if (zmq_z85_decode(raw.data(), z.c_str()) == nullptr) return std::nullopt;
  return raw;
}

std::string encode_key(const std::uint8_t* raw) {
  char z[z85_key_chars + 1] = {};
  if (zmq_z85_encode(z, raw, binary_key_bytes) == nullptr) return {};
  return std::string(z, z85_key_chars);
}

bool valid_name(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
           c == '-';
  });
}

// Reads at most max_key_file_bytes of file. errc::not_found when it is
// absent. Never waits on a FIFO: the ZAP handler reads these per connection.
result<std::string> read_key_file(const fs::path& file) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    const int e = errno;
    return make_error(e == ENOENT ? errc::not_found : errc::io,
                      file.string() + ": cannot read (" + errno_text(e) + ")");
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return make_error(errc::io, file.string() + ": cannot read (not a regular file)");
  }
  std::string bytes(max_key_file_bytes, '\0');
  std::size_t got = 0;
  while (got < bytes.size()) {
    const ssize_t n = ::read(fd, bytes.data() + got, bytes.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int e = errno;
      ::close(fd);
      return make_error(errc::io, file.string() + ": cannot read (" + errno_text(e) + ")");
    }
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  ::close(fd);
  bytes.resize(got);
  return bytes;
}

status make_dir(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return make_error(errc::io, dir.string() + ": cannot create directory (" + ec.message() + ")");
  return ok_v;
}

// The public key of a Z85 secret key, or "" when libzmq cannot derive one.
std::string public_of(const std::string& secret_z85) {
  char pub[z85_key_chars + 1] = {};
  if (zmq_curve_public(pub, secret_z85.c_str()) != 0) return {};
  return std::string(pub, z85_key_chars);
}

result<curve_keypair> create_keypair(const fs::path& dir) {
  auto pair = generate_curve_keypair();
  if (!pair) return pair.err();
  if (auto made = make_dir(dir); !made) return made.err();
  // curve.pub first: once curve.key exists, the pair is complete.
  if (auto w = write_file_atomically(dir / "curve.pub", pair->public_key + "\n", 0644); !w) return w.err();
  if (auto w = write_file_atomically(dir / "curve.key", pair->secret_key + "\n", 0600); !w) return w.err();
  return pair;
}

// A ZAP frame as text for a one-line message: printable ASCII only, bounded.
std::string printable(const zmq::message_t& frame, std::size_t max = 64) {
  std::string out;
  const auto* p = static_cast<const unsigned char*>(frame.data());
  for (std::size_t i = 0; i < frame.size() && i < max; ++i)
    out += (p[i] >= 0x20 && p[i] < 0x7f) ? static_cast<char>(p[i]) : '?';
  if (frame.size() > max) out += "...";
  return out;
}

bool frame_is(const zmq::message_t& frame, std::string_view text) {
  return frame.size() == text.size() && std::memcmp(frame.data(), text.data(), text.size()) == 0;
}

}  // namespace

result<curve_keypair> generate_curve_keypair() {
  char pub[z85_key_chars + 1] = {};
  char sec[z85_key_chars + 1] = {};
  if (zmq_curve_keypair(pub, sec) != 0)
    return make_error(errc::unavailable, std::string("zmq_curve_keypair: ") + zmq_strerror(zmq_errno()) +
                                             " (libzmq built without CURVE?)");
  return curve_keypair{std::string(pub, z85_key_chars), std::string(sec, z85_key_chars)};
}

result<curve_keypair> load_or_create_keypair(const fs::path& dir) {
  const fs::path key_file = dir / "curve.key";
  const fs::path pub_file = dir / "curve.pub";
  auto secret_text = read_key_file(key_file);
  if (!secret_text) {
    if (secret_text.err().code == errc::not_found) return create_keypair(dir);
    return secret_text.err();
  }
  if (!decode_key(*secret_text))
    return make_error(errc::invalid_argument, key_file.string() + ": not a Z85 Curve25519 key");
  curve_keypair pair;
  pair.secret_key = std::string(trim(*secret_text));
  pair.public_key = public_of(pair.secret_key);
  if (pair.public_key.empty())
    return make_error(errc::invalid_argument, key_file.string() + ": not a Z85 Curve25519 key");

  auto public_text = read_key_file(pub_file);
  if (!public_text) {
    // The public half follows from the secret: a lost curve.pub is rewritten.
    if (public_text.err().code != errc::not_found) return public_text.err();
    if (auto w = write_file_atomically(pub_file, pair.public_key + "\n", 0644); !w) return w.err();
    return pair;
  }
  if (!decode_key(*public_text))
    return make_error(errc::invalid_argument, pub_file.string() + ": not a Z85 Curve25519 key");
  if (trim(*public_text) != pair.public_key)
    return make_error(errc::invalid_argument, pub_file.string() + ": does not match curve.key");
  return pair;
}

bool valid_curve_key(std::string_view text) { return decode_key(text).has_value(); }

const std::string* trusted_set::find(std::string_view key) const {
  const auto it = name_by_key.find(std::string(key));
  return it == name_by_key.end() ? nullptr : &it->second;
}

trusted_set read_trusted(const fs::path& dir) {
  trusted_set set;
  std::error_code ec;
  if (!fs::exists(dir, ec)) {
    if (ec) set.problems.push_back(dir.string() + ": cannot read (" + ec.message() + ")");
    return set;
  }
  std::vector<fs::path> files;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (it->path().extension() == ".pub") files.push_back(it->path());
  if (ec) set.problems.push_back(dir.string() + ": cannot list (" + ec.message() + ")");
  // Sorted, so which of two files holding one key wins does not depend on
  // the order of the directory.
  std::sort(files.begin(), files.end());
  for (const auto& file : files) {
    const std::string name = file.stem().string();
    if (!valid_name(name)) {
      set.problems.push_back(file.string() + ": name is not [A-Za-z0-9_.-]+");
      continue;
    }
    if (!fs::is_regular_file(file, ec)) {
      set.problems.push_back(file.string() + ": not a regular file");
      continue;
    }
    auto text = read_key_file(file);
    if (!text) {
      set.problems.push_back(text.err().message);
      continue;
    }
    const auto raw = decode_key(*text);
    if (!raw) {
      set.problems.push_back(file.string() + ": not a Z85 Curve25519 key");
      continue;
    }
    // Re-encoded: the ZAP handler looks keys up by the Z85 it makes itself.
    const auto [it, added] = set.name_by_key.emplace(encode_key(raw->data()), name);
    if (!added) set.problems.push_back(file.string() + ": same key as " + it->second + ".pub, skipped");
  }
  return set;
}

status trust_key(const fs::path& dir, std::string_view name, std::string_view public_key) {
  if (!valid_name(name))
    return make_error(errc::invalid_argument, "trusted key name '" + std::string(name) + "': not [A-Za-z0-9_.-]+");
  if (!valid_curve_key(public_key))
    return make_error(errc::invalid_argument, "public key for '" + std::string(name) + "': not a Z85 Curve25519 key");
  const std::string key(trim(public_key));
  const fs::path file = dir / (std::string(name) + ".pub");
  if (auto existing = read_key_file(file); existing && trim(*existing) == key) return ok_v;
  if (auto made = make_dir(dir); !made) return made.err();
  return write_file_atomically(file, key + "\n", 0644);
}

void make_curve_server(zmq::socket_t& s, const curve_keypair& own, std::string_view domain) {
  s.set(zmq::sockopt::curve_server, true);
  s.set(zmq::sockopt::curve_secretkey, own.secret_key);
  s.set(zmq::sockopt::curve_publickey, own.public_key);
  require_zap(s, domain);
}

void require_zap(zmq::socket_t& s, std::string_view domain) {
  s.set(zmq::sockopt::zap_domain, std::string(domain));
  // Best effort: a libzmq without the option still consults a bound handler,
  // and the handler is bound first (see the header).
  const int enforce = 1;
  (void)zmq_setsockopt(s.handle(), zap_enforce_domain_option, &enforce, sizeof enforce);
}

void make_curve_client(zmq::socket_t& s, const curve_keypair& own, std::string_view server_public_key) {
  s.set(zmq::sockopt::curve_serverkey, server_public_key);
  s.set(zmq::sockopt::curve_publickey, own.public_key);
  s.set(zmq::sockopt::curve_secretkey, own.secret_key);
}

zap_authenticator::zap_authenticator(zmq::context_t& ctx) : socket_(ctx, zmq::socket_type::rep) {
  socket_.set(zmq::sockopt::linger, 0);
  socket_.bind(std::string(zap_endpoint));
}

zap_authenticator::zap_authenticator(zmq::context_t& ctx, trusted_fn trusted, refusal_fn on_refused)
    : zap_authenticator(ctx) {
  admit(std::string(peer_zap_domain), curve_policy(std::move(trusted)), std::move(on_refused));
}

void zap_authenticator::admit(std::string domain, policy_fn policy, refusal_fn on_refused) {
  domains_[std::move(domain)] = domain_entry{std::move(policy), std::move(on_refused)};
}

zap_authenticator::policy_fn zap_authenticator::curve_policy(trusted_fn trusted) {
  return [trusted = std::move(trusted)](const request_info& r) -> answer {
    if (r.mechanism != "CURVE")
      return {"400", "only CURVE is accepted", "", "mechanism " + r.mechanism + " refused: only CURVE"};
    trusted_set set;
    try {
      set = trusted();
    } catch (const std::exception& e) {
      // Fail closed: no trusted set, no admission.
      return {
          "500", "trusted set unavailable", "",
          "trusted set unavailable (" + std::string(e.what()) + "): key " + r.key + " from " + r.address + " refused"};
    }
    if (const std::string* name = set.find(r.key)) return {"200", "OK", *name, ""};
    return {"400", "untrusted key", "", "untrusted key " + r.key + " from " + r.address};
  };
}

// RFC 27 request, after the REP socket removed the envelope:
// [version "1.0"][request id][domain][address][routing id][mechanism][credentials...]
zap_authenticator::answer zap_authenticator::decide(const std::vector<zmq::message_t>& frames,
                                                    const domain_entry*& entry) {
  entry = nullptr;
  if (frames.size() < 6)
    return {"500", "malformed ZAP request: too few frames (" + std::to_string(frames.size()) + ")", "", ""};
  if (!frame_is(frames[0], "1.0")) return {"500", "unsupported ZAP version " + printable(frames[0]), "", ""};
  request_info r;
  r.domain = printable(frames[2]);
  r.address = printable(frames[3]);
  r.mechanism = printable(frames[5], 16);
  if (frame_is(frames[5], "CURVE")) {
    // CURVE credentials: the client's long-term public key, 32 bytes.
    if (frames.size() != 7 || frames[6].size() != binary_key_bytes)
      return {"500", "malformed ZAP request: CURVE credentials are not one 32-byte key", "", ""};
    r.key = encode_key(static_cast<const std::uint8_t*>(frames[6].data()));
  }
  const auto it = domains_.find(frames[2].to_string_view());
  if (it == domains_.end())
    return {"400", "unknown ZAP domain", "", "connection of unknown ZAP domain '" + r.domain + "' refused"};
  entry = &it->second;
  try {
    return it->second.policy(r);
  } catch (const std::exception& e) {
    return {"500", "internal error", "", "policy failed (" + std::string(e.what()) + "): " + r.address + " refused"};
  }
}

bool zap_authenticator::send_reply(const std::vector<zmq::message_t>& request, const answer& a) {
  // The request id is echoed; a request too short to carry one gets "".
  const std::string request_id = request.size() >= 2 ? request[1].to_string() : std::string();
  const std::string_view frames[] = {"1.0", request_id, a.status, a.text, a.user_id, ""};
  try {
    for (std::size_t i = 0; i < std::size(frames); ++i) {
      const auto more = i + 1 < std::size(frames) ? zmq::send_flags::sndmore : zmq::send_flags::none;
      if (!socket_.send(zmq::buffer(frames[i].data(), frames[i].size()), more | zmq::send_flags::dontwait))
        return false;
    }
  } catch (const zmq::error_t&) {
    return false;  // ETERM: the context is closing
  }
  return true;
}

void zap_authenticator::handle_pending() {
  for (;;) {
    std::vector<zmq::message_t> request;
    try {
      zmq::message_t part;
      if (!socket_.recv(part, zmq::recv_flags::dontwait)) return;
      bool more = part.more();
      request.push_back(std::move(part));
      while (more) {
        zmq::message_t next;
        if (!socket_.recv(next, zmq::recv_flags::dontwait)) break;  // a whole message arrives at once
        more = next.more();
        request.push_back(std::move(next));
      }
    } catch (const zmq::error_t&) {
      return;  // ETERM, or EFSM after a reply that could not be sent
    }
    const domain_entry* entry = nullptr;
    const answer a = decide(request, entry);
    if (!send_reply(request, a)) return;
    // After the reply, so a throwing callback leaves no request unanswered.
    if (!a.refusal.empty() && entry && entry->on_refused) entry->on_refused(printable(request[3]), a.refusal);
  }
}

}  // namespace troupe::ipc
