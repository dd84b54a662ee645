// The command line against the real binary: `ask` through a running daemon,
// `doctor` against the fake Ollama, `backup` of a database under write load, and
// `check-config` and `--help`. Every command runs as its own process.
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include "integration/daemon_fixture.h"
#include "store/store.h"

namespace ticketaid::testing {
namespace {

using namespace std::chrono_literals;

std::string slurp(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void write_file(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    lines.push_back(line);
  }
  return lines;
}

// A loopback port on which nothing listens (bound, then released).
int unused_port() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port = ntohs(address.sin_port);
  }
  close(fd);
  return port;
}

// The binary run in the background, for what run_once cannot do: give it standard
// input, or signal it while it runs. Its output goes to files in dir.
class BackgroundCommand {
 public:
  BackgroundCommand(const std::vector<std::string>& args, const std::filesystem::path& dir,
                    const std::string& stdin_text = "")
      : out_path_(dir / "command.out"), err_path_(dir / "command.err") {
    const auto in_path = dir / "command.in";
    write_file(in_path, stdin_text);
    std::vector<std::string> argv = {ticketaid_binary()};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> c_argv;
    for (auto& a : argv) {
      c_argv.push_back(a.data());
    }
    c_argv.push_back(nullptr);
    std::string path = std::string("PATH=") + (getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
    std::vector<std::string> env = {path, "HOME=/tmp"};
    for (const char* name : {"ASAN_OPTIONS", "LSAN_OPTIONS", "TSAN_OPTIONS", "UBSAN_OPTIONS"}) {
      if (const char* value = getenv(name)) env.push_back(std::string(name) + "=" + value);
    }
    std::vector<char*> c_env;
    for (auto& e : env) {
      c_env.push_back(e.data());
    }
    c_env.push_back(nullptr);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, in_path.c_str(), O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    posix_spawn_file_actions_addopen(&actions, 2, err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    posix_spawnattr_t attributes;
    posix_spawnattr_init(&attributes);
    sigset_t signals;
    sigemptyset(&signals);
    posix_spawnattr_setsigmask(&attributes, &signals);
    for (int sig : {SIGINT, SIGTERM, SIGPIPE}) {
      sigaddset(&signals, sig);
    }
    posix_spawnattr_setsigdefault(&attributes, &signals);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    if (posix_spawn(&pid_, c_argv[0], &actions, &attributes, c_argv.data(), c_env.data()) != 0) {
      pid_ = -1;
    }
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
  }

  ~BackgroundCommand() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }

  bool started() const { return pid_ > 0; }
  void signal(int sig) const { kill(pid_, sig); }

  // The exit status (128 + N when signal N ended it), or nullopt if it still runs
  // after the timeout.
  std::optional<int> wait(std::chrono::milliseconds timeout) {
    const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid_, 0U));
    if (pidfd >= 0) {
      pollfd p{pidfd, POLLIN, 0};
      poll(&p, 1, static_cast<int>(timeout.count()));
      close(pidfd);
    }
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) != pid_) return std::nullopt;
    pid_ = -1;
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
  }

  std::string out() const { return slurp(out_path_); }
  std::string err() const { return slurp(err_path_); }

 private:
  std::filesystem::path out_path_;
  std::filesystem::path err_path_;
  pid_t pid_ = -1;
};

// ---------------------------------------------------------------------------------
// ask

class CliAsk : public DaemonTest {
 protected:
  std::string url() const { return "ws://127.0.0.1:" + std::to_string(daemon_->port()); }

  int ask(const std::string& ticket, const std::string& body, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"ask", ticket, "--body", body, "--url", url()};
    args.insert(args.end(), extra.begin(), extra.end());
    return DaemonProcess::run_once(args, &out_, &err_);
  }

  std::string out_;
  std::string err_;
};

TEST_F(CliAsk, PrintsTheStreamedAnswerThenTheCachedOne) {
  REQUIRE_FAKE_OLLAMA();
  start_daemon();
  ASSERT_EQ(ask("4711", "Printer on floor 3 prints blank pages"), 0) << err_;
  EXPECT_EQ(out_, "Hello, world.");
  EXPECT_NE(err_.find("model llama3.2"), std::string::npos) << err_;
  EXPECT_NE(err_.find("12 prompt + 4 answer tokens"), std::string::npos) << err_;
  EXPECT_EQ(err_.find("cached"), std::string::npos) << err_;

  ASSERT_EQ(ask("4711", "Printer on floor 3 prints blank pages"), 0) << err_;
  EXPECT_EQ(out_, "Hello, world.");
  EXPECT_NE(err_.find("cached"), std::string::npos) << err_;
  EXPECT_EQ(lines_of(err_).size(), 1u) << "one summary line: " << err_;
  EXPECT_EQ(fake_.chat_requests(), 1);

  ASSERT_EQ(ask("4711", "Printer on floor 3 prints blank pages", {"--regenerate"}), 0) << err_;
  EXPECT_EQ(out_, "Hello, world.");
  EXPECT_EQ(fake_.chat_requests(), 2);
}

