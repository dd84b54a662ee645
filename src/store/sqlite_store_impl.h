// The SQLite implementation of Store, private to src/store/: the class and the few
// helpers its method files share. The methods live in sqlite_store.cpp (ticket
// sessions, opening), sqlite_chat.cpp (chat sessions) and sqlite_messages.cpp
// (the messages of any conversation: appends, replies, history).
//
// One write connection, owned by the Writer thread: every write method submits a
// job that runs in its own BEGIN IMMEDIATE transaction and waits for its result.
// Reads borrow one of a few read-only connections from a ReaderPool; in WAL mode
// they see the last committed state and never wait for the writer. A read is a
// single statement, or several inside one read transaction, so it sees one
// consistent snapshot.
//
// Thread-safety: every Store method may be called from any thread at once. The id
// generator (new_id) is touched only on the writer thread, inside a transact() job.
#pragma once

#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "store/outbox.h"
#include "store/sqlite_db.h"
#include "store/store.h"

namespace ticketaid::sqlite {

inline int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

inline Status internal(std::string message) {
  return Status::error(ErrorCode::internal, std::move(message));
}

// Runs body, turning an escaping exception (allocation failure, ...) into a Status.
template <class R, class F>
R guarded(F&& body) {
  try {
    return body();
  } catch (const std::exception& e) {
    return R(internal(std::string("store: ") + e.what()));
  } catch (...) {
    return R(internal("store: unexpected exception"));
  }
}

// Runs sql with the parameters bound by bind(Statement&).
template <class Bind>
Status execute(Connection& db, const char* sql, Bind&& bind) {
  Result<StatementLease> statement = db.prepare(sql);
  if (!statement.is_ok()) return statement.status();
  bind(*statement.value());
  return statement.value()->run();
}

// Errors and checks shared by the chat methods.
inline Status bad_request(std::string message) {
  return Status::error(ErrorCode::bad_request, "store: " + std::move(message));
}

inline Status no_conversation(std::string_view id) {
  return Status::error(ErrorCode::not_found, "no conversation " + std::string(id));
}

// The condition under which a statement adds outbox rows: the mirror is on.
#define MIRROR_IS_ON "(SELECT target FROM mirror_state WHERE id = 1) <> ''"

// Reads a row of the messages table, columns: id, conversation_id, seq, role,
// content, client_message_id, reply_to, model, prompt_tokens, response_tokens,
// duration_ms, done_reason, created_at (sqlite_messages.cpp).
StoredMessage read_message(const Statement& row);

// Reads a conversation with its metadata, columns: id, kind, user_id, ticket_id,
// title, model, created_at, updated_at, message count, total tokens, mean reply
// duration (sqlite_chat.cpp).
ConversationInfo read_conversation(const Statement& row);

// At opening: turns the mirror's outbox on for target, off for "" (sqlite_outbox.cpp).
// A new target queues everything stored (the backfill); returns how many rows.
Result<int64_t> configure_mirror(Connection& db, const std::string& target);

inline Status check_page(int64_t limit, int64_t offset) {
  if (limit < 0) return bad_request("limit must not be negative");
  if (offset < 0) return bad_request("offset must not be negative");
  return Status::ok();
}

class SqliteStore final : public Store, public Outbox {
 public:
  SqliteStore(std::unique_ptr<Connection> writer, std::vector<std::unique_ptr<Connection>> readers)
      : rng_(seeded_generator()), writer_(std::move(writer)), readers_(std::move(readers)) {}

  // Ticket sessions (sqlite_store.cpp).
  Result<std::optional<TicketSession>> find_ticket_session(std::string_view ticket_id) override;
  Result<TicketSession> begin_ticket_generation(std::string_view ticket_id, std::string_view prompt,
                                                std::string_view model) override;
  Status complete_ticket_generation(std::string_view ticket_id, int revision,
                                    std::string_view response,
                                    const GenerationStats& stats) override;
  Status end_ticket_generation(std::string_view ticket_id, int revision, SessionStatus status,
                               std::string_view reason) override;
  Result<int> mark_interrupted() override;
  Status checkpoint(bool truncate) override;
  Status ping() override;
  Result<TicketPage> list_ticket_sessions(std::optional<SessionStatus> status, int limit,
                                          int64_t offset) override;
  Result<bool> delete_ticket_session(std::string_view ticket_id) override;
  Result<std::vector<TicketSession>> list_ticket_revisions(std::string_view ticket_id) override;
  Status import_ticket_answer(std::string_view ticket_id, std::string_view prompt,
                              std::string_view response, const GenerationStats& stats) override;
  Outbox* outbox() override { return this; }

  // The mirror's outbox (sqlite_outbox.cpp).
  Result<std::vector<MirrorItem>> next_batch(int64_t after_id, int max) override;
  Status acknowledge(int64_t up_to_id) override;
  Result<OutboxState> outbox_state() override;

  // Chat sessions (sqlite_chat.cpp).
  Result<ConversationInfo> create_chat_session(std::string_view user_id, std::string_view title,
                                               std::string_view model,
                                               const SessionLimits& limits) override;
  Result<std::optional<ConversationInfo>> find_conversation(std::string_view id) override;
  Result<ListPage<ConversationInfo>> list_user_sessions(std::string_view user_id, int limit,
                                                        int64_t offset) override;
  Result<bool> delete_chat_session(std::string_view id) override;
  Result<int> purge_chat_sessions_idle_since(int64_t cutoff_ms) override;

  // Messages of any conversation (sqlite_messages.cpp).
  Result<AppendOutcome> append_message(std::string_view conversation_id, std::string_view role,
                                       std::string_view content, std::string_view client_message_id,
                                       int max_messages) override;
  Result<StoredMessage> store_reply(std::string_view conversation_id, std::string_view reply_to,
                                    std::string_view content,
                                    const GenerationStats& stats) override;
  Result<std::optional<StoredMessage>> find_reply(std::string_view conversation_id,
                                                  std::string_view message_id) override;
  Result<ListPage<StoredMessage>> list_messages(std::string_view conversation_id, int limit,
                                                int64_t offset) override;
  Result<std::vector<StoredMessage>> last_messages(std::string_view conversation_id,
                                                   int n) override;

 private:
  static std::mt19937_64 seeded_generator();
  // A random 128-bit id as 32 hex digits. Writer thread only.
  std::string new_id();

  Status insert_revision(Connection& db, std::string_view ticket_id, int revision,
                         std::string_view prompt, std::string_view model, int64_t now);
  Status reset_revision(Connection& db, const std::string& conversation_id, std::string_view prompt,
                        std::string_view model, int64_t now);
  // Stores the answer of a generating revision and marks it complete.
  Status write_answer(Connection& db, const std::string& conversation_id, std::string_view response,
                      const GenerationStats& stats, int64_t now);
  Status upsert_prompt(Connection& db, const std::string& conversation_id, std::string_view prompt,
                       int64_t now);

  // Declared first, destroyed last: the writer thread may use it until it stops.
  std::mt19937_64 rng_;
  // Destroyed after the readers, so the write connection closes last and can
  // checkpoint the WAL into the database file.
  Writer writer_;
  ReaderPool readers_;
};

}  // namespace ticketaid::sqlite
