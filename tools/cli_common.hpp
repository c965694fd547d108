// tools/cli_common.hpp — what the `troupe` commands share: the global
// options, the way a command is declared (CLI11 subcommands, each with an
// options struct of its own), errors and output helpers. Used by cli.cpp
// (the command line, client commands), system_commands.cpp (start, stop,
// bootstart, config) and package_commands.cpp. Single-threaded.
#pragma once

#include "tools/cli.hpp"

#include "ipc/commands.hpp"

#include <troupe/result.hpp>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace troupe::tools {

namespace fs = std::filesystem;
namespace cmd = ipc::cmd;
using json = nlohmann::json;

/// Thrown for wrong arguments; turned into exit code 2: `troupe CMD: message`
/// and a pointer to `troupe CMD --help`.
struct usage_error {
  std::string message;
};

/// The global options, given before or after the command.
struct globals {
  std::string system;  ///< --system (empty: $TROUPE_SYSTEM, else 127.0.0.1:1900)
  bool json_out = false;
  std::string self;  ///< path of the running troupe executable
};

/// Where the commands are declared. add() makes one CLI11 subcommand; the
/// caller binds its options and positionals to a struct of its own (kept
/// alive by the run function, which captures it) and gives the function that
/// runs the command once its arguments parsed.
class command_set {
 public:
  command_set(CLI::App& app, globals& g) : app_(app), g_(g) {}
  /// A command: name, one-line summary (the commands list), details (more
  /// lines for its --help), examples (one command line each) and what it runs.
  CLI::App* add(const std::string& name, const std::string& summary, const std::string& details,
                const std::vector<std::string>& examples, std::function<int()> run);
  [[nodiscard]] globals& g() const { return g_; }
  [[nodiscard]] CLI::App& app() const { return app_; }
  /// The function add() registered for a command.
  [[nodiscard]] const std::function<int()>& runner(const std::string& name) const { return runs_.at(name); }

 private:
  CLI::App& app_;
  globals& g_;
  std::map<std::string, std::function<int()>> runs_;
};

// Option helpers: how values are named in the help, one place each.
/// A JSON payload argument: JSON text, @FILE or - (stdin).
CLI::Option* add_payload(CLI::App* c, std::string& into);
/// A TARGET argument: an address or a global name.
CLI::Option* add_target(CLI::App* c, std::string& into);

/// Prints "troupe: message" on stderr; returns code.
int fail(int code, const std::string& message);
/// The exit code for an error's category.
int exit_for(const error& e);
int fail(const error& e);
/// --system, else $TROUPE_SYSTEM, else 127.0.0.1:1900.
std::string system_of(const globals& g);
/// $TROUPE_HOME, else ~/.troupe.
fs::path troupe_home();
/// Calls command on the chosen system.
result<json> call(const globals& g, std::string_view command, const json& body,
                  std::chrono::milliseconds timeout = std::chrono::seconds(10));
void print_json(const json& j);
/// A JSON value as a table cell: strings bare, null as "-".
std::string text_of(const json& j);
void print_table(const std::vector<std::string>& headers, const std::vector<std::vector<std::string>>& rows);
/// The same for a table printed in parts: widths kept in width across calls
/// (they only grow); no header line when headers is empty.
void print_table(const std::vector<std::string>& headers, const std::vector<std::vector<std::string>>& rows,
                 std::vector<std::size_t>& width);
/// A port number 1-65535 (usage_error otherwise).
std::uint16_t parse_port(const std::string& text);
/// While a long call runs: after 300 ms, when stderr is a terminal, one line
/// on stderr "WHAT… N.N s" kept up to date every 200 ms, erased when it ends.
/// Nothing otherwise (scripts, logs, tests see no difference).
class progress {
 public:
  explicit progress(std::string what);
  ~progress();
  progress(const progress&) = delete;
  progress& operator=(const progress&) = delete;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// Thrown where a command fails below its function: `troupe: message` on
/// stderr, exit code.
struct cli_error {
  int code;
  std::string message;
};
/// The JSON payload of an argument: JSON text, `@FILE` (the file's contents)
/// or `-` (standard input). Malformed JSON is a usage_error; a file that
/// cannot be read a cli_error (exit 5).
json read_payload(const std::string& arg);

// The commands, by area; each declares its subcommands on the set.
void add_system_commands(command_set& cs);   // system_commands.cpp: start, bootstart, stop, config
void add_package_commands(command_set& cs);  // package_commands.cpp
void add_actor_commands(command_set& cs);    // cli.cpp: status, spawn, tell, ask, ...

}  // namespace troupe::tools
