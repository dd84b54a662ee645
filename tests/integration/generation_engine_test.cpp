// The generation engine seen from outside (SPEC §2 "Behaviour" and "Precise rules",
// §4 generation limits): single flight and catch-up replay, disconnects and cancels,
// the queue, time limits, coalescing, a body change during a generation, thinking,
// and recovery after a crash. The real daemon, real WebSockets, the real SQLite file
// and the fake Ollama, whose scripts hold a reply at a known point (stall, release)
// so that every interleaving a test claims is one it has waited for.
#include <httplib.h>

#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "integration/daemon_fixture.h"
#include "store/store.h"

namespace ticketaid::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

// A reply held by the fake after its first two tokens until release().
FakeScript stalled_after_two(std::vector<std::string> tokens = {"Hello", ", ", "world", "."}) {
  FakeScript script;
  script.tokens = std::move(tokens);
  script.fault = FakeFault::stall_after_tokens;
  script.fault_after_tokens = 2;
  return script;
}

FakeScript answering(std::vector<std::string> tokens) {
  FakeScript script;
  script.tokens = std::move(tokens);
  return script;
}

// The first / last frame of a reply; null when there is none, so that a missing reply
// fails a comparison rather than the test program.
json first(const std::vector<json>& frames) {
  return frames.empty() ? json() : frames.front();
}
json last(const std::vector<json>& frames) {
  return frames.empty() ? json() : frames.back();
}

std::vector<json> of_type(const std::vector<json>& frames, const std::string& type) {
  std::vector<json> out;
  for (const auto& f : frames) {
    if (f.value("type", "") == type) out.push_back(f);
  }
  return out;
}

// The stream frames are numbered 0, 1, 2, ... with nothing missing or repeated.
void expect_contiguous_seq(const std::vector<json>& streams) {
  for (std::size_t i = 0; i < streams.size(); ++i) {
    EXPECT_EQ(streams[i].value("seq", int64_t{-1}), static_cast<int64_t>(i)) << streams[i].dump();
  }
}

// The ticket body the daemon sent to Ollama in one /api/chat request.
std::string asked_body(const ReceivedRequest& request) {
  const auto& messages = request.body["messages"];
  if (!messages.is_array() || messages.empty()) return "";
  return messages.back().value("content", "");
}

class GenerationEngine : public DaemonTest {
 protected:
  // Reads frames until `count` stream frames have arrived and returns them; queued and
  // thinking frames are passed over, anything else fails the test.
  std::vector<json> read_streams(WsClient& client, std::size_t count) {
    std::vector<json> streams;
    while (streams.size() < count) {
      auto frame = client.read_json(10s);
      if (!frame) {
        ADD_FAILURE() << "no frame after " << streams.size() << " stream frames; daemon stderr:\n"
                      << daemon_->stderr_text();
        break;
      }
      const auto type = frame->value("type", "");
      if (type == "stream") {
        streams.push_back(*frame);
      } else if (type != "queued" && type != "thinking") {
        ADD_FAILURE() << "expected a stream frame, got " << frame->dump();
        break;
      }
    }
    return streams;
  }

  // The current revision of a ticket as the daemon stored it (the database is read
  // beside the running daemon, as an operator's tool would).
  std::optional<TicketSession> stored(const std::string& ticket) {
    if (!store_) {
      auto opened = open_sqlite_store({db_path().string()});
      if (!opened) {
        ADD_FAILURE() << "cannot open the database: " << opened.status().to_string();
        return std::nullopt;
      }
      store_ = std::move(opened.value());
    }
    auto found = store_->find_ticket_session(ticket);
    if (!found) {
      ADD_FAILURE() << found.status().to_string();
      return std::nullopt;
    }
    return found.value();
  }

  // The stored session, which must exist (an empty one when it does not).
  TicketSession session_of(const std::string& ticket) {
    auto session = stored(ticket);
    if (!session) {
      ADD_FAILURE() << "no session stored for ticket " << ticket;
      return {};
    }
    return *session;
  }

