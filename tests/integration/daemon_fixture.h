// A running ticketaid daemon against a fake Ollama, for integration tests.
//
// Each test gets a fresh temporary directory (the database lives there), a fresh
// FakeOllama, and the real binary started on 127.0.0.1 port 0. With
// TICKETAID_TEST_OLLAMA_URL set, the daemon talks to that real Ollama instead and
// tests that need to script or inspect Ollama skip themselves, saying so.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "support/daemon_process.h"
#include "support/fake_ollama.h"
#include "support/ws_client.h"

namespace ticketaid::testing {

inline std::string real_ollama_url() {
  const char* url = std::getenv("TICKETAID_TEST_OLLAMA_URL");
  return url ? url : "";
}

class DaemonTest : public ::testing::Test {
 protected:
  // Starts the daemon; extra args go after "serve". Calling it again (after stop() or
  // kill9()) starts a new daemon on the same database: a restart.
  void start_daemon(std::vector<std::string> extra_args = {},
                    std::map<std::string, std::string> env = {}) {
    DaemonOptions options;
    options.db_path = db_path();
    options.ollama_url = real_ollama_url().empty() ? fake_.url() : real_ollama_url();
    options.extra_args = std::move(extra_args);
    // Every test client is 127.0.0.1, one anonymous user: the per-user limits are
    // lifted unless a test sets them (tests of the limits do, to small values).
    env.emplace("TICKETAID_LIMITS_MAX_CONNECTIONS_PER_USER", "1000");
    env.emplace("TICKETAID_RATE_LIMIT_MESSAGES_PER_MINUTE", "1000000");
    options.env = std::move(env);
    daemon_ = std::make_unique<DaemonProcess>(options);
    ASSERT_TRUE(daemon_->start()) << daemon_->error() << "\n" << daemon_->stderr_text();
  }

  bool using_fake() const { return real_ollama_url().empty(); }

  std::filesystem::path db_path() const { return dir_.path() / "ticketaid.db"; }

  // Checks `condition` every few milliseconds until it holds or the timeout passes;
  // returns whether it held. For state that announces no event (such as a row in the
  // database); a condition that can be awaited directly should be.
  template <typename Condition>
  static bool wait_until(Condition condition,
                         std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      if (condition()) return true;
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  std::unique_ptr<WsClient> open_ticket(const std::string& ticket_id) {
    auto client = std::make_unique<WsClient>();
    auto result = client->connect(daemon_->port(), "/api/websocket/chat/" + ticket_id);
    EXPECT_TRUE(result.upgraded) << "status " << result.http_status << " " << result.error;
    return client;
  }

  // Reads one whole reply: every frame up to and including done or error.
  std::vector<nlohmann::json> read_reply(WsClient& client) {
    std::vector<nlohmann::json> frames;
    for (;;) {
      auto frame = client.read_json(std::chrono::seconds(30));
      if (!frame) {
        ADD_FAILURE() << "no frame; daemon stderr:\n" << daemon_->stderr_text();
        return frames;
      }
      frames.push_back(*frame);
      auto type = frame->value("type", "");
      if (type == "done" || type == "error") return frames;
    }
  }

  static std::string joined_stream(const std::vector<nlohmann::json>& frames) {
    std::string text;
    for (const auto& f : frames) {
      if (f.value("type", "") == "stream") text += f.value("content", "");
    }
    return text;
  }

  TempDir dir_;
  FakeOllama fake_;
  std::unique_ptr<DaemonProcess> daemon_;
};

#define REQUIRE_FAKE_OLLAMA()                                                                    \
  do {                                                                                           \
    if (!using_fake())                                                                           \
      GTEST_SKIP() << "scripts the fake Ollama; TICKETAID_TEST_OLLAMA_URL points at a real one"; \
  } while (0)

}  // namespace ticketaid::testing
