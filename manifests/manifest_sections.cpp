#include "manifests/manifest_sections.hpp"

#include <algorithm>
#include <limits>
#include <optional>

namespace troupe::manifests::detail {

bool name_chars(std::string_view s, std::string_view extra) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [&](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           extra.find(c) != std::string_view::npos;
  });
}

namespace {

result<capability_value> number_after(const yaml_reader& r, std::string_view text, std::string_view path) {
  std::string_view rest = text.substr(2);
  while (rest.starts_with(' ')) rest.remove_prefix(1);
  const json n = plain_scalar(rest);
  if (n.is_number_integer() && !n.is_number_unsigned()) return capability_value(n.get<std::int64_t>());
  if (n.is_number()) return capability_value(n.get<double>());
  return r.fail(path, quote(text) + " needs a number after " + std::string(text.substr(0, 2)) + " (e.g. \">=16\")");
}

result<requirement> parse_requirement(const yaml_reader& r, const std::string& cap, const YAML::Node& n,
                                      const std::string& path) {
  // Spaces inside are allowed ("Caesar cipher", as in `start --caps`); not at
  // either end, where --caps trims them.
  if (!name_chars(cap, ".- ") || cap.front() == ' ' || cap.back() == ' ')
    return r.fail(path, quote(cap) + " is not a capability name (use letters, digits, spaces inside, _ . -)");
  requirement req{cap, requirement::op::equals, {}};
  const json v = n.IsScalar() ? scalar_to_json(n) : json();
  if (v.is_boolean()) {
    req.value = v.get<bool>();
  } else if (v.is_number_integer() && !v.is_number_unsigned()) {
    req.value = v.get<std::int64_t>();
  } else if (v.is_number()) {
    req.value = v.get<double>();
  } else if (v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    if (s.starts_with(">=") || s.starts_with("<=")) {
      auto bound = number_after(r, s, path);
      if (!bound) return bound.err();
      req.op = s[0] == '>' ? requirement::op::at_least : requirement::op::at_most;
      req.value = std::move(*bound);
    } else if (is_plain(n) && (s == "exists" || s == "absent")) {
      req.op = s == "exists" ? requirement::op::exists : requirement::op::absent;
    } else {
      req.value = s;
    }
  } else {
    return r.fail(path, "must be true, a number, \">=N\", \"<=N\", a string, exists or absent");
  }
  return req;
}

}  // namespace

result<std::vector<requirement>> parse_requirements(const yaml_reader& r, const YAML::Node& n,
                                                    const std::string& path) {
  auto entries = r.entries(n, path, {});
  if (!entries) return entries.err();
  std::vector<requirement> out;
  for (const auto& [cap, value] : *entries) {
    auto req = parse_requirement(r, cap, value, join(path, cap));
    if (!req) return req.err();
    out.push_back(std::move(*req));
  }
  return out;
}

namespace {

result<restart_policy> parse_policy(const yaml_reader& r, const YAML::Node& n, const std::string& path) {
  auto s = r.text(n, path);
  if (!s) return s.err();
  if (*s == "permanent") return restart_policy::permanent;
  if (*s == "transient") return restart_policy::transient;
  if (*s == "temporary") return restart_policy::temporary;
  return r.fail(path, quote(*s) + " is not a restart policy (use permanent, transient or temporary)");
}

status parse_backoff(const yaml_reader& r, const YAML::Node& n, const std::string& path, restart_spec& out) {
  auto s = r.text(n, path);
  if (!s) return s.err();
  const auto dots = s->find("..");
  const auto lo = parse_duration(std::string_view(*s).substr(0, dots));
  const auto hi = dots == std::string::npos ? lo : parse_duration(s->substr(dots + 2));
  if (!lo || !hi) return r.fail(path, quote(*s) + " is not a backoff (use 10ms..2s, or one duration)");
  if (*lo > *hi) return r.fail(path, quote(*s) + ": the first bound is larger than the second");
  out.backoff_min = *lo;
  out.backoff_max = *hi;
  return ok_v;
}

}  // namespace

result<restart_spec> parse_restart(const yaml_reader& r, const YAML::Node& n, const std::string& path) {
  auto entries = r.entries(n, path, {"policy", "max_restarts", "within", "backoff"});
  if (!entries) return entries.err();
  restart_spec out;
  for (const auto& [key, value] : *entries) {
    const std::string at = join(path, key);
    if (key == "policy") {
      if (auto s = assign(parse_policy(r, value, at), out.policy); !s) return s.err();
    } else if (key == "max_restarts") {
      auto c = r.count(value, at);
      if (!c) return c.err();
      if (*c > std::numeric_limits<std::uint32_t>::max()) return r.fail(at, "is too large");
      out.max_restarts = static_cast<std::uint32_t>(*c);
    } else if (key == "within") {
      auto d = r.duration(value, at);
      if (!d) return d.err();
      if (d->count() == 0) return r.fail(at, "must be longer than 0");
      out.within = *d;
    } else if (auto s = parse_backoff(r, value, at, out); !s) {
      return s.err();
    }
  }
  return out;
}