  ::testing::AssertionResult wait_for_status(const std::string& ticket, SessionStatus status) {
    std::optional<TicketSession> session;
    if (wait_until([&] {
          session = stored(ticket);
          return session && session->status == status;
        })) {
      return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure()
           << "ticket " << ticket << " is "
           << (session ? std::string(to_string(session->status)) : "not stored") << ", not "
           << to_string(status) << "; daemon stderr:\n"
           << daemon_->stderr_text();
  }

  std::optional<json> get_json(const std::string& path) {
    httplib::Client http("127.0.0.1", daemon_->port());
    http.set_connection_timeout(5, 0);
    http.set_read_timeout(5, 0);
    auto res = http.Get(path.c_str());
    if (!res) {
      ADD_FAILURE() << "GET " << path << ": " << httplib::to_string(res.error());
      return std::nullopt;
    }
    EXPECT_EQ(res->status, 200) << path << ": " << res->body;
    auto body = json::parse(res->body, nullptr, false);
    if (body.is_discarded()) {
      ADD_FAILURE() << path << " answered no JSON: " << res->body;
      return std::nullopt;
    }
    return body;
  }

  // The daemon still runs and answers /health.
  void expect_healthy() {
    ASSERT_TRUE(daemon_->running()) << daemon_->stderr_text();
    auto health = get_json("/health");
    ASSERT_TRUE(health);
    EXPECT_EQ((*health)["status"], "ok");
  }

  // Waits until the daemon has closed every WebSocket it held (it saw the client go).
  bool wait_for_no_connections() {
    return wait_until([&] {
      auto status = get_json("/ws/status");
      return status && (*status)["stats"].value("current_connections", int64_t{-1}) == 0;
    });
  }

  // Asks once more for a ticket that has no usable answer: a fresh generation.
  void expect_fresh_generation(const std::string& ticket, const std::string& body,
                               int chat_requests_after) {
    fake_.set_script(FakeScript{});
    auto client = open_ticket(ticket);
    client->send_json({{"ticketBody", body}});
    auto frames = read_reply(*client);
    ASSERT_FALSE(frames.empty());
    EXPECT_EQ(first(frames)["type"], "stream") << first(frames).dump();
    EXPECT_EQ(last(frames)["type"], "done") << last(frames).dump();
    EXPECT_EQ(joined_stream(frames), "Hello, world.");
    EXPECT_EQ(fake_.chat_requests(), chat_requests_after);
  }

  std::unique_ptr<Store> store_;
};

// --- Single flight -------------------------------------------------------------

TEST_F(GenerationEngine, TwoClientsShareOneRequestAndSeeTheSameFrames) {
  REQUIRE_FAKE_OLLAMA();
  FakeScript script = answering({"Check ", "the ", "cable ", "first, ", "then ", "the ", "port ",
                                 "settings ", "on ", "the ", "switch."});
  script.token_delay = 40ms;
  fake_.set_script(script);
  start_daemon();

  auto first = open_ticket("SF-2");
  first->send_json({{"ticketBody", "No network on desk 12"}});
  auto first_streams = read_streams(*first, 1);  // the reply is under way
  auto second = open_ticket("SF-2");
  second->send_json({{"ticketBody", "No network on desk 12"}});

  auto first_rest = read_reply(*first);
  first_streams.insert(first_streams.end(), first_rest.begin(), first_rest.end());
  auto second_frames = read_reply(*second);
  ASSERT_EQ(last(first_streams)["type"], "done") << last(first_streams).dump();
  ASSERT_EQ(last(second_frames)["type"], "done") << last(second_frames).dump();

  EXPECT_EQ(of_type(second_frames, "cached").size(), 0u) << "joined while generating";
  const auto streams = of_type(first_streams, "stream");
  EXPECT_EQ(of_type(second_frames, "stream"), streams);
  EXPECT_EQ(streams.size(), script.tokens.size());
  expect_contiguous_seq(streams);
  EXPECT_EQ(joined_stream(streams), "Check the cable first, then the port settings on the switch.");
  EXPECT_EQ(fake_.chat_requests(), 1);
}

TEST_F(GenerationEngine, TwentyClientsShareOneRequestAndSeeTheSameFrames) {
  REQUIRE_FAKE_OLLAMA();
  fake_.set_script(stalled_after_two({"Restart ", "the ", "print ", "spooler ", "service."}));
  // Twenty sockets from one address; per-user limits are not what this test is about.
  start_daemon({}, {{"TICKETAID_LIMITS_MAX_CONNECTIONS_PER_USER", "100"}});

  // Half ask before the first chunks are cut, half after (they catch up).
  constexpr int kClients = 20;
  std::vector<std::unique_ptr<WsClient>> clients;
  std::vector<std::vector<json>> frames(kClients);
  for (int i = 0; i < kClients; ++i) {
    if (i == kClients / 2) frames[0] = read_streams(*clients[0], 2);
    clients.push_back(open_ticket("SF-20"));
    clients.back()->send_json({{"ticketBody", "Printer queue stuck"}});
  }
  // Every client has joined: each has the two chunks cut before the stall.
  for (int i = 1; i < kClients; ++i) {
    frames[i] = read_streams(*clients[i], 2);
  }
  EXPECT_EQ(fake_.chat_requests(), 1);
  fake_.release();
  for (int i = 0; i < kClients; ++i) {
    auto rest = read_reply(*clients[i]);
    frames[i].insert(frames[i].end(), rest.begin(), rest.end());
    ASSERT_EQ(last(frames[i])["type"], "done") << "client " << i << ": " << last(frames[i]).dump();
  }

  const auto reference = of_type(frames[0], "stream");
  ASSERT_EQ(reference.size(), 5u);
  expect_contiguous_seq(reference);
  EXPECT_EQ(joined_stream(reference), "Restart the print spooler service.");
  for (int i = 1; i < kClients; ++i) {
    EXPECT_EQ(of_type(frames[i], "stream"), reference) << "client " << i;
  }
  EXPECT_EQ(fake_.chat_requests(), 1);
}

TEST_F(GenerationEngine, ALateJoinerFirstGetsTheChunksAlreadyCutWithTheirSeq) {
  REQUIRE_FAKE_OLLAMA();
  fake_.set_script(stalled_after_two({"Clear ", "the ", "browser ", "cache."}));
  start_daemon();

  auto early = open_ticket("LJ-1");
  early->send_json({{"ticketBody", "Intranet shows an old page"}});
  auto early_frames = read_streams(*early, 2);  // two chunks went out; the fake holds the rest
  ASSERT_EQ(early_frames.size(), 2u);

  auto late = open_ticket("LJ-1");
  late->send_json({{"ticketBody", "Intranet shows an old page"}});
  auto replayed = read_streams(*late, 2);
  EXPECT_EQ(replayed, early_frames) << "the chunks cut before joining, with their original seq";
  EXPECT_EQ(fake_.chat_requests(), 1);

  fake_.release();
  auto early_rest = read_reply(*early);
  auto late_rest = read_reply(*late);
  ASSERT_EQ(last(early_rest)["type"], "done");
  ASSERT_EQ(last(late_rest)["type"], "done");
  EXPECT_EQ(of_type(late_rest, "stream"), of_type(early_rest, "stream"));
  replayed.insert(replayed.end(), late_rest.begin(), late_rest.end());
  const auto streams = of_type(replayed, "stream");
  expect_contiguous_seq(streams);
  EXPECT_EQ(joined_stream(streams), "Clear the browser cache.");
  EXPECT_EQ(fake_.chat_requests(), 1);
}

// --- Leaving a reply ------------------------------------------------------------

TEST_F(GenerationEngine, ADisconnectDoesNotStopTheGenerationAndTheAnswerIsCached) {
  REQUIRE_FAKE_OLLAMA();
  fake_.set_script(stalled_after_two());
  start_daemon();

  auto client = open_ticket("DC-1");
  client->send_json({{"ticketBody", "Teams crashes on start"}});
  ASSERT_EQ(read_streams(*client, 2).size(), 2u);
  client->drop();
  ASSERT_TRUE(wait_for_no_connections()) << "the daemon should notice the dropped socket";
  fake_.release();

  ASSERT_TRUE(wait_for_status("DC-1", SessionStatus::complete));
  EXPECT_EQ(session_of("DC-1").response, "Hello, world.");
  auto again = open_ticket("DC-1");
  again->send_json({{"ticketBody", "Teams crashes on start"}});
  auto frames = read_reply(*again);
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0]["type"], "cached") << frames[0].dump();
  EXPECT_EQ(frames[0]["response"], "Hello, world.");
  EXPECT_EQ(frames[1]["type"], "done");
  EXPECT_EQ(fake_.chat_requests(), 1);
  EXPECT_EQ(fake_.client_aborts(), 0);
  expect_healthy();
}

