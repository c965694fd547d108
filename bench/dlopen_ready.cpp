// bench/dlopen_ready.cpp — troupe-bench-dlopen, the baseline of
// package_load_5mib: the least a process does before code of a package can
// answer. It dlopens the library named by argv[2] (RTLD_NOW | RTLD_LOCAL, as
// a worker loads a package), writes "ready\n" to the file descriptor named by
// argv[1] and exits. No ZeroMQ, no verification, no copy: only fork, exec,
// dynamic linking of the library and its static initialisers.
//
//   troupe-bench-dlopen FD LIBRARY
#include <dlfcn.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

int main(int argc, char** argv) {
  if (argc < 3) return 64;
  const int fd = std::atoi(argv[1]);
  void* lib = ::dlopen(argv[2], RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    std::fprintf(stderr, "troupe-bench-dlopen: %s\n", ::dlerror());
    return 1;
  }
  static const char line[] = "ready\n";
  const bool ok = ::write(fd, line, sizeof line - 1) == static_cast<ssize_t>(sizeof line - 1);
  return ok ? 0 : 1;
}
