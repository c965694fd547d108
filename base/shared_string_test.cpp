#include "base/shared_string.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <thread>
#include <vector>

using troupe::base::shared_string;

TEST_CASE("a shared string reads as a std::string and copies share one block", "[shared_string]") {
  shared_string empty;
  CHECK(empty.empty());
  CHECK(empty.str().empty());
  CHECK(empty == "");
  CHECK(shared_string(std::string()).empty());  // an empty value allocates nothing

  const shared_string id(std::string(64, 'a'));
  shared_string copy = id;
  CHECK(copy.shares_with(id));
  CHECK(copy == id);
  CHECK(copy == std::string(64, 'a'));
  CHECK(copy.size() == 64);
  CHECK(copy.substr(0, 3) == "aaa");
  const std::string& as_string = copy;
  CHECK(as_string == std::string(64, 'a'));

  copy = shared_string("other");  // replaced, not changed: the first keeps its value
  CHECK(id == std::string(64, 'a'));
  CHECK(copy == "other");
  CHECK_FALSE(copy.shares_with(id));
  CHECK(shared_string("x") == shared_string("x"));  // equal values, separate blocks
  CHECK(shared_string("a") < shared_string("b"));

  CHECK("package " + copy == "package other");
  CHECK(copy + " here" == "other here");
  CHECK(std::string("p:") + copy == "p:other");
  CHECK(nlohmann::json{{"id", copy}} == nlohmann::json{{"id", "other"}});

  shared_string moved = std::move(copy);
  CHECK(moved == "other");
  CHECK(copy.empty());  // NOLINT: a moved-from one is empty, usable
}

TEST_CASE("copies of a shared string may be made and dropped on several threads", "[shared_string]") {
  const shared_string s("worker killed by SIGKILL");
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&s] {
      std::vector<shared_string> copies(1000, s);
      for (auto& c : copies) c = shared_string(s);
    });
  for (auto& t : threads) t.join();
  CHECK(s == "worker killed by SIGKILL");
}