TEST_F(GenerationEngine, CancelOnDisconnectAbortsWhenTheLastListenerLeaves) {
  REQUIRE_FAKE_OLLAMA();
  fake_.set_script(stalled_after_two());
  start_daemon({}, {{"TICKETAID_STREAM_CANCEL_ON_DISCONNECT", "true"}});

  auto client = open_ticket("DC-2");
  client->send_json({{"ticketBody", "Teams crashes on start"}});
  ASSERT_EQ(read_streams(*client, 2).size(), 2u);
  client->drop();

  EXPECT_TRUE(fake_.wait_for_client_abort(5s)) << "Ollama's request should be closed";
  ASSERT_TRUE(wait_for_status("DC-2", SessionStatus::cancelled));
  EXPECT_TRUE(session_of("DC-2").response.empty()) << "a partial answer is never cached";
  expect_fresh_generation("DC-2", "Teams crashes on start", 2);
  expect_healthy();
}

TEST_F(GenerationEngine, CancelByTheOnlyListenerAbortsTheGeneration) {
  REQUIRE_FAKE_OLLAMA();
  fake_.set_script(stalled_after_two());
  start_daemon();

  auto client = open_ticket("CA-1");
  client->send_json({{"ticketBody", "Mailbox full"}});
  ASSERT_EQ(read_streams(*client, 2).size(), 2u);
  client->send_json({{"type", "cancel"}});
  auto error = client->read_until_type("error");
  ASSERT_TRUE(error);
  EXPECT_EQ((*error)["code"], "cancelled") << error->dump();

  EXPECT_TRUE(fake_.wait_for_client_abort(5s)) << "Ollama's request should be closed";
  ASSERT_TRUE(wait_for_status("CA-1", SessionStatus::cancelled));
  EXPECT_TRUE(session_of("CA-1").response.empty());
  // The same connection asks again: nothing was cached, so it regenerates.
  fake_.set_script(FakeScript{});
  client->send_json({{"ticketBody", "Mailbox full"}});
  auto frames = read_reply(*client);
  EXPECT_EQ(last(frames)["type"], "done") << last(frames).dump();
  EXPECT_EQ(joined_stream(frames), "Hello, world.");
  EXPECT_EQ(fake_.chat_requests(), 2);
  expect_healthy();
}

