// Unit tests of the chat half of the SQLite store (sessions, messages, replies,
// limits, purging, the migration that added them) against real database files in
// temporary directories. RawDb sets rows up and checks what the store wrote; the
// concurrency tests spawn their own threads and share only the Store.
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "store/sqlite_fixture.h"
#include "store/store.h"

namespace ticketaid {
namespace {

using store_test::RawDb;

class SqliteChatTest : public store_test::SqliteFileTest {
 protected:
  ConversationInfo create(const std::string& user, SessionLimits limits = {}) {
    auto created = store_->create_chat_session(user, "a title", "llama3.2", limits);
    EXPECT_TRUE(created.is_ok()) << created.status().to_string();
    return created.is_ok() ? created.value() : ConversationInfo{};
  }

  StoredMessage append(const std::string& conversation, const std::string& content,
                       const std::string& client_id = "", int max_messages = 100) {
    auto appended = store_->append_message(conversation, "user", content, client_id, max_messages);
    EXPECT_TRUE(appended.is_ok()) << appended.status().to_string();
    return appended.is_ok() ? appended->message : StoredMessage{};
  }

  StoredMessage reply(const std::string& conversation, const std::string& to,
                      const std::string& content, GenerationStats stats = {}) {
    auto stored = store_->store_reply(conversation, to, content, stats);
    EXPECT_TRUE(stored.is_ok()) << stored.status().to_string();
    return stored.is_ok() ? stored.value() : StoredMessage{};
  }

  ConversationInfo find(const std::string& id) {
    auto found = store_->find_conversation(id);
    EXPECT_TRUE(found.is_ok() && found.value().has_value()) << id;
    return found.is_ok() && found.value() ? *found.value() : ConversationInfo{};
  }

  // Sets a conversation's last activity, so that orderings do not hang on the clock.
  void set_last_activity(const std::string& id, int64_t ms) {
    RawDb(options_.path)
        .exec("UPDATE conversations SET updated_at = " + std::to_string(ms) + " WHERE id = '" + id +
              "'");
  }

  std::string count(const std::string& sql) { return RawDb(options_.path).text(sql); }

