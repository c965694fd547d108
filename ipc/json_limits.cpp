#include "ipc/json_limits.hpp"

#include <string>

namespace troupe::ipc {

std::size_t json_depth(std::string_view text, std::size_t limit) {
  std::size_t depth = 0, deepest = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i;  // the escaped character cannot end the string
      else if (c == '"')
        in_string = false;
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        break;
      case '[':
      case '{':
        if (++depth > deepest && (deepest = depth) > limit) return deepest;
        break;
      case ']':
      case '}':
        if (depth > 0) --depth;  // unbalanced text is the parser's to refuse
        break;
      default:
        break;
    }
  }
  return deepest;
}

result<nlohmann::json> parse_json(std::string_view text, std::size_t max_depth) {
  if (json_depth(text, max_depth) > max_depth)
    return make_error(errc::limit, "JSON nested deeper than " + std::to_string(max_depth) + " levels");
  auto j = nlohmann::json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return make_error(errc::invalid_argument, "not valid JSON");
  return j;
}

namespace {

// Keeps one scalar of the top-level object; everything else is skipped.
class scalar_finder final : public nlohmann::json_sax<nlohmann::json> {
 public:
  explicit scalar_finder(std::string_view key) : key_(key) {}
  nlohmann::json found;

  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t v) override { return keep(v); }
  bool number_unsigned(number_unsigned_t v) override { return keep(v); }
  bool number_float(number_float_t v, const string_t&) override { return keep(v); }
  bool string(string_t& v) override { return keep(v); }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return open(); }
  bool end_object() override { return close(); }
  bool start_array(std::size_t) override { return open(); }
  bool end_array() override { return close(); }
  bool key(string_t& k) override {
    at_key_ = depth_ == 1 && k == key_;
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override { return false; }

 private:
  template <class T>
  bool keep(const T& v) {
    if (at_key_ && depth_ == 1) found = v;
    at_key_ = false;
    return true;
  }
  bool open() {
    at_key_ = false;
    ++depth_;
    return true;
  }
  bool close() {
    --depth_;
    return true;
  }
  std::string_view key_;
  std::size_t depth_ = 0;
  bool at_key_ = false;
};

}  // namespace

nlohmann::json top_level_scalar(std::string_view text, std::string_view key) {
  scalar_finder finder(key);
  (void)nlohmann::json::sax_parse(text.begin(), text.end(), &finder, nlohmann::json::input_format_t::json,
                                  /*strict=*/false);
  return finder.found;
}

}  // namespace troupe::ipc
