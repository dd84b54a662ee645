// Runs a real redis-server for the tests of the Redis rate limiter.
//
// start() launches `redis-server` from PATH on a free loopback port (chosen by
// binding 127.0.0.1:0; another port is tried if Redis cannot bind that one), without
// persistence, and waits until it answers PING (bounded). stop() ends it with
// SIGTERM, kill() with SIGKILL (a crash); start() again reuses the same port, so a
// client configured with url() can reconnect. The destructor stops it. command()
// sends one command over a fresh connection, to look at or disturb the server.
//
// With TICKETAID_TEST_REDIS_URL set, the tests use that Redis instead: url() returns
// it, the first start() only checks that it answers, and stop(), kill(), a second
// start() and a server with its own password skip the test, as that server cannot
// be controlled.
//
// Failures and skips are recorded with gtest (ADD_FAILURE, GTEST_SKIP) and the
// methods return false, so that a test body writes `if (!redis.start()) return;`.
// Without redis-server on PATH (and no TICKETAID_TEST_REDIS_URL), start() fails the
// test and says so.
//
// Thread-safety: one thread uses a RedisServer.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "support/daemon_process.h"

namespace ticketaid::testing {

struct RedisServerOptions {
  std::string password;  // --requirepass when non-empty; url() carries it %-escaped
};

// One reply, as command() read it.
struct RespReply {
  // '+' status, '-' error, ':' integer, '$' bulk string, '_' nil, '*' array (text
  // holds the element count; the elements are not read), 0 when there was no reply
  // (text says why).
  char type = 0;
  std::string text;
};

class RedisServer {
 public:
  explicit RedisServer(RedisServerOptions options = {});
  ~RedisServer();  // stops a server it started
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  // Starts the server (again on the same port after stop or kill) and waits until it
  // answers PING.
  bool start();
  bool stop();  // SIGTERM, waits for the exit (SIGKILL after 10 s)
  bool kill();  // SIGKILL, waits for the exit
  bool running() const { return pid_ > 0; }
  bool external() const { return !external_url_.empty(); }

  // "redis://[:password@]127.0.0.1:PORT", or TICKETAID_TEST_REDIS_URL.
  std::string url() const;
  int port() const;

  // Sends one command (binary-safe arguments) after AUTH and, for db != 0, SELECT.
  RespReply command(const std::vector<std::string>& args, int db = 0) const;

  // What redis-server wrote so far (its log), for failure messages.
  std::string log_text() const;

 private:
  bool launch(std::string* error);  // starts the process on port_
  bool wait_ready(std::string* error);

  RedisServerOptions options_;
  std::string external_url_;
  bool started_ = false;
  int port_ = 0;
  int pid_ = -1;
  std::unique_ptr<TempDir> dir_;  // the working directory and the log
};

}  // namespace ticketaid::testing
