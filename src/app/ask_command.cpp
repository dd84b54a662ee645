// `ticketaid ask` (see ask_command.h): the request, the terminal output and the
// exit status. The WebSocket itself is net/ask_client.cpp.
#include "app/ask_command.h"

#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <iterator>
#include <optional>
#include <vector>

#include <nlohmann/json.hpp>

#include "app/command_support.h"
#include "net/ask_client.h"

namespace ticketaid {
namespace {

using nlohmann::json;
using Kind = AskExchangeOutcome::Kind;

constexpr std::size_t kMaxStdinBody = std::size_t{16} << 20;

void print_error(const std::string& text) {
  std::fprintf(stderr, "ticketaid: %s\n", text.c_str());
}

// A string field of a frame, or "" when it is missing or of another type.
std::string text_field(const json& frame, const char* name) {
  const auto it = frame.find(name);
  return it != frame.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::optional<int64_t> number_field(const json& frame, const char* name) {
  const auto it = frame.find(name);
  if (it == frame.end() || !it->is_number()) return std::nullopt;
  return it->get<int64_t>();
}

// Prints the frames of one reply and remembers how it ended.
class AnswerPrinter {
 public:
  AnswerPrinter() : stdout_is_terminal_(isatty(STDOUT_FILENO) == 1) {}

  FrameAction on_frame(const json& frame) {
    const std::string type = text_field(frame, "type");
    if (type == "stream") {
      end_thinking();
      write_answer(text_field(frame, "content"));
    } else if (type == "cached") {
      cached_ = true;
      cached_message_ = text_field(frame, "message");
      write_answer(text_field(frame, "response"));
    } else if (type == "thinking") {
      thinking_ = true;
      const std::string text = text_field(frame, "content");
      std::fwrite(text.data(), 1, text.size(), stderr);
      std::fflush(stderr);
    } else if (type == "queued") {
      // Said again only when it changes.
      const auto position = number_field(frame, "position");
      if (position && position != last_position_) {
        last_position_ = position;
        note("queued, position " + std::to_string(*position));
      }
    } else if (type == "done") {
      end_thinking();
      note(summary(frame));
      return FrameAction::last;
    } else if (type == "error") {
      end_thinking();
      error_ = frame;
      std::string code = text_field(frame, "code");
      std::string text = "error (" + (code.empty() ? std::string("unknown") : code) +
                         "): " + text_field(frame, "message");
      if (const auto retry = number_field(frame, "retryAfterMs")) {
        text += " (retry in " + std::to_string((*retry + 999) / 1000) + " s)";
      }
      note(text);
      return FrameAction::last;
    }
    return FrameAction::more;  // pong and types this version does not know
  }

  bool failed() const { return error_.has_value(); }

  // Before a line on standard error: ends a partial answer line on a terminal, so
  // that the line starts on its own.
  void note(const std::string& text) {
    if (stdout_is_terminal_ && !answer_ends_line_) {
      std::fputc('\n', stdout);
      std::fflush(stdout);
      answer_ends_line_ = true;
    }
    print_error(text);
  }

 private:
  void write_answer(const std::string& text) {
    if (text.empty()) return;
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
    answer_ends_line_ = text.back() == '\n';
  }

  void end_thinking() {
    if (!thinking_) return;
    thinking_ = false;
    std::fputc('\n', stderr);
  }

  std::string summary(const json& done) const {
    std::vector<std::string> parts;
    if (cached_) parts.push_back(cached_message_.empty() ? "cached" : cached_message_);
    if (const std::string model = text_field(done, "model"); !model.empty()) {
      parts.push_back("model " + model);
    }
    const auto prompt = number_field(done, "promptTokens");
    const auto answer = number_field(done, "responseTokens");
    if (answer) {
      parts.push_back((prompt ? std::to_string(*prompt) + " prompt + " : std::string()) +
                      std::to_string(*answer) + " answer tokens");
    }
    if (const auto ms = number_field(done, "durationMs")) {
      char text[32];
      std::snprintf(text, sizeof(text), "%.2f s", static_cast<double>(*ms) / 1000);
      parts.emplace_back(text);
    }
    std::string line = "done";
    for (std::size_t i = 0; i < parts.size(); ++i) {
      line += (i == 0 ? ": " : ", ") + parts[i];
    }
    return line;
  }

  const bool stdout_is_terminal_;
  bool answer_ends_line_ = true;
  bool thinking_ = false;
  bool cached_ = false;
  std::string cached_message_;
  std::optional<int64_t> last_position_;
  std::optional<json> error_;
};

// ws://HOST:PORT for a daemon listening on server.listen; a wildcard address is
// reached on loopback.
Result<WsServerUrl> url_from_listen(const std::string& listen) {
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos) {
    return Status::error(ErrorCode::bad_request, "server.listen = " + listen + " is not HOST:PORT");
  }
  std::string host = listen.substr(0, colon);
  const std::string port = listen.substr(colon + 1);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (port == "0") {
    return Status::error(ErrorCode::bad_request,
                         "server.listen = " + listen +
                             " picks a free port at start; give the daemon's address with --url");
  }
  if (host.empty() || host == "0.0.0.0") host = "127.0.0.1";
  if (host == "::") host = "::1";
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return parse_ws_url("ws://" + host + ":" + port);
}

Result<WsServerUrl> server_url(const AskOptions& options) {
  if (!options.url.empty()) return parse_ws_url(options.url);
  auto loaded = load_command_settings(options.config);
  if (!loaded) return loaded.status();
  return url_from_listen(loaded->settings->server_listen);
}

Result<std::string> ticket_body(const std::string& body) {
  if (body != "-") return body;
  std::string text;
  char buffer[65536];
  std::size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), stdin)) > 0) {
    text.append(buffer, n);
    if (text.size() > kMaxStdinBody) {
      return Status::error(ErrorCode::too_large, "the ticket body on standard input is over " +
                                                     human_size(kMaxStdinBody));
    }
  }
  if (std::ferror(stdin)) {
    return Status::error(ErrorCode::bad_request, "cannot read the ticket body from standard input");
  }
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) {
    text.pop_back();
  }
  return text;
}

