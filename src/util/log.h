// Logging: spdlog to standard error, one line per event; under systemd, straight to
// the journal with a priority and structured fields (app/journal_sink.cpp).
//
// Use the macros-free spdlog API directly (spdlog::info("...{}", x)); call
// init_logging once at start and set_log_level on reload. Thread-safe.
#pragma once

#include <spdlog/spdlog.h>

#include <string_view>

#include "util/log_fields.h"

namespace ticketaid {

// Returns false for an unknown level name.
bool set_log_level(std::string_view level);
// `sink`: where the lines go instead of standard error (the journal), or null.
void init_logging(std::string_view level, spdlog::sink_ptr sink = nullptr);

}  // namespace ticketaid
