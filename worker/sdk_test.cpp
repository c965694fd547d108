// Unit tests of the header-only SDK (include/troupe/actor.hpp, json.hpp):
// what package code does on its side of the C boundary. The worker's side is
// exercised by the integration tests with real processes.
#include <troupe/actor.hpp>
#include <troupe/json.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

namespace {

struct recorded_reply {
  std::string type;
  std::string payload;
};

// The host side of one call, recording what the package asked for.
struct host_state {
  std::vector<recorded_reply> replies;
  std::uint64_t next_ask = 41;
  std::string last_error = "host refused";
  std::vector<std::string> watches;  // "watch @X" / "unwatch @X"
};
host_state* state = nullptr;

troupe_address h_self(troupe_context*) { return 0x100000010ULL; }
int h_tell(troupe_context*, troupe_address, const char*, size_t, const uint8_t*, size_t) { return -1; }
uint64_t h_ask(troupe_context*, troupe_address, const char*, size_t, const uint8_t*, size_t, uint32_t) {
  return ++state->next_ask;
}
int h_reply(troupe_context*, const char* t, size_t tl, const uint8_t* p, size_t pl) {
  state->replies.push_back({std::string(t, tl), std::string(reinterpret_cast<const char*>(p), pl)});
  return 0;
}
troupe_address h_spawn(troupe_context*, const char*, size_t, const char*, size_t, const char*, size_t) { return 0; }
int h_stop(troupe_context*, troupe_address) { return 0; }
uint64_t h_schedule(troupe_context*, uint32_t, const char*, size_t, const uint8_t*, size_t) { return 1; }
int h_cancel(troupe_context*, uint64_t) { return 0; }
void h_log(troupe_context*, int, const char*, size_t) {}
troupe_address h_lookup(troupe_context*, const char*, size_t) { return 0; }
const char* h_last_error() { return state->last_error.c_str(); }
int h_reply_to(troupe_context*, troupe_address, uint64_t corr, const char* t, size_t tl, const uint8_t* p, size_t pl) {
  state->replies.push_back(
      {std::string(t, tl) + "#" + std::to_string(corr), std::string(reinterpret_cast<const char*>(p), pl)});
  return 0;
}

int h_watch(troupe_context*, troupe_address target) {
  state->watches.push_back("watch " + troupe::address(target).to_string());
  return 0;
}
int h_unwatch(troupe_context*, troupe_address target) {
  state->watches.push_back("unwatch " + troupe::address(target).to_string());
  return 0;
}

const troupe_host_v1 host = {TROUPE_ABI_VERSION, h_self,   h_tell, h_ask,    h_reply,      h_spawn,    h_stop,
                             h_schedule,         h_cancel, h_log,  h_lookup, h_last_error, h_reply_to, h_watch,
                             h_unwatch};

troupe_message make(troupe_message_kind kind, std::string_view type, std::string_view payload, std::uint64_t corr = 0,
                    std::string_view reason = {}) {
  return troupe_message{static_cast<uint32_t>(kind),
                        0x200000010ULL,
                        corr,
                        type.data(),
                        type.size(),
                        reinterpret_cast<const uint8_t*>(payload.data()),
                        payload.size(),
                        reason.data(),
                        reason.size()};
}

struct asker final : troupe::actor {
  std::string outcome;
  troupe::reply_handle deferred;
  void receive(troupe::context& ctx, const troupe::message& m) override {
    if (m.is_exited()) {
      outcome = m.from().to_string() + " " + std::string(m.type()) + ": " + std::string(m.reason());
      return;
    }
    if (m.type() == "watch") ctx.watch(troupe::address(7));
    if (m.type() == "unwatch") ctx.unwatch(troupe::address(7));
    if (m.type() == "go")
      ctx.ask(troupe::address(7), "q", "{}", std::chrono::milliseconds(100),
              [this](troupe::context&, const troupe::ask_result& r) {
                outcome = r.ok() ? "reply:" + std::string(r.reply().payload()) : "failed:" + std::string(r.error());
              });
    if (m.type() == "boom") throw std::runtime_error("boom in handler");
    if (m.type() == "tell") ctx.tell(troupe::address(7), "x");
    if (m.type() == "later") {
      deferred = m.reply_handle_of();
      return;
    }
    if (m.type() == "now") troupe::reply_later_json(ctx, deferred, "done");
    if (m.is_ask() && m.type() != "now") troupe::reply_json(ctx, troupe::json{{"got", troupe::json_of(m)}});
  }
};

// Selective receive: closed, it stashes work; "open" switches handler and
// takes the stash back; "close" returns to receive().
struct gate final : troupe::actor {
  std::vector<std::string> done;
  void receive(troupe::context&, const troupe::message& m) override {
    if (m.type() == "open") {
      become([this](troupe::context& ctx, const troupe::message& w) { open(ctx, w); });
      unstash_all();
    } else {
      stash(m);
    }
  }
  void open(troupe::context& ctx, const troupe::message& m) {
    if (m.type() == "close") return unbecome();
    if (m.type() == "boom") throw std::runtime_error("boom while open");
    done.push_back(std::string(m.payload()));
    if (m.is_ask()) ctx.reply("done", m.payload());
  }
  std::size_t waiting() const { return stash_size(); }
};

}  // namespace

