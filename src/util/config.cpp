// Loading settings: built-in defaults, then the TOML file, then the environment,
// then command-line overrides, each value checked against the configuration table
// (config_table.cpp). Every error is one line naming the key, the value, what is
// allowed and where the value came from.
#include "util/config.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <variant>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "util/config_table.h"

extern char** environ;

namespace ticketaid {
namespace {

using config::KeySpec;
using config::Kind;

constexpr std::string_view kEnvPrefix = "TICKETAID_";
constexpr std::string_view kTestEnvPrefix = "TICKETAID_TEST_";
constexpr std::string_view kConfigEnv = "TICKETAID_CONFIG";  // read by main, not a key

// A value as read from a source, before its bounds are checked.
using Value =
    std::variant<std::int64_t, bool, std::string, nlohmann::json, std::vector<std::string>>;

std::string_view trim(std::string_view s) {
  const auto space = [](unsigned char c) { return std::isspace(c) != 0; };
  while (!s.empty() && space(s.front())) {
    s.remove_prefix(1);
  }
  while (!s.empty() && space(s.back())) {
    s.remove_suffix(1);
  }
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

// Long values (a system prompt) are cut in messages.
std::string clip(std::string s) {
  constexpr std::size_t kMax = 80;
  if (s.size() > kMax) s = s.substr(0, kMax - 3) + "...";
  return s;
}

std::optional<std::int64_t> parse_integer(std::string_view text) {
  text = trim(text);
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

// "65536", "64KiB", "64 KiB", "1MiB", "1GiB", "512B".
std::optional<std::int64_t> parse_size(std::string_view text) {
  text = trim(text);
  const std::size_t digits = text.find_first_not_of("0123456789");
  const std::string_view unit = trim(text.substr(std::min(digits, text.size())));
  std::int64_t scale = 0;
  if (unit.empty() || unit == "B") scale = 1;
  if (unit == "KiB") scale = std::int64_t{1} << 10;
  if (unit == "MiB") scale = std::int64_t{1} << 20;
  if (unit == "GiB") scale = std::int64_t{1} << 30;
  if (scale == 0) return std::nullopt;
  const std::optional<std::int64_t> number = parse_integer(text.substr(0, digits));
  if (!number || *number > (std::int64_t{1} << 62) / scale) return std::nullopt;
  return *number * scale;
}

nlohmann::json to_json(const toml::node& node) {
  if (const toml::table* table = node.as_table()) {
    nlohmann::json object = nlohmann::json::object();
    for (auto&& [name, child] : *table) {
      object[std::string(name.str())] = to_json(child);
    }
    return object;
  }
  if (const toml::array* array = node.as_array()) {
    nlohmann::json list = nlohmann::json::array();
    for (const toml::node& child : *array) {
      list.push_back(to_json(child));
    }
    return list;
  }
  if (const auto* s = node.as_string()) return s->get();
  if (const auto* i = node.as_integer()) return i->get();
  if (const auto* f = node.as_floating_point()) return f->get();
  if (const auto* b = node.as_boolean()) return b->get();
  std::ostringstream text;  // dates and times keep their TOML spelling
  node.visit([&](const auto& value) { text << value; });
  return text.str();
}

// How a file value is shown in messages: as written in TOML.
std::string show(const toml::node& node) {
  if (node.is_table()) return "{...}";
  if (node.is_array()) return "[...]";
  if (const auto* s = node.as_string()) return clip(config::toml_string(s->get()));
  std::ostringstream text;
  node.visit([&](const auto& value) { text << value; });
  return clip(text.str());
}

std::optional<Value> value_from_text(const KeySpec& key, std::string_view text) {
  switch (key.kind) {
    case Kind::integer:
      if (auto number = parse_integer(text)) return Value(*number);
      return std::nullopt;
    case Kind::size:
      if (auto number = parse_size(text)) return Value(*number);
      return std::nullopt;
    case Kind::boolean: {
      const std::string word = lower(trim(text));
      if (word == "true" || word == "1" || word == "yes") return Value(true);
      if (word == "false" || word == "0" || word == "no") return Value(false);
      return std::nullopt;
    }
    case Kind::table: {
      nlohmann::json object = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
      if (!object.is_object()) return std::nullopt;
      return Value(std::move(object));
    }
    case Kind::list: {
      std::vector<std::string> items;
      std::size_t pos = 0;
      while (pos <= text.size()) {
        std::size_t comma = text.find(',', pos);
        if (comma == std::string_view::npos) comma = text.size();
        const std::string_view item = trim(text.substr(pos, comma - pos));
        if (!item.empty()) items.emplace_back(item);
        pos = comma + 1;
      }
      return Value(std::move(items));
    }
    case Kind::choice:
    case Kind::text:
      return Value(std::string(text));
  }
  return std::nullopt;
}

std::optional<Value> value_from_node(const KeySpec& key, const toml::node& node) {
  switch (key.kind) {
    case Kind::integer:
      if (const auto* i = node.as_integer()) return Value(i->get());
      return std::nullopt;
    case Kind::size:
      if (const auto* i = node.as_integer()) return Value(i->get());
      if (const auto* s = node.as_string()) return value_from_text(key, s->get());
      return std::nullopt;
    case Kind::boolean:
      if (const auto* b = node.as_boolean()) return Value(b->get());
      return std::nullopt;
    case Kind::table:
      if (node.is_table()) return Value(to_json(node));
      return std::nullopt;
    case Kind::list: {
      const toml::array* array = node.as_array();
      if (array == nullptr) return std::nullopt;
      std::vector<std::string> items;
      for (const toml::node& child : *array) {
        const auto* s = child.as_string();
        if (s == nullptr) return std::nullopt;
        items.push_back(s->get());
      }
      return Value(std::move(items));
    }
    case Kind::choice:
    case Kind::text:
      if (const auto* s = node.as_string()) return Value(s->get());
      return std::nullopt;
  }
  return std::nullopt;
}

// Checks bounds and allowed values, then stores; false when the value is not allowed.
bool store(const KeySpec& key, Value value, Settings& out) {
  switch (key.kind) {
    case Kind::integer:
    case Kind::size: {
      const std::int64_t number = std::get<std::int64_t>(value);
      if (number < key.min || number > key.max) return false;
      if (key.kind == Kind::integer) {
        out.*std::get<int Settings::*>(key.member) = static_cast<int>(number);
      } else {
        out.*std::get<std::size_t Settings::*>(key.member) = static_cast<std::size_t>(number);
      }
      return true;
    }
    case Kind::boolean:
      out.*std::get<bool Settings::*>(key.member) = std::get<bool>(value);
      return true;
    case Kind::table:
      out.*std::get<nlohmann::json Settings::*>(key.member) = std::get<nlohmann::json>(value);
      return true;
    case Kind::list: {
      auto items = std::get<std::vector<std::string>>(value);
      for (std::string& item : items) {
        if (item.empty() || (key.normalize != nullptr && !key.normalize(item))) return false;
      }
      out.*std::get<std::vector<std::string> Settings::*>(key.member) = std::move(items);
      return true;
    }
    case Kind::choice: {
      const std::string word = lower(trim(std::get<std::string>(value)));
      if (std::find(key.choices.begin(), key.choices.end(), word) == key.choices.end()) {
        return false;
      }
      out.*std::get<std::string Settings::*>(key.member) = word;
      return true;
    }
    case Kind::text: {
      std::string text = std::get<std::string>(value);
      if (key.normalize != nullptr && !key.normalize(text)) return false;
      out.*std::get<std::string Settings::*>(key.member) = std::move(text);
      return true;
    }
  }
  return false;
}

Status invalid(const KeySpec& key, std::string_view shown, bool from_text,
               std::string_view source) {
  return Status::error(ErrorCode::bad_request,
                       fmt::format("{} = {}: must be {} (from {})", key.name,
                                   key.secret ? std::string_view("(hidden)") : shown,
                                   config::must_be(key, from_text), source));
}

Status set_from_text(const KeySpec& key, std::string_view text, std::string_view source,
                     Settings& out) {
  std::optional<Value> value = value_from_text(key, text);
  if (!value || !store(key, std::move(*value), out)) {
    return invalid(key, clip(std::string(text)), /*from_text=*/true, source);
  }
  return Status::ok();
}

Status set_from_node(const KeySpec& key, const toml::node& node, std::string_view source,
                     Settings& out) {
  std::optional<Value> value = value_from_node(key, node);
  if (!value || !store(key, std::move(*value), out)) {
    return invalid(key, show(node), /*from_text=*/false, source);
  }
  return Status::ok();
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) {
    row[j] = j;
  }
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// " (did you mean X?)" for a near miss of a known key (or of its environment name).
std::string suggestion(std::string_view name, bool env) {
  std::string best;
  std::size_t best_distance = 4;  // only close misses
  for (const KeySpec& key : config::keys()) {
    std::string candidate = env ? config::env_name(key) : std::string(key.name);
    const std::size_t distance = edit_distance(name, candidate);
    if (distance < best_distance) {
      best_distance = distance;
      best = std::move(candidate);
    }
  }
  return best.empty() ? "" : fmt::format(" (did you mean {}?)", best);
}

bool is_section(std::string_view name) {
  return std::any_of(config::keys().begin(), config::keys().end(), [&](const KeySpec& key) {
    return key.name.size() > name.size() && key.name.starts_with(name) &&
           key.name[name.size()] == '.';
  });
}

Status apply_table(const toml::table& table, const std::string& prefix, const std::string& path,
                   Settings& out) {
  for (auto&& [leaf, node] : table) {
    const std::string name =
        prefix.empty() ? std::string(leaf.str()) : fmt::format("{}.{}", prefix, leaf.str());
    const std::string source = fmt::format("{}:{}", path, node.source().begin.line);
    if (const KeySpec* key = config::find_key(name)) {
      if (Status status = set_from_node(*key, node, source, out); !status) return status;
    } else if (node.is_table() && is_section(name)) {
      if (Status status = apply_table(*node.as_table(), name, path, out); !status) return status;
    } else {
      return Status::error(
          ErrorCode::bad_request,
          fmt::format("unknown key {}{} (from {})", name, suggestion(name, /*env=*/false), source));
    }
  }
  return Status::ok();
}

Status apply_file(const std::string& path, Settings& out) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return Status::error(ErrorCode::bad_request,
                         fmt::format("config file {} does not exist", path));
  }
  if (std::filesystem::is_directory(path, ec)) {
    return Status::error(ErrorCode::bad_request,
                         fmt::format("config file {} is a directory", path));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Status::error(ErrorCode::bad_request,
                         fmt::format("cannot read config file {}: {}", path, std::strerror(errno)));
  }
  std::ostringstream text;
  text << in.rdbuf();
  toml::table root;
  try {
    root = toml::parse(text.str(), path);
  } catch (const toml::parse_error& error) {
    return Status::error(ErrorCode::bad_request,
                         fmt::format("{}:{}:{}: invalid TOML: {}", path, error.source().begin.line,
                                     error.source().begin.column, error.description()));
  }
  return apply_table(root, "", path, out);
}

Status apply_environment(const std::map<std::string, std::string>& env, Settings& out,
                         std::vector<std::string>& warnings) {
  // Legacy names first, and only when the key's own name is absent: TICKETAID_* wins.
  for (const KeySpec& key : config::keys()) {
    if (key.legacy_env.empty() || env.contains(config::env_name(key))) continue;
    const auto legacy = env.find(std::string(key.legacy_env));
    if (legacy == env.end() || trim(legacy->second).empty()) continue;
    if (Status status = set_from_text(key, legacy->second, key.legacy_env, out); !status) {
      return status;
    }
  }
  for (const auto& [name, value] : env) {
    if (!name.starts_with(kEnvPrefix) || name.starts_with(kTestEnvPrefix) || name == kConfigEnv) {
      continue;
    }
    const auto key = std::find_if(config::keys().begin(), config::keys().end(),
                                  [&](const KeySpec& k) { return config::env_name(k) == name; });
    if (key == config::keys().end()) {
      warnings.push_back(fmt::format("unknown environment variable {} ignored{}", name,
                                     suggestion(name, /*env=*/true)));
      continue;
    }
    if (Status status = set_from_text(*key, value, name, out); !status) return status;
  }
  return Status::ok();
}

Status apply_overrides(const std::map<std::string, std::string>& overrides, Settings& out) {
  for (const auto& [name, value] : overrides) {
    const KeySpec* key = config::find_key(name);
    if (key == nullptr) {
      return Status::error(ErrorCode::bad_request,
                           fmt::format("unknown key {}{} (from command line)", name,
                                       suggestion(name, /*env=*/false)));
    }
    if (Status status = set_from_text(*key, value, "command line", out); !status) return status;
  }
  return Status::ok();
}

// ticketaid.db in the first of systemd's $STATE_DIRECTORY entries, else in the
// working directory.
std::string default_storage_path(const std::map<std::string, std::string>& env) {
  namespace fs = std::filesystem;
  if (const auto state = env.find("STATE_DIRECTORY"); state != env.end()) {
    const std::string_view dirs = state->second;
    const std::string_view first = dirs.substr(0, dirs.find(':'));
    if (!first.empty()) return (fs::path(first) / "ticketaid.db").string();
  }
  std::error_code ec;
  const fs::path cwd = fs::current_path(ec);
  return ec ? "ticketaid.db" : (cwd / "ticketaid.db").string();
}

}  // namespace

Result<LoadedSettings> load_settings(const ConfigSources& sources) {
  auto settings = std::make_shared<Settings>();
  LoadedSettings loaded;

  std::error_code ec;
  if (sources.file) {
    loaded.file_used = *sources.file;
  } else if (!sources.default_file.empty() && std::filesystem::exists(sources.default_file, ec)) {
    loaded.file_used = sources.default_file;
  }
  if (!loaded.file_used.empty()) {
    if (Status status = apply_file(loaded.file_used, *settings); !status) return status;
  }
  if (Status status = apply_environment(sources.environment, *settings, loaded.warnings); !status) {
    return status;
  }
  if (Status status = apply_overrides(sources.overrides, *settings); !status) return status;

  if (settings->storage_path.empty()) {
    settings->storage_path = default_storage_path(sources.environment);
  }
  loaded.settings = std::move(settings);
  return loaded;
}

std::map<std::string, std::string> process_environment() {
  std::map<std::string, std::string> env;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string_view text(*entry);
    const std::size_t equals = text.find('=');
    if (equals == std::string_view::npos) continue;
    env.emplace(text.substr(0, equals), text.substr(equals + 1));
  }
  return env;
}

std::vector<std::string> changed_keys(const Settings& a, const Settings& b) {
  std::vector<std::string> changed;
  for (const KeySpec& key : config::keys()) {
    const bool differs =
        std::visit([&](auto member) { return a.*member != b.*member; }, key.member);
    if (differs) changed.emplace_back(key.name);
  }
  return changed;
}

bool is_reloadable(std::string_view name) {
  const KeySpec* key = config::find_key(name);
  return key != nullptr && key->reloadable;
}

}  // namespace ticketaid
