// Starting, reaping and stopping a child process (see child_process.h).
//
// Reaping waits on a pidfd with poll when the kernel offers one, else polls waitpid
// every 5 ms.
//
// Thread-safety: one thread owns a child and calls these for it.
#include "support/child_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

namespace ticketaid::testing {

using Clock = std::chrono::steady_clock;

void reset_signals_in_child() {
  struct sigaction action {};
  action.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) {
    sigaction(sig, &action, nullptr);
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
}

pid_t spawn_child(std::vector<std::string> args, int stdout_fd, int stderr_fd, std::string* error) {
  std::vector<char*> argv;
  for (std::string& arg : args) {
    argv.push_back(arg.data());
  }
  argv.push_back(nullptr);
  const int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null_fd < 0) {
    *error = std::string("cannot open /dev/null: ") + std::strerror(errno);
    return -1;
  }
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) {
    // The child: async-signal-safe calls only.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    if (dup2(null_fd, 0) < 0 || dup2(stdout_fd, 1) < 0 || dup2(stderr_fd, 2) < 0) _exit(127);
    syscall(SYS_close_range, 3U, ~0U, 0U);
    reset_signals_in_child();
    execv(argv[0], argv.data());
    _exit(127);
  }
  const int fork_errno = errno;
  close(null_fd);
  if (pid < 0) {
    *error = std::string("fork: ") + std::strerror(fork_errno);
    return -1;
  }
  return pid;
}

bool reap_child_within(int* pid, int timeout_ms) {
  if (*pid <= 0) return true;
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, *pid, 0U));
  bool reaped = false;
  while (true) {
    int status = 0;
    const pid_t r = waitpid(*pid, &status, WNOHANG);
    if (r == *pid || (r < 0 && errno != EINTR)) {
      reaped = true;
      break;
    }
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) break;
    if (pidfd >= 0) {
      pollfd p{pidfd, POLLIN, 0};
      poll(&p, 1, static_cast<int>(left));
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  if (pidfd >= 0) close(pidfd);
  if (reaped) *pid = -1;
  return reaped;
}

bool terminate_child(int* pid, int timeout_ms) {
  if (*pid <= 0) return true;
  kill(*pid, SIGTERM);
  if (reap_child_within(pid, timeout_ms)) return true;
  kill(*pid, SIGKILL);
  reap_child_within(pid, timeout_ms);
  return false;
}

}  // namespace ticketaid::testing
