// fuzz/make_seeds.cpp — writes the generated seeds of fuzz/corpus/: real
// messages made by the project's own encoders, each next to a few broken
// variants. `fuzz_make_seeds fuzz/corpus` rewrites them (hand-written seeds,
// such as the fixtures' manifests, are left alone); the output is committed.

#include "fuzz/common.hpp"
#include "ipc/commands.hpp"
#include "ipc/protocol.hpp"
#include "ipc/wire.hpp"
#include "manifests/archive.hpp"
#include "manifests/signing.hpp"
#include "supervisor/capabilities.hpp"
#include "supervisor/membership.hpp"

#include <nlohmann/json.hpp>

#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace troupe;
using fuzz::expect;

fs::path out_dir;

void seed(const std::string& target, const std::string& name, const std::string& bytes) {
  const fs::path dir = out_dir / target;
  fs::create_directories(dir);
  std::ofstream(dir / name, std::ios::binary) << bytes;
}

const std::string control_sig(ipc::control_signature.data(), ipc::control_signature.size());

std::string frames(std::uint8_t flags, const std::vector<std::string>& parts) { return fuzz::join(flags, parts); }

void control_seeds() {
  const json spawn{{"rid", 7}, {"type", "Morse"}, {"package", "encoders"}, {"name", "morse"}};
  seed("control", "spawn", frames(0, {control_sig, std::string(ipc::cmd::client::spawn), spawn.dump()}));
  seed("control", "identity_status",
       frames(2, {"\x00\x01\x02\x03", control_sig, std::string(ipc::cmd::client::status), R"({"rid":"a1"})"}));
  seed("control", "peer_blob",
       frames(1, {control_sig, "package", R"({"rid":3,"id":"ab12","size":4})", std::string("\x00\x01\x02\x03", 4)}));
  seed("control", "worker_created",
       frames(0, {control_sig, std::string(ipc::cmd::worker::created),
                  R"({"address":"3fa9c012:00000010","epoch":2,"type":"Morse","payload":{"a":[1,2.5,null,true]}})"}));
  seed("control", "bad_version", frames(0, {std::string("TRC\x02", 4), "ping", R"({"rid":1})"}));
  seed("control", "not_object", frames(0, {control_sig, "ping", R"([1,2,3])"}));
  seed("control", "too_deep", frames(0, {control_sig, "ping", std::string(300, '[') + std::string(300, ']')}));
  seed("control", "bad_json_rid", frames(0, {control_sig, "ping", R"({"rid":9,"x":[}")"}));
  seed("control", "two_frames", frames(0, {control_sig, "ping"}));
  seed("control", "long_command", frames(0, {control_sig, std::string(65, 'c'), "{}"}));
}

void wire_seeds() {
  using ipc::record_kind;
  std::string batch;
  ipc::begin_batch(batch);
  const address to(0x3fa9c01200000010ull), from(0x3fa9c01200000001ull);
  ipc::append_record(batch, {record_kind::channel, 0, {}, {}, 42, 0, {}, "ipc:///tmp/troupe/ack"});
  ipc::append_record(batch, {record_kind::tell, 0, to, from, 0, 1, "text", "hello"});
  ipc::append_record(batch, {record_kind::ask, 1, to, from, 99, 2, "json", R"({"op":"encode","text":"sos"})"});
  seed("wire", "channel_tell_ask", batch);

  std::string replies;
  ipc::begin_batch(replies);
  ipc::append_record(replies, {record_kind::reply, 0, from, to, 99, 0, "text", "... --- ..."});
  ipc::append_record(replies, {record_kind::ask_failed, 0, from, to, 100, 0, {}, "no such actor"});
  ipc::append_record(replies, {record_kind::poison, 0, from, to, 0, 3, "text",
                               ipc::encode_poison("handler threw: bad input", "hello")});
  ipc::append_record(replies, {record_kind::ack, 0, {}, {}, 42, 3, {}, ipc::encode_ack_first(1)});
  ipc::append_record(replies, {record_kind::exited, 0, from, to, 0, 0, {}, "stopped"});
  seed("wire", "replies_poison_ack", replies);

  seed("wire", "signature_only", batch.substr(0, 4));
  seed("wire", "truncated", batch.substr(0, batch.size() - 3));
  std::string bad_kind = batch;
  bad_kind[8] = 5;  // the first record's kind: 5 is no kind
  seed("wire", "unknown_kind", bad_kind);
  std::string bad_poison;
  ipc::begin_batch(bad_poison);
  ipc::append_record(bad_poison, {record_kind::poison, 0, from, to, 0, 0, {}, std::string("\xff\xff\xff\x7f", 4)});
  seed("wire", "poison_overlong_reason", bad_poison);
}

void peer_seeds() {
  supervisor::member_info m;
  m.system_id = 0x3fa9c012;
  m.host = "10.0.0.5";
  m.port = 1900;
  m.peer_endpoint = "tcp://10.0.0.5:1901";
  m.public_key = std::string(40, 'k');
  m.caps = {{"morse", true}, {"gpu_mem", std::int64_t{16}}, {"load", 0.5}, {"region", std::string("eu")}};
  m.actors = 12;
  m.leader = true;
  const json member = supervisor::to_json(m);
  seed("peer", "member", member.dump());
  seed("peer", "join", json{{"rid", 1}, {"member", member}}.dump());
  json other = member;
  other["system"] = "00000002";
  other["leader"] = false;
  other["state"] = "down";
  seed("peer", "members", json{{"members", json::array({member, other})}}.dump());
  seed("peer", "chgcap", json{{"rid", 2}, {"capabilities", supervisor::to_json(m.caps)}}.dump());
  json bad = member;
  bad["port"] = 0;
  seed("peer", "member_port_zero", bad.dump());
  bad = member;
  bad["capabilities"]["x"] = json::array();
  seed("peer", "member_caps_array", bad.dump());
  seed("peer", "caps_huge_unsigned", R"({"capabilities":{"n":18446744073709551615,"f":1e308,"":1}})");
  seed("peer", "too_deep", "{\"member\":" + std::string(300, '[') + std::string(300, ']') + "}");
}

const std::string manifest_text =
    "package: encoders\n"
    "version: 1.4.2\n"
    "library: lib/libencoders.so\n"
    "actors:\n"
    "  Morse:\n"
    "    requires: { morse: true, gpu_mem: \">=16\" }\n"
    "    restart: { policy: permanent, max_restarts: 3, within: 10s, backoff: 10ms..2s }\n"
    "    on_load: { role: main, global_name: morse, message: { op: warm_up } }\n";

void manifest_seeds() {
  seed("manifest", "full.yaml", manifest_text);
  seed("manifest", "bad_duration.yaml",
       "package: p\nversion: 1\nlibrary: l.so\nactors:\n  A: { restart: { within: \"10\" } }\n");
  seed("manifest", "bad_requires.yaml",
       "package: p\nversion: 1\nlibrary: l.so\nactors:\n  A: { requires: { \"gpu,mem\": \">=lots\" } }\n");
  seed("manifest", "syntax_error.yaml", "package: [p\nversion: 1\n\tlibrary: l.so\n");
  seed("manifest", "deep_message.yaml",
       "package: p\nversion: 1\nlibrary: l.so\nactors:\n  A: { on_load: { message: " + std::string(200, '[') +
           std::string(200, ']') + " } }\n");
}

void archive_seeds(const fs::path& key_dir) {
  using manifests::entry_kind;
  const std::vector<manifests::pack_entry> good{
      {"manifest.yaml", entry_kind::file, manifest_text, "", false},
      {"lib", entry_kind::directory, "", "", false},
      {"lib/libencoders.so", entry_kind::file, "\177ELF not really", "", true},
      {"lib/libencoders.so.1", entry_kind::symlink, "", "libencoders.so", false}};
  // Mode byte 1: the target signs the tar itself, so the fuzzer reaches the tar walk.
  seed("archive", "tar_valid", "\x01" + manifests::write_tar(good));
  auto with = [&](manifests::pack_entry extra) {
    auto entries = good;
    entries.push_back(std::move(extra));
    return "\x01" + manifests::write_tar(entries);
  };
  seed("archive", "tar_dotdot", with({"../evil", entry_kind::file, "x", "", false}));
  seed("archive", "tar_symlink_escapes", with({"lib/up", entry_kind::symlink, "", "../../etc/passwd", false}));
  seed("archive", "tar_hardlink", with({"lib/hard", entry_kind::hardlink, "", "manifest.yaml", false}));
  seed("archive", "tar_twice", with({"manifest.yaml", entry_kind::file, manifest_text, "", false}));
  seed("archive", "tar_no_manifest",
       "\x01" + manifests::write_tar({{"lib/libencoders.so", entry_kind::file, "x", "", false}}));
  // Mode byte 0: whole archive files, signed by a key the target does not trust.
  expect(static_cast<bool>(manifests::generate_key_pair(key_dir / "seed")), "generate a key");
  auto key = manifests::signing_key::read(key_dir / "seed.key");
  expect(static_cast<bool>(key), "read the key");
  const std::string signed_archive = manifests::sign_payload(manifests::write_tar(good), *key);
  seed("archive", "signed_unknown_key", std::string(1, '\0') + signed_archive);
  seed("archive", "signed_truncated", std::string(1, '\0') + signed_archive.substr(0, signed_archive.size() - 1));
  seed("archive", "unsigned", std::string(1, '\0') + manifests::write_tar(good));
}

void capability_seeds() {
  seed("capabilities", "docs_example",
       frames(0, {"morse,Caesar cipher,gpu_mem=16,region=eu,load=0.75,tls=false",
                  "{ morse: true, gpu_mem: \">=16\", region: \"eu\", tls: exists, legacy: absent }", "1.4.2"}));
  seed("capabilities", "at_most_unmet",
       frames(0, {"gpu_mem=8, region = us ", "{ gpu_mem: \"<=4\", \"Caesar cipher\": true }", "202611231015"}));
  seed("capabilities", "bad_entries", frames(0, {",,=1,x=", "{ gpu_mem: \">=lots\", a: [1] }", "1..2"}));
  seed("capabilities", "bad_version", frames(0, {"a", "{}", "1.2.3.4.5"}));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_make_seeds CORPUS_DIR\n");
    return 2;
  }
  out_dir = argv[1];
  std::string tmp = (fs::temp_directory_path() / "troupe-seeds-XXXXXX").string();
  expect(::mkdtemp(tmp.data()) != nullptr, "mkdtemp");
  control_seeds();
  wire_seeds();
  peer_seeds();
  manifest_seeds();
  archive_seeds(tmp);
  capability_seeds();
  fs::remove_all(tmp);
  return 0;
}
