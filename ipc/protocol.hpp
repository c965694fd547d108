// ipc/protocol.hpp — constants of the troupe wire protocol, version 1.
// The protocol is specified in docs/PROTOCOL.md; change both together.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace troupe::ipc {

inline constexpr std::uint8_t protocol_version = 1;

/// First 4 bytes of every data-plane frame (a batch of records).
inline constexpr std::array<char, 4> data_signature = {'T', 'R', 'D', protocol_version};
/// Frame 0 of every control-plane message.
inline constexpr std::array<char, 4> control_signature = {'T', 'R', 'C', protocol_version};

/// Kinds of data-plane records; same values as troupe_message_kind.
enum class record_kind : std::uint8_t {
  tell = 1,
  ask = 2,
  reply = 3,
  ask_failed = 4,
  exit = 6,  ///< exit request; honoured only from the system's gateway
  dead_letter = 7,
  poison = 8,    ///< a tell returned by a handler that failed on it; payload: reason, then the tell's
  exited = 9,    ///< exit notice of a watched actor; honoured only from the system's gateway
  channel = 16,  ///< opens every batch of a reliable sender: channel id, ack endpoint
  ack = 17,      ///< selective acknowledgement of a channel's records
  moved = 18,    ///< on a direct link: `from` is not hosted at the inbox it was sent to; drop the route
};

/// Fixed part of a record after its length field (docs/PROTOCOL.md §3.2).
inline constexpr std::size_t record_header_size = 1 + 1 + 2 + 8 + 8 + 8 + 8;
/// Largest record accepted; larger frames are malformed.
inline constexpr std::size_t max_record_size = 64u << 20;
/// A sender flushes a batch once it holds this many bytes.
inline constexpr std::size_t batch_flush_bytes = 64u << 10;

/// Serial numbers below this are reserved for system services.
inline constexpr std::uint32_t first_actor_serial = 16;
/// Serial of a system's client gateway (the sender of CLI asks and tells).
inline constexpr std::uint32_t gateway_serial = 1;
/// Addresses a worker may hand out before it asks for a new block.
inline constexpr std::uint32_t address_block_size = 1024;

inline constexpr std::uint16_t default_port = 1900;

}  // namespace troupe::ipc