TEST_F(GenerationEngine, CancelByOneOfTwoListenersLeavesTheOtherTheWholeAnswer) {
  REQUIRE_FAKE_OLLAMA();
  fake_.set_script(stalled_after_two());
  start_daemon();

  auto leaving = open_ticket("CA-2");
  leaving->send_json({{"ticketBody", "Mailbox full"}});
  ASSERT_EQ(read_streams(*leaving, 2).size(), 2u);
  auto staying = open_ticket("CA-2");
  staying->send_json({{"ticketBody", "Mailbox full"}});
  auto staying_frames = read_streams(*staying, 2);

  leaving->send_json({{"type", "cancel"}});
  auto error = leaving->read_until_type("error");
  ASSERT_TRUE(error);
  EXPECT_EQ((*error)["code"], "cancelled");

  fake_.release();
  auto rest = read_reply(*staying);
  ASSERT_EQ(last(rest)["type"], "done") << last(rest).dump();
  staying_frames.insert(staying_frames.end(), rest.begin(), rest.end());
  expect_contiguous_seq(of_type(staying_frames, "stream"));
  EXPECT_EQ(joined_stream(staying_frames), "Hello, world.");
  EXPECT_EQ(fake_.client_aborts(), 0);
  EXPECT_EQ(fake_.chat_requests(), 1);
  EXPECT_EQ(session_of("CA-2").status, SessionStatus::complete);

  // The client that cancelled was sent nothing of the reply after its error.
  leaving->send_json({{"type", "ping"}});
  auto next = leaving->read_json();
  ASSERT_TRUE(next);
  EXPECT_EQ((*next)["type"], "pong") << next->dump();
}

// --- The queue ------------------------------------------------------------------

