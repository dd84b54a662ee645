// Runs the ticketaid binary as a child process (see daemon_process.h).
//
// The child is started with fork and execve from argument and environment arrays
// built beforehand, so that between the two it only makes async-signal-safe calls.
// It gets /dev/null as standard input, a pipe as standard output, a file as standard
// error, a minimal environment, no other inherited descriptors, default signal
// handling, and SIGKILL when the thread that started it ends (a crashed test leaves
// no daemon behind).
//
// Thread-safety: one thread uses a DaemonProcess; its only helper thread copies
// standard output to a file and shares nothing else.
#include "support/daemon_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <system_error>

#include "support/child_process.h"

namespace ticketaid::testing {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::string_view kListeningMarker = "ticketaid listening on http://";
constexpr std::chrono::milliseconds kStopTimeout{10'000};
constexpr std::chrono::milliseconds kRunOnceTimeout{60'000};

int decode_wait_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Writes all of data to fd, ignoring errors (the files are diagnostics only).
void write_all(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    data += n;
    size -= static_cast<std::size_t>(n);
  }
}

std::string errno_text(const char* what) {
  return std::string(what) + ": " + std::strerror(errno);
}

// PATH, HOME and the sanitizers' settings from this process, then the test's own
// variables; nothing else (in particular no TICKETAID_* of the caller).
std::vector<std::string> child_environment(const std::map<std::string, std::string>& extra) {
  std::map<std::string, std::string> env;
  const char* path = getenv("PATH");
  env["PATH"] = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  const char* home = getenv("HOME");
  env["HOME"] = home != nullptr ? home : "/tmp";
  for (const char* name : {"ASAN_OPTIONS", "LSAN_OPTIONS", "TSAN_OPTIONS", "UBSAN_OPTIONS"}) {
    if (const char* value = getenv(name)) env[name] = value;
  }
  for (const auto& [key, value] : extra) {
    env[key] = value;
  }
  std::vector<std::string> out;
  for (const auto& [key, value] : env) {
    out.push_back(key + "=" + value);
  }
  return out;
}

std::vector<char*> c_strings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) {
    out.push_back(s.data());
  }
  out.push_back(nullptr);
  return out;
}

// Writes the decimal digits of value into out (async-signal-safe) and ends it.
void format_pid(char* out, pid_t value) {
  char digits[16];
  int n = 0;
  do {
    digits[n++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value > 0 && n < 15);
  while (n > 0) {
    *out++ = digits[--n];
  }
  *out = '\0';
}

constexpr std::string_view kListenPid = "LISTEN_PID=";

// Starts argv[0] with stdout and stderr on the given descriptors. Returns the pid,
// or -1 with *error set when the program could not be executed. With listen_fd >= 0
// the child gets it as descriptor 3, and LISTEN_FDS=1 and LISTEN_PID=<its pid> in
// its environment (socket activation).
pid_t spawn(std::vector<std::string> argv, std::vector<std::string> env, int out_fd, int err_fd,
            std::string* error, int listen_fd = -1) {
  char* listen_pid = nullptr;  // filled in by the child, which alone knows its pid
  if (listen_fd >= 0) {
    env.push_back("LISTEN_FDS=1");
    env.push_back(std::string(kListenPid) + std::string(16, '0'));
  }
  std::vector<char*> c_argv = c_strings(argv);
  std::vector<char*> c_env = c_strings(env);
  if (listen_fd >= 0) listen_pid = c_env[c_env.size() - 2] + kListenPid.size();
  // exec failures come back as an errno on a close-on-exec pipe.
  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0) {
    *error = errno_text("pipe2");
    return -1;
  }
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    *error = errno_text("fork");
    close(report[0]);
    close(report[1]);
    return -1;
  }
  if (pid == 0) {
    // The child: async-signal-safe calls only.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    const int null_fd = open("/dev/null", O_RDONLY);
    if (null_fd < 0 || dup2(null_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0) {
      const int e = errno;
      write_all(report[1], reinterpret_cast<const char*>(&e), sizeof(e));
      _exit(127);
    }
    // The report pipe moves above the descriptors handed over, then everything else
    // but it (it closes itself on exec) is closed.
    const int report_fd = fcntl(report[1], F_DUPFD_CLOEXEC, 10);
    if (report_fd < 0) _exit(127);
    unsigned int first_closed = 3;
    if (listen_fd >= 0) {
      // dup2 onto itself would keep close-on-exec: clear it then.
      if (listen_fd == 3 ? fcntl(3, F_SETFD, 0) < 0 : dup2(listen_fd, 3) < 0) {
        const int e = errno;
        write_all(report_fd, reinterpret_cast<const char*>(&e), sizeof(e));
        _exit(127);
      }
      format_pid(listen_pid, getpid());
      first_closed = 4;
    }
    const auto report_u = static_cast<unsigned int>(report_fd);
    if (report_u > first_closed) syscall(SYS_close_range, first_closed, report_u - 1, 0U);
    syscall(SYS_close_range, report_u + 1, ~0U, 0U);
    report[1] = report_fd;
    reset_signals_in_child();
    execve(c_argv[0], c_argv.data(), c_env.data());
    const int e = errno;
    write_all(report[1], reinterpret_cast<const char*>(&e), sizeof(e));
    _exit(127);
  }
  close(report[1]);
  int child_errno = 0;
  ssize_t n;
  do {
    n = read(report[0], &child_errno, sizeof(child_errno));
  } while (n < 0 && errno == EINTR);
  close(report[0]);
  if (n == static_cast<ssize_t>(sizeof(child_errno))) {
    *error = "cannot execute " + argv[0] + ": " + std::strerror(child_errno);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return -1;
  }
  return pid;
}

int remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return static_cast<int>(std::max<int64_t>(left.count(), 0));
}

// The port in "...ticketaid listening on http://HOST:PORT...", or 0.
int parse_listening_port(std::string_view line) {
  const auto at = line.find(kListeningMarker);
  if (at == std::string_view::npos) return 0;
  std::string_view address = line.substr(at + kListeningMarker.size());
  address = address.substr(0, address.find_first_of(" \t\r/"));
  const auto colon = address.rfind(':');
  if (colon == std::string_view::npos) return 0;
  int port = 0;
  for (char c : address.substr(colon + 1)) {
    if (c < '0' || c > '9' || port > 65535) return 0;
    port = port * 10 + (c - '0');
  }
  return port > 0 && port <= 65535 ? port : 0;
}

}  // namespace

TempDir::TempDir() {
  std::error_code ec;
  std::filesystem::path base = std::filesystem::temp_directory_path(ec);
  if (ec) base = "/tmp";
  std::string pattern = (base / "ticketaid-test-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) {
    throw std::system_error(errno, std::generic_category(), "mkdtemp " + pattern);
  }
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

DaemonProcess::DaemonProcess(DaemonOptions options) : options_(std::move(options)) {}

DaemonProcess::~DaemonProcess() {
  stop();
}

std::string DaemonProcess::host_port() const {
  return "127.0.0.1:" + std::to_string(port_);
}

bool DaemonProcess::start() {
  if (pid_ > 0) {
    error_ = "already running";
    return false;
  }
  const std::string binary = options_.binary.empty() ? ticketaid_binary() : options_.binary;
  if (binary.empty()) {
    error_ = "no ticketaid binary (set TICKETAID_TEST_BINARY)";
    return false;
  }
  if (options_.db_path.empty()) {
    error_ = "DaemonOptions::db_path is required";
    return false;
  }
  if (!log_dir_) log_dir_ = std::make_unique<TempDir>();
  stderr_path_ = log_dir_->path() / "stderr.log";
  stdout_path_ = log_dir_->path() / "stdout.log";
  error_.clear();
  port_ = 0;
  exit_status_ = -1;

  std::vector<std::string> argv = {binary,        "serve", "--listen",
                                   "127.0.0.1:0", "--db",  options_.db_path.string()};
  if (!options_.ollama_url.empty()) {
    argv.push_back("--ollama-url");
    argv.push_back(options_.ollama_url);
  }
  argv.insert(argv.end(), options_.extra_args.begin(), options_.extra_args.end());
  argv.insert(argv.begin(), options_.wrapper.begin(), options_.wrapper.end());

  const int err_fd = open(stderr_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  const int log_fd =
      open(stdout_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
  int out_pipe[2] = {-1, -1};
  if (err_fd < 0 || log_fd < 0 || pipe2(out_pipe, O_CLOEXEC) != 0) {
    error_ = errno_text("cannot set up the child's output");
    for (int fd : {err_fd, log_fd, out_pipe[0], out_pipe[1]}) {
      if (fd >= 0) close(fd);
    }
    return false;
  }
  auto env = options_.env;
  env.try_emplace("TICKETAID_SERVER_DRAIN_TIMEOUT_S", "0");
  if (options_.journal_stream) {
    struct stat st {};
    fstat(err_fd, &st);
    env["JOURNAL_STREAM"] = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
  }
  pid_ = spawn(argv, child_environment(env), out_pipe[1], err_fd, &error_, options_.listen_fd);
  close(out_pipe[1]);
  close(err_fd);
  if (pid_ < 0) {
    pid_ = -1;
    close(out_pipe[0]);
    close(log_fd);
    return false;
  }
  stdout_fd_ = out_pipe[0];

  // Read standard output up to the listening line.
  const auto deadline = Clock::now() + options_.start_timeout;
  std::string pending;
  bool eof = false;
  while (port_ == 0 && !eof) {
    pollfd p{stdout_fd_, POLLIN, 0};
    const int ready = poll(&p, 1, remaining_ms(deadline));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) break;  // the timeout
    char buf[4096];
    const ssize_t n = read(stdout_fd_, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      eof = true;
      break;
    }
    write_all(log_fd, buf, static_cast<std::size_t>(n));
    pending.append(buf, static_cast<std::size_t>(n));
    for (auto nl = pending.find('\n'); nl != std::string::npos && port_ == 0;
         nl = pending.find('\n')) {
      port_ = parse_listening_port(std::string_view(pending).substr(0, nl));
      pending.erase(0, nl + 1);
    }
  }

  // From here on, copy standard output to its file until the pipe ends.
  drain_stop_ = false;
  stdout_drain_ = std::thread([this, fd = stdout_fd_, log_fd] {
    char buf[4096];
    while (true) {
      pollfd p{fd, POLLIN, 0};
      const int ready = poll(&p, 1, 100);
      if (ready < 0 && errno == EINTR) continue;
      if (ready < 0) break;
      if (ready == 0) {
        if (drain_stop_) break;
        continue;
      }
      const ssize_t n = read(fd, buf, sizeof(buf));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      write_all(log_fd, buf, static_cast<std::size_t>(n));
    }
    close(log_fd);
  });

  if (port_ != 0) return true;
  const auto tail = [this] {
    std::string text = stderr_text();
    if (text.size() > 2000) text = "..." + text.substr(text.size() - 2000);
    return text.empty() ? std::string() : "; stderr:\n" + text;
  };
  if (eof && reap_within(std::chrono::milliseconds(2000))) {
    error_ = "ticketaid exited with status " + std::to_string(exit_status_) +
             " before it was listening" + tail();
    return false;
  }
  error_ = eof ? "ticketaid closed its standard output before it was listening"
               : "ticketaid printed no listening line within " +
                     std::to_string(options_.start_timeout.count()) + " ms";
  error_ += tail();
  kill9();
  return false;
}

bool DaemonProcess::running() {
  if (pid_ <= 0) return false;
  return !reap_within(std::chrono::milliseconds(0));
}

// Waits up to timeout for the child to exit and reaps it; returns whether it did.
bool DaemonProcess::reap_within(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return true;
  const auto deadline = Clock::now() + timeout;
  const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid_, 0U));
  while (true) {
    int status = 0;
    const pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      if (pidfd >= 0) close(pidfd);
      reaped(status);
      return true;
    }
    if (r < 0 && errno != EINTR) {  // not our child any more: nothing to wait for
      if (pidfd >= 0) close(pidfd);
      reaped(0);
      return true;
    }
    if (Clock::now() >= deadline) break;
    if (pidfd >= 0) {
      pollfd p{pidfd, POLLIN, 0};
      poll(&p, 1, remaining_ms(deadline));
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  if (pidfd >= 0) close(pidfd);
  return false;
}

void DaemonProcess::reaped(int wait_status) {
  exit_status_ = decode_wait_status(wait_status);
  pid_ = -1;
  drain_stop_ = true;
  if (stdout_drain_.joinable()) stdout_drain_.join();
  if (stdout_fd_ >= 0) close(stdout_fd_);
  stdout_fd_ = -1;
}

bool DaemonProcess::signal(int sig) {
  return pid_ > 0 && kill(pid_, sig) == 0;
}

int DaemonProcess::wait_exit(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return exit_status_;
  return reap_within(timeout) ? exit_status_ : -1;
}

int DaemonProcess::stop() {
  if (pid_ <= 0) return exit_status_;
  kill(pid_, SIGTERM);
  if (!reap_within(kStopTimeout)) kill9();
  return exit_status_;
}

void DaemonProcess::kill9() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  int status = 0;
  pid_t r;
  do {
    r = waitpid(pid_, &status, 0);
  } while (r < 0 && errno == EINTR);
  reaped(r == pid_ ? status : 0);
}

