// troupe-worker: hosts the actors of one package version. Started by the
// supervisor, never by hand, possibly before it knows which package (a
// standby); see docs/OPERATIONS.md for its command line.
#include "worker/worker_main.hpp"

int main(int argc, char** argv) { return troupe::worker::worker_main(argc, argv, "troupe-worker"); }
