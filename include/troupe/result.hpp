// troupe/result.hpp — errors as values. result<T> holds a T or an error with a
// category and a message that names the file, field or peer at fault.
// Value types; no thread-safety concerns beyond those of T.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace troupe {

enum class errc {
  invalid_argument,  ///< the caller's input is malformed (bad JSON, bad flag, bad address)
  not_found,         ///< no such actor, package, type, name or system
  protocol,          ///< a peer sent something that breaks docs/PROTOCOL.md
  io,                ///< a file, socket or process operation failed
  timeout,           ///< no answer within the allowed time
  refused,           ///< understood but not allowed (untrusted package, ABI mismatch)
  unavailable,       ///< the system or worker is not running
  internal,          ///< a bug: an impossible state was reached
  limit,             ///< a configured limit was reached (workers, JSON depth, frame size, held requests)
  unknown,           ///< the outcome is unknown: it may or may not have been carried out (do not retry blindly)
  // A new code goes before `unknown`, which stays last (errc_from_string counts up to it).
};

[[nodiscard]] inline const char* to_string(errc c) {
  switch (c) {
    case errc::invalid_argument:
      return "invalid_argument";
    case errc::not_found:
      return "not_found";
    case errc::protocol:
      return "protocol";
    case errc::io:
      return "io";
    case errc::timeout:
      return "timeout";
    case errc::refused:
      return "refused";
    case errc::unavailable:
      return "unavailable";
    case errc::internal:
      return "internal";
    case errc::limit:
      return "limit";
    case errc::unknown:
      return "unknown";
  }
  return "internal";
}

/// The errc whose to_string is text; refused for a name this version does not know.
[[nodiscard]] inline errc errc_from_string(std::string_view text) {
  // Every value, in order: the enumerators are numbered from 0 to errc::unknown, the last.
  for (int i = 0; i <= static_cast<int>(errc::unknown); ++i)
    if (text == to_string(static_cast<errc>(i))) return static_cast<errc>(i);
  return errc::refused;
}

struct error {
  errc code = errc::internal;
  std::string message;
};

[[nodiscard]] inline error make_error(errc code, std::string message) { return error{code, std::move(message)}; }

template <class T>
class [[nodiscard]] result {
 public:
  result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  result(error e) : v_(std::move(e)) {}      // NOLINT

  [[nodiscard]] bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  [[nodiscard]] const error& err() const { return std::get<1>(v_); }

 private:
  std::variant<T, error> v_;
};

/// result<void>: success or an error.
struct ok_t {};
inline constexpr ok_t ok_v{};
using status = result<ok_t>;

}  // namespace troupe