TEST_F(GenerationEngine, QueuedRequestsAreToldTheirPositionAndAFullQueueIsBusy) {
  REQUIRE_FAKE_OLLAMA();
  fake_.set_script(stalled_after_two({"A1 ", "A2 ", "A3"}));
  start_daemon(
      {}, {{"TICKETAID_GENERATION_MAX_PARALLEL", "1"}, {"TICKETAID_GENERATION_MAX_QUEUE", "2"}});

  auto a = open_ticket("Q-A");
  a->send_json({{"ticketBody", "body A"}});
  ASSERT_EQ(read_streams(*a, 2).size(), 2u);  // A holds the only slot
  // Replies that reach the fake from now on run straight through.
  fake_.set_script(FakeScript{});

  auto b = open_ticket("Q-B");
  b->send_json({{"ticketBody", "body B"}});
  auto b_queued = b->read_json();
  ASSERT_TRUE(b_queued);
  EXPECT_EQ(*b_queued, json({{"type", "queued"}, {"position", 1}}));

  auto c = open_ticket("Q-C");
  c->send_json({{"ticketBody", "body C"}});
  auto c_queued = c->read_json();
  ASSERT_TRUE(c_queued);
  EXPECT_EQ(*c_queued, json({{"type", "queued"}, {"position", 2}}));

  auto c_joiner = open_ticket("Q-C");
  c_joiner->send_json({{"ticketBody", "body C"}});
  auto joiner_queued = c_joiner->read_json();
  ASSERT_TRUE(joiner_queued);
  EXPECT_EQ(*joiner_queued, json({{"type", "queued"}, {"position", 2}}))
      << "a joiner is told the current position";

  auto d = open_ticket("Q-D");
  d->send_json({{"ticketBody", "body D"}});
  auto d_reply = read_reply(*d);
  ASSERT_EQ(d_reply.size(), 1u);
  EXPECT_EQ(d_reply[0]["type"], "error");
  EXPECT_EQ(d_reply[0]["code"], "busy") << d_reply[0].dump();
  EXPECT_FALSE(stored("Q-D").has_value()) << "a refused request stores nothing";
  EXPECT_EQ(fake_.chat_requests(), 1);

  fake_.release();
  auto a_rest = read_reply(*a);
  EXPECT_EQ(last(a_rest)["type"], "done") << last(a_rest).dump();

  auto b_frames = read_reply(*b);
  EXPECT_EQ(last(b_frames)["type"], "done") << last(b_frames).dump();
  EXPECT_EQ(of_type(b_frames, "queued").size(), 0u) << "B ran next";
  EXPECT_EQ(joined_stream(b_frames), "Hello, world.");

  for (auto* client : {c.get(), c_joiner.get()}) {
    auto frames = read_reply(*client);
    ASSERT_GE(frames.size(), 2u);
    EXPECT_EQ(frames[0], json({{"type", "queued"}, {"position", 1}})) << "C moved up";
    EXPECT_EQ(frames[1]["type"], "stream") << frames[1].dump();
    EXPECT_EQ(last(frames)["type"], "done") << last(frames).dump();
    EXPECT_EQ(joined_stream(frames), "Hello, world.");
  }

  const auto requests = fake_.requests();
  std::vector<std::string> asked;
  for (const auto& r : requests) {
    if (r.path == "/api/chat") asked.push_back(asked_body(r));
  }
  EXPECT_EQ(asked, (std::vector<std::string>{"body A", "body B", "body C"}));
  expect_healthy();
}

// --- Time limits ----------------------------------------------------------------

class GenerationEngineTimeouts : public GenerationEngine {
 protected:
  // Asks for the ticket and expects a timeout error, a failed session with no answer,
  // and a daemon that answers the next request.
  std::vector<json> expect_timeout(const std::string& ticket, const std::string& reason_part) {
    auto client = open_ticket(ticket);
    client->send_json({{"ticketBody", "Laptop will not wake from sleep"}});
    auto frames = read_reply(*client);
    EXPECT_FALSE(frames.empty());
    if (frames.empty()) return frames;
    auto final_frame = frames.back();
    EXPECT_EQ(final_frame["type"], "error") << final_frame.dump();
    EXPECT_EQ(final_frame["code"], "timeout") << final_frame.dump();
    EXPECT_NE(final_frame.value("message", "").find(reason_part), std::string::npos)
        << final_frame.dump();

    auto session = stored(ticket);
    EXPECT_TRUE(session.has_value());
    if (session) {
      EXPECT_EQ(session->status, SessionStatus::failed);
      EXPECT_FALSE(session->failure_reason.empty());
      EXPECT_TRUE(session->response.empty()) << "a partial answer is never cached";
    }
    EXPECT_TRUE(fake_.wait_for_client_abort(5s)) << "the daemon should close Ollama's request";
    expect_healthy();
    expect_fresh_generation(ticket, "Laptop will not wake from sleep", 2);
    return frames;
  }
};

