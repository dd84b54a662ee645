// Unit tests of the configuration table: defaults, the file, the environment
// (including the legacy names), command-line overrides, their precedence, the
// one-line validation errors, and the shipped config/ticketaid.toml.
//
// config/ticketaid.toml must equal render_config_file(). After changing the table,
// regenerate it with
//   TICKETAID_TEST_UPDATE_TEMPLATE=1 BUILD/tests/unit_tests --gtest_filter='ConfigTemplate.*'
// (or `ticketaid config-template > config/ticketaid.toml`).
#include "util/config.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "util/config_table.h"

namespace ticketaid {
namespace {

namespace fs = std::filesystem;

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::path(::testing::TempDir()) / "ticketaid-config-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    sources_.default_file = (dir_ / "absent.toml").string();  // never /etc on a test machine
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::string write(const std::string& name, const std::string& text) {
    const fs::path path = dir_ / name;
    std::ofstream(path, std::ios::binary) << text;
    return path.string();
  }

  // Loads and expects success.
  LoadedSettings load() {
    Result<LoadedSettings> loaded = load_settings(sources_);
    EXPECT_TRUE(loaded.is_ok()) << loaded.status().message();
    if (!loaded.is_ok()) return LoadedSettings{std::make_shared<Settings>(), {}, {}};
    return std::move(loaded).value();
  }

  // Loads and expects failure; returns the message.
  std::string load_error() {
    Result<LoadedSettings> loaded = load_settings(sources_);
    EXPECT_FALSE(loaded.is_ok());
    if (loaded.is_ok()) return "";
    EXPECT_EQ(loaded.status().code(), ErrorCode::bad_request);
    EXPECT_EQ(loaded.status().message().find('\n'), std::string::npos) << "one line";
    return loaded.status().message();
  }

