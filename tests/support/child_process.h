// Starting, reaping and stopping a child process, shared by the test support that
// runs servers (redis_server, mongo/fake_mongo) and, for its child's signal set-up,
// daemon_process.
//
// spawn_child() starts a program with fork and execv from an argument array built
// beforehand, so that between the two the child only makes async-signal-safe calls;
// the child gets /dev/null as standard input, the given descriptors as standard
// output and error, no other inherited descriptors, default signal handling, and
// SIGKILL when the thread that started it ends (a crashed test leaves no server
// behind). reap_child_within() waits (bounded) for it to exit and reaps it;
// terminate_child() sends SIGTERM, then SIGKILL when SIGTERM is not enough.
//
// Thread-safety: the functions keep no state of their own; one thread owns a child
// (its pid variable) and calls them for it. reset_signals_in_child() is
// async-signal-safe, for a child between fork and exec.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace ticketaid::testing {

// In a child between fork and exec (async-signal-safe): every signal back to its
// default handling, and none blocked.
void reset_signals_in_child();

// Starts args[0] (a path; PATH is not searched) with args as its argument vector, as
// described above. stdout_fd and stderr_fd stay the caller's to close. Returns the
// pid, or -1 with *error set when /dev/null cannot be opened or fork fails. When exec
// fails the child exits with status 127.
pid_t spawn_child(std::vector<std::string> args, int stdout_fd, int stderr_fd, std::string* error);

// Waits up to timeout_ms (0: just looks) for the child *pid to exit and reaps it.
// Returns whether it did, setting *pid to -1 then; true at once when *pid <= 0, and
// when *pid is no longer a child of this process (nothing to wait for).
bool reap_child_within(int* pid, int timeout_ms);

// SIGTERM, then waits up to timeout_ms; if the child has not exited, SIGKILL and
// waits up to timeout_ms again. Returns whether SIGTERM ended it (true when *pid <= 0).
bool terminate_child(int* pid, int timeout_ms);

}  // namespace ticketaid::testing
