// The mirror's documents and writes (see mirror_documents.h).
#include "sync/mirror_documents.h"

#include <openssl/evp.h>

#include <array>
#include <cstdio>
#include <set>
#include <utility>

namespace ticketaid::mirror {
namespace {

using json = nlohmann::ordered_json;

json date(int64_t unix_ms) {
  return {{"$date", {{"$numberLong", std::to_string(unix_ms)}}}};
}

json optional_number(const std::optional<int64_t>& value) {
  return value ? json(*value) : json(nullptr);
}

json seconds(const std::optional<int64_t>& ms) {
  return ms ? json(static_cast<double>(*ms) / 1000.0) : json(nullptr);
}

int64_t message_bytes(const StoredMessage& m) {
  return static_cast<int64_t>(m.content.size()) + 512;  // as the store counts it
}

json stats_of(const GenerationStats& s) {
  return {{"model_used", s.model},
          {"prompt_tokens", optional_number(s.prompt_tokens)},
          {"response_tokens", optional_number(s.response_tokens)},
          {"tokens_used", s.prompt_tokens || s.response_tokens
                              ? json(s.prompt_tokens.value_or(0) + s.response_tokens.value_or(0))
                              : json(nullptr)},
          {"execution_time", seconds(s.duration_ms)},
          {"done_reason", s.done_reason}};
}

json message_of(const StoredMessage& m, bool redact_text) {
  json metadata = {{"timestamp", date(m.created_at_ms)}};
  if (m.role == "assistant") metadata.update(stats_of(m.stats));
  json out = {{"id", m.id},
              {"seq", m.seq},
              {"role", m.role},
              {"client_message_id", m.client_message_id},
              {"reply_to", m.reply_to},
              {"metadata", metadata}};
  if (redact_text) {
    out["content_sha256"] = sha256_hex(m.content);
  } else {
    out["content"] = m.content;
  }
  return out;
}

// The fields of a chat conversation's document that its row decides.
json chat_metadata_set(const MirrorConversation& c) {
  return {{"conversation_id", c.info.id},
          {"user_id", c.info.user_id},
          {"title", c.info.title},
          {"model", c.info.model},
          {"context.model", c.info.model},
          {"context.conversation_state", c.status},
          {"metadata.status", c.status},
          {"metadata.created_at", date(c.info.created_at_ms)},
          {"metadata.avg_response_time", seconds(c.info.avg_response_ms)}};
}

json chat_metadata_max(const MirrorConversation& c) {
  return {{"metadata.last_activity", date(c.info.last_activity_ms)},
          {"metadata.message_count", c.info.message_count},
          {"metadata.total_tokens", c.info.total_tokens}};
}

// Creates the document with its messages array, so that messages.<seq> indexes
// an array; a no-op on an existing document.
Write ensure_chat(const MirrorConversation& c) {
  return {Write::Kind::update_one,
          kChats,
          {{"_id", c.info.id}},
          {{"$setOnInsert", {{"messages", json::array()}}}},
          true};
}

Writes chat_writes(const MirrorItem& item, const DocumentOptions& options) {
  const MirrorConversation& c = *item.conversation;
  Writes out;
  out.writes.push_back(ensure_chat(c));
  json set = chat_metadata_set(c);
  if (item.entry.op == OutboxOp::message && !item.messages.empty()) {
    const StoredMessage& m = item.messages.front();
    const json message = message_of(m, false);
    if (item.bytes_before + message_bytes(m) > options.max_document_bytes) {
      // Past what one document may hold: the message gets a document of its own.
      out.overflowed = true;
      set["metadata.overflow"] = true;
      const std::string key = c.info.id + ":" + std::to_string(m.seq);
      out.writes.push_back(
          {Write::Kind::update_one,
           kChatOverflow,
           {{"_id", key}},
           {{"$set", {{"conversation_id", c.info.id}, {"seq", m.seq}, {"message", message}}}},
           true});
    } else {
      set["messages." + std::to_string(m.seq)] = message;
    }
  }
  out.writes.push_back({Write::Kind::update_one,
                        kChats,
                        {{"_id", c.info.id}},
                        {{"$set", set}, {"$max", chat_metadata_max(c)}},
                        true});
  return out;
}

json revision_of(const MirrorItem& item, const DocumentOptions& options) {
  const MirrorConversation& c = *item.conversation;
  json revision = {{"conversation_id", c.info.id},
                   {"revision", c.revision},
                   {"status", c.status},
                   {"failure_reason", c.failure_reason},
                   {"created_at", date(c.info.created_at_ms)},
                   {"updated_at", date(c.updated_at_ms)}};
  revision.update(stats_of(c.stats));
  json follow_ups = json::array();
  for (const StoredMessage& m : item.messages) {
    if (m.seq == 0) {
      revision["body_sha256"] = sha256_hex(m.content);
      if (!options.redact) revision["body"] = m.content;
    } else if (m.seq == 1) {
      revision["answer"] = m.content;
    } else {
      follow_ups.push_back(message_of(m, options.redact && m.role != "assistant"));
    }
  }
  revision["follow_ups"] = std::move(follow_ups);
  return revision;
}

Writes ticket_writes(const MirrorItem& item, const DocumentOptions& options) {
  const MirrorConversation& c = *item.conversation;
  const std::string& ticket = c.info.ticket_id;
  Writes out;
  json revision = revision_of(item, options);
  int64_t bytes = 0;
  for (const StoredMessage& m : item.messages)
    bytes += message_bytes(m);
  json set = {{"ticket_id", ticket}};
  // The ticket's status is its newest revision's, whichever revision is sent last.
  if (c.revision >= c.latest_revision) set["metadata.status"] = c.status;
  json unset = json::object();
  if (item.bytes_before + bytes > options.max_document_bytes) {
    out.overflowed = true;
    set["metadata.overflow"] = true;
    // A revision that grew past the limit (follow-ups) leaves the main document.
    unset["revisions." + c.info.id] = "";
    out.writes.push_back({Write::Kind::update_one,
                          kTicketOverflow,
                          {{"_id", ticket + ":" + c.info.id}},
                          {{"$set", {{"ticket_id", ticket}, {"revision", revision}}}},
                          true});
  } else {
    set["revisions." + c.info.id] = std::move(revision);
  }
  json update = {{"$set", set},
                 {"$setOnInsert", {{"metadata.created_at", date(c.info.created_at_ms)}}},
                 {"$max",
                  {{"metadata.last_activity", date(c.updated_at_ms)},
                   {"metadata.revision_count", c.revision}}}};
  if (!unset.empty()) update["$unset"] = std::move(unset);
  out.writes.push_back(
      {Write::Kind::update_one, kTickets, {{"_id", ticket}}, std::move(update), true});
  return out;
}

}  // namespace

Writes writes_for(const MirrorItem& item, const DocumentOptions& options) {
  const OutboxEntry& e = item.entry;
  Writes out;
  switch (e.op) {
    case OutboxOp::remove:
      if (e.conversation_id.empty()) {
        out.writes.push_back(
            {Write::Kind::delete_many, kTickets, {{"_id", e.ticket_id}}, {}, false});
        out.writes.push_back(
            {Write::Kind::delete_many, kTicketOverflow, {{"ticket_id", e.ticket_id}}, {}, false});
      } else {
        out.writes.push_back(
            {Write::Kind::delete_many, kChats, {{"_id", e.conversation_id}}, {}, false});
        out.writes.push_back({Write::Kind::delete_many,
                              kChatOverflow,
                              {{"conversation_id", e.conversation_id}},
                              {},
                              false});
      }
      return out;
    case OutboxOp::expire:
      out.writes.push_back(
          {Write::Kind::update_one,
           kChats,
           {{"_id", e.conversation_id}},
           {{"$set", {{"metadata.status", "expired"}, {"context.conversation_state", "expired"}}}},
           false});
      return out;
    case OutboxOp::conversation:
    case OutboxOp::message:
      break;
  }
  if (!item.conversation) return out;  // deleted since: its removal follows
  if (item.conversation->info.kind == "ticket") return ticket_writes(item, options);
  return chat_writes(item, options);
}

std::vector<Write> coalesce(std::vector<Write> writes) {
  std::vector<Write> out;
  std::set<std::pair<std::string, std::string>> written;  // (collection, filter)
  auto same_operators = [](const json& a, const json& b) {
    if (a.size() != b.size()) return false;
    for (const auto& [op, fields] : a.items()) {
      if (!b.contains(op)) return false;
    }
    return true;
  };
  for (Write& w : writes) {
    const auto key = std::make_pair(w.collection, w.filter.dump());
    const bool insert_only = w.kind == Write::Kind::update_one && w.update.size() == 1 &&
                             w.update.contains("$setOnInsert");
    if (insert_only && written.count(key) > 0) continue;
    if (!out.empty()) {
      Write& last = out.back();
      if (last.kind == Write::Kind::update_one && w.kind == Write::Kind::update_one &&
          last.collection == w.collection && last.filter == w.filter && last.upsert == w.upsert &&
          !insert_only && same_operators(last.update, w.update)) {
        for (auto& [op, fields] : w.update.items()) {
          for (auto& [path, value] : fields.items())
            last.update[op][path] = std::move(value);
        }
        continue;
      }
    }
    written.insert(key);
    out.push_back(std::move(w));
  }
  return out;
}

std::vector<std::pair<std::string, nlohmann::ordered_json>> index_specs() {
  auto index = [](json key, const char* name) { return json{{"key", key}, {"name", name}}; };
  const json by_user = index(json::object({{"user_id", 1}, {"metadata.last_activity", -1}}),
                             "user_id_1_metadata.last_activity_-1");
  const json by_status = index(json::object({{"metadata.status", 1}, {"metadata.created_at", -1}}),
                               "metadata.status_1_metadata.created_at_-1");
  return {
      {kChats, json::array({by_user, by_status})},
      {kTickets, json::array({by_status})},
      {kChatOverflow, json::array({index(json::object({{"conversation_id", 1}, {"seq", 1}}),
                                         "conversation_id_1_seq_1")})},
      {kTicketOverflow, json::array({index(json::object({{"ticket_id", 1}}), "ticket_id_1")})},
  };
}

std::string sha256_hex(std::string_view text) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int size = 0;
  EVP_Digest(text.data(), text.size(), digest.data(), &size, EVP_sha256(), nullptr);
  std::string hex;
  hex.reserve(size * 2);
  for (unsigned int i = 0; i < size; ++i) {
    char byte[3];
    std::snprintf(byte, sizeof(byte), "%02x", digest[i]);
    hex += byte;
  }
  return hex;
}

}  // namespace ticketaid::mirror
