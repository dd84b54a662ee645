// `ticketaid ask TICKET --body TEXT`: asks a running daemon for a ticket's answer
// over its WebSocket (SPEC §2) and prints it in the terminal as it streams.
//
// Standard output carries the answer and nothing else (stream chunks as they
// arrive, a cached answer whole), so it can be piped. Queue positions, the summary
// line (model, tokens, duration, "cached") and errors go to standard error. Exit
// statuses: 0 answered, 1 the daemon answered an error, 2 bad arguments or
// configuration, 3 no connection (or it broke, or --timeout passed), 128 + N when
// signal N (Ctrl-C: 130) interrupted it, after the request was cancelled.
//
// Thread-safety: run_ask runs once, on the main thread (it catches SIGINT/SIGTERM
// while it waits).
#pragma once

#include <string>

#include "util/config.h"

namespace ticketaid {

struct AskOptions {
  std::string ticket_id;
  std::string body;  // "-": read from standard input (trailing newlines removed)
  std::string url;   // ws://HOST:PORT; empty: from server.listen of the configuration
  bool regenerate = false;
  int timeout_s = 0;     // give up after this long; 0: wait as long as the daemon works
  ConfigSources config;  // read only when url is empty
};

// Returns the process exit status.
int run_ask(const AskOptions& options);

}  // namespace ticketaid
