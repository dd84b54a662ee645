// A standalone fake Ollama for manual runs and the benchmarks:
//
//   fake_ollama [--port N] [--tokens N] [--token-delay-ms N] [--first-token-delay-ms N]
//               [--model NAME]... [--threads N] [--control-stdin]
//
// It prints "fake ollama listening on http://127.0.0.1:PORT" once it accepts
// connections and serves until SIGINT or SIGTERM.
//
// With --control-stdin another program (the browser tests, tests/e2e) scripts it while
// it serves: each line on standard input is one JSON command, answered by one line
// on standard output, "ok" or "error: WHAT".
//   {"reply": "Some *Markdown*", "tokenDelayMs": 20, "firstTokenDelayMs": 0,
//    "fault": "stall_after_tokens", "faultAfterTokens": 5}
//       the script of the following chats (fields left out take FakeScript's
//       defaults); "reply" is cut into word tokens, or give "tokens": [...]
//   {"release": true}        releases stalled and hanging requests (FakeOllama::release)
//   {"models": ["llama3.2"]} the models /api/tags reports
//
// Thread-safety: the main thread only parses arguments and waits for a signal; the
// server runs on its own threads; the control thread calls FakeOllama's thread-safe
// methods, under control_mutex so that it never does once main is tearing down.
#include <signal.h>

#include <cctype>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <exception>
#include <iostream>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/fake_ollama.h"

namespace {

constexpr const char* kUsage =
    "usage: fake_ollama [--port N] [--tokens N] [--token-delay-ms N]\n"
    "                   [--first-token-delay-ms N] [--model NAME]... [--threads N]\n"
    "                   [--control-stdin]\n";

// Words cycled to make tokens that read like a reply.
constexpr std::string_view kWords[] = {
    "Restart",   " the",   " print",    " spooler", " service", ",",    " then",   " clear",
    " the",      " queue", " and",      " check",   " that",    " the", " driver", " matches",
    " the",      " model", " on",       " the",     " ticket",  ".",    " If",     " it",
    " persists", ",",      " escalate", " to",      " level",   " 2",   ".",       "\n"};

bool parse_int(const char* text, long long min, long long max, long long* out) {
  const std::string_view s(text);
  long long value = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || end != s.data() + s.size() || value < min || value > max) return false;
  *out = value;
  return true;
}

// "Restart the spooler" -> {"Restart", " the", " spooler"}: each token is the
// whitespace before a word and the word, as a model's tokens often are.
std::vector<std::string> word_tokens(const std::string& text) {
  std::vector<std::string> tokens;
  std::size_t i = 0;
  while (i < text.size()) {
    const std::size_t start = i;
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i])))
      ++i;
    while (i < text.size() && !std::isspace(static_cast<unsigned char>(text[i])))
      ++i;
    tokens.push_back(text.substr(start, i - start));
  }
  return tokens;
}

bool parse_fault(const std::string& name, ticketaid::testing::FakeFault* fault) {
  using ticketaid::testing::FakeFault;
  static const std::pair<const char*, FakeFault> kFaults[] = {
      {"none", FakeFault::none},
      {"http_500", FakeFault::http_500},
      {"http_503", FakeFault::http_503},
      {"error_mid_stream", FakeFault::error_mid_stream},
      {"drop_mid_stream", FakeFault::drop_mid_stream},
      {"stall_after_tokens", FakeFault::stall_after_tokens},
      {"hang_before_headers", FakeFault::hang_before_headers}};
  for (const auto& [text, value] : kFaults) {
    if (name == text) {
      *fault = value;
      return true;
    }
  }
  return false;
}

