// Tests of the data-plane batch codec (docs/PROTOCOL.md §3): golden bytes,
// round trips, and every malformed input the decoder must refuse.
#include "ipc/wire.hpp"

#include <catch2/catch.hpp>

#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

using namespace std::string_literals;
using troupe::address;
using troupe::errc;
using namespace troupe::ipc;

namespace {

/// A decoded record with its views copied out of the frame.
struct owned_record {
  record_kind kind = record_kind::tell;
  std::uint8_t flags = 0;
  address to;
  address from;
  std::uint64_t correlation = 0;
  std::uint64_t seq = 0;
  std::string type;
  std::string payload;
};

owned_record own(const record_view& r) {
  return {r.kind, r.flags, r.to, r.from, r.correlation, r.seq, std::string(r.type), std::string(r.payload)};
}

struct decoded {
  troupe::status status = troupe::ok_v;
  std::vector<owned_record> records;
};

decoded decode(std::string_view frame) {
  decoded d;
  d.status = decode_batch(frame, [&](const record_view& r) { d.records.push_back(own(r)); });
  return d;
}

std::string one_record_batch(const record_view& r) {
  std::string out;
  begin_batch(out);
  append_record(out, r);
  return out;
}

record_view sample_tell() {
  record_view r;
  r.kind = record_kind::tell;
  r.flags = 0x02;
  r.to = address(0x3fa9c012u, 17u);
  r.from = address(0x00000001u, 1u);
  r.correlation = 0x0102030405060708u;
  r.seq = 42;
  r.type = "ping";
  r.payload = "hi";
  return r;
}

// The bytes of sample_tell() in a batch of its own, written out by hand from
// docs/PROTOCOL.md §3.2. Each piece is a separate literal so that a hex escape
// never swallows the character after it.
const std::string golden_tell =
    "TRD\x01"                           // signature, version 1
    "\x00\x00\x00\x2a"                  // length 42 = 36 + 4 + 2, big-endian
    "\x01"                              // kind: tell
    "\x02"                              // flags
    "\x00\x04"                          // type_len 4
    "\x3f\xa9\xc0\x12\x00\x00\x00\x11"  // to   @3fa9c012.17
    "\x00\x00\x00\x01\x00\x00\x00\x01"  // from @00000001.1
    "\x01\x02\x03\x04\x05\x06\x07\x08"  // correlation
    "\x00\x00\x00\x00\x00\x00\x00\x2a"  // seq 42
    "ping"                              // type
    "hi"s;                              // payload

/// Writes a big-endian u32 at out[pos].
void poke_u32(std::string& out, std::size_t pos, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out[pos + static_cast<std::size_t>(i)] = static_cast<char>(v >> (24 - 8 * i));
}
/// Writes a big-endian u16 at out[pos].
void poke_u16(std::string& out, std::size_t pos, std::uint16_t v) {
  out[pos] = static_cast<char>(v >> 8);
  out[pos + 1] = static_cast<char>(v);
}

// Offsets inside a batch holding one record.
constexpr std::size_t length_at = 4;
constexpr std::size_t kind_at = 8;
constexpr std::size_t type_len_at = 10;

void require_protocol_error(const decoded& d) {
  REQUIRE_FALSE(d.status.ok());
  CHECK(d.status.err().code == errc::protocol);
  CHECK_FALSE(d.status.err().message.empty());
}

}  // namespace

TEST_CASE("the record header size matches the fields listed in the protocol", "[wire]") {
  CHECK(record_header_size == 36);
  CHECK(std::string_view(data_signature.data(), data_signature.size()) == "TRD\x01"s);
}

TEST_CASE("a tell record encodes to the bytes documented in the protocol", "[wire]") {
  const std::string out = one_record_batch(sample_tell());
  CHECK(out.size() == 4 + 4 + 42);
  CHECK(out == golden_tell);
}

