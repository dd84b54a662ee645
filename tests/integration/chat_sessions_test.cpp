// Chat sessions end to end (SPEC §3, docs/rest.md "Chat sessions"): one conversation
// carried over HTTP, WebSocket and NDJSON with one history; idempotent and racing
// resends; ticket follow-ups; and a crash in the middle of a reply. The real daemon, a
// real SQLite file and the fake Ollama, which holds a reply (stall, release) wherever
// a test must act in the middle of one. Limits, validation, expiry and listing are in
// chat_session_limits_test.cpp.
#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "integration/chat_fixture.h"

namespace ticketaid::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

class ChatSessions : public ChatDaemonTest {
 protected:
  void SetUp() override {
    if (!using_fake()) GTEST_SKIP() << "scripts the fake Ollama";
  }
};

std::vector<json> of_type(const std::vector<json>& frames, const std::string& type) {
  std::vector<json> out;
  for (const auto& f : frames) {
    if (f.value("type", "") == type) out.push_back(f);
  }
  return out;
}

// Checks what every assistant message of a history carries.
void expect_reply_fields(const json& reply, const std::string& answers) {
  EXPECT_EQ(reply["role"], "assistant") << reply.dump();
  EXPECT_EQ(reply.value("replyTo", ""), answers) << reply.dump();
  EXPECT_EQ(reply.value("model", ""), "llama3.2") << reply.dump();
  EXPECT_TRUE(reply["promptTokens"].is_number_integer()) << reply.dump();
  EXPECT_TRUE(reply["responseTokens"].is_number_integer()) << reply.dump();
  EXPECT_TRUE(reply["durationMs"].is_number_integer()) << reply.dump();
}

TEST_F(ChatSessions, StartedOverHttpContinuedOverWebSocketAndHttpWithOneHistory) {
  start();
  answer_with({"Restart ", "the ", "router."});
  auto started = start_chat("ana", "My VPN drops every hour");
  ASSERT_EQ(started.status, 201) << started.describe();
  const std::string id = started.json["session"].value("id", "");
  ASSERT_FALSE(id.empty()) << started.describe();
  EXPECT_EQ(started.json["session"]["userId"], "ana");
  EXPECT_EQ(started.json["session"]["messageCount"], 2);
  EXPECT_EQ(started.json["message"]["content"], "My VPN drops every hour");
  EXPECT_EQ(started.json["reply"]["content"], "Restart the router.");
  EXPECT_EQ(started.json["reply"]["responseTokens"], 3);
  expect_reply_fields(started.json["reply"], started.json["message"].value("id", ""));

  answer_with({"Check ", "the ", "cable."});
  auto socket = open_session(id);
  auto frames = ws_say(*socket, "It still drops", "ws-1");
  ASSERT_EQ(frames.back()["type"], "done") << frames.back().dump();
  EXPECT_EQ(joined_stream(frames), "Check the cable.");
  EXPECT_EQ(of_type(frames, "stream").size(), 3u);
  EXPECT_EQ(frames.back()["model"], "llama3.2");
  EXPECT_EQ(frames.back()["promptTokens"], 12);
  EXPECT_EQ(frames.back()["responseTokens"], 3);

  answer_with({"Update ", "the ", "client."});
  auto continued = say(id, "Which version?", "http-1");
  ASSERT_EQ(continued.status, 200) << continued.describe();
  EXPECT_EQ(continued.json["message"]["content"], "Which version?");
  EXPECT_EQ(continued.json["message"]["messageId"], "http-1");
  EXPECT_EQ(continued.json["reply"]["content"], "Update the client.");

  // The history: complete, in order, each reply naming the message it answers.
  auto page = history(id);
  ASSERT_EQ(page["total"], 6) << page.dump();
  const json& items = page["items"];
  ASSERT_EQ(items.size(), 6u) << page.dump();
  EXPECT_EQ(contents(page), (std::vector<std::string>{
                                "My VPN drops every hour", "Restart the router.", "It still drops",
                                "Check the cable.", "Which version?", "Update the client."}));
  std::set<std::string> ids;
  for (std::size_t i = 0; i < items.size(); ++i) {
    ids.insert(items[i].value("id", ""));
    if (i % 2 == 0) {
      EXPECT_EQ(items[i]["role"], "user") << items[i].dump();
    } else {
      expect_reply_fields(items[i], items[i - 1].value("id", ""));
    }
    if (i > 0) {
      EXPECT_LE(iso_to_ms(items[i - 1]["createdAt"]), iso_to_ms(items[i]["createdAt"]));
    }
  }
  EXPECT_EQ(ids.size(), 6u) << "every message has its own id";
  EXPECT_EQ(items[0]["id"], started.json["message"]["id"]);
  EXPECT_EQ(items[1]["id"], started.json["reply"]["id"]);
  EXPECT_EQ(items[2]["messageId"], "ws-1");
  EXPECT_EQ(items[4]["id"], continued.json["message"]["id"]);
  EXPECT_EQ(items[5]["id"], continued.json["reply"]["id"]);

  // The same through the other endpoint, and again: stable.
  auto messages = http_get(port(), "/api/sessions/" + id + "/messages?limit=500");
  ASSERT_EQ(messages.status, 200) << messages.describe();
  EXPECT_EQ(messages.json["items"], items);
  EXPECT_EQ(history(id)["items"], items);

  // The model was given the whole conversation each time.
  auto contexts = chat_contexts();
  ASSERT_EQ(contexts.size(), 3u);
  EXPECT_EQ(contexts[2], (Turns{{"system", kSystemPrompt},
                                {"user", "My VPN drops every hour"},
                                {"assistant", "Restart the router."},
                                {"user", "It still drops"},
                                {"assistant", "Check the cable."},
                                {"user", "Which version?"}}));

  auto session = http_get(port(), "/api/sessions/" + id);
  ASSERT_EQ(session.status, 200) << session.describe();
  EXPECT_EQ(session.json["messageCount"], 6);
  EXPECT_EQ(session.json["totalTokens"], 3 * (12 + 3));
  EXPECT_EQ(session.json["lastActivity"], items[5]["createdAt"]);
  EXPECT_EQ(iso_to_ms(session.json["expiresAt"]),
            iso_to_ms(session.json["lastActivity"]) + 3600 * 1000)
      << "sessions.ttl_s defaults to 3600 after the last activity";
}

