// The real libmongoc 1.23 against the MongoDB test double (or the MongoDB named by
// TICKETAID_TEST_MONGO_URI): each command the mirror uses, each fault the double
// injects, and what the driver does about it, through a mongoc_client_pool_t as the
// daemon uses one. The fault tests skip against a real server.
//
// Thread-safety: each test runs on gtest's one thread.
#include <gtest/gtest.h>
#include <mongoc/mongoc.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "support/mongo/fake_mongo.h"
#include "support/mongo/mongoc_handles.h"

namespace ticketaid::testing {
namespace {

using Clock = std::chrono::steady_clock;
using json = nlohmann::ordered_json;  // BSON field order is kept

constexpr const char* kDatabase = "ticketaid_fake_mongo_test";
constexpr const char* kCollection = "answers";

OwnedBson from_json(const std::string& text) {
  bson_error_t error;
  OwnedBson doc(bson_new_from_json(reinterpret_cast<const uint8_t*>(text.data()),
                                   static_cast<ssize_t>(text.size()), &error));
  EXPECT_TRUE(doc) << "bad JSON in the test: " << text << ": " << error.message;
  return doc ? std::move(doc) : OwnedBson(bson_new());
}

json to_json(const bson_t* doc) {
  char* text = bson_as_relaxed_extended_json(doc, nullptr);
  json parsed = json::parse(text, nullptr, /*allow_exceptions=*/false);
  bson_free(text);
  return parsed;
}

// A pool as the daemon makes one: error API 2, built from uri() with some options
// changed by `tweak`.
class Pool {
 public:
  explicit Pool(const std::string& uri, const std::function<void(mongoc_uri_t*)>& tweak = {}) {
    bson_error_t error;
    mongoc_uri_t* parsed = mongoc_uri_new_with_error(uri.c_str(), &error);
    if (parsed == nullptr) {
      ADD_FAILURE() << "bad URI " << uri << ": " << error.message;
      return;
    }
    if (tweak) tweak(parsed);
    pool_ = mongoc_client_pool_new_with_error(parsed, &error);
    mongoc_uri_destroy(parsed);
    if (pool_ == nullptr) {
      ADD_FAILURE() << "mongoc_client_pool_new_with_error: " << error.message;
      return;
    }
    mongoc_client_pool_set_error_api(pool_, MONGOC_ERROR_API_VERSION_2);
    mongoc_client_pool_set_appname(pool_, "ticketaid-driver-test");
  }
  ~Pool() {
    if (pool_ != nullptr) mongoc_client_pool_destroy(pool_);
  }
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;
  mongoc_client_pool_t* get() const { return pool_; }

 private:
  mongoc_client_pool_t* pool_ = nullptr;
};

// A client popped from a pool for one scope.
class Pooled {
 public:
  explicit Pooled(const Pool& pool) : pool_(pool.get()) {
    if (pool_ != nullptr) client_ = mongoc_client_pool_pop(pool_);
  }
  ~Pooled() {
    if (client_ != nullptr) mongoc_client_pool_push(pool_, client_);
  }
  Pooled(const Pooled&) = delete;
  Pooled& operator=(const Pooled&) = delete;
  mongoc_client_t* get() const { return client_; }

 private:
  mongoc_client_pool_t* pool_;
  mongoc_client_t* client_ = nullptr;
};

struct Outcome {
  bool ok = false;
  bson_error_t error{};
  json reply;  // the server's reply, or what the driver made of the failure

