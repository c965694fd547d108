// manifests/manifest.hpp — the package manifest (manifest.yaml): the group
// name, version, library and the actor types it provides with their placement
// requirements, restart policy and lifecycle messages. The format is specified
// in docs/MANIFEST.md; change both together. Parsing never throws and keeps
// no state, so it is safe from any thread.
#pragma once

#include "base/restart.hpp"

#include "manifests/requirement.hpp"
#include "manifests/version.hpp"

#include <troupe/result.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace troupe::manifests {

using json = nlohmann::json;
using std::chrono::milliseconds;

/// The restart section's types live with the decision table that reads them
/// (base/restart.hpp).
using base::restart_policy;
using base::restart_spec;

/// shared: instances live in the package's shared worker; dedicated: one
/// worker process per instance.
enum class isolation_mode { shared, dedicated };

/// What runs a package's actors: a C++ shared library (native) in
/// troupe-worker, or Python modules in troupe-worker-python (docs/MANIFEST.md §3.2).
enum class runtime_kind { native, python };

/// on_load: what the supervisor does for this type when the package is
/// loaded: an optional role and global name, and an optional message.
struct load_hook {
  std::optional<std::string> role;
  std::optional<std::string> global_name;
  std::optional<json> message;

  friend bool operator==(const load_hook&, const load_hook&) = default;
};

/// on_deactivate / on_reactivate: an optional message for the group's instances.
struct hook {
  std::optional<json> message;

  friend bool operator==(const hook&, const hook&) = default;
};

struct actor_spec {
  std::string type;                       ///< [A-Za-z0-9_]+
  std::vector<requirement> requirements;  ///< `requires:`, in YAML order
  restart_spec restart;
  isolation_mode isolation = isolation_mode::shared;
  milliseconds max_handle_time{0};  ///< 0 = no limit
  std::optional<load_hook> on_load;
  std::optional<hook> on_deactivate;
  std::optional<hook> on_reactivate;
  /// runtime python: the class of the module that implements this type
  /// (empty: a class named like the type).
  std::string python_class;

  /// The Python class: python_class, or the type's name.
  [[nodiscard]] const std::string& class_name() const { return python_class.empty() ? type : python_class; }

  friend bool operator==(const actor_spec&, const actor_spec&) = default;
};

/// limits: what each worker process of the package version may use (docs/
/// MANIFEST.md §3.1); an unset field is not limited.
struct resource_limits {
  std::optional<std::uint64_t> memory;           ///< bytes of private writable memory (RLIMIT_DATA, memory.max)
  std::optional<std::chrono::seconds> cpu_time;  ///< CPU time of one process (RLIMIT_CPU)
  std::optional<std::uint64_t> open_files;       ///< descriptors (RLIMIT_NOFILE)
  std::optional<std::uint64_t> processes;        ///< tasks of the worker's cgroup (pids.max); cgroup v2 only

  [[nodiscard]] bool empty() const { return !memory && !cpu_time && !open_files && !processes; }
  friend bool operator==(const resource_limits&, const resource_limits&) = default;
};

// Bounds of the limits, checked by the parser: below them the worker itself
// cannot run (it holds about 20 descriptors, 5 threads and tens of MiB).
inline constexpr std::uint64_t min_memory_limit = 32ULL << 20;
inline constexpr std::uint64_t min_open_files_limit = 64;
inline constexpr std::uint64_t max_open_files_limit = 1 << 20;
inline constexpr std::uint64_t min_processes_limit = 16;
inline constexpr std::uint64_t max_processes_limit = 4194304;  // the kernel's pid_max ceiling

struct manifest {
  std::string package;  ///< group name, [A-Za-z0-9_.-]{1,64}
  manifests::version version;
  runtime_kind runtime = runtime_kind::native;
  std::string library;             ///< native: relative path inside the package
  std::string module;              ///< python: the module imported from the package root (dotted name)
  bool system_packages = false;    ///< python: the host's dist-packages on sys.path too
  std::vector<actor_spec> actors;  ///< at least one, in YAML order
  bool auto_unload = false;
  std::uint32_t keep = 3;  ///< archives of this group kept, >= 1
  resource_limits limits;

  /// The actor type called type, or nullptr.
  [[nodiscard]] const actor_spec* find_actor(std::string_view type) const;

  friend bool operator==(const manifest&, const manifest&) = default;
};

/// "module.py" or "module/__init__.py" of a dotted module name, relative to
/// the package root, for whichever exists: the files a python package must
/// hold. The first candidate is the plain file.
[[nodiscard]] std::vector<std::string> module_files(std::string_view module);

/// Larger manifests are refused without parsing.
inline constexpr std::size_t max_manifest_bytes = 1 << 20;

/// Parses and validates a manifest. source_name (usually the file's path)
/// prefixes every error. Errors are invalid_argument, one line, of the form
/// "<source>: <field.path>: <what is wrong>", e.g.
/// `manifest.yaml: actors.Morse.restart.within: "10" is not a duration (use 250ms, 10s, 2m)`.
[[nodiscard]] result<manifest> parse_manifest(std::string_view yaml_text, std::string_view source_name);

}  // namespace troupe::manifests