TEST_F(GenerationEngineTimeouts, NoFirstTokenWithinTheLimit) {
  REQUIRE_FAKE_OLLAMA();
  FakeScript script;
  script.fault = FakeFault::hang_before_headers;
  fake_.set_script(script);
  start_daemon({}, {{"TICKETAID_GENERATION_FIRST_TOKEN_TIMEOUT_S", "1"}});
  const auto started = std::chrono::steady_clock::now();
  auto frames = expect_timeout("TO-1", "first token");
  EXPECT_EQ(of_type(frames, "stream").size(), 0u);
  EXPECT_GE(std::chrono::steady_clock::now() - started, 1s);
}

TEST_F(GenerationEngineTimeouts, NoTokenForTheIdleLimit) {
  REQUIRE_FAKE_OLLAMA();
  fake_.set_script(stalled_after_two());
  start_daemon({}, {{"TICKETAID_GENERATION_IDLE_TIMEOUT_S", "1"}});
  auto frames = expect_timeout("TO-2", "no token for");
  EXPECT_EQ(of_type(frames, "stream").size(), 2u);
}

TEST_F(GenerationEngineTimeouts, TheWholeGenerationTakesTooLong) {
  REQUIRE_FAKE_OLLAMA();
  // Forty tokens 100 ms apart: never idle for long, but four seconds in all.
  FakeScript script = answering(std::vector<std::string>(40, "word "));
  script.token_delay = 100ms;
  fake_.set_script(script);
  start_daemon({}, {{"TICKETAID_GENERATION_TIMEOUT_S", "1"}});
  auto frames = expect_timeout("TO-3", "did not finish within");
  const auto streams = of_type(frames, "stream");
  EXPECT_GT(streams.size(), 0u);
  EXPECT_LT(streams.size(), 40u);
}

TEST_F(GenerationEngineTimeouts, ASlowFirstTokenWithinTheLimitSucceeds) {
  REQUIRE_FAKE_OLLAMA();
  FakeScript script;
  script.first_token_delay = 300ms;
  fake_.set_script(script);
  start_daemon({}, {{"TICKETAID_GENERATION_FIRST_TOKEN_TIMEOUT_S", "1"}});
  auto client = open_ticket("TO-4");
  client->send_json({{"ticketBody", "Slow model load"}});
  auto frames = read_reply(*client);
  EXPECT_EQ(last(frames)["type"], "done") << last(frames).dump();
  EXPECT_EQ(joined_stream(frames), "Hello, world.");
  EXPECT_EQ(session_of("TO-4").status, SessionStatus::complete);
}

// --- Coalescing -----------------------------------------------------------------

TEST_F(GenerationEngine, CoalescedFramesConcatenateToExactlyTheStoredAnswer) {
  REQUIRE_FAKE_OLLAMA();
  std::vector<std::string> tokens;
  std::string answer;
  for (char c = 'a'; c <= 'x'; ++c) {
    tokens.emplace_back(1, c);
    answer += c;
  }
  fake_.set_script(answering(tokens));
  start_daemon(
      {}, {{"TICKETAID_STREAM_COALESCE_MS", "1000"}, {"TICKETAID_STREAM_COALESCE_BYTES", "8"}});

  auto client = open_ticket("CO-1");
  client->send_json({{"ticketBody", "Coalesce"}});
  auto frames = read_reply(*client);
  ASSERT_EQ(last(frames)["type"], "done") << last(frames).dump();
  const auto streams = of_type(frames, "stream");
  EXPECT_EQ(joined_stream(frames), answer);
  EXPECT_LT(streams.size(), tokens.size() / 2) << "tokens should share frames";
  for (const auto& s : streams) {
    EXPECT_LE(s.value("content", "").size(), 8u) << s.dump();
  }
  expect_contiguous_seq(streams);
  EXPECT_EQ(session_of("CO-1").response, answer);
}

