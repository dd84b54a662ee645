// Start-up time and idle memory of the daemon (see run_startup in load_modes.h).
//
// The daemon is started with posix_spawn, its standard output on a pipe; the time
// runs from just before the spawn to the moment its "listening on" line is read.
//
// Thread-safety: runs on the calling thread only.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stdexcept>
#include <thread>

#include "bench/load_modes.h"

extern char** environ;

namespace ticketaid::bench {
namespace {

// Stops the child: SIGTERM, then SIGKILL if it has not exited within 10 s.
int stop_child(pid_t pid) {
  kill(pid, SIGTERM);
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  int status = 0;
  while (Clock::now() < deadline) {
    if (waitpid(pid, &status, WNOHANG) == pid) return status;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  return status;
}

// Reads fd until a line containing `marker` arrives, or the deadline passes.
bool wait_for_line(int fd, std::string_view marker, Clock::time_point deadline,
                   Clock::time_point* seen) {
  std::string text;
  char chunk[4096];
  while (true) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    const ssize_t n = read(fd, chunk, sizeof(chunk));
    if (n <= 0) return false;  // the process closed its output: it exited
    const auto now = Clock::now();
    text.append(chunk, static_cast<std::size_t>(n));
    for (auto nl = text.find('\n'); nl != std::string::npos; nl = text.find('\n')) {
      if (std::string_view(text.data(), nl).find(marker) != std::string_view::npos) {
        *seen = now;
        return true;
      }
      text.erase(0, nl + 1);
    }
  }
}

}  // namespace

json run_startup(const StartupOptions& options) {
  if (options.command.empty()) throw std::runtime_error("startup: no command given");
  std::vector<char*> argv;
  for (const auto& arg : options.command) {
    argv.push_back(const_cast<char*>(arg.c_str()));
  }
  argv.push_back(nullptr);
  const std::string log = options.log_file.empty() ? "/dev/null" : options.log_file;

  Latencies ready;
  std::vector<int64_t> rss;
  json runs = json::array();
  int failures = 0;
  for (int run = 0; run < options.runs; ++run) {
    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("startup: pipe failed");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, log.c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0644);
    pid_t pid = -1;
    const auto started = Clock::now();
    const int spawned = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    close(out[1]);
    if (spawned != 0) {
      close(out[0]);
      throw std::runtime_error("startup: cannot run " + options.command[0]);
    }
    Clock::time_point seen;
    const bool listening =
        wait_for_line(out[0], "listening on", started + seconds_of(options.timeout_s), &seen);
    json one;
    if (listening) {
      const int64_t us = micros(started, seen);
      ready.add(us);
      one["ready_ms"] = static_cast<double>(us) / 1000.0;
      std::this_thread::sleep_for(seconds_of(options.settle_s));
      const ProcessSample sample = read_process(pid);
      one["rss_kb"] = sample.rss_kb;
      one["threads"] = sample.threads;
      rss.push_back(sample.rss_kb);
    } else {
      ++failures;
      one["error"] = "no listening line within the time limit";
    }
    const int status = stop_child(pid);
    one["exit"] = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    close(out[0]);
    runs.push_back(one);
  }

  json out;
  out["ready"] = ready.summary();
  out["runs"] = runs;
  out["failures"] = failures;
  out["error_count"] = failures;
  if (!rss.empty()) {
    std::sort(rss.begin(), rss.end());
    out["idle_rss_kb"] = rss[(rss.size() - 1) / 2];
    out["idle_rss_max_kb"] = rss.back();
  }
  return out;
}

}  // namespace ticketaid::bench
