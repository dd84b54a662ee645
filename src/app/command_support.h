// What the one-shot commands (ask, doctor, backup, check-config) share: their exit
// statuses, loading the configuration as `serve` does, and how sizes are written.
//
// Thread-safety: constants and functions without shared state.
#pragma once

#include <cstdint>
#include <string>

#include "util/config.h"
#include "util/status.h"

namespace ticketaid {

// Exit statuses of the command line; --help and ticketaid(8) list the same.
namespace exit_status {
inline constexpr int ok = 0;
inline constexpr int failure = 1;      // the command ran and failed (an error reply, a
                                       // failed check, a failed copy, a daemon that
                                       // could not start)
inline constexpr int usage = 2;        // bad arguments or configuration
inline constexpr int unreachable = 3;  // ask: no connection, or it broke, or --timeout passed
// A command stopped by signal N exits with 128 + N (130 for Ctrl-C).
inline int signalled(int signal_number) {
  return 128 + signal_number;
}
}  // namespace exit_status

// Loads the settings from the sources; warnings (unknown TICKETAID_* variables) are
// printed to standard error as "ticketaid: warning: ...". A failure is returned for
// the caller to print, with usage as its exit status.
Result<LoadedSettings> load_command_settings(const ConfigSources& sources);

// "512 B", "1.5 KiB", "12.3 GiB".
std::string human_size(uint64_t bytes);

}  // namespace ticketaid
