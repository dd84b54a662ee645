// The configuration table: every key of ticketaid.toml, declared once.
//
// Each entry gives the key's name, kind, place in Settings (whose initializers are
// the defaults), bounds or allowed values, reloadability and help. To add a key, add
// a field to Settings and one line here, then regenerate config/ticketaid.toml
// (`ticketaid config-template`, or see tests/util/config_test.cpp).
#include "util/config_table.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "util/network.h"
#include "util/redis_url.h"

namespace ticketaid::config {
namespace {

constexpr std::int64_t kKiB = 1024;
constexpr std::int64_t kMiB = 1024 * kKiB;
constexpr std::int64_t kGiB = 1024 * kMiB;

constexpr std::array<std::string_view, 6> kLogLevels = {"trace", "debug", "info",
                                                        "warn",  "error", "off"};
constexpr std::array<std::string_view, 2> kSynchronousModes = {"full", "normal"};
constexpr std::array<std::string_view, 2> kOnSessionLimit = {"reject", "evict_oldest"};
constexpr std::array<std::string_view, 3> kAuthModes = {"none", "api_key", "jwt"};
constexpr std::array<std::string_view, 2> kOnRedisFailure = {"local", "deny"};

bool has_space(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](unsigned char c) { return std::isspace(c); });
}

// A single word such as a model name ("llama3.2", "qwen2.5:7b").
bool normalize_word(std::string& value) {
  return !value.empty() && !has_space(value);
}

// HOST:PORT with a port from 0 to 65535; an IPv6 host goes in brackets.
bool normalize_listen(std::string& value) {
  const std::size_t colon = value.rfind(':');
  if (colon == std::string::npos || colon == 0 || has_space(value)) return false;
  const std::string_view host(value.data(), colon);
  const std::string_view port(value.data() + colon + 1, value.size() - colon - 1);
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return false;
  } else if (host.find_first_of(":[]") != std::string_view::npos) {
    return false;
  }
  if (port.empty() || port.size() > 5) return false;
  if (!std::all_of(port.begin(), port.end(), [](unsigned char c) { return std::isdigit(c); })) {
    return false;
  }
  return std::stoi(std::string(port)) <= 65535;
}

// An http:// or https:// base URL, kept without a trailing slash. A trailing API
// path (".../api/generate", ".../api/chat", ".../api") is removed, so that the URLs
// older deployments put in OLLAMA_SERVER work; the client adds its own paths.
bool normalize_base_url(std::string& url) {
  std::size_t scheme = 0;
  if (url.starts_with("http://")) scheme = 7;
  if (url.starts_with("https://")) scheme = 8;
  if (scheme == 0 || has_space(url) || url.find_first_of("?#") != std::string::npos) {
    return false;
  }
  while (url.ends_with('/')) {
    url.pop_back();
  }
  std::size_t path = url.find('/', scheme);
  if (path == std::string::npos) path = url.size();
  if (path == scheme) return false;  // no host
  const std::string_view path_part(url.data() + path, url.size() - path);
  const std::size_t api = path_part.rfind("/api");
  if (api != std::string_view::npos) {
    const std::string_view rest = path_part.substr(api + 4);
    if (rest.empty() || (rest.front() == '/' && rest.find('/', 1) == std::string_view::npos)) {
      url.resize(path + api);
    }
  }
  while (url.ends_with('/')) {
    url.pop_back();
  }
  return true;
}

// scheme://host[:port], lowercased, without a trailing slash.
bool normalize_origin(std::string& value) {
  while (value.ends_with('/')) {
    value.pop_back();
  }
  for (char& c : value) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  const std::size_t scheme = value.find("://");
  if (scheme == std::string::npos || scheme == 0 || has_space(value)) return false;
  const std::string_view rest(value.data() + scheme + 3, value.size() - scheme - 3);
  return !rest.empty() && rest.find_first_of("/?#@") == std::string_view::npos;
}

// A host name, lowercased: letters, digits, dots and hyphens.
bool normalize_host(std::string& value) {
  for (char& c : value) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-') return false;
  }
  return !value.empty() && value.size() <= 253;
}

