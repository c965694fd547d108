// base/shared_string.hpp — an immutable string that copies share: one
// pointer wide, empty without allocating. The supervisor keeps a record or
// two per actor, and at 100,000 actors the same package id (64 hex digits),
// type and restart reason would otherwise be held once per record and per
// table; here a copy costs a reference count (docs/PERFORMANCE.md §3.0m).
// The count is atomic, so a copy may travel to another thread; the string
// itself is never changed, only replaced.
#pragma once

#include <atomic>
#include <compare>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <utility>

namespace troupe::base {

class shared_string {
 public:
  shared_string() noexcept = default;
  shared_string(std::string s) : b_(s.empty() ? nullptr : new block{{1}, std::move(s)}) {}  // NOLINT: implicit
  shared_string(std::string_view s) : shared_string(std::string(s)) {}                      // NOLINT: implicit
  shared_string(const char* s) : shared_string(std::string(s)) {}                           // NOLINT: implicit
  shared_string(const shared_string& o) noexcept : b_(o.b_) {
    if (b_ != nullptr) b_->refs.fetch_add(1, std::memory_order_relaxed);
  }
  shared_string(shared_string&& o) noexcept : b_(std::exchange(o.b_, nullptr)) {}
  shared_string& operator=(shared_string o) noexcept {
    std::swap(b_, o.b_);
    return *this;
  }
  ~shared_string() {
    if (b_ != nullptr && b_->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete b_;
  }

  [[nodiscard]] const std::string& str() const noexcept { return b_ != nullptr ? b_->s : empty_string(); }
  operator const std::string&() const noexcept { return str(); }  // NOLINT: read as a std::string
  operator std::string_view() const noexcept { return str(); }    // NOLINT: and as a view
  [[nodiscard]] bool empty() const noexcept { return b_ == nullptr; }
  void clear() noexcept { *this = shared_string(); }
  [[nodiscard]] std::size_t size() const noexcept { return str().size(); }
  [[nodiscard]] const char* c_str() const noexcept { return str().c_str(); }
  [[nodiscard]] std::string substr(std::size_t pos, std::size_t n = std::string::npos) const {
    return str().substr(pos, n);
  }
  /// Whether both share one copy (what sharing saves, in tests).
  [[nodiscard]] bool shares_with(const shared_string& o) const noexcept { return b_ == o.b_; }

  friend bool operator==(const shared_string& a, const shared_string& b) noexcept {
    return a.b_ == b.b_ || a.str() == b.str();
  }
  friend bool operator==(const shared_string& a, std::string_view b) noexcept { return a.str() == b; }
  friend bool operator==(const shared_string& a, const std::string& b) noexcept { return a.str() == b; }
  friend bool operator==(const shared_string& a, const char* b) noexcept { return a.str() == b; }
  friend std::strong_ordering operator<=>(const shared_string& a, const shared_string& b) noexcept {
    return a.str() <=> b.str();
  }
  friend std::string operator+(const shared_string& a, std::string_view b) { return a.str() + std::string(b); }
  friend std::string operator+(std::string a, const shared_string& b) { return std::move(a) += b.str(); }
  friend std::string operator+(const char* a, const shared_string& b) { return a + b.str(); }

  /// JSON as a plain string (found by nlohmann's to_json look-up).
  template <class Json>
  friend void to_json(Json& j, const shared_string& s) {
    j = s.str();
  }

 private:
  struct block {
    std::atomic<std::size_t> refs;
    const std::string s;
  };
  static const std::string& empty_string() noexcept {
    static const std::string e;
    return e;
  }
  block* b_ = nullptr;
};

}  // namespace troupe::base

template <>
struct std::hash<troupe::base::shared_string> {
  std::size_t operator()(const troupe::base::shared_string& s) const noexcept { return std::hash<std::string>{}(s); }
};
