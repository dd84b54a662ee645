// The messages of a conversation (a chat session or a ticket's follow-ups): the
// part of SqliteStore that appends them, stores the model's replies and reads the
// history (the class is in sqlite_store_impl.h, the contract in store.h).
//
// Every write is one BEGIN IMMEDIATE transaction on the writer thread, so its checks
// (the message limit, a resent client messageId, the one reply per message) and its
// changes are atomic: two identical appends racing on one session are served one
// after the other, and the second finds the first. A page and its total, or the
// last messages and the conversation's existence, are read in one read transaction.
//
// Thread-safety: as for SqliteStore, every method may be called from any thread at
// once; new_id() runs only inside writer jobs.
#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "store/sqlite_db.h"
#include "store/sqlite_store_impl.h"
#include "store/store.h"

namespace ticketaid::sqlite {
namespace {

// The columns read_message() expects.
#define MESSAGE_COLUMNS                                                                          \
  "id, conversation_id, seq, role, content, client_message_id, reply_to, model, prompt_tokens, " \
  "response_tokens, duration_ms, done_reason, created_at FROM messages "

constexpr const char* kFindByClientId =
    "SELECT " MESSAGE_COLUMNS "WHERE conversation_id = ?1 AND client_message_id = ?2";

constexpr const char* kFindReply =
    "SELECT " MESSAGE_COLUMNS "WHERE conversation_id = ?1 AND reply_to = ?2";

constexpr const char* kListMessages =
    "SELECT " MESSAGE_COLUMNS "WHERE conversation_id = ?1 ORDER BY seq LIMIT ?2 OFFSET ?3";

constexpr const char* kLastMessages =
    "SELECT * FROM (SELECT " MESSAGE_COLUMNS
    "WHERE conversation_id = ?1 ORDER BY seq DESC LIMIT ?2) ORDER BY seq";

#undef MESSAGE_COLUMNS

constexpr const char* kFindConversationRow = "SELECT kind, model FROM conversations WHERE id = ?1";

constexpr const char* kMessageExists =
    "SELECT 1 FROM messages WHERE conversation_id = ?1 AND id = ?2";

// How many messages conversation ?1 holds and the seq after its last one.
constexpr const char* kMessageTail =
    "SELECT count(*), coalesce(max(seq) + 1, 0) FROM messages WHERE conversation_id = ?1";

// The number of messages, or no row when the conversation does not exist.
constexpr const char* kMessageTotal =
    "SELECT (SELECT count(*) FROM messages WHERE conversation_id = c.id) "
    "FROM conversations AS c WHERE c.id = ?1";

constexpr const char* kInsertMessage =
    "INSERT INTO messages (id, conversation_id, seq, role, content, client_message_id, "
    "reply_to, model, prompt_tokens, response_tokens, duration_ms, done_reason, created_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";

constexpr const char* kTouchConversation = "UPDATE conversations SET updated_at = ?2 WHERE id = ?1";

// In a ticket's conversation seq 1 is kept for the answer, even while it is still
// being generated (or after it failed): follow-ups start after it.
constexpr int64_t kFirstTicketFollowUp = 2;

}  // namespace

StoredMessage read_message(const Statement& row) {
  StoredMessage message;
  message.id = row.text(0);
  message.conversation_id = row.text(1);
  message.seq = row.int64(2);
  message.role = row.text(3);
  message.content = row.text(4);
  message.client_message_id = row.text(5);
  message.reply_to = row.text(6);
  message.stats.model = row.text(7);
  message.stats.prompt_tokens = row.optional_int64(8);
  message.stats.response_tokens = row.optional_int64(9);
  message.stats.duration_ms = row.optional_int64(10);
  message.stats.done_reason = row.text(11);
  message.created_at_ms = row.int64(12);
  return message;
}

namespace {

Result<std::optional<StoredMessage>> find_reply_in(Connection& db, std::string_view conversation_id,
                                                   std::string_view message_id) {
  return query_one<StoredMessage>(
      db, kFindReply, [&](Statement& q) { q.bind(1, conversation_id).bind(2, message_id); },
      read_message);
}

struct ConversationRow {
  std::string kind;
  std::string model;
};

// The conversation's kind and model; not_found when it does not exist.
Result<ConversationRow> conversation_row(Connection& db, std::string_view id) {
  Result<std::optional<ConversationRow>> row = query_one<ConversationRow>(
      db, kFindConversationRow, [&](Statement& q) { q.bind(1, id); },
      [](const Statement& r) {
        return ConversationRow{r.text(0), r.text(1)};
      });
  if (!row.is_ok()) return row.status();
  if (!row.value()) return no_conversation(id);
  return std::move(*row.value());
}

struct Tail {
  int64_t count = 0;
  int64_t next_seq = 0;
};

// How many messages the conversation holds and where the next one goes.
Result<Tail> message_tail(Connection& db, std::string_view conversation_id,
                          const ConversationRow& conversation) {
  Result<std::optional<Tail>> tail = query_one<Tail>(
      db, kMessageTail, [&](Statement& q) { q.bind(1, conversation_id); },
      [](const Statement& r) {
        return Tail{r.int64(0), r.int64(1)};
      });
  if (!tail.is_ok()) return tail.status();
  Tail found = tail.value().value_or(Tail{});
  if (conversation.kind == "ticket")
    found.next_seq = std::max(found.next_seq, kFirstTicketFollowUp);
  return found;
}

// Inserts the message and makes its time the conversation's last activity.
Status insert_message(Connection& db, const StoredMessage& m) {
  auto text_or_null = [](Statement& q, int index, const std::string& text) {
    if (text.empty()) {
      q.bind_null(index);
    } else {
      q.bind(index, text);
    }
  };
  Status inserted = execute(db, kInsertMessage, [&](Statement& q) {
    q.bind(1, m.id).bind(2, m.conversation_id).bind(3, m.seq).bind(4, m.role).bind(5, m.content);
    text_or_null(q, 6, m.client_message_id);  // NULLs never collide in the UNIQUE index
    text_or_null(q, 7, m.reply_to);
    q.bind(8, m.stats.model).bind(9, m.stats.prompt_tokens).bind(10, m.stats.response_tokens);
    q.bind(11, m.stats.duration_ms).bind(12, m.stats.done_reason).bind(13, m.created_at_ms);
  });
  if (!inserted.is_ok()) return inserted;
  return execute(db, kTouchConversation,
                 [&](Statement& q) { q.bind(1, m.conversation_id).bind(2, m.created_at_ms); });
}

bool is_role(std::string_view role) {
  return role == "system" || role == "user" || role == "assistant";
}

Status session_full(std::string_view conversation_id, int64_t count, int limit) {
  return Status::error(
      ErrorCode::session_full,
      "conversation " + std::string(conversation_id) + " holds " + std::to_string(count) +
          " messages, the limit (sessions.max_messages = " + std::to_string(limit) + ")");
}

}  // namespace

Result<AppendOutcome> SqliteStore::append_message(std::string_view conversation_id,
                                                  std::string_view role, std::string_view content,
                                                  std::string_view client_message_id,
                                                  int max_messages) {
  if (!is_role(role)) {
    return bad_request("unknown role '" + std::string(role) + "' (system, user or assistant)");
  }
  if (max_messages < 1) return bad_request("max_messages must be at least 1");
  using R = Result<AppendOutcome>;
  return guarded<R>([&] {
    return writer_.transact<R>([&](Connection& db) -> R {
      Result<ConversationRow> conversation = conversation_row(db, conversation_id);
      if (!conversation.is_ok()) return conversation.status();
      if (!client_message_id.empty()) {
        Result<std::optional<StoredMessage>> stored = query_one<StoredMessage>(
            db, kFindByClientId,
            [&](Statement& q) { q.bind(1, conversation_id).bind(2, client_message_id); },
            read_message);
        if (!stored.is_ok()) return stored.status();
        if (stored.value()) {
          Result<std::optional<StoredMessage>> reply =
              find_reply_in(db, conversation_id, stored.value()->id);
          if (!reply.is_ok()) return reply.status();
          return AppendOutcome{std::move(*stored.value()), true, std::move(reply).value()};
        }
      }
      Result<Tail> tail = message_tail(db, conversation_id, conversation.value());
      if (!tail.is_ok()) return tail.status();
      if (tail->count >= max_messages)
        return session_full(conversation_id, tail->count, max_messages);
      StoredMessage message;
      message.id = new_id();
      message.conversation_id = conversation_id;
      message.seq = tail->next_seq;
      message.role = role;
      message.content = content;
      message.client_message_id = client_message_id;
      message.created_at_ms = now_ms();
      if (Status s = insert_message(db, message); !s) return s;
      return AppendOutcome{std::move(message), false, std::nullopt};
    });
  });
}

Result<StoredMessage> SqliteStore::store_reply(std::string_view conversation_id,
                                               std::string_view reply_to, std::string_view content,
                                               const GenerationStats& stats) {
  using R = Result<StoredMessage>;
  return guarded<R>([&] {
    return writer_.transact<R>([&](Connection& db) -> R {
      Result<ConversationRow> conversation = conversation_row(db, conversation_id);
      if (!conversation.is_ok()) return conversation.status();
      Result<std::optional<bool>> answered = query_one<bool>(
          db, kMessageExists, [&](Statement& q) { q.bind(1, conversation_id).bind(2, reply_to); },
          [](const Statement&) { return true; });
      if (!answered.is_ok()) return answered.status();
      if (!answered.value()) {
        return Status::error(ErrorCode::not_found, "no message " + std::string(reply_to) +
                                                       " in conversation " +
                                                       std::string(conversation_id));
      }
      Result<std::optional<StoredMessage>> existing = find_reply_in(db, conversation_id, reply_to);
      if (!existing.is_ok()) return existing.status();
      if (existing.value()) return std::move(*existing.value());

      Result<Tail> tail = message_tail(db, conversation_id, conversation.value());
      if (!tail.is_ok()) return tail.status();
      StoredMessage message;
      message.id = new_id();
      message.conversation_id = conversation_id;
      message.seq = tail->next_seq;
      message.role = "assistant";
      message.content = content;
      message.reply_to = reply_to;
      message.stats = stats;
      if (message.stats.model.empty()) message.stats.model = conversation->model;
      message.created_at_ms = now_ms();
      if (Status s = insert_message(db, message); !s) return s;
      return message;
    });
  });
}

Result<std::optional<StoredMessage>> SqliteStore::find_reply(std::string_view conversation_id,
                                                             std::string_view message_id) {
  return guarded<Result<std::optional<StoredMessage>>>([&] {
    auto reader = readers_.acquire();
    return find_reply_in(*reader, conversation_id, message_id);
  });
}

Result<ListPage<StoredMessage>> SqliteStore::list_messages(std::string_view conversation_id,
                                                           int limit, int64_t offset) {
  if (Status s = check_page(limit, offset); !s) return s;
  using R = Result<ListPage<StoredMessage>>;
  return guarded<R>([&] {
    auto reader = readers_.acquire();
    return in_read_snapshot<R>(*reader, [&](Connection& db) -> R {
      Result<std::optional<int64_t>> total = query_one<int64_t>(
          db, kMessageTotal, [&](Statement& q) { q.bind(1, conversation_id); },
          [](const Statement& row) { return row.int64(0); });
      if (!total.is_ok()) return total.status();
      if (!total.value()) return no_conversation(conversation_id);
      Result<std::vector<StoredMessage>> items = query_all<StoredMessage>(
          db, kListMessages,
          [&](Statement& q) { q.bind(1, conversation_id).bind(2, int64_t{limit}).bind(3, offset); },
          read_message);
      if (!items.is_ok()) return items.status();
      return ListPage<StoredMessage>{std::move(items).value(), *total.value()};
    });
  });
}

Result<std::vector<StoredMessage>> SqliteStore::last_messages(std::string_view conversation_id,
                                                              int n) {
  if (n < 0) return bad_request("the number of messages must not be negative");
  using R = Result<std::vector<StoredMessage>>;
  return guarded<R>([&] {
    auto reader = readers_.acquire();
    return in_read_snapshot<R>(*reader, [&](Connection& db) -> R {
      Result<ConversationRow> conversation = conversation_row(db, conversation_id);
      if (!conversation.is_ok()) return conversation.status();
      return query_all<StoredMessage>(
          db, kLastMessages, [&](Statement& q) { q.bind(1, conversation_id).bind(2, int64_t{n}); },
          read_message);
    });
  });
}

}  // namespace ticketaid::sqlite