  std::string describe() const {
    return std::string(ok ? "ok" : "failed") + ": " + error.message + " (domain " +
           std::to_string(error.domain) + ", code " + std::to_string(error.code) + ") reply " +
           reply.dump();
  }
};

Outcome update_one(mongoc_client_t* client, const std::string& filter, const std::string& update,
                   bool upsert = true) {
  mongoc_collection_t* coll = mongoc_client_get_collection(client, kDatabase, kCollection);
  OwnedBson opts = from_json(upsert ? R"({"upsert": true})" : "{}");
  bson_t reply;
  Outcome out;
  out.ok = mongoc_collection_update_one(coll, from_json(filter).get(), from_json(update).get(),
                                        opts.get(), &reply, &out.error);
  out.reply = to_json(&reply);
  bson_destroy(&reply);
  mongoc_collection_destroy(coll);
  return out;
}

Outcome command(mongoc_client_t* client, const std::string& database, const std::string& body) {
  bson_t reply;
  Outcome out;
  out.ok = mongoc_client_command_with_opts(client, database.c_str(), from_json(body).get(), nullptr,
                                           nullptr, &reply, &out.error);
  out.reply = to_json(&reply);
  bson_destroy(&reply);
  return out;
}

// Polls `condition` until it holds or `timeout` passes; returns whether it held.
bool eventually(const std::function<bool()>& condition,
                std::chrono::milliseconds timeout = std::chrono::milliseconds(10'000)) {
  const auto deadline = Clock::now() + timeout;
  while (!condition()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

class FakeMongoDriverTest : public ::testing::Test {
 protected:
  // Starts the double (or checks the external server) and empties the test database.
  bool start() {
    if (!mongo_.start()) return false;
    return mongo_.drop_database(kDatabase);
  }

  json docs(const std::string& filter = "{}") {
    return mongo_.documents(kDatabase, kCollection, filter);
  }

  // The double's count of `name` commands received / applied write statements.
  int received(const std::string& name) { return mongo_.stats()["commands"].value(name, 0); }
  int applied(const std::string& name) {
    return mongo_.stats()["writes_applied_by_command"].value(name, 0);
  }

  FakeMongo mongo_;
};

TEST_F(FakeMongoDriverTest, HandshakeAndPing) {
  if (!start()) return;
  Pool pool(mongo_.uri());
  Pooled client(pool);
  const Outcome ping = command(client.get(), "admin", R"({"ping": 1})");
  ASSERT_TRUE(ping.ok) << ping.describe();
  EXPECT_EQ(ping.reply["ok"], 1.0);
  const Outcome info = command(client.get(), "admin", R"({"buildInfo": 1})");
  ASSERT_TRUE(info.ok) << info.describe();
  if (mongo_.external()) return;
  EXPECT_EQ(info.reply["version"], "5.0.0");
  // The handshake of each connection is a legacy OP_QUERY isMaster.
  const nlohmann::json commands = mongo_.stats()["commands"];
  EXPECT_GE(
      commands.value("isMaster", 0) + commands.value("ismaster", 0) + commands.value("hello", 0), 1)
      << commands.dump() << "\n"
      << mongo_.log_text();
}

TEST_F(FakeMongoDriverTest, UpsertSetsArrayPositionsAndAReplayChangesNothing) {
  if (!start()) return;
  Pool pool(mongo_.uri());
  Pooled client(pool);
  Outcome created = update_one(client.get(), R"({"_id": "t1"})",
                               R"({"$setOnInsert": {"messages": []}, "$set": {"ticket": 1}})");
  ASSERT_TRUE(created.ok) << created.describe();
  EXPECT_EQ(created.reply["upsertedCount"], 1) << created.reply;

  const std::string set_two =
      R"({"$set": {"messages.0": {"role": "user", "text": "hi"},
                   "messages.2": {"role": "assistant", "text": "third"}}})";
  Outcome set = update_one(client.get(), R"({"_id": "t1"})", set_two);
  ASSERT_TRUE(set.ok) << set.describe();
  EXPECT_EQ(set.reply["modifiedCount"], 1) << set.reply;
  const json expected = json::parse(R"([{"_id": "t1", "messages": [
      {"role": "user", "text": "hi"}, null, {"role": "assistant", "text": "third"}],
      "ticket": 1}])");
  EXPECT_EQ(docs(), expected);

  // A replay (as after a lost reply) matches and modifies nothing.
  Outcome replay = update_one(client.get(), R"({"_id": "t1"})", set_two);
  ASSERT_TRUE(replay.ok) << replay.describe();
  EXPECT_EQ(replay.reply["matchedCount"], 1) << replay.reply;
  EXPECT_EQ(replay.reply["modifiedCount"], 0) << replay.reply;
  EXPECT_EQ(docs(), expected);

  // $setOnInsert is ignored on an update, so a replay of the creation keeps messages.
  ASSERT_TRUE(update_one(client.get(), R"({"_id": "t1"})",
                         R"({"$setOnInsert": {"messages": []}, "$set": {"ticket": 1}})")
                  .ok);
  EXPECT_EQ(docs(), expected);
}