  // A complete ticket answer; returns its conversation id.
  std::string ticket(const std::string& ticket_id) {
    auto begun = store_->begin_ticket_generation(ticket_id, "printer on fire", "llama3.2");
    EXPECT_TRUE(begun.is_ok());
    GenerationStats stats{"llama3.2", 10, 20, 300, "stop"};
    EXPECT_TRUE(store_->complete_ticket_generation(ticket_id, 1, "call facilities", stats));
    return begun.is_ok() ? begun->conversation_id : "";
  }
};

TEST_F(SqliteChatTest, CreateAndFindWithMetadata) {
  open();
  ConversationInfo created = create("alice");
  EXPECT_EQ(created.id.size(), 32u);
  EXPECT_EQ(created.kind, "chat");
  EXPECT_EQ(created.user_id, "alice");
  EXPECT_TRUE(created.ticket_id.empty());
  EXPECT_EQ(created.title, "a title");
  EXPECT_EQ(created.model, "llama3.2");
  EXPECT_GT(created.created_at_ms, 0);
  EXPECT_EQ(created.last_activity_ms, created.created_at_ms);
  EXPECT_EQ(created.message_count, 0);
  EXPECT_EQ(created.total_tokens, 0);
  EXPECT_FALSE(created.avg_response_ms.has_value());

  ConversationInfo found = find(created.id);
  EXPECT_EQ(found.id, created.id);
  EXPECT_EQ(found.user_id, "alice");
  EXPECT_EQ(found.created_at_ms, created.created_at_ms);
  EXPECT_EQ(count("SELECT status FROM conversations WHERE id = '" + created.id + "'"), "active");

  auto missing = store_->find_conversation("no-such-id");
  ASSERT_TRUE(missing.is_ok());
  EXPECT_FALSE(missing.value().has_value());
}

TEST_F(SqliteChatTest, FindsATicketConversation) {
  open();
  std::string id = ticket("T-1");
  ConversationInfo found = find(id);
  EXPECT_EQ(found.kind, "ticket");
  EXPECT_EQ(found.ticket_id, "T-1");
  EXPECT_TRUE(found.user_id.empty());
  EXPECT_EQ(found.message_count, 2);
  EXPECT_EQ(found.total_tokens, 30);
  EXPECT_EQ(found.avg_response_ms, 300);
}

TEST_F(SqliteChatTest, MetadataAggregatesTheReplies) {
  open();
  std::string id = create("alice").id;
  StoredMessage first = append(id, "one");
  reply(id, first.id, "answer one", GenerationStats{"llama3.2", 10, 20, 300, "stop"});
  StoredMessage second = append(id, "two");
  reply(id, second.id, "answer two", GenerationStats{"llama3.2", 5, std::nullopt, 101, "stop"});
  StoredMessage third = append(id, "three");
  reply(id, third.id, "answer three", GenerationStats{"llama3.2", 1, 1, std::nullopt, "length"});
  ASSERT_TRUE(store_->append_message(id, "system", "be brief", "", 100).is_ok());

  ConversationInfo info = find(id);
  EXPECT_EQ(info.message_count, 7);
  EXPECT_EQ(info.total_tokens, 10 + 20 + 5 + 1 + 1);
  EXPECT_EQ(info.avg_response_ms, 201);  // (300 + 101) / 2, rounded; the third has none
  auto listed = store_->list_user_sessions("alice", 10, 0);
  ASSERT_TRUE(listed.is_ok());
  ASSERT_EQ(listed->items.size(), 1u);
  EXPECT_EQ(listed->items[0].message_count, 7);
  EXPECT_EQ(listed->items[0].total_tokens, info.total_tokens);
  EXPECT_EQ(listed->items[0].avg_response_ms, 201);
}

TEST_F(SqliteChatTest, SessionLimitRejects) {
  open();
  SessionLimits limits{2, false};
  create("alice", limits);
  create("alice", limits);
  auto third = store_->create_chat_session("alice", "", "", limits);
  ASSERT_FALSE(third.is_ok());
  EXPECT_EQ(third.status().code(), ErrorCode::session_limit);
  EXPECT_NE(third.status().message().find("sessions.max_per_user = 2"), std::string::npos)
      << third.status().message();
  EXPECT_EQ(count("SELECT count(*) FROM conversations WHERE user_id = 'alice'"), "2");
  create("bob", limits);  // a limit per user
}

TEST_F(SqliteChatTest, SessionLimitEvictsTheLeastRecentlyActive) {
  open();
  SessionLimits limits{2, true};
  std::string older = create("alice", limits).id;
  std::string newer = create("alice", limits).id;
  append(older, "hello");
  append(older, "again");
  set_last_activity(older, 1000);
  set_last_activity(newer, 2000);

  std::string third = create("alice", limits).id;
  EXPECT_FALSE(store_->find_conversation(older).value().has_value());
  EXPECT_TRUE(store_->find_conversation(newer).value().has_value());
  EXPECT_EQ(count("SELECT count(*) FROM messages WHERE conversation_id = '" + older + "'"), "0");
  EXPECT_EQ(store_->list_user_sessions("alice", 10, 0)->total, 2);

  // A limit lowered since: down to one below it before the new one goes in.
  std::string fourth = create("alice", SessionLimits{1, true}).id;
  auto left = store_->list_user_sessions("alice", 10, 0);
  ASSERT_TRUE(left.is_ok());
  ASSERT_EQ(left->items.size(), 1u);
  EXPECT_EQ(left->items[0].id, fourth);
}

TEST_F(SqliteChatTest, ListUserSessionsMostRecentlyActiveFirstInPages) {
  open();
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    ids.push_back(create("alice", SessionLimits{10, false}).id);
    set_last_activity(ids.back(), 1000 + 10 * ((i * 3) % 5));  // 1000 1030 1010 1040 1020
  }
  create("bob");
  std::vector<std::string> expected = {ids[3], ids[1], ids[4], ids[2], ids[0]};

