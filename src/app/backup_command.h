// `ticketaid backup FILE`: a consistent copy of the database with SQLite's online
// backup API, safe while the daemon serves and writes (SPEC §7). The copy holds every
// answer committed before it started; FILE must not exist (it is never overwritten).
// Prints what was copied; exit status 0 on success, 1 when the copy failed, 2 for a
// bad configuration.
//
// Thread-safety: run_backup runs once, on the main thread.
#pragma once

#include <string>

#include "util/config.h"

namespace ticketaid {

int run_backup(const std::string& dest_path, const ConfigSources& config);

}  // namespace ticketaid
