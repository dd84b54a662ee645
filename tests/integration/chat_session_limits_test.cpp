// The rules around chat sessions end to end (SPEC §3, §5, §7; docs/rest.md "Rules"):
// every limit set small through the environment (and the legacy names helpdesks
// already use), validation, expiry, pagination, deletion and the per-user listing.
// Every refusal is checked to have stored nothing and asked the model nothing.
#include <gtest/gtest.h>

#include <string>

#include "integration/chat_fixture.h"
#include "store/store.h"

namespace ticketaid::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

class ChatSessionsLimits : public ChatDaemonTest {
 protected:
  void SetUp() override {
    if (!using_fake()) GTEST_SKIP() << "counts the fake Ollama's requests";
  }

  std::vector<std::string> listed(const std::string& user, const std::string& query = "") {
    auto page = http_get(port(), "/api/users/" + user + "/sessions" + query);
    EXPECT_EQ(page.status, 200) << page.describe();
    std::vector<std::string> ids;
    for (const auto& s : page.json.value("items", json::array()))
      ids.push_back(s.value("id", ""));
    return ids;
  }
  int64_t total(const std::string& path) {
    auto page = http_get(port(), path);
    EXPECT_EQ(page.status, 200) << page.describe();
    return page.json.value("total", int64_t{-1});
  }
};

std::string repeat(const std::string& piece, int times) {
  std::string out;
  for (int i = 0; i < times; ++i)
    out += piece;
  return out;
}

TEST_F(ChatSessionsLimits, AUserOverMaxPerUserIsRefused) {
  start({{"TICKETAID_SESSIONS_MAX_PER_USER", "2"}});
  const auto first = new_session("ana");
  ASSERT_EQ(start_chat("ana", "hello").status, 201);
  auto third = create_session("ana");
  EXPECT_EQ(third.status, 409) << third.describe();
  EXPECT_EQ(third.error_code(), "session_limit");
  auto started = start_chat("ana", "one more");
  EXPECT_EQ(started.status, 409) << started.describe();
  EXPECT_EQ(started.error_code(), "session_limit");
  EXPECT_EQ(fake_.chat_requests(), 1) << "a refused start asks the model nothing";
  EXPECT_EQ(total("/api/users/ana/sessions"), 2);
  EXPECT_EQ(http_get(port(), "/api/sessions/" + first).status, 200);
  EXPECT_EQ(create_session("bob").status, 201) << "the limit is per user";
}

TEST_F(ChatSessionsLimits, EvictOldestDeletesTheLeastRecentlyActiveSession) {
  start(
      {{"TICKETAID_SESSIONS_MAX_PER_USER", "2"}, {"TICKETAID_SESSIONS_ON_LIMIT", "evict_oldest"}});
  const auto s1 = new_session("ana");
  auto s2_created = create_session("ana");
  ASSERT_EQ(s2_created.status, 201);
  const std::string s2 = s2_created.json.value("id", "");
  ASSERT_TRUE(wall_clock_passes(s2_created.json.value("lastActivity", "")));
  ASSERT_EQ(append(s1, "user", "still using this one").status, 201);

  const auto s3 = new_session("ana");
  EXPECT_EQ(http_get(port(), "/api/sessions/" + s2).status, 404) << "the least recently active";
  EXPECT_EQ(http_get(port(), "/api/sessions/" + s2 + "/messages").status, 404);
  EXPECT_EQ(http_get(port(), "/api/sessions/" + s1).status, 200);
  EXPECT_EQ(listed("ana"), (std::vector<std::string>{s3, s1}));

  const auto s4 = new_session("ana");
  EXPECT_EQ(http_get(port(), "/api/sessions/" + s1).status, 404);
  EXPECT_EQ(listed("ana"), (std::vector<std::string>{s4, s3}));
}

