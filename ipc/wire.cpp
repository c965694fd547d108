#include "ipc/wire.hpp"

#include <cstring>

namespace troupe::ipc {
namespace {

void put_u16(std::string& out, std::uint16_t v) {
  char b[2] = {static_cast<char>(v >> 8), static_cast<char>(v)};
  out.append(b, 2);
}
void put_u32(std::string& out, std::uint32_t v) {
  char b[4];
  for (int i = 0; i < 4; ++i) b[i] = static_cast<char>(v >> (24 - 8 * i));
  out.append(b, 4);
}
void put_u64(std::string& out, std::uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<char>(v >> (56 - 8 * i));
  out.append(b, 8);
}
std::uint64_t get_be(const char* p, int n) {
  std::uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}
bool known_kind(std::uint8_t k) {
  switch (static_cast<record_kind>(k)) {
    case record_kind::tell:
    case record_kind::ask:
    case record_kind::reply:
    case record_kind::ask_failed:
    case record_kind::exit:
    case record_kind::dead_letter:
    case record_kind::poison:
    case record_kind::exited:
    case record_kind::channel:
    case record_kind::ack:
    case record_kind::moved:
      return true;
  }
  return false;
}

}  // namespace

void begin_batch(std::string& out) { out.assign(data_signature.data(), data_signature.size()); }

void append_record(std::string& out, const record_view& r) {
  const std::size_t len = record_header_size + r.type.size() + r.payload.size();
  out.reserve(out.size() + 4 + len);
  put_u32(out, static_cast<std::uint32_t>(len));
  out.push_back(static_cast<char>(r.kind));
  out.push_back(static_cast<char>(r.flags));
  put_u16(out, static_cast<std::uint16_t>(r.type.size()));
  put_u64(out, r.to.value());
  put_u64(out, r.from.value());
  put_u64(out, r.correlation);
  put_u64(out, r.seq);
  out.append(r.type);
  out.append(r.payload);
}

namespace detail {

status check_signature(std::string_view frame) {
  if (frame.size() < data_signature.size() || std::memcmp(frame.data(), data_signature.data(), 3) != 0)
    return make_error(errc::protocol, "data frame does not start with the TRD signature");
  if (static_cast<std::uint8_t>(frame[3]) != protocol_version)
    return make_error(errc::protocol, "data frame has protocol version " +
                                          std::to_string(static_cast<unsigned char>(frame[3])) + ", expected " +
                                          std::to_string(protocol_version));
  return ok_v;
}

status decode_record(std::string_view frame, std::size_t& pos, record_view& out) {
  auto fail = [&](const char* what) {
    return make_error(errc::protocol, std::string(what) + " at offset " + std::to_string(pos));
  };
  if (frame.size() - pos < 4) return fail("truncated record length");
  const std::size_t len = get_be(frame.data() + pos, 4);
  if (len < record_header_size || len > max_record_size) return fail("record length out of range");
  if (frame.size() - pos - 4 < len) return fail("record longer than its frame");
  const char* p = frame.data() + pos + 4;
  const auto kind = static_cast<std::uint8_t>(p[0]);
  if (!known_kind(kind)) return fail("unknown record kind");
  const std::size_t type_len = get_be(p + 2, 2);
  if (type_len > len - record_header_size) return fail("type longer than its record");
  out.kind = static_cast<record_kind>(kind);
  out.flags = static_cast<std::uint8_t>(p[1]);
  out.to = address(get_be(p + 4, 8));
  out.from = address(get_be(p + 12, 8));
  out.correlation = get_be(p + 20, 8);
  out.seq = get_be(p + 28, 8);
  out.type = std::string_view(p + record_header_size, type_len);
  out.payload = std::string_view(p + record_header_size + type_len, len - record_header_size - type_len);
  pos += 4 + len;
  return ok_v;
}

}  // namespace detail
std::string encode_ack_first(std::uint64_t first) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((first >> (8 * i)) & 0xff);
  return out;
}

std::uint64_t decode_ack_first(std::string_view payload) {
  if (payload.size() != 8) return 0;
  std::uint64_t first = 0;
  for (int i = 0; i < 8; ++i) first |= std::uint64_t(static_cast<unsigned char>(payload[i])) << (8 * i);
  return first;
}

std::string encode_poison(std::string_view reason, std::string_view payload) {
  std::string out;
  out.reserve(4 + reason.size() + payload.size());
  const auto n = static_cast<std::uint32_t>(reason.size());
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  out.append(reason);
  out.append(payload);
  return out;
}

result<std::pair<std::string_view, std::string_view>> decode_poison(std::string_view payload) {
  if (payload.size() < 4) return make_error(errc::protocol, "poison payload shorter than its reason length");
  std::uint32_t n = 0;
  for (int i = 0; i < 4; ++i) n |= std::uint32_t(static_cast<unsigned char>(payload[i])) << (8 * i);
  if (n > payload.size() - 4) return make_error(errc::protocol, "poison reason runs past the payload");
  return std::pair{payload.substr(4, n), payload.substr(4 + n)};
}

}  // namespace troupe::ipc
