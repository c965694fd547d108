// examples/pipeline/package.cpp — a fault-tolerant pipeline in three actor
// types, each in a worker of its own (manifest: isolation dedicated):
//
//   client ──ask "emit"──▶ Source ──tell "item"──▶ Transform ──tell "item"──▶ Sink
//
//   Source     ask "emit" {"from":N,"count":K} → tells pipeline.transform K items
//              {"n":N}..{"n":N+K-1}, then replies {"emitted":K}
//   Transform  tell "item" {"n":i} → tells pipeline.sink {"n":i,"square":i*i}
//   Sink       tell "item" → appends n to its ledger (sink_ledger.hpp);
//              ask "stats" → {"distinct","duplicates","missing_below","max","malformed"}
//
// Stages find each other by global name (ctx.lookup): names, like addresses,
// survive restarts. A stage whose tell comes back as a POISON notice (its
// receiver's worker died while handling it: a random crash, not the item's
// fault) sends it again. A client whose "emit" fails with "poison: ..." asks
// for the same range again. Delivery is at least once, so the Sink counts
// duplicates; its ledger is a file, so what it counted outlives its worker.
#include "sink_ledger.hpp"

#include <troupe/actor.hpp>
#include <troupe/json.hpp>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace {

using troupe::json;

constexpr std::string_view item_type = "item";
constexpr std::string_view transform_name = "pipeline.transform";
constexpr std::string_view sink_name = "pipeline.sink";

/// The downstream stage by global name; throws (failing the handler, so an
/// ask gets the reason) when it was never spawned.
troupe::address downstream(troupe::context& ctx, std::string_view name) {
  const troupe::address a = ctx.lookup(name);
  if (!a) throw std::runtime_error("no actor named '" + std::string(name) + "' (spawn it first)");
  return a;
}

/// What every stage does with the notices about its own tells.
void on_notice(troupe::context& ctx, const troupe::message& m, std::string_view next) {
  if (m.is_poison()) {
    // Not the item's fault: its receiver was killed while handling it.
    ctx.log_warn("resending " + std::string(m.payload()) + " to " + std::string(next) +
                 ": its worker died handling it (" + std::string(m.reason()) + ")");
    ctx.tell(downstream(ctx, next), m.type(), m.payload());
  } else if (m.kind() == TROUPE_MSG_DEAD_LETTER) {
    // Undeliverable (the stage failed, or was killed by the operator):
    // resending would only loop.
    ctx.log_warn("dead letter for " + std::string(next) + ": " + std::string(m.payload()));
  }
}

/// The number of an item, or nullopt for a payload that is not one.
std::optional<std::uint64_t> item_number(const json& j) {
  if (!j.is_object()) return std::nullopt;
  auto n = j.find("n");
  if (n == j.end() || !n->is_number_unsigned()) return std::nullopt;
  return n->get<std::uint64_t>();
}

class source final : public troupe::actor {
 public:
  void receive(troupe::context& ctx, const troupe::message& m) override {
    if (m.is_ask() && m.type() == "emit") return emit(ctx, m);
    if (m.is_ask()) return troupe::reply_json(ctx, json{{"error", "Source answers 'emit' only"}});
    on_notice(ctx, m, transform_name);
  }

 private:
  static void emit(troupe::context& ctx, const troupe::message& m) {
    auto req = troupe::parse_json(m.payload());
    if (!req || !req->is_object() || !(*req)["from"].is_number_unsigned() || !(*req)["count"].is_number_unsigned())
      return troupe::reply_json(ctx, json{{"error", R"(expected {"from": N, "count": K})"}});
    const auto from = (*req)["from"].get<std::uint64_t>();
    const auto count = (*req)["count"].get<std::uint64_t>();
    const troupe::address next = downstream(ctx, transform_name);
    for (std::uint64_t n = from; n < from + count; ++n) ctx.tell(next, item_type, troupe::to_payload(json{{"n", n}}));
    troupe::reply_json(ctx, json{{"emitted", count}});
  }
};

class transform final : public troupe::actor {
 public:
  void receive(troupe::context& ctx, const troupe::message& m) override {
    if (m.kind() != TROUPE_MSG_TELL) return on_notice(ctx, m, sink_name);
    if (m.type() != item_type) return;
    auto n = item_number(troupe::parse_json(m.payload()).value_or(json()));
    if (!n) return ctx.log_warn("not an item: " + std::string(m.payload()));
    ctx.tell(downstream(ctx, sink_name), item_type, troupe::to_payload(json{{"n", *n}, {"square", *n * *n}}));
  }
};

class sink final : public troupe::actor {
 public:
  void on_start(troupe::context& ctx) override {
    // The address survives restarts, so the file does too.
    ledger_ = std::make_unique<pipeline::sink_ledger>(ledger_path(ctx.self()));
    const auto s = ledger_->stats();
    if (s.distinct > 0)
      ctx.log_info("ledger " + ledger_->path() + " replayed: " + std::to_string(s.distinct) + " distinct, " +
                   std::to_string(s.duplicates) + " duplicates");
  }

  void receive(troupe::context& ctx, const troupe::message& m) override {
    if (m.is_ask() && m.type() == "stats") return troupe::reply_json(ctx, stats());
    if (m.is_ask()) return troupe::reply_json(ctx, json{{"error", "Sink answers 'stats' only"}});
    if (m.kind() != TROUPE_MSG_TELL || m.type() != item_type) return;
    const json item = troupe::parse_json(m.payload()).value_or(json());
    const auto n = item_number(item);
    if (!n || *n >= pipeline::sink_ledger::limit || item.value("square", std::uint64_t{0}) != *n * *n) {
      ++malformed_;  // not the pipeline's: counted, never a reason to crash
      return;
    }
    ledger_->record(*n);  // on disk before the handler returns, so before the ack
  }

 private:
  /// $TROUPE_HOME/pipeline/sink-SYSTEM.SERIAL.log ($HOME/.troupe when unset,
  /// as the daemon's own default).
  static std::string ledger_path(troupe::address self) {
    std::string home;
    if (const char* h = std::getenv("TROUPE_HOME"); h != nullptr && *h != '\0')
      home = h;
    else if (const char* u = std::getenv("HOME"); u != nullptr && *u != '\0')
      home = std::string(u) + "/.troupe";
    else
      home = "/var/lib/troupe";
    return home + "/pipeline/sink-" + self.to_string().substr(1) + ".log";
  }

  json stats() const {
    const auto s = ledger_->stats();
    return json{{"distinct", s.distinct},
                {"duplicates", s.duplicates},
                {"missing_below", s.missing_below},
                {"max", s.max},
                {"malformed", malformed_}};
  }

  std::unique_ptr<pipeline::sink_ledger> ledger_;
  std::uint64_t malformed_ = 0;
};

}  // namespace

TROUPE_PACKAGE(troupe::actor_type<source>("Source"), troupe::actor_type<transform>("Transform"),
               troupe::actor_type<sink>("Sink"))