TEST_F(CliAsk, AnErrorReplyIsPrintedWithItsCodeAndExitsOne) {
  REQUIRE_FAKE_OLLAMA();
  start_daemon();
  FakeScript script;
  script.fault = FakeFault::http_500;
  fake_.set_script(script);
  EXPECT_EQ(ask("F-1", "Disk full"), 1);
  EXPECT_EQ(out_, "");
  EXPECT_NE(err_.find("ticketaid: error (ollama_unavailable): "), std::string::npos) << err_;
}

TEST_F(CliAsk, NothingListeningExitsThreeSayingSo) {
  const std::string url = "ws://127.0.0.1:" + std::to_string(unused_port());
  std::string out;
  std::string err;
  EXPECT_EQ(DaemonProcess::run_once({"ask", "1", "--body", "x", "--url", url}, &out, &err), 3);
  EXPECT_EQ(out, "");
  EXPECT_NE(err.find("cannot connect to " + url), std::string::npos) << err;
  EXPECT_NE(err.find("is the daemon running?"), std::string::npos) << err;
}

TEST_F(CliAsk, ABadTicketIdIsExplainedFromTheDaemonsRefusal) {
  start_daemon();
  EXPECT_EQ(ask("bad id!", "x"), 1);
  EXPECT_NE(err_.find("error (bad_request)"), std::string::npos) << err_;
  EXPECT_NE(err_.find("HTTP 400"), std::string::npos) << err_;
  EXPECT_NE(err_.find("a ticket id is 1 to 128 characters"), std::string::npos) << err_;
}

TEST_F(CliAsk, ReadsTheBodyFromStandardInput) {
  REQUIRE_FAKE_OLLAMA();
  start_daemon();
  BackgroundCommand command({"ask", "S-1", "--body", "-", "--url", url()}, dir_.path(),
                            "VPN drops every hour\n");
  ASSERT_TRUE(command.started());
  ASSERT_EQ(command.wait(30s), 0) << command.err();
  EXPECT_EQ(command.out(), "Hello, world.");
  const auto body = fake_.last_chat_body();
  ASSERT_EQ(body["messages"].size(), 2u);
  EXPECT_EQ(body["messages"][1]["content"], "VPN drops every hour") << "trailing newline dropped";
}

TEST_F(CliAsk, EmptyBodyOrMissingArgumentsAreUsageErrors) {
  std::string err;
  EXPECT_EQ(DaemonProcess::run_once({"ask", "1", "--body", "", "--url", "ws://127.0.0.1:9"},
                                    nullptr, &err),
            2);
  EXPECT_NE(err.find("the ticket body is empty"), std::string::npos) << err;
  EXPECT_EQ(DaemonProcess::run_once({"ask", "1"}, nullptr, &err), 2);
  EXPECT_NE(err.find("--body"), std::string::npos) << err;
  EXPECT_EQ(
      DaemonProcess::run_once({"ask", "1", "--body", "x", "--url", "wss://host:1"}, nullptr, &err),
      2);
  EXPECT_NE(err.find("TLS is not supported"), std::string::npos) << err;
}

TEST_F(CliAsk, TheDefaultAddressComesFromTheConfiguration) {
  REQUIRE_FAKE_OLLAMA();
  start_daemon();
  const auto config = dir_.path() / "ticketaid.toml";
  write_file(config, "[server]\nlisten = \"" + daemon_->host_port() + "\"\n");
  std::string out;
  std::string err;
  ASSERT_EQ(DaemonProcess::run_once({"ask", "D-1", "--body", "x", "--config", config.string()},
                                    &out, &err),
            0)
      << err;
  EXPECT_EQ(out, "Hello, world.");
  // The environment names the file when --config does not.
  ASSERT_EQ(DaemonProcess::run_once({"ask", "D-2", "--body", "x"}, &out, &err,
                                    {{"TICKETAID_CONFIG", config.string()}}),
            0)
      << err;
  EXPECT_EQ(out, "Hello, world.");
}