  std::vector<std::string> seen;
  for (int offset = 0; offset < 6; offset += 2) {
    auto page = store_->list_user_sessions("alice", 2, offset);
    ASSERT_TRUE(page.is_ok()) << page.status().to_string();
    EXPECT_EQ(page->total, 5);
    EXPECT_EQ(page->items.size(), offset < 4 ? 2u : 1u);
    for (const auto& item : page->items) {
      EXPECT_EQ(item.user_id, "alice");
      seen.push_back(item.id);
    }
  }
  EXPECT_EQ(seen, expected);
  EXPECT_EQ(store_->list_user_sessions("alice", 2, 40)->items.size(), 0u);
  EXPECT_EQ(store_->list_user_sessions("alice", 2, 40)->total, 5);
  EXPECT_EQ(store_->list_user_sessions("carol", 10, 0)->total, 0);
  EXPECT_EQ(store_->list_user_sessions("alice", -1, 0).status().code(), ErrorCode::bad_request);
  EXPECT_EQ(store_->list_user_sessions("alice", 1, -1).status().code(), ErrorCode::bad_request);
}

TEST_F(SqliteChatTest, AppendAndIdempotentResend) {
  open();
  std::string id = create("alice").id;
  set_last_activity(id, 1);
  auto first = store_->append_message(id, "user", "my VPN drops", "m-1", 100);
  ASSERT_TRUE(first.is_ok()) << first.status().to_string();
  EXPECT_FALSE(first->existed);
  EXPECT_FALSE(first->reply.has_value());
  EXPECT_EQ(first->message.seq, 0);
  EXPECT_EQ(first->message.role, "user");
  EXPECT_EQ(first->message.client_message_id, "m-1");
  EXPECT_EQ(first->message.id.size(), 32u);
  EXPECT_EQ(find(id).last_activity_ms, first->message.created_at_ms);

  auto again = store_->append_message(id, "user", "my VPN drops (resent)", "m-1", 100);
  ASSERT_TRUE(again.is_ok());
  EXPECT_TRUE(again->existed);
  EXPECT_EQ(again->message.id, first->message.id);
  EXPECT_EQ(again->message.content, "my VPN drops");
  EXPECT_FALSE(again->reply.has_value());

  StoredMessage answer = reply(id, first->message.id, "renew the lease");
  auto third = store_->append_message(id, "user", "my VPN drops", "m-1", 100);
  ASSERT_TRUE(third.is_ok());
  EXPECT_TRUE(third->existed);
  ASSERT_TRUE(third->reply.has_value());
  EXPECT_EQ(third->reply->id, answer.id);
  EXPECT_EQ(third->reply->content, "renew the lease");

  // The same messageId in another session is another message; none at all never matches.
  std::string other = create("alice").id;
  EXPECT_FALSE(store_->append_message(other, "user", "x", "m-1", 100)->existed);
  EXPECT_EQ(append(id, "no id").seq, 2);
  EXPECT_EQ(append(id, "no id").seq, 3);
  EXPECT_EQ(count("SELECT count(*) FROM messages"), "5");
}

TEST_F(SqliteChatTest, AppendChecksItsArguments) {
  open();
  std::string id = create("alice").id;
  EXPECT_EQ(store_->append_message("nope", "user", "x", "", 100).status().code(),
            ErrorCode::not_found);
  EXPECT_EQ(store_->append_message(id, "robot", "x", "", 100).status().code(),
            ErrorCode::bad_request);
  EXPECT_EQ(store_->append_message(id, "user", "x", "", 0).status().code(), ErrorCode::bad_request);
  EXPECT_EQ(store_->create_chat_session("", "", "", {}).status().code(), ErrorCode::bad_request);
  EXPECT_EQ(count("SELECT count(*) FROM messages"), "0");
}

TEST_F(SqliteChatTest, ConcurrentResendsOfOneMessageIdStoreOneRow) {
  open();
  std::string id = create("alice").id;
  constexpr int kThreads = 6;
  constexpr int kRounds = 20;
  std::atomic<int> failures{0};
  std::atomic<int> fresh{0};
  for (int round = 0; round < kRounds; ++round) {
    std::string client_id = "m-" + std::to_string(round);
    std::vector<std::string> ids(kThreads);
    std::atomic<int> ready{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        ++ready;
        while (ready.load() < kThreads)
          std::this_thread::yield();
        auto appended = store_->append_message(id, "user", "hello", client_id, 1000);
        if (!appended.is_ok()) {
          ++failures;
          return;
        }
        if (!appended->existed) ++fresh;
        ids[t] = appended->message.id;
      });
    }
    for (auto& thread : threads)
      thread.join();
    for (const auto& seen : ids)
      EXPECT_EQ(seen, ids[0]);
  }
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(fresh.load(), kRounds);
  EXPECT_EQ(count("SELECT count(*) FROM messages"), std::to_string(kRounds));
  EXPECT_EQ(count("SELECT count(DISTINCT seq) FROM messages"), std::to_string(kRounds));
}