// An IPv4 or IPv6 address, optionally with /prefix.
bool normalize_network(std::string& value) {
  return parse_network(value).has_value();
}

// Empty, or a URI with the scheme of MongoDB (the driver checks the rest at start).
bool normalize_mongo_uri(std::string& value) {
  return value.empty() ||
         ((value.starts_with("mongodb://") || value.starts_with("mongodb+srv://")) &&
          !has_space(value));
}

// Empty, or a redis:// URL that parse_redis_url accepts.
bool normalize_redis_url(std::string& value) {
  return value.empty() || parse_redis_url(value).is_ok();
}

KeySpec text(std::string_view name, std::string Settings::*member, bool reloadable,
             std::string_view help) {
  return {
      .name = name, .kind = Kind::text, .member = member, .reloadable = reloadable, .help = help};
}

KeySpec integer(std::string_view name, int Settings::*member, std::int64_t min, std::int64_t max,
                bool reloadable, std::string_view help) {
  return {.name = name,
          .kind = Kind::integer,
          .member = member,
          .reloadable = reloadable,
          .help = help,
          .min = min,
          .max = max};
}

KeySpec size(std::string_view name, std::size_t Settings::*member, std::int64_t min,
             std::int64_t max, bool reloadable, std::string_view help) {
  return {.name = name,
          .kind = Kind::size,
          .member = member,
          .reloadable = reloadable,
          .help = help,
          .min = min,
          .max = max};
}

KeySpec boolean(std::string_view name, bool Settings::*member, bool reloadable,
                std::string_view help) {
  return {.name = name,
          .kind = Kind::boolean,
          .member = member,
          .reloadable = reloadable,
          .help = help};
}

KeySpec choice(std::string_view name, std::string Settings::*member,
               std::span<const std::string_view> choices, bool reloadable, std::string_view help) {
  return {.name = name,
          .kind = Kind::choice,
          .member = member,
          .reloadable = reloadable,
          .help = help,
          .choices = choices};
}

KeySpec list(std::string_view name, std::vector<std::string> Settings::*member, bool reloadable,
             std::string_view help) {
  return {
      .name = name, .kind = Kind::list, .member = member, .reloadable = reloadable, .help = help};
}

KeySpec table(std::string_view name, nlohmann::json Settings::*member, bool reloadable,
              std::string_view help) {
  return {
      .name = name, .kind = Kind::table, .member = member, .reloadable = reloadable, .help = help};
}

