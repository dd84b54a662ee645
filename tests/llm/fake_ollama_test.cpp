// Checks that the fake Ollama speaks Ollama's wire protocol and injects its faults
// as documented, using a plain httplib::Client as the Ollama client does.
#include "support/fake_ollama.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace ticketaid::testing {
namespace {

using json = nlohmann::json;
using std::chrono::milliseconds;

constexpr milliseconds kWait{5'000};

json chat_body(const std::string& model = "llama3.2", bool stream = true) {
  return {{"model", model},
          {"messages", {{{"role", "user"}, {"content", "The printer is offline."}}}},
          {"stream", stream},
          {"options", {{"temperature", 0.2}}},
          {"think", false}};
}

std::vector<json> parse_ndjson(const std::string& body) {
  std::vector<json> lines;
  std::size_t start = 0;
  for (auto nl = body.find('\n'); nl != std::string::npos; nl = body.find('\n', start)) {
    lines.push_back(json::parse(body.substr(start, nl - start)));
    start = nl + 1;
  }
  EXPECT_EQ(start, body.size()) << "the body does not end with a newline";
  return lines;
}

std::string contents(const std::vector<json>& lines) {
  std::string out;
  for (const auto& l : lines) {
    if (l.contains("message")) out += l["message"]["content"].get<std::string>();
  }
  return out;
}

// A streamed POST /api/chat through Client::send, as the daemon's client makes it;
// records when the headers arrived and every piece of the body.
struct StreamedChat {
  httplib::Result result{nullptr, httplib::Error::Unknown};
  std::atomic<bool> headers{false};
  std::chrono::steady_clock::time_point headers_at;
  std::mutex mutex;
  std::condition_variable cv;
  std::vector<std::string> pieces;
  std::string body;

  void run(int port, const json& request, int read_timeout_ms = 10'000,
           std::function<bool(const std::string&)> keep_going = nullptr) {
    httplib::Client client("127.0.0.1", port);
    client.set_read_timeout(read_timeout_ms / 1000, (read_timeout_ms % 1000) * 1000);
    httplib::Request req;
    req.method = "POST";
    req.path = "/api/chat";
    req.body = request.dump();
    req.set_header("Content-Type", "application/json");
    req.response_handler = [this](const httplib::Response&) {
      headers_at = std::chrono::steady_clock::now();
      headers = true;
      return true;
    };
    req.content_receiver = [this, keep_going](const char* data, size_t size, uint64_t, uint64_t) {
      std::lock_guard lock(mutex);
      pieces.emplace_back(data, size);
      body.append(data, size);
      cv.notify_all();
      return !keep_going || keep_going(body);
    };
    result = client.send(req);
  }

  bool wait_for_lines(std::size_t n) {
    std::unique_lock lock(mutex);
    return cv.wait_for(lock, kWait, [&] {
      return static_cast<std::size_t>(std::count(body.begin(), body.end(), '\n')) >= n;
    });
  }
};

TEST(FakeOllamaTest, ListsModelsInOllamasShape) {
  FakeOllama fake;
  fake.set_models({"llama3.2", "qwen3:8b"});
  httplib::Client client("127.0.0.1", fake.port());
  auto res = client.Get("/api/tags");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
  const json tags = json::parse(res->body);
  ASSERT_EQ(tags["models"].size(), 2u);
  EXPECT_EQ(tags["models"][0]["name"], "llama3.2");
  EXPECT_EQ(tags["models"][1]["name"], "qwen3:8b");
  EXPECT_EQ(tags["models"][1]["model"], "qwen3:8b");
  EXPECT_TRUE(tags["models"][0]["size"].is_number_integer());
  EXPECT_EQ(tags["models"][0]["digest"].get<std::string>().size(), 64u);
  EXPECT_EQ(tags["models"][0]["details"]["format"], "gguf");
  ASSERT_EQ(fake.requests().size(), 1u);
  EXPECT_EQ(fake.requests()[0].method, "GET");
  EXPECT_EQ(fake.requests()[0].path, "/api/tags");
  EXPECT_EQ(fake.chat_requests(), 0);
}

TEST(FakeOllamaTest, ReportsItsVersion) {
  FakeOllama fake;
  fake.set_version("0.6.1");
  httplib::Client client("127.0.0.1", fake.port());
  auto res = client.Get("/api/version");
  ASSERT_TRUE(res);
  EXPECT_EQ(json::parse(res->body), json({{"version", "0.6.1"}}));
  EXPECT_EQ(fake.url(), "http://127.0.0.1:" + std::to_string(fake.port()));
}

TEST(FakeOllamaTest, StreamsTokensAsNdjsonThenTheDoneLine) {
  FakeOllama fake;
  FakeScript script;
  script.tokens = {"Restart", " the", " spooler", " <now> & then."};
  script.thinking = {"Printer", " issue."};
  fake.set_script(script);

  StreamedChat chat;
  chat.run(fake.port(), chat_body("llama3.2:latest"));
  ASSERT_TRUE(chat.result) << httplib::to_string(chat.result.error());
  EXPECT_EQ(chat.result->status, 200);
  EXPECT_EQ(chat.result->get_header_value("Content-Type"), "application/x-ndjson");
  EXPECT_EQ(chat.result->get_header_value("Transfer-Encoding"), "chunked");
  // Go escapes HTML characters in JSON strings.
  EXPECT_NE(chat.body.find("\\u003cnow\\u003e \\u0026 then."), std::string::npos);

  const auto lines = parse_ndjson(chat.body);
  ASSERT_EQ(lines.size(), 7u);
  EXPECT_EQ(lines[0]["message"]["thinking"], "Printer");
  EXPECT_EQ(lines[0]["message"]["content"], "");
  EXPECT_EQ(lines[1]["message"]["thinking"], " issue.");
  for (std::size_t i = 0; i < 6; ++i) {
    EXPECT_EQ(lines[i]["model"], "llama3.2:latest");
    EXPECT_EQ(lines[i]["message"]["role"], "assistant");
    EXPECT_EQ(lines[i]["done"], false);
    EXPECT_EQ(lines[i]["created_at"].get<std::string>().back(), 'Z');
  }
  EXPECT_FALSE(lines[2]["message"].contains("thinking"));
  EXPECT_EQ(contents(lines), "Restart the spooler <now> & then.");

  const json& done = lines.back();
  EXPECT_EQ(done["done"], true);
  EXPECT_EQ(done["done_reason"], "stop");
  EXPECT_EQ(done["message"]["content"], "");
  EXPECT_EQ(done["eval_count"], 4);
  EXPECT_EQ(done["prompt_eval_count"], 12);
  EXPECT_GT(done["total_duration"].get<int64_t>(), 0);
  EXPECT_GT(done["eval_duration"].get<int64_t>(), 0);
  EXPECT_FALSE(done.contains("load_duration"));  // zero values are left out

  EXPECT_EQ(fake.chat_requests(), 1);
  EXPECT_EQ(fake.last_chat_body(), chat_body("llama3.2:latest"));
  ASSERT_EQ(fake.requests().size(), 1u);
  EXPECT_EQ(fake.requests()[0].path, "/api/chat");
  EXPECT_EQ(fake.requests()[0].body["options"]["temperature"], 0.2);
  EXPECT_EQ(fake.client_aborts(), 0);
}

TEST(FakeOllamaTest, AnswersWithOneObjectWhenNotStreaming) {
  FakeOllama fake;
  httplib::Client client("127.0.0.1", fake.port());
  auto res = client.Post("/api/chat", chat_body("llama3.2", false).dump(), "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  const json reply = json::parse(res->body);
  EXPECT_EQ(reply["message"]["content"], "Hello, world.");
  EXPECT_EQ(reply["done"], true);
  EXPECT_EQ(reply["eval_count"], 4);
}

TEST(FakeOllamaTest, MissingModelIs404) {
  FakeOllama fake;
  httplib::Client client("127.0.0.1", fake.port());
  auto res = client.Post("/api/chat", chat_body("mistral").dump(), "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
  EXPECT_EQ(json::parse(res->body)["error"], "model \"mistral\" not found, try pulling it first");
  EXPECT_EQ(fake.chat_requests(), 1);

  res = client.Post("/api/chat", "{not json", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
  EXPECT_TRUE(json::parse(res->body).contains("error"));
  EXPECT_TRUE(fake.last_chat_body().is_null());
}

TEST(FakeOllamaTest, HttpErrorsBeforeAnyToken) {
  FakeOllama fake;
  httplib::Client client("127.0.0.1", fake.port());
  FakeScript script;
  script.fault = FakeFault::http_503;
  fake.set_script(script);
  auto res = client.Post("/api/chat", chat_body().dump(), "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 503);
  EXPECT_NE(json::parse(res->body)["error"].get<std::string>().find("server busy"),
            std::string::npos);

  script.fault = FakeFault::http_500;
  fake.set_script(script);
  res = client.Post("/api/chat", chat_body().dump(), "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 500);
  EXPECT_TRUE(json::parse(res->body).contains("error"));
}

TEST(FakeOllamaTest, ErrorMidStreamIsALineWithoutDoneAfterIt) {
  FakeOllama fake;
  FakeScript script;
  script.fault = FakeFault::error_mid_stream;
  script.fault_after_tokens = 2;
  fake.set_script(script);
  StreamedChat chat;
  chat.run(fake.port(), chat_body());
  ASSERT_TRUE(chat.result);  // the HTTP exchange itself ends cleanly
  EXPECT_EQ(chat.result->status, 200);
  const auto lines = parse_ndjson(chat.body);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(contents({lines[0], lines[1]}), "Hello, ");
  EXPECT_TRUE(lines[2].contains("error"));
  EXPECT_FALSE(lines[2].contains("done"));
}

TEST(FakeOllamaTest, DropMidStreamIsAnErrorForTheClient) {
  FakeOllama fake;
  FakeScript script;
  script.fault = FakeFault::drop_mid_stream;
  script.fault_after_tokens = 1;
  fake.set_script(script);
  StreamedChat chat;
  chat.run(fake.port(), chat_body());
  EXPECT_FALSE(chat.result);
  EXPECT_EQ(chat.body.find("\"done\":true"), std::string::npos);
  EXPECT_EQ(parse_ndjson(chat.body).size(), 1u);
}

TEST(FakeOllamaTest, SplitWritesCutLinesAndUtf8ButKeepTheBytes) {
  FakeOllama fake;
  FakeScript script;
  script.tokens = {"Grüße", " aus", " 日本", " — ok"};
  script.split_writes_at = 3;
  fake.set_script(script);
  StreamedChat chat;
  chat.run(fake.port(), chat_body());
  ASSERT_TRUE(chat.result);
  const auto lines = parse_ndjson(chat.body);
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_EQ(contents(lines), "Grüße aus 日本 — ok");
  EXPECT_EQ(lines.back()["done"], true);
  EXPECT_GT(chat.pieces.size(), lines.size());
  for (const auto& piece : chat.pieces)
    EXPECT_LE(piece.size(), 3u);
}

TEST(FakeOllamaTest, FirstTokenDelayHoldsBackTheHeaders) {
  FakeOllama fake;
  FakeScript script;
  script.first_token_delay = milliseconds(300);
  fake.set_script(script);
  StreamedChat chat;
  const auto start = std::chrono::steady_clock::now();
  chat.run(fake.port(), chat_body());
  ASSERT_TRUE(chat.result);
  EXPECT_GE(chat.headers_at - start, milliseconds(300));
  EXPECT_GE(parse_ndjson(chat.body).back()["load_duration"].get<int64_t>(), 300'000'000);
}

TEST(FakeOllamaTest, HangBeforeHeadersEndsOnRelease) {
  FakeOllama fake;
  FakeScript script;
  script.fault = FakeFault::hang_before_headers;
  fake.set_script(script);
  StreamedChat chat;
  std::thread client([&] { chat.run(fake.port(), chat_body()); });
  EXPECT_TRUE(fake.wait_for_chat_requests(1, kWait));
  EXPECT_EQ(fake.active_chats(), 1);
  std::this_thread::sleep_for(milliseconds(100));
  EXPECT_FALSE(chat.headers);
  fake.release();
  client.join();
  ASSERT_TRUE(chat.result) << httplib::to_string(chat.result.error());
  EXPECT_EQ(contents(parse_ndjson(chat.body)), "Hello, world.");
  EXPECT_EQ(fake.client_aborts(), 0);
}

TEST(FakeOllamaTest, StallAfterTokensContinuesOnRelease) {
  FakeOllama fake;
  FakeScript script;
  script.fault = FakeFault::stall_after_tokens;
  script.fault_after_tokens = 2;
  fake.set_script(script);
  StreamedChat chat;
  std::thread client([&] { chat.run(fake.port(), chat_body()); });
  EXPECT_TRUE(chat.wait_for_lines(2));
  std::this_thread::sleep_for(milliseconds(100));
  {
    std::lock_guard lock(chat.mutex);
    EXPECT_EQ(std::count(chat.body.begin(), chat.body.end(), '\n'), 2);
  }
  fake.release();
  client.join();
  ASSERT_TRUE(chat.result);
  const auto lines = parse_ndjson(chat.body);
  EXPECT_EQ(contents(lines), "Hello, world.");
  EXPECT_EQ(lines.back()["done"], true);
}

TEST(FakeOllamaTest, CountsAClientThatHangsUpMidStream) {
  FakeOllama fake;
  FakeScript script;
  script.fault = FakeFault::stall_after_tokens;
  script.fault_after_tokens = 1;
  fake.set_script(script);
  StreamedChat chat;
  // The client stops after the first line, closing the connection.
  chat.run(fake.port(), chat_body(), 10'000,
           [](const std::string& body) { return body.find('\n') == std::string::npos; });
  EXPECT_FALSE(chat.result);
  EXPECT_TRUE(fake.wait_for_client_abort(kWait));
  EXPECT_EQ(fake.client_aborts(), 1);
}

TEST(FakeOllamaTest, CountsAClientThatGivesUpBeforeTheHeaders) {
  FakeOllama fake;
  FakeScript script;
  script.fault = FakeFault::hang_before_headers;
  fake.set_script(script);
  StreamedChat chat;
  chat.run(fake.port(), chat_body(), 200);  // a first-token timeout of 200 ms
  EXPECT_FALSE(chat.result);
  EXPECT_TRUE(fake.wait_for_client_abort(kWait));
  EXPECT_EQ(fake.client_aborts(), 1);
}

TEST(FakeOllamaTest, CountsConcurrentRequestsOnArrival) {
  FakeOllama fake;
  FakeScript script;
  script.fault = FakeFault::hang_before_headers;
  fake.set_script(script);
  constexpr int kClients = 8;
  std::vector<StreamedChat> chats(kClients);
  std::vector<std::thread> clients;
  for (auto& chat : chats)
    clients.emplace_back([&] { chat.run(fake.port(), chat_body()); });
  EXPECT_TRUE(fake.wait_for_chat_requests(kClients, kWait));
  EXPECT_EQ(fake.chat_requests(), kClients);
  EXPECT_EQ(fake.active_chats(), kClients);
  EXPECT_FALSE(fake.wait_for_chat_requests(kClients + 1, milliseconds(50)));
  fake.release();
  for (auto& c : clients)
    c.join();
  for (auto& chat : chats) {
    ASSERT_TRUE(chat.result);
    EXPECT_EQ(contents(parse_ndjson(chat.body)), "Hello, world.");
  }
  EXPECT_EQ(fake.active_chats(), 0);
}

TEST(FakeOllamaTest, DestructionEndsHangingRequests) {
  StreamedChat chat;
  std::thread client;
  {
    FakeOllama fake;
    FakeScript script;
    script.fault = FakeFault::hang_before_headers;
    fake.set_script(script);
    client = std::thread([&chat, port = fake.port()] { chat.run(port, chat_body()); });
    EXPECT_TRUE(fake.wait_for_chat_requests(1, kWait));
  }
  client.join();
  EXPECT_TRUE(!chat.result || chat.result->status != 200);
}

TEST(FakeOllamaTest, TokenDelaySpacesTheLines) {
  FakeOllama fake;
  FakeScript script;
  script.token_delay = milliseconds(40);
  fake.set_script(script);
  const auto start = std::chrono::steady_clock::now();
  StreamedChat chat;
  chat.run(fake.port(), chat_body());
  ASSERT_TRUE(chat.result);
  // Four tokens and the done line: four gaps.
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(160));
  EXPECT_EQ(parse_ndjson(chat.body).size(), 5u);
}

}  // namespace
}  // namespace ticketaid::testing
