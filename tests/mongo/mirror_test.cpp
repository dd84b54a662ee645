// The MongoDB mirror on the real daemon: what reaches MongoDB and in what shape,
// outages, lost replies, crashes mid-batch, the backfill, redaction, the 16 MiB
// limit and the shared cache across nodes (docs/operations.md, "The MongoDB
// mirror").
#include <signal.h>

#include <random>
#include <set>
#include <string>
#include <vector>

#include "mirror_fixture.h"

namespace ticketaid::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

TEST_F(MirrorTest, AnswersAndMessagesAppearInTheDocumentedShape) {
  start_mirrored();
  const json answer = answer_ticket(daemon_->port(), "T-100", "The printer on floor 2 jams");
  ASSERT_EQ(answer.value("status", ""), "complete");

  auto started = http_call(daemon_->port(), "POST", "/api/chat/session/start",
                           json{{"userId", "ana"}, {"initialMessage", "VPN drops"}}.dump());
  ASSERT_EQ(started.status, 201) << started.describe();
  const std::string session = started.json["session"].value("id", "");
  ASSERT_FALSE(session.empty());
  ASSERT_TRUE(wait_drained()) << daemon_->stderr_text();

  const json ticket = doc_by_id("ticket_ai_sessions", "T-100");
  ASSERT_TRUE(ticket.is_object()) << "no ticket document";
  EXPECT_EQ(ticket.value("ticket_id", ""), "T-100");
  ASSERT_TRUE(ticket["revisions"].is_object());
  ASSERT_EQ(ticket["revisions"].size(), 1u);
  const json& revision = ticket["revisions"].begin().value();
  EXPECT_EQ(revision.value("body", ""), "The printer on floor 2 jams");
  EXPECT_EQ(revision.value("answer", ""), answer.value("response", "?"));
  EXPECT_EQ(revision.value("status", ""), "complete");
  EXPECT_EQ(revision.value("revision", 0), 1);
  EXPECT_EQ(revision.value("body_sha256", "").size(), 64u);
  EXPECT_EQ(ticket["metadata"].value("status", ""), "complete");
  EXPECT_TRUE(ticket["metadata"].contains("created_at"));
  EXPECT_TRUE(ticket["metadata"].contains("last_activity"));

  const json chat = doc_by_id("chat_conversations", session);
  ASSERT_TRUE(chat.is_object()) << "no conversation document";
  EXPECT_EQ(chat.value("user_id", ""), "ana");
  ASSERT_TRUE(chat["messages"].is_array());
  ASSERT_EQ(chat["messages"].size(), 2u);
  EXPECT_EQ(chat["messages"][0].value("role", ""), "user");
  EXPECT_EQ(chat["messages"][0].value("content", ""), "VPN drops");
  EXPECT_EQ(chat["messages"][1].value("role", ""), "assistant");
  EXPECT_EQ(chat["messages"][1].value("reply_to", ""), chat["messages"][0].value("id", "?"));
  EXPECT_TRUE(chat["messages"][1]["metadata"].contains("model_used"));
  EXPECT_TRUE(chat.contains("context"));
  const json& metadata = chat["metadata"];
  for (const char* field : {"created_at", "last_activity", "message_count", "status",
                            "total_tokens", "avg_response_time"}) {
    EXPECT_TRUE(metadata.contains(field)) << field;
  }
  EXPECT_EQ(metadata.value("message_count", 0), 2);
  EXPECT_EQ(metadata.value("status", ""), "active");

  // The indexes of SPEC §6, with their keys in order.
  const nlohmann::ordered_json indexes = mongo_.indexes(database_, "chat_conversations");
  std::set<std::string> keys;
  for (const auto& index : indexes) {
    std::string key;
    for (const auto& [field, direction] : index["key"].items()) {
      key += field + ":" + direction.dump() + " ";
    }
    keys.insert(key);
  }
  EXPECT_TRUE(keys.count("user_id:1 metadata.last_activity:-1 ")) << indexes.dump();
  EXPECT_TRUE(keys.count("metadata.status:1 metadata.created_at:-1 ")) << indexes.dump();

  // /ready reports the mirror; /metrics has its gauges.
  EXPECT_TRUE(wait_until([&] {
    const json mirror = ready()["mirror"];
    return mirror.value("enabled", false) && mirror.value("state", "") == "caught_up" &&
           mirror.value("outboxDepth", -1) == 0;
  })) << ready().dump();
  auto metrics = http_call(daemon_->port(), "GET", "/metrics");
  EXPECT_NE(metrics.body.find("ticketaid_mirror_outbox_depth 0"), std::string::npos);
  EXPECT_NE(metrics.body.find("ticketaid_mirror_last_success_timestamp_seconds"),
            std::string::npos);
}