TEST_F(ChatSessionsLimits, AFullSessionRefusesMessagesAndLosesNothing) {
  start({{"TICKETAID_SESSIONS_MAX_MESSAGES", "4"}});
  auto started = start_chat("ana", "one");
  ASSERT_EQ(started.status, 201);
  const std::string id = started.json["session"].value("id", "");
  ASSERT_EQ(say(id, "two", "m-2").status, 200);
  const json before = history(id);
  ASSERT_EQ(before["total"], 4);

  auto over_http = say(id, "three");
  EXPECT_EQ(over_http.status, 409) << over_http.describe();
  EXPECT_EQ(over_http.error_code(), "session_full");
  auto appended = append(id, "system", "a note");
  EXPECT_EQ(appended.status, 409) << appended.describe();
  EXPECT_EQ(appended.error_code(), "session_full");
  auto socket = open_session(id);
  auto over_ws = ws_say(*socket, "three");
  ASSERT_EQ(over_ws.size(), 1u);
  EXPECT_EQ(over_ws[0]["code"], "session_full") << over_ws[0].dump();

  // What was stored stays, and a resend of it is still answered.
  EXPECT_EQ(history(id), before);
  auto resent = say(id, "two", "m-2");
  EXPECT_EQ(resent.status, 200) << resent.describe();
  EXPECT_EQ(resent.json["reply"]["id"], before["items"][3]["id"]);
  EXPECT_EQ(fake_.chat_requests(), 2);
}

TEST_F(ChatSessionsLimits, MessageLengthCountsCharactersNotBytes) {
  start({{"TICKETAID_SESSIONS_MAX_MESSAGE_CHARS", "10"}});
  const std::string ten_e = repeat("\xC3\xA9", 10);              // 10 characters, 20 bytes
  const std::string ten_emoji = repeat("\xF0\x9F\x99\x82", 10);  // 10 characters, 40 bytes
  const std::string eleven_e = repeat("\xC3\xA9", 11);           // 11 characters
  auto refused_start = start_chat("ana", eleven_e);
  EXPECT_EQ(refused_start.status, 413) << refused_start.describe();
  EXPECT_EQ(refused_start.error_code(), "too_large");
  EXPECT_EQ(total("/api/users/ana/sessions"), 0) << "no session was made";

  auto started = start_chat("ana", ten_e);
  ASSERT_EQ(started.status, 201) << started.describe();
  const std::string id = started.json["session"].value("id", "");
  EXPECT_EQ(started.json["message"]["content"], ten_e);
  EXPECT_EQ(append(id, "user", ten_emoji).status, 201);
  EXPECT_EQ(append(id, "user", "0123456789").status, 201);

  auto too_long = say(id, eleven_e);
  EXPECT_EQ(too_long.status, 413) << too_long.describe();
  EXPECT_EQ(too_long.error_code(), "too_large");
  auto appended = append(id, "user", "0123456789a");
  EXPECT_EQ(appended.status, 413) << appended.describe();
  auto socket = open_session(id);
  auto over_ws = ws_say(*socket, repeat("\xF0\x9F\x99\x82", 11));
  ASSERT_EQ(over_ws.size(), 1u);
  EXPECT_EQ(over_ws[0]["code"], "too_large") << over_ws[0].dump();

  EXPECT_EQ(contents(history(id)),
            (std::vector<std::string>{ten_e, "Hello, world.", ten_emoji, "0123456789"}));
  EXPECT_EQ(fake_.chat_requests(), 1);
}

TEST_F(ChatSessionsLimits, AStartWithoutTitleTakesOneOfWholeCharacters) {
  start();
  // 81 bytes: the 80-byte cut of a title would split the last "é".
  const std::string initial = "a" + repeat("\xC3\xA9", 40);
  auto started = start_chat("ana", initial);
  ASSERT_EQ(started.status, 201) << started.describe();
  const std::string title = started.json["session"].value("title", "");
  EXPECT_FALSE(title.empty());
  EXPECT_EQ(initial.rfind(title, 0), 0u) << "the title is the message's beginning";
  auto listed_page = http_get(port(), "/api/users/ana/sessions");
  EXPECT_EQ(listed_page.status, 200) << listed_page.describe();
}