TEST_F(CliAsk, CtrlCCancelsTheRequestAndExits130) {
  REQUIRE_FAKE_OLLAMA();
  start_daemon();
  FakeScript script;
  script.fault = FakeFault::stall_after_tokens;
  script.fault_after_tokens = 1;
  fake_.set_script(script);
  BackgroundCommand command({"ask", "C-1", "--body", "Printer jams", "--url", url()}, dir_.path());
  ASSERT_TRUE(command.started());
  // The request reached Ollama, so the client's signal handling is in place.
  ASSERT_TRUE(fake_.wait_for_chat_requests(1, 10s));
  command.signal(SIGINT);
  EXPECT_EQ(command.wait(30s), 130) << command.err();
  EXPECT_NE(command.err().find("interrupted; the request was cancelled"), std::string::npos)
      << command.err();
  // The cancel left the generation without a listener: the daemon stopped asking.
  EXPECT_TRUE(fake_.wait_for_client_abort(10s));
}

// ---------------------------------------------------------------------------------
// doctor

class CliDoctor : public DaemonTest {
 protected:
  void SetUp() override {
    DaemonTest::SetUp();
    write_file(config_, "# doctor test: defaults, flags and env\n");
  }

  int doctor(const std::string& ollama_url, const std::string& listen,
             const std::map<std::string, std::string>& env = {}) {
    return DaemonProcess::run_once(
        {"doctor", "--config", config_.string(), "--db", db_path().string(), "--ollama-url",
         ollama_url, "--listen", listen},
        &out_, &err_, env);
  }

  // The line of a check ("database", "ollama model", ...), or "".
  std::string line(const std::string& what) const {
    for (const auto& l : lines_of(out_)) {
      if (l.size() > 6 && l.substr(6).starts_with(what + ": ")) return l;
    }
    return "";
  }

  std::filesystem::path config_ = dir_.path() / "ticketaid.toml";
  std::string out_;
  std::string err_;
};

TEST_F(CliDoctor, AHealthySetupPassesWithOneLinePerCheck) {
  EXPECT_EQ(doctor(fake_.url(), "127.0.0.1:0"), 0) << out_ << err_;
  const auto lines = lines_of(out_);
  ASSERT_EQ(lines.size(), 9u) << out_;
  for (const auto& l : lines) {
    EXPECT_TRUE(l.starts_with("ok    ") || l.starts_with("warn  ")) << l;
  }
  EXPECT_TRUE(line("configuration").starts_with("ok")) << out_;
  EXPECT_NE(line("database").find("does not exist yet; the daemon creates it"), std::string::npos)
      << out_;
  EXPECT_NE(line("disk space").find("free in"), std::string::npos) << out_;
  EXPECT_NE(line("ollama").find("version 0.5.7"), std::string::npos) << out_;
  EXPECT_TRUE(line("ollama model").starts_with("ok    ollama model: llama3.2 is installed"))
      << out_;
  EXPECT_TRUE(line("listen address").starts_with("ok")) << out_;
  EXPECT_TRUE(line("authentication").starts_with("ok    authentication: none")) << out_;
  EXPECT_TRUE(line("redis").starts_with("ok    redis: not used")) << out_;
  EXPECT_TRUE(line("mongo mirror").starts_with("ok    mongo mirror: off")) << out_;
}

TEST_F(CliDoctor, ReportsTheLiveDatabaseAndThatTheDaemonHoldsItsAddress) {
  REQUIRE_FAKE_OLLAMA();
  start_daemon();
  auto client = open_ticket("4711");
  client->send_json({{"ticketBody", "Printer jams"}});
  ASSERT_EQ(read_reply(*client).back()["type"], "done");

  EXPECT_EQ(doctor(fake_.url(), daemon_->host_port()), 0) << out_ << err_;
  EXPECT_TRUE(line("database").starts_with("ok")) << out_;
  EXPECT_NE(line("database").find("integrity ok, 1 ticket"), std::string::npos) << out_;
  EXPECT_TRUE(line("listen address").starts_with("warn")) << out_;
  EXPECT_NE(line("listen address").find("that is the daemon itself"), std::string::npos) << out_;
}

TEST_F(CliDoctor, AMissingModelFailsAndSaysHowToPullIt) {
  fake_.set_models({"other"});
  EXPECT_EQ(doctor(fake_.url(), "127.0.0.1:0"), 1) << out_;
  EXPECT_TRUE(line("ollama model").starts_with("FAIL")) << out_;
  EXPECT_NE(line("ollama model").find("it has other"), std::string::npos) << out_;
  EXPECT_NE(line("ollama model").find("fix: ollama pull llama3.2"), std::string::npos) << out_;
}

