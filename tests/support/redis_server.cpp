// Runs redis-server as a child process (see redis_server.h).
//
// The child is started with spawn_child (child_process.h): fork and execv, /dev/null
// as standard input, a log file as standard output and error, no other inherited
// descriptors, default signal handling, and SIGKILL when the thread that started it
// ends. command() speaks just enough RESP over a plain socket.
//
// Thread-safety: one thread uses a RedisServer.
#include "support/redis_server.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "support/child_process.h"
#include "util/redis_url.h"

namespace ticketaid::testing {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kReadyTimeoutMs = 10'000;
constexpr int kStopTimeoutMs = 10'000;
constexpr int kPortAttempts = 5;

std::string find_on_path(const std::string& name) {
  const char* path = getenv("PATH");
  std::istringstream dirs(path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    const std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return std::string();
}

// A loopback port that was free a moment ago.
int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof(address);
  int port = 0;
  if (fd >= 0 && bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size) == 0) {
    port = ntohs(address.sin_port);
  }
  if (fd >= 0) close(fd);
  return port;
}

std::string percent_encode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (std::isalnum(byte) != 0 || c == '-' || c == '.' || c == '_' || c == '~') {
      out += c;
    } else {
      out += '%';
      out += kHex[byte >> 4];
      out += kHex[byte & 15];
    }
  }
  return out;
}

// One blocking connection that writes commands and reads replies, with timeouts.
class RespConnection {
 public:
  RespConnection(const std::string& host, int port) {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) != 0) {
      error_ = "cannot resolve " + host;
      return;
    }
    for (addrinfo* a = found; a != nullptr && fd_ < 0; a = a->ai_next) {
      fd_ = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
      if (fd_ < 0) continue;
      const timeval timeout{2, 0};
      setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
      setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
      if (connect(fd_, a->ai_addr, a->ai_addrlen) != 0) {
        error_ = std::string("connect: ") + std::strerror(errno);
        close(fd_);
        fd_ = -1;
      }
    }
    freeaddrinfo(found);
  }
  ~RespConnection() {
    if (fd_ >= 0) close(fd_);
  }

  RespReply call(const std::vector<std::string>& args) {
    if (fd_ < 0) return {0, error_};
    std::string out = "*" + std::to_string(args.size()) + "\r\n";
    for (const std::string& arg : args) {
      out += "$" + std::to_string(arg.size()) + "\r\n" + arg + "\r\n";
    }
    for (std::size_t sent = 0; sent < out.size();) {
      const ssize_t n = send(fd_, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return {0, std::string("send: ") + std::strerror(errno)};
      sent += static_cast<std::size_t>(n);
    }
    std::string line;
    if (!read_line(&line) || line.empty()) return {0, "no reply: " + error_};
    RespReply reply{line[0], line.substr(1)};
    if (reply.type != '$') return reply;
    const long size = std::strtol(reply.text.c_str(), nullptr, 10);
    if (size < 0) return {'_', ""};
    if (!fill(static_cast<std::size_t>(size) + 2)) return {0, "a short bulk reply: " + error_};
    reply.text = in_.substr(0, static_cast<std::size_t>(size));
    in_.erase(0, static_cast<std::size_t>(size) + 2);
    return reply;
  }

 private:
  // Reads until `in_` holds at least `size` bytes.
  bool fill(std::size_t size) {
    while (in_.size() < size) {
      char buf[4096];
      const ssize_t n = recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) {
        error_ = n == 0 ? "the server closed the connection" : std::strerror(errno);
        return false;
      }
      in_.append(buf, static_cast<std::size_t>(n));
    }
    return true;
  }
  bool read_line(std::string* line) {
    std::size_t end;
    while ((end = in_.find("\r\n")) == std::string::npos) {
      if (!fill(in_.size() + 1)) return false;
    }
    *line = in_.substr(0, end);
    in_.erase(0, end + 2);
    return true;
  }

  int fd_ = -1;
  std::string in_;
  std::string error_;
};

}  // namespace

RedisServer::RedisServer(RedisServerOptions options) : options_(std::move(options)) {
  if (const char* url = getenv("TICKETAID_TEST_REDIS_URL"); url != nullptr && *url != '\0') {
    external_url_ = url;
  }
}

RedisServer::~RedisServer() {
  terminate_child(&pid_, kStopTimeoutMs);
}

