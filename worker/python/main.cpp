// troupe-worker-python: hosts the actors of one package version of runtime
// python (docs/MANIFEST.md §3.2) in an embedded interpreter. Started by the
// supervisor for such a package, never by hand; the same runtime and command
// line as troupe-worker (worker/worker_main.hpp), another package loader.
#include "worker/python/python_runtime.hpp"
#include "worker/worker_main.hpp"

int main(int argc, char** argv) {
  return troupe::worker::worker_main(argc, argv, "troupe-worker-python", &troupe::worker::python::load_package);
}