TEST_F(CliDoctor, AModelNameWithoutTagMatchesLatest) {
  fake_.set_models({"other:7b", "llama3.2:latest"});
  EXPECT_EQ(doctor(fake_.url(), "127.0.0.1:0"), 0) << out_;
  EXPECT_NE(line("ollama model").find("llama3.2 is installed (llama3.2:latest"), std::string::npos)
      << out_;
}

TEST_F(CliDoctor, AnUnreachableOllamaFails) {
  const std::string url = "http://127.0.0.1:" + std::to_string(unused_port());
  EXPECT_EQ(doctor(url, "127.0.0.1:0"), 1) << out_;
  EXPECT_TRUE(line("ollama").starts_with("FAIL")) << out_;
  EXPECT_NE(line("ollama").find("not reachable at " + url), std::string::npos) << out_;
  EXPECT_NE(line("ollama").find("fix: "), std::string::npos) << out_;
  EXPECT_TRUE(line("ollama model").starts_with("warn")) << out_;
}

TEST_F(CliDoctor, ABadConfigurationFailsNamingTheKeyAndUnknownVariablesWarn) {
  EXPECT_EQ(doctor(fake_.url(), "127.0.0.1:0", {{"TICKETAID_GENERATION_MAX_PARALLEL", "0"}}), 1);
  EXPECT_TRUE(line("configuration").starts_with("FAIL")) << out_;
  EXPECT_NE(line("configuration").find("generation.max_parallel = 0"), std::string::npos) << out_;

  EXPECT_EQ(doctor(fake_.url(), "127.0.0.1:0", {{"TICKETAID_OLAMA_MODEL", "x"}}), 0) << out_;
  EXPECT_NE(out_.find("warn  configuration: unknown environment variable TICKETAID_OLAMA_MODEL"),
            std::string::npos)
      << out_;
}

// ---------------------------------------------------------------------------------
// backup

class CliBackup : public DaemonTest {};

TEST_F(CliBackup, TheCopyHoldsEveryAnswerDoneBeforeItStartedWhileWritesGoOn) {
  REQUIRE_FAKE_OLLAMA();
  start_daemon({}, {{"TICKETAID_GENERATION_MAX_PARALLEL", "4"}});
  // Answers of a few KiB, so that the database grows past a few pages while it is copied.
  FakeScript script;
  script.tokens.assign(48, std::string(63, 'w') + " ");
  fake_.set_script(script);
  std::string answer;
  for (const auto& token : script.tokens) {
    answer += token;
  }

  // Writers open tickets one after another and record each that got "done".
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<std::string> done_ids;
  std::vector<std::string> problems;
  std::atomic<bool> stop{false};
  const int port = daemon_->port();
  std::vector<std::thread> writers;
  for (int w = 0; w < 4; ++w) {
    writers.emplace_back([&, w] {
      for (int n = 0; !stop; ++n) {
        const std::string id = "load-" + std::to_string(w) + "-" + std::to_string(n);
        WsClient client;
        if (!client.connect(port, "/api/websocket/chat/" + id).upgraded ||
            !client.send_json({{"ticketBody", "Body of " + id}})) {
          std::lock_guard lock(mutex);
          problems.push_back(id + ": " + client.error());
          return;
        }
        auto done = client.read_until_type("done", 30s);
        std::lock_guard lock(mutex);
        if (!done) {
          problems.push_back(id + ": no done: " + client.error());
          return;
        }
        done_ids.push_back(id);
        changed.notify_all();
      }
    });
  }
  const auto stop_writers = [&] {
    stop = true;
    for (auto& t : writers) {
      t.join();
    }
  };

  std::vector<std::string> before;
  {
    std::unique_lock lock(mutex);
    const bool enough =
        changed.wait_for(lock, 30s, [&] { return done_ids.size() >= 100 || !problems.empty(); });
    before = done_ids;  // every one of these is durable: done is sent after the commit
    if (!enough || !problems.empty()) {
      lock.unlock();
      stop_writers();
      FAIL() << "the writers did not get going: " << (problems.empty() ? "" : problems[0]);
    }
  }

  const auto copy = dir_.path() / "copy.db";
  std::string out;
  std::string err;
  const int status =
      DaemonProcess::run_once({"backup", copy.string(), "--db", db_path().string()}, &out, &err);
  std::size_t done_by_end;
  {
    std::lock_guard lock(mutex);
    done_by_end = done_ids.size();
  }
  stop_writers();
  ASSERT_EQ(status, 0) << err;
  EXPECT_TRUE(problems.empty()) << problems[0];
  EXPECT_NE(out.find("backed up " + db_path().string() + " to " + copy.string()), std::string::npos)
      << out;
  RecordProperty("answers_before_backup", static_cast<int>(before.size()));
  RecordProperty("answers_during_backup", static_cast<int>(done_by_end - before.size()));

  auto store = open_sqlite_store({copy.string()});
  ASSERT_TRUE(store) << store.status().to_string();
  for (const auto& id : before) {
    auto session = store.value()->find_ticket_session(id);
    ASSERT_TRUE(session) << session.status().to_string();
    ASSERT_TRUE(session.value()) << id << " is missing from the copy";
    EXPECT_EQ(session.value()->status, SessionStatus::complete) << id;
    EXPECT_EQ(session.value()->prompt, "Body of " + id);
    EXPECT_EQ(session.value()->response, answer) << id;
  }
  store.value().reset();

  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(copy.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* statement = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &statement, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(statement), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(statement, 0)), "ok");
  sqlite3_finalize(statement);
  sqlite3_close(db);
}