TROUPE_PACKAGE(troupe::actor_type<asker>("Asker"), troupe::actor_type<gate>("Gate"))

namespace {

/// One actor (an Asker, or the type at index type) created through the
/// package entry, as a worker would.
struct one_actor {
  host_state hs;
  troupe_package_v1 pkg{};
  troupe_error err{};
  void* a = nullptr;
  std::size_t type = 0;

  explicit one_actor(std::size_t type_index = 0) : type(type_index) {
    state = &hs;
    REQUIRE(troupe_package_entry_v1(TROUPE_ABI_VERSION, &host, &pkg, &err) == 0);
    a = pkg.types[type].create(nullptr, &err);
    REQUIRE(a != nullptr);
  }
  ~one_actor() { pkg.types[type].destroy(a); }
  int handle(const troupe_message& m) { return pkg.types[type].handle(a, nullptr, &m, &err); }
  asker& actor() { return *static_cast<asker*>(a); }
  gate& the_gate() { return *static_cast<gate*>(a); }
};

}  // namespace

TEST_CASE("the package entry refuses another ABI version and lists its types", "[sdk]") {
  troupe_package_v1 pkg{};
  troupe_error err{};
  CHECK(troupe_package_entry_v1(TROUPE_ABI_VERSION + 1, &host, &pkg, &err) != 0);
  CHECK_THAT(std::string(err.text), Catch::Contains("ABI"));
  REQUIRE(troupe_package_entry_v1(TROUPE_ABI_VERSION, &host, &pkg, &err) == 0);
  CHECK(pkg.abi_version == TROUPE_ABI_VERSION);
  REQUIRE(pkg.type_count == 2);
  CHECK(std::string(pkg.types[0].name) == "Asker");
  CHECK(std::string(pkg.types[1].name) == "Gate");
}

TEST_CASE("a reply reaches the continuation of the ask that caused it, once", "[sdk]") {
  one_actor t;
  REQUIRE(t.handle(make(TROUPE_MSG_TELL, "go", "")) == 0);
  const auto reply = make(TROUPE_MSG_REPLY, "json", "\"pong\"", 42);
  REQUIRE(t.handle(reply) == 0);
  CHECK(t.actor().outcome == "reply:\"pong\"");
  // A late duplicate (after a timeout, say) is ignored.
  t.actor().outcome.clear();
  REQUIRE(t.handle(reply) == 0);
  CHECK(t.actor().outcome.empty());
}

TEST_CASE("a failed ask gives its continuation the reason", "[sdk]") {
  one_actor t;
  REQUIRE(t.handle(make(TROUPE_MSG_TELL, "go", "")) == 0);
  REQUIRE(t.handle(make(TROUPE_MSG_ASK_FAILED, "timeout", "ask to @00000000.7 timed out", 42)) == 0);
  CHECK(t.actor().outcome == "failed:ask to @00000000.7 timed out");
}

TEST_CASE("exceptions never cross the C boundary: they become an error code and text", "[sdk]") {
  one_actor t;
  CHECK(t.handle(make(TROUPE_MSG_TELL, "boom", "")) != 0);
  CHECK(std::string(t.err.text) == "boom in handler");
  // A host refusal surfaces as an exception in C++ and as an error in C.
  CHECK(t.handle(make(TROUPE_MSG_TELL, "tell", "")) != 0);
  CHECK(std::string(t.err.text) == "host refused");
  // A payload that is not JSON fails the handler with a message naming the type.
  CHECK(t.handle(make(TROUPE_MSG_ASK, "doc", "{nope")) != 0);
  CHECK_THAT(std::string(t.err.text), Catch::Contains("'doc'") && Catch::Contains("not valid JSON"));
}

