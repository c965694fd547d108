// ipc/wire.hpp — encoding of data-plane frames: a signature followed by one or
// more length-prefixed records (docs/PROTOCOL.md §3). Pure functions; safe to
// use from any thread.
#pragma once

#include "ipc/protocol.hpp"

#include <troupe/address.hpp>
#include <troupe/result.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace troupe::ipc {

/// One record; views borrow from the frame it was decoded from.
struct record_view {
  record_kind kind = record_kind::tell;
  std::uint8_t flags = 0;
  address to;
  address from;
  std::uint64_t correlation = 0;
  std::uint64_t seq = 0;
  std::string_view type;
  std::string_view payload;
};

/// Starts a new batch: clears out and writes the data signature.
void begin_batch(std::string& out);

/// Whether a record with this type and payload can be encoded (type at most
/// 65535 bytes, whole record at most max_record_size). Senders check first.
[[nodiscard]] constexpr bool record_fits(std::size_t type_size, std::size_t payload_size) {
  return type_size <= 0xffff && payload_size <= max_record_size - record_header_size - type_size;
}

/// Appends one record to a batch started with begin_batch; r must fit.
void append_record(std::string& out, const record_view& r);

/// Decodes every record of frame, calling on_record(const record_view&) for
/// each in order. Stops at the first malformed record and returns an error
/// naming the offset; records before it have been delivered.
template <class F>
status decode_batch(std::string_view frame, F&& on_record);

/// A poison record's payload: the reason's length (4 bytes, little-endian),
/// the reason, then the returned tell's payload (docs/PROTOCOL.md §3.2).
std::string encode_poison(std::string_view reason, std::string_view payload);
/// Splits a poison payload into reason and payload; error when malformed.
result<std::pair<std::string_view, std::string_view>> decode_poison(std::string_view payload);

/// An ack record acknowledges records first..seq of its channel; first is
/// its payload, 8 bytes little-endian (docs/PROTOCOL.md §3.4).
std::string encode_ack_first(std::uint64_t first);
/// The first seq an ack's payload names; 0 (nothing) when malformed.
std::uint64_t decode_ack_first(std::string_view payload);

namespace detail {
status check_signature(std::string_view frame);
/// Decodes the record at frame[pos]; advances pos. Error on malformed input.
status decode_record(std::string_view frame, std::size_t& pos, record_view& out);
}  // namespace detail

template <class F>
status decode_batch(std::string_view frame, F&& on_record) {
  if (auto s = detail::check_signature(frame); !s) return s;
  std::size_t pos = data_signature.size();
  if (pos == frame.size()) return make_error(errc::protocol, "data frame holds no record");
  record_view r;
  while (pos < frame.size()) {
    if (auto s = detail::decode_record(frame, pos, r); !s) return s;
    on_record(static_cast<const record_view&>(r));
  }
  return ok_v;
}

}  // namespace troupe::ipc