TEST_F(CliBackup, AnExistingFileIsNeverOverwritten) {
  start_daemon();
  const auto target = dir_.path() / "existing.db";
  write_file(target, "precious bytes");
  std::string out;
  std::string err;
  EXPECT_EQ(
      DaemonProcess::run_once({"backup", target.string(), "--db", db_path().string()}, &out, &err),
      1);
  EXPECT_NE(err.find("exists"), std::string::npos) << err;
  EXPECT_EQ(slurp(target), "precious bytes");
}

TEST_F(CliBackup, NoDatabaseIsAClearError) {
  std::string err;
  EXPECT_EQ(DaemonProcess::run_once({"backup", (dir_.path() / "copy.db").string(), "--db",
                                     (dir_.path() / "none.db").string()},
                                    nullptr, &err),
            1);
  EXPECT_NE(err.find("no database at"), std::string::npos) << err;
  EXPECT_FALSE(std::filesystem::exists(dir_.path() / "copy.db"));
}

// ---------------------------------------------------------------------------------
// check-config and --help

class CliConfig : public DaemonTest {};

TEST_F(CliConfig, ABadValueExitsTwoWithOneLineNamingTheKey) {
  std::string out;
  std::string err;
  EXPECT_EQ(DaemonProcess::run_once({"check-config"}, &out, &err,
                                    {{"TICKETAID_GENERATION_MAX_PARALLEL", "0"}}),
            2);
  ASSERT_EQ(lines_of(err).size(), 1u) << err;
  EXPECT_NE(err.find("generation.max_parallel = 0: must be"), std::string::npos) << err;
  EXPECT_NE(err.find("TICKETAID_GENERATION_MAX_PARALLEL"), std::string::npos) << err;

  const auto config = dir_.path() / "ticketaid.toml";
  write_file(config,
             "[ollama]\nurl = \"http://127.0.0.1:11434\"\n\n[generation]\nmax_queue = -1\n");
  EXPECT_EQ(DaemonProcess::run_once({"check-config", "--config", config.string()}, &out, &err), 2);
  ASSERT_EQ(lines_of(err).size(), 1u) << err;
  EXPECT_NE(err.find("generation.max_queue = -1"), std::string::npos) << err;
  EXPECT_NE(err.find(config.string() + ":5"), std::string::npos) << err;
}

TEST_F(CliConfig, HelpListsTheCommandsAndExitStatusAndBadUsageExitsTwo) {
  std::string out;
  std::string err;
  ASSERT_EQ(DaemonProcess::run_once({"--help"}, &out, &err), 0) << err;
  for (const char* text :
       {"Usage:", "ticketaid ask TICKET --body", "serve", "ask", "doctor", "backup", "check-config",
        "config-template", "Exit status:", "Files:", "Environment:", "ticketaid(8)"}) {
    EXPECT_NE(out.find(text), std::string::npos) << text << "\n" << out;
  }
  EXPECT_EQ(DaemonProcess::run_once({"ask", "--help"}, &out, &err), 0) << err;
  EXPECT_NE(out.find("--regenerate"), std::string::npos) << out;
  EXPECT_EQ(DaemonProcess::run_once({"--frobnicate"}, &out, &err), 2);
  EXPECT_EQ(DaemonProcess::run_once({}, &out, &err), 2);
}

}  // namespace
}  // namespace ticketaid::testing
