// The daemon as a systemd service: sd_notify messages (READY, STATUS, STOPPING,
// RELOADING, WATCHDOG) read from a notify socket the test owns, SIGHUP reloads,
// socket activation and the drain on SIGTERM. No systemd is needed: the tests play
// the service manager's part through NOTIFY_SOCKET, WATCHDOG_USEC and LISTEN_FDS.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <fstream>
#include <optional>

#include "integration/daemon_fixture.h"
#include "integration/rest_client.h"

namespace ticketaid::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// A unix datagram socket playing systemd's notify socket.
class NotifySocket {
 public:
  explicit NotifySocket(const std::filesystem::path& path) : path_(path.string()) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    path_.copy(address.sun_path, sizeof(address.sun_path) - 1);
    bound_ = fd_ >= 0 && ::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  }
  ~NotifySocket() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool bound() const { return bound_; }
  const std::string& path() const { return path_; }

  // The next message, or nullopt when none arrives within the timeout.
  std::optional<std::string> receive(milliseconds timeout = seconds(10)) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return std::nullopt;
    char buf[4096];
    const ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n < 0) return std::nullopt;
    return std::string(buf, static_cast<std::size_t>(n));
  }

  // Reads messages until one contains `text`; returns it, or nullopt at the timeout.
  // Messages read on the way are appended to *seen when given.
  std::optional<std::string> wait_for(std::string_view text, milliseconds timeout = seconds(10),
                                      std::vector<std::string>* seen = nullptr) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const auto left =
          std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      auto message = receive(left);
      if (!message) return std::nullopt;
      if (seen != nullptr) seen->push_back(*message);
      if (message->find(text) != std::string::npos) return message;
    }
  }

 private:
  std::string path_;
  int fd_ = -1;
  bool bound_ = false;
};

// A TCP socket listening on 127.0.0.1 at a free port, as systemd's .socket unit makes.
struct ListeningSocket {
  ListeningSocket() {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&address), length) != 0 ||
        ::listen(fd, 64) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      return;
    }
    port = ntohs(address.sin_port);
  }
  ~ListeningSocket() {
    if (fd >= 0) ::close(fd);
  }
  int fd = -1;
  int port = 0;
};

class Systemd : public DaemonTest {
 protected:
  std::map<std::string, std::string> notify_env() {
    EXPECT_TRUE(notify_.bound()) << notify_.path();
    return {{"NOTIFY_SOCKET", notify_.path()}};
  }

  void write_config(const std::string& text) {
    std::ofstream out(config_path(), std::ios::trunc);
    out << text;
  }
  std::filesystem::path config_path() const { return dir_.path() / "ticketaid.toml"; }

  // Sends SIGHUP and expects RELOADING=1 (with MONOTONIC_USEC) then READY=1.
  void reload() {
    ASSERT_TRUE(daemon_->signal(SIGHUP));
    auto reloading = notify_.wait_for("RELOADING=1");
    ASSERT_TRUE(reloading) << daemon_->stderr_text();
    EXPECT_NE(reloading->find("MONOTONIC_USEC="), std::string::npos) << *reloading;
    ASSERT_TRUE(notify_.wait_for("READY=1")) << daemon_->stderr_text();
  }

  NotifySocket notify_{dir_.path() / "notify.sock"};
};

TEST_F(Systemd, ReadyOnlyOnceListeningThenStatusThenStoppingOnSigterm) {
  start_daemon({}, notify_env());
  // The first message is READY=1, and it names the port already bound.
  auto ready = notify_.receive();
  ASSERT_TRUE(ready) << daemon_->stderr_text();
  EXPECT_NE(ready->find("READY=1"), std::string::npos) << *ready;
  EXPECT_NE(ready->find("STATUS=serving on " + daemon_->host_port()), std::string::npos) << *ready;
  EXPECT_EQ(http_get(daemon_->port(), "/health").status, 200);

  auto status = notify_.wait_for("STATUS=serving:");
  ASSERT_TRUE(status);
  EXPECT_NE(status->find("connection(s)"), std::string::npos) << *status;
  EXPECT_NE(status->find("generation(s) running"), std::string::npos) << *status;
  EXPECT_NE(status->find("queued"), std::string::npos) << *status;

  EXPECT_EQ(daemon_->stop(), 0) << daemon_->stderr_text();
  EXPECT_TRUE(notify_.wait_for("STOPPING=1", milliseconds(1000)));
}