TEST_CASE("the documented bytes of a tell record decode to its fields", "[wire]") {
  const auto d = decode(golden_tell);
  REQUIRE(d.status.ok());
  REQUIRE(d.records.size() == 1);
  const auto& r = d.records[0];
  CHECK(r.kind == record_kind::tell);
  CHECK(r.flags == 0x02);
  CHECK(r.to == address(0x3fa9c012u, 17u));
  CHECK(r.from == address(0x00000001u, 1u));
  CHECK(r.correlation == 0x0102030405060708u);
  CHECK(r.seq == 42);
  CHECK(r.type == "ping");
  CHECK(r.payload == "hi");
}

TEST_CASE("begin_batch discards whatever the buffer held", "[wire]") {
  std::string out = "left over from the previous batch";
  begin_batch(out);
  CHECK(out == "TRD\x01"s);
}

TEST_CASE("several records of every kind survive a round trip in one batch", "[wire]") {
  const record_kind kinds[] = {record_kind::tell, record_kind::ask, record_kind::reply, record_kind::ask_failed,
                               record_kind::dead_letter};
  std::vector<std::string> payloads;
  std::vector<std::string> types;
  std::string out;
  begin_batch(out);
  for (std::uint64_t i = 0; i < 25; ++i) {
    types.push_back("type." + std::to_string(i));
    // Binary payloads with NUL bytes, of growing size.
    payloads.emplace_back(static_cast<std::size_t>(i * 37), static_cast<char>(i));
    record_view r;
    r.kind = kinds[i % 5];
    r.flags = static_cast<std::uint8_t>(0xff - i);
    r.to = address(0xdeadbeefu, static_cast<std::uint32_t>(16 + i));
    r.from = address(0xffffffffu, 0xffffffffu - static_cast<std::uint32_t>(i));
    r.correlation = ~i;
    r.seq = i << 40;
    r.type = types.back();
    r.payload = payloads.back();
    append_record(out, r);
  }
  const auto d = decode(out);
  REQUIRE(d.status.ok());
  REQUIRE(d.records.size() == 25);
  for (std::uint64_t i = 0; i < 25; ++i) {
    const auto& r = d.records[i];
    INFO("record " << i);
    CHECK(r.kind == kinds[i % 5]);
    CHECK(r.flags == 0xff - i);
    CHECK(r.to == address(0xdeadbeefu, static_cast<std::uint32_t>(16 + i)));
    CHECK(r.from == address(0xffffffffu, 0xffffffffu - static_cast<std::uint32_t>(i)));
    CHECK(r.correlation == ~i);
    CHECK(r.seq == i << 40);
    CHECK(r.type == types[i]);
    CHECK(r.payload == payloads[i]);
  }
}

TEST_CASE("a record with an empty type and an empty payload round-trips", "[wire]") {
  record_view r;
  r.kind = record_kind::dead_letter;
  r.to = address(7u, 16u);
  const std::string out = one_record_batch(r);
  CHECK(out.size() == 4 + 4 + record_header_size);
  const auto d = decode(out);
  REQUIRE(d.status.ok());
  REQUIRE(d.records.size() == 1);
  CHECK(d.records[0].kind == record_kind::dead_letter);
  CHECK(d.records[0].to == address(7u, 16u));
  CHECK(d.records[0].type.empty());
  CHECK(d.records[0].payload.empty());
}

TEST_CASE("a record with a type but no payload keeps them apart", "[wire]") {
  auto r = sample_tell();
  r.payload = {};
  const auto d = decode(one_record_batch(r));
  REQUIRE(d.status.ok());
  REQUIRE(d.records.size() == 1);
  CHECK(d.records[0].type == "ping");
  CHECK(d.records[0].payload.empty());
}

TEST_CASE("a record of exactly max_record_size is accepted", "[wire]") {
  const std::string payload(max_record_size - record_header_size - 4, 'x');
  auto r = sample_tell();
  r.payload = payload;
  const auto d = decode(one_record_batch(r));
  REQUIRE(d.status.ok());
  REQUIRE(d.records.size() == 1);
  CHECK(d.records[0].payload.size() == payload.size());
}