TEST_F(GenerationEngine, ACoalescedTokenGoesOutWithinTheIntervalWhenNoTokenFollows) {
  REQUIRE_FAKE_OLLAMA();
  fake_.set_script(stalled_after_two());
  start_daemon({}, {{"TICKETAID_STREAM_COALESCE_MS", "50"}});

  // "Hello" is cut at once; ", " arrives right after it and may be held for up to
  // 50 ms, but not for as long as the model pauses.
  auto client = open_ticket("CO-2");
  client->send_json({{"ticketBody", "Coalesce across a pause"}});
  std::string received;
  while (received != "Hello, ") {
    auto frame = client->read_json(5s);
    ASSERT_TRUE(frame) << "got only \"" << received << "\" while the model paused";
    ASSERT_EQ((*frame)["type"], "stream") << frame->dump();
    received += (*frame)["content"].get<std::string>();
  }
  fake_.release();
  auto rest = read_reply(*client);
  ASSERT_EQ(last(rest)["type"], "done") << last(rest).dump();
  EXPECT_EQ(received + joined_stream(rest), "Hello, world.");
  EXPECT_EQ(session_of("CO-2").response, "Hello, world.");
}

// --- A new request during a generation --------------------------------------------

TEST_F(GenerationEngine, RegenerateDuringAGenerationJoinsIt) {
  REQUIRE_FAKE_OLLAMA();
  fake_.set_script(stalled_after_two());
  start_daemon();

  auto first = open_ticket("RG-1");
  first->send_json({{"ticketBody", "Wi-Fi slow in room 4"}});
  auto first_frames = read_streams(*first, 2);
  auto second = open_ticket("RG-1");
  second->send_json({{"ticketBody", "Wi-Fi slow in room 4"}, {"regenerate", true}});
  auto second_frames = read_streams(*second, 2);
  EXPECT_EQ(second_frames, first_frames) << "joined the running generation";

  fake_.release();
  auto first_rest = read_reply(*first);
  auto second_rest = read_reply(*second);
  ASSERT_EQ(last(first_rest)["type"], "done");
  ASSERT_EQ(last(second_rest)["type"], "done");
  EXPECT_EQ(of_type(second_rest, "stream"), of_type(first_rest, "stream"));
  EXPECT_EQ(fake_.chat_requests(), 1);
}

TEST_F(GenerationEngine, ANewBodyDuringAGenerationIsAnsweredAfterItAsAFreshGeneration) {
  REQUIRE_FAKE_OLLAMA();
  fake_.set_script(stalled_after_two({"First ", "answer ", "for ", "one."}));
  start_daemon();

  auto first = open_ticket("NB-1");
  first->send_json({{"ticketBody", "body one"}});
  ASSERT_EQ(read_streams(*first, 2).size(), 2u);
  auto second = open_ticket("NB-1");
  second->send_json({{"ticketBody", "body two"}});
  // The daemon has read the request (the pong comes after it on this socket) and
  // must neither join the running reply nor ask Ollama beside it.
  second->send_json({{"type", "ping"}});
  auto pong = second->read_json();
  ASSERT_TRUE(pong);
  EXPECT_EQ((*pong)["type"], "pong") << pong->dump();
  EXPECT_FALSE(fake_.wait_for_chat_requests(2, 200ms)) << "body two must wait for body one";

  // Had body two been sent to Ollama already, it would have got the first script.
  fake_.set_script(answering({"Second ", "answer."}));
  fake_.release();
  auto first_rest = read_reply(*first);
  ASSERT_EQ(last(first_rest)["type"], "done") << last(first_rest).dump();
  auto second_frames = read_reply(*second);
  ASSERT_EQ(last(second_frames)["type"], "done") << last(second_frames).dump();
  EXPECT_EQ(of_type(second_frames, "cached").size(), 0u);
  expect_contiguous_seq(of_type(second_frames, "stream"));
  EXPECT_EQ(joined_stream(second_frames), "Second answer.");

  std::vector<std::string> asked;
  for (const auto& r : fake_.requests()) {
    if (r.path == "/api/chat") asked.push_back(asked_body(r));
  }
  EXPECT_EQ(asked, (std::vector<std::string>{"body one", "body two"}));

  auto current = stored("NB-1");
  ASSERT_TRUE(current);
  EXPECT_EQ(current->prompt, "body two");
  EXPECT_EQ(current->response, "Second answer.");
  auto revisions = store_->list_ticket_revisions("NB-1");
  ASSERT_TRUE(revisions);
  ASSERT_EQ(revisions.value().size(), 1u);
  EXPECT_EQ(revisions.value()[0].prompt, "body one");
  EXPECT_EQ(revisions.value()[0].response, "First answer for one.");
}