// While messages are appended, every page read is one snapshot: its total matches it.
TEST_F(SqliteChatTest, PagesAreConsistentWhileMessagesArrive) {
  open();
  std::string id = create("alice").id;
  std::atomic<bool> writing{true};
  std::atomic<int> failures{0};
  std::thread reader([&] {
    while (writing.load()) {
      auto page = store_->list_messages(id, 500, 0);
      if (!page.is_ok() || static_cast<int64_t>(page->items.size()) != page->total) ++failures;
      auto info = store_->find_conversation(id);
      if (!info.is_ok() || !info.value() || info.value()->message_count > 200) ++failures;
    }
  });
  for (int i = 0; i < 200; ++i)
    append(id, "message " + std::to_string(i), "", 1000);
  writing = false;
  reader.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST_F(SqliteChatTest, SessionFullAtMaxMessagesStoresNothing) {
  open();
  std::string id = create("alice").id;
  for (int i = 0; i < 3; ++i)
    append(id, "m" + std::to_string(i), "c" + std::to_string(i), 3);
  auto full = store_->append_message(id, "user", "one too many", "c3", 3);
  ASSERT_FALSE(full.is_ok());
  EXPECT_EQ(full.status().code(), ErrorCode::session_full);
  EXPECT_NE(full.status().message().find("sessions.max_messages = 3"), std::string::npos)
      << full.status().message();
  EXPECT_EQ(count("SELECT count(*) FROM messages"), "3");
  auto resent = store_->append_message(id, "user", "m1", "c1", 3);  // a resend is no new message
  ASSERT_TRUE(resent.is_ok());
  EXPECT_TRUE(resent->existed);
}

TEST_F(SqliteChatTest, StoreReplyTwiceKeepsOneReply) {
  open();
  std::string id = create("alice").id;
  StoredMessage question = append(id, "why?");
  GenerationStats stats{"", 7, 9, 120, "stop"};
  StoredMessage first = reply(id, question.id, "because", stats);
  EXPECT_EQ(first.role, "assistant");
  EXPECT_EQ(first.reply_to, question.id);
  EXPECT_EQ(first.seq, 1);
  EXPECT_EQ(first.stats.model, "llama3.2");  // the session's, when none is reported
  EXPECT_EQ(first.stats.prompt_tokens, 7);
  EXPECT_EQ(first.stats.response_tokens, 9);
  EXPECT_EQ(first.stats.duration_ms, 120);
  EXPECT_EQ(first.stats.done_reason, "stop");

  StoredMessage second = reply(id, question.id, "another answer", stats);
  EXPECT_EQ(second.id, first.id);
  EXPECT_EQ(second.content, "because");
  EXPECT_EQ(count("SELECT count(*) FROM messages WHERE role = 'assistant'"), "1");

  std::string other = create("alice").id;
  StoredMessage elsewhere = append(other, "hi");
  EXPECT_EQ(store_->store_reply(id, elsewhere.id, "x", stats).status().code(),
            ErrorCode::not_found);
  EXPECT_EQ(store_->store_reply(id, "nope", "x", stats).status().code(), ErrorCode::not_found);
  EXPECT_EQ(store_->store_reply("nope", question.id, "x", stats).status().code(),
            ErrorCode::not_found);
  EXPECT_EQ(count("SELECT count(*) FROM messages"), "3");
}

TEST_F(SqliteChatTest, FindReply) {
  open();
  std::string id = create("alice").id;
  StoredMessage question = append(id, "why?");
  auto none = store_->find_reply(id, question.id);
  ASSERT_TRUE(none.is_ok());
  EXPECT_FALSE(none.value().has_value());
  StoredMessage answer = reply(id, question.id, "because");
  auto found = store_->find_reply(id, question.id);
  ASSERT_TRUE(found.is_ok());
  ASSERT_TRUE(found.value().has_value());
  EXPECT_EQ(found.value()->id, answer.id);
  EXPECT_EQ(found.value()->content, "because");
  EXPECT_FALSE(store_->find_reply("nope", question.id).value().has_value());
}

TEST_F(SqliteChatTest, ListMessagesOldestFirstInPages) {
  open();
  std::string id = create("alice").id;
  for (int i = 0; i < 7; ++i)
    append(id, "m" + std::to_string(i));
  std::vector<std::string> seen;
  for (int offset = 0; offset < 9; offset += 3) {
    auto page = store_->list_messages(id, 3, offset);
    ASSERT_TRUE(page.is_ok()) << page.status().to_string();
    EXPECT_EQ(page->total, 7);
    for (const auto& m : page->items) {
      EXPECT_EQ(m.seq, static_cast<int64_t>(seen.size()));
      seen.push_back(m.content);
    }
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"m0", "m1", "m2", "m3", "m4", "m5", "m6"}));
  EXPECT_EQ(store_->list_messages("nope", 3, 0).status().code(), ErrorCode::not_found);
  EXPECT_EQ(store_->list_messages(id, -3, 0).status().code(), ErrorCode::bad_request);
}

