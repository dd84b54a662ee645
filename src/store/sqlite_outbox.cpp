// The MongoDB mirror's outbox in SQLite: the part of SqliteStore that turns the
// outbox on and off, backfills it, and hands its rows to the syncer with the
// content they name (the contract is in store/outbox.h, the tables and triggers in
// migrations.cpp, version 3).
//
// A batch is read in one read transaction, so its items agree with each other. A
// ticket's rows always carry the whole revision: the mirror keeps a revision as
// one entry of the ticket's document.
//
// Thread-safety: as for SqliteStore; configure_mirror runs once, at opening, before
// any other thread has the store.
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "store/sqlite_db.h"
#include "store/sqlite_store_impl.h"

namespace ticketaid::sqlite {
namespace {

constexpr const char* kTarget = "SELECT target FROM mirror_state WHERE id = 1";
constexpr const char* kSetTarget = "UPDATE mirror_state SET target = ?1 WHERE id = 1";
constexpr const char* kDropOutbox = "DELETE FROM mirror_outbox";

// The backfill: every conversation, then every chat message in order (a ticket's
// conversation row carries its messages).
constexpr const char* kBackfillConversations =
    "INSERT INTO mirror_outbox (op, conversation_id, ticket_id, created_at) "
    "SELECT 'conversation', id, ticket_id, ?1 FROM conversations ORDER BY created_at, rowid";
constexpr const char* kBackfillMessages =
    "INSERT INTO mirror_outbox (op, conversation_id, seq, created_at) "
    "SELECT 'message', m.conversation_id, m.seq, ?1 FROM messages AS m "
    "JOIN conversations AS c ON c.id = m.conversation_id WHERE c.kind = 'chat' "
    "ORDER BY c.created_at, c.rowid, m.seq";

constexpr const char* kNextRows =
    "SELECT id, op, coalesce(conversation_id, ''), coalesce(ticket_id, ''), seq, created_at "
    "FROM mirror_outbox WHERE id > ?1 ORDER BY id LIMIT ?2";

constexpr const char* kAcknowledge = "DELETE FROM mirror_outbox WHERE id <= ?1";

constexpr const char* kState =
    "SELECT count(*), min(created_at), (SELECT target FROM mirror_state WHERE id = 1) "
    "FROM mirror_outbox";

// read_conversation's columns, then the ticket revision's own fields.
constexpr const char* kConversation =
    "SELECT c.id, c.kind, c.user_id, c.ticket_id, c.title, c.model, c.created_at, "
    "c.updated_at, count(m.id), coalesce(sum(CASE WHEN m.role = 'assistant' THEN "
    "coalesce(m.prompt_tokens, 0) + coalesce(m.response_tokens, 0) END), 0), "
    "CAST(round(avg(CASE WHEN m.role = 'assistant' THEN m.duration_ms END)) AS INTEGER), "
    "coalesce(c.revision, 0), c.status, c.failure_reason, c.prompt_tokens, c.response_tokens, "
    "c.duration_ms, c.done_reason, (SELECT max(revision) FROM conversations AS t "
    "WHERE t.kind = 'ticket' AND t.ticket_id = c.ticket_id) "
    "FROM conversations AS c LEFT JOIN messages AS m ON m.conversation_id = c.id "
    "WHERE c.id = ?1 GROUP BY c.id";

#define MESSAGE_COLUMNS                                                                          \
  "id, conversation_id, seq, role, content, client_message_id, reply_to, model, prompt_tokens, " \
  "response_tokens, duration_ms, done_reason, created_at FROM messages "
constexpr const char* kMessage =
    "SELECT " MESSAGE_COLUMNS "WHERE conversation_id = ?1 AND seq = ?2";
constexpr const char* kAllMessages =
    "SELECT " MESSAGE_COLUMNS "WHERE conversation_id = ?1 ORDER BY seq";
#undef MESSAGE_COLUMNS

// What a message costs in its document: its content and a bound on its other fields.
#define MESSAGE_BYTES "length(CAST(content AS BLOB)) + 512"
constexpr const char* kBytesBeforeMessage = "SELECT coalesce(sum(" MESSAGE_BYTES
                                            "), 0) FROM messages WHERE conversation_id = ?1 "
                                            "AND seq < ?2";
// A ticket's document holds every revision; the earlier ones come first.
constexpr const char* kBytesBeforeRevision =
    "SELECT coalesce(sum(" MESSAGE_BYTES
    "), 0) FROM messages WHERE conversation_id IN "
    "(SELECT id FROM conversations WHERE kind = 'ticket' AND ticket_id = ?1 AND revision < ?2)";
#undef MESSAGE_BYTES

std::optional<OutboxOp> parse_op(const std::string& op) {
  if (op == "conversation") return OutboxOp::conversation;
  if (op == "message") return OutboxOp::message;
  if (op == "delete") return OutboxOp::remove;
  if (op == "expire") return OutboxOp::expire;
  return std::nullopt;
}

MirrorConversation read_mirror_conversation(const Statement& row) {
  MirrorConversation c;
  c.info = read_conversation(row);
  c.revision = static_cast<int>(row.int64(11));
  c.status = row.text(12);
  c.failure_reason = row.text(13);
  c.stats.model = c.info.model;
  c.stats.prompt_tokens = row.optional_int64(14);
  c.stats.response_tokens = row.optional_int64(15);
  c.stats.duration_ms = row.optional_int64(16);
  c.stats.done_reason = row.text(17);
  c.latest_revision = static_cast<int>(row.optional_int64(18).value_or(0));
  c.updated_at_ms = c.info.last_activity_ms;
  return c;
}

Result<int64_t> single_int(Connection& db, const char* sql, const std::string& key, int64_t n) {
  Result<std::optional<int64_t>> value = query_one<int64_t>(
      db, sql, [&](Statement& q) { q.bind(1, key).bind(2, n); },
      [](const Statement& row) { return row.int64(0); });
  if (!value.is_ok()) return value.status();
  return value.value().value_or(0);
}

// Fills in what an outbox row names, as it is now.
class BatchReader {
 public:
  explicit BatchReader(Connection& db) : db_(db) {}

