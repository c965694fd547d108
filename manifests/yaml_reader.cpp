#include "manifests/yaml_reader.hpp"

#include <algorithm>
#include <charconv>

namespace troupe::manifests::detail {

namespace {

using nlohmann::json;

constexpr int max_depth = 64;               // also stops alias cycles (&a [*a])
constexpr std::size_t max_values = 100000;  // and alias bombs

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

template <class T>
std::optional<T> full_number(std::string_view s) {
  T v{};
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
  return v;
}

// YAML 1.2 core schema integers and floats (decimal only; no .inf or .nan).
json plain_number(std::string_view s) {
  std::string_view unsigned_part = s;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) unsigned_part.remove_prefix(1);
  if (unsigned_part.empty() || unsigned_part[0] == '+' || unsigned_part[0] == '-') return json();
  if (s.starts_with('+')) s.remove_prefix(1);  // from_chars takes '-' only
  if (all_digits(unsigned_part)) {
    if (auto i = full_number<std::int64_t>(s)) return *i;
    if (auto u = full_number<std::uint64_t>(s)) return *u;
  }
  const bool float_chars = std::all_of(unsigned_part.begin(), unsigned_part.end(), [](char c) {
    return (c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-';
  });
  const bool has_digit =
      std::any_of(unsigned_part.begin(), unsigned_part.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (float_chars && has_digit) {
    if (auto d = full_number<double>(s)) return *d;
  }
  return json();  // discarded below: not a number
}

const char* type_name(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Sequence:
      return "a sequence";
    case YAML::NodeType::Null:
      return "nothing";
    default:
      return "a scalar";
  }
}

}  // namespace

std::string quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

std::string describe(const YAML::Node& n) { return n.IsScalar() ? quote(n.Scalar()) : std::string(type_name(n)); }

std::string join(std::string_view path, std::string_view key) {
  return path.empty() ? std::string(key) : std::string(path) + "." + std::string(key);
}

bool is_plain(const YAML::Node& n) { return n.IsScalar() && n.Tag() == "?"; }

json scalar_to_json(const YAML::Node& n) {
  if (n.IsNull()) return nullptr;
  return is_plain(n) ? plain_scalar(n.Scalar()) : json(n.Scalar());
}

json plain_scalar(std::string_view s) {
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  json number = plain_number(s);
  return number.is_null() ? json(std::string(s)) : number;
}

std::optional<std::chrono::milliseconds> parse_duration(std::string_view s) {
  auto digits_end = std::find_if(s.begin(), s.end(), [](char c) { return c < '0' || c > '9'; });
  const std::string_view digits = s.substr(0, static_cast<std::size_t>(digits_end - s.begin()));
  const std::string_view unit = s.substr(digits.size());
  if (digits.empty() || digits.size() > 12) return std::nullopt;  // 10^12 h still fits
  const auto n = static_cast<std::int64_t>(*full_number<std::uint64_t>(digits));
  if (unit == "ms") return std::chrono::milliseconds(n);
  if (unit == "s") return std::chrono::seconds(n);
  if (unit == "m") return std::chrono::minutes(n);
  if (unit == "h") return std::chrono::hours(n);
  return std::nullopt;
}

error yaml_reader::fail(std::string_view path, std::string_view what) const {
  return make_error(errc::invalid_argument,
                    source_ + ": " + std::string(path.empty() ? "(top)" : path) + ": " + std::string(what));
}

result<std::vector<std::pair<std::string, YAML::Node>>> yaml_reader::entries(
    const YAML::Node& n, std::string_view path, std::initializer_list<std::string_view> allowed) const {
  std::vector<std::pair<std::string, YAML::Node>> out;
  if (n.IsNull()) return out;
  if (!n.IsMap()) return fail(path, std::string("must be a map, got ") + type_name(n));
  for (auto it = n.begin(); it != n.end(); ++it) {
    if (!it->first.IsScalar() || it->first.Scalar().empty())
      return fail(path, "keys must be names, got " + std::string(type_name(it->first)));
    std::string key = it->first.Scalar();
    const std::string at = join(path, key);
    if (allowed.size() != 0 && std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      std::string expected;
      for (auto a : allowed) expected += (expected.empty() ? "" : ", ") + std::string(a);
      return fail(at, "unknown key (expected " + expected + ")");
    }
    if (std::any_of(out.begin(), out.end(), [&](const auto& e) { return e.first == key; }))
      return fail(at, "repeated key");
    out.emplace_back(std::move(key), it->second);
  }
  return out;
}

result<std::string> yaml_reader::text(const YAML::Node& n, std::string_view path) const {
  if (!n.IsScalar()) return fail(path, std::string("must be a string, got ") + type_name(n));
  return n.Scalar();
}

result<bool> yaml_reader::boolean(const YAML::Node& n, std::string_view path) const {
  const json v = n.IsScalar() ? scalar_to_json(n) : json();
  if (v.is_boolean()) return v.get<bool>();
  return fail(path, describe(n) + " is not a boolean (use true or false)");
}

result<std::uint64_t> yaml_reader::count(const YAML::Node& n, std::string_view path) const {
  if (n.IsScalar() && all_digits(n.Scalar())) {
    if (auto v = full_number<std::uint64_t>(n.Scalar())) return *v;
  }
  return fail(path, describe(n) + " is not a whole number");
}

result<std::chrono::milliseconds> yaml_reader::duration(const YAML::Node& n, std::string_view path) const {
  if (n.IsScalar()) {
    if (auto d = parse_duration(n.Scalar())) return *d;
  }
  return fail(path, describe(n) + " is not a duration (use 250ms, 10s, 2m)");
}

result<json> yaml_reader::value(const YAML::Node& n, std::string_view path) const {
  std::size_t budget = max_values;
  return value_at(n, std::string(path), 0, budget);
}

result<json> yaml_reader::value_at(const YAML::Node& n, const std::string& path, int depth, std::size_t& budget) const {
  if (depth > max_depth) return fail(path, "nested deeper than 64 levels");
  if (budget == 0) return fail(path, "more than 100000 values");
  --budget;
  if (n.IsSequence()) {
    json out = json::array();
    std::size_t i = 0;
    for (auto it = n.begin(); it != n.end(); ++it, ++i) {
      auto item = value_at(*it, path + "[" + std::to_string(i) + "]", depth + 1, budget);
      if (!item) return item.err();
      out.push_back(std::move(*item));
    }
    return out;
  }
  if (n.IsMap()) {
    json out = json::object();
    for (auto it = n.begin(); it != n.end(); ++it) {
      if (!it->first.IsScalar()) return fail(path, "map keys must be scalars");
      const std::string& key = it->first.Scalar();
      auto item = value_at(it->second, join(path, key), depth + 1, budget);
      if (!item) return item.err();
      out[key] = std::move(*item);
    }
    return out;
  }
  return scalar_to_json(n);
}

}  // namespace troupe::manifests::detail