TEST_F(SqliteChatTest, LastMessagesOldestFirst) {
  open();
  std::string id = create("alice").id;
  for (int i = 0; i < 7; ++i)
    append(id, "m" + std::to_string(i));
  auto last = store_->last_messages(id, 3);
  ASSERT_TRUE(last.is_ok());
  ASSERT_EQ(last->size(), 3u);
  EXPECT_EQ(last.value()[0].content, "m4");
  EXPECT_EQ(last.value()[2].content, "m6");
  EXPECT_EQ(store_->last_messages(id, 50)->size(), 7u);
  EXPECT_EQ(store_->last_messages(id, 0)->size(), 0u);
  EXPECT_EQ(store_->last_messages("nope", 3).status().code(), ErrorCode::not_found);
}

TEST_F(SqliteChatTest, DeleteCascadesToMessages) {
  open();
  std::string id = create("alice").id;
  reply(id, append(id, "q").id, "a");
  std::string kept = create("alice").id;
  append(kept, "stays");
  std::string ticket_conversation = ticket("T-1");

  auto deleted = store_->delete_chat_session(id);
  ASSERT_TRUE(deleted.is_ok());
  EXPECT_TRUE(deleted.value());
  EXPECT_FALSE(store_->delete_chat_session(id).value());
  EXPECT_FALSE(store_->delete_chat_session(ticket_conversation).value());  // chats only
  EXPECT_EQ(count("SELECT count(*) FROM messages WHERE conversation_id = '" + id + "'"), "0");
  EXPECT_EQ(count("SELECT count(*) FROM messages"), "3");  // kept's and the ticket's two
}

TEST_F(SqliteChatTest, PurgeRemovesOnlyIdleChatSessions) {
  open();
  std::string idle = create("alice").id;
  append(idle, "old news");
  std::string busy = create("alice").id;
  std::string ticket_conversation = ticket("T-1");
  set_last_activity(idle, 1000);
  set_last_activity(busy, 5000);
  set_last_activity(ticket_conversation, 1000);

  auto purged = store_->purge_chat_sessions_idle_since(3000);
  ASSERT_TRUE(purged.is_ok());
  EXPECT_EQ(purged.value(), 1);
  EXPECT_FALSE(store_->find_conversation(idle).value().has_value());
  EXPECT_TRUE(store_->find_conversation(busy).value().has_value());
  EXPECT_EQ(store_->find_ticket_session("T-1").value()->response, "call facilities");
  EXPECT_EQ(count("SELECT count(*) FROM messages WHERE conversation_id = '" + idle + "'"), "0");
  EXPECT_EQ(store_->purge_chat_sessions_idle_since(3000).value(), 0);
  EXPECT_EQ(store_->purge_chat_sessions_idle_since(5001).value(), 1);  // strictly before
}

TEST_F(SqliteChatTest, FollowUpsOnATicketLeaveRoomForTheAnswer) {
  open();
  auto begun = store_->begin_ticket_generation("T-1", "body", "llama3.2");
  ASSERT_TRUE(begun.is_ok());
  StoredMessage follow_up = append(begun->conversation_id, "and also?");
  EXPECT_EQ(follow_up.seq, 2);
  GenerationStats stats{"llama3.2", 1, 2, 3, "stop"};
  ASSERT_TRUE(store_->complete_ticket_generation("T-1", 1, "the answer", stats));
  EXPECT_EQ(store_->find_ticket_session("T-1").value()->response, "the answer");
  StoredMessage answer = reply(begun->conversation_id, follow_up.id, "also this");
  EXPECT_EQ(answer.seq, 3);
  EXPECT_EQ(find(begun->conversation_id).message_count, 4);
}

