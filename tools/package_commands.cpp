// tools/package_commands.cpp — the package commands of `troupe`
// (docs/OPERATIONS.md §5). keygen, pack and inspect work on files alone;
// load, unload, list, avail, refresh and role ask a running system.
#include "tools/cli_common.hpp"

#include "ipc/curve.hpp"
#include "manifests/archive.hpp"
#include "manifests/version.hpp"

#include <fstream>
#include <iostream>
#include <memory>

namespace troupe::tools {

namespace {

std::string active_text(const json& r) { return r.value("active", false) ? "active" : "not active"; }

std::string signer_text(const json& r) {
  return r.contains("signer") && r["signer"].is_string() ? "signed by " + r["signer"].get<std::string>() : "unsigned";
}

// keygen --client: this user's CurveZMQ identity for TCP clients, kept in
// HOME/client/ and found there by every client (troupe/client.hpp).
int client_keygen(const globals& g, const std::string& name) {
  if (!name.empty()) throw usage_error{"keygen --client takes no NAME: the key lives in $TROUPE_HOME/client/"};
  const fs::path dir = troupe_home() / "client";
  const bool existed = fs::exists(dir / "curve.key");
  auto keys = ipc::load_or_create_keypair(dir);
  if (!keys) return fail(keys.err());
  if (g.json_out)
    return print_json(json{{"key", (dir / "curve.key").string()}, {"public_key", keys->public_key}, {"new", !existed}}),
           cli_ok;
  std::cout << (existed ? "kept " : "wrote ") << (dir / "curve.key").string() << " (private)\n"
            << "public key " << keys->public_key << "\n"
            << "a system admits it once its operator runs: troupe trust-client NAME " << keys->public_key
            << " --role read|admin\n";
  return cli_ok;
}

struct trust_client_options {
  std::string name, key, role = "read";
};

int cmd_trust_client(const globals& g, const trust_client_options& o) {
  const std::string& name = o.name;
  std::string key = o.key;
  if (!ipc::valid_curve_key(key)) {
    std::ifstream in(key);
    std::string line;
    if (!(in && std::getline(in, line) && ipc::valid_curve_key(line)))
      throw usage_error{"KEY must be a client's public key (40 Z85 characters) or a file holding it"};
    key = line;
  }
  const std::string& role = o.role;
  if (role != "read" && role != "admin") throw usage_error{"--role takes read or admin, not '" + role + "'"};
  const fs::path clients = troupe_home() / "clients";
  if (auto s = ipc::trust_key(clients / role, name, key); !s) return fail(s.err());
  // One role per name: the other role's file goes.
  std::error_code ec;
  const std::string other = role == "read" ? "admin" : "read";
  fs::remove(clients / other / (name + ".pub"), ec);
  if (g.json_out) return print_json(json{{"name", name}, {"role", role}, {"key", key}}), cli_ok;
  std::cout << "client " << name << " may connect with role " << role << " ("
            << (clients / role / (name + ".pub")).string() << "; remove the file to revoke it)\n";
  return cli_ok;
}

struct keygen_options {
  std::string name;
  bool client = false;
};

int cmd_keygen(const globals& g, const keygen_options& o) {
  if (o.client) return client_keygen(g, o.name);
  if (o.name.empty()) throw usage_error{"keygen takes one NAME (or --client)"};
  const fs::path base = o.name;
  if (base.filename().empty()) throw usage_error{"NAME must name a file, e.g. keys/release"};
  if (auto s = manifests::generate_key_pair(base); !s) return fail(s.err());
  fs::path pub = base;
  pub += ".pub";
  fs::path key = base;
  key += ".key";
  auto k = manifests::read_public_key(pub);
  if (!k) return fail(k.err());
  if (g.json_out)
    return print_json(json{{"key", key.string()}, {"pub", pub.string()}, {"fingerprint", k->fingerprint}}), cli_ok;
  std::cout << "wrote " << key.string() << " (private: keep it on the build machine) and " << pub.string() << "\n"
            << "systems trust it once " << pub.filename().string() << " is in their $TROUPE_HOME/keys/\n"
            << "fingerprint " << k->fingerprint << "\n";
  return cli_ok;
}

struct pack_options {
  std::string manifest, key, version, deps, out;
  std::vector<std::string> dep, wheel;
};

int cmd_pack(const globals& g, const pack_options& o) {
  if (o.key.empty()) throw usage_error{"--key KEY is required (make one with `troupe keygen NAME`)"};
  manifests::pack_request req;
  req.manifest = o.manifest;
  std::error_code ec;
  if (fs::is_directory(req.manifest, ec)) req.manifest /= "manifest.yaml";
  if (!o.version.empty()) {
    if (auto v = manifests::parse_version(o.version); o.version != "date" && !v)
      throw usage_error{"--version takes X.Y.Z or date, not '" + o.version + "': " + v.err().message};
    req.version = o.version;
  }
  if (!o.deps.empty()) {
    auto deps = manifests::read_deps_file(o.deps);
    if (!deps) return fail(deps.err());
    req.private_libraries = std::move(*deps);
  }
  for (const auto& d : o.dep) req.private_libraries.emplace_back(d);
  for (const auto& w : o.wheel) req.wheels.emplace_back(w);
  req.output = !o.out.empty() ? fs::path(o.out) : fs::current_path();
  auto key = manifests::signing_key::read(o.key);
  if (!key) return fail(key.err());
  auto r = manifests::pack_package(req, *key);
  if (!r) return fail(r.err());
  if (g.json_out)
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

struct inspect_options {
  std::string package, file, keys;
  bool contents = false;
};

int cmd_inspect(const globals& g, const inspect_options& o) {
  if (o.contents && !o.file.empty()) throw usage_error{"give --contents or FILE, not both"};
  const auto ring = manifests::read_key_ring(o.keys.empty() ? (troupe_home() / "keys").string() : o.keys);
  for (const auto& why : ring.skipped) std::cerr << "troupe: warning: skipped key " << why << "\n";
  auto a = manifests::open_archive(o.package, ring);
  if (!a) return fail(a.err());
  if (!o.file.empty()) {
    auto bytes = manifests::read_entry(*a, o.file);
    if (!bytes) return fail(bytes.err());
    std::cout.write(bytes->data(), static_cast<std::streamsize>(bytes->size()));
    return cli_ok;
  }
  if (g.json_out) {
    json entries = json::array();
    for (const auto& e : a->entries) {
      json j{{"path", e.path}, {"kind", to_string(e.kind)}, {"size", e.size}};
      if (e.kind == manifests::entry_kind::symlink) j["target"] = e.link_target;
      entries.push_back(std::move(j));
    }
    return print_json(json{{"file", o.package},
                           {"id", a->id},
                           {"group", a->m.package},
                           {"version", a->m.version.text},
                           {"signer", a->signer.name},
                           {"key_file", a->signer.file.string()},
                           {"fingerprint", a->signer.fingerprint},
                           {"entries", entries}}),
           cli_ok;
  }
  if (o.contents) {
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
  std::cout << o.package << ": verified with key " << a->signer.name << " (" << a->signer.file.string() << ")\n"
            << a->m.package << " " << a->m.version.text << ", " << a->entries.size() << " entries, "
            << (a->m.runtime == manifests::runtime_kind::python ? "module " + a->m.module : "library " + a->m.library)
            << "\n"
            << a->id << "\n";
  return cli_ok;
}

struct load_options {
  std::string what;
  bool unsigned_dir = false;
};

int cmd_load(const globals& g, const load_options& o) {
  const std::string& arg = o.what;
  json body;
  std::error_code ec;
  if (fs::exists(arg, ec)) {
    body["path"] = fs::absolute(arg).string();
    if (o.unsigned_dir) body["unsigned"] = true;
  } else if (arg.find('/') != std::string::npos || arg.ends_with(".tpkg") || o.unsigned_dir) {
    return fail(cli_not_found, arg + ": no such file or directory");
  } else {
    body["group"] = arg;  // the newest archive of this group in the system's package directory
  }
  // Loading starts the package's worker and waits for it to register.
  auto r = [&] {
    progress shown("loading " + arg);
    return call(g, cmd::client::load, body, std::chrono::seconds(30));
  }();
  if (!r) return fail(r.err());
  if (g.json_out) return print_json(*r), cli_ok;
  std::cout << ((*r)["already_loaded"].get<bool>() ? "already loaded " : "loaded ") << text_of((*r)["group"]) << " "
            << text_of((*r)["version"]) << " (" << active_text(*r) << ", " << signer_text(*r) << ")\n"
            << text_of((*r)["id"]) << "\n";
  return cli_ok;
}

int cmd_unload(const globals& g, const std::string& package) {
  auto r = call(g, cmd::client::unload, json{{"package", package}}, std::chrono::seconds(30));
  if (!r) return fail(r.err());
  if (g.json_out) return print_json(*r), cli_ok;
  std::cout << "unloaded " << text_of((*r)["group"]) << " " << text_of((*r)["version"]) << "\n"
            << text_of((*r)["id"]) << "\n";
  return cli_ok;
}

int cmd_list(const globals& g) {
  auto r = call(g, cmd::client::list, json::object());
  if (!r) return fail(r.err());
  if (g.json_out) return print_json((*r)["packages"]), cli_ok;
  std::vector<std::vector<std::string>> rows;
  for (const auto& e : (*r)["packages"])
    rows.push_back({text_of(e["group"]), text_of(e["version"]), text_of(e["id"]).substr(0, 16),
                    e["active"].get<bool>() ? "active" : "-", text_of(e["phase"]),
                    std::to_string(e["actors"].get<int>()), text_of(e["signer"]),
                    e.contains("error") ? text_of(e["error"]) : ""});
  print_table({"GROUP", "VERSION", "ID", "ACTIVE", "PHASE", "ACTORS", "SIGNER", "ERROR"}, rows);
  return cli_ok;
}

int cmd_avail(const globals& g) {
  auto r = call(g, cmd::client::avail, json::object());
  if (!r) return fail(r.err());
  if (g.json_out) return print_json(*r), cli_ok;
  std::cout << "packages in " << text_of((*r)["dir"]) << "\n";
  std::vector<std::vector<std::string>> rows;
  for (const auto& grp : (*r)["groups"]) {
    bool first = true;
    for (const auto& a : grp["archives"]) {
      std::string state = a.contains("error")       ? "refused: " + text_of(a["error"])
                          : a["active"].get<bool>() ? "loaded, active"
                          : a["loaded"].get<bool>() ? "loaded"
                                                    : "-";
      rows.push_back({first ? text_of(grp["group"]) : "+", text_of(a["version"]), text_of(a["id"]).substr(0, 16),
                      fs::path(text_of(a["file"])).filename().string(), state});
      first = false;
    }
  }
  print_table({"GROUP", "VERSION", "ID", "FILE", "STATE"}, rows);
  return cli_ok;
}

int cmd_refresh(const globals& g) {
  auto r = call(g, cmd::client::refresh, json::object(), std::chrono::seconds(60));
  if (!r) return fail(r.err());
  if (g.json_out) print_json(*r);
  int code = cli_ok;
  for (const auto& grp : (*r)["groups"]) {
    if (grp.contains("error")) {
      code = fail(cli_failed, text_of(grp["group"]) + ": " + text_of(grp["error"]));
      continue;
    }
    if (!g.json_out)
      std::cout << (grp.value("already_loaded", false) ? "already loaded " : "loaded ") << text_of(grp["group"]) << " "
                << text_of(grp["version"]) << " " << text_of(grp["id"]) << "\n";
  }
  return code;
}

struct role_options {
  std::string role, group;
};

int cmd_role(const globals& g, const role_options& o) {
  json body{{"role", o.role}};
  if (!o.group.empty()) body["group"] = o.group;
  auto r = call(g, cmd::client::role, body);
  if (!r) return fail(r.err());
  if (g.json_out) return print_json(*r), cli_ok;
  std::cout << text_of((*r)["address"]) << "\n";
  return cli_ok;
}

}  // namespace

void add_package_commands(command_set& cs) {
  globals& g = cs.g();
  auto keygen = std::make_shared<keygen_options>();
  CLI::App* c =
      cs.add("keygen", "write an Ed25519 signing key NAME.key and its public key NAME.pub",
             "--client: this user's CurveZMQ key for TCP clients, in $TROUPE_HOME/client/.",
             {"troupe keygen keys/release", "troupe keygen --client"}, [&g, keygen] { return cmd_keygen(g, *keygen); });
  c->add_option("NAME", keygen->name, "the key files' path without .key/.pub");
  c->add_flag("--client", keygen->client, "make (or show) this user's client key instead");

  auto trust = std::make_shared<trust_client_options>();
  c = cs.add("trust-client", "let the client holding KEY connect over TCP with a role",
             "read: status, list, avail, role, actors, ask, tell, systems, config;\n"
             "admin: everything. Writes $TROUPE_HOME/clients/ROLE/NAME.pub.",
             {"troupe trust-client bob 'rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7' --role admin",
              "troupe trust-client ci ci-client.pub"},
             [&g, trust] { return cmd_trust_client(g, *trust); });
  c->add_option("NAME", trust->name, "the client's name (the file's stem)")->required();
  c->add_option("KEY", trust->key, "its public key (40 Z85 characters), or a file holding it")->required();
  c->add_option("--role", trust->role, "read or admin")->type_name("read|admin")->capture_default_str();

  auto pack = std::make_shared<pack_options>();
  c = cs.add("pack", "build and sign a package archive; prints its id on the last line",
             "--wheel (runtime: python): a pure-Python wheel (py3-none-any) unpacked\n"
             "into site-packages/, its .dist-info kept for importlib.metadata.",
             {"troupe pack encoders/manifest.yaml --key keys/release.key --out dist/",
              "troupe pack . --key keys/release.key --version date --dep /usr/lib/libfoo.so.1",
              "troupe pack greeter --key keys/release.key --wheel wheels/attrs-23.2.0-py3-none-any.whl"},
             [&g, pack] { return cmd_pack(g, *pack); });
  c->add_option("MANIFEST", pack->manifest, "the manifest (manifest.yaml, or its directory)")->required();
  c->add_option("--key", pack->key, "the signing key (required; troupe keygen NAME makes one)")->type_name("KEY");
  c->add_option("--version", pack->version, "replace the manifest's version (date: UTC YYYYMMDDhhmm)")
      ->type_name("X.Y.Z|date");
  c->add_option("--deps", pack->deps, "a file listing private libraries, one per line")->type_name("FILE");
  c->add_option("--dep", pack->dep, "a private library to ship in the archive")
      ->type_name("LIB")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->allow_extra_args(false);
  c->add_option("--wheel", pack->wheel, "a pure-Python wheel to unpack into site-packages/ (python packages)")
      ->type_name("WHL")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->allow_extra_args(false);
  c->add_option("--out", pack->out, "the archive, or the directory for PACKAGE-VERSION.tpkg (default .)")
      ->type_name("FILE|DIR");

  auto inspect = std::make_shared<inspect_options>();
  c = cs.add("inspect", "verify an archive against the trusted keys; list its entries or print one", "",
             {"troupe inspect encoders-1.0.0.tpkg --contents", "troupe inspect encoders-1.0.0.tpkg manifest.yaml"},
             [&g, inspect] { return cmd_inspect(g, *inspect); });
  c->add_option("PKG", inspect->package, "the archive (.tpkg)")->required();
  c->add_option("FILE", inspect->file, "an entry to print");
  c->add_flag("--contents", inspect->contents, "list the entries");
  c->add_option("--keys", inspect->keys, "the trusted keys (default $TROUPE_HOME/keys)")->type_name("DIR");

  auto load = std::make_shared<load_options>();
  c = cs.add(
      "load", "verify and load a package; prints its id on the last line",
      "FILE: an archive; GROUP: the newest archive of that group in the\n"
      "system's package directory; --unsigned DIR: a package directory.",
      {"troupe load encoders-1.0.0.tpkg", "troupe load encoders", "troupe load --unsigned build/encoders/package"},
      [&g, load] { return cmd_load(g, *load); });
  c->add_option("WHAT", load->what, "FILE, GROUP, or DIR with --unsigned")->required();
  c->add_flag("--unsigned", load->unsigned_dir, "load a package directory (start --allow-unsigned)");

  auto unload = std::make_shared<std::string>();
  c = cs.add("unload", "stop a package's actors and its worker", "", {"troupe unload 3fa9c0127b"},
             [&g, unload] { return cmd_unload(g, *unload); });
  c->add_option("HASH", *unload, "the package id, or a unique prefix of at least 6 hex digits")->required();

  cs.add("list", "list loaded packages", "", {"troupe list", "troupe --json list"}, [&g] { return cmd_list(g); });
  cs.add("avail", "list the archives of the package directory by group, newest first", "", {"troupe avail"},
         [&g] { return cmd_avail(g); });
  cs.add("refresh", "load the newest archive of every group (no-op where loaded)", "", {"troupe refresh"},
         [&g] { return cmd_refresh(g); });

  auto role = std::make_shared<role_options>();
  c = cs.add("role", "print the address of the actor holding an on_load role", "",
             {"troupe role MainRecorder", "troupe role Recorder --group lifecycle"},
             [&g, role] { return cmd_role(g, *role); });
  c->add_option("NAME", role->role, "the role")->required();
  c->add_option("--group", role->group, "the package group, when several have the role")->type_name("G");
}

}  // namespace troupe::tools
