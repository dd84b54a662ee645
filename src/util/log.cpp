#include "util/log.h"

#include <spdlog/sinks/stdout_sinks.h>

#include <unistd.h>

namespace ticketaid {

bool set_log_level(std::string_view level) {
  auto parsed = spdlog::level::from_str(std::string(level));
  if (parsed == spdlog::level::off && level != "off") return false;
  spdlog::set_level(parsed);
  return true;
}

void init_logging(std::string_view level) {
  auto logger = spdlog::stderr_logger_mt("ticketaid");
  // Under systemd the journal adds its own timestamps; elsewhere keep them.
  if (getenv("JOURNAL_STREAM") != nullptr) {
    logger->set_pattern("<%^%l%$> %v");
  } else {
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  }
  spdlog::set_default_logger(logger);
  set_log_level(level);
}

}  // namespace ticketaid