TEST_CASE("a frame with the wrong signature is refused", "[wire]") {
  std::string out = golden_tell;
  out[2] = 'X';
  const auto d = decode(out);
  require_protocol_error(d);
  CHECK(d.records.empty());
}

TEST_CASE("a frame with another protocol version is refused", "[wire]") {
  for (char version : {'\x00', '\x02', '\xff'}) {
    std::string out = golden_tell;
    out[3] = version;
    const auto d = decode(out);
    require_protocol_error(d);
    CHECK(d.records.empty());
  }
}

TEST_CASE("frames shorter than the signature are refused", "[wire]") {
  for (std::size_t n = 0; n < 4; ++n) {
    INFO("length " << n);
    require_protocol_error(decode(golden_tell.substr(0, n)));
  }
}

TEST_CASE("a frame holding only the signature is refused", "[wire]") {
  const auto d = decode("TRD\x01"s);
  require_protocol_error(d);
  CHECK(d.records.empty());
}

TEST_CASE("a frame whose record length is truncated is refused", "[wire]") {
  for (std::size_t extra = 1; extra < 4; ++extra) {
    INFO(extra << " bytes of length");
    const auto d = decode(golden_tell.substr(0, 4 + extra));
    require_protocol_error(d);
    CHECK(d.status.err().message.find("offset 4") != std::string::npos);
  }
}

TEST_CASE("a record length smaller than the record header is refused", "[wire]") {
  for (std::uint32_t len : {0u, 1u, static_cast<std::uint32_t>(record_header_size - 1)}) {
    INFO("length " << len);
    std::string out = golden_tell;
    poke_u32(out, length_at, len);
    const auto d = decode(out);
    require_protocol_error(d);
    CHECK(d.records.empty());
  }
}

TEST_CASE("a record length larger than the frame is refused", "[wire]") {
  std::string out = golden_tell;
  poke_u32(out, length_at, 43);
  require_protocol_error(decode(out));
  // The whole record cut short by one byte.
  require_protocol_error(decode(golden_tell.substr(0, golden_tell.size() - 1)));
  // Only part of the header present.
  require_protocol_error(decode(golden_tell.substr(0, 8 + 10)));
}

TEST_CASE("a type length larger than its record is refused", "[wire]") {
  // 6 bytes follow the header: "ping" + "hi". A type of 6 is fine, 7 is not.
  std::string out = golden_tell;
  poke_u16(out, type_len_at, 6);
  auto fine = decode(out);
  REQUIRE(fine.status.ok());
  CHECK(fine.records[0].type == "pinghi");
  CHECK(fine.records[0].payload.empty());

  for (std::uint16_t type_len : {std::uint16_t{7}, std::uint16_t{0xffff}}) {
    INFO("type_len " << type_len);
    poke_u16(out, type_len_at, type_len);
    const auto d = decode(out);
    require_protocol_error(d);
    CHECK(d.records.empty());
  }
}

TEST_CASE("a record of an unknown kind is refused", "[wire]") {
  for (int kind : {0, 5, 10, 0x7f, 0xff}) {  // 6 is exit (from the system gateway)
    INFO("kind " << kind);
    std::string out = golden_tell;
    out[kind_at] = static_cast<char>(kind);
    const auto d = decode(out);
    require_protocol_error(d);
    CHECK(d.records.empty());
  }
}

TEST_CASE("a record longer than max_record_size is refused before it is read", "[wire]") {
  std::string out = golden_tell;
  poke_u32(out, length_at, static_cast<std::uint32_t>(max_record_size + 1));
  const auto d = decode(out);
  require_protocol_error(d);
  CHECK(d.status.err().message.find("out of range") != std::string::npos);
  poke_u32(out, length_at, 0xffffffffu);
  require_protocol_error(decode(out));
}