  Status fill(MirrorItem& item) {
    const OutboxEntry& entry = item.entry;
    if (entry.op == OutboxOp::remove || entry.op == OutboxOp::expire) return Status::ok();
    Result<std::optional<MirrorConversation>> found = conversation(entry.conversation_id);
    if (!found.is_ok()) return found.status();
    item.conversation = found.value();
    if (!item.conversation) return Status::ok();  // deleted since
    const MirrorConversation& c = *item.conversation;
    if (c.info.kind == "ticket") {
      // Any change to a ticket's conversation is sent as its whole revision.
      item.entry.op = OutboxOp::conversation;
      item.entry.seq.reset();
      item.entry.ticket_id = c.info.ticket_id;
      Result<std::vector<StoredMessage>> all = query_all<StoredMessage>(
          db_, kAllMessages, [&](Statement& q) { q.bind(1, c.info.id); }, read_message);
      if (!all.is_ok()) return all.status();
      item.messages = std::move(all).value();
      Result<int64_t> before =
          single_int(db_, kBytesBeforeRevision, c.info.ticket_id, int64_t{c.revision});
      if (!before.is_ok()) return before.status();
      item.bytes_before = before.value();
      return Status::ok();
    }
    if (entry.op != OutboxOp::message || !entry.seq) return Status::ok();
    Result<std::optional<StoredMessage>> message = query_one<StoredMessage>(
        db_, kMessage, [&](Statement& q) { q.bind(1, entry.conversation_id).bind(2, *entry.seq); },
        read_message);
    if (!message.is_ok()) return message.status();
    if (!message.value()) return Status::ok();  // deleted with its conversation since
    item.messages.push_back(std::move(*message.value()));
    Result<int64_t> before =
        single_int(db_, kBytesBeforeMessage, entry.conversation_id, *entry.seq);
    if (!before.is_ok()) return before.status();
    item.bytes_before = before.value();
    return Status::ok();
  }