namespace {

result<std::string> parse_label(const yaml_reader& r, const YAML::Node& n, const std::string& path) {
  auto s = r.text(n, path);
  if (s && s->empty()) return r.fail(path, "must not be empty");
  return s;
}

}  // namespace

result<load_hook> parse_on_load(const yaml_reader& r, const YAML::Node& n, const std::string& path) {
  auto entries = r.entries(n, path, {"role", "global_name", "message"});
  if (!entries) return entries.err();
  load_hook out;
  for (const auto& [key, value] : *entries) {
    const std::string at = join(path, key);
    if (key == "message") {
      auto m = r.value(value, at);
      if (!m) return m.err();
      out.message = std::move(*m);
      continue;
    }
    auto s = parse_label(r, value, at);
    if (!s) return s.err();
    (key == "role" ? out.role : out.global_name) = std::move(*s);
  }
  return out;
}

result<hook> parse_hook(const yaml_reader& r, const YAML::Node& n, const std::string& path) {
  auto entries = r.entries(n, path, {"message"});
  if (!entries) return entries.err();
  hook out;
  for (const auto& [key, value] : *entries) {
    auto m = r.value(value, join(path, key));
    if (!m) return m.err();
    out.message = std::move(*m);
  }
  return out;
}

result<isolation_mode> parse_isolation(const yaml_reader& r, const YAML::Node& n, const std::string& path) {
  auto s = r.text(n, path);
  if (!s) return s.err();
  if (*s == "shared") return isolation_mode::shared;
  if (*s == "dedicated") return isolation_mode::dedicated;
  return r.fail(path, quote(*s) + " is not an isolation (use shared or dedicated)");
}

}  // namespace troupe::manifests::detail

namespace troupe::manifests::detail {

std::optional<std::uint64_t> parse_size(std::string_view s) {
  int shift = 0;
  if (!s.empty()) {
    const auto unit = std::string_view("KMGT").find(s.back());
    if (unit != std::string_view::npos) {
      shift = 10 * static_cast<int>(unit + 1);
      s.remove_suffix(1);
    }
  }
  // At most 15 digits, so that the shift below cannot overflow 64 bits
  // before the check.
  if (s.empty() || s.size() > 15 || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  std::uint64_t v = 0;
  for (const char c : s) v = v * 10 + static_cast<std::uint64_t>(c - '0');
  if (shift > 0 && v > (std::numeric_limits<std::uint64_t>::max() >> shift)) return std::nullopt;
  return v << shift;
}

result<resource_limits> parse_limits(const yaml_reader& r, const YAML::Node& n, const std::string& path) {
  auto entries = r.entries(n, path, {"memory", "cpu_time", "open_files", "processes"});
  if (!entries) return entries.err();
  resource_limits out;
  for (const auto& [key, value] : *entries) {
    const std::string at = join(path, key);
    if (key == "memory") {
      const auto bytes = value.IsScalar() ? parse_size(value.Scalar()) : std::nullopt;
      if (!bytes) return r.fail(at, describe(value) + " is not a size (use 512M, 2G)");
      if (*bytes < min_memory_limit) return r.fail(at, quote(value.Scalar()) + " must be at least 32M");
      out.memory = *bytes;
    } else if (key == "cpu_time") {
      auto d = r.duration(value, at);
      if (!d) return d.err();
      // RLIMIT_CPU counts whole seconds.
      if (d->count() < 1000 || d->count() % 1000 != 0)
        return r.fail(at, quote(value.Scalar()) + " must be a whole number of seconds, at least 1s");
      out.cpu_time = std::chrono::duration_cast<std::chrono::seconds>(*d);
    } else {
      auto c = r.count(value, at);
      if (!c) return c.err();
      const bool files = key == "open_files";
      const std::uint64_t lo = files ? min_open_files_limit : min_processes_limit;
      const std::uint64_t hi = files ? max_open_files_limit : max_processes_limit;
      if (*c < lo || *c > hi)
        return r.fail(at,
                      quote(value.Scalar()) + " must be between " + std::to_string(lo) + " and " + std::to_string(hi));
      (files ? out.open_files : out.processes) = *c;
    }
  }
  return out;
}

}  // namespace troupe::manifests::detail
