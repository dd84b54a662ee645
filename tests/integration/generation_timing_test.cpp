// The generation engine over time (SPEC §2, §4 generation limits): the time limits,
// coalescing of tokens into frames, thinking, and recovery after a crash. As in
// generation_engine_test.cpp, the fake Ollama holds replies at known points so that
// each test waits for the interleaving it claims.
#include "integration/generation_fixture.h"

namespace ticketaid::testing {
namespace {

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
