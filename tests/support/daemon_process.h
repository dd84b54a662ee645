// Runs the real ticketaid binary as a child process for integration tests.
//
// start() launches "ticketaid serve --listen 127.0.0.1:0 --db <tmp>/ticketaid.db ..."
// with the given extra arguments and environment, and waits for the line
// "ticketaid listening on http://HOST:PORT" on its standard output to learn the
// port. Standard error is kept in a file whose contents failures print. The
// destructor stops the process (SIGTERM, then SIGKILL after a bound).
//
// Thread-safety: one thread uses a DaemonProcess.
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace ticketaid::testing {

// A fresh temporary directory, removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

struct DaemonOptions {
  std::string binary;                   // default: TICKETAID_BINARY from the build
  std::filesystem::path db_path;        // required
  std::string ollama_url;               // passed as --ollama-url when non-empty
  std::vector<std::string> extra_args;  // appended after "serve ..."
  // Added to a minimal environment. Unless set here, TICKETAID_SERVER_DRAIN_TIMEOUT_S
  // is 0, so that stopping a daemon with a stalled generation does not wait out the
  // drain (the tests of the drain set it).
  std::map<std::string, std::string> env;
  std::chrono::milliseconds start_timeout{10'000};
  // Socket activation as systemd does it: when >= 0, this listening socket becomes
  // the child's descriptor 3, with LISTEN_FDS=1 and LISTEN_PID=<the child's pid>.
  // The caller keeps its own descriptor.
  int listen_fd = -1;
  // Run the daemon through this command (e.g. {"/usr/bin/unshare", "--mount", ...}),
  // which ends by exec'ing its arguments; empty: run it directly.
  std::vector<std::string> wrapper;
  // Tell the daemon its standard error is the journal (JOURNAL_STREAM=dev:inode of
  // its standard error file), as systemd does.
  bool journal_stream = false;
};

class DaemonProcess {
 public:
  explicit DaemonProcess(DaemonOptions options);
  ~DaemonProcess();  // stop()
  DaemonProcess(const DaemonProcess&) = delete;
  DaemonProcess& operator=(const DaemonProcess&) = delete;

  // Launches and waits for the listening line. Returns false (with the reason in
  // error()) if the process exits or the timeout passes first.
  bool start();
  int port() const { return port_; }
  std::string host_port() const;    // "127.0.0.1:PORT"
  bool running();                   // still alive (reaps it if it exited)
  int pid() const { return pid_; }  // -1 when not running
  // Sends a signal (SIGHUP, SIGTERM...) without waiting; false if not running.
  bool signal(int sig);
  // Waits up to timeout for the process to exit by itself; returns its exit code as
  // stop() does, or -1 if it is still running.
  int wait_exit(std::chrono::milliseconds timeout);

  // SIGTERM, wait up to 10 s, then SIGKILL; returns the exit code, or 128 + the signal
  // number when a signal ended it (again on later calls; -1 if it never ran).
  int stop();
  void kill9();  // SIGKILL and reap: a crash
  // Runs the binary once with the given arguments (no "serve" added); returns the
  // exit code and fills out/err.
  static int run_once(const std::vector<std::string>& args, std::string* out, std::string* err,
                      const std::map<std::string, std::string>& env = {});

  std::string error() const { return error_; }
  std::string stderr_text() const;  // what the daemon wrote to standard error so far
  std::string stdout_text() const;  // what the daemon wrote to standard output so far

 private:
  void reaped(int wait_status);  // records the exit status and stops the stdout drain
  bool reap_within(std::chrono::milliseconds timeout);

  DaemonOptions options_;
  int pid_ = -1;
  int port_ = 0;
  int exit_status_ = -1;
  std::string error_;
  std::unique_ptr<TempDir> log_dir_;  // holds stderr.log and stdout.log
  std::filesystem::path stderr_path_;
  std::filesystem::path stdout_path_;
  // After the listening line, a thread copies the rest of standard output to
  // stdout_path_ so that the child never blocks on a full pipe.
  int stdout_fd_ = -1;
  std::atomic<bool> drain_stop_{false};
  std::thread stdout_drain_;
};

// The path of the ticketaid binary under test: the compile definition
// TICKETAID_BINARY of the support library, else $TICKETAID_TEST_BINARY, else
// src/ticketaid beside the test executable's directory in the build tree.
std::string ticketaid_binary();

}  // namespace ticketaid::testing
