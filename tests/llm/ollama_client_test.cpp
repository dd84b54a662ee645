// The Ollama client against the fake Ollama: streaming, counters, every fault,
// the three time limits and cancellation.
#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "llm/llm_client.h"
#include "support/fake_ollama.h"

namespace ticketaid {
namespace {

using namespace std::chrono_literals;
using testing::FakeFault;
using testing::FakeOllama;
using testing::FakeScript;

class OllamaClientTest : public ::testing::Test {
 protected:
  ChatRequest request() {
    ChatRequest r;
    r.model = "llama3.2";
    r.messages = {{"system", "Be brief."}, {"user", "Printer jams"}};
    r.options = {{"num_predict", 64}};
    return r;
  }
  Result<ChatOutcome> chat(ChatLimits limits = {}) {
    content_.clear();
    thinking_.clear();
    return client_->chat(
        request(), limits,
        [this](const ChatDelta& d) {
          content_ += d.content;
          thinking_ += d.thinking;
        },
        cancel_);
  }

  FakeOllama fake_;
  std::unique_ptr<LlmClient> client_ = make_ollama_client({fake_.url(), 5s});
  CancelToken cancel_;
  std::string content_;
  std::string thinking_;
};

TEST_F(OllamaClientTest, StreamsDeltasAndReportsTheFinalCounters) {
  auto outcome = chat();
  ASSERT_TRUE(outcome) << outcome.status().to_string();
  EXPECT_EQ(content_, "Hello, world.");
  EXPECT_EQ(outcome->model, "llama3.2");
  EXPECT_EQ(outcome->prompt_tokens, 12);
  EXPECT_EQ(outcome->response_tokens, 4);
  EXPECT_EQ(outcome->done_reason, "stop");
  EXPECT_TRUE(outcome->duration_ms.has_value());
  auto body = fake_.last_chat_body();
  EXPECT_EQ(body["stream"], true);
  EXPECT_EQ(body["think"], false);
  EXPECT_EQ(body["options"]["num_predict"], 64);
  EXPECT_EQ(body["messages"][1]["content"], "Printer jams");
}

TEST_F(OllamaClientTest, ThinkingComesSeparately) {
  FakeScript script;
  script.thinking = {"hmm ", "ok"};
  script.tokens = {"Answer"};
  fake_.set_script(script);
  ASSERT_TRUE(chat());
  EXPECT_EQ(thinking_, "hmm ok");
  EXPECT_EQ(content_, "Answer");
}

TEST_F(OllamaClientTest, SplitWritesGiveTheSameText) {
  FakeScript script;
  script.tokens = {"\xc3\xa9t\xc3\xa9 ", "\xe2\x82\xac", "\xf0\x9f\x96\xa8"};
  for (std::size_t split : {1u, 2u, 5u, 7u}) {
    script.split_writes_at = split;
    fake_.set_script(script);
    ASSERT_TRUE(chat()) << split;
    EXPECT_EQ(content_, "\xc3\xa9t\xc3\xa9 \xe2\x82\xac\xf0\x9f\x96\xa8") << split;
  }
}

TEST_F(OllamaClientTest, MissingModelIsModelNotFound) {
  fake_.set_models({"mistral"});
  auto outcome = chat();
  ASSERT_FALSE(outcome);
  EXPECT_EQ(outcome.status().code(), ErrorCode::model_not_found);
  EXPECT_NE(outcome.status().message().find("ollama pull llama3.2"), std::string::npos);
}

TEST_F(OllamaClientTest, HttpErrorsAndStreamErrorsAreOllamaUnavailable) {
  for (auto fault : {FakeFault::http_500, FakeFault::http_503, FakeFault::error_mid_stream,
                     FakeFault::drop_mid_stream}) {
    FakeScript script;
    script.fault = fault;
    script.fault_after_tokens = 1;
    fake_.set_script(script);
    auto outcome = chat();
    ASSERT_FALSE(outcome) << static_cast<int>(fault);
    EXPECT_EQ(outcome.status().code(), ErrorCode::ollama_unavailable)
        << outcome.status().to_string();
  }
}

TEST_F(OllamaClientTest, UnreachableServer) {
  int port = 0;
  {
    FakeOllama gone;
    port = gone.port();
  }
  auto client = make_ollama_client({"http://127.0.0.1:" + std::to_string(port), 2s});
  auto outcome = client->chat(
      request(), {}, [](const ChatDelta&) {}, cancel_);
  ASSERT_FALSE(outcome);
  EXPECT_EQ(outcome.status().code(), ErrorCode::ollama_unavailable);
  EXPECT_NE(outcome.status().message().find("not reachable"), std::string::npos);
}

TEST_F(OllamaClientTest, FirstTokenLimit) {
  FakeScript script;
  script.fault = FakeFault::hang_before_headers;
  fake_.set_script(script);
  auto outcome = chat({200ms, 60s, 600s});
  ASSERT_FALSE(outcome);
  EXPECT_EQ(outcome.status().code(), ErrorCode::timeout);
  EXPECT_NE(outcome.status().message().find("first token"), std::string::npos);
  EXPECT_TRUE(fake_.wait_for_client_abort(5s)) << "the connection to Ollama is closed";
}

TEST_F(OllamaClientTest, IdleGapLimit) {
  FakeScript script;
  script.fault = FakeFault::stall_after_tokens;
  script.fault_after_tokens = 2;
  fake_.set_script(script);
  auto outcome = chat({60s, 200ms, 600s});
  ASSERT_FALSE(outcome);
  EXPECT_EQ(outcome.status().code(), ErrorCode::timeout);
  EXPECT_NE(outcome.status().message().find("no token"), std::string::npos);
  EXPECT_EQ(content_, "Hello, ") << "the tokens before the stall arrived";
}

TEST_F(OllamaClientTest, TotalLimit) {
  FakeScript script;
  script.tokens = std::vector<std::string>(100, "x");
  script.token_delay = 20ms;
  fake_.set_script(script);
  auto outcome = chat({60s, 60s, 300ms});
  ASSERT_FALSE(outcome);
  EXPECT_EQ(outcome.status().code(), ErrorCode::timeout);
  EXPECT_NE(outcome.status().message().find("did not finish"), std::string::npos);
}

TEST_F(OllamaClientTest, CancelClosesTheConnectionWhileWaiting) {
  FakeScript script;
  script.fault = FakeFault::hang_before_headers;
  fake_.set_script(script);
  auto result = std::async(std::launch::async, [this] { return chat(); });
  ASSERT_TRUE(fake_.wait_for_chat_requests(1, 5s));
  cancel_.cancel(Status::error(ErrorCode::cancelled, "stop"));
  auto outcome = result.get();
  ASSERT_FALSE(outcome);
  EXPECT_EQ(outcome.status().code(), ErrorCode::cancelled);
  EXPECT_TRUE(fake_.wait_for_client_abort(5s));
}

TEST_F(OllamaClientTest, ModelsAndVersion) {
  fake_.set_models({"llama3.2", "qwen3:8b"});
  auto models = client_->list_models();
  ASSERT_TRUE(models);
  ASSERT_EQ(models->size(), 2u);
  EXPECT_EQ(models.value()[1].name, "qwen3:8b");
  auto version = client_->version();
  ASSERT_TRUE(version);
  EXPECT_EQ(version.value(), "0.5.7");
}

}  // namespace
}  // namespace ticketaid