TEST_F(FakeMongoDriverTest, MaxKeepsTheGreaterNumberAndDate) {
  if (!start()) return;
  Pool pool(mongo_.uri());
  Pooled client(pool);
  const std::string late = R"({"$date": {"$numberLong": "1717200000000"}})";
  const std::string early = R"({"$date": {"$numberLong": "1704067200000"}})";
  ASSERT_TRUE(
      update_one(client.get(), R"({"_id": "t1"})", R"({"$max": {"seq": 5, "at": )" + late + "}}")
          .ok);
  const Outcome lower =
      update_one(client.get(), R"({"_id": "t1"})", R"({"$max": {"seq": 3, "at": )" + early + "}}");
  ASSERT_TRUE(lower.ok) << lower.describe();
  EXPECT_EQ(lower.reply["modifiedCount"], 0) << lower.reply;
  json doc = docs();
  ASSERT_EQ(doc.size(), 1U);
  EXPECT_EQ(doc[0]["seq"], 5);
  EXPECT_EQ(doc[0]["at"]["$date"], "2024-06-01T00:00:00Z");

  ASSERT_TRUE(update_one(client.get(), R"({"_id": "t1"})", R"({"$max": {"seq": 7}})").ok);
  EXPECT_EQ(docs()[0]["seq"], 7);
}

TEST_F(FakeMongoDriverTest, CreateIndexesThenListThem) {
  if (!start()) return;
  Pool pool(mongo_.uri());
  Pooled client(pool);
  const Outcome created = command(client.get(), kDatabase, R"({"createIndexes": "answers",
      "indexes": [{"key": {"ticket": 1, "at": -1}, "name": "ticket_at"},
                  {"key": {"digest": 1}, "name": "digest_1", "unique": true}]})");
  ASSERT_TRUE(created.ok) << created.describe();
  EXPECT_EQ(created.reply["numIndexesAfter"], 3) << created.reply;
  // Creating them again is no error.
  const Outcome again = command(client.get(), kDatabase, R"({"createIndexes": "answers",
      "indexes": [{"key": {"digest": 1}, "name": "digest_1", "unique": true}]})");
  ASSERT_TRUE(again.ok) << again.describe();

  const json indexes = mongo_.indexes(kDatabase, kCollection);
  ASSERT_EQ(indexes.size(), 3U) << indexes;
  EXPECT_EQ(indexes[0]["name"], "_id_");
  EXPECT_EQ(indexes[1]["name"], "ticket_at");
  EXPECT_EQ(indexes[1]["key"], json::parse(R"({"ticket": 1, "at": -1})"));
  EXPECT_EQ(indexes[2]["unique"], true);
  EXPECT_EQ(mongo_.indexes(kDatabase, "absent"), json::array());
}