TEST_F(MirrorTest, AThousandMessagesWrittenWhileMongoIsDownArriveOnceInOrder) {
  start_mirrored({{"TICKETAID_SESSIONS_MAX_MESSAGES", "5000"}});
  const std::string session = create_session();
  ASSERT_TRUE(wait_drained());
  if (!mongo_.set_down(true)) return;

  std::vector<std::string> expected;
  for (int i = 0; i < 1000; ++i) {
    expected.push_back("message " + std::to_string(i));
    ASSERT_TRUE(add_message(session, expected.back()));
  }
  // The outbox holds them; the node stays ready and says why the mirror lags.
  const json while_down = ready();
  EXPECT_EQ(while_down.value("status", ""), "ready") << while_down.dump();
  ASSERT_TRUE(wait_until([&] {
    const json mirror = ready()["mirror"];
    return mirror.value("state", "") == "retrying" && mirror.value("outboxDepth", 0) >= 1000;
  })) << ready().dump();
  EXPECT_TRUE(ready()["mirror"].contains("lastError"));
  auto metrics = http_call(daemon_->port(), "GET", "/metrics");
  EXPECT_EQ(metrics.body.find("ticketaid_mirror_errors_total{kind=\"unreachable\"} 0"),
            std::string::npos)
      << "no unreachable error counted";

  ASSERT_TRUE(mongo_.set_down(false));
  ASSERT_TRUE(wait_drained()) << daemon_->stderr_text() << "\n"
                              << ready().dump() << "\n"
                              << mongo_.stats().dump() << "\n"
                              << mongo_.log_text();
  EXPECT_TRUE(holds_in_order(doc_by_id("chat_conversations", session), expected));
  EXPECT_EQ(doc_by_id("chat_conversations", session)["metadata"].value("message_count", 0), 1000);
}

TEST_F(MirrorTest, AReplyLostAfterTheWriteLeavesNoDuplicate) {
  start_mirrored();
  const std::string session = create_session();
  ASSERT_TRUE(wait_drained());
  const json before = mongo_.stats();
  // Both the driver's own retry and the first attempt lose their reply after the
  // write was applied: the syncer sends the batch again.
  if (!mongo_.drop_after_write(2)) return;
  ASSERT_TRUE(add_message(session, "first"));
  ASSERT_TRUE(add_message(session, "second"));
  ASSERT_TRUE(wait_drained()) << daemon_->stderr_text();
  const json after = mongo_.stats();
  EXPECT_GT(after.value("writes_applied", 0) - before.value("writes_applied", 0), 4)
      << "the batch was not sent again: " << after.dump();
  EXPECT_TRUE(holds_in_order(doc_by_id("chat_conversations", session), {"first", "second"}));
}

TEST_F(MirrorTest, DuplicateKeyErrorsAreRetried) {
  start_mirrored();
  if (!mongo_.duplicate_key(3)) return;
  const std::string session = create_session();
  ASSERT_TRUE(add_message(session, "hello"));
  ASSERT_TRUE(wait_drained()) << daemon_->stderr_text();
  EXPECT_TRUE(holds_in_order(doc_by_id("chat_conversations", session), {"hello"}));
  auto metrics = http_call(daemon_->port(), "GET", "/metrics");
  EXPECT_EQ(metrics.body.find("ticketaid_mirror_errors_total{kind=\"duplicate_key\"} 0"),
            std::string::npos);
}

