// A standalone fake Ollama for manual runs and the benchmarks:
//
//   fake_ollama [--port N] [--tokens N] [--token-delay-ms N] [--first-token-delay-ms N]
//               [--model NAME]... [--threads N]
//
// It prints "fake ollama listening on http://127.0.0.1:PORT" once it accepts
// connections and serves until SIGINT or SIGTERM.
//
// Thread-safety: the main thread only parses arguments and waits for a signal; the
// server runs on its own threads.
#include <signal.h>

#include <charconv>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

#include "support/fake_ollama.h"

namespace {

constexpr const char* kUsage =
    "usage: fake_ollama [--port N] [--tokens N] [--token-delay-ms N]\n"
    "                   [--first-token-delay-ms N] [--model NAME]... [--threads N]\n";

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

}  // namespace

int main(int argc, char** argv) {
  ticketaid::testing::FakeOllamaOptions options;
  ticketaid::testing::FakeScript script;
  std::vector<std::string> models;
  long long tokens = 64;

  for (int i = 1; i < argc; ++i) {
    const std::string_view arg(argv[i]);
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
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
    int received = 0;
    sigwait(&signals, &received);
    std::fprintf(stderr, "fake_ollama: %s, stopping after %d chat requests\n", strsignal(received),
                 fake.chat_requests());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