TEST_F(ChatSessions, BothChatPostsStreamAsNdjson) {
  start();
  answer_with({"Clear ", "the ", "cache."});
  auto started = post_ndjson(port(), "/api/chat/session/start",
                             json({{"userId", "ana"}, {"initialMessage", "Teams is slow"}}).dump());
  EXPECT_EQ(started.http.status, 200) << started.http.describe();
  EXPECT_EQ(started.http.header("Content-Type"), "application/x-ndjson");
  EXPECT_TRUE(started.bad_lines.empty());
  ASSERT_GE(started.lines.size(), 2u) << started.http.describe();
  EXPECT_EQ(started.lines.front()["type"], "session") << started.lines.front().dump();
  const std::string id = started.lines.front()["session"].value("id", "");
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(started.lines.back()["type"], "done") << started.lines.back().dump();
  EXPECT_EQ(joined_stream(started.lines), "Clear the cache.");
  EXPECT_EQ(of_type(started.lines, "stream").size(), 3u);

  answer_with({"Reinstall ", "it."});
  const std::string body =
      json({{"sessionId", id}, {"message", "Still slow"}, {"messageId", "n-1"}}).dump();
  auto continued = post_ndjson(port(), "/api/chat/session", body);
  EXPECT_EQ(continued.http.status, 200) << continued.http.describe();
  ASSERT_FALSE(continued.lines.empty());
  EXPECT_EQ(continued.lines.front()["type"], "stream");
  EXPECT_EQ(continued.lines.back()["type"], "done") << continued.lines.back().dump();
  EXPECT_EQ(joined_stream(continued.lines), "Reinstall it.");

  // A resend streams the stored reply whole.
  auto resent = post_ndjson(port(), "/api/chat/session", body);
  ASSERT_EQ(resent.lines.size(), 2u) << resent.http.describe();
  EXPECT_EQ(resent.lines[0]["type"], "cached");
  EXPECT_EQ(resent.lines[0]["response"], "Reinstall it.");
  EXPECT_EQ(resent.lines[1]["type"], "done");
  EXPECT_EQ(resent.lines[1]["cached"], true);

  EXPECT_EQ(contents(history(id)), (std::vector<std::string>{"Teams is slow", "Clear the cache.",
                                                             "Still slow", "Reinstall it."}));
  EXPECT_EQ(fake_.chat_requests(), 2);
}

