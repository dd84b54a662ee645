// The checks of `ticketaid doctor` (see doctor_command.h).
#include "app/doctor_command.h"

#include <netdb.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "app/command_support.h"
#include "app/mirror_setup.h"
#include "limits/auth.h"
#include "limits/redis_rate_limiter.h"
#include "llm/llm_client.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/redis_url.h"

namespace ticketaid {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kDiskWarnBytes = uint64_t{1} << 30;    // 1 GiB
constexpr uint64_t kDiskFailBytes = uint64_t{100} << 20;  // 100 MiB

enum class Level { ok, warn, fail };

// Prints each check as it completes, so a slow one (an Ollama that does not
// answer) shows where the time goes.
class Report {
 public:
  void ok(const std::string& what, const std::string& detail) { line(Level::ok, what, detail, ""); }
  void warn(const std::string& what, const std::string& detail, const std::string& fix) {
    line(Level::warn, what, detail, fix);
  }
  void fail(const std::string& what, const std::string& detail, const std::string& fix) {
    line(Level::fail, what, detail, fix);
  }
  bool failed() const { return failed_; }

 private:
  void line(Level level, const std::string& what, const std::string& detail,
            const std::string& fix) {
    const char* tag = level == Level::ok ? "ok  " : level == Level::warn ? "warn" : "FAIL";
    std::string text = std::string(tag) + "  " + what + ": " + detail;
    if (level != Level::ok && !fix.empty()) text += " -- fix: " + fix;
    std::printf("%s\n", text.c_str());
    std::fflush(stdout);
    if (level == Level::fail) failed_ = true;
  }

