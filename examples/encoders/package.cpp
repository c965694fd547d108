// examples/encoders/package.cpp — the encoders package: three actor types that
// answer an ask carrying a JSON string with that string encoded.
//
//   ask  Morse  "SOS"      → "... --- ..."
//   ask  Base64 "foo"      → "Zm9v"
//   ask  Rot13  "Hello"    → "Uryyb"
//   ask  any    42         → {"error": "expected a JSON string"}
//
// A tell is logged and otherwise ignored. The actors keep no state, so a
// restart of the worker loses nothing.
//
// Asker asks another actor of any runtime and answers with its reply, as the
// Relay of examples/encoders-py does in Python (the demo has each ask the
// other's encoders; not named Relay: tests load this package beside the relay
// fixture and spawn its Relay by type):
//
//   ask  Asker  {"via": "@3fa9c012.17" or "morse", "payload": "SOS"}
//               → {"answer": <the reply>, "from_version": "cpp"}
//                 or {"error": <why the ask failed>, "from_version": "cpp"}
#include "encoders.hpp"

#include <troupe/actor.hpp>
#include <troupe/json.hpp>

#include <chrono>
#include <string>
#include <string_view>

namespace {

using encode_fn = std::string (*)(std::string_view);

/// Shared handler: Encode turns the asked string into the answer.
template <encode_fn Encode>
class encoder_actor : public troupe::actor {
 public:
  void receive(troupe::context& ctx, const troupe::message& msg) override {
    switch (msg.kind()) {
      case TROUPE_MSG_ASK:
        answer(ctx, msg);
        return;
      case TROUPE_MSG_TELL:
        // The payload is the client's: in the log at debug level only.
        ctx.log_info("ignoring tell '" + std::string(msg.type()) + "' (" + std::to_string(msg.payload().size()) +
                     " bytes)");
        ctx.log_debug("ignored tell's payload: " + std::string(msg.payload()));
        return;
      default:
        return;  // no timers are scheduled and no tells are sent: nothing to do
    }
  }

 private:
  static void answer(troupe::context& ctx, const troupe::message& msg) {
    // Bad input from a caller is answered, never turned into an actor failure:
    // parse_json rather than json_of, which throws on text that is not JSON.
    auto in = troupe::parse_json(msg.payload());
    if (!in || !in->is_string()) {
      troupe::reply_json(ctx, troupe::json{{"error", "expected a JSON string"}});
      return;
    }
    troupe::reply_json(ctx, Encode(in->get_ref<const std::string&>()));
  }
};

class asker_actor final : public troupe::actor {
 public:
  void receive(troupe::context& ctx, const troupe::message& msg) override {
    if (!msg.is_ask()) return;
    auto in = troupe::parse_json(msg.payload());
    if (!in || !in->is_object() || !in->contains("via") || !(*in)["via"].is_string()) {
      troupe::reply_json(ctx, troupe::json{{"error", R"(expected {"via": address or name, "payload": value})"}});
      return;
    }
    const auto via = (*in)["via"].get<std::string>();
    troupe::address to;
    if (auto a = troupe::address::parse(via))
      to = *a;
    else
      to = ctx.lookup(via);
    if (!to.valid()) {
      troupe::reply_json(ctx, troupe::json{{"error", "no actor is named " + via}, {"from_version", "cpp"}});
      return;
    }
    // Answered from the continuation, once the other actor has replied.
    ctx.ask(to, troupe::json_type, troupe::to_payload(in->value("payload", troupe::json())), std::chrono::seconds(5),
            [h = msg.reply_handle_of()](troupe::context& c, const troupe::ask_result& r) {
              troupe::json out{{"from_version", "cpp"}};
              if (r.ok()) {
                auto answer = troupe::parse_json(r.reply().payload());
                out["answer"] = answer ? *answer : troupe::json(std::string(r.reply().payload()));
              } else {
                out["error"] = std::string(r.error());
              }
              troupe::reply_later_json(c, h, out);
            });
  }
};

class morse_actor final : public encoder_actor<&encoders::to_morse> {};
class base64_actor final : public encoder_actor<&encoders::to_base64> {};
class rot13_actor final : public encoder_actor<&encoders::to_rot13> {};

}  // namespace

TROUPE_PACKAGE(troupe::actor_type<morse_actor>("Morse"), troupe::actor_type<base64_actor>("Base64"),
               troupe::actor_type<rot13_actor>("Rot13"), troupe::actor_type<asker_actor>("Asker"))