TEST_F(MirrorTest, KilledMidBatchTwentyTimesTheOutboxDrainsWithoutDuplicatesOrGaps) {
  if (mongo_.external()) GTEST_SKIP() << "slows the server down: needs the MongoDB test double";
  // Small batches sent slowly, so that each kill lands while one is in flight.
  const std::map<std::string, std::string> env = {{"TICKETAID_MONGO_BATCH_SIZE", "7"},
                                                  {"TICKETAID_SESSIONS_MAX_MESSAGES", "5000"}};
  start_mirrored(env);
  const std::string session = create_session();
  ASSERT_TRUE(wait_drained());
  if (!mongo_.set_delay_ms(30)) return;
  std::vector<std::string> expected;
  std::mt19937 rng(20261123);
  for (int round = 0; round < 20; ++round) {
    for (int i = 0; i < 15; ++i) {
      expected.push_back("r" + std::to_string(round) + " m" + std::to_string(i));
      ASSERT_TRUE(add_message(session, expected.back()));
    }
    // Kill once MongoDB has applied part of what was written this round.
    const int64_t applied = mongo_.stats().value("writes_applied", int64_t{0});
    ASSERT_TRUE(wait_until(
        [&] { return mongo_.stats().value("writes_applied", int64_t{0}) > applied; }, 20s));
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 40));  // a random point
    daemon_->kill9();
    start_mirrored(env);
  }
  ASSERT_TRUE(mongo_.set_delay_ms(0));
  ASSERT_TRUE(wait_drained()) << daemon_->stderr_text();
  EXPECT_TRUE(holds_in_order(doc_by_id("chat_conversations", session), expected));
}

TEST_F(MirrorTest, TurningTheMirrorOnBackfillsWhatIsStored) {
  start_daemon();
  answer_ticket(daemon_->port(), "T-7", "Outlook asks for the password");
  const std::string session = create_session();
  ASSERT_TRUE(add_message(session, "before the mirror"));
  EXPECT_EQ(ready()["mirror"].value("enabled", true), false);
  daemon_->stop();

  start_mirrored();
  ASSERT_TRUE(wait_drained()) << daemon_->stderr_text();
  EXPECT_TRUE(doc_by_id("ticket_ai_sessions", "T-7").is_object());
  EXPECT_TRUE(holds_in_order(doc_by_id("chat_conversations", session), {"before the mirror"}));
}

TEST_F(MirrorTest, DeletesAreMirroredAndExpiredSessionsAreKept) {
  start_mirrored(
      {{"TICKETAID_SESSIONS_MAX_PER_USER", "1"}, {"TICKETAID_SESSIONS_ON_LIMIT", "evict_oldest"}});
  const std::string first = create_session("bo");
  ASSERT_TRUE(add_message(first, "kept as expired"));
  ASSERT_TRUE(wait_drained());
  const std::string second = create_session("bo");  // evicts the first
  answer_ticket(daemon_->port(), "T-9", "Disk full");
  ASSERT_TRUE(wait_drained());
  EXPECT_EQ(doc_by_id("chat_conversations", first)["metadata"].value("status", ""), "expired");

  EXPECT_EQ(http_call(daemon_->port(), "DELETE", "/api/sessions/" + second).status, 204);
  EXPECT_EQ(http_call(daemon_->port(), "DELETE", "/api/tickets/T-9/ai-session").status, 204);
  ASSERT_TRUE(wait_drained());
  EXPECT_TRUE(doc_by_id("chat_conversations", second).is_null());
  EXPECT_TRUE(doc_by_id("ticket_ai_sessions", "T-9").is_null());
}