 private:
  Result<std::optional<MirrorConversation>> conversation(const std::string& id) {
    if (auto it = seen_.find(id); it != seen_.end()) return it->second;
    Result<std::optional<MirrorConversation>> found = query_one<MirrorConversation>(
        db_, kConversation, [&](Statement& q) { q.bind(1, id); }, read_mirror_conversation);
    if (found.is_ok()) seen_.emplace(id, found.value());
    return found;
  }

  Connection& db_;
  std::map<std::string, std::optional<MirrorConversation>> seen_;
};

}  // namespace

Result<int64_t> configure_mirror(Connection& db, const std::string& target) {
  return run_in_transaction<Result<int64_t>>(db, [&](Connection& tx) -> Result<int64_t> {
    Result<std::string> current = tx.query_text(kTarget);
    if (!current.is_ok()) return current.status();
    if (current.value() == target) return int64_t{0};
    if (Status s = tx.exec(kDropOutbox); !s) return s;
    if (Status s = execute(tx, kSetTarget, [&](Statement& q) { q.bind(1, target); }); !s) return s;
    if (target.empty()) return int64_t{0};
    const int64_t now = now_ms();
    for (const char* sql : {kBackfillConversations, kBackfillMessages}) {
      if (Status s = execute(tx, sql, [&](Statement& q) { q.bind(1, now); }); !s) return s;
    }
    Result<std::string> queued = tx.query_text("SELECT count(*) FROM mirror_outbox");
    if (!queued.is_ok()) return queued.status();
    return static_cast<int64_t>(std::stoll(queued.value()));
  });
}

Result<std::vector<MirrorItem>> SqliteStore::next_batch(int64_t after_id, int max) {
  using R = Result<std::vector<MirrorItem>>;
  return guarded<R>([&]() -> R {
    auto reader = readers_.acquire();
    return in_read_snapshot<R>(*reader, [&](Connection& db) -> R {
      std::vector<MirrorItem> items;
      Result<StatementLease> rows = db.prepare(kNextRows);
      if (!rows.is_ok()) return rows.status();
      Statement& q = *rows.value();
      q.bind(1, after_id).bind(2, int64_t{max});
      for (;;) {
        Result<bool> row = q.step();
        if (!row.is_ok()) return row.status();
        if (!row.value()) break;
        std::optional<OutboxOp> op = parse_op(q.text(1));
        if (!op) return internal("store: outbox row " + q.text(0) + " has unknown op " + q.text(1));
        MirrorItem item;
        item.entry =
            OutboxEntry{q.int64(0), *op, q.text(2), q.text(3), q.optional_int64(4), q.int64(5)};
        items.push_back(std::move(item));
      }
      BatchReader reader_of(db);
      for (MirrorItem& item : items) {
        if (Status s = reader_of.fill(item); !s) return s;
      }
      return items;
    });
  });
}

Status SqliteStore::acknowledge(int64_t up_to_id) {
  return guarded<Status>([&] {
    return writer_.transact<Status>([&](Connection& db) -> Status {
      return execute(db, kAcknowledge, [&](Statement& q) { q.bind(1, up_to_id); });
    });
  });
}

Result<OutboxState> SqliteStore::outbox_state() {
  using R = Result<OutboxState>;
  return guarded<R>([&]() -> R {
    auto reader = readers_.acquire();
    Result<std::optional<OutboxState>> state = query_one<OutboxState>(
        *reader, kState, [](Statement&) {},
        [](const Statement& row) {
          return OutboxState{row.int64(0), row.optional_int64(1), row.text(2)};
        });
    if (!state.is_ok()) return state.status();
    return state.value().value_or(OutboxState{});
  });
}

}  // namespace ticketaid::sqlite