  bool failed_ = false;
};

std::string plural(int64_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

std::optional<std::shared_ptr<const Settings>> check_configuration(const ConfigSources& sources,
                                                                   Report& report) {
  auto loaded = load_settings(sources);
  if (!loaded) {
    report.fail("configuration", loaded.status().message(),
                "correct that value (`ticketaid config-template` lists every key with its "
                "default and meaning)");
    return std::nullopt;
  }
  report.ok("configuration", loaded->file_used.empty()
                                 ? "valid (built-in defaults, environment and flags)"
                                 : "valid (" + loaded->file_used + ", environment and flags)");
  for (const auto& warning : loaded->warnings) {
    report.warn("configuration", warning, "rename or unset it");
  }
  return loaded->settings;
}

// The directory holding the database file ("." for a bare file name).
fs::path database_directory(const std::string& path) {
  fs::path dir = fs::path(path).parent_path();
  return dir.empty() ? fs::path(".") : dir;
}

void check_database(const Settings& settings, Report& report) {
  const std::string& path = settings.storage_path;
  const fs::path dir = database_directory(path);
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    if (!fs::is_directory(dir, ec)) {
      report.fail("database",
                  path + " cannot be created: the directory " + dir.string() + " does not exist",
                  "create it (mkdir -p " + dir.string() +
                      ", writable by the daemon's user) or set storage.path");
    } else if (access(dir.c_str(), W_OK) != 0) {
      report.fail("database",
                  path + " cannot be created: " + dir.string() + " is not writable by this user",
                  "let the daemon's user write to " + dir.string() + ", or set storage.path");
    } else {
      report.ok("database", path + " does not exist yet; the daemon creates it at start");
    }
    return;
  }
  auto check = check_sqlite_database(path);
  if (!check) {
    report.fail("database", "cannot read " + path + ": " + check.status().message(),
                "check that it is a ticketaid database that this user may read, or set "
                "storage.path");
    return;
  }
  const int version = check->schema_version;
  const int known = sqlite_schema_version();
  if (check->integrity != "ok") {
    report.fail("database", path + " fails its integrity check: " + check->integrity,
                "stop the daemon and restore the last copy made by `ticketaid backup`");
    return;
  }
  if (version > known) {
    report.fail("database",
                path + " has schema version " + std::to_string(version) +
                    ", newer than this binary's " + std::to_string(known),
                "run the ticketaid version that wrote it, or restore a copy made by this one");
    return;
  }
  std::string detail = path + ": schema version " + std::to_string(version);
  if (version < known) detail += " (migrated to " + std::to_string(known) + " at the next start)";
  detail += ", integrity ok, " + plural(check->tickets, "ticket", "tickets");
  report.ok("database", detail);
}

void check_disk_space(const Settings& settings, Report& report) {
  // The directory, or its nearest existing ancestor when it is yet to be created.
  fs::path dir = fs::absolute(database_directory(settings.storage_path)).lexically_normal();
  if (!dir.has_filename() && dir.has_relative_path()) dir = dir.parent_path();  // "/a/b/"
  std::error_code ec;
  while (!fs::exists(dir, ec) && dir.has_parent_path() && dir != dir.parent_path()) {
    dir = dir.parent_path();
  }
  struct statvfs stats {};
  if (statvfs(dir.c_str(), &stats) != 0) {
    report.warn("disk space",
                "cannot measure the free space in " + dir.string() + ": " + std::strerror(errno),
                "check that the directory is readable");
    return;
  }
  const uint64_t free_bytes = static_cast<uint64_t>(stats.f_bavail) * stats.f_frsize;
  const std::string detail = human_size(free_bytes) + " free in " + dir.string();
  const std::string fix =
      "free space on that file system, or move storage.path to one with more room";
  if (free_bytes < kDiskFailBytes) {
    report.fail("disk space", detail + " (under " + human_size(kDiskFailBytes) + ")", fix);
  } else if (free_bytes < kDiskWarnBytes) {
    report.warn("disk space", detail + " (under " + human_size(kDiskWarnBytes) + ")", fix);
  } else {
    report.ok("disk space", detail);
  }
}

// Model names as Ollama compares them: case aside, "name" means "name:latest" (the
// tag follows the last path segment, so "host:port/ns/model" keeps its port).
std::string canonical_model(std::string name) {
  for (char& c : name) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  const auto slash = name.rfind('/');
  if (name.find(':', slash == std::string::npos ? 0 : slash + 1) == std::string::npos) {
    name += ":latest";
  }
  return name;
}

void check_ollama(const Settings& settings, Report& report) {
  auto client = make_ollama_client(
      {settings.ollama_url, std::chrono::seconds(settings.ollama_connect_timeout_s)});
  const std::string& model = settings.ollama_model;
  auto version = client->version();
  if (!version) {
    report.fail("ollama", version.status().message(),
                "start Ollama (systemctl start ollama) or set ollama.url to where it listens");
    report.warn("ollama model", model + " not checked: Ollama is not reachable",
                "fix the ollama check first");
    return;
  }
  report.ok("ollama", settings.ollama_url + " answers, version " +
                          (version->empty() ? std::string("unknown") : version.value()));

  auto models = client->list_models();
  if (!models) {
    report.fail("ollama model", "cannot list Ollama's models: " + models.status().message(),
                "check Ollama's log (journalctl -u ollama)");
    return;
  }
  const std::string wanted = canonical_model(model);
  std::vector<std::string> names;
  for (const auto& info : models.value()) {
    if (canonical_model(info.name) == wanted) {
      report.ok("ollama model", model + " is installed (" + info.name + ", " +
                                    human_size(static_cast<uint64_t>(info.size)) + ")");
      return;
    }
    names.push_back(info.name);
  }
  std::string has = names.empty() ? "it has no models" : "it has ";
  for (std::size_t i = 0; i < names.size() && i < 8; ++i) {
    has += (i == 0 ? "" : ", ") + names[i];
  }
  if (names.size() > 8) has += ", ...";
  report.fail("ollama model", model + " is not installed in Ollama (" + has + ")",
              "ollama pull " + model + " (or set ollama.model to an installed model)");
}

void check_listen(const Settings& settings, Report& report) {
  const std::string& listen = settings.server_listen;
  const auto colon = listen.rfind(':');
  std::string host = listen.substr(0, colon);
  const std::string port = colon == std::string::npos ? "" : listen.substr(colon + 1);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (port == "0") {
    report.ok("listen address", listen + " (port 0: the daemon picks a free port)");
    return;
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const int resolved =
      getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &found);
  if (resolved != 0 || found == nullptr) {
    report.fail("listen address", "cannot resolve " + listen + ": " + gai_strerror(resolved),
                "set server.listen to HOST:PORT of this machine");
    return;
  }
  // The daemon binds the first address, with SO_REUSEADDR; so does this check.
  int error = 0;
  const int fd = socket(found->ai_family, found->ai_socktype | SOCK_CLOEXEC, found->ai_protocol);
  if (fd < 0) {
    error = errno;
  } else {
    const int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    if (bind(fd, found->ai_addr, found->ai_addrlen) != 0) error = errno;
    close(fd);
  }
  freeaddrinfo(found);
  switch (error) {
    case 0:
      report.ok("listen address", listen + " is free");
      return;
    case EADDRINUSE:
      report.warn("listen address",
                  listen +
                      " is already in use; if the ticketaid daemon is running, that is the "
                      "daemon itself",
                  "otherwise stop the program that holds it, or set server.listen to another "
                  "port");
      return;
    case EACCES:
      report.fail("listen address", listen + " needs privileges (a port below 1024)",
                  "use a port from 1024 up, or give the daemon CAP_NET_BIND_SERVICE");
      return;
    case EADDRNOTAVAIL:
      report.fail("listen address", host + " is not an address of this machine",
                  "listen on one of its addresses, e.g. 127.0.0.1:" + port);
      return;
    default:
      report.fail("listen address", "cannot bind " + listen + ": " + std::strerror(error),
                  "set server.listen to a free HOST:PORT of this machine");
  }
}

// The authentication mode can start: keys and secrets are present and readable.
void check_auth(const Settings& settings, Report& report) {
  auto authenticator = make_authenticator(settings, system_clock());
  if (!authenticator) {
    report.fail("authentication", authenticator.status().message(),
                "see docs/security.md for each auth.mode's keys");
    return;
  }
  if (settings.auth_mode == "none") {
    const bool loopback = settings.server_listen.starts_with("127.") ||
                          settings.server_listen.starts_with("[::1]") ||
                          settings.server_listen.starts_with("localhost:");
    if (loopback) {
      report.ok("authentication", "none (the daemon listens on loopback only)");
    } else {
      report.warn("authentication",
                  "none, while listening on " + settings.server_listen +
                      ": anyone who reaches the port may use it",
                  "set auth.mode = \"jwt\" or \"api_key\", or listen on 127.0.0.1 behind a "
                  "proxy (docs/security.md)");
    }
    return;
  }
  report.ok("authentication", settings.auth_mode);
}

// Redis, when rate limits are shared through it: reachable, password, db, script.
void check_redis(const Settings& settings, Report& report) {
  if (settings.redis_url.empty()) {
    report.ok("redis", "not used (rate limits are kept in this process)");
    return;
  }
  auto url = parse_redis_url(settings.redis_url);
  if (!url) {
    report.fail("redis", url.status().message(), "fix redis.url");
    return;
  }
  if (Status probe = probe_redis(url.value()); !probe) {
    report.fail("redis", probe.message(),
                settings.redis_on_failure == "deny"
                    ? "start Redis or fix redis.url; meanwhile this node refuses model work"
                    : "start Redis or fix redis.url; meanwhile each node counts its own limits");
    return;
  }
  report.ok("redis", url->display() + " answers; rate limits are shared through it");
}

// The MongoDB mirror, when mongo.uri is set: the URI, MongoDB itself, and what the
// database's outbox still holds.
void check_mongo(const Settings& settings, Report& report) {
  if (settings.mongo_uri.empty()) {
    report.ok("mongo mirror", std::string("off (mongo.uri is empty)") +
                                  (mirror_built() ? "" : "; this build has no MongoDB support"));
    return;
  }
  auto target = mirror_target(settings);
  if (!target) {
    report.fail("mongo mirror", target.status().message(), "fix mongo.uri");
    return;
  }
  std::string outbox;
  auto check = check_sqlite_database(settings.storage_path);
  if (check) {
    const int64_t age_s =
        check->outbox_oldest_ms > 0
            ? std::max<int64_t>(0, (system_clock().unix_ms() - check->outbox_oldest_ms) / 1000)
            : 0;
    outbox = "; outbox: " + plural(check->outbox_depth, "row", "rows") + " waiting" +
             (check->outbox_depth > 0 ? ", the oldest " + std::to_string(age_s) + " s old" : "");
    if (check->mirror_target != target.value()) {
      outbox += check->mirror_target.empty()
                    ? "; the next start sends everything stored (backfill)"
                    : "; the database mirrored to " + check->mirror_target +
                          " until now: the next start sends everything to the new target";
    }
  }
  if (Status probe = probe_mirror(settings); !probe) {
    report.warn("mongo mirror", target.value() + " does not answer: " + probe.message() + outbox,
                "start MongoDB or fix mongo.uri; the outbox keeps everything until it answers");
    return;
  }
  report.ok("mongo mirror", target.value() + " answers" + outbox);
}

}  // namespace

int run_doctor(const ConfigSources& config) {
  Report report;
  const auto settings = check_configuration(config, report);
  if (settings) {
    check_database(**settings, report);
    check_disk_space(**settings, report);
    check_ollama(**settings, report);
    check_listen(**settings, report);
    check_auth(**settings, report);
    check_redis(**settings, report);
    check_mongo(**settings, report);
  }
  return report.failed() ? exit_status::failure : exit_status::ok;
}

}  // namespace ticketaid