TEST_F(MirrorTest, AConversationPastTheDocumentLimitContinuesInTheOverflowCollection) {
  start_mirrored({{"TICKETAID_MONGO_MAX_DOCUMENT_BYTES", "65536"},
                  {"TICKETAID_SESSIONS_MAX_MESSAGE_CHARS", "100000"}});
  const std::string session = create_session();
  std::vector<std::string> expected;
  for (int i = 0; i < 10; ++i) {
    expected.push_back(std::string(10000, static_cast<char>('a' + i)));
    ASSERT_TRUE(add_message(session, expected.back()));
  }
  ASSERT_TRUE(wait_drained()) << daemon_->stderr_text();
  const json doc = doc_by_id("chat_conversations", session);
  ASSERT_TRUE(doc.is_object());
  EXPECT_EQ(doc["metadata"].value("overflow", false), true);
  const json overflow =
      docs("chat_conversations_overflow", json{{"conversation_id", session}}.dump());
  // 64 KiB holds six messages of 10,000 bytes (with 512 bytes counted for each);
  // the other four are in the overflow collection, one document each.
  ASSERT_TRUE(doc["messages"].is_array());
  const std::size_t inline_count = doc["messages"].size();
  EXPECT_EQ(inline_count, 6u);
  ASSERT_EQ(inline_count + overflow.size(), expected.size());
  for (std::size_t i = 0; i < inline_count; ++i) {
    EXPECT_EQ(doc["messages"][i].value("content", ""), expected[i]);
  }
  std::set<int64_t> seqs;
  for (const auto& d : overflow) {
    const int64_t seq = d.value("seq", int64_t{-1});
    seqs.insert(seq);
    EXPECT_EQ(d["message"].value("content", ""), expected.at(static_cast<std::size_t>(seq)));
  }
  EXPECT_EQ(seqs.size(), overflow.size());
  EXPECT_EQ(*seqs.begin(), static_cast<int64_t>(inline_count));
}

TEST_F(MirrorTest, ASecondNodeWithReadThroughServesAnAnswerTheFirstNodeMade) {
  REQUIRE_FAKE_OLLAMA();
  start_mirrored({{"TICKETAID_MONGO_REDACT", "true"}});
  const json first = answer_ticket(daemon_->port(), "T-42", "Teams crashes at login");
  ASSERT_EQ(first.value("status", ""), "complete");
  ASSERT_TRUE(wait_drained());
  // Redacted: the body is not in MongoDB, its SHA-256 is.
  const json ticket = doc_by_id("ticket_ai_sessions", "T-42");
  const json& revision = ticket["revisions"].begin().value();
  EXPECT_FALSE(revision.contains("body"));
  EXPECT_EQ(revision.value("body_sha256", "").size(), 64u);
  const int asked = fake_.chat_requests();

  TempDir other_dir;
  DaemonOptions options;
  options.db_path = other_dir.path() / "node-b.db";
  options.ollama_url = fake_.url();
  options.env = mirror_env({{"TICKETAID_MONGO_READ_THROUGH", "true"}});
  DaemonProcess node_b(options);
  ASSERT_TRUE(node_b.start()) << node_b.error();
  ASSERT_TRUE(wait_until([&] {
    return http_call(node_b.port(), "GET", "/ready").json["mirror"].value("state", "") ==
           "caught_up";
  }));

  const json second = answer_ticket(node_b.port(), "T-42", "Teams crashes at login");
  EXPECT_EQ(second.value("response", ""), first.value("response", "?"));
  EXPECT_EQ(fake_.chat_requests(), asked) << "node B asked Ollama";
  // Node B keeps it: the next request is a local hit, also without Ollama.
  auto stored = http_call(node_b.port(), "GET", "/api/tickets/T-42/ai-session");
  EXPECT_EQ(stored.status, 200);
  EXPECT_EQ(stored.json.value("status", ""), "complete");

  // Another body is not the same answer: node B asks Ollama.
  answer_ticket(node_b.port(), "T-42", "Teams crashes at login, also on the web");
  EXPECT_EQ(fake_.chat_requests(), asked + 1);
  auto metrics = http_call(node_b.port(), "GET", "/metrics");
  EXPECT_NE(metrics.body.find("ticketaid_mirror_read_through_total{result=\"hit\"} 1"),
            std::string::npos);
}