std::string DaemonProcess::stderr_text() const {
  return stderr_path_.empty() ? std::string() : read_file(stderr_path_);
}

std::string DaemonProcess::stdout_text() const {
  return stdout_path_.empty() ? std::string() : read_file(stdout_path_);
}

int DaemonProcess::run_once(const std::vector<std::string>& args, std::string* out,
                            std::string* err, const std::map<std::string, std::string>& env) {
  std::string ignored_out;
  std::string ignored_err;
  if (out == nullptr) out = &ignored_out;
  if (err == nullptr) err = &ignored_err;
  out->clear();
  err->clear();
  const std::string binary = ticketaid_binary();
  if (binary.empty()) {
    *err = "no ticketaid binary (set TICKETAID_TEST_BINARY)";
    return -1;
  }
  std::vector<std::string> argv = {binary};
  argv.insert(argv.end(), args.begin(), args.end());

  int out_pipe[2];
  int err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) {
    *err = errno_text("pipe2");
    return -1;
  }
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    *err = errno_text("pipe2");
    close(out_pipe[0]);
    close(out_pipe[1]);
    return -1;
  }
  std::string spawn_error;
  const pid_t pid = spawn(argv, child_environment(env), out_pipe[1], err_pipe[1], &spawn_error);
  close(out_pipe[1]);
  close(err_pipe[1]);
  if (pid < 0) {
    close(out_pipe[0]);
    close(err_pipe[0]);
    *err = spawn_error;
    return 127;
  }

  // Read both pipes together, so that neither can fill up and block the child.
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {out, err};
  const auto deadline = Clock::now() + kRunOnceTimeout;
  bool timed_out = false;
  while (fds[0].fd >= 0 || fds[1].fd >= 0) {
    const int ready = poll(fds, 2, remaining_ms(deadline));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) {
      timed_out = true;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buf[4096];
      const ssize_t n = read(fds[i].fd, buf, sizeof(buf));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        close(fds[i].fd);
        fds[i].fd = -1;  // poll ignores negative descriptors
        continue;
      }
      sinks[i]->append(buf, static_cast<std::size_t>(n));
    }
  }
  for (const auto& p : fds) {
    if (p.fd >= 0) close(p.fd);
  }
  if (timed_out) kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) err->append("\n[killed after " + std::to_string(kRunOnceTimeout.count()) + " ms]");
  return decode_wait_status(status);
}

std::string ticketaid_binary() {
#ifdef TICKETAID_BINARY
  return TICKETAID_BINARY;
#else
  if (const char* path = getenv("TICKETAID_TEST_BINARY"); path != nullptr && *path != '\0') {
    return path;
  }
  // The build tree: <build>/tests/<test executable> and <build>/src/ticketaid.
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const auto candidate = exe.parent_path().parent_path() / "src" / "ticketaid";
    if (std::filesystem::exists(candidate, ec)) return candidate.string();
  }
  return std::string();
#endif
}

}  // namespace ticketaid::testing
