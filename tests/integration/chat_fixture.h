// What the chat session integration tests share: the real daemon started with a
// known system prompt against the fake Ollama, and one call per chat endpoint and
// for the session WebSocket (/ws/sessions/{id}), so that each test reads as the
// conversation it plays.
//
// Thread-safety: as DaemonTest, one test thread; the HTTP calls (rest_client.h) may
// also run on helper threads.
#pragma once

#include <time.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "integration/daemon_fixture.h"
#include "integration/rest_client.h"

namespace ticketaid::testing {

using Turns = std::vector<std::pair<std::string, std::string>>;  // (role, content)

// "2026-11-23T10:30:00.123Z" as unix milliseconds; -1 when it has another shape.
inline int64_t iso_to_ms(const std::string& text) {
  std::tm tm{};
  const char* rest = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (rest == nullptr || text.size() != 24 || text[19] != '.' || text[23] != 'Z') return -1;
  return static_cast<int64_t>(timegm(&tm)) * 1000 + std::stoi(text.substr(20, 3));
}

inline int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class ChatDaemonTest : public DaemonTest {
 protected:
  static constexpr const char* kSystemPrompt = "Answer helpdesk questions briefly.";

  // Starts (or restarts) the daemon with these extra environment variables.
  void start(std::map<std::string, std::string> env = {}) {
    env.emplace("TICKETAID_OLLAMA_SYSTEM_PROMPT", kSystemPrompt);
    start_daemon({}, std::move(env));
  }
  int port() const { return daemon_->port(); }

  // The fake's next replies: these tokens; or stalled after n tokens until release().
  void answer_with(std::vector<std::string> tokens) {
    FakeScript script;
    script.tokens = std::move(tokens);
    fake_.set_script(script);
  }
  void stall_after(int tokens) {
    FakeScript script;
    script.fault = FakeFault::stall_after_tokens;
    script.fault_after_tokens = tokens;
    fake_.set_script(script);
  }

  HttpResult create_session(const std::string& user) {
    return http_post(port(), "/api/sessions", {{"userId", user}});
  }
  HttpResult start_chat(const std::string& user, const std::string& initial) {
    return http_post(port(), "/api/chat/session/start",
                     {{"userId", user}, {"initialMessage", initial}});
  }
  // A new chat session's id (from POST /api/sessions), or "" after a failure.
  std::string new_session(const std::string& user) {
    auto created = create_session(user);
    EXPECT_EQ(created.status, 201) << created.describe();
    return created.status == 201 ? created.json.value("id", "") : "";
  }
  HttpResult say(const std::string& session, const std::string& message,
                 const std::string& message_id = "") {
    nlohmann::json body = {{"sessionId", session}, {"message", message}};
    if (!message_id.empty()) body["messageId"] = message_id;
    return http_post(port(), "/api/chat/session", body);
  }
  HttpResult append(const std::string& session, const std::string& role,
                    const std::string& content) {
    return http_post(port(), "/api/sessions/" + session + "/messages",
                     {{"role", role}, {"content", content}});
  }
  HttpResult del(const std::string& path) { return http_call(port(), "DELETE", path); }

  // The whole history (GET /api/chat/session/{id}/history), or null after a failure.
  nlohmann::json history(const std::string& session) {
    auto got = http_get(port(), "/api/chat/session/" + session + "/history?limit=500");
    EXPECT_EQ(got.status, 200) << got.describe();
    return got.status == 200 ? got.json : nlohmann::json();
  }
  std::vector<std::string> contents(const nlohmann::json& page) {
    std::vector<std::string> out;
    for (const auto& m : page.value("items", nlohmann::json::array()))
      out.push_back(m.value("content", ""));
    return out;
  }

  std::unique_ptr<WsClient> open_session(const std::string& id) {
    auto client = std::make_unique<WsClient>();
    auto result = client->connect(port(), "/ws/sessions/" + id);
    EXPECT_TRUE(result.upgraded) << "status " << result.http_status << " " << result.error;
    return client;
  }
  // Sends a chat message on a session (or ticket) socket and reads its whole reply.
  std::vector<nlohmann::json> ws_say(WsClient& client, const std::string& content,
                                     const std::string& message_id = "") {
    nlohmann::json message = {{"type", "message"}, {"content", content}};
    if (!message_id.empty()) message["messageId"] = message_id;
    EXPECT_TRUE(client.send_json(message));
    return read_reply(client);
  }

  // The messages of every /api/chat request the fake received, in order.
  std::vector<Turns> chat_contexts() {
    std::vector<Turns> out;
    for (const auto& request : fake_.requests()) {
      if (request.path != "/api/chat") continue;
      Turns turns;
      for (const auto& m : request.body.value("messages", nlohmann::json::array())) {
        turns.emplace_back(m.value("role", ""), m.value("content", ""));
      }
      out.push_back(std::move(turns));
    }
    return out;
  }

  // Waits until the wall clock has passed an ISO 8601 time the daemon wrote, so that
  // what happens next is strictly later (the daemon's times have milliseconds).
  static bool wall_clock_passes(const std::string& iso) {
    const int64_t at = iso_to_ms(iso);
    return at >= 0 && wait_until([&] { return wall_ms() > at; });
  }
};

}  // namespace ticketaid::testing
