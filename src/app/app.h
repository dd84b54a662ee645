// The daemon's lifecycle: builds the store, the model client, the engine and the
// server from the settings, runs the I/O threads, and stops on SIGINT/SIGTERM.
//
// Threads it owns: the I/O threads (Beast, one io_context), the blocking pool
// (store reads for requests), the generation workers (GenerationQueue) and the
// store's writer. Thread-safety: one thread calls run().
#pragma once

#include <memory>
#include <string>

#include "util/config.h"
#include "util/status.h"

namespace ticketaid {

struct RunOptions {
  std::string port_file;  // when set, "HOST:PORT" is written there once bound
};

// Runs until a stop signal; returns the process exit code. Start-up failures are
// logged with one clear line and give a non-zero code.
int run_daemon(std::shared_ptr<const Settings> settings, const RunOptions& options);

}  // namespace ticketaid
