// The outbox of the MongoDB mirror, as the syncer reads it (SPEC §6).
//
// While the mirror is on, every transaction that changes a conversation or a
// message also adds an outbox row naming what changed. The syncer takes the oldest
// rows with the content they name as it is now (a MirrorItem), sends them, and
// then acknowledges them, which deletes them. A row whose conversation has since
// been deleted comes back with no content: the delete's own row follows it.
//
// Turning the mirror on, or pointing it at another target, queues every stored
// conversation and message (the backfill); turning it off drops the outbox, so
// that the next time it is turned on starts with a backfill.
//
// Thread-safety: every method may be called from any thread; they block on disk
// I/O, so never on an I/O thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "store/store.h"
#include "util/status.h"

namespace ticketaid {

enum class OutboxOp {
  conversation,  // a conversation's own fields (and for a ticket, its whole revision)
  message,       // one message, at its position in the conversation
  remove,        // the conversation (chat) or the ticket's document was deleted
  expire,        // a chat session purged for idleness or evicted: kept, marked expired
};

struct OutboxEntry {
  int64_t id = 0;  // increasing; rows are sent in this order
  OutboxOp op = OutboxOp::conversation;
  std::string conversation_id;  // empty for the removal of a ticket
  std::string ticket_id;        // tickets
  std::optional<int64_t> seq;   // message rows
  int64_t created_at_ms = 0;
};

// A conversation as the mirror shows it.
struct MirrorConversation {
  ConversationInfo info;       // id, kind, user/ticket, title, model, times, totals
  int revision = 0;            // tickets
  int latest_revision = 0;     // tickets: the ticket's highest revision now
  std::string status;          // tickets: a SessionStatus; chat: "active"
  std::string failure_reason;  // tickets
  GenerationStats stats;       // tickets: the answer's
  int64_t updated_at_ms = 0;
};

// One outbox row with the content it names, read in one snapshot.
struct MirrorItem {
  OutboxEntry entry;
  std::optional<MirrorConversation> conversation;  // nullopt: deleted since
  // message rows: the message; ticket conversation rows: every message of the
  // revision (prompt, answer, follow-ups), oldest first.
  std::vector<StoredMessage> messages;
  // Bytes of content stored in the same MongoDB document before this item (the
  // earlier messages of a chat session; the other revisions of a ticket), which
  // decides whether the item still fits in it.
  int64_t bytes_before = 0;
};

struct OutboxState {
  int64_t depth = 0;                 // rows waiting
  std::optional<int64_t> oldest_ms;  // created_at of the oldest waiting row
  std::string target;                // "" while the mirror is off
};

class Outbox {
 public:
  virtual ~Outbox() = default;

  // Up to max rows after after_id (0: from the start), oldest first.
  virtual Result<std::vector<MirrorItem>> next_batch(int64_t after_id, int max) = 0;
  // Deletes every row up to and including id: they reached MongoDB.
  virtual Status acknowledge(int64_t up_to_id) = 0;
  virtual Result<OutboxState> outbox_state() = 0;
};

}  // namespace ticketaid
