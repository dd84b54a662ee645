// The configuration table and the settings it produces.
//
// Every key is declared once in config.cpp (name, type, default, bounds,
// reloadability, help). From that one table come: the defaults, the TOML file
// parser, the TICKETAID_* environment names, the legacy environment names, the
// command-line overrides, config/ticketaid.toml (render_config_file) and the
// validation messages. Settings is an immutable value once loaded: share it as
// std::shared_ptr<const Settings> and swap the pointer to reload.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/status.h"

namespace ticketaid {

struct Settings {
  // server
  std::string server_listen = "127.0.0.1:8080";  // host:port; port 0 picks a free one
  std::size_t server_max_body_bytes = 1 << 20;
  std::size_t server_max_header_bytes = 16 << 10;
  int server_header_timeout_s = 10;
  int server_drain_timeout_s = 30;
  int server_io_threads = 2;
  std::vector<std::string> server_allowed_origins;  // normalized: scheme://host[:port]
  std::vector<std::string> server_trusted_proxies;  // addresses or CIDR networks
  std::vector<std::string> server_allowed_hosts;    // normalized: lowercase host names

  // storage
  std::string storage_path;                  // resolved: never empty after load
  std::string storage_synchronous = "full";  // "full" or "normal"
  int storage_checkpoint_interval_s = 60;
  int storage_busy_timeout_ms = 5000;

  // ollama
  std::string ollama_url = "http://127.0.0.1:11434";  // base URL, no trailing slash
  std::string ollama_model = "llama3.2";
  std::string ollama_system_prompt =
      "You are a helpdesk assistant. Read the support ticket and answer the technician with a "
      "short diagnosis and clear numbered steps to resolve it.";
  bool ollama_think = false;
  nlohmann::json ollama_options = nlohmann::json::object();  // passed through as "options"
  int ollama_connect_timeout_s = 5;
  int ollama_probe_interval_s = 10;

  // generation
  int generation_max_parallel = 2;
  int generation_max_queue = 64;
  int generation_first_token_timeout_s = 120;
  int generation_idle_timeout_s = 60;
  int generation_timeout_s = 600;
  int generation_max_tokens = 1024;

  // stream
  int stream_coalesce_ms = 0;
  std::size_t stream_coalesce_bytes = 4096;
  bool stream_cancel_on_disconnect = false;

  // cache
  bool cache_refresh_on_body_change = true;

  // sessions
  int sessions_ttl_s = 3600;
  int sessions_max_per_user = 5;
  std::string sessions_on_limit = "reject";  // "reject" or "evict_oldest"
  int sessions_max_messages = 100;
  int sessions_max_message_chars = 4000;
  int sessions_context_messages = 50;
  int sessions_purge_interval_s = 60;

  // ws
  std::size_t ws_max_message_bytes = 65536;
  int ws_heartbeat_interval_s = 30;
  std::size_t ws_max_send_buffer_bytes = 1 << 20;

  // limits
  int limits_max_connections = 10000;
  int limits_max_connections_per_user = 3;

  // rate_limit
  int rate_limit_messages_per_minute = 60;
  int rate_limit_max_keys = 100000;

  // auth
  std::string auth_mode = "none";  // "none", "api_key" or "jwt"
  std::vector<std::string> auth_api_keys;
  std::string auth_api_keys_file;
  std::string auth_jwt_secret;
  std::string auth_jwt_secret_file;
  std::string auth_jwt_public_key_file;
  std::string auth_jwt_issuer;
  std::string auth_jwt_audience;
  int auth_jwt_leeway_s = 60;
  std::string auth_jwt_role_claim = "role";
  std::string auth_admin_role = "admin";
  std::string auth_cookie_name = "ticketaid_token";

  // redis
  std::string redis_url;                   // empty: rate limits stay in this process
  std::string redis_on_failure = "local";  // "local" or "deny"

  // mongo
  std::string mongo_uri;  // empty: the mirror is off
  std::string mongo_database = "ticketaid";
  int mongo_batch_size = 200;
  bool mongo_read_through = false;
  bool mongo_redact = false;
  std::size_t mongo_max_document_bytes = 15 * 1024 * 1024;
  int mongo_read_through_timeout_ms = 500;
  int mongo_retry_max_s = 60;

  // log
  std::string log_level = "info";  // trace, debug, info, warn, error, off
};

// Where settings come from, lowest precedence first: built-in defaults, the file,
// the environment, then command-line flags (already mapped to key names).
struct ConfigSources {
  std::optional<std::string> file;  // --config; nullopt: the default path if present
  std::string default_file = "/etc/ticketaid/ticketaid.toml";
  std::map<std::string, std::string> environment;  // name -> value (e.g. from environ)
  std::map<std::string, std::string> overrides;    // key ("server.listen") -> value
};

struct LoadedSettings {
  std::shared_ptr<const Settings> settings;
  std::vector<std::string> warnings;  // e.g. unknown TICKETAID_* variables
  std::string file_used;              // empty when only defaults/env/flags applied
};

// Loads and validates. On failure the Status message is one line naming the key,
// the value and what is allowed, e.g.
//   "generation.max_parallel = 0: must be an integer from 1 to 256 (from
//   TICKETAID_GENERATION_MAX_PARALLEL)"
Result<LoadedSettings> load_settings(const ConfigSources& sources);

// The environment of this process as a map (for ConfigSources::environment).
std::map<std::string, std::string> process_environment();

// The commented TOML file listing every key with its default and help text;
// config/ticketaid.toml is exactly this text (a unit test checks it).
std::string render_config_file();

// One line per key, "key (default: X) help", for --help.
std::string render_key_help();

// The keys whose values differ between two settings, in table order. A reload
// (SIGHUP) applies new settings only if every changed key is_reloadable(); the
// others need a restart.
std::vector<std::string> changed_keys(const Settings& a, const Settings& b);
// False for keys that need a restart, and for unknown keys.
bool is_reloadable(std::string_view key);

}  // namespace ticketaid
