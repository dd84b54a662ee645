// The daemon with its MongoDB mirror on, against the MongoDB test double (or the
// MongoDB named by TICKETAID_TEST_MONGO_URI), for the mirror's integration tests.
//
// Each test mirrors into its own database, named after the test, which it drops
// first, so that tests against a real server do not see each other's documents.
// Faults need the double: with a real server, the tests that inject them skip.
//
// Thread-safety: one test thread.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "daemon_fixture.h"
#include "rest_client.h"
#include "store/store.h"
#include "support/mongo/fake_mongo.h"

namespace ticketaid::testing {

class MirrorTest : public DaemonTest {
 protected:
  void SetUp() override {
    ASSERT_TRUE(mongo_.start()) << mongo_.log_text();
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    database_ = std::string("t_") + info->name();
    if (database_.size() > 60) database_.resize(60);
    mongo_.drop_database(database_);
  }

  // The environment that turns the mirror on, with quick retries for tests.
  std::map<std::string, std::string> mirror_env(std::map<std::string, std::string> extra = {}) {
    extra.emplace("TICKETAID_MONGO_URI", mongo_.uri());
    extra.emplace("TICKETAID_MONGO_DATABASE", database_);
    extra.emplace("TICKETAID_MONGO_RETRY_MAX_S", "1");
    return extra;
  }

  void start_mirrored(std::map<std::string, std::string> extra = {}) {
    start_daemon({}, mirror_env(std::move(extra)));
  }

  nlohmann::json docs(const std::string& collection, const std::string& filter = "{}") {
    return mongo_.documents(database_, collection, filter);
  }

  nlohmann::json doc_by_id(const std::string& collection, const std::string& id) {
    auto found = docs(collection, nlohmann::json{{"_id", id}}.dump());
    return found.is_array() && !found.empty() ? found[0] : nlohmann::json();
  }

  // The daemon's /ready body.
  nlohmann::json ready() { return http_call(daemon_->port(), "GET", "/ready").json; }

  // The outbox rows not yet acknowledged by MongoDB, read from the database file
  // (exact, where /ready shows the syncer's last reading); -1 when unreadable.
  int64_t outbox_depth() {
    auto check = check_sqlite_database(db_path().string());
    return check.is_ok() ? check.value().outbox_depth : -1;
  }

  bool wait_drained(std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
    return wait_until([&] { return outbox_depth() == 0; }, timeout);
  }

  // POST /api/sessions: a chat session for user u1; returns its id.
  std::string create_session(const std::string& user = "u1") {
    auto created = http_call(daemon_->port(), "POST", "/api/sessions",
                             nlohmann::json{{"userId", user}, {"title", "mirror test"}}.dump());
    EXPECT_EQ(created.status, 201) << created.describe();
    return created.json.value("id", "");
  }

  // POST /api/sessions/{id}/messages: stored without asking the model.
  bool add_message(const std::string& session, const std::string& content) {
    auto added = http_call(daemon_->port(), "POST", "/api/sessions/" + session + "/messages",
                           nlohmann::json{{"role", "user"}, {"content", content}}.dump());
    EXPECT_EQ(added.status, 201) << added.describe();
    return added.status == 201;
  }

  // Asks for a ticket's answer over REST; returns the reply's JSON.
  static nlohmann::json answer_ticket(int port, const std::string& ticket,
                                      const std::string& body) {
    auto reply = http_call(port, "POST", "/api/tickets/" + ticket + "/ai-session",
                           nlohmann::json{{"ticketBody", body}}.dump());
    EXPECT_EQ(reply.status, 200) << reply.describe();
    return reply.json;
  }

  // Checks that a conversation document holds exactly `expected` messages at seq
  // 0..n-1, in order, without repeats; returns false (with a failure) otherwise.
  static bool holds_in_order(const nlohmann::json& doc, const std::vector<std::string>& expected) {
    if (!doc.is_object() || !doc.contains("messages") || !doc["messages"].is_array()) {
      ADD_FAILURE() << "no messages array in " << doc.dump().substr(0, 500);
      return false;
    }
    const auto& messages = doc["messages"];
    EXPECT_EQ(messages.size(), expected.size());
    if (messages.size() != expected.size()) return false;
    std::set<std::string> ids;
    for (std::size_t i = 0; i < expected.size(); ++i) {
      EXPECT_EQ(messages[i].value("seq", -1), static_cast<int64_t>(i));
      EXPECT_EQ(messages[i].value("content", ""), expected[i]) << "at " << i;
      ids.insert(messages[i].value("id", ""));
      if (messages[i].value("content", "") != expected[i]) return false;
    }
    EXPECT_EQ(ids.size(), expected.size()) << "a message id repeats";
    return ids.size() == expected.size();
  }

  FakeMongo mongo_;
  std::string database_;
};

}  // namespace ticketaid::testing
