// Chat sessions: the part of SqliteStore that creates, finds, lists, deletes and
// purges conversations of kind 'chat' (the class is in sqlite_store_impl.h, the
// contract in store.h; their messages are in sqlite_messages.cpp).
//
// Every write is one BEGIN IMMEDIATE transaction on the writer thread, so the
// per-user limit is checked and kept atomically: two sessions created at once for
// the same user are counted one after the other. A conversation's metadata is
// computed by SQL aggregates in the statement that reads the conversation; a page
// and its total are read in one read transaction. Both see one snapshot.
//
// Thread-safety: as for SqliteStore, every method may be called from any thread at
// once; new_id() runs only inside writer jobs.
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

// The columns read_conversation() expects: the row, then its metadata aggregated
// over its messages. Callers add WHERE ... GROUP BY c.id.
#define CONVERSATION_COLUMNS                                                                    \
  "c.id, c.kind, c.user_id, c.ticket_id, c.title, c.model, c.created_at, c.updated_at, "        \
  "count(m.id), coalesce(sum(CASE WHEN m.role = 'assistant' THEN coalesce(m.prompt_tokens, 0) " \
  "+ coalesce(m.response_tokens, 0) END), 0), "                                                 \
  "CAST(round(avg(CASE WHEN m.role = 'assistant' THEN m.duration_ms END)) AS INTEGER) "         \
  "FROM conversations AS c LEFT JOIN messages AS m ON m.conversation_id = c.id "

constexpr const char* kFindConversation =
    "SELECT " CONVERSATION_COLUMNS "WHERE c.id = ?1 GROUP BY c.id";

// Ties in last activity go to the session created last (rowids only grow here).
constexpr const char* kListUserSessions =
    "SELECT " CONVERSATION_COLUMNS
    "WHERE c.kind = 'chat' AND c.user_id = ?1 GROUP BY c.id "
    "ORDER BY c.updated_at DESC, c.rowid DESC LIMIT ?2 OFFSET ?3";

#undef CONVERSATION_COLUMNS

constexpr const char* kCountUserSessions =
    "SELECT count(*) FROM conversations WHERE kind = 'chat' AND user_id = ?1";

// The ?2 least recently active sessions of user ?1; their messages cascade. The
// mirror keeps them, marked expired.
#define OLDEST_OF_USER                                                                             \
  "(SELECT id FROM conversations WHERE kind = 'chat' AND user_id = ?1 ORDER BY updated_at, rowid " \
  "LIMIT ?2)"
constexpr const char* kExpireOldest =
    "INSERT INTO mirror_outbox (op, conversation_id, created_at) SELECT 'expire', id, ?3 "
    "FROM conversations WHERE id IN " OLDEST_OF_USER " AND " MIRROR_IS_ON;
constexpr const char* kEvictOldest = "DELETE FROM conversations WHERE id IN " OLDEST_OF_USER;
#undef OLDEST_OF_USER

constexpr const char* kInsertChat =
    "INSERT INTO conversations (id, kind, user_id, title, model, status, created_at, "
    "updated_at) VALUES (?1, 'chat', ?2, ?3, ?4, 'active', ?5, ?5)";

constexpr const char* kRemoveChat =
    "INSERT INTO mirror_outbox (op, conversation_id, created_at) SELECT 'delete', id, ?2 "
    "FROM conversations WHERE kind = 'chat' AND id = ?1 AND " MIRROR_IS_ON;
constexpr const char* kDeleteChat = "DELETE FROM conversations WHERE kind = 'chat' AND id = ?1";

// Idle sessions are purged once the mirror has what it should have of them: one
// with outbox rows still waiting is left for a later purge. The mirror keeps the
// purged ones, marked expired.
constexpr const char* kExpireIdle =
    "INSERT INTO mirror_outbox (op, conversation_id, created_at) SELECT 'expire', c.id, ?2 "
    "FROM conversations AS c WHERE c.kind = 'chat' AND c.updated_at < ?1 AND NOT EXISTS "
    "(SELECT 1 FROM mirror_outbox AS o WHERE o.conversation_id = c.id) AND " MIRROR_IS_ON;
constexpr const char* kPurgeIdle =
    "DELETE FROM conversations WHERE kind = 'chat' AND updated_at < ?1 AND NOT EXISTS "
    "(SELECT 1 FROM mirror_outbox AS o WHERE o.conversation_id = conversations.id "
    "AND o.op <> 'expire')";

}  // namespace

ConversationInfo read_conversation(const Statement& row) {
  ConversationInfo info;
  info.id = row.text(0);
  info.kind = row.text(1);
  info.user_id = row.text(2);
  info.ticket_id = row.text(3);
  info.title = row.text(4);
  info.model = row.text(5);
  info.created_at_ms = row.int64(6);
  info.last_activity_ms = row.int64(7);
  info.message_count = row.int64(8);
  info.total_tokens = row.int64(9);
  info.avg_response_ms = row.optional_int64(10);
  return info;
}

