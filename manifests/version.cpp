#include "manifests/version.hpp"

#include <algorithm>
#include <charconv>

namespace troupe::manifests {

namespace {

constexpr std::size_t max_fields = 4;

error bad_version(std::string_view text) {
  return make_error(errc::invalid_argument,
                    "\"" + std::string(text) + "\" is not a version (use 1 to 4 dot-separated numbers, e.g. 1.4.2)");
}

bool parse_field(std::string_view s, std::uint64_t& out) {
  if (s.empty() || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && end == s.data() + s.size();
}

}  // namespace

result<version> parse_version(std::string_view text) {
  version v;
  v.text = std::string(text);
  std::string_view rest = text;
  while (true) {
    auto dot = rest.find('.');
    std::uint64_t field = 0;
    if (!parse_field(rest.substr(0, dot), field) || v.fields.size() == max_fields) return bad_version(text);
    v.fields.push_back(field);
    if (dot == std::string_view::npos) break;
    rest.remove_prefix(dot + 1);
  }
  return v;
}

std::strong_ordering operator<=>(const version& a, const version& b) {
  const std::size_t n = std::max(a.fields.size(), b.fields.size());
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint64_t x = i < a.fields.size() ? a.fields[i] : 0;
    const std::uint64_t y = i < b.fields.size() ? b.fields[i] : 0;
    if (x != y) return x <=> y;
  }
  return std::strong_ordering::equal;
}

}  // namespace troupe::manifests
