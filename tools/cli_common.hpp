// tools/cli_common.hpp — what the `troupe` commands share: parsed
// arguments, the command table entry, errors and output helpers. Used by
// cli.cpp (system and actor commands) and package_commands.cpp.
// Single-threaded.
#pragma once

#include "tools/cli.hpp"

#include "ipc/commands.hpp"

#include <troupe/result.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace troupe::tools {

namespace fs = std::filesystem;
namespace cmd = ipc::cmd;
using json = nlohmann::json;

/// Thrown for wrong arguments; turned into exit code 2 with the usage line.
struct usage_error {
  std::string message;
};

struct parsed {
  std::vector<std::string> positional;
  std::map<std::string, std::string> values;
  std::map<std::string, std::vector<std::string>> repeated;
  std::set<std::string> flags;
  bool json_out = false;
  std::string system;

  [[nodiscard]] bool has(const std::string& f) const { return flags.count(f) || values.count(f); }
  [[nodiscard]] std::string value(const std::string& k, std::string def = {}) const {
    auto it = values.find(k);
    return it == values.end() ? def : it->second;
  }
};

struct command {
  std::string usage;
  std::string summary;
  std::set<std::string> value_options;  // take an argument
  std::set<std::string> flag_options;
  std::size_t min_args = 0;
  std::size_t max_args = 0;
  std::function<int(const parsed&, const std::string& self)> run;
  std::set<std::string> repeat_options = {};  // take an argument, may be given several times
};

/// Prints "troupe: message" on stderr; returns code.
int fail(int code, const std::string& message);
/// The exit code for an error's category.
int exit_for(const error& e);
int fail(const error& e);
/// --system, else $TROUPE_SYSTEM, else 127.0.0.1:1900.
std::string system_of(const parsed& p);
/// $TROUPE_HOME, else ~/.troupe.
fs::path troupe_home();
/// Calls command on the chosen system.
result<json> call(const parsed& p, std::string_view command, const json& body,
                  std::chrono::milliseconds timeout = std::chrono::seconds(10));
void print_json(const json& j);
/// A JSON value as a table cell: strings bare, null as "-".
std::string text_of(const json& j);
void print_table(const std::vector<std::string>& headers, const std::vector<std::vector<std::string>>& rows);

// Package commands (package_commands.cpp).
int cmd_keygen(const parsed& p, const std::string& self);
int cmd_pack(const parsed& p, const std::string& self);
int cmd_inspect(const parsed& p, const std::string& self);
int cmd_load(const parsed& p, const std::string& self);
int cmd_unload(const parsed& p, const std::string& self);
int cmd_list(const parsed& p, const std::string& self);
int cmd_avail(const parsed& p, const std::string& self);
int cmd_refresh(const parsed& p, const std::string& self);
int cmd_role(const parsed& p, const std::string& self);
int cmd_trust_client(const parsed& p, const std::string& self);

}  // namespace troupe::tools
