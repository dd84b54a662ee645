// The generation engine seen from outside (SPEC §2 "Behaviour" and "Precise rules"):
// single flight and catch-up replay, disconnects and cancels, the queue, and a new
// request during a generation. The real daemon, real WebSockets, the real SQLite file
// and the fake Ollama, whose scripts hold a reply at a known point (stall, release)
// so that every interleaving a test claims is one it has waited for.
#include "integration/generation_fixture.h"

namespace ticketaid::testing {
namespace {

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

}  // namespace
}  // namespace ticketaid::testing
