// examples/encoders/client.cpp — encoders-client: encodes each line of stdin
// with the Morse, Base64 and Rot13 actors of a running system.
//
//   echo "This is a multi-system test" | encoders-client [--system HOST:PORT] [--use-names]
//
// Without --use-names it spawns one actor of each type from the encoders
// package; with it, it asks the actors registered under the global names
// morse, base64 and rot13. Exit 0 on success; 1 with "encoders-client: why"
// on stderr for any error (bad flag, no system, failed ask, odd answer).
#include <troupe/client.hpp>
#include <troupe/result.hpp>

#include <nlohmann/json.hpp>

#include <array>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace {

constexpr std::string_view usage =
    "usage: encoders-client [--system HOST:PORT] [--use-names] < text\n"
    "  --system     system to talk to (default $TROUPE_SYSTEM, else 127.0.0.1:1900)\n"
    "  --use-names  ask the actors named morse, base64, rot13 instead of spawning\n";

struct options {
  std::string system;
  bool use_names = false;
  bool help = false;
};

/// One encoding: the label printed, the actor type, and the global name.
struct encoding {
  std::string_view label;
  std::string_view type;
  std::string_view name;
  std::string target;  ///< address text or global name, filled in by prepare()
};

int fail(std::string_view why) {
  std::cerr << "encoders-client: " << why << '\n';
  return 1;
}

std::string describe(const troupe::error& e) { return std::string(troupe::to_string(e.code)) + ": " + e.message; }

troupe::result<options> parse_args(int argc, char** argv) {
  options o;
  const char* env = std::getenv("TROUPE_SYSTEM");
  o.system = (env != nullptr && *env != '\0') ? env : "127.0.0.1:1900";
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--use-names") {
      o.use_names = true;
    } else if (arg == "--help" || arg == "-h") {
      o.help = true;
    } else if (arg == "--system") {
      if (i + 1 >= argc) return troupe::make_error(troupe::errc::invalid_argument, "--system needs HOST:PORT");
      o.system = argv[++i];
    } else if (arg.substr(0, 9) == "--system=") {
      o.system = std::string(arg.substr(9));
    } else {
      return troupe::make_error(troupe::errc::invalid_argument,
                                "unknown argument '" + std::string(arg) + "' (try --help)");
    }
  }
  return o;
}

std::vector<std::string> input_lines(std::istream& in) {
  std::string all(std::istreambuf_iterator<char>(in), {});
  std::vector<std::string> lines;
  std::istringstream s(all);
  for (std::string line; std::getline(s, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) lines.push_back(std::move(line));
  }
  return lines;
}

/// Fills each encoding's target: a fresh actor's address, or its global name.
troupe::status prepare(troupe::client& c, std::array<encoding, 3>& encs, bool use_names) {
  for (auto& e : encs) {
    if (use_names) {
      e.target = std::string(e.name);
      continue;
    }
    auto a = c.spawn(e.type, "encoders");
    if (!a) return troupe::make_error(a.err().code, "spawning " + std::string(e.type) + ": " + describe(a.err()));
    e.target = a->to_string();
  }
  return troupe::ok_v;
}

/// The encoded line, or why the actor did not give one.
troupe::result<std::string> encode(troupe::client& c, const encoding& e, const std::string& line) {
  auto r = c.ask(e.target, nlohmann::json(line));
  if (!r)
    return troupe::make_error(r.err().code,
                              "asking " + std::string(e.label) + " (" + e.target + "): " + describe(r.err()));
  if (!r->is_string()) {
    return troupe::make_error(troupe::errc::protocol,
                              std::string(e.label) + " answered " + r->dump() + ", not a string");
  }
  return r->get<std::string>();
}

}  // namespace

int main(int argc, char** argv) {
  auto opts = parse_args(argc, argv);
  if (!opts) return fail(opts.err().message);
  if (opts->help) {
    std::cout << usage;
    return 0;
  }
  auto lines = input_lines(std::cin);

  auto c = troupe::client::connect(opts->system);
  if (!c) return fail("connecting to " + opts->system + ": " + describe(c.err()));

  std::array<encoding, 3> encs{
      {{"Morse", "Morse", "morse", {}}, {"Base64", "Base64", "base64", {}}, {"Rot13", "Rot13", "rot13", {}}}};
  // The actors this run spawned are stopped however it ends: a client that
  // left three anonymous actors behind on every run filled the system.
  struct stop_spawned {
    troupe::client& c;
    const std::array<encoding, 3>& encs;
    bool named;
    ~stop_spawned() {
      if (named) return;
      for (const auto& e : encs)
        if (!e.target.empty()) (void)c.call("kill", nlohmann::json{{"target", e.target}}, std::chrono::seconds(2));
    }
  } cleanup{*c, encs, opts->use_names};
  if (auto st = prepare(*c, encs, opts->use_names); !st) return fail(st.err().message);

  for (const auto& line : lines) {
    for (const auto& e : encs) {
      auto out = encode(*c, e, line);
      if (!out) return fail(out.err().message);
      std::cout << e.label << ": " << *out << '\n';
    }
  }
  std::cout.flush();
  return std::cout ? 0 : fail("writing to stdout failed");
}
