// The daemon's side of systemd: sd_notify messages, the watchdog interval, socket
// activation and the open-file limit. A thin seam over libsystemd's sd-daemon, so
// that app.cpp reads as a lifecycle and not as a list of C calls.
//
// Every notify call is harmless without a service manager: with NOTIFY_SOCKET
// unset, sd_notify does nothing. Nothing here unsets the environment, so a
// process started by the daemon would inherit NOTIFY_SOCKET; the daemon starts
// none.
//
// Thread-safety: notify() and the notify_* helpers may be called from any thread
// (each is one datagram). The other functions are called once, from the thread
// that starts the daemon, before other threads exist.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace ticketaid::service_manager {

// Sends one state message ("READY=1", "STATUS=...", several lines allowed).
void notify(std::string_view state);

void notify_ready();
void notify_stopping();
// RELOADING=1 with MONOTONIC_USEC= (what Type=notify-reload expects, harmless before).
void notify_reloading();
void notify_status(std::string_view status);
void notify_watchdog();

// The watchdog interval systemd asked for (WatchdogSec=, through WATCHDOG_USEC and
// WATCHDOG_PID), or nullopt when the watchdog is off for this process.
std::optional<std::chrono::microseconds> watchdog_interval();

// Socket activation: the one listening TCP socket systemd passed (LISTEN_FDS,
// LISTEN_PID), or nullopt when none was passed. More than one socket, or a socket
// that is not a listening stream socket, is an error: *error names it and nullopt
// is returned. The variables are unset, so they are not inherited.
std::optional<int> activated_socket(std::string* error);

// Raises the soft RLIMIT_NOFILE to the hard limit. Returns a line for the log
// ("open files limit: 1024 -> 524288", or why it could not).
std::string raise_open_files_limit();

}  // namespace ticketaid::service_manager
