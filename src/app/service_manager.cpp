#include "app/service_manager.h"

#include <sys/resource.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include <cerrno>
#include <cstring>

namespace ticketaid::service_manager {

void notify(std::string_view state) {
  // sd_notify needs a NUL-terminated string; the messages are short.
  const std::string text(state);
  sd_notify(0, text.c_str());
}

void notify_ready() {
  notify("READY=1");
}

void notify_stopping() {
  notify("STOPPING=1");
}

void notify_reloading() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  const auto usec = static_cast<unsigned long long>(now.tv_sec) * 1'000'000ULL +
                    static_cast<unsigned long long>(now.tv_nsec) / 1'000ULL;
  notify("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec));
}

void notify_status(std::string_view status) {
  notify("STATUS=" + std::string(status));
}

void notify_watchdog() {
  notify("WATCHDOG=1");
}

std::optional<std::chrono::microseconds> watchdog_interval() {
  uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return std::nullopt;
  return std::chrono::microseconds(usec);
}

std::optional<int> activated_socket(std::string* error) {
  const int count = sd_listen_fds(1);
  if (count == 0) return std::nullopt;
  if (count < 0) {
    *error = std::string("socket activation: ") + std::strerror(-count);
    return std::nullopt;
  }
  if (count > 1) {
    *error = "socket activation passed " + std::to_string(count) +
             " sockets; ticketaid.socket must have exactly one ListenStream=";
    return std::nullopt;
  }
  const int fd = SD_LISTEN_FDS_START;
  // AF_UNSPEC: IPv4 or IPv6; 1: listening; 0: any port.
  if (sd_is_socket_inet(fd, AF_UNSPEC, SOCK_STREAM, 1, 0) <= 0) {
    *error = "socket activation passed a descriptor that is not a listening TCP socket";
    return std::nullopt;
  }
  return fd;
}

std::string raise_open_files_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) {
    return std::string("open files limit: cannot read it: ") + std::strerror(errno);
  }
  const auto show = [](rlim_t v) {
    return v == RLIM_INFINITY ? std::string("unlimited") : std::to_string(v);
  };
  if (limit.rlim_cur == limit.rlim_max) return "open files limit: " + show(limit.rlim_cur);
  const rlim_t before = limit.rlim_cur;
  limit.rlim_cur = limit.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &limit) != 0) {
    return "open files limit: " + show(before) + " (raising it to " + show(limit.rlim_max) +
           " failed: " + std::strerror(errno) + ")";
  }
  return "open files limit: " + show(before) + " -> " + show(limit.rlim_cur);
}

}  // namespace ticketaid::service_manager
