#include "supervisor/client_port.hpp"

#include <catch2/catch.hpp>

using troupe::supervisor::peer_uid;

TEST_CASE("peer_uid reads the uid of a local peer's address", "[client_port]") {
  CHECK(peer_uid("localhost:1000:100:4242") == 1000ul);
  CHECK(peer_uid(":0:0:1") == 0ul);
  CHECK(peer_uid("host:with:colons:65534:65534:7") == 65534ul);
  // Not SO_PEERCRED's form: nothing, never a default uid.
  for (const char* bad : {"", "127.0.0.1", "localhost:1000", "localhost:x:100:1", "localhost::100:1",
                          "localhost:99999999999999999999999:0:1", ":::"})
    CHECK_FALSE(peer_uid(bad).has_value());
}