  fs::path dir_;
  ConfigSources sources_;
};

TEST_F(ConfigTest, DefaultsWhenNothingIsGiven) {
  const LoadedSettings loaded = load();
  const Settings& s = *loaded.settings;
  EXPECT_TRUE(loaded.file_used.empty());
  EXPECT_TRUE(loaded.warnings.empty());
  EXPECT_EQ(s.server_listen, "127.0.0.1:8080");
  EXPECT_EQ(s.ollama_url, "http://127.0.0.1:11434");
  EXPECT_EQ(s.ollama_model, "llama3.2");
  EXPECT_NE(s.ollama_system_prompt.find("helpdesk assistant"), std::string::npos);
  EXPECT_EQ(s.ollama_options, nlohmann::json::object());
  EXPECT_EQ(s.generation_max_parallel, 2);
  EXPECT_EQ(s.ws_max_send_buffer_bytes, 1u << 20);
  EXPECT_EQ(s.log_level, "info");
  EXPECT_EQ(s.storage_path, (fs::current_path() / "ticketaid.db").string());

  Settings expected;
  expected.storage_path = s.storage_path;
  EXPECT_TRUE(changed_keys(expected, s).empty());
}

TEST_F(ConfigTest, ReadsSectionsDottedKeysAndTables) {
  sources_.file = write("a.toml", R"(
# a comment
log.level = "debug"

[server]
listen = "0.0.0.0:9000"
max_body_bytes = "2MiB"

[generation]
max_parallel = 4

[ollama]
url = "http://10.0.0.5:11434/"
think = true

[ollama.options]
temperature = 0.2
stop = ["###"]
extra = { mirostat = 2 }

[ws]
max_message_bytes = 131072

[storage]
path = "/srv/helpdesk/answers.db"
synchronous = "normal"
)");
  const LoadedSettings loaded = load();
  const Settings& s = *loaded.settings;
  EXPECT_EQ(loaded.file_used, *sources_.file);
  EXPECT_EQ(s.log_level, "debug");
  EXPECT_EQ(s.server_listen, "0.0.0.0:9000");
  EXPECT_EQ(s.server_max_body_bytes, 2u << 20);
  EXPECT_EQ(s.generation_max_parallel, 4);
  EXPECT_EQ(s.ollama_url, "http://10.0.0.5:11434");
  EXPECT_TRUE(s.ollama_think);
  EXPECT_EQ(
      s.ollama_options,
      nlohmann::json::parse(R"({"temperature": 0.2, "stop": ["###"], "extra": {"mirostat": 2}})"));
  EXPECT_EQ(s.ws_max_message_bytes, 131072u);
  EXPECT_EQ(s.storage_path, "/srv/helpdesk/answers.db");
  EXPECT_EQ(s.storage_synchronous, "normal");
  EXPECT_EQ(s.generation_max_queue, 64) << "keys left out keep their defaults";
}

TEST_F(ConfigTest, UsesTheDefaultFileOnlyWhenPresent) {
  sources_.default_file = write("default.toml", "[generation]\nmax_queue = 7\n");
  LoadedSettings loaded = load();
  EXPECT_EQ(loaded.file_used, sources_.default_file);
  EXPECT_EQ(loaded.settings->generation_max_queue, 7);

  sources_.default_file = (dir_ / "missing.toml").string();
  loaded = load();
  EXPECT_TRUE(loaded.file_used.empty());
  EXPECT_EQ(loaded.settings->generation_max_queue, 64);
}

TEST_F(ConfigTest, MissingNamedFileIsAnError) {
  sources_.file = (dir_ / "nope.toml").string();
  EXPECT_EQ(load_error(), "config file " + *sources_.file + " does not exist");
}

TEST_F(ConfigTest, EnvironmentOverridesTheFile) {
  sources_.file = write("a.toml", "[generation]\nmax_parallel = 4\nmax_queue = 9\n");
  sources_.environment = {
      {"TICKETAID_GENERATION_MAX_PARALLEL", "8"},
      {"TICKETAID_OLLAMA_THINK", "yes"},
      {"TICKETAID_CACHE_REFRESH_ON_BODY_CHANGE", "0"},
      {"TICKETAID_WS_MAX_MESSAGE_BYTES", "64KiB"},
      {"TICKETAID_OLLAMA_OPTIONS", R"({"num_ctx": 8192})"},
      {"TICKETAID_LOG_LEVEL", "WARN"},
  };
  const LoadedSettings loaded = load();
  const Settings& s = *loaded.settings;
  EXPECT_EQ(s.generation_max_parallel, 8);
  EXPECT_EQ(s.generation_max_queue, 9);
  EXPECT_TRUE(s.ollama_think);
  EXPECT_FALSE(s.cache_refresh_on_body_change);
  EXPECT_EQ(s.ws_max_message_bytes, 65536u);
  EXPECT_EQ(s.ollama_options, nlohmann::json::parse(R"({"num_ctx": 8192})"));
  EXPECT_EQ(s.log_level, "warn");
}

TEST_F(ConfigTest, LegacyOllamaServerForms) {
  const std::pair<std::string, std::string> cases[] = {
      {"http://gpu:11434", "http://gpu:11434"},
      {"http://gpu:11434/", "http://gpu:11434"},
      {"http://gpu:11434/api/generate", "http://gpu:11434"},
      {"http://gpu:11434/api/chat/", "http://gpu:11434"},
      {"http://gpu:11434/api", "http://gpu:11434"},
      {"https://proxy.example/ollama/api/generate", "https://proxy.example/ollama"},
  };
  for (const auto& [given, stored] : cases) {
    sources_.environment = {{"OLLAMA_SERVER", given}};
    EXPECT_EQ(load().settings->ollama_url, stored) << given;
  }
}

TEST_F(ConfigTest, LegacyNamesSetTheirKeys) {
  sources_.environment = {{"WEBSOCKET_MAX_CONNECTIONS", "500"}, {"OLLAMA_SERVER", ""}};
  const LoadedSettings loaded = load();
  const Settings& s = *loaded.settings;
  EXPECT_EQ(s.limits_max_connections, 500);
  EXPECT_EQ(s.ollama_url, "http://127.0.0.1:11434") << "an empty legacy variable is ignored";
}

TEST_F(ConfigTest, TicketaidNameWinsOverLegacyName) {
  sources_.environment = {
      {"OLLAMA_SERVER", "not a url"},  // not even checked: the new name wins
      {"TICKETAID_OLLAMA_URL", "http://10.1.1.1:11434"},
      {"WEBSOCKET_MAX_CONNECTIONS", "500"},
      {"TICKETAID_LIMITS_MAX_CONNECTIONS", "700"},
  };
  const LoadedSettings loaded = load();
  const Settings& s = *loaded.settings;
  EXPECT_EQ(s.ollama_url, "http://10.1.1.1:11434");
  EXPECT_EQ(s.limits_max_connections, 700);
}

TEST_F(ConfigTest, OverridesWinOverEverything) {
  sources_.file = write("a.toml", "[server]\nlisten = \"127.0.0.1:1\"\n[log]\nlevel = \"error\"\n");
  sources_.environment = {{"TICKETAID_SERVER_LISTEN", "127.0.0.1:2"}};
  sources_.overrides = {{"server.listen", "127.0.0.1:0"}, {"ollama.think", "true"}};
  const LoadedSettings loaded = load();
  const Settings& s = *loaded.settings;
  EXPECT_EQ(s.server_listen, "127.0.0.1:0");
  EXPECT_TRUE(s.ollama_think);
  EXPECT_EQ(s.log_level, "error");
}

TEST_F(ConfigTest, UnknownOverrideKeyIsAnError) {
  sources_.overrides = {{"server.lisen", "127.0.0.1:0"}};
  EXPECT_EQ(load_error(),
            "unknown key server.lisen (did you mean server.listen?) (from command line)");
}

TEST_F(ConfigTest, UnknownEnvironmentVariableIsAWarning) {
  sources_.environment = {{"TICKETAID_GENERATION_MAX_PARALEL", "3"}, {"TICKETAID_FROBNICATE", "1"}};
  const LoadedSettings loaded = load();
  ASSERT_EQ(loaded.warnings.size(), 2u);
  EXPECT_EQ(loaded.warnings[0], "unknown environment variable TICKETAID_FROBNICATE ignored");
  EXPECT_EQ(loaded.warnings[1],
            "unknown environment variable TICKETAID_GENERATION_MAX_PARALEL ignored (did you mean "
            "TICKETAID_GENERATION_MAX_PARALLEL?)");
  EXPECT_EQ(loaded.settings->generation_max_parallel, 2);
}

TEST_F(ConfigTest, TestVariablesAndConfigPathAreIgnoredSilently) {
  sources_.environment = {{"TICKETAID_TEST_OLLAMA_PORT", "1234"},
                          {"TICKETAID_CONFIG", "/etc/elsewhere.toml"},
                          {"PATH", "/usr/bin"}};
  const LoadedSettings loaded = load();
  EXPECT_TRUE(loaded.warnings.empty());
  EXPECT_TRUE(loaded.file_used.empty());
}

// Each kind of check, from each kind of source: the message names the key, the
// value, what is allowed, and where the value came from.
TEST_F(ConfigTest, ValidationMessages) {
  struct Case {
    std::string key;
    std::string value;
    std::string expected;
  };
  const Case cases[] = {
      {"generation.max_parallel", "0",
       "generation.max_parallel = 0: must be an integer from 1 to 256"},
      {"generation.max_parallel", "two",
       "generation.max_parallel = two: must be an integer from 1 to 256"},
      {"ws.max_message_bytes", "12",
       "ws.max_message_bytes = 12: must be a size from 256 bytes to 64 MiB, in bytes or with a "
       "KiB, MiB or GiB suffix"},
      {"ws.max_message_bytes", "1TiB", "ws.max_message_bytes = 1TiB: must be a size from"},
      {"ollama.think", "maybe", "ollama.think = maybe: must be true or false (or 1/0, yes/no)"},
      {"log.level", "loud",
       "log.level = loud: must be one of trace, debug, info, warn, error, off"},
      {"storage.synchronous", "extra", "storage.synchronous = extra: must be one of full, normal"},
      {"ollama.url", "ftp://gpu:11434",
       "ollama.url = ftp://gpu:11434: must be an http:// or https:// URL such as "
       "http://127.0.0.1:11434"},
      {"ollama.url", "127.0.0.1:11434", "ollama.url = 127.0.0.1:11434: must be an http://"},
      {"server.listen", "8080",
       "server.listen = 8080: must be HOST:PORT with a port from 0 to 65535 (IPv6 in brackets, "
       "as [::1]:8080)"},
      {"server.listen", "0.0.0.0:65536", "server.listen = 0.0.0.0:65536: must be HOST:PORT"},
      {"server.listen", "::1:80", "server.listen = ::1:80: must be HOST:PORT"},
      {"ollama.model", "", "ollama.model = : must be a model name without spaces"},
      {"ollama.options", "[1, 2]",
       R"(ollama.options = [1, 2]: must be a JSON object such as {"temperature": 0.2})"},
  };
  for (const Case& c : cases) {
    std::string env = "TICKETAID_" + c.key;
    for (char& ch : env)
      ch = ch == '.' ? '_' : static_cast<char>(std::toupper(ch));

    sources_.environment = {{env, c.value}};
    sources_.overrides.clear();
    EXPECT_EQ(load_error().rfind(c.expected, 0), 0u) << c.key << " = " << c.value;
    sources_.environment.clear();
    sources_.overrides = {{c.key, c.value}};
    EXPECT_EQ(load_error().rfind(c.expected, 0), 0u) << c.key << " = " << c.value;
  }

  sources_.overrides.clear();
  sources_.environment = {{"TICKETAID_GENERATION_MAX_PARALLEL", "0"}};
  EXPECT_EQ(load_error(),
            "generation.max_parallel = 0: must be an integer from 1 to 256 (from "
            "TICKETAID_GENERATION_MAX_PARALLEL)");
  sources_.environment = {{"WEBSOCKET_MAX_CONNECTIONS", "lots"}};
  EXPECT_EQ(load_error(),
            "limits.max_connections = lots: must be an integer from 1 to 1000000 (from "
            "WEBSOCKET_MAX_CONNECTIONS)");
  sources_.environment.clear();
  sources_.overrides = {{"log.level", "loud"}};
  EXPECT_EQ(load_error(),
            "log.level = loud: must be one of trace, debug, info, warn, error, off (from command "
            "line)");
}

TEST_F(ConfigTest, ValidationMessagesFromTheFile) {
  const std::pair<std::string, std::string> cases[] = {
      {"[generation]\nmax_parallel = \"two\"\n",
       "generation.max_parallel = \"two\": must be an integer from 1 to 256 (from {}:2)"},
      {"[generation]\n\nmax_parallel = 2.5\n",
       "generation.max_parallel = 2.5: must be an integer from 1 to 256 (from {}:3)"},
      {"[ollama]\nthink = \"yes\"\n", "ollama.think = \"yes\": must be true or false (from {}:2)"},
      {"[ollama]\noptions = 3\n",
       "ollama.options = 3: must be a table such as { temperature = 0.2 } (from {}:2)"},
      {"log.level = \"loud\"\n",
       "log.level = \"loud\": must be one of trace, debug, info, warn, error, off (from {}:1)"},
      {"[server]\nlisten = [\"a\"]\n",
       "server.listen = [...]: must be HOST:PORT with a port from 0 to 65535 (IPv6 in brackets, "
       "as [::1]:8080) (from {}:2)"},
  };
  for (const auto& [text, expected] : cases) {
    sources_.file = write("bad.toml", text);
    std::string message = expected;
    message.replace(message.find("{}"), 2, *sources_.file);
    EXPECT_EQ(load_error(), message);
  }
}

TEST_F(ConfigTest, UnknownFileKeyIsAnError) {
  sources_.file = write("a.toml", "[generation]\nmax_paralel = 2\n");
  EXPECT_EQ(load_error(),
            "unknown key generation.max_paralel (did you mean "
            "generation.max_parallel?) (from " +
                *sources_.file + ":2)");
  sources_.file = write("b.toml", "\n[frobnicator]\nspeed = 2\n");
  EXPECT_EQ(load_error(), "unknown key frobnicator (from " + *sources_.file + ":2)");
  sources_.file = write("c.toml", "max_parallel = 2\n");
  EXPECT_EQ(load_error(), "unknown key max_parallel (from " + *sources_.file + ":1)");
  sources_.file = write("d.toml", "[server.listen]\nhost = \"x\"\n");
  EXPECT_EQ(load_error().rfind("server.listen = {...}: must be HOST:PORT", 0), 0u);
}

TEST_F(ConfigTest, TomlSyntaxErrorNamesFileAndLine) {
  sources_.file = write("a.toml", "[server]\nlisten = \"127.0.0.1:80\"\n[generation\n");
  const std::string message = load_error();
  EXPECT_EQ(message.rfind(*sources_.file + ":3:", 0), 0u) << message;
  EXPECT_NE(message.find("invalid TOML"), std::string::npos) << message;
}

TEST_F(ConfigTest, StoragePathFromStateDirectory) {
  sources_.environment = {{"STATE_DIRECTORY", "/var/lib/ticketaid"}};
  EXPECT_EQ(load().settings->storage_path, "/var/lib/ticketaid/ticketaid.db");
  sources_.environment = {{"STATE_DIRECTORY", "/var/lib/ticketaid/:/var/lib/other"}};
  EXPECT_EQ(load().settings->storage_path, "/var/lib/ticketaid/ticketaid.db");
  sources_.environment = {{"STATE_DIRECTORY", ""}};
  EXPECT_EQ(load().settings->storage_path, (fs::current_path() / "ticketaid.db").string());
  sources_.environment = {{"STATE_DIRECTORY", "/var/lib/ticketaid"},
                          {"TICKETAID_STORAGE_PATH", "/data/t.db"}};
  EXPECT_EQ(load().settings->storage_path, "/data/t.db");
}

TEST_F(ConfigTest, ProcessEnvironmentReadsEnviron) {
  ASSERT_EQ(setenv("TICKETAID_TEST_CONFIG_PROBE", "a=b", 1), 0);
  const auto env = process_environment();
  unsetenv("TICKETAID_TEST_CONFIG_PROBE");
  ASSERT_TRUE(env.contains("TICKETAID_TEST_CONFIG_PROBE"));
  EXPECT_EQ(env.at("TICKETAID_TEST_CONFIG_PROBE"), "a=b");
}

TEST(ConfigReload, ReloadabilityAndChangedKeys) {
  EXPECT_TRUE(is_reloadable("log.level"));
  EXPECT_TRUE(is_reloadable("generation.max_parallel"));
  EXPECT_TRUE(is_reloadable("ollama.model"));
  EXPECT_TRUE(is_reloadable("ollama.system_prompt"));
  EXPECT_FALSE(is_reloadable("server.listen"));
  EXPECT_FALSE(is_reloadable("storage.path"));
  EXPECT_FALSE(is_reloadable("server.io_threads"));
  EXPECT_FALSE(is_reloadable("no.such_key"));

  Settings a;
  Settings b;
  EXPECT_TRUE(changed_keys(a, b).empty());
  b.ollama_options["seed"] = 1;
  b.server_listen = "127.0.0.1:0";
  EXPECT_EQ(changed_keys(a, b), (std::vector<std::string>{"server.listen", "ollama.options"}));
}

TEST(ConfigTemplate, EveryKeyIsDocumented) {
  const std::string file = render_config_file();
  const std::string help = render_key_help();
  for (const config::KeySpec& key : config::keys()) {
    const std::string name(key.name);
    EXPECT_NE(help.find("  " + name + " (default: "), std::string::npos) << name;
    EXPECT_NE(file.find(config::env_name(key)), std::string::npos) << name;
    const std::string section = "[" + name.substr(0, name.find('.')) + "]";
    EXPECT_NE(file.find(section), std::string::npos) << name;
  }
  EXPECT_EQ(std::count(help.begin(), help.end(), '\n'),
            static_cast<std::ptrdiff_t>(config::keys().size()));
}

TEST(ConfigTemplate, ShippedFileIsTheRenderedTemplate) {
  const fs::path path = fs::path(TICKETAID_SOURCE_DIR) / "config" / "ticketaid.toml";
  const std::string rendered = render_config_file();
  const char* update = std::getenv("TICKETAID_TEST_UPDATE_TEMPLATE");
  if (update != nullptr && std::string(update) == "1") {
    std::ofstream(path, std::ios::binary) << rendered;
  }
  const std::string shipped = read_file(path);
  if (shipped == rendered) return;
  // Name the first line that differs rather than printing both files.
  std::istringstream shipped_lines(shipped);
  std::istringstream rendered_lines(rendered);
  std::string want;
  std::string got;
  int line = 0;
  do {
    ++line;
    if (!std::getline(rendered_lines, want)) want = "<end of file>";
    if (!std::getline(shipped_lines, got)) got = "<end of file>";
  } while (want == got && shipped_lines && rendered_lines);
  ADD_FAILURE()
      << path.string() << " is out of date at line " << line << ":\n  shipped:  " << got
      << "\n  rendered: " << want
      << "\nRegenerate it with\n  TICKETAID_TEST_UPDATE_TEMPLATE=1 BUILD/tests/unit_tests "
         "--gtest_filter='ConfigTemplate.*'\nor `ticketaid config-template > "
         "config/ticketaid.toml`.";
}

TEST(ConfigTemplate, ShippedFileLoadsToTheDefaults) {
  ConfigSources sources;
  sources.file = (fs::path(TICKETAID_SOURCE_DIR) / "config" / "ticketaid.toml").string();
  Result<LoadedSettings> from_file = load_settings(sources);
  ASSERT_TRUE(from_file.is_ok()) << from_file.status().message();
  sources.file = std::nullopt;
  sources.default_file.clear();
  Result<LoadedSettings> defaults = load_settings(sources);
  ASSERT_TRUE(defaults.is_ok()) << defaults.status().message();
  EXPECT_TRUE(changed_keys(*defaults->settings, *from_file->settings).empty());
  EXPECT_TRUE(from_file->warnings.empty());
}

}  // namespace
}  // namespace ticketaid
