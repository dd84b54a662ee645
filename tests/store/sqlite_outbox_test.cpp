// Unit tests of the MongoDB mirror's outbox in the SQLite store (store/outbox.h):
// turning the mirror on, off and to another target; the rows each store write
// queues, in the write's own transaction; what next_batch reads for them;
// acknowledge; the purge that waits for pending rows; import_ticket_answer; and the
// migration to schema version 3. RawDb reads the outbox table behind the store's
// back, so that each test sees exactly the rows a write left.
//
// Thread-safety: each test runs on gtest's one thread.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "store/outbox.h"
#include "store/sqlite_fixture.h"
#include "store/store.h"

namespace ticketaid {
namespace {

using store_test::RawDb;
using Rows = std::vector<std::string>;

constexpr const char* kTargetOne = "mongodb://one/ticketaid";
constexpr const char* kTargetTwo = "mongodb://two/ticketaid";
constexpr int64_t kHourMs = 3600 * 1000;

// The outbox rows as the tests expect them: "op conversation ticket seq", '-' for NULL.
std::string conversation_row(const std::string& id, const std::string& ticket = "-") {
  return "conversation " + id + " " + ticket + " -";
}
std::string message_row(const std::string& id, int64_t seq) {
  return "message " + id + " - " + std::to_string(seq);
}
std::string delete_chat_row(const std::string& id) {
  return "delete " + id + " - -";
}
std::string delete_ticket_row(const std::string& ticket) {
  return "delete - " + ticket + " -";
}
std::string expire_row(const std::string& id) {
  return "expire " + id + " - -";
}

int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

class SqliteOutboxTest : public store_test::SqliteFileTest {
 protected:
  Store& open_with(std::optional<std::string> target) {
    options_.mirror_target = std::move(target);
    return open();
  }

  Outbox& outbox() { return *store_->outbox(); }

  // Every row waiting, oldest first.
  Rows queued() {
    std::string all = RawDb(options_.path)
                          .text(
                              "SELECT group_concat(line, '|') FROM (SELECT op || ' ' || "
                              "coalesce(conversation_id, '-') || ' ' || coalesce(ticket_id, "
                              "'-') || ' ' || coalesce(seq, '-') AS line FROM mirror_outbox "
                              "ORDER BY id)");
    Rows rows;
    std::stringstream in(all);
    for (std::string line; std::getline(in, line, '|');)
      rows.push_back(line);
    return rows;
  }

  int64_t last_id() {
    return std::stoll(RawDb(options_.path).text("SELECT coalesce(max(id), 0) FROM mirror_outbox"));
  }

  // The rows queued since the last take(), which acknowledges them.
  Rows take() {
    Rows rows = queued();
    EXPECT_TRUE(outbox().acknowledge(last_id()));
    return rows;
  }

  OutboxState state() {
    auto got = outbox().outbox_state();
    EXPECT_TRUE(got.is_ok()) << got.status().to_string();
    return got.is_ok() ? got.value() : OutboxState{};
  }

  std::vector<MirrorItem> batch(int64_t after_id = 0, int max = 100) {
    auto got = outbox().next_batch(after_id, max);
    EXPECT_TRUE(got.is_ok()) << got.status().to_string();
    return got.is_ok() ? got.value() : std::vector<MirrorItem>{};
  }

  // A complete ticket revision; returns its conversation id.
  std::string answer(const std::string& ticket, const std::string& prompt,
                     const std::string& response) {
    auto begun = store_->begin_ticket_generation(ticket, prompt, "llama3.2");
    EXPECT_TRUE(begun.is_ok()) << begun.status().to_string();
    if (!begun.is_ok()) return "";
    EXPECT_TRUE(store_->complete_ticket_generation(ticket, begun->revision, response, stats_));
    return begun->conversation_id;
  }

  std::string chat(const std::string& user, SessionLimits limits = {}) {
    auto created = store_->create_chat_session(user, "a title", "llama3.2", limits);
    EXPECT_TRUE(created.is_ok()) << created.status().to_string();
    return created.is_ok() ? created->id : "";
  }