// --- Thinking -------------------------------------------------------------------

TEST_F(GenerationEngine, ThinkingIsForwardedBeforeTheAnswerAndNeverStored) {
  REQUIRE_FAKE_OLLAMA();
  FakeScript script = answering({"Reboot", " it."});
  script.thinking = {"Let me ", "think."};
  fake_.set_script(script);
  start_daemon({}, {{"TICKETAID_OLLAMA_THINK", "true"}});

  auto client = open_ticket("TH-1");
  client->send_json({{"ticketBody", "Reasoning model"}});
  auto frames = read_reply(*client);
  ASSERT_EQ(last(frames)["type"], "done") << last(frames).dump();
  ASSERT_EQ(frames.size(), 5u);
  EXPECT_EQ(frames[0]["type"], "thinking");
  EXPECT_EQ(frames[1]["type"], "thinking");
  EXPECT_EQ(frames[0]["content"].get<std::string>() + frames[1]["content"].get<std::string>(),
            "Let me think.");
  EXPECT_EQ(frames[2]["type"], "stream");
  EXPECT_EQ(frames[3]["type"], "stream");
  expect_contiguous_seq(of_type(frames, "stream"));
  EXPECT_EQ(joined_stream(frames), "Reboot it.");
  EXPECT_EQ(fake_.last_chat_body()["think"], true);

  EXPECT_EQ(session_of("TH-1").response, "Reboot it.");
  auto again = open_ticket("TH-1");
  again->send_json({{"ticketBody", "Reasoning model"}});
  auto cached = read_reply(*again);
  ASSERT_EQ(first(cached)["type"], "cached") << first(cached).dump();
  EXPECT_EQ(first(cached)["response"], "Reboot it.");
  EXPECT_EQ(fake_.chat_requests(), 1);
}

// --- Crash recovery -------------------------------------------------------------

TEST_F(GenerationEngine, ACrashLeavesTheRunningGenerationInterruptedAndKeepsFinishedAnswers) {
  REQUIRE_FAKE_OLLAMA();
  start_daemon();
  auto finished = open_ticket("CR-1");
  finished->send_json({{"ticketBody", "Keyboard types wrong letters"}});
  auto finished_frames = read_reply(*finished);
  ASSERT_EQ(last(finished_frames)["type"], "done");
  const std::string answer = joined_stream(finished_frames);

  fake_.set_script(stalled_after_two({"Half ", "an ", "answer ", "only."}));
  auto running = open_ticket("CR-2");
  running->send_json({{"ticketBody", "Monitor stays black"}});
  ASSERT_EQ(read_streams(*running, 2).size(), 2u);
  EXPECT_EQ(session_of("CR-2").status, SessionStatus::generating);

  daemon_->kill9();
  EXPECT_FALSE(daemon_->running());
  EXPECT_TRUE(fake_.wait_for_client_abort(5s)) << "the dead daemon's request is closed";
  finished.reset();
  running.reset();

  fake_.set_script(FakeScript{});
  start_daemon();
  auto interrupted = stored("CR-2");
  ASSERT_TRUE(interrupted);
  EXPECT_EQ(interrupted->status, SessionStatus::interrupted);
  EXPECT_TRUE(interrupted->response.empty());

  expect_fresh_generation("CR-2", "Monitor stays black", 3);
  EXPECT_EQ(session_of("CR-2").status, SessionStatus::complete);

  auto reopened = open_ticket("CR-1");
  reopened->send_json({{"ticketBody", "Keyboard types wrong letters"}});
  auto cached = read_reply(*reopened);
  ASSERT_EQ(cached.size(), 2u);
  EXPECT_EQ(cached[0]["type"], "cached") << cached[0].dump();
  EXPECT_EQ(cached[0]["response"], answer);
  EXPECT_EQ(fake_.chat_requests(), 3);
  expect_healthy();
}

}  // namespace
}  // namespace ticketaid::testing