TEST_F(Systemd, NoReadyWhenTheDatabaseCannotBeOpened) {
  std::string out, err;
  const int code = DaemonProcess::run_once(
      {"serve", "--listen", "127.0.0.1:0", "--db", (dir_.path() / "missing/dir/x.db").string(),
       "--ollama-url", fake_.url()},
      &out, &err, notify_env());
  EXPECT_EQ(code, 1) << err;
  // The daemon has exited: anything it sent is already queued on the socket.
  EXPECT_FALSE(notify_.receive(milliseconds(0)));
}

TEST_F(Systemd, WatchdogIsPettedWhileTheLoopRuns) {
  auto env = notify_env();
  env["WATCHDOG_USEC"] = "300000";  // 0.3 s: pings every 150 ms
  start_daemon({}, env);
  ASSERT_TRUE(notify_.wait_for("WATCHDOG=1", seconds(5)));
  ASSERT_TRUE(notify_.wait_for("WATCHDOG=1", seconds(5)));
  ASSERT_TRUE(notify_.wait_for("WATCHDOG=1", seconds(5)));
}

TEST_F(Systemd, NoWatchdogPingsWithoutWatchdogUsec) {
  start_daemon({}, notify_env());
  std::vector<std::string> seen;
  // Status updates come at once and then every 5 s; a ping would come within 1 s.
  notify_.wait_for("WATCHDOG=1", milliseconds(1500), &seen);
  for (const auto& message : seen) {
    EXPECT_EQ(message.find("WATCHDOG=1"), std::string::npos) << message;
  }
}

TEST_F(Systemd, SighupReloadsAReloadableKey) {
  write_config("[log]\nlevel = \"info\"\n");
  start_daemon({"--config", config_path().string()}, notify_env());
  ASSERT_TRUE(notify_.wait_for("READY=1"));

  write_config("[log]\nlevel = \"debug\"\n\n[generation]\nmax_tokens = 77\n");
  reload();
  const auto log = daemon_->stderr_text();
  EXPECT_NE(log.find("reloaded the configuration"), std::string::npos) << log;
  EXPECT_NE(log.find("generation.max_tokens"), std::string::npos) << log;
  EXPECT_NE(log.find("log.level"), std::string::npos) << log;

  // The new settings are used: the next generation asks for 77 tokens.
  REQUIRE_FAKE_OLLAMA();
  auto client = open_ticket("R-1");
  client->send_json({{"ticketBody", "Mail is slow"}});
  ASSERT_EQ(read_reply(*client).back()["type"], "done");
  EXPECT_EQ(fake_.last_chat_body()["options"]["num_predict"], 77) << fake_.last_chat_body();
}

TEST_F(Systemd, SighupRefusesAnInvalidFileAndKeepsServing) {
  write_config("[generation]\nmax_tokens = 55\n");
  start_daemon({"--config", config_path().string()}, notify_env());
  ASSERT_TRUE(notify_.wait_for("READY=1"));

  write_config("[generation]\nmax_tokens = 66\nmax_parallel = 0\n");
  reload();
  auto log = daemon_->stderr_text();
  EXPECT_NE(log.find("reload refused, keeping the running settings: generation.max_parallel"),
            std::string::npos)
      << log;

  // A key that needs a restart is refused as a whole, too.
  write_config("[generation]\nmax_tokens = 66\n\n[server]\nio_threads = 3\n");
  reload();
  log = daemon_->stderr_text();
  EXPECT_NE(log.find("server.io_threads cannot change without a restart"), std::string::npos)
      << log;
  EXPECT_EQ(log.find("reloaded the configuration"), std::string::npos) << log;

  EXPECT_EQ(http_get(daemon_->port(), "/health").status, 200);
  REQUIRE_FAKE_OLLAMA();
  auto client = open_ticket("R-2");
  client->send_json({{"ticketBody", "Disk full"}});
  ASSERT_EQ(read_reply(*client).back()["type"], "done");
  EXPECT_EQ(fake_.last_chat_body()["options"]["num_predict"], 55) << fake_.last_chat_body();
}

TEST_F(Systemd, SocketActivationServesOnThePassedSocket) {
  ListeningSocket listening;
  ASSERT_GT(listening.port, 0);
  DaemonOptions options;
  options.db_path = db_path();
  options.ollama_url = real_ollama_url().empty() ? fake_.url() : real_ollama_url();
  options.listen_fd = listening.fd;
  options.env = notify_env();
  daemon_ = std::make_unique<DaemonProcess>(options);
  ASSERT_TRUE(daemon_->start()) << daemon_->error();
  // --listen 127.0.0.1:0 was given, but the passed socket is used.
  EXPECT_EQ(daemon_->port(), listening.port);
  auto ready = notify_.wait_for("READY=1");
  ASSERT_TRUE(ready);
  EXPECT_NE(ready->find("127.0.0.1:" + std::to_string(listening.port)), std::string::npos);
  EXPECT_EQ(http_get(listening.port, "/health").status, 200);
  auto client = open_ticket("SA-1");
  client->send_json({{"ticketBody", "Socket activated"}});
  EXPECT_EQ(read_reply(*client).back()["type"], "done");
}