// The schema of version 1, as released: a database written by that ticketaid.
constexpr const char* kVersion1Database = R"sql(
CREATE TABLE conversations (
  id TEXT PRIMARY KEY, kind TEXT NOT NULL CHECK (kind IN ('ticket', 'chat')), ticket_id TEXT,
  revision INTEGER, user_id TEXT, title TEXT NOT NULL DEFAULT '',
  model TEXT NOT NULL DEFAULT '', status TEXT NOT NULL, failure_reason TEXT NOT NULL DEFAULT '',
  prompt_tokens INTEGER, response_tokens INTEGER, duration_ms INTEGER,
  done_reason TEXT NOT NULL DEFAULT '', created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL, UNIQUE (ticket_id, revision),
  CHECK (kind <> 'ticket' OR (ticket_id IS NOT NULL AND revision >= 1)),
  CHECK (kind <> 'chat' OR (ticket_id IS NULL AND revision IS NULL)));
CREATE INDEX conversations_by_status ON conversations (kind, status, updated_at);
CREATE TABLE messages (
  id TEXT PRIMARY KEY,
  conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
  seq INTEGER NOT NULL CHECK (seq >= 0),
  role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')), content TEXT NOT NULL,
  model TEXT NOT NULL DEFAULT '', prompt_tokens INTEGER, response_tokens INTEGER,
  duration_ms INTEGER, done_reason TEXT NOT NULL DEFAULT '', client_message_id TEXT,
  created_at INTEGER NOT NULL, UNIQUE (conversation_id, seq),
  UNIQUE (conversation_id, client_message_id));
INSERT INTO conversations (id, kind, ticket_id, revision, model, status, prompt_tokens,
  response_tokens, duration_ms, done_reason, created_at, updated_at)
  VALUES ('c1', 'ticket', 'T-9', 1, 'llama3.2', 'complete', 4, 6, 50, 'stop', 100, 200);
INSERT INTO messages (id, conversation_id, seq, role, content, created_at)
  VALUES ('p1', 'c1', 0, 'user', 'old body', 100);
INSERT INTO messages (id, conversation_id, seq, role, content, model, prompt_tokens,
  response_tokens, duration_ms, done_reason, created_at)
  VALUES ('a1', 'c1', 1, 'assistant', 'old answer', 'llama3.2', 4, 6, 50, 'stop', 200);
PRAGMA application_id = 1413564740;
PRAGMA user_version = 1;
)sql";

TEST_F(SqliteChatTest, MigratesAVersion1Database) {
  RawDb(options_.path).exec(kVersion1Database);
  open();
  RawDb raw(options_.path);
  EXPECT_EQ(raw.text("PRAGMA user_version"), std::to_string(sqlite_schema_version()));
  EXPECT_EQ(raw.text("SELECT count(*) FROM pragma_table_info('messages') WHERE name = 'reply_to'"),
            "1");
  EXPECT_EQ(raw.text("SELECT \"unique\" || partial FROM pragma_index_list('messages') "
                     "WHERE name = 'messages_one_reply'"),
            "11");
  EXPECT_EQ(raw.text("SELECT partial FROM pragma_index_list('conversations') "
                     "WHERE name = 'conversations_chat_by_user'"),
            "1");

  auto kept = store_->find_ticket_session("T-9");
  ASSERT_TRUE(kept.is_ok() && kept.value());
  EXPECT_EQ(kept.value()->prompt, "old body");
  EXPECT_EQ(kept.value()->response, "old answer");
  EXPECT_EQ(kept.value()->stats.response_tokens, 6);
  EXPECT_EQ(find("c1").total_tokens, 10);

  StoredMessage follow_up = append("c1", "one more thing");
  EXPECT_EQ(follow_up.seq, 2);
  EXPECT_EQ(reply("c1", follow_up.id, "sure").reply_to, follow_up.id);
  std::string chat = create("alice").id;
  EXPECT_EQ(find(chat).kind, "chat");

  store_.reset();
  std::string schema = raw.text("SELECT group_concat(sql, ';') FROM sqlite_schema");
  open();  // already at the newest version: nothing changes
  EXPECT_EQ(raw.text("SELECT group_concat(sql, ';') FROM sqlite_schema"), schema);
}

}  // namespace
}  // namespace ticketaid