TEST_F(FakeMongoDriverTest, FindById) {
  if (!start()) return;
  Pool pool(mongo_.uri());
  Pooled client(pool);
  for (const char* id : {"t1", "t2", "t3"}) {
    ASSERT_TRUE(
        update_one(client.get(), std::string(R"({"_id": ")") + id + "\"}", R"({"$set": {"n": 1}})")
            .ok);
  }
  mongoc_collection_t* coll = mongoc_client_get_collection(client.get(), kDatabase, kCollection);
  mongoc_cursor_t* cursor = mongoc_collection_find_with_opts(
      coll, from_json(R"({"_id": "t2"})").get(), from_json(R"({"limit": 1})").get(), nullptr);
  const bson_t* doc = nullptr;
  json found = json::array();
  while (mongoc_cursor_next(cursor, &doc)) {
    found.push_back(to_json(doc));
  }
  bson_error_t error;
  EXPECT_FALSE(mongoc_cursor_error(cursor, &error)) << error.message;
  mongoc_cursor_destroy(cursor);
  mongoc_collection_destroy(coll);
  EXPECT_EQ(found, json::parse(R"([{"_id": "t2", "n": 1}])"));
  EXPECT_EQ(docs(R"({"_id": "t3"})"), json::parse(R"([{"_id": "t3", "n": 1}])"));
  EXPECT_EQ(docs(R"({"_id": "t9"})"), json::array());
}

TEST_F(FakeMongoDriverTest, DownFailsServerSelectionThenUpRecovers) {
  if (!start()) return;
  Pool pool(mongo_.uri(), [](mongoc_uri_t* uri) {
    mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 1000);
  });
  Pooled client(pool);
  ASSERT_TRUE(update_one(client.get(), R"({"_id": "t1"})", R"({"$set": {"n": 1}})").ok);

  if (!mongo_.set_down(true)) return;
  EXPECT_EQ(mongo_.stats()["connections_open"], 0);
  // The pooled connection was closed under the first write: it fails on the socket,
  // and its retry finds no server within serverSelectionTimeoutMS; mongoc reports the
  // original network error (with the RetryableWriteError label).
  const Outcome first = update_one(client.get(), R"({"_id": "t1"})", R"({"$set": {"n": 2}})");
  EXPECT_FALSE(first.ok);
  EXPECT_EQ(first.error.domain, MONGOC_ERROR_STREAM) << first.describe();
  EXPECT_EQ(first.error.code, MONGOC_ERROR_STREAM_SOCKET) << first.describe();
  // Now the server is known to be unknown: the next write fails server selection.
  const Outcome next = update_one(client.get(), R"({"_id": "t1"})", R"({"$set": {"n": 2}})");
  EXPECT_FALSE(next.ok);
  EXPECT_EQ(next.error.domain, MONGOC_ERROR_SERVER_SELECTION) << next.describe();
  EXPECT_EQ(next.error.code, MONGOC_ERROR_SERVER_SELECTION_FAILURE) << next.describe();

  // Back up on the same port: the monitor finds it again (it rechecks at most every
  // minHeartbeatFrequencyMS, 500 ms), and a write succeeds.
  if (!mongo_.set_down(false)) return;
  Outcome up;
  EXPECT_TRUE(eventually([&] {
    up = update_one(client.get(), R"({"_id": "t1"})", R"({"$set": {"n": 3}})");
    return up.ok;
  })) << up.describe()
      << "\n"
      << mongo_.log_text();
  EXPECT_EQ(docs(), json::parse(R"([{"_id": "t1", "n": 3}])"));
}

TEST_F(FakeMongoDriverTest, DropBeforeWriteOnceIsRetriedAndAppliedOnce) {
  if (!start()) return;
  Pool pool(mongo_.uri());
  Pooled client(pool);
  if (!mongo_.drop_before_write(1)) return;
  const Outcome write = update_one(client.get(), R"({"_id": "t1"})", R"({"$set": {"n": 1}})");
  EXPECT_TRUE(write.ok) << write.describe();
  EXPECT_EQ(received("update"), 2);  // the first attempt and mongoc's one retry
  EXPECT_EQ(applied("update"), 1);
  EXPECT_EQ(docs(), json::parse(R"([{"_id": "t1", "n": 1}])"));
}