TEST_F(MirrorTest, ASlowMongoDoesNotHoldUpAMissWithReadThrough) {
  REQUIRE_FAKE_OLLAMA();
  start_mirrored({{"TICKETAID_MONGO_READ_THROUGH", "true"},
                  {"TICKETAID_MONGO_READ_THROUGH_TIMEOUT_MS", "200"}});
  ASSERT_TRUE(wait_until([&] { return ready()["mirror"].value("state", "") == "caught_up"; }));
  if (!mongo_.set_delay_ms(3000)) return;
  const json answer = answer_ticket(daemon_->port(), "T-55", "Slow mirror");
  ASSERT_TRUE(answer.is_object()) << daemon_->stderr_text();
  EXPECT_EQ(answer.value("status", ""), "complete") << daemon_->stderr_text();
  EXPECT_EQ(fake_.chat_requests(), 1) << "the miss went to Ollama";
  auto metrics = http_call(daemon_->port(), "GET", "/metrics");
  EXPECT_NE(metrics.body.find("ticketaid_mirror_read_through_total{result=\"miss\"} 1"),
            std::string::npos);
  ASSERT_TRUE(mongo_.set_delay_ms(0));
}

TEST_F(MirrorTest, DoctorReportsTheMirrorAndItsOutbox) {
  start_mirrored();
  const std::string session = create_session();
  ASSERT_TRUE(wait_drained());
  daemon_->stop();
  auto doctor = [&](std::string* out) {
    std::string err;
    return DaemonProcess::run_once({"doctor", "--db", db_path().string(), "--ollama-url",
                                    fake_.url(), "--listen", "127.0.0.1:0"},
                                   out, &err, mirror_env());
  };
  std::string out;
  EXPECT_EQ(doctor(&out), 0) << out;
  EXPECT_NE(out.find("mongo mirror: 127.0.0.1:"), std::string::npos) << out;
  EXPECT_NE(out.find("answers; outbox: 0 rows waiting"), std::string::npos) << out;

  if (!mongo_.set_down(true)) return;
  start_mirrored();
  ASSERT_TRUE(add_message(session, "while down"));
  daemon_->stop();
  out.clear();
  EXPECT_EQ(doctor(&out), 0) << "an unreachable mirror is a warning:\n" << out;
  EXPECT_NE(out.find("does not answer"), std::string::npos) << out;
  EXPECT_NE(out.find("rows waiting, the oldest"), std::string::npos) << out;
}

TEST_F(MirrorTest, TheUrisPasswordIsNeverPrinted) {
  // Nothing listens on port 1: the daemon and doctor report a MongoDB that does not
  // answer, naming its host, never the credentials.
  const std::string secret = "S3cret-pw";
  const std::map<std::string, std::string> env = {
      {"TICKETAID_MONGO_URI",
       "mongodb://ticketaid:" + secret + "@127.0.0.1:1/?serverSelectionTimeoutMS=300"},
      {"TICKETAID_MONGO_DATABASE", database_}};
  std::string out, err;
  DaemonProcess::run_once({"doctor", "--db", db_path().string(), "--ollama-url", fake_.url(),
                           "--listen", "127.0.0.1:0"},
                          &out, &err, env);
  EXPECT_NE(out.find("mongo mirror: 127.0.0.1:1/"), std::string::npos) << out;
  EXPECT_NE(out.find("does not answer"), std::string::npos) << out;
  DaemonProcess::run_once({"check-config"}, &out, &err, env);
  start_daemon({}, env);
  ASSERT_TRUE(wait_until([&] { return ready()["mirror"].value("state", "") == "retrying"; }));
  const std::string seen = out + err + daemon_->stderr_text() + ready().dump() +
                           http_call(daemon_->port(), "GET", "/metrics").body;
  EXPECT_EQ(seen.find(secret), std::string::npos) << seen;
}

TEST_F(MirrorTest, WithoutTheMirrorNoOutboxIsKept) {
  start_daemon();
  const std::string session = create_session();
  ASSERT_TRUE(add_message(session, "no mirror"));
  const json body = ready();
  EXPECT_EQ(body["mirror"].value("enabled", true), false);
  daemon_->stop();
  auto check = check_sqlite_database(db_path().string());
  ASSERT_TRUE(check.is_ok());
  EXPECT_EQ(check.value().outbox_depth, 0);
  EXPECT_EQ(check.value().mirror_target, "");
}

}  // namespace
}  // namespace ticketaid::testing
