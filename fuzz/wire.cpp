// fuzz/wire.cpp — data-plane frames (ipc/wire.hpp) as gateway, data_relay and
// the worker runtime read them: decode_batch over the whole input, and for
// each record the payload decoders (poison, ack). Every record delivered must
// encode back to the very bytes it was decoded from.

#include "ipc/wire.hpp"
#include "fuzz/common.hpp"

#include <cstdint>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace troupe;
  using fuzz::expect;
  const std::string_view frame(reinterpret_cast<const char*>(data), size);
  std::string again;
  ipc::begin_batch(again);
  std::size_t records = 0;
  (void)ipc::decode_batch(frame, [&](const ipc::record_view& r) {
    ++records;
    if (r.kind == ipc::record_kind::poison) {
      if (auto p = ipc::decode_poison(r.payload)) {
        expect(p->first.data() >= r.payload.data() &&
                   p->second.data() + p->second.size() == r.payload.data() + r.payload.size(),
               "poison parts lie inside the payload");
        expect(ipc::encode_poison(p->first, p->second) == r.payload, "poison payload round-trips");
      }
    }
    if (r.kind == ipc::record_kind::ack) (void)ipc::decode_ack_first(r.payload);
    expect(ipc::record_fits(r.type.size(), r.payload.size()), "a decoded record fits");
    ipc::append_record(again, r);
  });
  if (records > 0) expect(frame.substr(0, again.size()) == again, "decoded records encode to the same bytes");
  return 0;
}
