#include "manifests/manifest.hpp"

#include "base/hex.hpp"
#include "manifests/manifest_sections.hpp"

#include <algorithm>
#include <filesystem>
#include <limits>

namespace troupe::manifests {

namespace {

using detail::join;
using detail::quote;
using detail::yaml_reader;

// A Python identifier in ASCII: a letter or _, then letters, digits and _.
bool python_name(std::string_view s) {
  if (s.empty() || (s[0] >= '0' && s[0] <= '9')) return false;
  return detail::name_chars(s, "");
}

bool module_name(std::string_view s) {
  if (s.empty()) return false;
  for (std::size_t start = 0;;) {
    const auto dot = s.find('.', start);
    if (!python_name(s.substr(start, dot == std::string_view::npos ? dot : dot - start))) return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

result<actor_spec> parse_actor(const yaml_reader& r, const std::string& type, const YAML::Node& n,
                               const std::string& path) {
  if (!detail::name_chars(type, ""))
    return r.fail(path, quote(type) + " is not an actor type name (use letters, digits and _)");
  auto entries = r.entries(
      n, path,
      {"requires", "restart", "isolation", "max_handle_time", "on_load", "on_deactivate", "on_reactivate", "class"});
  if (!entries) return entries.err();
  actor_spec a;
  a.type = type;
  for (const auto& [key, value] : *entries) {
    const std::string at = join(path, key);
    status s = ok_v;
    if (key == "requires") {
      s = detail::assign(detail::parse_requirements(r, value, at), a.requirements);
    } else if (key == "restart") {
      s = detail::assign(detail::parse_restart(r, value, at), a.restart);
    } else if (key == "isolation") {
      s = detail::assign(detail::parse_isolation(r, value, at), a.isolation);
    } else if (key == "max_handle_time") {
      s = detail::assign(r.duration(value, at), a.max_handle_time);
    } else if (key == "class") {
      auto c = r.text(value, at);
      if (!c) return c.err();
      if (!python_name(*c)) return r.fail(at, quote(*c) + " is not a Python class name (letters, digits and _)");
      a.python_class = std::move(*c);
    } else if (key == "on_load") {
      s = detail::assign(detail::parse_on_load(r, value, at), a.on_load);
    } else {
      auto& target = key == "on_deactivate" ? a.on_deactivate : a.on_reactivate;
      s = detail::assign(detail::parse_hook(r, value, at), target);
    }
    if (!s) return s.err();
  }
  return a;
}

status check_package(const yaml_reader& r, const std::string& name) {
  if (!detail::name_chars(name, ".-") || name.size() > 64 || name == "." || name == "..")
    return r.fail("package", quote(name) + " is not a package name (1 to 64 letters, digits, _ . -)");
  return ok_v;
}

status check_library(const yaml_reader& r, const std::string& lib) {
  if (lib.empty()) return r.fail("library", "must not be empty");
  if (lib.find('\0') != std::string::npos) return r.fail("library", "must not contain NUL");
  const std::filesystem::path p(lib);
  if (p.is_absolute() || lib.starts_with('/'))
    return r.fail("library", quote(lib) + " must be a path relative to the package");
  for (const auto& part : p) {
    if (part == "..") return r.fail("library", quote(lib) + " must stay inside the package (no ..)");
  }
  return ok_v;
}

status parse_field(const yaml_reader& r, const std::string& key, const YAML::Node& value, manifest& m) {
  if (key == "actors") {
    auto entries = r.entries(value, key, {});
    if (!entries) return entries.err();
    if (entries->empty()) return r.fail(key, "must list at least one actor type");
    for (const auto& [type, spec] : *entries) {
      auto a = parse_actor(r, type, spec, join(key, type));
      if (!a) return a.err();
      m.actors.push_back(std::move(*a));
    }
    return ok_v;
  }
  if (key == "limits") return detail::assign(detail::parse_limits(r, value, key), m.limits);
  if (key == "auto_unload") return detail::assign(r.boolean(value, key), m.auto_unload);
  if (key == "system_packages") return detail::assign(r.boolean(value, key), m.system_packages);
  if (key == "keep") {
    auto c = r.count(value, key);
    if (!c) return c.err();
    if (*c < 1 || *c > std::numeric_limits<std::uint32_t>::max())
      return r.fail(key, quote(value.Scalar()) + " must be between 1 and 4294967295");
    m.keep = static_cast<std::uint32_t>(*c);
    return ok_v;
  }
  auto s = r.text(value, key);
  if (!s) return s.err();
  if (key == "version") {
    auto v = parse_version(*s);
    if (!v) return r.fail(key, v.err().message);
    m.version = std::move(*v);
    return ok_v;
  }
  if (key == "runtime") {
    if (*s == "native") {
      m.runtime = runtime_kind::native;
    } else if (*s == "python") {
      m.runtime = runtime_kind::python;
    } else {
      return r.fail(key, quote(*s) + " is not a runtime (use native or python)");
    }
    return ok_v;
  }
  if (key == "module") {
    if (!module_name(*s)) return r.fail(key, quote(*s) + " is not a Python module name (e.g. encoders or app.actors)");
    m.module = std::move(*s);
    return ok_v;
  }
  (key == "package" ? m.package : m.library) = std::move(*s);
  return key == "package" ? check_package(r, m.package) : check_library(r, m.library);
}

bool has_key(const std::vector<std::pair<std::string, YAML::Node>>& entries, std::string_view key) {
  return std::any_of(entries.begin(), entries.end(), [&](const auto& e) { return e.first == key; });
}

// Which fields go with which runtime (docs/MANIFEST.md §3.2).
status check_runtime(const yaml_reader& r, const std::vector<std::pair<std::string, YAML::Node>>& entries,
                     const manifest& m) {
  if (m.runtime == runtime_kind::python) {
    if (has_key(entries, "library"))
      return r.fail("library", "not for runtime: python (a python package names its module instead)");
    if (!has_key(entries, "module")) return r.fail("module", "missing (required for runtime: python)");
    return ok_v;
  }
  if (!has_key(entries, "library")) return r.fail("library", "missing (required)");
  for (const char* key : {"module", "system_packages"})
    if (has_key(entries, key)) return r.fail(key, "only for runtime: python");
  for (const auto& a : m.actors)
    if (!a.python_class.empty()) return r.fail(join(join("actors", a.type), "class"), "only for runtime: python");
  return ok_v;
}

result<manifest> parse_document(const yaml_reader& r, const YAML::Node& doc) {
  auto entries = r.entries(doc, "",
                           {"package", "version", "runtime", "library", "module", "system_packages", "actors",
                            "auto_unload", "keep", "limits"});
  if (!entries) return entries.err();
  manifest m;
  for (const auto& [key, value] : *entries) {
    if (auto s = parse_field(r, key, value, m); !s) return s.err();
  }
  for (const char* required : {"package", "version"})
    if (!has_key(*entries, required)) return r.fail(required, "missing (required)");
  if (auto s = check_runtime(r, *entries, m); !s) return s.err();
  if (!has_key(*entries, "actors")) return r.fail("actors", "missing (required)");
  return m;
}

// Errors quote keys and values of the document, which may hold control
// characters ("a\nb" as a key): escaped, so that a manifest from a peer keeps
// its error on one line of the log and cannot forge the next one.
error one_line(error e) {
  e.message = base::escape_controls(e.message);
  return e;
}

}  // namespace

const actor_spec* manifest::find_actor(std::string_view type) const {
  for (const auto& a : actors) {
    if (a.type == type) return &a;
  }
  return nullptr;
}

std::vector<std::string> module_files(std::string_view module) {
  std::string path(module);
  std::replace(path.begin(), path.end(), '.', '/');
  return {path + ".py", path + "/__init__.py"};
}

result<manifest> parse_manifest(std::string_view yaml_text, std::string_view source_name) {
  const std::string source(source_name);
  if (yaml_text.size() > max_manifest_bytes) return make_error(errc::invalid_argument, source + ": larger than 1 MiB");
  // The one place yaml-cpp may throw (syntax errors, or a bug in a read
  // above): nothing escapes this component.
  try {
    const YAML::Node doc = YAML::Load(std::string(yaml_text));
    auto m = parse_document(yaml_reader(source), doc);
    if (!m) return one_line(m.err());
    return m;
  } catch (const YAML::Exception& e) {
    const std::string where = e.mark.is_null() ? std::string()
                                               : "line " + std::to_string(e.mark.line + 1) + ", column " +
                                                     std::to_string(e.mark.column + 1) + ": ";
    return one_line(make_error(errc::invalid_argument, source + ": " + where + e.msg));
  } catch (const std::exception& e) {
    return one_line(make_error(errc::internal, source + ": internal error: " + e.what()));
  }
}

}  // namespace troupe::manifests
