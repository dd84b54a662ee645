// The store's schema, as an ordered list of migration steps, and the code that
// applies them. Thread-safety: see migrations.h.
//
// Rules for new steps: append, never edit a released step; keep each step valid
// for the oldest SQLite a package targets (no STRICT tables, no RETURNING), since
// the .rpm may link an older system SQLite than Debian 12's 3.40.
#include "store/migrations.h"

#include <array>
#include <string>

#include "store/store.h"

namespace ticketaid::sqlite {
namespace {

struct Migration {
  int version;
  const char* sql;
};

// Version 1: conversations and their messages.
//
// A conversation is a ticket's AI session (kind 'ticket', one row per revision,
// ticket_id + revision set) or a chat session (kind 'chat', user_id set). status is
// one of SessionStatus's names for tickets; chat sessions will add their own.
// A ticket revision's prompt is message seq 0 (role 'user'); its answer is message
// seq 1 (role 'assistant'), present only while the revision is complete; follow-ups
// continue from seq 2. The stats of a ticket's answer are kept on both the
// conversation (for the session view) and the message (for the message view).
// Times are unix epoch milliseconds. Ids are random 128-bit hex strings, stable
// for the life of a row, so that a mirror can upsert by them.
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE conversations (
  id              TEXT PRIMARY KEY,
  kind            TEXT NOT NULL CHECK (kind IN ('ticket', 'chat')),
  ticket_id       TEXT,
  revision        INTEGER,
  user_id         TEXT,
  title           TEXT NOT NULL DEFAULT '',
  model           TEXT NOT NULL DEFAULT '',
  status          TEXT NOT NULL,
  failure_reason  TEXT NOT NULL DEFAULT '',
  prompt_tokens   INTEGER,
  response_tokens INTEGER,
  duration_ms     INTEGER,
  done_reason     TEXT NOT NULL DEFAULT '',
  created_at      INTEGER NOT NULL,
  updated_at      INTEGER NOT NULL,
  UNIQUE (ticket_id, revision),
  CHECK (kind <> 'ticket' OR (ticket_id IS NOT NULL AND revision >= 1)),
  CHECK (kind <> 'chat' OR (ticket_id IS NULL AND revision IS NULL))
);

-- Sessions in a given state, e.g. those still generating at start-up.
CREATE INDEX conversations_by_status ON conversations (kind, status, updated_at);

CREATE TABLE messages (
  id                TEXT PRIMARY KEY,
  conversation_id   TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
  seq               INTEGER NOT NULL CHECK (seq >= 0),
  role              TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
  content           TEXT NOT NULL,
  model             TEXT NOT NULL DEFAULT '',
  prompt_tokens     INTEGER,
  response_tokens   INTEGER,
  duration_ms       INTEGER,
  done_reason       TEXT NOT NULL DEFAULT '',
  client_message_id TEXT,
  created_at        INTEGER NOT NULL,
  UNIQUE (conversation_id, seq),
  UNIQUE (conversation_id, client_message_id)
);
)sql";

// Version 2: chat sessions and follow-up messages.
//
// A chat conversation's status is 'active' and its updated_at is the time of its
// last activity (creation or the last message stored), which orders a user's
// sessions and decides when an idle one is purged. An assistant's reply names the
// message it answers in reply_to (the store checks that both are in the same
// conversation); a message has at most one reply.
constexpr const char* kSchemaV2 = R"sql(
ALTER TABLE messages ADD COLUMN reply_to TEXT;

CREATE UNIQUE INDEX messages_one_reply ON messages (conversation_id, reply_to)
  WHERE reply_to IS NOT NULL;

-- A user's chat sessions, most recently active first; counted at creation. (The
-- purge of idle sessions goes through conversations_by_status.)
CREATE INDEX conversations_chat_by_user ON conversations (user_id, updated_at)
  WHERE kind = 'chat';
)sql";

// Version 3: the outbox of the MongoDB mirror (docs/operations.md, "The MongoDB
// mirror").
//
// mirror_state holds one row: the mirror's target ("" while the mirror is off).
// While it is set, triggers add an outbox row in the transaction of every insert
// and update of a conversation or a message; the deletes add theirs explicitly
// (store/outbox_sql.h), since a delete and an expiry are mirrored differently. A
// row names what changed, not its content: the syncer reads the current content
// when it sends the row, so that the outbox stays small and a replay writes the
// same values again.
constexpr const char* kSchemaV3 = R"sql(
CREATE TABLE mirror_state (
  id     INTEGER PRIMARY KEY CHECK (id = 1),
  target TEXT NOT NULL DEFAULT ''
);
INSERT INTO mirror_state (id, target) VALUES (1, '');

CREATE TABLE mirror_outbox (
  id              INTEGER PRIMARY KEY AUTOINCREMENT,
  op              TEXT NOT NULL CHECK (op IN ('conversation', 'message', 'delete', 'expire')),
  conversation_id TEXT,
  ticket_id       TEXT,
  seq             INTEGER,
  created_at      INTEGER NOT NULL
);

-- The purge of idle sessions waits for their rows to be sent.
CREATE INDEX mirror_outbox_by_conversation ON mirror_outbox (conversation_id);