namespace {

Result<std::optional<ConversationInfo>> find_conversation_in(Connection& db, std::string_view id) {
  return query_one<ConversationInfo>(
      db, kFindConversation, [&](Statement& q) { q.bind(1, id); }, read_conversation);
}

Result<int64_t> count_user_sessions(Connection& db, std::string_view user_id) {
  Result<std::optional<int64_t>> count = query_one<int64_t>(
      db, kCountUserSessions, [&](Statement& q) { q.bind(1, user_id); },
      [](const Statement& row) { return row.int64(0); });
  if (!count.is_ok()) return count.status();
  return count.value().value_or(0);
}

Status session_limit(std::string_view user_id, int64_t sessions, int limit) {
  return Status::error(ErrorCode::session_limit,
                       "user " + std::string(user_id) + " has " + std::to_string(sessions) +
                           " chat sessions, the limit (sessions.max_per_user = " +
                           std::to_string(limit) + "); delete one first");
}

}  // namespace

Result<ConversationInfo> SqliteStore::create_chat_session(std::string_view user_id,
                                                          std::string_view title,
                                                          std::string_view model,
                                                          const SessionLimits& limits) {
  if (user_id.empty()) return bad_request("a chat session needs a user id");
  if (limits.max_per_user < 1) return bad_request("max_per_user must be at least 1");
  using R = Result<ConversationInfo>;
  return guarded<R>([&] {
    return writer_.transact<R>([&](Connection& db) -> R {
      Result<int64_t> sessions = count_user_sessions(db, user_id);
      if (!sessions.is_ok()) return sessions.status();
      if (sessions.value() >= limits.max_per_user) {
        if (!limits.evict_oldest)
          return session_limit(user_id, sessions.value(), limits.max_per_user);
        // Down to one below the limit, should the limit have been lowered since.
        const int64_t excess = sessions.value() - limits.max_per_user + 1;
        Status expired = execute(db, kExpireOldest, [&](Statement& q) {
          q.bind(1, user_id).bind(2, excess).bind(3, now_ms());
        });
        if (!expired.is_ok()) return expired;
        Status evicted =
            execute(db, kEvictOldest, [&](Statement& q) { q.bind(1, user_id).bind(2, excess); });
        if (!evicted.is_ok()) return evicted;
      }
      std::string id = new_id();
      Status inserted = execute(db, kInsertChat, [&](Statement& q) {
        q.bind(1, id).bind(2, user_id).bind(3, title).bind(4, model).bind(5, now_ms());
      });
      if (!inserted.is_ok()) return inserted;
      Result<std::optional<ConversationInfo>> created = find_conversation_in(db, id);
      if (!created.is_ok()) return created.status();
      if (!created.value()) return internal("store: chat session vanished while writing");
      return std::move(*created.value());
    });
  });
}

Result<std::optional<ConversationInfo>> SqliteStore::find_conversation(std::string_view id) {
  return guarded<Result<std::optional<ConversationInfo>>>([&] {
    auto reader = readers_.acquire();
    return find_conversation_in(*reader, id);
  });
}

Result<ListPage<ConversationInfo>> SqliteStore::list_user_sessions(std::string_view user_id,
                                                                   int limit, int64_t offset) {
  if (Status s = check_page(limit, offset); !s) return s;
  using R = Result<ListPage<ConversationInfo>>;
  return guarded<R>([&] {
    auto reader = readers_.acquire();
    return in_read_snapshot<R>(*reader, [&](Connection& db) -> R {
      Result<int64_t> total = count_user_sessions(db, user_id);
      if (!total.is_ok()) return total.status();
      Result<std::vector<ConversationInfo>> items = query_all<ConversationInfo>(
          db, kListUserSessions,
          [&](Statement& q) { q.bind(1, user_id).bind(2, int64_t{limit}).bind(3, offset); },
          read_conversation);
      if (!items.is_ok()) return items.status();
      return ListPage<ConversationInfo>{std::move(items).value(), total.value()};
    });
  });
}

Result<bool> SqliteStore::delete_chat_session(std::string_view id) {
  return guarded<Result<bool>>([&] {
    return writer_.transact<Result<bool>>([&](Connection& db) -> Result<bool> {
      Status removed =
          execute(db, kRemoveChat, [&](Statement& q) { q.bind(1, id).bind(2, now_ms()); });
      if (!removed.is_ok()) return removed;
      Status deleted = execute(db, kDeleteChat, [&](Statement& q) { q.bind(1, id); });
      if (!deleted.is_ok()) return deleted;
      return sqlite3_changes(db.handle()) > 0;
    });
  });
}

Result<int> SqliteStore::purge_chat_sessions_idle_since(int64_t cutoff_ms) {
  return guarded<Result<int>>([&] {
    return writer_.transact<Result<int>>([&](Connection& db) -> Result<int> {
      Status expired =
          execute(db, kExpireIdle, [&](Statement& q) { q.bind(1, cutoff_ms).bind(2, now_ms()); });
      if (!expired.is_ok()) return expired;
      Status purged = execute(db, kPurgeIdle, [&](Statement& q) { q.bind(1, cutoff_ms); });
      if (!purged.is_ok()) return purged;
      // Counts the sessions only: sqlite3_changes leaves out the cascaded messages.
      return sqlite3_changes(db.handle());
    });
  });
}

}  // namespace ticketaid::sqlite