TEST_F(Systemd, SigtermLetsARunningGenerationFinishWithinTheDrainTimeout) {
  REQUIRE_FAKE_OLLAMA();
  FakeScript script;
  script.tokens = {"Restart ", "the ", "spooler."};
  script.fault = FakeFault::stall_after_tokens;
  script.fault_after_tokens = 1;
  fake_.set_script(script);
  auto env = notify_env();
  env["TICKETAID_SERVER_DRAIN_TIMEOUT_S"] = "20";
  start_daemon({}, env);

  auto first = open_ticket("D-1");
  auto other = open_ticket("D-2");
  first->send_json({{"ticketBody", "Printer jams"}});
  auto chunk = first->read_json(seconds(10));
  ASSERT_TRUE(chunk);
  ASSERT_EQ((*chunk)["type"], "stream") << *chunk;

  ASSERT_TRUE(daemon_->signal(SIGTERM));
  auto draining = notify_.wait_for("STATUS=draining");
  ASSERT_TRUE(draining) << daemon_->stderr_text();
  EXPECT_NE(draining->find("1 generation(s) running"), std::string::npos) << *draining;
  // Draining: new work on an open connection is refused with busy...
  other->send_json({{"ticketBody", "Scanner offline"}});
  auto refused = read_reply(*other);
  ASSERT_FALSE(refused.empty());
  EXPECT_EQ(refused.back()["type"], "error") << refused.back();
  EXPECT_EQ(refused.back()["code"], "busy") << refused.back();
  // ...no new connection is accepted...
  EXPECT_TRUE(wait_until([&] {
    WsClient late;
    return !late.connect(daemon_->port(), "/api/websocket/chat/D-3").upgraded;
  }));
  // ...and the running generation finishes, durably, before the daemon exits.
  EXPECT_TRUE(daemon_->running());
  fake_.release();
  auto rest = read_reply(*first);
  ASSERT_FALSE(rest.empty());
  EXPECT_EQ(rest.back()["type"], "done") << rest.back() << "\n" << daemon_->stderr_text();
  // Then every socket still open is closed with 1001, going away.
  EXPECT_FALSE(first->read_json(seconds(5)));
  EXPECT_EQ(first->close_code(), 1001);
  EXPECT_FALSE(other->read_json(seconds(5)));
  EXPECT_EQ(other->close_code(), 1001);
  EXPECT_EQ(daemon_->wait_exit(seconds(10)), 0) << daemon_->stderr_text();
  // The write-ahead log was folded into the database file on the way out.
  const auto wal = db_path().string() + "-wal";
  EXPECT_TRUE(!std::filesystem::exists(wal) || std::filesystem::file_size(wal) == 0)
      << std::filesystem::file_size(wal) << " bytes left in " << wal;

  start_daemon();
  auto session = http_get(daemon_->port(), "/api/tickets/D-1/ai-session");
  ASSERT_EQ(session.status, 200) << session.describe();
  EXPECT_EQ(session.json["status"], "complete");
  EXPECT_EQ(session.json["response"], "Restart the spooler.");
}

TEST_F(Systemd, DrainTimeoutStopsAStalledGenerationAsInterrupted) {
  REQUIRE_FAKE_OLLAMA();
  FakeScript script;
  script.fault = FakeFault::stall_after_tokens;
  script.fault_after_tokens = 1;
  fake_.set_script(script);
  start_daemon({}, {{"TICKETAID_SERVER_DRAIN_TIMEOUT_S", "1"}});

  auto client = open_ticket("D-4");
  client->send_json({{"ticketBody", "Never ends"}});
  auto chunk = client->read_json(seconds(10));
  ASSERT_TRUE(chunk);
  ASSERT_EQ((*chunk)["type"], "stream");

  const auto signalled = std::chrono::steady_clock::now();
  ASSERT_TRUE(daemon_->signal(SIGTERM));
  auto rest = read_reply(*client);
  ASSERT_FALSE(rest.empty());
  EXPECT_EQ(rest.back()["type"], "error") << rest.back();
  EXPECT_EQ(daemon_->wait_exit(seconds(10)), 0) << daemon_->stderr_text();
  const auto took = std::chrono::steady_clock::now() - signalled;
  EXPECT_GE(took, milliseconds(900));
  EXPECT_LT(took, seconds(5));
  EXPECT_NE(daemon_->stderr_text().find("drain: stopping 1 unfinished generation"),
            std::string::npos)
      << daemon_->stderr_text();

  fake_.release();
  start_daemon();
  auto session = http_get(daemon_->port(), "/api/tickets/D-4/ai-session");
  ASSERT_EQ(session.status, 200) << session.describe();
  EXPECT_EQ(session.json["status"], "interrupted");
}

}  // namespace
}  // namespace ticketaid::testing

