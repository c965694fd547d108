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
#include <string_view>
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
  /// The same on a row's fields, before any JSON is made of it.
  [[nodiscard]] bool matches(std::string_view package, std::string_view package_id, std::string_view state,
                             std::string_view system) const;
  /// The rows of the page, given the addresses of every matching row in
  /// address order: [first, last) of them, and whether more follow. The
  /// answer is {"actors": those rows, "total": rows matching, "next": the
  /// page's last address when more follow, else null}.
  struct bounds {
    std::size_t first = 0, last = 0;
    bool more = false;
  };
  [[nodiscard]] bounds page_bounds(const std::vector<address>& sorted) const;
};

}  // namespace troupe::supervisor