TEST_F(ChatSessions, AResendOverWebSocketOrHttpGeneratesNothingNew) {
  start();
  const auto id = new_session("ana");
  auto socket = open_session(id);
  auto first = ws_say(*socket, "Printer jams", "m-1");
  ASSERT_EQ(first.back()["type"], "done") << first.back().dump();
  const std::string answer = joined_stream(first);
  EXPECT_EQ(answer, "Hello, world.");

  auto again = ws_say(*socket, "Printer jams", "m-1");
  ASSERT_EQ(again.size(), 2u);
  EXPECT_EQ(again[0]["type"], "cached") << again[0].dump();
  EXPECT_EQ(again[0]["response"], answer);
  EXPECT_EQ(again[1]["type"], "done");
  EXPECT_EQ(again[1]["cached"], true);

  auto other_socket = open_session(id);
  auto elsewhere = ws_say(*other_socket, "Printer jams", "m-1");
  ASSERT_EQ(elsewhere.size(), 2u);
  EXPECT_EQ(elsewhere[0]["response"], answer);

  auto over_http = say(id, "Printer jams", "m-1");
  ASSERT_EQ(over_http.status, 200) << over_http.describe();
  auto page = history(id);
  ASSERT_EQ(page["items"].size(), 2u) << page.dump();
  EXPECT_EQ(over_http.json["message"]["id"], page["items"][0]["id"]);
  EXPECT_EQ(over_http.json["reply"]["id"], page["items"][1]["id"]);
  EXPECT_EQ(fake_.chat_requests(), 1);

  // And the other way round: sent over HTTP, resent over the socket.
  answer_with({"Use ", "tray ", "2."});
  ASSERT_EQ(say(id, "Which tray?", "m-2").status, 200);
  auto resent = ws_say(*socket, "Which tray?", "m-2");
  ASSERT_EQ(resent.size(), 2u);
  EXPECT_EQ(resent[0]["response"], "Use tray 2.");
  EXPECT_EQ(fake_.chat_requests(), 2);
  EXPECT_EQ(history(id)["total"], 4);
}

TEST_F(ChatSessions, TwoClientsSendingOneMessageIdShareOneGeneration) {
  start();
  const auto id = new_session("ana");
  auto a = open_session(id);
  auto b = open_session(id);

  // B resends while A's reply is held after two tokens: B joins it.
  stall_after(2);
  ASSERT_TRUE(a->send_json({{"type", "message"}, {"content", "Disk full"}, {"messageId", "m-1"}}));
  ASSERT_TRUE(fake_.wait_for_chat_requests(1, 10s));
  ASSERT_TRUE(b->send_json({{"type", "message"}, {"content", "Disk full"}, {"messageId", "m-1"}}));
  std::vector<json> b_frames;
  for (int i = 0; i < 2; ++i) {
    auto frame = b->read_json();
    ASSERT_TRUE(frame) << "B is sent the chunks already cut";
    EXPECT_EQ((*frame)["type"], "stream") << frame->dump();
    EXPECT_EQ((*frame)["seq"], i);
    b_frames.push_back(*frame);
  }
  fake_.release();
  auto a_frames = read_reply(*a);
  auto b_rest = read_reply(*b);
  b_frames.insert(b_frames.end(), b_rest.begin(), b_rest.end());
  ASSERT_EQ(a_frames.back()["type"], "done") << a_frames.back().dump();
  ASSERT_EQ(b_frames.back()["type"], "done") << b_frames.back().dump();
  EXPECT_EQ(joined_stream(a_frames), "Hello, world.");
  EXPECT_EQ(joined_stream(b_frames), "Hello, world.");
  EXPECT_EQ(fake_.chat_requests(), 1);

  // Both at once, nobody waiting: still one generation, both answered.
  answer_with({"Empty ", "the ", "bin."});
  for (auto* client : {a.get(), b.get()}) {
    ASSERT_TRUE(
        client->send_json({{"type", "message"}, {"content", "Still full"}, {"messageId", "m-2"}}));
  }
  for (auto* client : {a.get(), b.get()}) {
    auto reply = read_reply(*client);
    ASSERT_EQ(reply.back()["type"], "done") << reply.back().dump();
    const bool cached = reply.front()["type"] == "cached";
    EXPECT_EQ(cached ? reply.front().value("response", "") : joined_stream(reply),
              "Empty the bin.");
  }
  EXPECT_EQ(fake_.chat_requests(), 2);
  EXPECT_EQ(contents(history(id)), (std::vector<std::string>{"Disk full", "Hello, world.",
                                                             "Still full", "Empty the bin."}));
}

