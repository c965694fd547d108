#include "ipc/log.hpp"

#include <troupe/abi.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>

namespace troupe::ipc {
namespace {

std::string tag = "worker";

const char* level_name(int level) {
  switch (level) {
    case TROUPE_LOG_DEBUG:
      return "DEBUG";
    case TROUPE_LOG_INFO:
      return "INFO ";
    case TROUPE_LOG_WARN:
      return "WARN ";
    default:
      return "ERROR";
  }
}

}  // namespace

void set_log_tag(std::string_view t) { tag = std::string(t); }

void log_line(int level, address actor, std::string_view text) {
  using namespace std::chrono;
  const auto now = system_clock::now();
  const std::time_t secs = system_clock::to_time_t(now);
  const auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
  const std::string who = actor.valid() ? tag + " " + actor.to_string() : tag;
  std::fprintf(stderr, "%s.%03dZ %s [%s] %.*s\n", stamp, static_cast<int>(ms), level_name(level), who.c_str(),
               static_cast<int>(text.size()), text.data());
}

}  // namespace troupe::ipc