TEST_F(ChatSessionsLimits, LegacyEnvironmentNamesSetTheLimits) {
  start({{"SESSION_TTL", "120"},
         {"MAX_SESSIONS_PER_USER", "1"},
         {"MAX_MESSAGES_PER_SESSION", "2"},
         {"MAX_MESSAGE_LENGTH", "5"}});
  auto created = create_session("ana");
  ASSERT_EQ(created.status, 201) << created.describe();
  const std::string id = created.json.value("id", "");
  EXPECT_EQ(iso_to_ms(created.json["expiresAt"]),
            iso_to_ms(created.json["lastActivity"]) + 120 * 1000);
  EXPECT_EQ(create_session("ana").error_code(), "session_limit");
  EXPECT_EQ(say(id, "123456").error_code(), "too_large");
  EXPECT_EQ(say(id, "12345").status, 200);
  EXPECT_EQ(say(id, "abc").error_code(), "session_full");
  EXPECT_EQ(fake_.chat_requests(), 1);

  // A TICKETAID_* name wins over the legacy one.
  daemon_->stop();
  start({{"MAX_SESSIONS_PER_USER", "1"}, {"TICKETAID_SESSIONS_MAX_PER_USER", "2"}});
  EXPECT_EQ(create_session("bob").status, 201);
  EXPECT_EQ(create_session("bob").status, 201);
  EXPECT_EQ(create_session("bob").error_code(), "session_limit");
}

TEST_F(ChatSessionsLimits, MalformedRequestsAreBadRequestsAndStoreNothing) {
  start();
  const auto id = new_session("ana");
  auto expect_400 = [&](const HttpResult& r, const std::string& what) {
    EXPECT_EQ(r.status, 400) << what << ": " << r.describe();
    EXPECT_EQ(r.error_code(), "bad_request") << what << ": " << r.describe();
  };
  const std::string messages = "/api/sessions/" + id + "/messages";
  expect_400(append(id, "robot", "hi"), "unknown role");
  expect_400(http_post(port(), messages, {{"content", "hi"}}), "no role");
  expect_400(append(id, "user", ""), "empty content");
  expect_400(http_post(port(), messages, {{"role", "user"}, {"content", 5}}), "content a number");
  expect_400(
      http_post(port(), messages, {{"role", "user"}, {"content", "hi"}, {"messageId", "a b"}}),
      "messageId with a space");
  expect_400(say(id, ""), "empty message");
  expect_400(say(id, "hi", "bad/id"), "messageId with a slash");
  expect_400(say(id, "hi", std::string(129, 'x')), "messageId of 129 characters");
  expect_400(say("not a session!", "hi"), "bad session id");
  expect_400(say(std::string(65, 'a'), "hi"), "session id of 65 characters");
  expect_400(http_post(port(), "/api/chat/session", {{"sessionId", id}, {"message", 5}}),
             "message a number");
  expect_400(http_post(port(), "/api/chat/session", {{"message", "hi"}}), "no sessionId");
  expect_400(start_chat("ana smith", "hi"), "userId with a space");
  expect_400(http_post(port(), "/api/chat/session/start", {{"userId", "ana"}}),
             "no initialMessage");
  expect_400(start_chat("ana", ""), "empty initialMessage");
  expect_400(create_session(""), "empty userId");
  expect_400(
      http_post(port(), "/api/sessions", {{"userId", "ana"}, {"title", std::string(501, 't')}}),
      "a title of 501 bytes");
  expect_400(
      http_post(port(), "/api/chat/session/start",
                {{"userId", "ana"}, {"title", std::string(501, 't')}, {"initialMessage", "hi"}}),
      "a title of 501 bytes to start a chat");
  expect_400(http_get(port(), "/api/sessions/bad!id"), "bad id in the path");
  expect_400(http_get(port(), "/api/sessions/" + std::string(65, 'a') + "/messages"),
             "too long an id in the path");

  // Text that is not UTF-8: raw bytes, or a lone surrogate escaped in the JSON.
  expect_400(http_call(port(), "POST", "/api/chat/session",
                       "{\"sessionId\": \"" + id + "\", \"message\": \"caf\xC3\"}"),
             "a cut UTF-8 sequence");
  expect_400(http_call(port(), "POST", messages, "{\"role\": \"user\", \"content\": \"\xFF\xFE\"}"),
             "0xff bytes");
  expect_400(http_call(port(), "POST", "/api/chat/session",
                       "{\"sessionId\": \"" + id + "\", \"message\": \"\\ud800\"}"),
             "a lone surrogate");
  expect_400(http_call(port(), "POST", "/api/chat/session", "not json"), "not JSON");
  expect_400(http_call(port(), "POST", "/api/chat/session", "[1, 2]"), "not an object");

  auto socket = open_session(id);
  for (const json& bad :
       {json{{"type", "message"}, {"content", ""}}, json{{"type", "message"}, {"content", 5}},
        json{{"type", "message"}, {"content", "hi"}, {"messageId", 5}},
        json{{"type", "message"}, {"content", "hi"}, {"messageId", "a b"}},
        json{{"ticketBody", "a ticket on a chat socket"}}}) {
    ASSERT_TRUE(socket->send_json(bad));
    auto reply = socket->read_json();
    ASSERT_TRUE(reply) << bad.dump();
    EXPECT_EQ((*reply)["type"], "error") << bad.dump() << " -> " << reply->dump();
    EXPECT_EQ((*reply)["code"], "bad_request") << bad.dump() << " -> " << reply->dump();
  }
  ASSERT_TRUE(socket->send_json({{"type", "ping"}}));
  auto pong = socket->read_json();
  ASSERT_TRUE(pong) << "the socket stays open";
  EXPECT_EQ((*pong)["type"], "pong");

  EXPECT_EQ(history(id)["total"], 0) << "nothing was stored";
  EXPECT_EQ(fake_.chat_requests(), 0);
  EXPECT_EQ(total("/api/users/ana/sessions"), 1);

  // An escaped surrogate pair is one character, and fine.
  auto emoji = http_call(port(), "POST", "/api/chat/session",
                         "{\"sessionId\": \"" + id + "\", \"message\": \"\\ud83d\\ude42\"}");
  EXPECT_EQ(emoji.status, 200) << emoji.describe();
  EXPECT_EQ(emoji.json["message"]["content"], "\xF0\x9F\x99\x82");
}

