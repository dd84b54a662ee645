// The ticket WebSocket end to end: the real daemon, a real WebSocket client, a
// real SQLite file and the fake Ollama speaking Ollama's NDJSON.
#include <gtest/gtest.h>

#include "integration/daemon_fixture.h"
#include "store/store.h"

namespace ticketaid::testing {
namespace {

using nlohmann::json;

class TicketSocket : public DaemonTest {};

TEST_F(TicketSocket, MissStreamsChunksThenDoneAndTheNextOpenIsCached) {
  start_daemon();
  auto client = open_ticket("4711");
  ASSERT_TRUE(client->send_json({{"ticketBody", "Printer on floor 3 prints blank pages"}}));
  auto frames = read_reply(*client);
  ASSERT_FALSE(frames.empty());
  const auto& done = frames.back();
  ASSERT_EQ(done["type"], "done") << done.dump();

  int64_t seq = 0;
  for (std::size_t i = 0; i + 1 < frames.size(); ++i) {
    ASSERT_EQ(frames[i]["type"], "stream") << frames[i].dump();
    EXPECT_EQ(frames[i]["seq"], seq++);
  }
  if (using_fake()) {
    EXPECT_EQ(joined_stream(frames), "Hello, world.");
    EXPECT_EQ(seq, 4);
    EXPECT_EQ(done["model"], "llama3.2");
    EXPECT_EQ(done["promptTokens"], 12);
    EXPECT_EQ(done["responseTokens"], 4);
    EXPECT_EQ(done["doneReason"], "stop");
    EXPECT_TRUE(done.contains("durationMs"));
    EXPECT_EQ(fake_.chat_requests(), 1);
    auto asked = fake_.last_chat_body();
    EXPECT_EQ(asked["stream"], true);
    EXPECT_EQ(asked["model"], "llama3.2");
    ASSERT_EQ(asked["messages"].size(), 2u);
    EXPECT_EQ(asked["messages"][0]["role"], "system");
    EXPECT_EQ(asked["messages"][1]["content"], "Printer on floor 3 prints blank pages");
    EXPECT_EQ(asked["options"]["num_predict"], 1024);
  }
  const std::string answer = joined_stream(frames);

  // Reopening the ticket answers from the store without asking Ollama.
  auto again = open_ticket("4711");
  ASSERT_TRUE(again->send_json({{"ticketBody", "Printer on floor 3 prints blank pages"}}));
  auto cached = read_reply(*again);
  ASSERT_EQ(cached.size(), 2u);
  EXPECT_EQ(cached[0]["type"], "cached");
  EXPECT_EQ(cached[0]["response"], answer);
  EXPECT_TRUE(cached[0]["message"].get<std::string>().starts_with("cached answer from 20"));
  EXPECT_TRUE(cached[0].contains("createdAt"));
  EXPECT_TRUE(cached[0].contains("model"));
  EXPECT_EQ(cached[1]["type"], "done");
  if (using_fake()) {
    EXPECT_EQ(fake_.chat_requests(), 1);
  }
}

TEST_F(TicketSocket, ChangedBodyRegeneratesAndKeepsTheOldAnswerAsARevision) {
  REQUIRE_FAKE_OLLAMA();
  start_daemon();
  auto client = open_ticket("T-1");
  client->send_json({{"ticketBody", "VPN drops every hour"}});
  ASSERT_EQ(read_reply(*client).back()["type"], "done");

  FakeScript script;
  script.tokens = {"Renew ", "the ", "lease."};
  fake_.set_script(script);
  client->send_json({{"ticketBody", "VPN drops every ten minutes"}});
  auto frames = read_reply(*client);
  ASSERT_EQ(frames.back()["type"], "done");
  EXPECT_EQ(joined_stream(frames), "Renew the lease.");
  EXPECT_EQ(fake_.chat_requests(), 2);

  // The store the daemon writes (read through its own read-only path while it runs).
  auto store = open_sqlite_store({(dir_.path() / "ticketaid.db").string()});
  ASSERT_TRUE(store) << store.status().to_string();
  auto current = store.value()->find_ticket_session("T-1");
  ASSERT_TRUE(current && current.value());
  EXPECT_EQ(current.value()->prompt, "VPN drops every ten minutes");
  EXPECT_EQ(current.value()->response, "Renew the lease.");
  EXPECT_EQ(current.value()->status, SessionStatus::complete);
  auto revisions = store.value()->list_ticket_revisions("T-1");
  ASSERT_TRUE(revisions);
  ASSERT_EQ(revisions.value().size(), 1u);
  EXPECT_EQ(revisions.value()[0].prompt, "VPN drops every hour");
  EXPECT_EQ(revisions.value()[0].response, "Hello, world.");
}

TEST_F(TicketSocket, RegenerateIgnoresTheCache) {
  REQUIRE_FAKE_OLLAMA();
  start_daemon();
  auto client = open_ticket("42");
  client->send_json({{"ticketBody", "Outlook asks for the password"}});
  ASSERT_EQ(read_reply(*client).back()["type"], "done");
  client->send_json({{"ticketBody", "Outlook asks for the password"}, {"regenerate", true}});
  auto frames = read_reply(*client);
  EXPECT_EQ(frames.front()["type"], "stream");
  EXPECT_EQ(frames.back()["type"], "done");
  EXPECT_EQ(fake_.chat_requests(), 2);
}

TEST_F(TicketSocket, BadTicketIdsAreRefusedBeforeTheUpgrade) {
  start_daemon();
  for (const std::string& id :
       std::vector<std::string>{"bad%20id", std::string(129, 'a'), "a/b", "x%00"}) {
    WsClient client;
    auto result = client.connect(daemon_->port(), "/api/websocket/chat/" + id);
    EXPECT_FALSE(result.upgraded) << id;
    EXPECT_EQ(result.http_status, 400) << id;
    auto body = json::parse(result.body, nullptr, false);
    EXPECT_EQ(body["error"]["code"], "bad_request") << result.body;
  }
  WsClient longest;
  EXPECT_TRUE(
      longest.connect(daemon_->port(), "/api/websocket/chat/" + std::string(128, 'a')).upgraded);
}

TEST_F(TicketSocket, MalformedMessagesGetBadRequestAndTheSocketStaysOpen) {
  start_daemon();
  auto client = open_ticket("7");
  const std::vector<std::string> bad = {"not json",
                                        "[1,2]",
                                        R"({"ticketBody": 5})",
                                        R"({"ticketBody": ""})",
                                        R"({"ticketBody": "x", "regenerate": "yes"})",
                                        R"({"type": "dance"})",
                                        R"({})",
                                        R"({"type": "message"})"};
  for (const auto& text : bad) {
    ASSERT_TRUE(client->send_text(text));
    auto reply = client->read_json();
    ASSERT_TRUE(reply) << text;
    EXPECT_EQ((*reply)["type"], "error") << text;
    EXPECT_EQ((*reply)["code"], "bad_request") << text;
    EXPECT_FALSE((*reply)["message"].get<std::string>().empty());
  }
  client->send_json({{"type", "ping"}});
  auto pong = client->read_json();
  ASSERT_TRUE(pong);
  EXPECT_EQ((*pong)["type"], "pong");
  client->send_json({{"ticketBody", "Still works"}});
  EXPECT_EQ(read_reply(*client).back()["type"], "done");
}

}  // namespace
}  // namespace ticketaid::testing
