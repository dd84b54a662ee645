// The load tool's modes. Each runs to completion on its own threads and returns
// its results as one JSON object (the keys are listed beside each function; the
// report in report.h reads them).
//
// Every ticket a mode asks for has an id unique to the run (run_id), so that each
// stream is a cache miss unless the mode says otherwise.
//
// Thread-safety: call one mode at a time, from the main thread.
#pragma once

#include <string>
#include <vector>

#include "bench/bench_support.h"

namespace ticketaid::bench {

// How long a mode loads and which part of it is measured.
struct Timing {
  int threads = 1;             // client threads, each with its own io_context
  double warmup_s = 2;         // load before the window opens (not measured)
  double duration_s = 10;      // the measured window
  double drain_s = 60;         // after the window, time for requests in flight to end
  std::vector<NamedPid> pids;  // processes whose CPU time is reported beside the tool's
  std::string run_id;
};

// Closed-loop answer streams: each of `streams` clients asks for a fresh ticket,
// reads the reply to its end, and asks again, until the window closes.
//   direct = false: a WebSocket to ticketaid's /api/websocket/chat/{id}, sending
//     {"ticketBody"}; the first token is the first "stream" frame, the end "done".
//   direct = true: POST /api/chat to Ollama (or the fake) itself; the first token is
//     the first NDJSON line with content, the end the "done": true line.
// Time to first token ("ttft") runs from the start of the send to the first token,
// total time ("total") from the start of the send to the end of the reply; both
// count the requests sent inside the window. Results:
// {"ttft", "total", "tokens", "tokens_per_s", "requests", "requests_per_s", "errors",
//  "error_count", "unfinished", "cpu"}.
struct StreamOptions {
  Timing timing;
  bool direct = false;
  Address target;
  int streams = 1;
  std::string model = "llama3.2";
};
json run_streams(const StreamOptions& options);

// Cached answers on open WebSockets: each of `connections` sockets asks once for its
// ticket (a generation that fills the cache), then, once every socket is warm, sends
// the same body again and again, timing each round trip from the send to "done".
// Results: {"rtt", "round_trips", "round_trips_per_s", "not_cached", "errors",
//  "error_count", "cpu"}.
struct CachedOptions {
  Timing timing;
  Address target;
  int connections = 50;
};
json run_cached(const CachedOptions& options);

// Idle WebSockets: opens `sockets` connections (at most `concurrency` handshakes at
// once), each with a read pending and nothing sent, and reads the daemon's resident
// memory before, while they are open, and after they are closed. Results:
// {"sockets_open", "failed", "connect_s", "still_open", "rss_before_kb",
//  "rss_open_kb", "rss_after_close_kb", "per_socket_bytes", "threads", "cpu"}.
struct IdleOptions {
  Address target;
  int sockets = 10000;
  int concurrency = 256;
  double settle_s = 2;  // after the last handshake, before the memory is read
  double hold_s = 3;    // then the sockets stay open this long, and are counted
  NamedPid daemon;
  std::vector<NamedPid> pids;
  std::string run_id;
};
json run_idle(const IdleOptions& options);

// Start-up: runs `command` (the daemon) `runs` times; each time measures from just
// before exec to the line "... listening on ..." on its standard output, waits
// settle_s, reads its memory, and stops it with SIGTERM. Results: {"ready_ms"
// (summary), "runs": [{"ready_ms", "rss_kb", "threads"}...], "idle_rss_kb" (median)}.
struct StartupOptions {
  std::vector<std::string> command;
  int runs = 5;
  double settle_s = 1;
  double timeout_s = 10;
  std::string log_file;  // the daemon's standard error; empty: /dev/null
};
json run_startup(const StartupOptions& options);

}  // namespace ticketaid::bench