TEST_CASE("records before a malformed one are still delivered", "[wire]") {
  std::string out;
  begin_batch(out);
  auto r = sample_tell();
  r.seq = 1;
  append_record(out, r);
  r.seq = 2;
  append_record(out, r);
  const std::size_t bad_at = out.size();

  SECTION("trailing bytes too short for a length") { out += "\x00\x00"s; }
  SECTION("a third record of an unknown kind") {
    r.seq = 3;
    append_record(out, r);
    out[bad_at + 4] = '\x63';  // 99: no such kind
  }
  SECTION("a third record cut short") {
    r.seq = 3;
    append_record(out, r);
    out.pop_back();
  }

  const auto d = decode(out);
  require_protocol_error(d);
  CHECK(d.status.err().message.find("offset " + std::to_string(bad_at)) != std::string::npos);
  REQUIRE(d.records.size() == 2);
  CHECK(d.records[0].seq == 1);
  CHECK(d.records[1].seq == 2);
}

TEST_CASE("random mutations of a valid batch never make the decoder read outside the frame", "[wire]") {
  std::string valid;
  begin_batch(valid);
  const std::string big_payload(300, '\xab');
  for (std::uint64_t i = 0; i < 6; ++i) {
    auto r = sample_tell();
    r.kind = i % 2 ? record_kind::ask : record_kind::reply;
    r.seq = i;
    r.type = i % 3 ? std::string_view("troupe.example.counter") : std::string_view();
    r.payload = std::string_view(big_payload).substr(0, i * 50);
    append_record(valid, r);
  }

  std::mt19937 rng(20231123);
  auto pick = [&](std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng); };
  std::size_t accepted = 0;
  std::size_t records_seen = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string mutated = valid;
    const int edits = 1 + static_cast<int>(pick(4));
    for (int e = 0; e < edits && !mutated.empty(); ++e) {
      switch (pick(5)) {
        case 0:  // flip a random byte
          mutated[pick(mutated.size())] = static_cast<char>(pick(256));
          break;
        case 1:  // truncate
          mutated.resize(pick(mutated.size() + 1));
          break;
        case 2:  // poke a length-sized value somewhere, biased towards small numbers
          if (mutated.size() >= 4)
            poke_u32(mutated, pick(mutated.size() - 3), static_cast<std::uint32_t>(pick(2) ? pick(600) : rng()));
          break;
        case 3:  // insert random bytes
          mutated.insert(pick(mutated.size() + 1), std::string(1 + pick(8), static_cast<char>(pick(256))));
          break;
        default:  // erase a run of bytes
          mutated.erase(pick(mutated.size()), 1 + pick(16));
          break;
      }
    }
    // An exact-size heap copy, so a read past the end would leave the allocation.
    const std::size_t n = mutated.size();
    auto buf = std::make_unique<char[]>(n == 0 ? 1 : n);
    if (n != 0) std::memcpy(buf.get(), mutated.data(), n);
    const char* begin = buf.get();
    const char* end = begin + n;
    const std::string_view frame(begin, n);

    bool inside = true;
    auto within = [&](std::string_view v) {
      return v.data() >= begin && v.data() <= end && v.size() <= static_cast<std::size_t>(end - v.data());
    };
    const auto s = decode_batch(frame, [&](const record_view& r) {
      ++records_seen;
      if (!within(r.type) || !within(r.payload)) inside = false;
      // The payload follows the type directly.
      if (r.type.data() + r.type.size() != r.payload.data()) inside = false;
    });
    if (!inside) FAIL("a decoded view lies outside its frame in round " << round);
    if (s.ok())
      ++accepted;
    else if (s.err().code != errc::protocol)
      FAIL("unexpected error category in round " << round);
  }
  // The loop exercised both outcomes.
  CHECK(accepted > 0);
  CHECK(accepted < 20000);
  CHECK(records_seen > 0);
}
