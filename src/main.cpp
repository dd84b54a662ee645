// ticketaid: parses the command line and hands over to the subcommand. What each
// subcommand does lives in app/ (the daemon in app.cpp, the others in *_command.cpp).
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "app/app.h"
#include "app/ask_command.h"
#include "app/backup_command.h"
#include "app/command_support.h"
#include "app/doctor_command.h"
#include "app/journal_sink.h"
#include "util/config.h"
#include "util/log.h"

namespace {

using namespace ticketaid;

constexpr const char* kUsage = R"(
Usage:
  ticketaid serve [--config FILE] [--listen HOST:PORT] [--db PATH] [--ollama-url URL]
                  [--model NAME] [--log-level LEVEL] [--port-file FILE]
  ticketaid ask TICKET --body TEXT|- [--url ws://HOST:PORT | --config FILE] [--regenerate]
                [--timeout SECONDS]
  ticketaid doctor [--config FILE] [--listen HOST:PORT] [--db PATH] [--ollama-url URL] [--model NAME]
  ticketaid backup FILE [--config FILE] [--db PATH]
  ticketaid check-config [--config FILE] [--listen HOST:PORT] [--db PATH] ...
  ticketaid config-template
  ticketaid [COMMAND] --help
  ticketaid --version
)";

constexpr const char* kFooter = R"(Exit status:
  0    success
  1    failure: the daemon could not start, ask got an error reply, a doctor check
       failed, or the backup failed
  2    bad arguments or configuration (one line names the key, value and what is allowed)
  3    ask could not reach the daemon, lost the connection, or ran past --timeout
  130  ask was interrupted (Ctrl-C) after cancelling its request

Files:
  /etc/ticketaid/ticketaid.toml   configuration, read when present (--config names another)
  /var/lib/ticketaid/ticketaid.db  the database under systemd; else ./ticketaid.db

Environment:
  TICKETAID_SECTION_KEY    sets a configuration key, e.g. TICKETAID_OLLAMA_MODEL=llama3.2;
                           flags win over it, it wins over the file
  TICKETAID_CONFIG         the configuration file when --config is not given
  OLLAMA_SERVER, WEBSOCKET_MAX_CONNECTIONS, ...
                           older names of some keys (ticketaid(8) lists them), used
                           when the TICKETAID_ name is not set
  STATE_DIRECTORY          where the database goes by default (set by systemd)

`ticketaid serve --help` lists every configuration key. See ticketaid(8).)";

// The usage lines above replace CLI11's one-line usage for the program itself.
class Formatter : public CLI::Formatter {
 public:
  std::string make_usage(const CLI::App* app, std::string name) const override {
    if (app->get_parent() == nullptr) return kUsage;
    return CLI::Formatter::make_usage(app, std::move(name));
  }
};

// Flags that set configuration keys, for the subcommands that load settings.
struct ConfigFlags {
  inline static const std::vector<std::string_view> kEveryKey = {
      "server.listen", "storage.path", "ollama.url", "ollama.model", "log.level"};

  std::string config_file;
  std::map<std::string, std::string> overrides;

  // Adds --config and the flags of the given keys.
  void add_to(CLI::App& cmd, const std::vector<std::string_view>& keys = kEveryKey) {
    cmd.add_option("--config", config_file,
                   "configuration file (default: $TICKETAID_CONFIG, else "
                   "/etc/ticketaid/ticketaid.toml if present)")
        ->type_name("FILE");
    const struct {
      const char* flag;
      const char* key;
      const char* type;
      const char* help;
    } flags[] = {
        {"--listen", "server.listen", "HOST:PORT", "address to listen on (port 0: any free port)"},
        {"--db", "storage.path", "PATH", "SQLite database file"},
        {"--ollama-url", "ollama.url", "URL", "Ollama base URL"},
        {"--model", "ollama.model", "NAME", "model to ask"},
        {"--log-level", "log.level", "LEVEL", "trace, debug, info, warn, error or off"},
    };
    for (const auto& f : flags) {
      if (std::find(keys.begin(), keys.end(), f.key) == keys.end()) continue;
      cmd.add_option_function<std::string>(
             f.flag, [this, key = std::string(f.key)](const std::string& v) { overrides[key] = v; },
             f.help)
          ->type_name(f.type);
    }
  }

  ConfigSources sources() const {
    ConfigSources sources;
    sources.environment = process_environment();
    if (!config_file.empty()) {
      sources.file = config_file;
    } else if (const auto env = sources.environment.find("TICKETAID_CONFIG");
               env != sources.environment.end() && !env->second.empty()) {
      sources.file = env->second;
    }
    sources.overrides = overrides;
    return sources;
  }
};

