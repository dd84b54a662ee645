// Logging: spdlog to standard error (the journal under systemd), one line per event.
//
// Use the macros-free spdlog API directly (spdlog::info("...{}", x)); call
// init_logging once at start and set_log_level on reload. Thread-safe.
#pragma once

#include <spdlog/spdlog.h>

#include <string_view>

namespace ticketaid {

// Returns false for an unknown level name.
bool set_log_level(std::string_view level);
void init_logging(std::string_view level);

}  // namespace ticketaid
