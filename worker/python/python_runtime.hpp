// worker/python/python_runtime.hpp — the python runtime of troupe-worker-python:
// an embedded CPython interpreter that presents a package's Python actor
// classes to the worker runtime as a package of the C ABI (troupe/abi.h), so
// that the data plane, acks, watchdog and control protocol are the native
// worker's own code. Threading: the loop's thread only; the GIL stays held.
#pragma once

#include "worker/runtime.hpp"

namespace troupe::worker::python {

/// The package_loader of runtime python: starts the interpreter (isolated:
/// sys.path is the package root, its site-packages/ and the standard
/// library; the host's dist-packages only with system_packages), installs
/// the `troupe` SDK module, imports the manifest's module and fills out with
/// one actor type per class the assignment names. Errors are one line and
/// name the module or class at fault; a traceback goes to the log.
status load_package(const ipc::json& assignment, const troupe_host_v1* host, troupe_package_v1& out);

}  // namespace troupe::worker::python