// One --control-stdin command; returns the answer line ("ok" or "error: ...").
std::string run_command(const std::string& line, ticketaid::testing::FakeOllama& fake) {
  const auto command = nlohmann::json::parse(line, nullptr, false);
  if (!command.is_object()) return "error: not a JSON object";
  try {
    if (command.value("release", false)) {
      fake.release();
      return "ok";
    }
    if (command.contains("models")) {
      fake.set_models(command.at("models").get<std::vector<std::string>>());
      return "ok";
    }
    ticketaid::testing::FakeScript script;
    if (command.contains("reply"))
      script.tokens = word_tokens(command.at("reply").get<std::string>());
    if (command.contains("tokens"))
      script.tokens = command.at("tokens").get<std::vector<std::string>>();
    script.token_delay = std::chrono::milliseconds(command.value("tokenDelayMs", 0));
    script.first_token_delay = std::chrono::milliseconds(command.value("firstTokenDelayMs", 0));
    script.fault_after_tokens = command.value("faultAfterTokens", 0);
    if (!parse_fault(command.value("fault", std::string("none")), &script.fault)) {
      return "error: unknown fault";
    }
    fake.set_script(std::move(script));
    return "ok";
  } catch (const nlohmann::json::exception& e) {
    return std::string("error: ") + e.what();
  }
}

}  // namespace

int main(int argc, char** argv) {
  ticketaid::testing::FakeOllamaOptions options;
  ticketaid::testing::FakeScript script;
  std::vector<std::string> models;
  long long tokens = 64;
  bool control_stdin = false;

  for (int i = 1; i < argc; ++i) {
    const std::string_view arg(argv[i]);
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (arg == "--control-stdin") {
      control_stdin = true;
      continue;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "fake_ollama: %s needs a value\n%s", argv[i], kUsage);
      return 2;
    }
    const char* value = argv[++i];
    long long n = 0;
    bool ok = true;
    if (arg == "--port") {
      ok = parse_int(value, 0, 65535, &n);
      options.port = static_cast<int>(n);
    } else if (arg == "--tokens") {
      ok = parse_int(value, 0, 10'000'000, &n);
      tokens = n;
    } else if (arg == "--token-delay-ms") {
      ok = parse_int(value, 0, 3'600'000, &n);
      script.token_delay = std::chrono::milliseconds(n);
    } else if (arg == "--first-token-delay-ms") {
      ok = parse_int(value, 0, 3'600'000, &n);
      script.first_token_delay = std::chrono::milliseconds(n);
    } else if (arg == "--threads") {
      ok = parse_int(value, 1, 4096, &n);
      options.threads = static_cast<int>(n);
    } else if (arg == "--model") {
      models.emplace_back(value);
    } else {
      std::fprintf(stderr, "fake_ollama: unknown option %s\n%s", argv[i - 1], kUsage);
      return 2;
    }
    if (!ok) {
      std::fprintf(stderr, "fake_ollama: bad value for %s: %s\n", argv[i - 1], value);
      return 2;
    }
  }

  script.tokens.clear();
  for (long long i = 0; i < tokens; ++i) {
    script.tokens.emplace_back(kWords[static_cast<std::size_t>(i) % std::size(kWords)]);
  }

  // Block the signals before any thread starts, so that only sigwait receives them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  try {
    ticketaid::testing::FakeOllama fake(options);
    if (!models.empty()) fake.set_models(models);
    fake.set_script(script);
    std::printf("fake ollama listening on %s\n", fake.url().c_str());
    std::fflush(stdout);
    // Static: the detached reader may still be blocked in getline when main returns;
    // it never touches `fake` once `stopping` is set.
    static std::mutex control_mutex;
    static bool stopping = false;
    if (control_stdin) {
      std::thread([&fake] {
        std::string line;
        while (std::getline(std::cin, line)) {
          std::lock_guard lock(control_mutex);
          if (stopping) return;
          std::printf("%s\n", run_command(line, fake).c_str());
          std::fflush(stdout);
        }
      }).detach();
    }
    int received = 0;
    sigwait(&signals, &received);
    {
      std::lock_guard lock(control_mutex);
      stopping = true;
    }
    std::fprintf(stderr, "fake_ollama: %s, stopping after %d chat requests\n", strsignal(received),
                 fake.chat_requests());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
