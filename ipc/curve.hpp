// ipc/curve.hpp — CurveZMQ for links between systems: key pairs kept on disk,
// the set of public keys a system trusts (one DIR/NAME.pub per peer), socket
// options for CURVE servers and clients, and the ZAP handler that decides,
// per connection, whether a CURVE client's public key is trusted.
//
// ZeroMQ asks a context's ZAP handler (RFC 27) about a connection only while
// one is bound at inproc://zeromq.zap.01 in that context. A CURVE server that
// handshakes with no handler bound admits every client (encryption without
// authentication), so create the zap_authenticator BEFORE binding any CURVE
// server socket in the context, and keep it until those sockets are closed.
// make_curve_server also asks libzmq to refuse, rather than admit, clients
// when no handler is bound (ZMQ_ZAP_ENFORCE_DOMAIN), as a second guard.
//
// One handler serves every socket of its context: all CURVE servers there are
// checked against the same trusted set.
//
// Key files and the trusted set are plain values; read_trusted and trust_key
// may be called from any thread. A zap_authenticator, like its socket, belongs
// to the thread that created it; its callbacks run on that thread.
#pragma once

#include <troupe/result.hpp>

#include <zmq.hpp>

#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace troupe::ipc {

struct curve_keypair {
  std::string public_key;  // Z85, 40 characters
  std::string secret_key;  // Z85, 40 characters
};

/// A fresh Curve25519 key pair (zmq_curve_keypair). Errors if libzmq lacks CURVE.
result<curve_keypair> generate_curve_keypair();

/// The key pair kept in dir: dir/curve.key (the secret, Z85 + newline, mode
/// 0600) and dir/curve.pub (the public, Z85 + newline). Both are created (dir
/// too) when curve.key is absent; an existing pair is read back and checked
/// (the public must match the secret: zmq_curve_public). A missing curve.pub
/// beside an existing curve.key is written again from the secret. Errors name
/// the file ("<path>: not a Z85 Curve25519 key", "<path>: does not match
/// curve.key").
result<curve_keypair> load_or_create_keypair(const std::filesystem::path& dir);

/// Whether text (surrounding whitespace ignored) is a 40-character Z85 key
/// that decodes (zmq_z85_decode).
bool valid_curve_key(std::string_view text);

/// The set of public keys a system accepts: each DIR/*.pub file holding one
/// Z85 key (surrounding whitespace ignored); name = the file's stem. A missing
/// dir is an empty set. Unreadable or malformed files, names outside
/// [A-Za-z0-9_.-]+ and a key already listed under another name are listed in
/// problems, one line each naming the file, and skipped (never fatal).
struct trusted_set {
  std::map<std::string, std::string> name_by_key;
  std::vector<std::string> problems;
  /// The name trusted with key (Z85), or nullptr if untrusted.
  [[nodiscard]] const std::string* find(std::string_view key) const;
};
trusted_set read_trusted(const std::filesystem::path& dir);

/// Writes public_key as dir/NAME.pub (write to a temp file, then rename),
/// creating dir. Does nothing when that file already holds the same key.
/// Errors: malformed key, name not [A-Za-z0-9_.-]+, I/O.
status trust_key(const std::filesystem::path& dir, std::string_view name, std::string_view public_key);

/// The ZAP domain of the links between systems.
inline constexpr std::string_view peer_zap_domain = "troupe";
/// The ZAP domain of a worker's tcp inbox for workers of other systems
/// (direct links, docs/PROTOCOL.md §5.13): the keys its supervisor admitted.
inline constexpr std::string_view direct_zap_domain = "troupe-direct";
/// The ZAP domain of a system's sockets for its workers (control, gateway).
inline constexpr std::string_view worker_zap_domain = "troupe-worker";

/// Socket options, set before bind: CURVE server with own keys and ZAP domain
/// `domain` (a domain, with ZMQ_ZAP_ENFORCE_DOMAIN, makes a missing handler
/// refuse clients instead of admitting them). Throws zmq::error_t on a
/// malformed key.
void make_curve_server(zmq::socket_t& s, const curve_keypair& own, std::string_view domain = peer_zap_domain);