bool RedisServer::start() {
  if (external()) {
    if (!options_.password.empty() || started_) {
      [this] {
        GTEST_SKIP() << "TICKETAID_TEST_REDIS_URL names an external Redis, which this test "
                     << "cannot " << (started_ ? "restart" : "start with its own password");
      }();
      return false;
    }
    started_ = true;
    const RespReply pong = command({"PING"});
    if (pong.type == '+') return true;
    ADD_FAILURE() << "the Redis of TICKETAID_TEST_REDIS_URL does not answer PING: " << pong.text;
    return false;
  }
  if (pid_ > 0) return true;
  if (find_on_path("redis-server").empty()) {
    ADD_FAILURE() << "redis-server is not on PATH: install it (Debian: apt-get install "
                     "redis-server) or point TICKETAID_TEST_REDIS_URL at a Redis to use";
    return false;
  }
  if (!dir_) dir_ = std::make_unique<TempDir>();
  // A port chosen here may be taken before Redis binds it: then try another, but
  // only the first time (a restart must keep its port).
  const int attempts = started_ ? 1 : kPortAttempts;
  std::string error;
  for (int attempt = 0; attempt < attempts; ++attempt) {
    if (!started_) port_ = free_port();
    if (launch(&error) && wait_ready(&error)) {
      started_ = true;
      return true;
    }
  }
  ADD_FAILURE() << "redis-server did not start on port " << port_ << ": " << error << "\nlog:\n"
                << log_text();
  return false;
}

bool RedisServer::launch(std::string* error) {
  std::vector<std::string> args = {find_on_path("redis-server"), "--port", std::to_string(port_),
                                   "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                   "--daemonize", "no", "--dir", dir_->path().string(),
                                   // Its timers run 100 times a second, so that it
                                   // notices SIGTERM within 10 ms (100 ms by default).
                                   "--hz", "100"};
  if (!options_.password.empty()) {
    args.push_back("--requirepass");
    args.push_back(options_.password);
  }
  const std::string log_path = (dir_->path() / "redis.log").string();
  const int log_fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    *error = std::string("cannot open the log: ") + std::strerror(errno);
    return false;
  }
  const pid_t pid = spawn_child(std::move(args), log_fd, log_fd, error);
  close(log_fd);
  if (pid < 0) return false;
  pid_ = pid;
  return true;
}

// Polls PING until Redis answers (NOAUTH counts: it is up), the process exits, or
// the deadline passes.
bool RedisServer::wait_ready(std::string* error) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(kReadyTimeoutMs);
  while (true) {
    if (reap_child_within(&pid_, 0)) {
      *error = "redis-server exited";
      return false;
    }
    const RespReply reply = RespConnection("127.0.0.1", port_).call({"PING"});
    if ((reply.type == '+' && reply.text == "PONG") ||
        (reply.type == '-' && reply.text.starts_with("NOAUTH"))) {
      return true;
    }
    if (Clock::now() >= deadline) {
      *error = "no answer to PING within " + std::to_string(kReadyTimeoutMs) + " ms (" +
               reply.text + ")";
      ::kill(pid_, SIGKILL);
      reap_child_within(&pid_, kStopTimeoutMs);
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

bool RedisServer::stop() {
  if (external()) {
    [] { GTEST_SKIP() << "TICKETAID_TEST_REDIS_URL names an external Redis: cannot stop it"; }();
    return false;
  }
  if (terminate_child(&pid_, kStopTimeoutMs)) return true;
  ADD_FAILURE() << "redis-server ignored SIGTERM for " << kStopTimeoutMs << " ms";
  return false;
}

bool RedisServer::kill() {
  if (external()) {
    [] { GTEST_SKIP() << "TICKETAID_TEST_REDIS_URL names an external Redis: cannot kill it"; }();
    return false;
  }
  if (pid_ <= 0) return true;
  ::kill(pid_, SIGKILL);
  if (reap_child_within(&pid_, kStopTimeoutMs)) return true;
  ADD_FAILURE() << "redis-server survived SIGKILL";
  return false;
}

std::string RedisServer::url() const {
  if (external()) return external_url_;
  const std::string credentials =
      options_.password.empty() ? "" : ":" + percent_encode(options_.password) + "@";
  return "redis://" + credentials + "127.0.0.1:" + std::to_string(port_);
}

int RedisServer::port() const {
  if (!external()) return port_;
  const auto parsed = parse_redis_url(external_url_);
  return parsed ? parsed->port : 0;
}

RespReply RedisServer::command(const std::vector<std::string>& args, int db) const {
  auto parsed = parse_redis_url(url());
  if (!parsed) return {0, "bad url: " + parsed.status().message()};
  RespConnection connection(parsed->host, parsed->port);
  if (!parsed->password.empty()) {
    std::vector<std::string> auth = {"AUTH"};
    if (!parsed->username.empty()) auth.push_back(parsed->username);
    auth.push_back(parsed->password);
    if (RespReply reply = connection.call(auth); reply.type != '+') return reply;
  }
  const int select = db != 0 ? db : parsed->db;
  if (select != 0) {
    if (RespReply reply = connection.call({"SELECT", std::to_string(select)}); reply.type != '+') {
      return reply;
    }
  }
  return connection.call(args);
}

std::string RedisServer::log_text() const {
  if (!dir_) return std::string();
  std::ifstream in(dir_->path() / "redis.log", std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  std::string text = out.str();
  if (text.size() > 4000) text = "..." + text.substr(text.size() - 4000);
  return text;
}

}  // namespace ticketaid::testing
