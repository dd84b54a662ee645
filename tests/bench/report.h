// The results table: reads the JSON files that tests/bench/run.sh collects in one
// directory and prints, in Markdown, the targets of SPEC §8 beside the measured
// values with pass or MISS, then where the CPU time went in each phase.
//
// The files (each the output of one bench_load mode):
//   ttft1_direct, ttft1_ticketaid       1 stream, 20 ms between tokens
//   ttft200_direct, ttft200_ticketaid   200 streams, 20 ms between tokens
//   fast_direct, fast_ticketaid         many streams, no delay between tokens
//   cached                              cached round trips
//   idle                                idle WebSockets
//   startup_bench, startup_default      start-up with tests/bench/bench.toml, and
//                                       with the built-in defaults
//   mirror_off, mirror_off2,            the chat path, side by side, through two
//   mirror_up, mirror_down              daemons without the MongoDB mirror, one with
//                                       it and MongoDB up, one with MongoDB down
//   mirror_up_ready, mirror_down_ready  GET /ready at the end of the window
//   mirror_down_outbox                  {"rows"}: the MongoDB-down daemon's outbox
//                                       in its database file after it stopped
//   mirror_skipped                      {"reason"}: run.sh skipped the mirror phase
//
// Thread-safety: a plain function of its inputs.
#pragma once

#include <string>

namespace ticketaid::bench {

// Prints the report to standard output. Returns 0 when every target is met (in a
// smoke run: when every mode ran without errors), 3 when a target is missed, and 1
// when a result is missing or a mode saw errors. `only` names the one phase of
// run.sh that ran (startup, cached, ttft, fast, mirror), or is empty for all of them.
int print_report(const std::string& dir, bool smoke, const std::string& only = "");

}  // namespace ticketaid::bench
