// supervisor/actor_query.hpp — the filters and page of the client command
// `actors` (docs/PROTOCOL.md §6): which rows a client asked for, so that a
// system with 100,000 actors answers a page, not a 15 MB reply. Pure logic on
// the rows' JSON; unit-tested beside it. Single-threaded.
#pragma once

#include <troupe/address.hpp>
#include <troupe/result.hpp>

#include <nlohmann/json.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace troupe::supervisor {

struct actor_query {
  std::size_t limit = 0;         ///< rows in the page; 0: every row
  std::optional<address> after;  ///< only rows of addresses above it (the last of the previous page)
  std::string package;           ///< group name, or a prefix of the package id
  std::string state;             ///< "running", "failed", "pending", ...
  std::string system;            ///< "HOST:PORT" or a bare port

  static constexpr std::size_t max_limit = 100000;

  /// From a request body; invalid_argument with a one-line reason otherwise.
  static result<actor_query> from_json(const nlohmann::json& body);
  /// Whether a row (the form of `actors`) passes the filters (not the page).
  [[nodiscard]] bool matches(const nlohmann::json& row) const;
  /// Filters rows, orders them by address, keeps the page: the answer body
  /// {"actors": [...], "total": rows matching, "next": the last address of
  /// the page when more follow, else null}.
  [[nodiscard]] nlohmann::json page(std::vector<nlohmann::json> rows) const;
};

}  // namespace troupe::supervisor
