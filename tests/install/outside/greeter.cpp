// An actor type built against the installed SDK: answers a JSON string with a
// greeting (tests/install/run.sh asks it).
#include <troupe/json.hpp>

#include <string>

namespace {

struct greeter final : troupe::actor {
  void receive(troupe::context& ctx, const troupe::message& m) override {
    if (m.is_ask()) troupe::reply_json(ctx, "hello, " + troupe::json_of(m).get<std::string>());
  }
};

}  // namespace

TROUPE_PACKAGE(troupe::actor_type<greeter>("Greeter"))
