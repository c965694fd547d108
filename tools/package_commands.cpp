// tools/package_commands.cpp — the package commands of `troupe`
// (docs/OPERATIONS.md §5). keygen, pack and inspect work on files alone;
// load, unload, list, avail, refresh and role ask a running system.
#include "tools/cli_common.hpp"

#include "ipc/curve.hpp"
#include "manifests/archive.hpp"

#include <fstream>
#include <iostream>

namespace troupe::tools {

namespace {

std::string keys_dir(const parsed& p) {
  return p.has("--keys") ? p.value("--keys") : (troupe_home() / "keys").string();
}

std::string active_text(const json& r) { return r.value("active", false) ? "active" : "not active"; }

std::string signer_text(const json& r) {
  return r.contains("signer") && r["signer"].is_string() ? "signed by " + r["signer"].get<std::string>() : "unsigned";
}

}  // namespace

namespace {

// keygen --client: this user's CurveZMQ identity for TCP clients, kept in
// HOME/client/ and found there by every client (troupe/client.hpp).
int client_keygen(const parsed& p) {
  if (!p.positional.empty()) throw usage_error{"keygen --client takes no NAME: the key lives in $TROUPE_HOME/client/"};
  const fs::path dir = troupe_home() / "client";
  const bool existed = fs::exists(dir / "curve.key");
  auto keys = ipc::load_or_create_keypair(dir);
  if (!keys) return fail(keys.err());
  if (p.json_out)
    return print_json(json{{"key", (dir / "curve.key").string()}, {"public_key", keys->public_key}, {"new", !existed}}),
           cli_ok;
  std::cout << (existed ? "kept " : "wrote ") << (dir / "curve.key").string() << " (private)\n"
            << "public key " << keys->public_key << "\n"
            << "a system admits it once its operator runs: troupe trust-client NAME " << keys->public_key
            << " --role read|admin\n";
  return cli_ok;
}

}  // namespace

int cmd_trust_client(const parsed& p, const std::string&) {
  const std::string& name = p.positional[0];
  std::string key = p.positional[1];
  if (!ipc::valid_curve_key(key)) {
    std::ifstream in(key);
    std::string line;
    if (!(in && std::getline(in, line) && ipc::valid_curve_key(line)))
      throw usage_error{"KEY must be a client's public key (40 Z85 characters) or a file holding it"};
    key = line;
  }
  const std::string role = p.value("--role", "read");
  if (role != "read" && role != "admin") throw usage_error{"--role takes read or admin, not '" + role + "'"};
  const fs::path clients = troupe_home() / "clients";
  if (auto s = ipc::trust_key(clients / role, name, key); !s) return fail(s.err());
  // One role per name: the other role's file goes.
  std::error_code ec;
  const std::string other = role == "read" ? "admin" : "read";
  fs::remove(clients / other / (name + ".pub"), ec);
  if (p.json_out) return print_json(json{{"name", name}, {"role", role}, {"key", key}}), cli_ok;
  std::cout << "client " << name << " may connect with role " << role << " ("
            << (clients / role / (name + ".pub")).string() << "; remove the file to revoke it)\n";
  return cli_ok;
}

int cmd_keygen(const parsed& p, const std::string&) {
  if (p.has("--client")) return client_keygen(p);
  if (p.positional.size() != 1) throw usage_error{"keygen takes one NAME (or --client)"};
  const fs::path base = p.positional[0];
  if (base.filename().empty()) throw usage_error{"NAME must name a file, e.g. keys/release"};
  if (auto s = manifests::generate_key_pair(base); !s) return fail(s.err());
  fs::path pub = base;
  pub += ".pub";
  fs::path key = base;
  key += ".key";
  auto k = manifests::read_public_key(pub);
  if (!k) return fail(k.err());
  if (p.json_out)
    return print_json(json{{"key", key.string()}, {"pub", pub.string()}, {"fingerprint", k->fingerprint}}), cli_ok;
  std::cout << "wrote " << key.string() << " (private: keep it on the build machine) and " << pub.string() << "\n"
            << "systems trust it once " << pub.filename().string() << " is in their $TROUPE_HOME/keys/\n"
            << "fingerprint " << k->fingerprint << "\n";
  return cli_ok;
}

int cmd_pack(const parsed& p, const std::string&) {
  if (!p.has("--key")) throw usage_error{"--key KEY is required (make one with `troupe keygen NAME`)"};
  manifests::pack_request req;
  req.manifest = p.positional[0];
  std::error_code ec;
  if (fs::is_directory(req.manifest, ec)) req.manifest /= "manifest.yaml";
  if (p.has("--version")) req.version = p.value("--version");
  if (p.has("--deps")) {
    auto deps = manifests::read_deps_file(p.value("--deps"));
    if (!deps) return fail(deps.err());
    req.private_libraries = std::move(*deps);
  }
  if (auto it = p.repeated.find("--dep"); it != p.repeated.end())
    for (const auto& d : it->second) req.private_libraries.emplace_back(d);
  req.output = p.has("--out") ? fs::path(p.value("--out")) : fs::current_path();
  auto key = manifests::signing_key::read(p.value("--key"));
  if (!key) return fail(key.err());
  auto r = manifests::pack_package(req, *key);
  if (!r) return fail(r.err());
  if (p.json_out)
    return print_json(json{{"id", r->id},
                           {"file", r->file.string()},
                           {"group", r->m.package},
                           {"version", r->m.version.text},
                           {"signer", key->pub().name}}),
           cli_ok;
  std::cout << "packed " << r->m.package << " " << r->m.version.text << " into " << r->file.string() << ", signed by "
            << key->pub().name << "\n"
            << r->id << "\n";
  return cli_ok;
}

int cmd_inspect(const parsed& p, const std::string&) {
  if (p.has("--contents") && p.positional.size() > 1) throw usage_error{"give --contents or FILE, not both"};
  const auto ring = manifests::read_key_ring(keys_dir(p));
  for (const auto& why : ring.skipped) std::cerr << "troupe: warning: skipped key " << why << "\n";
  auto a = manifests::open_archive(p.positional[0], ring);
  if (!a) return fail(a.err());
  if (p.positional.size() > 1) {
    auto bytes = manifests::read_entry(*a, p.positional[1]);
    if (!bytes) return fail(bytes.err());
    std::cout.write(bytes->data(), static_cast<std::streamsize>(bytes->size()));
    return cli_ok;
  }
  if (p.json_out) {
    json entries = json::array();
    for (const auto& e : a->entries) {
      json j{{"path", e.path}, {"kind", to_string(e.kind)}, {"size", e.size}};
      if (e.kind == manifests::entry_kind::symlink) j["target"] = e.link_target;
      entries.push_back(std::move(j));
    }
    return print_json(json{{"file", p.positional[0]},
                           {"id", a->id},
                           {"group", a->m.package},
                           {"version", a->m.version.text},
                           {"signer", a->signer.name},
                           {"key_file", a->signer.file.string()},
                           {"fingerprint", a->signer.fingerprint},
                           {"entries", entries}}),
           cli_ok;
  }
  if (p.has("--contents")) {
    for (const auto& e : a->entries) {
      if (e.kind == manifests::entry_kind::symlink)
        std::cout << "-> " << e.path << " -> " << e.link_target << "\n";
      else if (e.kind == manifests::entry_kind::directory)
        std::cout << "dir " << e.path << "/\n";
      else
        std::cout << e.size << " " << e.path << "\n";
    }
    return cli_ok;
  }
  std::cout << p.positional[0] << ": verified with key " << a->signer.name << " (" << a->signer.file.string() << ")\n"
            << a->m.package << " " << a->m.version.text << ", " << a->entries.size() << " entries, library "
            << a->m.library << "\n"
            << a->id << "\n";
  return cli_ok;
}

int cmd_load(const parsed& p, const std::string&) {
  const std::string& arg = p.positional[0];
  json body;
  std::error_code ec;
  if (fs::exists(arg, ec)) {
    body["path"] = fs::absolute(arg).string();
    if (p.has("--unsigned")) body["unsigned"] = true;
  } else if (arg.find('/') != std::string::npos || arg.ends_with(".tpkg") || p.has("--unsigned")) {
    return fail(cli_not_found, arg + ": no such file or directory");
  } else {
    body["group"] = arg;  // the newest archive of this group in the system's package directory
  }
  // Loading starts the package's worker and waits for it to register.
  auto r = call(p, cmd::client::load, body, std::chrono::seconds(30));
  if (!r) return fail(r.err());
  if (p.json_out) return print_json(*r), cli_ok;
  std::cout << ((*r)["already_loaded"].get<bool>() ? "already loaded " : "loaded ") << text_of((*r)["group"]) << " "
            << text_of((*r)["version"]) << " (" << active_text(*r) << ", " << signer_text(*r) << ")\n"
            << text_of((*r)["id"]) << "\n";
  return cli_ok;
}

int cmd_unload(const parsed& p, const std::string&) {
  auto r = call(p, cmd::client::unload, json{{"package", p.positional[0]}}, std::chrono::seconds(30));
  if (!r) return fail(r.err());
  if (p.json_out) return print_json(*r), cli_ok;
  std::cout << "unloaded " << text_of((*r)["group"]) << " " << text_of((*r)["version"]) << "\n"
            << text_of((*r)["id"]) << "\n";
  return cli_ok;
}

int cmd_list(const parsed& p, const std::string&) {
  auto r = call(p, cmd::client::list, json::object());
  if (!r) return fail(r.err());
  if (p.json_out) return print_json((*r)["packages"]), cli_ok;
  std::vector<std::vector<std::string>> rows;
  for (const auto& e : (*r)["packages"])
    rows.push_back({text_of(e["group"]), text_of(e["version"]), text_of(e["id"]).substr(0, 16),
                    e["active"].get<bool>() ? "active" : "-", text_of(e["phase"]),
                    std::to_string(e["actors"].get<int>()), text_of(e["signer"]),
                    e.contains("error") ? text_of(e["error"]) : ""});
  print_table({"GROUP", "VERSION", "ID", "ACTIVE", "PHASE", "ACTORS", "SIGNER", "ERROR"}, rows);
  return cli_ok;
}

int cmd_avail(const parsed& p, const std::string&) {
  auto r = call(p, cmd::client::avail, json::object());
  if (!r) return fail(r.err());
  if (p.json_out) return print_json(*r), cli_ok;
  std::cout << "packages in " << text_of((*r)["dir"]) << "\n";
  std::vector<std::vector<std::string>> rows;
  for (const auto& g : (*r)["groups"]) {
    bool first = true;
    for (const auto& a : g["archives"]) {
      std::string state = a.contains("error")       ? "refused: " + text_of(a["error"])
                          : a["active"].get<bool>() ? "loaded, active"
                          : a["loaded"].get<bool>() ? "loaded"
                                                    : "-";
      rows.push_back({first ? text_of(g["group"]) : "+", text_of(a["version"]), text_of(a["id"]).substr(0, 16),
                      fs::path(text_of(a["file"])).filename().string(), state});
      first = false;
    }
  }
  print_table({"GROUP", "VERSION", "ID", "FILE", "STATE"}, rows);
  return cli_ok;
}

int cmd_refresh(const parsed& p, const std::string&) {
  auto r = call(p, cmd::client::refresh, json::object(), std::chrono::seconds(60));
  if (!r) return fail(r.err());
  if (p.json_out) print_json(*r);
  int code = cli_ok;
  for (const auto& g : (*r)["groups"]) {
    if (g.contains("error")) {
      code = fail(cli_failed, text_of(g["group"]) + ": " + text_of(g["error"]));
      continue;
    }
    if (!p.json_out)
      std::cout << (g.value("already_loaded", false) ? "already loaded " : "loaded ") << text_of(g["group"]) << " "
                << text_of(g["version"]) << " " << text_of(g["id"]) << "\n";
  }
  return code;
}

int cmd_role(const parsed& p, const std::string&) {
  json body{{"role", p.positional[0]}};
  if (p.has("--group")) body["group"] = p.value("--group");
  auto r = call(p, cmd::client::role, body);
  if (!r) return fail(r.err());
  if (p.json_out) return print_json(*r), cli_ok;
  std::cout << text_of((*r)["address"]) << "\n";
  return cli_ok;
}

}  // namespace troupe::tools