// The daemon's {"error": {"code", "message"}} body of a refused upgrade, if it is one.
std::optional<std::pair<std::string, std::string>> error_body(const std::string& body) {
  const json parsed = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_object() || !parsed.contains("error") || !parsed["error"].is_object()) {
    return std::nullopt;
  }
  return std::make_pair(text_field(parsed["error"], "code"),
                        text_field(parsed["error"], "message"));
}

int report(const AskExchangeOutcome& outcome, AnswerPrinter& printer, const WsServerUrl& server,
           int timeout_s) {
  switch (outcome.kind) {
    case Kind::finished:
      return printer.failed() ? exit_status::failure : exit_status::ok;
    case Kind::interrupted:
      printer.note(outcome.detail);
      return exit_status::signalled(outcome.signal_number);
    case Kind::connect_failed:
      printer.note(outcome.detail + " (is the daemon running? start it with `ticketaid serve`, " +
                   "or give its address with --url)");
      return exit_status::unreachable;
    case Kind::refused:
      if (const auto error = error_body(outcome.http_body)) {
        printer.note("error (" + error->first + "): the daemon refused the request with " +
                     outcome.detail + ": " + error->second);
        return exit_status::failure;
      }
      printer.note(server.text() + " answered " + outcome.detail +
                   " instead of a WebSocket upgrade; is it a ticketaid daemon?");
      return exit_status::unreachable;
    case Kind::closed: {
      std::string how = "code " + std::to_string(outcome.close_code) +
                        (outcome.detail.empty() ? "" : ": " + outcome.detail);
      if (outcome.close_code == 1009) {
        printer.note("error (too_large): the daemon closed the connection (" + how +
                     "): the ticket body is larger than its ws.max_message_bytes");
        return exit_status::failure;
      }
      if (outcome.close_code == 1008 || (outcome.close_code >= 4000 && outcome.close_code < 5000)) {
        printer.note("error: the daemon closed the connection (" + how + ")");
        return exit_status::failure;
      }
      printer.note("the daemon closed the connection before the reply was complete (" + how + ")");
      return exit_status::unreachable;
    }
    case Kind::timed_out:
      printer.note("no complete reply within " + std::to_string(timeout_s) + " s (--timeout)");
      return exit_status::unreachable;
    case Kind::broken:
      printer.note(outcome.detail);
      return exit_status::unreachable;
  }
  return exit_status::unreachable;
}

}  // namespace

int run_ask(const AskOptions& options) {
  if (options.timeout_s < 0) {
    print_error("--timeout must be 0 (no limit) or a number of seconds");
    return exit_status::usage;
  }
  auto server = server_url(options);
  if (!server) {
    print_error(server.status().message());
    return exit_status::usage;
  }
  auto body = ticket_body(options.body);
  if (!body) {
    print_error(body.status().message());
    return exit_status::usage;
  }
  if (body->empty()) {
    print_error("the ticket body is empty");
    return exit_status::usage;
  }

  json request = {{"ticketBody", body.value()}};
  if (options.regenerate) request["regenerate"] = true;

  AskExchangeOptions exchange;
  exchange.server = server.value();
  exchange.ticket_id = options.ticket_id;
  // Bytes that are not UTF-8 are replaced: the daemon refuses invalid UTF-8 (1007).
  exchange.message = request.dump(-1, ' ', false, json::error_handler_t::replace);
  exchange.timeout = std::chrono::seconds(options.timeout_s);

  AnswerPrinter printer;
  const AskExchangeOutcome outcome =
      run_ask_exchange(exchange, [&printer](const json& frame) { return printer.on_frame(frame); });
  return report(outcome, printer, server.value(), options.timeout_s);
}

}  // namespace ticketaid