// serve and check-config: load the settings as the daemon does.
int serve_or_check(const ConfigFlags& flags, bool serving, const RunOptions& run_options) {
  auto loaded = load_settings(flags.sources());
  if (!loaded) {
    std::fprintf(stderr, "ticketaid: %s\n", loaded.status().message().c_str());
    return exit_status::usage;
  }
  // Under systemd the events go to the journal directly, with their fields.
  init_logging(loaded->settings->log_level,
               serving && stderr_is_journal() ? make_journal_sink() : nullptr);
  for (const auto& warning : loaded->warnings) {
    spdlog::warn("{}", warning);
  }
  if (!serving) {
    std::printf("configuration is valid (%s)\n",
                loaded->file_used.empty() ? "built-in defaults" : loaded->file_used.c_str());
    return exit_status::ok;
  }
  RunOptions options = run_options;
  // SIGHUP: the same file, the environment as it is then, and the same flags.
  options.reload = [sources = flags.sources()]() mutable {
    sources.environment = process_environment();
    return load_settings(sources);
  };
  return run_daemon(loaded->settings, options);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ticketaid - streams AI answers for helpdesk tickets from a local Ollama",
               "ticketaid"};
  auto formatter = std::make_shared<Formatter>();
  app.formatter(formatter);
  app.set_version_flag("--version", std::string("ticketaid ") + TICKETAID_VERSION);
  app.require_subcommand(1);
  const std::string keys_help =
      "Configuration keys (file, TICKETAID_* environment, flags):\n" + render_key_help();

  ConfigFlags serve_flags;
  RunOptions run_options;
  auto* serve = app.add_subcommand(
      "serve", "run the daemon (SIGHUP reloads the configuration, SIGTERM or SIGINT stops it)");
  serve_flags.add_to(*serve);
  serve->add_option("--port-file", run_options.port_file, "write HOST:PORT here once listening")
      ->type_name("FILE");
  serve->footer(keys_help);

  AskOptions ask_options;
  ConfigFlags ask_flags;
  auto* ask = app.add_subcommand(
      "ask", "ask a running daemon for a ticket's answer and print it as it streams");
  ask->add_option("TICKET", ask_options.ticket_id,
                  "ticket id: 1 to 128 characters of A-Z a-z 0-9 . _ : -")
      ->required()
      ->type_name("");
  ask->add_option("--body", ask_options.body, "the ticket's text; - reads it from standard input")
      ->required()
      ->type_name("TEXT");
  ask->add_option("--url", ask_options.url,
                  "the daemon's address (default: ws:// + server.listen of the configuration)")
      ->type_name("ws://HOST:PORT");
  ask->add_flag("--regenerate", ask_options.regenerate,
                "ignore the cached answer and generate a new one");
  ask->add_option("--timeout", ask_options.timeout_s,
                  "give up after this long (default 0: as long as the daemon works on it)")
      ->type_name("SECONDS");
  ask_flags.add_to(*ask, {});
  ask->add_option_function<std::string>(
         "--listen", [&](const std::string& v) { ask_flags.overrides["server.listen"] = v; },
         "the daemon's server.listen, to reach it without --url")
      ->type_name("HOST:PORT");
  ask->footer(
      "The answer goes to standard output; queue positions, the summary line and errors go to\n"
      "standard error. Ctrl-C cancels the request. Exit status: 0 answered, 1 the daemon\n"
      "answered an error, 2 bad arguments, 3 no connection or --timeout, 130 interrupted.");

  ConfigFlags doctor_flags;
  auto* doctor = app.add_subcommand(
      "doctor", "check the configuration, database, disk space, Ollama, model and listen address");
  doctor_flags.add_to(*doctor, {"server.listen", "storage.path", "ollama.url", "ollama.model"});
  doctor->footer(
      "One line per check: ok, warn or FAIL, what was checked, and for a problem what to do.\n"
      "Exit status: 0 when no check failed (warnings allowed), 1 otherwise, 2 bad arguments.");

  ConfigFlags backup_flags;
  std::string backup_file;
  auto* backup = app.add_subcommand(
      "backup", "copy the live database to FILE (SQLite online backup; the daemon may run)");
  backup->add_option("FILE", backup_file, "the copy to write; it must not exist")->required();
  backup_flags.add_to(*backup, {"storage.path"});

  ConfigFlags check_flags;
  auto* check =
      app.add_subcommand("check-config", "load and validate the configuration, then exit");
  check_flags.add_to(*check);
  check->footer(keys_help);

  auto* config_template = app.add_subcommand(
      "config-template", "print the commented configuration file with every default");

  for (CLI::App* command : app.get_subcommands({})) {
    command->group("Commands");
  }
  app.footer(kFooter);  // after the subcommands, which would otherwise inherit it

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; anything else is a usage error.
    return app.exit(e) == 0 ? exit_status::ok : exit_status::usage;
  }

  if (config_template->parsed()) {
    std::fputs(render_config_file().c_str(), stdout);
    return exit_status::ok;
  }
  if (ask->parsed()) {
    ask_options.config = ask_flags.sources();
    return run_ask(ask_options);
  }
  if (doctor->parsed()) return run_doctor(doctor_flags.sources());
  if (backup->parsed()) return run_backup(backup_file, backup_flags.sources());
  if (check->parsed()) return serve_or_check(check_flags, false, run_options);
  return serve_or_check(serve_flags, true, run_options);
}
