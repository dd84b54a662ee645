// The daemon's lifecycle: builds the store, the model client, the engine and the
// server from the settings, runs the I/O threads, and talks to systemd
// (app/service_manager.h): READY=1 once the database is open and the listener is
// bound, STATUS= every few seconds, WATCHDOG=1 while the I/O loop answers, socket
// activation. SIGHUP reloads the reloadable settings; SIGTERM and SIGINT drain
// (no new work, running generations finish within server.drain_timeout_s) and stop.
//
// Threads it owns: the I/O threads (Beast, one io_context), the blocking pool
// (store reads for requests), the generation workers (GenerationQueue) and the
// store's writer. Thread-safety: one thread calls run().
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "util/config.h"
#include "util/status.h"

namespace ticketaid {

struct RunOptions {
  std::string port_file;  // when set, "HOST:PORT" is written there once bound
  // Loads the settings again from the same sources as at start (file, environment,
  // flags), for SIGHUP. Empty: SIGHUP is logged and ignored.
  std::function<Result<LoadedSettings>()> reload;
};

// Runs until a stop signal; returns the process exit code. Start-up failures are
// logged with one clear line and give a non-zero code.
int run_daemon(std::shared_ptr<const Settings> settings, const RunOptions& options);

}  // namespace ticketaid
