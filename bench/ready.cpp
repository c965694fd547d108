// bench/ready.cpp — troupe-bench-ready, the baseline of worker_spawn_ready and
// restart_after_sigkill: the least a worker-like process does before it can
// say it is there. It is linked to libzmq (dynamically, like troupe-worker),
// creates a ZeroMQ context and one socket (which starts libzmq's I/O thread)
// and writes "ready\n" to the file descriptor named by argv[1]. Then it exits,
// or with a second argument "--stay" waits to be killed, as a worker would.
#include <zmq.h>

#include <unistd.h>

#include <cstdlib>
#include <cstring>

int main(int argc, char** argv) {
  if (argc < 2) return 64;
  const int fd = std::atoi(argv[1]);
  const bool stay = argc > 2 && std::strcmp(argv[2], "--stay") == 0;
  void* ctx = zmq_ctx_new();
  void* sock = zmq_socket(ctx, ZMQ_PULL);
  if (sock == nullptr) return 1;
  static const char line[] = "ready\n";
  const bool ok = ::write(fd, line, sizeof line - 1) == static_cast<ssize_t>(sizeof line - 1);
  if (stay && ok) {
    ::close(fd);
    for (;;) ::pause();  // until the SIGKILL the bench sends
  }
  int linger = 0;
  zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
  zmq_close(sock);
  zmq_ctx_term(ctx);
  return ok ? 0 : 1;
}