TEST_F(FakeMongoDriverTest, DropBeforeWriteTwiceFailsAndAppliesNothing) {
  if (!start()) return;
  Pool pool(mongo_.uri());
  Pooled client(pool);
  if (!mongo_.drop_before_write(2)) return;
  const Outcome write = update_one(client.get(), R"({"_id": "t1"})", R"({"$set": {"n": 1}})");
  EXPECT_FALSE(write.ok);
  EXPECT_EQ(write.error.domain, MONGOC_ERROR_STREAM) << write.describe();
  EXPECT_EQ(write.error.code, MONGOC_ERROR_STREAM_SOCKET) << write.describe();
  EXPECT_EQ(received("update"), 2);  // retried once, not more
  EXPECT_EQ(applied("update"), 0);
  EXPECT_EQ(docs(), json::array());
  // The next write goes through on a new connection.
  EXPECT_TRUE(update_one(client.get(), R"({"_id": "t1"})", R"({"$set": {"n": 2}})").ok);
}

TEST_F(FakeMongoDriverTest, DropAfterWriteFailsAtTheClientButWasApplied) {
  if (!start()) return;
  Pool pool(mongo_.uri());
  Pooled client(pool);
  if (!mongo_.drop_after_write(2)) return;
  const Outcome write = update_one(client.get(), R"({"_id": "t1"})",
                                   R"({"$setOnInsert": {"messages": []}, "$max": {"seq": 4}})");
  // The case the daemon must tolerate: an error, yet the write happened (twice: the
  // double applies the retry again, where a server would answer from its record).
  EXPECT_FALSE(write.ok);
  EXPECT_EQ(write.error.domain, MONGOC_ERROR_STREAM) << write.describe();
  EXPECT_EQ(applied("update"), 2);
  EXPECT_EQ(docs(), json::parse(R"([{"_id": "t1", "messages": [], "seq": 4}])"));
}

TEST_F(FakeMongoDriverTest, DelayBeyondTheSocketTimeoutFails) {
  if (!start()) return;
  Pool pool(mongo_.uri(), [](mongoc_uri_t* uri) {
    mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SOCKETTIMEOUTMS, 200);
  });
  Pooled client(pool);
  ASSERT_TRUE(update_one(client.get(), R"({"_id": "t1"})", R"({"$set": {"n": 1}})").ok);
  if (!mongo_.set_delay_ms(2000)) return;
  const auto before = Clock::now();
  const Outcome slow = update_one(client.get(), R"({"_id": "t1"})", R"({"$set": {"n": 2}})");
  EXPECT_FALSE(slow.ok);
  EXPECT_EQ(slow.error.domain, MONGOC_ERROR_STREAM) << slow.describe();
  EXPECT_EQ(slow.error.code, MONGOC_ERROR_STREAM_SOCKET) << slow.describe();
  EXPECT_LT(Clock::now() - before, std::chrono::milliseconds(2000));  // gave up first
  ASSERT_TRUE(mongo_.set_delay_ms(0));
  // The double still applies what it was sent (the attempt and the retry), later.
  EXPECT_TRUE(eventually([&] { return applied("update") == received("update"); }))
      << mongo_.stats().dump();
  EXPECT_EQ(received("update"), 3) << "one first write, one timed-out attempt, one retry";
  const Outcome fast = update_one(client.get(), R"({"_id": "t1"})", R"({"$set": {"n": 3}})");
  EXPECT_TRUE(fast.ok) << fast.describe();
  EXPECT_EQ(docs(), json::parse(R"([{"_id": "t1", "n": 3}])"));
}