const std::vector<KeySpec>& table_of_keys() {
  using S = Settings;
  static const std::vector<KeySpec> keys = {
      // server
      text("server.listen", &S::server_listen, kRestart,
           "Address to listen on; port 0 picks a free port.")
          .checked(normalize_listen,
                   "HOST:PORT with a port from 0 to 65535 (IPv6 in brackets, as [::1]:8080)"),
      size("server.max_body_bytes", &S::server_max_body_bytes, kKiB, kGiB, kReloadable,
           "Largest HTTP request body; a larger one gets 413 too_large."),
      size("server.max_header_bytes", &S::server_max_header_bytes, kKiB, kMiB, kReloadable,
           "Largest HTTP request line and headers; more gets 431."),
      integer("server.header_timeout_s", &S::server_header_timeout_s, 1, 3600, kReloadable,
              "Seconds a client has to send its request headers before it is dropped."),
      integer("server.drain_timeout_s", &S::server_drain_timeout_s, 0, 3600, kReloadable,
              "Seconds that running requests and streams get to finish on SIGTERM."),
      integer("server.io_threads", &S::server_io_threads, 1, 64, kRestart,
              "Threads serving network I/O (HTTP and WebSocket)."),
      list("server.allowed_origins", &S::server_allowed_origins, kReloadable,
           "Web pages (scheme://host[:port]) besides the daemon's own that may call it from a "
           "browser; a request whose Origin is neither gets 403. Requests without an Origin "
           "header are not affected.")
          .checked(normalize_origin, "origins such as https://desk.example")
          .sample("https://desk.example"),
      list("server.allowed_hosts", &S::server_allowed_hosts, kReloadable,
           "Host names (besides IP addresses, localhost and the hosts of "
           "server.allowed_origins) that requests may name in their Host header; others get "
           "403, which stops DNS-rebinding attacks from web pages.")
          .checked(normalize_host, "host names such as desk-ai.example")
          .sample("desk-ai.example"),
      list("server.trusted_proxies", &S::server_trusted_proxies, kReloadable,
           "Addresses or networks (CIDR) of reverse proxies whose X-Forwarded-For is believed; "
           "empty believes none.")
          .checked(normalize_network, "IP addresses or networks such as 10.0.0.0/8")
          .sample("127.0.0.1"),

      // storage
      text("storage.path", &S::storage_path, kRestart, "Path of the SQLite database file.")
          .computed("ticketaid.db in $STATE_DIRECTORY (systemd's StateDirectory=), "
                    "else in the working directory",
                    "/var/lib/ticketaid/ticketaid.db"),
      choice("storage.synchronous", &S::storage_synchronous, kSynchronousModes, kRestart,
             "SQLite sync mode: full stores each answer durably before \"done\" is sent; "
             "normal is faster but may lose the last answers on power failure."),
      integer("storage.checkpoint_interval_s", &S::storage_checkpoint_interval_s, 1, 86400,
              kRestart, "Seconds between checkpoints of SQLite's write-ahead log."),
      integer("storage.busy_timeout_ms", &S::storage_busy_timeout_ms, 0, 600000, kRestart,
              "Milliseconds to wait for a locked database before failing."),

      // ollama
      text("ollama.url", &S::ollama_url, kRestart,
           "Base URL of Ollama; a trailing /api/... path such as /api/generate is removed.")
          .checked(normalize_base_url, "an http:// or https:// URL such as http://127.0.0.1:11434")
          .legacy("OLLAMA_SERVER"),
      text("ollama.model", &S::ollama_model, kReloadable,
           "Model that answers when a request names none.")
          .checked(normalize_word, "a model name without spaces, such as llama3.2"),
      text("ollama.system_prompt", &S::ollama_system_prompt, kReloadable,
           "System message sent before each ticket and conversation; empty sends none."),
      boolean("ollama.think", &S::ollama_think, kReloadable,
              "Let reasoning models think; thinking is streamed as \"thinking\" messages, "
              "never stored."),
      table("ollama.options", &S::ollama_options, kReloadable,
            "Model options passed to Ollama as they are, e.g. { temperature = 0.2, "
            "num_ctx = 8192 }."),
      integer("ollama.connect_timeout_s", &S::ollama_connect_timeout_s, 1, 300, kReloadable,
              "Seconds to wait for a connection to Ollama."),
      integer("ollama.probe_interval_s", &S::ollama_probe_interval_s, 1, 3600, kRestart,
              "Seconds between the checks of Ollama that /ready and /metrics report."),

      // generation
      integer("generation.max_parallel", &S::generation_max_parallel, 1, 256, kReloadable,
              "Answers generated at once; further requests wait in a queue."),
      integer("generation.max_queue", &S::generation_max_queue, 0, 100000, kReloadable,
              "Requests that may wait for a generation slot; more get error busy (HTTP 503)."),
      integer("generation.first_token_timeout_s", &S::generation_first_token_timeout_s, 1, 3600,
              kReloadable, "Seconds to wait for the first token (a cold model load is slow)."),
      integer("generation.idle_timeout_s", &S::generation_idle_timeout_s, 1, 3600, kReloadable,
              "Seconds without a new token before the generation fails with timeout."),
      integer("generation.timeout_s", &S::generation_timeout_s, 1, 86400, kReloadable,
              "Seconds a whole generation may take; a partial answer is not cached."),
      integer("generation.max_tokens", &S::generation_max_tokens, 1, 1048576, kReloadable,
              "Most tokens in one answer, passed to Ollama as num_predict."),

      // stream
      integer("stream.coalesce_ms", &S::stream_coalesce_ms, 0, 1000, kReloadable,
              "Tokens arriving within this many milliseconds share one frame; 0 sends each "
              "token at once."),
      size("stream.coalesce_bytes", &S::stream_coalesce_bytes, 1, kMiB, kReloadable,
           "Largest frame made by coalescing tokens."),
      boolean("stream.cancel_on_disconnect", &S::stream_cancel_on_disconnect, kReloadable,
              "Abort a generation when its last listener leaves, instead of finishing and "
              "caching it."),

      // cache
      boolean("cache.refresh_on_body_change", &S::cache_refresh_on_body_change, kReloadable,
              "Regenerate a ticket's answer when the ticket body differs from the stored one."),

      // sessions
      integer("sessions.ttl_s", &S::sessions_ttl_s, 1, 31536000, kReloadable,
              "Seconds a chat session lives after its last activity; then it is gone (404).")
          .legacy("SESSION_TTL"),
      integer("sessions.max_per_user", &S::sessions_max_per_user, 1, 100000, kReloadable,
              "Most chat sessions one user may have at once.")
          .legacy("MAX_SESSIONS_PER_USER"),
      choice("sessions.on_limit", &S::sessions_on_limit, kOnSessionLimit, kReloadable,
             "At sessions.max_per_user: reject a new session (409 session_limit), or delete "
             "the user's least recently active one."),
      integer("sessions.max_messages", &S::sessions_max_messages, 2, 1000000, kReloadable,
              "Most messages in one conversation (both roles); more get 409 session_full.")
          .legacy("MAX_MESSAGES_PER_SESSION"),
      integer("sessions.max_message_chars", &S::sessions_max_message_chars, 1, 1000000, kReloadable,
              "Longest message, in Unicode characters; longer gets 413 too_large.")
          .legacy("MAX_MESSAGE_LENGTH"),
      integer("sessions.context_messages", &S::sessions_context_messages, 2, 10000, kReloadable,
              "Most earlier messages sent to the model with a new one; older turns are "
              "left out."),
      integer("sessions.purge_interval_s", &S::sessions_purge_interval_s, 1, 86400, kRestart,
              "Seconds between sweeps that delete expired chat sessions."),

      // ws
      size("ws.max_message_bytes", &S::ws_max_message_bytes, 256, 64 * kMiB, kReloadable,
           "Largest message a client may send; a larger one closes the socket with 1009."),
      integer("ws.heartbeat_interval_s", &S::ws_heartbeat_interval_s, 1, 3600, kReloadable,
              "Seconds between server pings; no pong within two intervals closes with 1001."),
      size("ws.max_send_buffer_bytes", &S::ws_max_send_buffer_bytes, 4 * kKiB, kGiB, kReloadable,
           "Bytes queued for a client that stops reading before it is closed with 1008."),

      // limits
      integer("limits.max_connections", &S::limits_max_connections, 1, 1000000, kReloadable,
              "Most open connections; beyond it WebSocket upgrades get HTTP 503.")
          .legacy("WEBSOCKET_MAX_CONNECTIONS"),
      integer("limits.max_connections_per_user", &S::limits_max_connections_per_user, 1, 1000000,
              kReloadable,
              "Most WebSockets one user (or address, when anonymous) may hold open; more are "
              "closed with 4008."),

      // rate_limit
      integer("rate_limit.messages_per_minute", &S::rate_limit_messages_per_minute, 1, 1000000,
              kReloadable,
              "Requests for model work one user (or address) may make per minute: a burst of "
              "this many, then one more every 60/N seconds. Over it: WebSocket error "
              "rate_limited with retryAfterMs, HTTP 429 with Retry-After."),
      integer("rate_limit.max_keys", &S::rate_limit_max_keys, 16, 10000000, kRestart,
              "Users and addresses whose local rate-limit state is kept; the least recently "
              "seen is forgotten beyond this (a forgotten key starts with a full bucket)."),

      // auth
      choice("auth.mode", &S::auth_mode, kAuthModes, kRestart,
             "none: anyone who reaches the port (the user is the client's address); api_key: "
             "Authorization: Bearer KEY with a key from auth.api_keys; jwt: a signed token."),
      list("auth.api_keys", &S::auth_api_keys, kRestart,
           "Accepted API keys (auth.mode = api_key). A key holder acts for every user (admin).")
          .hidden()
          .sample("a-long-random-key"),
      text("auth.api_keys_file", &S::auth_api_keys_file, kRestart,
           "A file of further API keys, one per line; # starts a comment.")
          .sample("/etc/ticketaid/api_keys"),
      text("auth.jwt.secret", &S::auth_jwt_secret, kRestart,
           "Shared secret of HS256 tokens (auth.mode = jwt).")
          .hidden(),
      text("auth.jwt.secret_file", &S::auth_jwt_secret_file, kRestart,
           "A file holding the HS256 secret, instead of auth.jwt.secret.")
          .sample("/etc/ticketaid/jwt.secret"),
      text("auth.jwt.public_key_file", &S::auth_jwt_public_key_file, kRestart,
           "A PEM public key; when set, RS256 is the only algorithm accepted.")
          .sample("/etc/ticketaid/jwt.pub"),
      text("auth.jwt.issuer", &S::auth_jwt_issuer, kRestart,
           "Required iss claim; empty does not check it.")
          .sample("https://idp.example"),
      text("auth.jwt.audience", &S::auth_jwt_audience, kRestart,
           "Required aud claim; empty does not check it.")
          .sample("ticketaid"),
      integer("auth.jwt.leeway_s", &S::auth_jwt_leeway_s, 0, 3600, kRestart,
              "Seconds of clock skew allowed when checking exp and nbf."),
      text("auth.jwt.role_claim", &S::auth_jwt_role_claim, kRestart,
           "The token claim that holds the user's role.")
          .checked(normalize_word, "a claim name without spaces"),
      text("auth.admin_role", &S::auth_admin_role, kRestart,
           "The role that may read and change every user's chat sessions.")
          .checked(normalize_word, "a role name without spaces"),
      text("auth.cookie_name", &S::auth_cookie_name, kRestart,
           "A cookie that may carry the token (for browsers).")
          .checked(normalize_word, "a cookie name without spaces"),

      // redis
      text("redis.url", &S::redis_url, kRestart,
           "redis://[:password@]host[:port][/db][?timeout_ms=N] of a Redis that shares rate "
           "limits between nodes; empty keeps limits in this process. rediss:// (TLS) is not "
           "supported.")
          .checked(
              normalize_redis_url,
              "a redis:// URL such as redis://:password@127.0.0.1:6379/0 (rediss://, TLS, is not "
              "supported)")
          .legacy("REDIS_URL")
          .hidden()
          .sample("redis://:password@127.0.0.1:6379/0"),
      choice("redis.on_failure", &S::redis_on_failure, kOnRedisFailure, kRestart,
             "While Redis is unreachable: local counts limits in this process; deny refuses "
             "requests that the rate limit covers."),

      // mongo
      text("mongo.uri", &S::mongo_uri, kRestart,
           "mongodb:// or mongodb+srv:// URI of the MongoDB that mirrors every answer and "
           "message; empty turns the mirror off. Everything the C driver takes goes in the URI: "
           "credentials, authSource, tls=true, tlsCAFile, replicaSet, timeouts.")
          .checked(normalize_mongo_uri, "a mongodb:// or mongodb+srv:// URI")
          .hidden()
          .sample("mongodb://ticketaid:password@mongo1.example:27017/?tls=true&replicaSet=rs0"),
      text("mongo.database", &S::mongo_database, kRestart,
           "The database of the mirror. Pointing the mirror at another database (or server) "
           "sends everything stored here again.")
          .checked(normalize_word, "a database name without spaces"),
      integer("mongo.batch_size", &S::mongo_batch_size, 1, 10000, kRestart,
              "Outbox rows sent in one bulk write."),
      boolean("mongo.read_through", &S::mongo_read_through, kRestart,
              "On a local cache miss, look for the ticket's answer in MongoDB (another node "
              "may have made it) before asking Ollama."),
      boolean("mongo.redact", &S::mongo_redact, kRestart,
              "Leave ticket bodies out of the mirror; a SHA-256 of each body is stored instead "
              "(read-through still matches on it)."),
      size("mongo.max_document_bytes", &S::mongo_max_document_bytes, 64 * kKiB, 15 * kMiB, kRestart,
           "Content kept in one MongoDB document (MongoDB refuses documents over 16 MiB); "
           "what would pass it goes to the collection's _overflow collection."),
      integer("mongo.read_through_timeout_ms", &S::mongo_read_through_timeout_ms, 10, 10000,
              kRestart, "How long a read-through lookup may take before Ollama is asked."),
      integer("mongo.retry_max_s", &S::mongo_retry_max_s, 1, 3600, kRestart,
              "The longest wait between two attempts while MongoDB is unreachable (the wait "
              "doubles from 0.5 s, with jitter)."),

      // log
      choice("log.level", &S::log_level, kLogLevels, kReloadable, "Least severe level logged."),
  };
  return keys;
}