namespace ticketaid::testing {
namespace {

// journald's native protocol: datagrams of NAME=value lines (a value holding a newline
// comes as NAME\n, a 64-bit little-endian length, the bytes, \n).
std::map<std::string, std::string> journal_fields(const std::string& datagram) {
  std::map<std::string, std::string> fields;
  std::size_t pos = 0;
  while (pos < datagram.size()) {
    const std::size_t newline = datagram.find('\n', pos);
    if (newline == std::string::npos) break;
    const std::string line = datagram.substr(pos, newline - pos);
    const std::size_t equals = line.find('=');
    if (equals != std::string::npos) {
      fields[line.substr(0, equals)] = line.substr(equals + 1);
      pos = newline + 1;
      continue;
    }
    uint64_t size = 0;
    for (int i = 7; i >= 0; --i) {
      size = size << 8 | static_cast<unsigned char>(datagram[newline + 1 + i]);
    }
    fields[line] = datagram.substr(newline + 9, size);
    pos = newline + 9 + size + 1;
  }
  return fields;
}

TEST_F(Systemd, UnderSystemdEventsGoToTheJournalWithAPriorityAndTheTicketId) {
  REQUIRE_FAKE_OLLAMA();
  if (geteuid() != 0) {
    GTEST_SKIP() << "needs root: the journal socket is bind-mounted in a private mount namespace";
  }
  // A private /run/systemd/journal whose socket is this test's.
  const auto journal_dir = dir_.path() / "journal";
  std::filesystem::create_directories(journal_dir);
  NotifySocket journal(journal_dir / "socket");
  ASSERT_TRUE(journal.bound());
  FakeScript failing;
  failing.fault = FakeFault::http_500;
  fake_.set_script(failing);

  DaemonOptions options;
  options.db_path = db_path();
  options.ollama_url = fake_.url();
  options.journal_stream = true;
  options.env = {{"TICKETAID_LIMITS_MAX_CONNECTIONS_PER_USER", "100"}};
  options.wrapper = {"/usr/bin/unshare",
                     "--mount",
                     "--",
                     "/bin/sh",
                     "-ec",
                     "mount -t tmpfs tmpfs /run/systemd && mkdir -p /run/systemd/journal && "
                     "mount --bind " +
                         journal_dir.string() +
                         " /run/systemd/journal && "
                         "exec \"$0\" \"$@\""};
  DaemonProcess daemon(options);
  ASSERT_TRUE(daemon.start()) << daemon.error() << daemon.stderr_text();

  WsClient client;
  ASSERT_TRUE(client.connect(daemon.port(), "/api/websocket/chat/T-JOURNAL").upgraded);
  client.send_json({{"ticketBody", "The VPN drops every hour"}});
  auto failed = client.read_until_type("error");
  ASSERT_TRUE(failed) << daemon.stderr_text();

  std::map<std::string, std::string> serving, generation;
  const auto deadline = std::chrono::steady_clock::now() + seconds(10);
  while ((serving.empty() || generation.empty()) && std::chrono::steady_clock::now() < deadline) {
    auto datagram = journal.receive(seconds(1));
    if (!datagram) continue;
    auto fields = journal_fields(*datagram);
    if (fields["MESSAGE"].starts_with("serving on")) serving = fields;
    if (fields["MESSAGE"].find("generation T-JOURNAL failed") != std::string::npos) {
      generation = fields;
    }
  }
  ASSERT_FALSE(serving.empty()) << "no start-up event in the journal";
  EXPECT_EQ(serving["PRIORITY"], "6");
  EXPECT_EQ(serving["SYSLOG_IDENTIFIER"], "ticketaid");
  EXPECT_EQ(serving.count("TICKET_ID"), 0u);
  ASSERT_FALSE(generation.empty()) << "no generation event in the journal";
  EXPECT_EQ(generation["PRIORITY"], "4");  // warning
  EXPECT_EQ(generation["TICKET_ID"], "T-JOURNAL");
  // Nothing went to standard error: the journal has it all.
  EXPECT_EQ(daemon.stderr_text().find("serving on"), std::string::npos) << daemon.stderr_text();
}

TEST_F(Systemd, SocketActivatedThroughSystemdSocketActivate) {
  REQUIRE_FAKE_OLLAMA();
  int port = 0;
  {
    ListeningSocket probe;  // a free port, released for systemd-socket-activate to take
    port = probe.port;
  }
  ASSERT_GT(port, 0);
  DaemonOptions options;
  options.db_path = db_path();
  options.ollama_url = fake_.url();
  options.wrapper = {"/usr/bin/systemd-socket-activate", "-l", "127.0.0.1:" + std::to_string(port)};
  DaemonProcess daemon(options);
  // The daemon starts with the first connection: make it from another thread.
  HttpResult health;
  std::thread first_client([&] {
    const auto deadline = std::chrono::steady_clock::now() + seconds(10);
    do {
      health = http_get(port, "/health");
    } while (health.status == 0 && std::chrono::steady_clock::now() < deadline);
  });
  const bool started = daemon.start();
  first_client.join();
  ASSERT_TRUE(started) << daemon.error() << daemon.stderr_text();
  EXPECT_EQ(daemon.port(), port);
  EXPECT_EQ(health.status, 200) << health.describe();
  EXPECT_NE(daemon.stderr_text().find("socket from systemd"), std::string::npos)
      << daemon.stderr_text();
  WsClient client;
  ASSERT_TRUE(client.connect(port, "/api/websocket/chat/T-SA").upgraded);
  client.send_json({{"ticketBody", "Outlook will not start"}});
  auto done = client.read_until_type("done");
  EXPECT_TRUE(done) << daemon.stderr_text();
}

}  // namespace
}  // namespace ticketaid::testing

