// greeter-client SYSTEM TARGET NAME: asks TARGET (an address or a global name)
// on the system at SYSTEM with the JSON string NAME and prints the answer.
// Linked against the installed libtroupe-client.so (troupe::client).
#include <troupe/client.hpp>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: greeter-client SYSTEM TARGET NAME\n");
    return 2;
  }
  auto c = troupe::client::connect(argv[1]);
  if (!c) {
    std::fprintf(stderr, "greeter-client: %s\n", c.err().message.c_str());
    return 1;
  }
  auto answer = c->ask(argv[2], nlohmann::json(argv[3]));
  if (!answer) {
    std::fprintf(stderr, "greeter-client: %s\n", answer.err().message.c_str());
    return 1;
  }
  std::cout << answer->get<std::string>() << "\n";
  return 0;
}