TEST_F(ChatSessions, TicketFollowUpsAreAnsweredWithTheTicketAsContext) {
  start();
  auto ticket = open_ticket("T-7");
  answer_with({"Replace ", "the ", "toner."});
  ASSERT_TRUE(ticket->send_json({{"ticketBody", "Printer prints blank pages"}}));
  ASSERT_EQ(read_reply(*ticket).back()["type"], "done");

  answer_with({"The ", "TN-2420."});
  auto reply = ws_say(*ticket, "Which toner?", "f-1");
  ASSERT_EQ(reply.back()["type"], "done") << reply.back().dump();
  EXPECT_EQ(joined_stream(reply), "The TN-2420.");
  auto contexts = chat_contexts();
  ASSERT_EQ(contexts.size(), 2u);
  EXPECT_EQ(contexts[1], (Turns{{"system", kSystemPrompt},
                                {"user", "Printer prints blank pages"},
                                {"assistant", "Replace the toner."},
                                {"user", "Which toner?"}}));

  auto conversation = http_get(port(), "/api/tickets/T-7/conversation");
  ASSERT_EQ(conversation.status, 200) << conversation.describe();
  EXPECT_EQ(conversation.json["total"], 4);
  EXPECT_EQ(contents(conversation.json),
            (std::vector<std::string>{"Printer prints blank pages", "Replace the toner.",
                                      "Which toner?", "The TN-2420."}));
  const json& items = conversation.json["items"];
  ASSERT_EQ(items.size(), 4u);
  EXPECT_EQ(items[2]["messageId"], "f-1");
  EXPECT_EQ(items[3]["replyTo"], items[2]["id"]);

  auto resent = ws_say(*ticket, "Which toner?", "f-1");
  ASSERT_EQ(resent.size(), 2u);
  EXPECT_EQ(resent[0]["response"], "The TN-2420.");
  EXPECT_EQ(fake_.chat_requests(), 2);

  // No answer yet, no follow-up.
  auto fresh = open_ticket("T-8");
  auto early = ws_say(*fresh, "Anything?");
  ASSERT_EQ(early.size(), 1u);
  EXPECT_EQ(early[0]["code"], "bad_request") << early[0].dump();
  EXPECT_EQ(http_get(port(), "/api/tickets/T-8/conversation").status, 404);
  EXPECT_EQ(fake_.chat_requests(), 2);
}

TEST_F(ChatSessions, AKillDuringAReplyKeepsEveryAnsweredMessageAndTheResendIsAnswered) {
  start();
  answer_with({"Reboot."});
  auto started = start_chat("ana", "Screen flickers");
  ASSERT_EQ(started.status, 201) << started.describe();
  const std::string id = started.json["session"].value("id", "");
  auto socket = open_session(id);
  answer_with({"Swap ", "the ", "cable."});
  ASSERT_EQ(ws_say(*socket, "Still flickers", "m-2").back()["type"], "done");
  const json answered = history(id)["items"];
  ASSERT_EQ(answered.size(), 4u);

  stall_after(2);
  ASSERT_TRUE(socket->send_json(
      {{"type", "message"}, {"content", "Now it is black"}, {"messageId", "m-3"}}));
  for (int i = 0; i < 2; ++i) {
    auto frame = socket->read_json();
    ASSERT_TRUE(frame);
    ASSERT_EQ((*frame)["type"], "stream") << frame->dump();
  }
  daemon_->kill9();
  EXPECT_TRUE(fake_.wait_for_client_abort(10s));
  socket.reset();

  answer_with({"Check ", "the ", "power."});
  start();
  auto after = history(id);
  ASSERT_EQ(after["total"], 5) << after.dump();
  for (std::size_t i = 0; i < answered.size(); ++i) {
    EXPECT_EQ(after["items"][i], answered[i]) << "message " << i << " survives unchanged";
  }
  EXPECT_EQ(after["items"][4]["content"], "Now it is black");
  EXPECT_EQ(after["items"][4]["messageId"], "m-3");
  const int asked = fake_.chat_requests();

  auto again = open_session(id);
  auto reply = ws_say(*again, "Now it is black", "m-3");
  ASSERT_EQ(reply.back()["type"], "done") << reply.back().dump();
  EXPECT_EQ(joined_stream(reply), "Check the power.");
  EXPECT_EQ(fake_.chat_requests(), asked + 1);
  auto final_page = history(id);
  ASSERT_EQ(final_page["total"], 6) << final_page.dump();
  EXPECT_EQ(final_page["items"][5]["replyTo"], after["items"][4]["id"]);
  EXPECT_EQ(chat_contexts().back(), (Turns{{"system", kSystemPrompt},
                                           {"user", "Screen flickers"},
                                           {"assistant", "Reboot."},
                                           {"user", "Still flickers"},
                                           {"assistant", "Swap the cable."},
                                           {"user", "Now it is black"}}));
}

}  // namespace
}  // namespace ticketaid::testing
