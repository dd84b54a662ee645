// `ticketaid doctor`: checks what the daemon needs and says what to fix.
//
// One line per check on standard output, in this order: the configuration (loads
// and validates; unknown TICKETAID_* variables are warnings), the database (exists
// or can be created, integrity, schema version, tickets), the free disk space where
// it lives, Ollama (reachable, its version), the configured model (installed in
// Ollama), and whether server.listen can be bound. Each line starts with "ok",
// "warn" or "FAIL"; a warning or failure ends with " -- fix: " and what to do.
// Returns 0 when nothing failed, 1 otherwise (warnings do not fail).
//
// Thread-safety: run_doctor runs once, on the main thread; it only reads (the
// database is opened read-only), so it is safe while the daemon serves.
#pragma once

#include "util/config.h"

namespace ticketaid {

int run_doctor(const ConfigSources& config);

}  // namespace ticketaid