/// Socket option for a NULL-mechanism server whose every connection the ZAP
/// handler must see (the local client socket: it checks the peer's uid).
void require_zap(zmq::socket_t& s, std::string_view domain);

/// Socket options, set before connect: CURVE client with own keys, expecting
/// the server's public key. Throws zmq::error_t on a malformed key.
void make_curve_client(zmq::socket_t& s, const curve_keypair& own, std::string_view server_public_key);

/// ZeroMQ's ZAP handler (RFC 27 https://rfc.zeromq.org/spec/27/) for one
/// context: a REP socket bound to inproc://zeromq.zap.01. Bind it BEFORE any
/// CURVE server socket of the context binds (see the top of this file).
///
/// Accepts (status "200", user id = the key's name in the trusted set, seen
/// by the server as the "User-Id" property of the client's messages) a CURVE
/// client whose public key is trusted; refuses ("400") anything else: an
/// untrusted key, or the NULL/PLAIN mechanism, calling on_refused(peer_address,
/// reason) with a one-line reason such as "untrusted key <z85> from 127.0.0.1"
/// or "mechanism NULL refused: only CURVE". (A NULL or PLAIN client of a CURVE
/// server fails earlier, at the greeting, without a ZAP request; the handler
/// sees NULL and PLAIN only from other servers of the context that have a ZAP
/// domain or use PLAIN.) Malformed ZAP requests are answered "500" where
/// possible and never throw.
///
/// The trusted set is obtained from the callback at each request, so a key
/// added to the directory is accepted without a restart, on a new connection:
/// libzmq 4.3 ends a client's session when it is refused ("400") and does not
/// reconnect it, so a refused peer must connect again (its monitor sees
/// ZMQ_EVENT_HANDSHAKE_FAILED_AUTH). on_refused is thus called once per
/// connection attempt.
class zap_authenticator {
 public:
  using trusted_fn = std::function<trusted_set()>;
  using refusal_fn = std::function<void(const std::string& peer_address, const std::string& reason)>;

  /// One connection's request, decoded.
  struct request_info {
    std::string domain;
    std::string address;    ///< "IP" for TCP; "HOST:UID:GID:PID" for ipc (SO_PEERCRED)
    std::string mechanism;  ///< "NULL", "PLAIN" or "CURVE"
    std::string key;        ///< CURVE: the client's public key (Z85); otherwise empty
  };
  struct answer {
    std::string status;  // "200", "400" or "500"
    std::string text;
    std::string user_id;
    std::string refusal;  // passed to on_refused when not empty
  };
  /// Decides one request of a domain; may throw (answered "500", refused).
  using policy_fn = std::function<answer(const request_info&)>;

  /// Binds the handler with no domain: every request is refused until
  /// admit() names its domain. Throws zmq::error_t when the context already
  /// has a handler.
  explicit zap_authenticator(zmq::context_t& ctx);
  /// Binds the handler for the links between systems: domain "troupe" admits
  /// CURVE clients whose key is in trusted() (curve_policy).
  zap_authenticator(zmq::context_t& ctx, trusted_fn trusted, refusal_fn on_refused);

  /// Requests of domain go to policy; on_refused hears its refusals.
  void admit(std::string domain, policy_fn policy, refusal_fn on_refused);
  /// CURVE clients whose key is in trusted() get through with the key's name
  /// as user id; NULL and PLAIN are refused; a trusted set that cannot be
  /// read refuses ("500").
  static policy_fn curve_policy(trusted_fn trusted);

  zmq::socket_t& socket() { return socket_; }

  /// Answers every pending request without blocking; call when socket() is readable.
  void handle_pending();

 private:
  struct domain_entry {
    policy_fn policy;
    refusal_fn on_refused;
  };
  answer decide(const std::vector<zmq::message_t>& request, const domain_entry*& entry);
  bool send_reply(const std::vector<zmq::message_t>& request, const answer& a);

  zmq::socket_t socket_;
  std::map<std::string, domain_entry, std::less<>> domains_;
};

}  // namespace troupe::ipc
