// Unit tests of the MongoDB mirror's documents (sync/mirror_documents.h): the
// writes each kind of outbox item becomes, that none of them would change a
// document when applied twice (no $push, no $inc, values at fixed keys), the
// redaction of ticket text, the overflow collections, and the indexes. Pure
// functions of their input: no MongoDB and no test double here.
//
// Thread-safety: each test runs on gtest's one thread.
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "store/outbox.h"
#include "sync/mirror_documents.h"

namespace ticketaid::mirror {
namespace {

using json = nlohmann::ordered_json;

constexpr const char* kAbcSha256 =
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

json date(int64_t ms) {
  return {{"$date", {{"$numberLong", std::to_string(ms)}}}};
}

StoredMessage message(const std::string& conversation, int64_t seq, const std::string& role,
                      const std::string& content) {
  StoredMessage m;
  m.id = "m" + std::to_string(seq);
  m.conversation_id = conversation;
  m.seq = seq;
  m.role = role;
  m.content = content;
  m.created_at_ms = 1000 + seq;
  if (role == "assistant") m.stats = {"llama3.2", 10, 20, 1500, "stop"};
  return m;
}

MirrorConversation chat_conversation() {
  MirrorConversation c;
  c.info.id = "chat1";
  c.info.kind = "chat";
  c.info.user_id = "alice";
  c.info.title = "a title";
  c.info.model = "llama3.2";
  c.info.created_at_ms = 1000;
  c.info.last_activity_ms = 5000;
  c.info.message_count = 4;
  c.info.total_tokens = 30;
  c.info.avg_response_ms = 1500;
  c.status = "active";
  c.updated_at_ms = 5000;
  return c;
}

MirrorItem chat_message_item(int64_t seq, const std::string& content, int64_t bytes_before = 0) {
  MirrorItem item;
  item.entry = {7, OutboxOp::message, "chat1", "", seq, 5000};
  item.conversation = chat_conversation();
  item.messages.push_back(message("chat1", seq, "user", content));
  item.bytes_before = bytes_before;
  return item;
}

// Revision 2 of ticket T-1: the body "abc", its answer, a user's follow-up and the reply.
MirrorItem ticket_item(int64_t bytes_before = 0) {
  MirrorItem item;
  item.entry = {8, OutboxOp::conversation, "conv2", "T-1", std::nullopt, 6000};
  MirrorConversation c;
  c.info.id = "conv2";
  c.info.kind = "ticket";
  c.info.ticket_id = "T-1";
  c.info.model = "llama3.2";
  c.info.created_at_ms = 2000;
  c.info.last_activity_ms = 6000;
  c.revision = 2;
  c.latest_revision = 2;
  c.status = "complete";
  c.stats = {"llama3.2", 5, 7, 2500, "stop"};
  c.updated_at_ms = 6000;
  item.conversation = c;
  item.messages = {
      message("conv2", 0, "user", "abc"), message("conv2", 1, "assistant", "the answer"),
      message("conv2", 2, "user", "secret follow-up"), message("conv2", 3, "assistant", "a reply")};
  item.bytes_before = bytes_before;
  return item;
}

MirrorItem removal(const std::string& conversation, const std::string& ticket) {
  MirrorItem item;
  item.entry = {9, OutboxOp::remove, conversation, ticket, std::nullopt, 7000};
  return item;
}

MirrorItem expiry(const std::string& conversation) {
  MirrorItem item;
  item.entry = {10, OutboxOp::expire, conversation, "", std::nullopt, 7000};
  return item;
}

// The bytes a ticket_item() counts against its document.
int64_t ticket_item_bytes() {
  int64_t bytes = 0;
  for (const StoredMessage& m : ticket_item().messages)
    bytes += static_cast<int64_t>(m.content.size()) + 512;
  return bytes;
}

// Every key anywhere in j that names an operator which changes a document by how
// often it runs.
void find_non_idempotent(const json& j, const std::string& path, std::vector<std::string>& found) {
  if (j.is_object()) {
    for (const auto& [key, value] : j.items()) {
      if (key == "$push" || key == "$inc" || key == "$addToSet" || key == "$pop" ||
          key == "$pull" || key == "$pullAll" || key == "$mul" || key == "$rename") {
        found.push_back(path + "/" + key);
      }
      find_non_idempotent(value, path + "/" + key, found);
    }
  } else if (j.is_array()) {
    for (size_t i = 0; i < j.size(); ++i) {
      find_non_idempotent(j[i], path + "/" + std::to_string(i), found);
    }
  }
}

// MongoDB refuses an update where one field path is a prefix of another ("would
// create a conflict"), across all of its operators.
void expect_no_conflicting_paths(const Write& w) {
  std::vector<std::string> paths;
  for (const auto& [op, fields] : w.update.items()) {
    for (const auto& [field, value] : fields.items())
      paths.push_back(field);
  }
  for (size_t i = 0; i < paths.size(); ++i) {
    for (size_t j = 0; j < paths.size(); ++j) {
      if (i == j) continue;
      EXPECT_FALSE(paths[i] == paths[j] || paths[j].rfind(paths[i] + ".", 0) == 0)
          << w.collection << ": " << paths[i] << " conflicts with " << paths[j] << " in "
          << w.update.dump();
    }
  }
}

DocumentOptions small_documents() {
  DocumentOptions options;
  options.max_document_bytes = 4096;
  return options;
}

// The checks above find what they look for.
Write conflicting_write() {
  return {Write::Kind::update_one,
          kChats,
          {{"_id", "c"}},
          {{"$set", {{"metadata", json::object()}}}, {"$max", {{"metadata.last_activity", 1}}}},
          true};
}

TEST(MirrorDocumentsTest, TheChecksCanFail) {
  std::vector<std::string> found;
  find_non_idempotent(json::parse(R"({"$set": {"a": {"$inc": 1}}, "x": [{"$push": 2}]})"), "",
                      found);
  EXPECT_EQ(found, (std::vector<std::string>{"/$set/a/$inc", "/x/0/$push"}));
  EXPECT_NONFATAL_FAILURE(expect_no_conflicting_paths(conflicting_write()), "conflicts with");
}

TEST(MirrorDocumentsTest, Sha256OfKnownText) {
  EXPECT_EQ(sha256_hex("abc"), kAbcSha256);
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(MirrorDocumentsTest, ChatMessageIsSetAtItsPosition) {
  Writes out = writes_for(chat_message_item(3, "hello"), {});
  EXPECT_FALSE(out.overflowed);
  ASSERT_EQ(out.writes.size(), 2u);

  const Write& ensure = out.writes[0];
  EXPECT_EQ(ensure.kind, Write::Kind::update_one);
  EXPECT_EQ(ensure.collection, kChats);
  EXPECT_EQ(ensure.filter, (json{{"_id", "chat1"}}));
  EXPECT_EQ(ensure.update, (json{{"$setOnInsert", {{"messages", json::array()}}}}));
  EXPECT_TRUE(ensure.upsert);

  const Write& w = out.writes[1];
  EXPECT_EQ(w.kind, Write::Kind::update_one);
  EXPECT_EQ(w.collection, kChats);
  EXPECT_EQ(w.filter, (json{{"_id", "chat1"}}));
  EXPECT_TRUE(w.upsert);
  ASSERT_TRUE(w.update.contains("$set"));
  const json& set = w.update.at("$set");
  ASSERT_TRUE(set.contains("messages.3"));
  EXPECT_EQ(set.at("messages.3").at("id"), "m3");
  EXPECT_EQ(set.at("messages.3").at("seq"), 3);
  EXPECT_EQ(set.at("messages.3").at("role"), "user");
  EXPECT_EQ(set.at("messages.3").at("content"), "hello");
  EXPECT_EQ(set.at("messages.3").at("metadata").at("timestamp"), date(1003));
  EXPECT_EQ(set.at("user_id"), "alice");
  EXPECT_EQ(set.at("metadata.status"), "active");
  EXPECT_EQ(set.at("metadata.avg_response_time"), 1.5);
  EXPECT_FALSE(set.contains("metadata.overflow"));
  EXPECT_EQ(w.update.at("$max"), (json{{"metadata.last_activity", date(5000)},
                                       {"metadata.message_count", 4},
                                       {"metadata.total_tokens", 30}}));
  expect_no_conflicting_paths(w);
}

TEST(MirrorDocumentsTest, AssistantMessagesCarryTheirStats) {
  MirrorItem item = chat_message_item(1, "");
  item.messages[0] = message("chat1", 1, "assistant", "hi");
  Writes out = writes_for(item, {});
  ASSERT_EQ(out.writes.size(), 2u);
  const json& metadata = out.writes[1].update.at("$set").at("messages.1").at("metadata");
  EXPECT_EQ(metadata.at("model_used"), "llama3.2");
  EXPECT_EQ(metadata.at("tokens_used"), 30);
  EXPECT_EQ(metadata.at("execution_time"), 1.5);
}

TEST(MirrorDocumentsTest, ChatConversationRowSetsMetadataOnly) {
  MirrorItem item;
  item.entry = {6, OutboxOp::conversation, "chat1", "", std::nullopt, 5000};
  item.conversation = chat_conversation();
  Writes out = writes_for(item, {});
  ASSERT_EQ(out.writes.size(), 2u);
  const json& set = out.writes[1].update.at("$set");
  EXPECT_EQ(set.at("title"), "a title");
  for (const auto& [key, value] : set.items()) {
    EXPECT_NE(key.rfind("messages", 0), 0u) << key;
  }
}

TEST(MirrorDocumentsTest, OnlyTheNewestRevisionSetsTheTicketsStatus) {
  MirrorItem newest = ticket_item();
  EXPECT_EQ(writes_for(newest, {}).writes.at(0).update.at("$set").at("metadata.status"),
            "complete");
  MirrorItem older = ticket_item();
  older.conversation->latest_revision = 3;  // a follow-up on revision 2 after 3 began
  const Writes out = writes_for(older, {});
  const json& set = out.writes.at(0).update.at("$set");
  EXPECT_FALSE(set.contains("metadata.status")) << set.dump();
  EXPECT_TRUE(set.contains("revisions.conv2"));
}

TEST(MirrorDocumentsTest, TicketRevisionIsSetAtItsKey) {
  Writes out = writes_for(ticket_item(), {});
  EXPECT_FALSE(out.overflowed);
  ASSERT_EQ(out.writes.size(), 1u);
  const Write& w = out.writes[0];
  EXPECT_EQ(w.kind, Write::Kind::update_one);
  EXPECT_EQ(w.collection, kTickets);
  EXPECT_EQ(w.filter, (json{{"_id", "T-1"}}));
  EXPECT_TRUE(w.upsert);
  const json& set = w.update.at("$set");
  EXPECT_EQ(set.at("ticket_id"), "T-1");
  EXPECT_FALSE(set.contains("metadata.overflow"));
  ASSERT_TRUE(set.contains("revisions.conv2"));
  const json& revision = set.at("revisions.conv2");
  EXPECT_EQ(revision.at("revision"), 2);
  EXPECT_EQ(revision.at("status"), "complete");
  EXPECT_EQ(revision.at("body"), "abc");
  EXPECT_EQ(revision.at("body_sha256"), kAbcSha256);
  EXPECT_EQ(revision.at("answer"), "the answer");
  EXPECT_EQ(revision.at("tokens_used"), 12);
  ASSERT_EQ(revision.at("follow_ups").size(), 2u);
  EXPECT_EQ(revision.at("follow_ups")[0].at("content"), "secret follow-up");
  EXPECT_EQ(revision.at("follow_ups")[1].at("content"), "a reply");
  EXPECT_EQ(w.update.at("$max"),
            (json{{"metadata.last_activity", date(6000)}, {"metadata.revision_count", 2}}));
  EXPECT_EQ(w.update.at("$setOnInsert"), (json{{"metadata.created_at", date(2000)}}));
  expect_no_conflicting_paths(w);
}

TEST(MirrorDocumentsTest, RedactLeavesOutTicketTextButKeepsItsHash) {
  DocumentOptions options;
  options.redact = true;
  Writes out = writes_for(ticket_item(), options);
  ASSERT_EQ(out.writes.size(), 1u);
  const json& revision = out.writes[0].update.at("$set").at("revisions.conv2");
  EXPECT_FALSE(revision.contains("body"));
  EXPECT_EQ(revision.at("body_sha256"), kAbcSha256);
  ASSERT_EQ(revision.at("follow_ups").size(), 2u);
  const json& user = revision.at("follow_ups")[0];
  EXPECT_FALSE(user.contains("content"));
  EXPECT_EQ(user.at("content_sha256"), sha256_hex("secret follow-up"));
  const json& assistant = revision.at("follow_ups")[1];
  EXPECT_EQ(assistant.at("content"), "a reply");
  EXPECT_FALSE(assistant.contains("content_sha256"));
  EXPECT_EQ(out.writes[0].update.dump().find("secret follow-up"), std::string::npos);
}

TEST(MirrorDocumentsTest, ChatMessagePastTheDocumentLimitOverflows) {
  const DocumentOptions options = small_documents();
  const int64_t cost = 5 + 512;  // "hello" as the store counts it

  Writes fits =
      writes_for(chat_message_item(4, "hello", options.max_document_bytes - cost), options);
  EXPECT_FALSE(fits.overflowed);
  ASSERT_EQ(fits.writes.size(), 2u);
  EXPECT_TRUE(fits.writes[1].update.at("$set").contains("messages.4"));

  Writes out =
      writes_for(chat_message_item(4, "hello", options.max_document_bytes - cost + 1), options);
  EXPECT_TRUE(out.overflowed);
  ASSERT_EQ(out.writes.size(), 3u);
  EXPECT_EQ(out.writes[0].collection, kChats);  // the ensure
  const Write& overflow = out.writes[1];
  EXPECT_EQ(overflow.collection, kChatOverflow);
  EXPECT_EQ(overflow.filter, (json{{"_id", "chat1:4"}}));
  EXPECT_TRUE(overflow.upsert);
  EXPECT_EQ(overflow.update.at("$set").at("conversation_id"), "chat1");
  EXPECT_EQ(overflow.update.at("$set").at("seq"), 4);
  EXPECT_EQ(overflow.update.at("$set").at("message").at("content"), "hello");
  const Write& document = out.writes[2];
  EXPECT_EQ(document.collection, kChats);
  EXPECT_EQ(document.update.at("$set").at("metadata.overflow"), true);
  EXPECT_FALSE(document.update.at("$set").contains("messages.4"));
  expect_no_conflicting_paths(document);
}

TEST(MirrorDocumentsTest, TicketRevisionPastTheDocumentLimitOverflows) {
  const DocumentOptions options = small_documents();
  const int64_t room = options.max_document_bytes - ticket_item_bytes();

  Writes fits = writes_for(ticket_item(room), options);
  EXPECT_FALSE(fits.overflowed);
  ASSERT_EQ(fits.writes.size(), 1u);

  Writes out = writes_for(ticket_item(room + 1), options);
  EXPECT_TRUE(out.overflowed);
  ASSERT_EQ(out.writes.size(), 2u);
  const Write& overflow = out.writes[0];
  EXPECT_EQ(overflow.collection, kTicketOverflow);
  EXPECT_EQ(overflow.filter, (json{{"_id", "T-1:conv2"}}));
  EXPECT_EQ(overflow.update.at("$set").at("ticket_id"), "T-1");
  EXPECT_EQ(overflow.update.at("$set").at("revision").at("body_sha256"), kAbcSha256);
  EXPECT_EQ(overflow.update.at("$set").at("revision").at("answer"), "the answer");
  const Write& document = out.writes[1];
  EXPECT_EQ(document.collection, kTickets);
  EXPECT_EQ(document.filter, (json{{"_id", "T-1"}}));
  EXPECT_EQ(document.update.at("$set").at("metadata.overflow"), true);
  EXPECT_FALSE(document.update.at("$set").contains("revisions.conv2"));
  expect_no_conflicting_paths(document);
}

TEST(MirrorDocumentsTest, RemovalOfAChatSession) {
  Writes out = writes_for(removal("chat1", ""), {});
  ASSERT_EQ(out.writes.size(), 2u);
  EXPECT_EQ(out.writes[0].kind, Write::Kind::delete_many);
  EXPECT_EQ(out.writes[0].collection, kChats);
  EXPECT_EQ(out.writes[0].filter, (json{{"_id", "chat1"}}));
  EXPECT_EQ(out.writes[1].kind, Write::Kind::delete_many);
  EXPECT_EQ(out.writes[1].collection, kChatOverflow);
  EXPECT_EQ(out.writes[1].filter, (json{{"conversation_id", "chat1"}}));
}

TEST(MirrorDocumentsTest, RemovalOfATicket) {
  Writes out = writes_for(removal("", "T-1"), {});
  ASSERT_EQ(out.writes.size(), 2u);
  EXPECT_EQ(out.writes[0].kind, Write::Kind::delete_many);
  EXPECT_EQ(out.writes[0].collection, kTickets);
  EXPECT_EQ(out.writes[0].filter, (json{{"_id", "T-1"}}));
  EXPECT_EQ(out.writes[1].kind, Write::Kind::delete_many);
  EXPECT_EQ(out.writes[1].collection, kTicketOverflow);
  EXPECT_EQ(out.writes[1].filter, (json{{"ticket_id", "T-1"}}));
}

TEST(MirrorDocumentsTest, ExpiryMarksAnExistingChatDocument) {
  Writes out = writes_for(expiry("chat1"), {});
  ASSERT_EQ(out.writes.size(), 1u);
  const Write& w = out.writes[0];
  EXPECT_EQ(w.kind, Write::Kind::update_one);
  EXPECT_EQ(w.collection, kChats);
  EXPECT_EQ(w.filter, (json{{"_id", "chat1"}}));
  EXPECT_FALSE(w.upsert);  // a session never mirrored is not created just to expire it
  EXPECT_EQ(w.update.at("$set").at("metadata.status"), "expired");
  EXPECT_EQ(w.update.at("$set").at("context.conversation_state"), "expired");
}

TEST(MirrorDocumentsTest, DeletedConversationYieldsNoWrites) {
  MirrorItem chat = chat_message_item(0, "hello");
  chat.conversation.reset();
  chat.messages.clear();
  EXPECT_TRUE(writes_for(chat, {}).writes.empty());

  MirrorItem ticket = ticket_item();
  ticket.conversation.reset();
  ticket.messages.clear();
  EXPECT_TRUE(writes_for(ticket, {}).writes.empty());
}

TEST(MirrorDocumentsTest, NoWriteDependsOnHowOftenItRuns) {
  DocumentOptions redacted = small_documents();
  redacted.redact = true;
  MirrorItem chat_conversation_item = chat_message_item(0, "x");
  chat_conversation_item.entry.op = OutboxOp::conversation;
  chat_conversation_item.messages.clear();
  const std::vector<MirrorItem> items = {chat_message_item(2, "hello"),
                                         chat_message_item(2, "hello", 1 << 20),
                                         chat_conversation_item,
                                         ticket_item(),
                                         ticket_item(1 << 20),
                                         removal("chat1", ""),
                                         removal("", "T-1"),
                                         expiry("chat1")};
  size_t writes = 0;
  for (const DocumentOptions& options : {DocumentOptions{}, redacted}) {
    for (const MirrorItem& item : items) {
      for (const Write& w : writes_for(item, options).writes) {
        ++writes;
        std::vector<std::string> found;
        find_non_idempotent(w.update, w.collection, found);
        find_non_idempotent(w.filter, w.collection, found);
        EXPECT_TRUE(found.empty()) << testing::PrintToString(found);
        // Keyed by the store's stable ids, never matched by content.
        EXPECT_TRUE(w.filter.contains("_id") || w.filter.contains("conversation_id") ||
                    w.filter.contains("ticket_id"))
            << w.filter.dump();
      }
    }
  }
  EXPECT_GE(writes, 2 * items.size());
}

TEST(MirrorDocumentsTest, IndexKeysAreInOrder) {
  std::vector<std::pair<std::string, json>> specs = index_specs();
  const json* chats = nullptr;
  for (const auto& [collection, indexes] : specs) {
    if (collection == kChats) chats = &indexes;
  }
  ASSERT_NE(chats, nullptr);
  const json* by_user = nullptr;
  for (const json& index : *chats) {
    if (index.at("name") == "user_id_1_metadata.last_activity_-1") by_user = &index;
  }
  ASSERT_NE(by_user, nullptr);
  // A compound index's key order is part of the index: dump() shows it as stored.
  EXPECT_EQ((*by_user).at("key").dump(), R"({"user_id":1,"metadata.last_activity":-1})");

  for (const auto& [collection, indexes] : specs) {
    for (const json& index : indexes) {
      std::string name;
      for (const auto& [field, direction] : index.at("key").items()) {
        name += (name.empty() ? "" : "_") + field + "_" + std::to_string(direction.get<int>());
      }
      EXPECT_EQ(index.at("name"), name) << collection;
    }
  }
}

}  // namespace
}  // namespace ticketaid::mirror
