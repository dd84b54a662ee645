// What a client sees when Ollama fails, and that the daemon keeps serving and
// retries on the next request.
#include <gtest/gtest.h>

#include "integration/daemon_fixture.h"
#include "store/store.h"

namespace ticketaid::testing {
namespace {

class OllamaFaults : public DaemonTest {
 protected:
  void SetUp() override {
    if (!using_fake()) GTEST_SKIP() << "injects faults into the fake Ollama";
  }

  // Asks once with the fault, expects the error code, then asks again without it.
  void expect_error_then_recovery(FakeFault fault, const std::string& code) {
    start_daemon();
    FakeScript script;
    script.fault = fault;
    script.fault_after_tokens = 2;
    fake_.set_script(script);
    auto client = open_ticket("F-1");
    client->send_json({{"ticketBody", "Disk full"}});
    auto frames = read_reply(*client);
    ASSERT_FALSE(frames.empty());
    EXPECT_EQ(frames.back()["type"], "error") << frames.back().dump();
    EXPECT_EQ(frames.back()["code"], code) << frames.back().dump();
    EXPECT_FALSE(frames.back()["message"].get<std::string>().empty());

    auto store = open_sqlite_store({(dir_.path() / "ticketaid.db").string()});
    ASSERT_TRUE(store);
    auto session = store.value()->find_ticket_session("F-1");
    ASSERT_TRUE(session && session.value());
    EXPECT_EQ(session.value()->status, SessionStatus::failed);
    EXPECT_FALSE(session.value()->failure_reason.empty());
    EXPECT_TRUE(session.value()->response.empty()) << "a partial answer is never cached";

    fake_.set_script(FakeScript{});
    client->send_json({{"ticketBody", "Disk full"}});
    auto retry = read_reply(*client);
    EXPECT_EQ(retry.back()["type"], "done") << retry.back().dump();
    EXPECT_EQ(joined_stream(retry), "Hello, world.");
    EXPECT_EQ(fake_.chat_requests(), 2);
  }
};

TEST_F(OllamaFaults, Http500) {
  expect_error_then_recovery(FakeFault::http_500, "ollama_unavailable");
}

TEST_F(OllamaFaults, Http503QueueFull) {
  expect_error_then_recovery(FakeFault::http_503, "ollama_unavailable");
}

TEST_F(OllamaFaults, ErrorLineInsideTheStream) {
  expect_error_then_recovery(FakeFault::error_mid_stream, "ollama_unavailable");
}

TEST_F(OllamaFaults, ConnectionDroppedMidStream) {
  expect_error_then_recovery(FakeFault::drop_mid_stream, "ollama_unavailable");
}

TEST_F(OllamaFaults, MissingModelNamesTheModel) {
  fake_.set_models({"mistral"});
  start_daemon();
  auto client = open_ticket("M-1");
  client->send_json({{"ticketBody", "Screen flickers"}});
  auto frames = read_reply(*client);
  ASSERT_EQ(frames.back()["type"], "error");
  EXPECT_EQ(frames.back()["code"], "model_not_found");
  EXPECT_NE(frames.back()["message"].get<std::string>().find("llama3.2"), std::string::npos);
}

TEST_F(OllamaFaults, UnreachableOllama) {
  // A port where nothing listens: the fake's own, once it is gone.
  int dead_port = 0;
  {
    FakeOllama gone;
    dead_port = gone.port();
  }
  DaemonOptions options;
  options.db_path = dir_.path() / "ticketaid.db";
  options.ollama_url = "http://127.0.0.1:" + std::to_string(dead_port);
  daemon_ = std::make_unique<DaemonProcess>(options);
  ASSERT_TRUE(daemon_->start()) << daemon_->error();
  auto client = open_ticket("U-1");
  client->send_json({{"ticketBody", "Nothing works"}});
  auto frames = read_reply(*client);
  ASSERT_EQ(frames.back()["type"], "error");
  EXPECT_EQ(frames.back()["code"], "ollama_unavailable");
  EXPECT_NE(frames.back()["message"].get<std::string>().find("not reachable"), std::string::npos);
  EXPECT_TRUE(daemon_->running());
}

TEST_F(OllamaFaults, LinesSplitAtOddOffsetsInsideUtf8) {
  FakeScript script;
  script.tokens = {"Caf\xc3\xa9 ", "\xe2\x82\xac", "5 ", "\xf0\x9f\x96\xa8", " ok"};
  script.split_writes_at = 3;
  fake_.set_script(script);
  start_daemon();
  auto client = open_ticket("S-1");
  client->send_json({{"ticketBody", "Unicode"}});
  auto frames = read_reply(*client);
  ASSERT_EQ(frames.back()["type"], "done");
  EXPECT_EQ(joined_stream(frames),
            "Caf\xc3\xa9 \xe2\x82\xac"
            "5 \xf0\x9f\x96\xa8 ok");
}

TEST_F(OllamaFaults, ThinkingIsNeverPartOfTheAnswer) {
  FakeScript script;
  script.thinking = {"Let me ", "think."};
  script.tokens = {"Reboot."};
  fake_.set_script(script);
  start_daemon();
  auto client = open_ticket("R-1");
  client->send_json({{"ticketBody", "Reasoning model"}});
  auto frames = read_reply(*client);
  ASSERT_EQ(frames.back()["type"], "done");
  for (const auto& f : frames)
    EXPECT_NE(f["type"], "thinking") << "ollama.think is off";
  EXPECT_EQ(joined_stream(frames), "Reboot.");
  auto again = open_ticket("R-1");
  again->send_json({{"ticketBody", "Reasoning model"}});
  EXPECT_EQ(read_reply(*again).front()["response"], "Reboot.");
}

}  // namespace
}  // namespace ticketaid::testing