  StoredMessage append(const std::string& conversation, const std::string& content,
                       const std::string& client_id = "") {
    auto appended = store_->append_message(conversation, "user", content, client_id, 100);
    EXPECT_TRUE(appended.is_ok()) << appended.status().to_string();
    return appended.is_ok() ? appended->message : StoredMessage{};
  }

  StoredMessage reply(const std::string& conversation, const std::string& to,
                      const std::string& content) {
    auto stored = store_->store_reply(conversation, to, content, stats_);
    EXPECT_TRUE(stored.is_ok()) << stored.status().to_string();
    return stored.is_ok() ? stored.value() : StoredMessage{};
  }

  bool exists(const std::string& conversation) {
    auto found = store_->find_conversation(conversation);
    EXPECT_TRUE(found.is_ok());
    return found.is_ok() && found.value().has_value();
  }

  GenerationStats stats_{"llama3.2", 10, 20, 300, "stop"};
};

TEST_F(SqliteOutboxTest, MirrorIsOffByDefault) {
  open();
  std::string ticket = answer("T-1", "printer on fire", "call facilities");
  std::string session = chat("alice");
  reply(session, append(session, "hello").id, "hi");
  ASSERT_TRUE(store_->delete_ticket_session("T-1").is_ok());
  EXPECT_EQ(store_->purge_chat_sessions_idle_since(now_ms() + kHourMs).value(), 1);

  EXPECT_EQ(queued(), Rows{});
  OutboxState s = state();
  EXPECT_EQ(s.depth, 0);
  EXPECT_FALSE(s.oldest_ms.has_value());
  EXPECT_EQ(s.target, "");
  EXPECT_TRUE(batch().empty());
}

TEST_F(SqliteOutboxTest, TurningOnBackfillsConversationsThenChatMessagesInOrder) {
  open();
  std::string ticket = answer("T-1", "printer on fire", "call facilities");
  append(ticket, "a follow-up on the ticket");  // carried by the ticket's row
  std::string a = chat("alice");
  StoredMessage question = append(a, "hello");
  reply(a, question.id, "hi");
  append(a, "bye");
  std::string b = chat("bob");
  append(b, "anyone?");
  EXPECT_EQ(queued(), Rows{});

  int64_t before = now_ms();
  open_with(kTargetOne);
  EXPECT_EQ(queued(),
            (Rows{conversation_row(ticket, "T-1"), conversation_row(a), conversation_row(b),
                  message_row(a, 0), message_row(a, 1), message_row(a, 2), message_row(b, 0)}));
  OutboxState s = state();
  EXPECT_EQ(s.depth, 7);
  EXPECT_EQ(s.target, kTargetOne);
  ASSERT_TRUE(s.oldest_ms.has_value());
  EXPECT_GE(*s.oldest_ms, before);
}

TEST_F(SqliteOutboxTest, ReopeningWithTheSameTargetQueuesNothingNew) {
  open_with(kTargetOne);
  std::string a = chat("alice");
  append(a, "hello");
  EXPECT_EQ(take().size(), 3u);

  open_with(kTargetOne);
  EXPECT_EQ(queued(), Rows{});
  EXPECT_EQ(state().target, kTargetOne);

  // nullopt (tools) leaves the mirror as it is: on, and writes still queue.
  open_with(std::nullopt);
  EXPECT_EQ(state().target, kTargetOne);
  std::string b = chat("bob");
  EXPECT_EQ(queued(), Rows{conversation_row(b)});
}

TEST_F(SqliteOutboxTest, AnotherTargetDropsTheOutboxAndBackfillsAgain) {
  open_with(kTargetOne);
  std::string a = chat("alice");
  append(a, "hello");
  take();
  append(a, "still pending");  // two rows left unsent for target one
  ASSERT_EQ(queued().size(), 2u);
  int64_t last_for_one = last_id();

  open_with(kTargetTwo);
  EXPECT_EQ(queued(), (Rows{conversation_row(a), message_row(a, 0), message_row(a, 1)}));
  EXPECT_EQ(state().target, kTargetTwo);
  std::vector<MirrorItem> items = batch();
  ASSERT_FALSE(items.empty());
  EXPECT_GT(items.front().entry.id, last_for_one);
}

TEST_F(SqliteOutboxTest, EmptyTargetTurnsTheMirrorOffAndDropsTheOutbox) {
  open_with(kTargetOne);
  std::string a = chat("alice");
  append(a, "hello");
  ASSERT_FALSE(queued().empty());

  open_with("");
  EXPECT_EQ(queued(), Rows{});
  EXPECT_EQ(state().target, "");
  std::string b = chat("bob");
  append(b, "hi");
  ASSERT_TRUE(store_->delete_chat_session(a).value());
  EXPECT_EQ(queued(), Rows{});

  // Turned on again: it starts over with a backfill of what is stored now.
  open_with(kTargetOne);
  EXPECT_EQ(queued(), (Rows{conversation_row(b), message_row(b, 0)}));
}

TEST_F(SqliteOutboxTest, TicketWritesQueueTheirRows) {
  open_with(kTargetOne);
  auto begun = store_->begin_ticket_generation("T-1", "body one", "llama3.2");
  ASSERT_TRUE(begun.is_ok());
  const std::string first = begun->conversation_id;
  EXPECT_EQ(take(), (Rows{conversation_row(first, "T-1"), message_row(first, 0)}));

  ASSERT_TRUE(store_->complete_ticket_generation("T-1", 1, "answer one", stats_));
  EXPECT_EQ(take(), (Rows{message_row(first, 1), conversation_row(first, "T-1")}));

  // Over a complete revision: a new one.
  begun = store_->begin_ticket_generation("T-1", "body two", "llama3.2");
  ASSERT_TRUE(begun.is_ok());
  const std::string second = begun->conversation_id;
  ASSERT_NE(second, first);
  EXPECT_EQ(take(), (Rows{conversation_row(second, "T-1"), message_row(second, 0)}));

  ASSERT_TRUE(store_->end_ticket_generation("T-1", 2, SessionStatus::failed, "boom"));
  EXPECT_EQ(take(), Rows{conversation_row(second, "T-1")});

  // Over a failed revision: the same one, reset, its prompt updated in place.
  begun = store_->begin_ticket_generation("T-1", "body three", "llama3.2");
  ASSERT_TRUE(begun.is_ok());
  EXPECT_EQ(begun->conversation_id, second);
  EXPECT_EQ(take(), (Rows{conversation_row(second, "T-1"), message_row(second, 0)}));

  EXPECT_EQ(store_->mark_interrupted().value(), 1);
  EXPECT_EQ(take(), Rows{conversation_row(second, "T-1")});

  StoredMessage follow_up = append(first, "one more thing");
  EXPECT_EQ(take(), (Rows{message_row(first, 2), conversation_row(first, "T-1")}));
  reply(first, follow_up.id, "sure");
  EXPECT_EQ(take(), (Rows{message_row(first, 3), conversation_row(first, "T-1")}));

  ASSERT_TRUE(store_->delete_ticket_session("T-1").value());
  EXPECT_EQ(take(), Rows{delete_ticket_row("T-1")});
  ASSERT_FALSE(store_->delete_ticket_session("T-1").value());
  EXPECT_EQ(take(), Rows{});
}

TEST_F(SqliteOutboxTest, ChatWritesQueueTheirRows) {
  open_with(kTargetOne);
  std::string a = chat("alice");
  EXPECT_EQ(take(), Rows{conversation_row(a)});

  StoredMessage question = append(a, "hello", "client-1");
  EXPECT_EQ(take(), (Rows{message_row(a, 0), conversation_row(a)}));
  reply(a, question.id, "hi");
  EXPECT_EQ(take(), (Rows{message_row(a, 1), conversation_row(a)}));

  // A resent message and a second reply store nothing, so queue nothing.
  auto again = store_->append_message(a, "user", "hello", "client-1", 100);
  ASSERT_TRUE(again.is_ok());
  EXPECT_TRUE(again->existed);
  reply(a, question.id, "hi again");
  EXPECT_EQ(take(), Rows{});

  ASSERT_TRUE(store_->delete_chat_session(a).value());
  EXPECT_EQ(take(), Rows{delete_chat_row(a)});
  ASSERT_FALSE(store_->delete_chat_session(a).value());
  EXPECT_EQ(take(), Rows{});
}

TEST_F(SqliteOutboxTest, EvictionQueuesAnExpiryWithTheNewSession) {
  open_with(kTargetOne);
  const SessionLimits evict{2, true};
  std::string oldest = chat("alice", evict);
  std::string kept = chat("alice", evict);
  take();

  std::string newest = chat("alice", evict);
  EXPECT_EQ(take(), (Rows{expire_row(oldest), conversation_row(newest)}));
  EXPECT_FALSE(exists(oldest));
  EXPECT_TRUE(exists(kept));
}

TEST_F(SqliteOutboxTest, FailedWritesQueueNothing) {
  open_with(kTargetOne);
  std::string a = chat("alice", {1, false});
  append(a, "hello");
  take();

  EXPECT_EQ(store_->create_chat_session("alice", "t", "m", {1, false}).status().code(),
            ErrorCode::session_limit);
  EXPECT_EQ(store_->append_message(a, "user", "full", "", 1).status().code(),
            ErrorCode::session_full);
  EXPECT_EQ(store_->append_message("no-such", "user", "x", "", 10).status().code(),
            ErrorCode::not_found);
  EXPECT_EQ(store_->store_reply(a, "no-such-message", "x", stats_).status().code(),
            ErrorCode::not_found);
  EXPECT_EQ(store_->complete_ticket_generation("T-0", 1, "x", stats_).code(), ErrorCode::not_found);
  EXPECT_EQ(queued(), Rows{});
}

// A write that fails after its first statement queued a row takes the row back with
// it: the rows are written in the write's own transaction.
TEST_F(SqliteOutboxTest, RowsRollBackWithTheirWrite) {
  open_with(kTargetOne);
  std::string a = chat("alice", {1, true});
  take();

  // The message is inserted (queuing its row), then touching the session fails.
  RawDb(options_.path)
      .exec(
          "CREATE TRIGGER test_fail_touch BEFORE UPDATE ON conversations "
          "BEGIN SELECT RAISE(ABORT, 'injected'); END");
  EXPECT_FALSE(store_->append_message(a, "user", "hello", "", 10).is_ok());
  EXPECT_EQ(store_->list_messages(a, 10, 0).value().total, 0);
  EXPECT_EQ(queued(), Rows{});

  // The eviction queues an expiry and deletes, then inserting the new one fails.
  RawDb(options_.path)
      .exec(
          "DROP TRIGGER test_fail_touch; CREATE TRIGGER test_fail_insert BEFORE INSERT ON "
          "conversations BEGIN SELECT RAISE(ABORT, 'injected'); END");
  EXPECT_FALSE(store_->create_chat_session("alice", "t", "m", {1, true}).is_ok());
  EXPECT_TRUE(exists(a));
  EXPECT_EQ(queued(), Rows{});

  RawDb(options_.path).exec("DROP TRIGGER test_fail_insert");
  std::string b = chat("alice", {1, true});
  EXPECT_EQ(queued(), (Rows{expire_row(a), conversation_row(b)}));
}

TEST_F(SqliteOutboxTest, TicketItemsCarryTheWholeRevision) {
  open_with(kTargetOne);
  std::string first = answer("T-1", "body one", "answer one");
  std::string second = answer("T-1", "body two", "answer two!");
  append(second, "follow");

  std::vector<MirrorItem> items = batch();
  // begin, complete (2 + 2 rows) for each revision, then the follow-up's two.
  ASSERT_EQ(items.size(), 10u);
  for (const MirrorItem& item : items) {
    SCOPED_TRACE(item.entry.id);
    // Every row of a ticket, message rows too, comes back as its whole revision.
    EXPECT_EQ(item.entry.op, OutboxOp::conversation);
    EXPECT_FALSE(item.entry.seq.has_value());
    EXPECT_EQ(item.entry.ticket_id, "T-1");
    ASSERT_TRUE(item.conversation.has_value());
    const MirrorConversation& c = *item.conversation;
    EXPECT_EQ(c.info.kind, "ticket");
    EXPECT_EQ(c.status, "complete");  // as it is now, not as it was when queued
    EXPECT_EQ(c.stats.response_tokens, 20);
    EXPECT_EQ(c.stats.done_reason, "stop");
    ASSERT_GE(item.messages.size(), 2u);
    EXPECT_EQ(item.messages[0].role, "user");
    EXPECT_EQ(item.messages[1].role, "assistant");
    if (item.entry.conversation_id == first) {
      EXPECT_EQ(c.revision, 1);
      ASSERT_EQ(item.messages.size(), 2u);
      EXPECT_EQ(item.messages[0].content, "body one");
      EXPECT_EQ(item.messages[1].content, "answer one");
      EXPECT_EQ(item.bytes_before, 0);
    } else {
      EXPECT_EQ(item.entry.conversation_id, second);
      EXPECT_EQ(c.revision, 2);
      ASSERT_EQ(item.messages.size(), 3u);
      EXPECT_EQ(item.messages[0].content, "body two");
      EXPECT_EQ(item.messages[1].content, "answer two!");
      EXPECT_EQ(item.messages[2].content, "follow");
      // Revision 1's prompt and answer, each counted with 512 bytes for its fields.
      EXPECT_EQ(item.bytes_before, (8 + 512) + (10 + 512));
    }
  }
}

TEST_F(SqliteOutboxTest, ChatItemsCarryTheirMessageAndTheBytesBeforeIt) {
  open_with(kTargetOne);
  std::string a = chat("alice");
  StoredMessage question = append(a, "hello");
  reply(a, question.id, "hi there");
  append(a, "bye");

  std::vector<MirrorItem> items = batch();
  ASSERT_EQ(items.size(), 7u);  // created, then (message, touch) three times
  EXPECT_EQ(items[0].entry.op, OutboxOp::conversation);
  ASSERT_TRUE(items[0].conversation.has_value());
  EXPECT_EQ(items[0].conversation->info.message_count, 3);
  EXPECT_EQ(items[0].conversation->status, "active");
  EXPECT_TRUE(items[0].messages.empty());

  const int64_t expected_before[] = {0, 5 + 512, (5 + 512) + (8 + 512)};
  const char* expected_content[] = {"hello", "hi there", "bye"};
  for (int seq = 0; seq < 3; ++seq) {
    const MirrorItem& item = items[1 + 2 * seq];
    SCOPED_TRACE(seq);
    EXPECT_EQ(item.entry.op, OutboxOp::message);
    EXPECT_EQ(item.entry.conversation_id, a);
    EXPECT_EQ(item.entry.seq, seq);
    ASSERT_TRUE(item.conversation.has_value());
    ASSERT_EQ(item.messages.size(), 1u);
    EXPECT_EQ(item.messages[0].seq, seq);
    EXPECT_EQ(item.messages[0].content, expected_content[seq]);
    EXPECT_EQ(item.bytes_before, expected_before[seq]);
    EXPECT_EQ(items[2 + 2 * seq].entry.op, OutboxOp::conversation);
  }
  EXPECT_EQ(items[3].messages[0].reply_to, question.id);
  EXPECT_EQ(items[3].messages[0].stats.response_tokens, 20);

  // max and after_id page through the same rows.
  std::vector<MirrorItem> head = batch(0, 2);
  ASSERT_EQ(head.size(), 2u);
  std::vector<MirrorItem> rest = batch(head.back().entry.id, 100);
  ASSERT_EQ(rest.size(), 5u);
  EXPECT_EQ(rest.front().entry.id, items[2].entry.id);
}

TEST_F(SqliteOutboxTest, DeletedConversationsComeBackEmptyThenTheirRemoval) {
  open_with(kTargetOne);
  std::string a = chat("alice");
  append(a, "hello");
  ASSERT_TRUE(store_->delete_chat_session(a).value());
  std::string ticket = answer("T-1", "body", "answer");
  ASSERT_TRUE(store_->delete_ticket_session("T-1").value());

  std::vector<MirrorItem> items = batch();
  ASSERT_EQ(items.size(), 9u);  // 3 + delete, 4 + delete
  for (size_t i : {0u, 1u, 2u, 4u, 5u, 6u, 7u}) {
    SCOPED_TRACE(i);
    EXPECT_FALSE(items[i].conversation.has_value());
    EXPECT_TRUE(items[i].messages.empty());
  }
  EXPECT_EQ(items[1].entry.op, OutboxOp::message);
  EXPECT_EQ(items[3].entry.op, OutboxOp::remove);
  EXPECT_EQ(items[3].entry.conversation_id, a);
  EXPECT_FALSE(items[3].conversation.has_value());
  EXPECT_EQ(items[4].entry.conversation_id, ticket);
  EXPECT_EQ(items[8].entry.op, OutboxOp::remove);
  EXPECT_EQ(items[8].entry.conversation_id, "");
  EXPECT_EQ(items[8].entry.ticket_id, "T-1");
}

TEST_F(SqliteOutboxTest, AcknowledgeRemovesExactlyUpToTheId) {
  open_with(kTargetOne);
  std::string a = chat("alice");
  append(a, "one");
  append(a, "two");
  std::vector<MirrorItem> items = batch();
  ASSERT_EQ(items.size(), 5u);

  ASSERT_TRUE(outbox().acknowledge(items[0].entry.id - 1));  // before the first: nothing
  EXPECT_EQ(state().depth, 5);
  ASSERT_TRUE(outbox().acknowledge(items[2].entry.id));
  std::vector<MirrorItem> left = batch();
  ASSERT_EQ(left.size(), 2u);
  EXPECT_EQ(left[0].entry.id, items[3].entry.id);
  EXPECT_EQ(left[1].entry.id, items[4].entry.id);
  OutboxState s = state();
  EXPECT_EQ(s.depth, 2);
  EXPECT_EQ(s.oldest_ms, std::min(items[3].entry.created_at_ms, items[4].entry.created_at_ms));

  ASSERT_TRUE(outbox().acknowledge(items[4].entry.id));
  s = state();
  EXPECT_EQ(s.depth, 0);
  EXPECT_FALSE(s.oldest_ms.has_value());
  EXPECT_EQ(s.target, kTargetOne);
}

TEST_F(SqliteOutboxTest, PurgeWaitsForASessionsRowsToBeSent) {
  open_with(kTargetOne);
  const int64_t everything = now_ms() + kHourMs;
  std::string a = chat("alice");
  append(a, "hello");
  EXPECT_EQ(store_->purge_chat_sessions_idle_since(everything).value(), 0);
  EXPECT_TRUE(exists(a));
  EXPECT_EQ(queued().size(), 3u);  // and no expiry

  take();
  std::string b = chat("bob");  // its row waits
  EXPECT_EQ(store_->purge_chat_sessions_idle_since(everything).value(), 1);
  EXPECT_FALSE(exists(a));
  EXPECT_TRUE(exists(b));
  EXPECT_EQ(take(), (Rows{conversation_row(b), expire_row(a)}));

  EXPECT_EQ(store_->purge_chat_sessions_idle_since(everything).value(), 1);
  EXPECT_FALSE(exists(b));
  EXPECT_EQ(take(), Rows{expire_row(b)});
}

TEST_F(SqliteOutboxTest, ImportTicketAnswer) {
  open_with(kTargetOne);
  GenerationStats imported{"llama3.1", 3, 4, 50, "stop"};
  ASSERT_TRUE(store_->import_ticket_answer("T-1", "body", "remote answer", imported));
  auto found = store_->find_ticket_session("T-1");
  ASSERT_TRUE(found.is_ok() && found.value());
  TicketSession first = *found.value();
  EXPECT_EQ(first.revision, 1);
  EXPECT_EQ(first.status, SessionStatus::complete);
  EXPECT_EQ(first.prompt, "body");
  EXPECT_EQ(first.response, "remote answer");
  EXPECT_EQ(first.stats.model, "llama3.1");
  EXPECT_EQ(first.stats.response_tokens, 4);
  const std::string c1 = first.conversation_id;
  EXPECT_EQ(take(), (Rows{conversation_row(c1, "T-1"), message_row(c1, 0), message_row(c1, 1),
                          conversation_row(c1, "T-1")}));

  // The same prompt again: nothing changes, nothing is queued.
  ASSERT_TRUE(store_->import_ticket_answer("T-1", "body", "another answer", imported));
  found = store_->find_ticket_session("T-1");
  ASSERT_TRUE(found.is_ok() && found.value());
  EXPECT_EQ(found.value()->revision, 1);
  EXPECT_EQ(found.value()->response, "remote answer");
  EXPECT_EQ(found.value()->updated_at_ms, first.updated_at_ms);
  EXPECT_EQ(take(), Rows{});

  // Refused while a generation runs here; the generation is left alone.
  auto begun = store_->begin_ticket_generation("T-1", "body two", "llama3.2");
  ASSERT_TRUE(begun.is_ok());
  EXPECT_EQ(begun->revision, 2);
  take();
  EXPECT_EQ(store_->import_ticket_answer("T-1", "body two", "remote", imported).code(),
            ErrorCode::bad_request);
  EXPECT_EQ(store_->find_ticket_session("T-1").value()->status, SessionStatus::generating);
  EXPECT_EQ(take(), Rows{});

  // Over a revision that is not complete: that revision, completed.
  ASSERT_TRUE(store_->end_ticket_generation("T-1", 2, SessionStatus::failed, "boom"));
  ASSERT_TRUE(store_->import_ticket_answer("T-1", "body two", "remote two", imported));
  found = store_->find_ticket_session("T-1");
  ASSERT_TRUE(found.is_ok() && found.value());
  EXPECT_EQ(found.value()->revision, 2);
  EXPECT_EQ(found.value()->conversation_id, begun->conversation_id);
  EXPECT_EQ(found.value()->response, "remote two");
  EXPECT_EQ(found.value()->failure_reason, "");

  // Over a complete revision with another prompt: a new revision.
  ASSERT_TRUE(store_->import_ticket_answer("T-1", "body three", "remote three", imported));
  found = store_->find_ticket_session("T-1");
  ASSERT_TRUE(found.is_ok() && found.value());
  EXPECT_EQ(found.value()->revision, 3);
  EXPECT_EQ(found.value()->status, SessionStatus::complete);
  EXPECT_EQ(found.value()->prompt, "body three");
  EXPECT_EQ(found.value()->response, "remote three");
  EXPECT_EQ(found.value()->revision_count, 2);
  auto earlier = store_->list_ticket_revisions("T-1");
  ASSERT_TRUE(earlier.is_ok());
  ASSERT_EQ(earlier.value().size(), 2u);
  EXPECT_EQ(earlier.value()[0].response, "remote two");
  EXPECT_EQ(earlier.value()[1].response, "remote answer");
}

// Version 3 only adds the outbox: a database taken back to version 2 by dropping
// it is what a version-2 ticketaid left, and migrating it keeps the data.
TEST_F(SqliteOutboxTest, MigratesAVersion2DatabaseAndBackfillsIt) {
  EXPECT_EQ(sqlite_schema_version(), 3);
  open();
  std::string ticket = answer("T-1", "body", "answer");
  std::string a = chat("alice");
  append(a, "hello");
  store_.reset();
  RawDb(options_.path)
      .exec(
          "DROP TRIGGER mirror_conversation_insert; DROP TRIGGER mirror_conversation_update; "
          "DROP TRIGGER mirror_message_insert; DROP TRIGGER mirror_message_update; "
          "DROP TABLE mirror_outbox; DROP TABLE mirror_state; PRAGMA user_version = 2");

  open_with(kTargetOne);
  EXPECT_EQ(RawDb(options_.path).text("PRAGMA user_version"), "3");
  EXPECT_EQ(queued(),
            (Rows{conversation_row(ticket, "T-1"), conversation_row(a), message_row(a, 0)}));
  EXPECT_EQ(store_->find_ticket_session("T-1").value()->response, "answer");
}

}  // namespace
}  // namespace ticketaid