CREATE TRIGGER mirror_conversation_insert AFTER INSERT ON conversations
WHEN (SELECT target FROM mirror_state WHERE id = 1) <> ''
BEGIN
  INSERT INTO mirror_outbox (op, conversation_id, ticket_id, created_at)
  VALUES ('conversation', NEW.id, NEW.ticket_id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;

CREATE TRIGGER mirror_conversation_update AFTER UPDATE ON conversations
WHEN (SELECT target FROM mirror_state WHERE id = 1) <> ''
BEGIN
  INSERT INTO mirror_outbox (op, conversation_id, ticket_id, created_at)
  VALUES ('conversation', NEW.id, NEW.ticket_id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;

CREATE TRIGGER mirror_message_insert AFTER INSERT ON messages
WHEN (SELECT target FROM mirror_state WHERE id = 1) <> ''
BEGIN
  INSERT INTO mirror_outbox (op, conversation_id, seq, created_at)
  VALUES ('message', NEW.conversation_id, NEW.seq, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;

CREATE TRIGGER mirror_message_update AFTER UPDATE ON messages
WHEN (SELECT target FROM mirror_state WHERE id = 1) <> ''
BEGIN
  INSERT INTO mirror_outbox (op, conversation_id, seq, created_at)
  VALUES ('message', NEW.conversation_id, NEW.seq, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;
)sql";

constexpr std::array kMigrations{
    Migration{1, kSchemaV1},
    Migration{2, kSchemaV2},
    Migration{3, kSchemaV3},
};

constexpr bool versions_are_consecutive() {
  for (size_t i = 0; i < kMigrations.size(); ++i) {
    if (kMigrations[i].version != static_cast<int>(i) + 1) return false;
  }
  return true;
}
static_assert(versions_are_consecutive(), "migration versions must be 1, 2, 3, ...");

constexpr int kLatestVersion = static_cast<int>(kMigrations.size());

Result<int64_t> query_int(Connection& db, std::string_view sql) {
  Result<std::string> text = db.query_text(sql);
  if (!text.is_ok()) return text.status();
  try {
    return static_cast<int64_t>(std::stoll(text.value()));
  } catch (const std::exception&) {
    return Status::error(ErrorCode::internal,
                         "sqlite: unexpected answer to " + std::string(sql) + ": " + text.value());
  }
}

Status refuse(const Connection& db, const std::string& why) {
  return Status::error(ErrorCode::internal, db.path() + ": " + why);
}

// Checks, inside the open transaction, that the file is ours and not from the
// future. Returns the current version.
Result<int> check_database(Connection& db) {
  Result<int64_t> version = query_int(db, "PRAGMA user_version");
  if (!version.is_ok()) return version.status();
  Result<int64_t> application_id = query_int(db, "PRAGMA application_id");
  if (!application_id.is_ok()) return application_id.status();

  if (application_id.value() != 0 && application_id.value() != kApplicationId) {
    return refuse(db, "not a ticketaid database (application_id " +
                          std::to_string(application_id.value()) + ")");
  }
  if (version.value() > kLatestVersion) {
    return refuse(db, "database schema version " + std::to_string(version.value()) +
                          " is newer than this ticketaid (knows up to " +
                          std::to_string(kLatestVersion) +
                          "); upgrade ticketaid or restore a backup");
  }
  if (version.value() == 0) {
    Result<int64_t> objects = query_int(db, "SELECT count(*) FROM sqlite_schema");
    if (!objects.is_ok()) return objects.status();
    if (objects.value() != 0) {
      return refuse(db,
                    "the file holds tables that ticketaid did not create; point "
                    "storage.path at a new file");
    }
  }
  if (version.value() < 0) {
    return refuse(db, "invalid schema version " + std::to_string(version.value()));
  }
  return static_cast<int>(version.value());
}

// Applies the step after the current version, or reports that none is left.
Result<bool> apply_next_step(Connection& db) {
  return run_in_transaction<Result<bool>>(db, [](Connection& tx) -> Result<bool> {
    Result<int> version = check_database(tx);
    if (!version.is_ok()) return version.status();
    if (version.value() == kLatestVersion) return false;
    const Migration& step = kMigrations[static_cast<size_t>(version.value())];
    if (Status applied = tx.exec(step.sql); !applied.is_ok()) {
      return Status::error(ErrorCode::internal, "migration to schema version " +
                                                    std::to_string(step.version) +
                                                    " failed: " + applied.message());
    }
    std::string stamp = "PRAGMA user_version = " + std::to_string(step.version) +
                        "; PRAGMA application_id = " + std::to_string(kApplicationId);
    if (Status stamped = tx.exec(stamp); !stamped.is_ok()) return stamped;
    return true;
  });
}

}  // namespace

Status migrate(Connection& db) {
  for (;;) {
    Result<bool> applied = apply_next_step(db);
    if (!applied.is_ok()) return applied.status();
    if (!applied.value()) return Status::ok();
  }
}

}  // namespace ticketaid::sqlite

namespace ticketaid {

int sqlite_schema_version() {
  return sqlite::kLatestVersion;
}

}  // namespace ticketaid