namespace ticketaid::testing {
namespace {

TEST_F(Systemd, SighupTightensTheRateLimitWithoutDroppingAnOpenStream) {
  REQUIRE_FAKE_OLLAMA();
  FakeScript stalled;
  stalled.tokens = {"Reboot ", "the ", "router."};
  stalled.fault = FakeFault::stall_after_tokens;
  stalled.fault_after_tokens = 1;
  fake_.set_script(stalled);
  write_config("[rate_limit]\nmessages_per_minute = 1000\n");
  DaemonOptions options;  // no test defaults: the file alone sets the limits
  options.db_path = db_path();
  options.ollama_url = fake_.url();
  options.extra_args = {"--config", config_path().string()};
  options.env = {{"NOTIFY_SOCKET", notify_.path()}};
  DaemonProcess daemon(options);
  ASSERT_TRUE(daemon.start()) << daemon.error() << daemon.stderr_text();
  ASSERT_TRUE(notify_.wait_for("READY=1"));

  WsClient streaming;
  ASSERT_TRUE(streaming.connect(daemon.port(), "/api/websocket/chat/H-1").upgraded);
  streaming.send_json({{"ticketBody", "Internet is down"}});
  auto first = streaming.read_json(seconds(10));
  ASSERT_TRUE(first);
  ASSERT_EQ((*first)["type"], "stream") << *first;

  write_config("[rate_limit]\nmessages_per_minute = 1\n");
  ASSERT_TRUE(daemon.signal(SIGHUP));
  ASSERT_TRUE(notify_.wait_for("RELOADING=1"));
  ASSERT_TRUE(notify_.wait_for("READY=1")) << daemon.stderr_text();

  // The stream that was open goes on to its end...
  fake_.release();
  auto rest = streaming.read_until_type("done", seconds(10));
  EXPECT_TRUE(rest) << daemon.stderr_text();
  // ...and the new limit applies to what comes next: one more passes, then refused.
  WsClient next;
  ASSERT_TRUE(next.connect(daemon.port(), "/api/websocket/chat/H-2").upgraded);
  fake_.set_script(FakeScript{});
  EXPECT_TRUE(wait_until([&] {  // the earlier requests' spacing has passed
    next.send_json({{"ticketBody", "Printer offline"}});
    auto reply = next.read_until_type("done", seconds(2));
    return reply.has_value();
  }));
  next.send_json({{"ticketBody", "Printer offline"}});
  auto refused = next.read_until_type("error", seconds(10));
  ASSERT_TRUE(refused);
  EXPECT_EQ((*refused)["code"], "rate_limited") << *refused;
}

}  // namespace
}  // namespace ticketaid::testing