constexpr std::array<SectionSpec, 14> kSections = {{
    {"server", "The HTTP and WebSocket listener."},
    {"storage", "The SQLite database: the source of truth on this node."},
    {"ollama", "The Ollama server that writes the answers."},
    {"generation", "How many answers are generated at once, and how long they may take."},
    {"stream", "How an answer's chunks are sent while it is generated."},
    {"cache", "Stored answers."},
    {"sessions", "Chat sessions and the follow-up conversations of tickets."},
    {"ws", "WebSocket connections."},
    {"limits", "Limits on clients."},
    {"rate_limit", "How often a user may ask for model work."},
    {"auth",
     "Who may use the daemon (see docs/security.md). mode = \"none\" trusts everyone who "
     "reaches the port: keep server.listen on loopback behind the helpdesk's proxy. mode = "
     "\"api_key\" with api_keys or api_keys_file: for the helpdesk's own servers. mode = "
     "\"jwt\" with jwt.secret_file (HS256) or jwt.public_key_file (RS256), and issuer and "
     "audience: for browsers signed in through the helpdesk's identity provider."},
    {"redis", "Optional Redis, to share rate limits between nodes."},
    {"mongo",
     "Optional MongoDB mirror of every answer and message (see docs/operations.md). SQLite "
     "stays the source of truth; an outbox keeps what MongoDB has not yet received."},
    {"log", "Logging, to standard error (the journal under systemd)."},
}};

}  // namespace

