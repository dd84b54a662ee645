// ticketaid: parse the command line, load the settings, run the subcommand.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>

#include "app/app.h"
#include "util/config.h"
#include "util/log.h"

namespace {

// Flags that set configuration keys, shared by the subcommands that load settings.
struct ConfigFlags {
  std::string config_file;
  std::map<std::string, std::string> overrides;

  void add_to(CLI::App& cmd) {
    cmd.add_option("--config", config_file,
                   "configuration file (default /etc/ticketaid/ticketaid.toml if present)");
    add_key(cmd, "--listen", "server.listen", "HOST:PORT to listen on (port 0: any free port)");
    add_key(cmd, "--db", "storage.path", "SQLite database file");
    add_key(cmd, "--ollama-url", "ollama.url", "Ollama base URL");
    add_key(cmd, "--model", "ollama.model", "model to ask");
    add_key(cmd, "--log-level", "log.level", "trace, debug, info, warn, error or off");
  }
  void add_key(CLI::App& cmd, const std::string& flag, const std::string& key,
               const std::string& help) {
    cmd.add_option_function<std::string>(
        flag, [this, key](const std::string& value) { overrides[key] = value; }, help);
  }

  ticketaid::Result<ticketaid::LoadedSettings> load() const {
    ticketaid::ConfigSources sources;
    if (!config_file.empty()) sources.file = config_file;
    sources.environment = ticketaid::process_environment();
    sources.overrides = overrides;
    return ticketaid::load_settings(sources);
  }
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ticketaid: streams AI answers for helpdesk tickets from a local Ollama"};
  app.set_version_flag("--version", std::string("ticketaid ") + TICKETAID_VERSION);
  app.require_subcommand(1);
  app.footer("Configuration keys (file, TICKETAID_* environment, flags):\n" +
             ticketaid::render_key_help());

  ConfigFlags serve_flags;
  auto* serve = app.add_subcommand("serve", "run the daemon");
  serve_flags.add_to(*serve);
  std::string port_file;
  serve->add_option("--port-file", port_file, "write HOST:PORT here once listening");

  ConfigFlags check_flags;
  auto* check =
      app.add_subcommand("check-config", "load and validate the configuration, then exit");
  check_flags.add_to(*check);

  app.add_subcommand("config-template",
                     "print the commented configuration file with every default");

  CLI11_PARSE(app, argc, argv);

  if (app.got_subcommand("config-template")) {
    std::fputs(ticketaid::render_config_file().c_str(), stdout);
    return 0;
  }

  const bool serving = app.got_subcommand(serve);
  auto loaded = (serving ? serve_flags : check_flags).load();
  if (!loaded) {
    std::fprintf(stderr, "ticketaid: %s\n", loaded.status().message().c_str());
    return 2;
  }
  ticketaid::init_logging(loaded->settings->log_level);
  for (const auto& warning : loaded->warnings)
    spdlog::warn("{}", warning);

  if (!serving) {
    std::printf("configuration is valid (%s)\n",
                loaded->file_used.empty() ? "built-in defaults" : loaded->file_used.c_str());
    return 0;
  }
  return ticketaid::run_daemon(loaded->settings, {port_file});
}