TEST_F(ChatSessionsLimits, ASessionExpiresTtlAfterItsLastActivityAndIsPurged) {
  start({{"TICKETAID_SESSIONS_TTL_S", "2"}, {"TICKETAID_SESSIONS_PURGE_INTERVAL_S", "1"}});
  auto started = start_chat("ana", "hello");
  ASSERT_EQ(started.status, 201) << started.describe();
  const json& session = started.json["session"];
  const std::string id = session.value("id", "");
  EXPECT_EQ(iso_to_ms(session["expiresAt"]), iso_to_ms(session["lastActivity"]) + 2000);
  EXPECT_EQ(session["lastActivity"], started.json["reply"]["createdAt"]);

  // Gone within the TTL and one sweep, for every way in.
  ASSERT_TRUE(
      wait_until([&] { return http_get(port(), "/api/sessions/" + id).status == 404; }, 10s));
  EXPECT_EQ(http_get(port(), "/api/sessions/" + id + "/messages").status, 404);
  EXPECT_EQ(http_get(port(), "/api/chat/session/" + id + "/history").status, 404);
  EXPECT_EQ(say(id, "still there?").error_code(), "not_found");
  auto socket = open_session(id);
  auto over_ws = ws_say(*socket, "still there?");
  ASSERT_EQ(over_ws.size(), 1u);
  EXPECT_EQ(over_ws[0]["code"], "not_found") << over_ws[0].dump();
  EXPECT_TRUE(listed("ana").empty());

  // And the sweep deletes the row with its messages.
  auto opened = open_sqlite_store({db_path().string()});
  ASSERT_TRUE(opened.is_ok()) << opened.status().to_string();
  auto& store = *opened.value();
  EXPECT_TRUE(wait_until([&] {
    auto found = store.find_conversation(id);
    return found.is_ok() && !found.value().has_value();
  })) << "purged";
  EXPECT_EQ(fake_.chat_requests(), 1);
}