std::span<const KeySpec> keys() {
  return table_of_keys();
}

std::span<const SectionSpec> sections() {
  return kSections;
}

std::string env_name(const KeySpec& key) {
  std::string name = "TICKETAID_";
  for (const char c : key.name) {
    name += c == '.' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return name;
}

std::string human_size(std::int64_t bytes) {
  if (bytes >= kGiB && bytes % kGiB == 0) return fmt::format("{} GiB", bytes / kGiB);
  if (bytes >= kMiB && bytes % kMiB == 0) return fmt::format("{} MiB", bytes / kMiB);
  if (bytes >= kKiB && bytes % kKiB == 0) return fmt::format("{} KiB", bytes / kKiB);
  return fmt::format("{} {}", bytes, bytes == 1 ? "byte" : "bytes");
}

std::string must_be(const KeySpec& key, bool from_text) {
  switch (key.kind) {
    case Kind::integer:
      return fmt::format("an integer from {} to {}", key.min, key.max);
    case Kind::size:
      return fmt::format("a size from {} to {}, in bytes or with a KiB, MiB or GiB suffix",
                         human_size(key.min), human_size(key.max));
    case Kind::boolean:
      return from_text ? "true or false (or 1/0, yes/no)" : "true or false";
    case Kind::choice:
      return fmt::format("one of {}", fmt::join(key.choices, ", "));
    case Kind::table:
      return from_text ? R"(a JSON object such as {"temperature": 0.2})"
                       : "a table such as { temperature = 0.2 }";
    case Kind::list: {
      const std::string item = key.allowed.empty() ? "strings" : std::string(key.allowed);
      return from_text ? fmt::format("a comma-separated list of {}", item)
                       : fmt::format("a list of {}, such as [\"a\", \"b\"]", item);
    }
    case Kind::text:
      return key.allowed.empty() ? "a string" : std::string(key.allowed);
  }
  return "valid";
}

const KeySpec* find_key(std::string_view name) {
  for (const KeySpec& key : keys()) {
    if (key.name == name) return &key;
  }
  return nullptr;
}

}  // namespace ticketaid::config
