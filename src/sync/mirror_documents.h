// What MongoDB is asked to do for each outbox row: the documents of SPEC §6 and
// the idempotent writes that build them (docs/operations.md, "The MongoDB mirror").
//
// The rule: every write leaves the same document when applied twice, because a
// batch may be sent again after a lost reply, a timeout or a kill -9. So no $push
// and no $inc: a message is $set at its position (messages.<seq>), a ticket
// revision at its key (revisions.<conversation id>), counters and times are the
// values recomputed from SQLite, written with $max, and documents are keyed by the
// store's stable ids.
//
// Pure functions of their input (no driver here): the writes are extended JSON,
// which the syncer turns into BSON.
//
// Thread-safety: none needed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "store/outbox.h"

namespace ticketaid::mirror {

inline constexpr const char* kChats = "chat_conversations";
inline constexpr const char* kChatOverflow = "chat_conversations_overflow";
inline constexpr const char* kTickets = "ticket_ai_sessions";
inline constexpr const char* kTicketOverflow = "ticket_ai_sessions_overflow";

struct DocumentOptions {
  bool redact = false;  // ticket bodies leave out their text; the SHA-256 stays
  int64_t max_document_bytes = 15 * 1024 * 1024;
};

struct Write {
  enum class Kind { update_one, delete_many };
  Kind kind = Kind::update_one;
  std::string collection;
  nlohmann::ordered_json filter;
  nlohmann::ordered_json update;  // update_one: the operators
  bool upsert = true;
};

struct Writes {
  std::vector<Write> writes;
  bool overflowed = false;  // the item went to an _overflow collection
};

Writes writes_for(const MirrorItem& item, const DocumentOptions& options);

// The writes of a batch, fewer: an upsert that only sets fields on insert is dropped
// when an earlier write in the batch already wrote that document (it exists by
// then), and consecutive updates of one document with the same operators become
// one (their fields are disjoint positions, or the same values read from one
// snapshot). The result leaves the same documents as the writes one by one.
std::vector<Write> coalesce(std::vector<Write> writes);

// The indexes created at start-up: {collection, [{key, name}]} as createIndexes takes.
std::vector<std::pair<std::string, nlohmann::ordered_json>> index_specs();

// Lower-case hex SHA-256 of text.
std::string sha256_hex(std::string_view text);

}  // namespace ticketaid::mirror
