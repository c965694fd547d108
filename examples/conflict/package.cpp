// examples/conflict/package.cpp — the conflict package: one actor type, Codec,
// that reports which libcodec its process loaded.
//
//   ask  Codec  {"text": "abc"}   → {"codec": "1.2", "encoded": "cba"}         (codec 1.2)
//                                 → {"codec": "1.5", "encoded": "[1.5] ABC"}   (codec 1.5)
//   ask  Codec  42                → {"codec": "1.2"}
//   ask  Codec  not JSON          → {"codec": "1.2", "error": "payload is not valid JSON"}
//
// The package is built once and linked against libcodec.so.1; which codec it
// runs is decided by the libcodec.so.1 found next to it at load time (RUNPATH
// $ORIGIN:$ORIGIN/lib). Version 1.0.0 bundles codec 1.2, version 2.0.0 codec
// 1.5. See README.md and one_process_test.cpp for why they need two workers.
#include "codec/codec.h"

#include <troupe/actor.hpp>
#include <troupe/json.hpp>

#include <string>

namespace {

std::string encode(const std::string& text) {
  std::string out(codec_encode(text.c_str(), nullptr, 0), '\0');
  // out_size + 1: codec's NUL lands on the one std::string keeps at out[size()].
  codec_encode(text.c_str(), out.data(), out.size() + 1);
  return out;
}

class codec_actor final : public troupe::actor {
 public:
  void receive(troupe::context& ctx, const troupe::message& msg) override {
    if (!msg.is_ask()) return;  // tells, timers and dead letters carry nothing to answer
    troupe::json answer{{"codec", codec_version()}};
    // Bad input is answered, never turned into an actor failure.
    auto in = troupe::parse_json(msg.payload());
    if (!in) {
      answer["error"] = "payload is not valid JSON";
    } else if (auto text = in->find("text"); text != in->end() && text->is_string()) {
      answer["encoded"] = encode(text->get<std::string>());
    }
    // libcodec is foreign code: replace invalid UTF-8 rather than throw on it.
    ctx.reply(troupe::json_type, answer.dump(-1, ' ', false, troupe::json::error_handler_t::replace));
  }
};

}  // namespace

/// What codec_version() answers in this process, for tests that load the
/// package library without a worker. Static storage, owned by libcodec.
extern "C" __attribute__((visibility("default"))) const char* conflict_codec_version(void) { return codec_version(); }

TROUPE_PACKAGE(troupe::actor_type<codec_actor>("Codec"))
