// Durable storage of conversations: ticket answers and (later) chat sessions.
//
// The data model: a conversation is an ordered list of messages. A ticket's AI
// session is a conversation of kind "ticket" whose first message is the ticket body
// (role user) and whose second is the answer (role assistant). Regenerating a
// ticket with a new body starts a new revision of the ticket (a new conversation);
// earlier revisions stay readable. Chat sessions are conversations of kind "chat".
//
// Thread-safety: every method may be called from any thread, concurrently. Methods
// block (disk I/O): never call them on an I/O thread. Writes are serialised on one
// writer; reads run on their own connections and see committed data only. A write
// that returns ok is durable to the degree set by storage.synchronous.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace ticketaid {

enum class SessionStatus { generating, complete, failed, interrupted, cancelled };
std::string_view to_string(SessionStatus s);
std::optional<SessionStatus> parse_session_status(std::string_view s);

// Counters Ollama reported for one reply; absent when it did not report them.
struct GenerationStats {
  std::string model;
  std::optional<int64_t> prompt_tokens;
  std::optional<int64_t> response_tokens;
  std::optional<int64_t> duration_ms;
  std::string done_reason;
};

// One revision of a ticket's AI session.
struct TicketSession {
  std::string ticket_id;
  std::string conversation_id;
  int revision = 0;  // 1 for the first answer, +1 for each regeneration that kept one
  std::string prompt;
  std::string response;  // empty unless complete
  SessionStatus status = SessionStatus::generating;
  std::string failure_reason;  // for failed / interrupted / cancelled
  GenerationStats stats;       // stats.model is the model asked
  int64_t created_at_ms = 0;   // unix epoch milliseconds
  int64_t updated_at_ms = 0;
  // Number of earlier revisions (filled by find_ticket_session). Every earlier
  // revision holds a complete answer: a new revision is only started over a complete
  // one, and a complete revision never changes status.
  int revision_count = 0;
};

class Store {
 public:
  virtual ~Store() = default;

  // The current (highest) revision of a ticket's session, or nullopt.
  virtual Result<std::optional<TicketSession>> find_ticket_session(std::string_view ticket_id) = 0;

  // Marks the start of a generation for (ticket, prompt) and returns the session row
  // now in status generating. When the current revision is complete it is kept as an
  // earlier revision and a new revision is created; otherwise (none, failed,
  // interrupted, cancelled, generating) the current revision is reused and reset.
  virtual Result<TicketSession> begin_ticket_generation(std::string_view ticket_id,
                                                        std::string_view prompt,
                                                        std::string_view model) = 0;

  // Stores the answer and marks the revision complete, in one transaction. Fails
  // with not_found when the revision does not exist, bad_request when it is not
  // generating (a complete answer is never overwritten).
  virtual Status complete_ticket_generation(std::string_view ticket_id, int revision,
                                            std::string_view response,
                                            const GenerationStats& stats) = 0;

  // Marks the revision failed / cancelled / interrupted with a reason; nothing cached.
  // Fails like complete_ticket_generation when the revision is not generating, and
  // with bad_request for any other status.
  virtual Status end_ticket_generation(std::string_view ticket_id, int revision,
                                       SessionStatus status, std::string_view reason) = 0;

  // At start-up: every session still generating is marked interrupted. Returns how many.
  virtual Result<int> mark_interrupted() = 0;

  // The current revision of every ticket, most recently updated first, optionally
  // only those in one status; total counts all that match.
  struct TicketPage {
    std::vector<TicketSession> items;
    int64_t total = 0;
  };
  virtual Result<TicketPage> list_ticket_sessions(std::optional<SessionStatus> status, int limit,
                                                  int64_t offset) = 0;

  // Deletes every revision of a ticket's session; false when there was none.
  virtual Result<bool> delete_ticket_session(std::string_view ticket_id) = 0;

  // Earlier revisions of a ticket, newest first (excludes the current one).
  virtual Result<std::vector<TicketSession>> list_ticket_revisions(std::string_view ticket_id) = 0;
};

struct SqliteOptions {
  std::string path;
  std::string synchronous = "full";  // "full" or "normal"
  int busy_timeout_ms = 5000;
  int reader_connections = 4;
};

// Opens (creating if needed) and migrates the database. Refuses a database whose
// schema version is newer than this binary knows, with a message naming both.
Result<std::unique_ptr<Store>> open_sqlite_store(const SqliteOptions& options);

// The schema version this binary writes.
int sqlite_schema_version();

// Copies a live database (one the daemon may be writing) to dest_path with SQLite's
// online backup API: a consistent snapshot of every committed transaction. dest_path
// must not exist.
Status backup_sqlite_database(const std::string& source_path, const std::string& dest_path);

// What `ticketaid doctor` reports about a database file, opened read-only.
struct DatabaseCheck {
  int schema_version = 0;
  std::string integrity;  // "ok", or the first problems PRAGMA quick_check found
  int64_t tickets = 0;
};
Result<DatabaseCheck> check_sqlite_database(const std::string& path);

}  // namespace ticketaid