TEST_CASE("JSON helpers parse payloads and reply with serialised JSON", "[sdk][json]") {
  CHECK(troupe::parse_json("{\"a\":1}")->at("a") == 1);
  CHECK(troupe::parse_json("\"s\"")->get<std::string>() == "s");
  CHECK_FALSE(troupe::parse_json("{").has_value());
  CHECK_FALSE(troupe::parse_json("").has_value());
  CHECK(troupe::to_payload(troupe::json{{"k", {1, 2}}}) == "{\"k\":[1,2]}");

  one_actor t;
  REQUIRE(t.handle(make(TROUPE_MSG_ASK, "json", "[1,\"two\"]", 9)) == 0);
  REQUIRE(t.hs.replies.size() == 1);
  CHECK(t.hs.replies[0].type == "json");
  CHECK(troupe::json::parse(t.hs.replies[0].payload) == troupe::json{{"got", {1, "two"}}});
}

TEST_CASE("addresses print and parse in the @system.serial form", "[sdk][address]") {
  troupe::address a(0x3fa9c012u, 17u);
  CHECK(a.to_string() == "@3fa9c012.17");
  CHECK(troupe::address::parse("@3fa9c012.17") == a);
  CHECK_FALSE(troupe::address::parse("morse").has_value());
}

TEST_CASE("an ask can be answered after its handler returned, through its reply handle", "[sdk]") {
  one_actor t;
  REQUIRE(t.handle(make(TROUPE_MSG_ASK, "later", "", 77)) == 0);
  CHECK(t.hs.replies.empty());
  REQUIRE(t.handle(make(TROUPE_MSG_ASK, "now", "", 78)) == 0);
  REQUIRE(t.hs.replies.size() == 1);
  CHECK(t.hs.replies[0].type == "json#77");
  CHECK(t.hs.replies[0].payload == "\"done\"");
}

TEST_CASE("watch and unwatch reach the host; an exit notice names the watched actor and why", "[sdk][watch]") {
  one_actor t;
  REQUIRE(t.handle(make(TROUPE_MSG_TELL, "watch", "")) == 0);
  REQUIRE(t.handle(make(TROUPE_MSG_TELL, "unwatch", "")) == 0);
  CHECK(t.hs.watches == std::vector<std::string>{"watch @00000000.7", "unwatch @00000000.7"});
  REQUIRE(t.handle(make(TROUPE_MSG_EXITED, "restarted", "", 0, "worker killed by SIGKILL")) == 0);
  CHECK(t.actor().outcome == "@00000002.16 restarted: worker killed by SIGKILL");
}

TEST_CASE("stashed messages come back in order once the actor becomes able to handle them", "[sdk][stash]") {
  one_actor t(1);
  REQUIRE(t.handle(make(TROUPE_MSG_TELL, "work", "1")) == 0);
  REQUIRE(t.handle(make(TROUPE_MSG_ASK, "work", "2", 90)) == 0);
  REQUIRE(t.handle(make(TROUPE_MSG_TELL, "work", "3")) == 0);
  CHECK(t.the_gate().done.empty());
  CHECK(t.the_gate().waiting() == 3);
  CHECK(t.hs.replies.empty());

  // "open": the stash is handled after the handler, oldest first, by the new
  // handler; the stashed ask is answered to its asker.
  REQUIRE(t.handle(make(TROUPE_MSG_TELL, "open", "")) == 0);
  CHECK(t.the_gate().done == std::vector<std::string>{"1", "2", "3"});
  CHECK(t.the_gate().waiting() == 0);
  REQUIRE(t.hs.replies.size() == 1);
  CHECK(t.hs.replies[0].type == "done#90");  // reply_to the stashed ask's asker and id
  CHECK(t.hs.replies[0].payload == "2");

  // Open, a new ask is answered the usual way.
  REQUIRE(t.handle(make(TROUPE_MSG_ASK, "work", "4", 91)) == 0);
  REQUIRE(t.hs.replies.size() == 2);
  CHECK(t.hs.replies[1].type == "done");

  // "close" returns to receive(): stashing again.
  REQUIRE(t.handle(make(TROUPE_MSG_TELL, "close", "")) == 0);
  REQUIRE(t.handle(make(TROUPE_MSG_TELL, "work", "5")) == 0);
  CHECK(t.the_gate().waiting() == 1);
  CHECK(t.the_gate().done.size() == 4);
}

TEST_CASE("a handler that throws while the stash is replayed fails the actor like any handler", "[sdk][stash]") {
  one_actor t(1);
  REQUIRE(t.handle(make(TROUPE_MSG_TELL, "boom", "")) == 0);
  REQUIRE(t.handle(make(TROUPE_MSG_TELL, "work", "after")) == 0);
  CHECK(t.handle(make(TROUPE_MSG_TELL, "open", "")) == 1);
  CHECK(std::string(t.err.text) == "boom while open");
}