TEST_F(FakeMongoDriverTest, DuplicateKeyFromABulkAndFromUpdateOne) {
  if (!start()) return;
  Pool pool(mongo_.uri());
  Pooled client(pool);
  if (!mongo_.duplicate_key(1)) return;
  mongoc_collection_t* coll = mongoc_client_get_collection(client.get(), kDatabase, kCollection);
  mongoc_bulk_operation_t* bulk = mongoc_collection_create_bulk_operation_with_opts(coll, nullptr);
  bson_error_t error;
  ASSERT_TRUE(mongoc_bulk_operation_update_one_with_opts(
      bulk, from_json(R"({"_id": "t1"})").get(), from_json(R"({"$set": {"n": 1}})").get(),
      from_json(R"({"upsert": true})").get(), &error))
      << error.message;
  ASSERT_TRUE(mongoc_bulk_operation_update_one_with_opts(
      bulk, from_json(R"({"_id": "t2"})").get(), from_json(R"({"$set": {"n": 1}})").get(),
      from_json(R"({"upsert": true})").get(), &error))
      << error.message;
  bson_t reply;
  const uint32_t server_id = mongoc_bulk_operation_execute(bulk, &reply, &error);
  const json bulk_reply = to_json(&reply);
  bson_destroy(&reply);
  mongoc_bulk_operation_destroy(bulk);
  mongoc_collection_destroy(coll);
  EXPECT_EQ(server_id, 0U);
  EXPECT_EQ(error.domain, MONGOC_ERROR_SERVER) << error.message;
  EXPECT_EQ(error.code, 11000U) << error.message;
  ASSERT_EQ(bulk_reply["writeErrors"].size(), 1U) << bulk_reply;
  EXPECT_EQ(bulk_reply["writeErrors"][0]["code"], 11000) << bulk_reply;
  EXPECT_EQ(bulk_reply["nUpserted"], 0) << bulk_reply;  // ordered: stopped at the first
  EXPECT_EQ(docs(), json::array());

  if (!mongo_.duplicate_key(1)) return;
  const Outcome one = update_one(client.get(), R"({"_id": "t1"})", R"({"$set": {"n": 1}})");
  EXPECT_FALSE(one.ok);
  EXPECT_EQ(one.error.domain, MONGOC_ERROR_SERVER) << one.describe();
  EXPECT_EQ(one.error.code, 11000U) << one.describe();
  EXPECT_EQ(received("update"), 2);  // a write error is not retried
  EXPECT_EQ(docs(), json::array());
  EXPECT_TRUE(update_one(client.get(), R"({"_id": "t1"})", R"({"$set": {"n": 1}})").ok);
}

TEST_F(FakeMongoDriverTest, DocumentLargerThan16MiBIsRefused) {
  if (!start()) return;
  Pool pool(mongo_.uri());
  Pooled client(pool);
  const std::string nine_mib(9 * 1024 * 1024, 'x');
  ASSERT_TRUE(
      update_one(client.get(), R"({"_id": "t1"})", R"({"$set": {"a": ")" + nine_mib + "\"}}").ok);
  const Outcome grown =
      update_one(client.get(), R"({"_id": "t1"})", R"({"$set": {"b": ")" + nine_mib + "\"}}");
  EXPECT_FALSE(grown.ok);
  EXPECT_EQ(grown.error.domain, MONGOC_ERROR_SERVER) << grown.error.message;
  // The double answers 10334 (BSONObjectTooLarge); MongoDB 5.0 itself says 17419.
  EXPECT_TRUE(grown.error.code == 10334U || grown.error.code == 17419U) << grown.error.message;
  const json doc = docs();
  ASSERT_EQ(doc.size(), 1U);
  EXPECT_TRUE(doc[0].contains("a"));
  EXPECT_FALSE(doc[0].contains("b"));
}

TEST_F(FakeMongoDriverTest, UnimplementedCommandAnswers59) {
  if (!start()) return;
  Pool pool(mongo_.uri());
  Pooled client(pool);
  const Outcome unknown = command(client.get(), kDatabase, R"({"ticketaidNoSuchCommand": 1})");
  EXPECT_FALSE(unknown.ok);
  EXPECT_EQ(unknown.error.domain, MONGOC_ERROR_SERVER) << unknown.describe();
  EXPECT_EQ(unknown.error.code, 59U) << unknown.describe();
  EXPECT_EQ(unknown.reply["code"], 59) << unknown.reply;
}

}  // namespace
}  // namespace ticketaid::testing
