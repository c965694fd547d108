// worker/package_host.hpp — loads one package library into this process and
// checks its ABI. The worker holds exactly one package_host for its lifetime.
// Not thread-safe; used from the worker's loop thread.
#pragma once

#include <troupe/abi.h>
#include <troupe/result.hpp>

#include <string>
#include <string_view>
#include <unordered_map>

namespace troupe::worker {

class package_host {
 public:
  package_host() = default;
  package_host(const package_host&) = delete;
  package_host& operator=(const package_host&) = delete;
  ~package_host();

  /// dlopens library, finds TROUPE_ENTRY_SYMBOL, calls it with host and checks
  /// the ABI version. Errors name the library and what is wrong with it.
  status load(const std::string& library, const troupe_host_v1* host);

  /// Takes a descriptor filled in this process by a package loader of
  /// another runtime (python), checked as load() checks a library's; name
  /// prefixes errors.
  status adopt(const std::string& name, const troupe_package_v1& package);

  /// The actor type called name, or nullptr.
  [[nodiscard]] const troupe_actor_type_v1* find(std::string_view name) const;

  [[nodiscard]] const troupe_package_v1& descriptor() const { return package_; }

 private:
  status check(const std::string& library);

  void* handle_ = nullptr;
  troupe_package_v1 package_{};
  std::unordered_map<std::string, const troupe_actor_type_v1*> types_;
};

}  // namespace troupe::worker