TEST_F(ChatSessionsLimits, PagesHaveExactEdges) {
  start();
  auto started = start_chat("ana", "one");
  ASSERT_EQ(started.status, 201);
  const std::string id = started.json["session"].value("id", "");
  ASSERT_EQ(say(id, "two").status, 200);

  for (const std::string& base :
       {"/api/chat/session/" + id + "/history", "/api/sessions/" + id + "/messages"}) {
    auto past = http_get(port(), base + "?offset=10");
    ASSERT_EQ(past.status, 200) << past.describe();
    EXPECT_EQ(past.json["items"], json::array());
    EXPECT_EQ(past.json["total"], 4);
    EXPECT_EQ(past.json["offset"], 10);
    EXPECT_EQ(past.json["limit"], 50);

    auto middle = http_get(port(), base + "?limit=2&offset=1");
    ASSERT_EQ(middle.status, 200) << middle.describe();
    EXPECT_EQ(contents(middle.json), (std::vector<std::string>{"Hello, world.", "two"}));
    EXPECT_EQ(middle.json["total"], 4);

    auto last = http_get(port(), base + "?offset=4");
    EXPECT_EQ(last.json["items"], json::array());
    EXPECT_EQ(http_get(port(), base + "?offset=3").json["items"].size(), 1u);
    EXPECT_EQ(http_get(port(), base + "?limit=500").status, 200);
    for (const char* bad :
         {"limit=0", "limit=501", "limit=-1", "limit=x", "offset=-1", "offset=y"}) {
      auto refused = http_get(port(), base + "?" + bad);
      EXPECT_EQ(refused.status, 400) << base << "?" << bad << ": " << refused.describe();
      EXPECT_EQ(refused.error_code(), "bad_request");
    }
  }
  auto users = http_get(port(), "/api/users/ana/sessions?offset=5");
  ASSERT_EQ(users.status, 200) << users.describe();
  EXPECT_EQ(users.json["items"], json::array());
  EXPECT_EQ(users.json["total"], 1);
  EXPECT_EQ(http_get(port(), "/api/users/ana/sessions?limit=501").status, 400);
}

TEST_F(ChatSessionsLimits, DeleteRemovesTheSessionAndItsMessages) {
  start();
  auto started = start_chat("ana", "one");
  ASSERT_EQ(started.status, 201);
  const std::string id = started.json["session"].value("id", "");
  const auto keep = new_session("ana");

  auto deleted = del("/api/sessions/" + id);
  EXPECT_EQ(deleted.status, 204) << deleted.describe();
  EXPECT_TRUE(deleted.body.empty());
  EXPECT_EQ(http_get(port(), "/api/sessions/" + id + "/messages").status, 404);
  EXPECT_EQ(http_get(port(), "/api/chat/session/" + id + "/history").status, 404);
  EXPECT_EQ(http_get(port(), "/api/sessions/" + id).error_code(), "not_found");
  EXPECT_EQ(say(id, "two").status, 404);
  EXPECT_EQ(del("/api/sessions/" + id).status, 404);
  EXPECT_EQ(listed("ana"), (std::vector<std::string>{keep}));

  auto opened = open_sqlite_store({db_path().string()});
  ASSERT_TRUE(opened.is_ok()) << opened.status().to_string();
  EXPECT_EQ(opened.value()->list_messages(id, 10, 0).status().code(), ErrorCode::not_found);
  EXPECT_EQ(fake_.chat_requests(), 1);
}

TEST_F(ChatSessionsLimits, AUsersSessionsAreListedMostRecentlyActiveFirst) {
  start();
  const auto s1 = new_session("bob");
  const auto s2 = new_session("bob");
  auto s3_created = create_session("bob");
  ASSERT_EQ(s3_created.status, 201);
  const std::string s3 = s3_created.json.value("id", "");
  new_session("eve");
  EXPECT_EQ(listed("bob"), (std::vector<std::string>{s3, s2, s1}));

  ASSERT_TRUE(wall_clock_passes(s3_created.json.value("lastActivity", "")));
  ASSERT_EQ(say(s1, "back to this one").status, 200);
  EXPECT_EQ(listed("bob"), (std::vector<std::string>{s1, s3, s2}));
  EXPECT_EQ(listed("bob", "?limit=1&offset=1"), (std::vector<std::string>{s3}));
  EXPECT_EQ(total("/api/users/bob/sessions?limit=1"), 3);

  auto page = http_get(port(), "/api/users/bob/sessions");
  ASSERT_EQ(page.status, 200);
  const json& first = page.json["items"][0];
  EXPECT_EQ(first["userId"], "bob");
  EXPECT_EQ(first["messageCount"], 2);
  EXPECT_LT(iso_to_ms(first["createdAt"]), iso_to_ms(first["lastActivity"]));
}

}  // namespace
}  // namespace ticketaid::testing
