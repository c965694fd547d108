#include "worker/package_host.hpp"

#include <dlfcn.h>

namespace troupe::worker {

package_host::~package_host() {
  // Deliberately not dlclose()d: actor code may still be referenced by
  // static destructors the package registered; the process exits anyway.
}

status package_host::load(const std::string& library, const troupe_host_v1* host) {
  // RTLD_LOCAL keeps the package's symbols (and its private libraries') out
  // of the global namespace; RTLD_NOW reports a missing dependency here, once.
  handle_ = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle_ == nullptr) return make_error(errc::refused, std::string("cannot load package library: ") + dlerror());
  dlerror();
  auto entry = reinterpret_cast<troupe_entry_fn>(dlsym(handle_, TROUPE_ENTRY_SYMBOL));
  if (entry == nullptr)
    return make_error(errc::refused, "package library " + library + " has no " + TROUPE_ENTRY_SYMBOL +
                                         " entry point (was it built with TROUPE_PACKAGE?)");
  troupe_error err{};
  if (entry(TROUPE_ABI_VERSION, host, &package_, &err) != 0)
    return make_error(errc::refused, "package library " + library + " refused to load: " + std::string(err.text));
  return check(library);
}

status package_host::adopt(const std::string& name, const troupe_package_v1& package) {
  package_ = package;
  return check(name);
}

status package_host::check(const std::string& library) {
  if (package_.abi_version != TROUPE_ABI_VERSION)
    return make_error(errc::refused, "package library " + library + " was built for ABI version " +
                                         std::to_string(package_.abi_version) + ", this worker speaks " +
                                         std::to_string(TROUPE_ABI_VERSION));
  if (package_.type_count == 0 || package_.types == nullptr)
    return make_error(errc::refused, "package library " + library + " lists no actor types");
  for (std::size_t i = 0; i < package_.type_count; ++i) {
    const auto& t = package_.types[i];
    if (t.name == nullptr || t.create == nullptr || t.handle == nullptr || t.destroy == nullptr)
      return make_error(errc::refused,
                        "package library " + library + " has an incomplete actor type #" + std::to_string(i));
    types_.emplace(t.name, &t);
  }
  return ok_v;
}

const troupe_actor_type_v1* package_host::find(std::string_view name) const {
  auto it = types_.find(std::string(name));
  return it == types_.end() ? nullptr : it->second;
}

}  // namespace troupe::worker
