// The SQLite implementation of Store: ticket sessions and opening the database.
// Chat sessions and messages are in sqlite_chat.cpp and sqlite_messages.cpp; the
// class and its model of connections and threads are in sqlite_store_impl.h.
//
// Thread-safety: every Store method may be called from any thread at once (see
// sqlite_store_impl.h).
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "store/migrations.h"
#include "store/sqlite_db.h"
#include "store/sqlite_store_impl.h"
#include "store/store.h"

namespace ticketaid {

std::string_view to_string(SessionStatus s) {
  switch (s) {
    case SessionStatus::generating:
      return "generating";
    case SessionStatus::complete:
      return "complete";
    case SessionStatus::failed:
      return "failed";
    case SessionStatus::interrupted:
      return "interrupted";
    case SessionStatus::cancelled:
      return "cancelled";
  }
  return "failed";
}

std::optional<SessionStatus> parse_session_status(std::string_view s) {
  for (SessionStatus status :
       {SessionStatus::generating, SessionStatus::complete, SessionStatus::failed,
        SessionStatus::interrupted, SessionStatus::cancelled}) {
    if (to_string(status) == s) return status;
  }
  return std::nullopt;
}

}  // namespace ticketaid

namespace ticketaid::sqlite {
namespace {

constexpr std::string_view kInterruptedReason = "the daemon stopped during generation";

// The columns that read_ticket() expects, after column 0, which holds the number of
// earlier revisions (or 0 where the caller counts them itself).
#define TICKET_COLUMNS                                                                    \
  "c.ticket_id, c.id, c.revision, c.status, c.failure_reason, c.model, c.prompt_tokens, " \
  "c.response_tokens, c.duration_ms, c.done_reason, c.created_at, c.updated_at, "         \
  "p.content, r.content "                                                                 \
  "FROM conversations AS c "                                                              \
  "LEFT JOIN messages AS p ON p.conversation_id = c.id AND p.seq = 0 "                    \
  "LEFT JOIN messages AS r ON r.conversation_id = c.id AND r.seq = 1 "

constexpr const char* kFindCurrent =
    "SELECT (SELECT count(*) FROM conversations AS e WHERE e.kind = 'ticket' "
    "AND e.ticket_id = c.ticket_id AND e.revision < c.revision), " TICKET_COLUMNS
    "WHERE c.kind = 'ticket' AND c.ticket_id = ?1 ORDER BY c.revision DESC LIMIT 1";

constexpr const char* kListEarlier =
    "SELECT 0, " TICKET_COLUMNS
    "WHERE c.kind = 'ticket' AND c.ticket_id = ?1 AND c.revision < (SELECT max(revision) "
    "FROM conversations WHERE kind = 'ticket' AND ticket_id = ?1) ORDER BY c.revision DESC";

// The newest revision of each ticket, optionally in one status (?1 NULL: any).
constexpr const char* kListCurrent =
    "SELECT (SELECT count(*) FROM conversations AS e WHERE e.kind = 'ticket' "
    "AND e.ticket_id = c.ticket_id AND e.revision < c.revision), " TICKET_COLUMNS
    "WHERE c.kind = 'ticket' AND c.revision = (SELECT max(revision) FROM conversations AS m "
    "WHERE m.kind = 'ticket' AND m.ticket_id = c.ticket_id) AND (?1 IS NULL OR c.status = ?1) "
    "ORDER BY c.updated_at DESC, c.ticket_id LIMIT ?2 OFFSET ?3";

#undef TICKET_COLUMNS

constexpr const char* kCountCurrent =
    "SELECT count(*) FROM conversations AS c WHERE c.kind = 'ticket' AND c.revision = "
    "(SELECT max(revision) FROM conversations AS m WHERE m.kind = 'ticket' AND "
    "m.ticket_id = c.ticket_id) AND (?1 IS NULL OR c.status = ?1)";

constexpr const char* kRemoveTicket =
    "INSERT INTO mirror_outbox (op, ticket_id, created_at) SELECT 'delete', ?1, ?2 "
    "WHERE EXISTS (SELECT 1 FROM conversations WHERE kind = 'ticket' AND ticket_id = ?1) "
    "AND " MIRROR_IS_ON;

constexpr const char* kDeleteTicket =
    "DELETE FROM conversations WHERE kind = 'ticket' AND ticket_id = ?1";

constexpr const char* kFindRevision =
    "SELECT id, status, model FROM conversations "
    "WHERE kind = 'ticket' AND ticket_id = ?1 AND revision = ?2";

constexpr const char* kInsertConversation =
    "INSERT INTO conversations (id, kind, ticket_id, revision, model, status, created_at, "
    "updated_at) VALUES (?1, 'ticket', ?2, ?3, ?4, 'generating', ?5, ?5)";

constexpr const char* kUpsertPrompt =
    "INSERT INTO messages (id, conversation_id, seq, role, content, created_at) "
    "VALUES (?1, ?2, 0, 'user', ?3, ?4) ON CONFLICT (conversation_id, seq) "
    "DO UPDATE SET content = excluded.content, created_at = excluded.created_at";

constexpr const char* kResetConversation =
    "UPDATE conversations SET status = 'generating', model = ?2, failure_reason = '', "
    "prompt_tokens = NULL, response_tokens = NULL, duration_ms = NULL, done_reason = '', "
    "updated_at = ?3 WHERE id = ?1";

constexpr const char* kDeleteReplies =
    "DELETE FROM messages WHERE conversation_id = ?1 AND seq >= 1";

constexpr const char* kInsertAnswer =
    "INSERT INTO messages (id, conversation_id, seq, role, content, model, prompt_tokens, "
    "response_tokens, duration_ms, done_reason, created_at) "
    "VALUES (?1, ?2, 1, 'assistant', ?3, ?4, ?5, ?6, ?7, ?8, ?9)";

constexpr const char* kCompleteConversation =
    "UPDATE conversations SET status = 'complete', model = ?2, failure_reason = '', "
    "prompt_tokens = ?3, response_tokens = ?4, duration_ms = ?5, done_reason = ?6, "
    "updated_at = ?7 WHERE id = ?1";

constexpr const char* kEndConversation =
    "UPDATE conversations SET status = ?2, failure_reason = ?3, updated_at = ?4 WHERE id = ?1";

constexpr const char* kMarkInterrupted =
    "UPDATE conversations SET status = 'interrupted', failure_reason = ?1, updated_at = ?2 "
    "WHERE kind = 'ticket' AND status = 'generating'";

// Reads the current row of kFindCurrent or kListEarlier.
Result<TicketSession> read_ticket(const Statement& row) {
  TicketSession session;
  session.revision_count = static_cast<int>(row.int64(0));
  session.ticket_id = row.text(1);
  session.conversation_id = row.text(2);
  session.revision = static_cast<int>(row.int64(3));
  std::string status = row.text(4);
  std::optional<SessionStatus> parsed = parse_session_status(status);
  if (!parsed) {
    return internal("store: ticket " + session.ticket_id + " has unknown status '" + status + "'");
  }
  session.status = *parsed;
  session.failure_reason = row.text(5);
  session.stats.model = row.text(6);
  session.stats.prompt_tokens = row.optional_int64(7);
  session.stats.response_tokens = row.optional_int64(8);
  session.stats.duration_ms = row.optional_int64(9);
  session.stats.done_reason = row.text(10);
  session.created_at_ms = row.int64(11);
  session.updated_at_ms = row.int64(12);
  session.prompt = row.text(13);
  session.response = row.text(14);
  return session;
}

Result<std::optional<TicketSession>> find_current(Connection& db, std::string_view ticket_id) {
  Result<StatementLease> query = db.prepare(kFindCurrent);
  if (!query.is_ok()) return query.status();
  Statement& q = *query.value();
  q.bind(1, ticket_id);
  Result<bool> row = q.step();
  if (!row.is_ok()) return row.status();
  if (!row.value()) return std::optional<TicketSession>();
  Result<TicketSession> session = read_ticket(q);
  if (!session.is_ok()) return session.status();
  return std::optional<TicketSession>(std::move(session).value());
}

struct RevisionRow {
  std::string conversation_id;
  std::string model;
};

// The revision, which must exist and be generating.
Result<RevisionRow> generating_revision(Connection& db, std::string_view ticket_id, int revision) {
  Result<StatementLease> query = db.prepare(kFindRevision);
  if (!query.is_ok()) return query.status();
  Statement& q = *query.value();
  q.bind(1, ticket_id).bind(2, int64_t{revision});
  Result<bool> row = q.step();
  if (!row.is_ok()) return row.status();
  std::string name = "ticket " + std::string(ticket_id) + " revision " + std::to_string(revision);
  if (!row.value()) return Status::error(ErrorCode::not_found, "no " + name);
  std::string status = q.text(1);
  if (status != to_string(SessionStatus::generating)) {
    return Status::error(ErrorCode::bad_request, name + " is " + status + ", not generating");
  }
  return RevisionRow{q.text(0), q.text(2)};
}

}  // namespace

Result<std::optional<TicketSession>> SqliteStore::find_ticket_session(std::string_view ticket_id) {
  return guarded<Result<std::optional<TicketSession>>>([&] {
    auto reader = readers_.acquire();
    return find_current(*reader, ticket_id);
  });
}

Result<TicketSession> SqliteStore::begin_ticket_generation(std::string_view ticket_id,
                                                           std::string_view prompt,
                                                           std::string_view model) {
  using R = Result<TicketSession>;
  return guarded<R>([&] {
    return writer_.transact<R>([&](Connection& db) -> R {
      Result<std::optional<TicketSession>> current = find_current(db, ticket_id);
      if (!current.is_ok()) return current.status();
      const std::optional<TicketSession>& found = current.value();
      int64_t now = now_ms();
      if (found && found->status != SessionStatus::complete) {
        if (Status s = reset_revision(db, found->conversation_id, prompt, model, now); !s) {
          return s;
        }
      } else {
        int revision = found ? found->revision + 1 : 1;
        if (Status s = insert_revision(db, ticket_id, revision, prompt, model, now); !s) {
          return s;
        }
      }
      Result<std::optional<TicketSession>> updated = find_current(db, ticket_id);
      if (!updated.is_ok()) return updated.status();
      if (!updated.value()) return internal("store: ticket session vanished while writing");
      return std::move(*updated.value());
    });
  });
}

Status SqliteStore::complete_ticket_generation(std::string_view ticket_id, int revision,
                                               std::string_view response,
                                               const GenerationStats& stats) {
  return guarded<Status>([&] {
    return writer_.transact<Status>([&](Connection& db) -> Status {
      Result<RevisionRow> row = generating_revision(db, ticket_id, revision);
      if (!row.is_ok()) return row.status();
      GenerationStats kept = stats;
      if (kept.model.empty()) kept.model = row->model;
      return write_answer(db, row->conversation_id, response, kept, now_ms());
    });
  });
}

Status SqliteStore::write_answer(Connection& db, const std::string& conversation_id,
                                 std::string_view response, const GenerationStats& stats,
                                 int64_t now) {
  Status inserted = execute(db, kInsertAnswer, [&](Statement& q) {
    q.bind(1, new_id()).bind(2, conversation_id).bind(3, response).bind(4, stats.model);
    q.bind(5, stats.prompt_tokens).bind(6, stats.response_tokens);
    q.bind(7, stats.duration_ms).bind(8, stats.done_reason).bind(9, now);
  });
  if (!inserted.is_ok()) return inserted;
  return execute(db, kCompleteConversation, [&](Statement& q) {
    q.bind(1, conversation_id).bind(2, stats.model).bind(3, stats.prompt_tokens);
    q.bind(4, stats.response_tokens).bind(5, stats.duration_ms);
    q.bind(6, stats.done_reason).bind(7, now);
  });
}

Status SqliteStore::end_ticket_generation(std::string_view ticket_id, int revision,
                                          SessionStatus status, std::string_view reason) {
  if (status == SessionStatus::generating || status == SessionStatus::complete) {
    return Status::error(ErrorCode::bad_request,
                         "end_ticket_generation takes failed, cancelled or interrupted, not " +
                             std::string(to_string(status)));
  }
  return guarded<Status>([&] {
    return writer_.transact<Status>([&](Connection& db) -> Status {
      Result<RevisionRow> row = generating_revision(db, ticket_id, revision);
      if (!row.is_ok()) return row.status();
      return execute(db, kEndConversation, [&](Statement& q) {
        q.bind(1, row->conversation_id).bind(2, to_string(status)).bind(3, reason);
        q.bind(4, now_ms());
      });
    });
  });
}

Result<int> SqliteStore::mark_interrupted() {
  return guarded<Result<int>>([&] {
    return writer_.transact<Result<int>>([&](Connection& db) -> Result<int> {
      Status updated = execute(db, kMarkInterrupted, [&](Statement& q) {
        q.bind(1, kInterruptedReason).bind(2, now_ms());
      });
      if (!updated.is_ok()) return updated;
      return sqlite3_changes(db.handle());
    });
  });
}

Status SqliteStore::checkpoint(bool truncate) {
  return writer_.outside_transaction([truncate](Connection& db) {
    return db.exec(truncate ? "PRAGMA wal_checkpoint(TRUNCATE)" : "PRAGMA wal_checkpoint(PASSIVE)");
  });
}

Status SqliteStore::ping() {
  return writer_.outside_transaction([](Connection&) { return Status::ok(); });
}

Result<Store::TicketPage> SqliteStore::list_ticket_sessions(std::optional<SessionStatus> status,
                                                            int limit, int64_t offset) {
  auto bind_status = [&](Statement& q) {
    if (status) {
      q.bind(1, to_string(*status));
    } else {
      q.bind_null(1);
    }
  };
  using R = Result<TicketPage>;
  return guarded<R>([&]() -> R {
    auto reader = readers_.acquire();
    // One snapshot, so that the total counts the rows the page is taken from.
    return in_read_snapshot<R>(*reader, [&](Connection& db) -> R {
      TicketPage page;
      Result<std::optional<int64_t>> total = query_one<int64_t>(
          db, kCountCurrent, bind_status, [](const Statement& row) { return row.int64(0); });
      if (!total.is_ok()) return total.status();
      page.total = total.value().value_or(0);

      Result<StatementLease> query = db.prepare(kListCurrent);
      if (!query.is_ok()) return query.status();
      Statement& q = *query.value();
      bind_status(q);
      q.bind(2, int64_t{limit}).bind(3, offset);
      for (;;) {
        Result<bool> row = q.step();
        if (!row.is_ok()) return row.status();
        if (!row.value()) return page;
        Result<TicketSession> session = read_ticket(q);
        if (!session.is_ok()) return session.status();
        page.items.push_back(std::move(session).value());
      }
    });
  });
}

Result<bool> SqliteStore::delete_ticket_session(std::string_view ticket_id) {
  return guarded<Result<bool>>([&] {
    return writer_.transact<Result<bool>>([&](Connection& db) -> Result<bool> {
      Status removed =
          execute(db, kRemoveTicket, [&](Statement& q) { q.bind(1, ticket_id).bind(2, now_ms()); });
      if (!removed.is_ok()) return removed;
      Status deleted = execute(db, kDeleteTicket, [&](Statement& q) { q.bind(1, ticket_id); });
      if (!deleted.is_ok()) return deleted;
      return sqlite3_changes(db.handle()) > 0;
    });
  });
}

Status SqliteStore::import_ticket_answer(std::string_view ticket_id, std::string_view prompt,
                                         std::string_view response, const GenerationStats& stats) {
  return guarded<Status>([&] {
    return writer_.transact<Status>([&](Connection& db) -> Status {
      Result<std::optional<TicketSession>> current = find_current(db, ticket_id);
      if (!current.is_ok()) return current.status();
      const std::optional<TicketSession>& found = current.value();
      if (found && found->status == SessionStatus::complete && found->prompt == prompt) {
        return Status::ok();
      }
      if (found && found->status == SessionStatus::generating) {
        return bad_request("ticket " + std::string(ticket_id) + " is being generated here");
      }
      int64_t now = now_ms();
      int revision = found ? found->revision : 1;
      if (found && found->status == SessionStatus::complete) {
        revision = found->revision + 1;
        if (Status s = insert_revision(db, ticket_id, revision, prompt, stats.model, now); !s) {
          return s;
        }
      } else if (found) {
        if (Status s = reset_revision(db, found->conversation_id, prompt, stats.model, now); !s) {
          return s;
        }
      } else if (Status s = insert_revision(db, ticket_id, revision, prompt, stats.model, now);
                 !s) {
        return s;
      }
      Result<RevisionRow> row = generating_revision(db, ticket_id, revision);
      if (!row.is_ok()) return row.status();
      return write_answer(db, row->conversation_id, response, stats, now);
    });
  });
}

Result<std::vector<TicketSession>> SqliteStore::list_ticket_revisions(std::string_view ticket_id) {
  using R = Result<std::vector<TicketSession>>;
  return guarded<R>([&]() -> R {
    auto reader = readers_.acquire();
    Result<StatementLease> query = reader->prepare(kListEarlier);
    if (!query.is_ok()) return query.status();
    Statement& q = *query.value();
    q.bind(1, ticket_id);
    std::vector<TicketSession> revisions;
    for (;;) {
      Result<bool> row = q.step();
      if (!row.is_ok()) return row.status();
      if (!row.value()) break;
      Result<TicketSession> session = read_ticket(q);
      if (!session.is_ok()) return session.status();
      revisions.push_back(std::move(session).value());
    }
    // Newest first: each revision has as many earlier ones as follow it here.
    for (size_t i = 0; i < revisions.size(); ++i) {
      revisions[i].revision_count = static_cast<int>(revisions.size() - 1 - i);
    }
    return revisions;
  });
}

std::mt19937_64 SqliteStore::seeded_generator() {
  std::random_device device;
  std::seed_seq seed{device(), device(), device(), device(),
                     device(), device(), device(), device()};
  return std::mt19937_64(seed);
}

std::string SqliteStore::new_id() {
  char buffer[33];
  std::snprintf(buffer, sizeof buffer, "%016llx%016llx", static_cast<unsigned long long>(rng_()),
                static_cast<unsigned long long>(rng_()));
  return std::string(buffer, 32);
}

Status SqliteStore::insert_revision(Connection& db, std::string_view ticket_id, int revision,
                                    std::string_view prompt, std::string_view model, int64_t now) {
  std::string conversation_id = new_id();
  Status inserted = execute(db, kInsertConversation, [&](Statement& q) {
    q.bind(1, conversation_id).bind(2, ticket_id).bind(3, int64_t{revision});
    q.bind(4, model).bind(5, now);
  });
  if (!inserted.is_ok()) return inserted;
  return upsert_prompt(db, conversation_id, prompt, now);
}

Status SqliteStore::reset_revision(Connection& db, const std::string& conversation_id,
                                   std::string_view prompt, std::string_view model, int64_t now) {
  Status reset = execute(db, kResetConversation, [&](Statement& q) {
    q.bind(1, conversation_id).bind(2, model).bind(3, now);
  });
  if (!reset.is_ok()) return reset;
  Status deleted = execute(db, kDeleteReplies, [&](Statement& q) { q.bind(1, conversation_id); });
  if (!deleted.is_ok()) return deleted;
  return upsert_prompt(db, conversation_id, prompt, now);
}

// The prompt message keeps its id when a revision is reused.
Status SqliteStore::upsert_prompt(Connection& db, const std::string& conversation_id,
                                  std::string_view prompt, int64_t now) {
  return execute(db, kUpsertPrompt, [&](Statement& q) {
    q.bind(1, new_id()).bind(2, conversation_id).bind(3, prompt).bind(4, now);
  });
}

namespace {

Status bad_option(std::string message) {
  return Status::error(ErrorCode::bad_request, "storage: " + std::move(message));
}

// Settings every connection gets; the write connection also sets the journal mode.
Status configure(Connection& db, const char* synchronous_pragma) {
  if (Status s = db.exec("PRAGMA foreign_keys = ON"); !s) return s;
  return db.exec(synchronous_pragma);
}

Result<std::unique_ptr<Store>> open_store(const SqliteOptions& options) {
  if (options.path.empty()) return bad_option("the database path is empty");
  if (options.path == ":memory:") {
    return bad_option("the database path must name a file, not ':memory:'");
  }
  const char* synchronous = nullptr;
  if (options.synchronous == "full") synchronous = "PRAGMA synchronous = FULL";
  if (options.synchronous == "normal") synchronous = "PRAGMA synchronous = NORMAL";
  if (synchronous == nullptr) {
    return bad_option("synchronous must be 'full' or 'normal', not '" + options.synchronous + "'");
  }
  if (options.busy_timeout_ms < 0) return bad_option("busy_timeout_ms must not be negative");
  if (options.reader_connections < 1) return bad_option("reader_connections must be at least 1");

  auto writer = Connection::open(options.path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                                 options.busy_timeout_ms);
  if (!writer.is_ok()) return writer.status();
  Connection& db = *writer.value();
  if (Status s = configure(db, synchronous); !s) return s;
  // Migrate first: it refuses a file that is not ours before anything changes it.
  if (Status s = migrate(db); !s) return s;
  if (options.mirror_target) {
    Result<int64_t> queued = configure_mirror(db, *options.mirror_target);
    if (!queued.is_ok()) return queued.status();
  }
  Result<std::string> mode = db.query_text("PRAGMA journal_mode = WAL");
  if (!mode.is_ok()) return mode.status();
  if (mode.value() != "wal") {
    return internal(options.path + ": cannot use write-ahead logging (journal mode stays '" +
                    mode.value() + "'); put the database on a local file system");
  }

  std::vector<std::unique_ptr<Connection>> readers;
  for (int i = 0; i < options.reader_connections; ++i) {
    auto reader = Connection::open(options.path, SQLITE_OPEN_READONLY, options.busy_timeout_ms);
    if (!reader.is_ok()) return reader.status();
    if (Status s = configure(*reader.value(), synchronous); !s) return s;
    readers.push_back(std::move(reader).value());
  }
  return std::unique_ptr<Store>(
      std::make_unique<SqliteStore>(std::move(writer).value(), std::move(readers)));
}

}  // namespace
}  // namespace ticketaid::sqlite

namespace ticketaid {

Result<std::unique_ptr<Store>> open_sqlite_store(const SqliteOptions& options) {
  using R = Result<std::unique_ptr<Store>>;
  return sqlite::guarded<R>([&] { return sqlite::open_store(options); });
}

}  // namespace ticketaid
