// ChatService: the context sent to the model, trimming, idempotent and concurrent
// resends, one reply at a time per conversation, expiry, limits and failures. A real
// SQLite store in a temporary directory, a scripted model (tests/support/fake_llm.h)
// that holds replies until the test releases them, and a manual clock, so that every
// interleaving a test claims is one it waited for, and nothing sleeps.
#include "core/chat_service.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <cstdio>
#include <deque>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/daemon_process.h"
#include "support/fake_llm.h"
#include "support/manual_clock.h"

namespace ticketaid {
namespace {

using nlohmann::json;
using testing::ManualClock;
using testing::ScriptedLlm;
using namespace std::chrono_literals;

constexpr auto kWait = 10s;

// Records the frames of one reply; tests wait for the final one.
class RecordingSink final : public ReplySink {
 public:
  void deliver(const Frame& frame, bool final) override {
    std::lock_guard lock(mutex_);
    frames_.push_back(json::parse(*frame));
    if (final) ++finals_;
    changed_.notify_all();
  }
  bool wait_final(std::chrono::milliseconds timeout = kWait) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return finals_ > 0; });
  }
  bool wait_frames(std::size_t n, std::chrono::milliseconds timeout = kWait) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return frames_.size() >= n; });
  }
  std::vector<json> frames() const {
    std::lock_guard lock(mutex_);
    return frames_;
  }
  int finals() const {
    std::lock_guard lock(mutex_);
    return finals_;
  }
  json last() const {
    std::lock_guard lock(mutex_);
    return frames_.empty() ? json() : frames_.back();
  }
  std::string last_type() const { return last().value("type", ""); }
  std::string error_code() const { return last().value("code", ""); }
  // The reply's text: the stream chunks joined, or a stored reply sent whole.
  std::string text() const {
    std::string out;
    for (const auto& f : frames()) {
      if (f.value("type", "") == "stream") out += f.value("content", "");
      if (f.value("type", "") == "cached") out += f.value("response", "");
    }
    return out;
  }
  std::vector<std::string> types() const {
    std::vector<std::string> out;
    for (const auto& f : frames())
      out.push_back(f.value("type", ""));
    return out;
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<json> frames_;
  int finals_ = 0;
};

// The blocking executor: a few threads running posted tasks in order of arrival.
class TaskPool {
 public:
  explicit TaskPool(int threads) {
    for (int i = 0; i < threads; ++i)
      threads_.emplace_back([this] { work(); });
  }
  ~TaskPool() { stop(); }

  void post(std::function<void()> task) {
    std::lock_guard lock(mutex_);
    if (stopping_) return;  // tear-down: nobody waits for it any more
    tasks_.push_back(std::move(task));
    wake_.notify_one();
  }
  // Runs what was posted, then joins the threads.
  void stop() {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
      stopping_ = true;
      wake_.notify_all();
    }
    for (auto& t : threads_)
      t.join();
  }

 private:
  void work() {
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [&] { return stopping_ || !tasks_.empty(); });
        if (tasks_.empty()) return;
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      task();
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

std::vector<std::pair<std::string, std::string>> roles_and_contents(const ChatRequest& request) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& m : request.messages)
    out.emplace_back(m.role, m.content);
  return out;
}

using Turns = std::vector<std::pair<std::string, std::string>>;

std::string hex(const std::string& bytes) {
  std::string out = "bytes:";
  char buf[4];
  for (unsigned char c : bytes) {
    std::snprintf(buf, sizeof buf, " %02x", c);
    out += buf;
  }
  return out;
}

class ChatServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Settings settings;
    settings.ollama_model = "test-model";
    settings.ollama_system_prompt = "SYS";
    settings.generation_max_tokens = 77;
    settings_ = std::make_shared<const Settings>(settings);

    auto opened = open_sqlite_store({(dir_.path() / "chat.db").string()});
    ASSERT_TRUE(opened.is_ok()) << opened.status().to_string();
    store_ = std::move(opened).value();
    queue_ = std::make_unique<GenerationQueue>(2, 16);
    pool_ = std::make_unique<TaskPool>(4);
    chats_ = std::make_unique<ChatService>(
        *store_, llm_, *queue_, clock_,
        [this] {
          std::lock_guard lock(settings_mutex_);
          return settings_;
        },
        [this](std::function<void()> task) { pool_->post(std::move(task)); });
  }

  void TearDown() override {
    llm_.stop_holding();
    if (chats_) chats_->shutdown();
    if (queue_) queue_->stop();
    if (pool_) pool_->stop();
    chats_.reset();
    store_.reset();
  }

  void configure(const std::function<void(Settings&)>& change) {
    std::lock_guard lock(settings_mutex_);
    Settings copy = *settings_;
    change(copy);
    settings_ = std::make_shared<const Settings>(copy);
  }
  // Checks the condition every millisecond until it holds or the timeout passes:
  // for state that announces no event.
  template <class Condition>
  static bool wait_until(Condition condition, std::chrono::milliseconds timeout = kWait) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!condition()) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::sleep_for(1ms);
    }
    return true;
  }

  Settings settings() {
    std::lock_guard lock(settings_mutex_);
    return *settings_;
  }

  std::string new_session(const std::string& user = "ana") {
    auto created = chats_->create_session(user, "a title", "");
    EXPECT_TRUE(created.is_ok()) << created.status().to_string();
    return created.is_ok() ? created->id : "";
  }

  std::shared_ptr<RecordingSink> send(ChatMessageRequest request, MessageStored on_stored = {}) {
    auto sink = std::make_shared<RecordingSink>();
    chats_->send(std::move(request), sink, std::move(on_stored));
    return sink;
  }
  std::shared_ptr<RecordingSink> send(const std::string& conversation, const std::string& content,
                                      const std::string& message_id = "",
                                      MessageStored on_stored = {}) {
    ChatMessageRequest request;
    request.conversation_id = conversation;
    request.content = content;
    request.message_id = message_id;
    return send(std::move(request), std::move(on_stored));
  }
  // Sends and waits for the reply's final frame.
  std::shared_ptr<RecordingSink> ask(const std::string& conversation, const std::string& content,
                                     const std::string& message_id = "") {
    auto sink = send(conversation, content, message_id);
    EXPECT_TRUE(sink->wait_final()) << "no final frame for \"" << content << "\"";
    return sink;
  }
  std::shared_ptr<RecordingSink> ask_ticket(const std::string& ticket, const std::string& content) {
    ChatMessageRequest request;
    request.ticket_id = ticket;
    request.content = content;
    auto sink = send(std::move(request));
    EXPECT_TRUE(sink->wait_final()) << "no final frame for \"" << content << "\"";
    return sink;
  }

  std::vector<StoredMessage> history(const std::string& conversation) {
    auto page = store_->list_messages(conversation, 500, 0);
    EXPECT_TRUE(page.is_ok()) << page.status().to_string();
    return page.is_ok() ? page->items : std::vector<StoredMessage>{};
  }

  void append(const std::string& conversation, const std::string& role,
              const std::string& content) {
    auto appended = chats_->append(conversation, role, content, "");
    ASSERT_TRUE(appended.is_ok()) << appended.status().to_string();
  }

  // A ticket whose answer is stored: its conversation is body, answer.
  void answered_ticket(const std::string& ticket, const std::string& body,
                       const std::string& answer) {
    auto begun = store_->begin_ticket_generation(ticket, body, "test-model");
    ASSERT_TRUE(begun.is_ok()) << begun.status().to_string();
    GenerationStats stats;
    stats.model = "test-model";
    ASSERT_TRUE(store_->complete_ticket_generation(ticket, begun->revision, answer, stats).is_ok());
  }

  testing::TempDir dir_;
  ManualClock clock_;
  ScriptedLlm llm_;
  std::mutex settings_mutex_;
  std::shared_ptr<const Settings> settings_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<GenerationQueue> queue_;
  std::unique_ptr<TaskPool> pool_;
  std::unique_ptr<ChatService> chats_;
};

TEST_F(ChatServiceTest, ContextIsTheSystemPromptThenTheConversationInOrder) {
  const auto id = new_session();
  auto first = ask(id, "How do I reset my VPN token?");
  EXPECT_EQ(first->last_type(), "done") << first->last().dump();
  EXPECT_EQ(first->text(), "re: How do I reset my VPN token?");
  EXPECT_EQ(first->types(), (std::vector<std::string>{"stream", "stream", "done"}));

  auto second = ask(id, "And on a phone?");
  EXPECT_EQ(second->last_type(), "done") << second->last().dump();
  EXPECT_EQ(second->text(), "re: And on a phone?");
  EXPECT_EQ(second->last()["model"], "test-model");
  EXPECT_EQ(second->last()["responseTokens"], 2);

  auto requests = llm_.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(roles_and_contents(requests[0]),
            (Turns{{"system", "SYS"}, {"user", "How do I reset my VPN token?"}}));
  EXPECT_EQ(roles_and_contents(requests[1]),
            (Turns{{"system", "SYS"},
                   {"user", "How do I reset my VPN token?"},
                   {"assistant", "re: How do I reset my VPN token?"},
                   {"user", "And on a phone?"}}));
  EXPECT_EQ(requests[1].model, "test-model");
  EXPECT_EQ(requests[1].options.value("num_predict", 0), 77);

  auto stored = history(id);
  ASSERT_EQ(stored.size(), 4u);
  EXPECT_EQ(stored[1].role, "assistant");
  EXPECT_EQ(stored[1].reply_to, stored[0].id);
  EXPECT_EQ(stored[1].stats.model, "test-model");
  EXPECT_EQ(stored[3].reply_to, stored[2].id);
  EXPECT_EQ(stored[3].content, "re: And on a phone?");
}

TEST_F(ChatServiceTest, RequestedModelWinsOverTheSessions) {
  const auto id = new_session();
  ChatMessageRequest request;
  request.conversation_id = id;
  request.content = "hi";
  request.model = "other-model";
  auto sink = send(request);
  ASSERT_TRUE(sink->wait_final());
  EXPECT_EQ(sink->last_type(), "done") << sink->last().dump();
  ASSERT_EQ(llm_.calls(), 1u);
  EXPECT_EQ(llm_.requests()[0].model, "other-model");
}

TEST_F(ChatServiceTest, ContextIsTrimmedToContextMessagesStartingAtAUserMessage) {
  const auto id = new_session();
  for (int i = 1; i <= 3; ++i) {
    append(id, "user", "u" + std::to_string(i));
    append(id, "assistant", "a" + std::to_string(i));
  }
  // Seven messages up to u4; the last four start with a2, an assistant's: left out.
  configure([](Settings& s) { s.sessions_context_messages = 4; });
  EXPECT_EQ(ask(id, "u4")->last_type(), "done");
  // Nine up to u5; the last five start with a user message: all five go.
  configure([](Settings& s) { s.sessions_context_messages = 5; });
  EXPECT_EQ(ask(id, "u5")->last_type(), "done");

  auto requests = llm_.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(roles_and_contents(requests[0]),
            (Turns{{"system", "SYS"}, {"user", "u3"}, {"assistant", "a3"}, {"user", "u4"}}));
  EXPECT_EQ(roles_and_contents(requests[1]), (Turns{{"system", "SYS"},
                                                    {"user", "u3"},
                                                    {"assistant", "a3"},
                                                    {"user", "u4"},
                                                    {"assistant", "re: u4"},
                                                    {"user", "u5"}}));
}

TEST_F(ChatServiceTest, ATicketConversationKeepsItsBodyFirstWhenTrimmed) {
  answered_ticket("T-1", "Printer prints blank pages", "Replace the toner.");
  configure([](Settings& s) { s.sessions_context_messages = 3; });
  EXPECT_EQ(ask_ticket("T-1", "q1")->last_type(), "done");
  EXPECT_EQ(ask_ticket("T-1", "q2")->last_type(), "done");
  EXPECT_EQ(ask_ticket("T-1", "q3")->last_type(), "done");

  auto requests = llm_.requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(roles_and_contents(requests[0]), (Turns{{"system", "SYS"},
                                                    {"user", "Printer prints blank pages"},
                                                    {"assistant", "Replace the toner."},
                                                    {"user", "q1"}}));
  EXPECT_EQ(roles_and_contents(requests[1]), (Turns{{"system", "SYS"},
                                                    {"user", "Printer prints blank pages"},
                                                    {"user", "q1"},
                                                    {"assistant", "re: q1"},
                                                    {"user", "q2"}}));
  EXPECT_EQ(roles_and_contents(requests[2]), (Turns{{"system", "SYS"},
                                                    {"user", "Printer prints blank pages"},
                                                    {"user", "q2"},
                                                    {"assistant", "re: q2"},
                                                    {"user", "q3"}}));
  auto ticket = store_->find_ticket_session("T-1");
  ASSERT_TRUE(ticket.is_ok() && ticket.value());
  EXPECT_EQ(history(ticket.value()->conversation_id).size(), 8u);
}

TEST_F(ChatServiceTest, AFollowUpBeforeTheTicketsAnswerIsABadRequest) {
  EXPECT_EQ(ask_ticket("T-none", "anyone?")->error_code(), "bad_request");
  ASSERT_TRUE(store_->begin_ticket_generation("T-2", "body", "test-model").is_ok());
  auto early = ask_ticket("T-2", "still generating?");
  EXPECT_EQ(early->error_code(), "bad_request") << early->last().dump();
  EXPECT_EQ(llm_.calls(), 0u);
}

TEST_F(ChatServiceTest, AResendWithTheSameMessageIdReturnsTheStoredReply) {
  const auto id = new_session();
  auto first = ask(id, "Outlook keeps asking for a password", "m-1");
  ASSERT_EQ(first->last_type(), "done") << first->last().dump();

  std::promise<Result<StoredMessage>> stored;
  auto again = send(id, "Outlook keeps asking for a password", "m-1",
                    [&](const Result<StoredMessage>& m) { stored.set_value(m); });
  ASSERT_TRUE(again->wait_final());
  EXPECT_EQ(again->types(), (std::vector<std::string>{"cached", "done"}));
  EXPECT_EQ(again->text(), first->text());
  EXPECT_EQ(again->last().value("cached", false), true);
  EXPECT_EQ(llm_.calls(), 1u) << "a resend does not ask the model again";

  auto messages = history(id);
  ASSERT_EQ(messages.size(), 2u);
  auto resent = stored.get_future().get();
  ASSERT_TRUE(resent.is_ok());
  EXPECT_EQ(resent->id, messages[0].id) << "the resend names the stored message";
  EXPECT_EQ(again->frames()[0].value("messageId", ""), messages[1].id);

  // Even with other text: the messageId names the message.
  auto changed = ask(id, "something else", "m-1");
  EXPECT_EQ(changed->text(), first->text());
  EXPECT_EQ(history(id).size(), 2u);
  EXPECT_EQ(llm_.calls(), 1u);
}

TEST_F(ChatServiceTest, AResendWhileTheReplyGeneratesJoinsIt) {
  const auto id = new_session();
  llm_.script({{"part one, ", "part two"}, true});
  auto first = send(id, "Laptop will not boot", "m-1");
  ASSERT_TRUE(llm_.wait_for_held(1, kWait));

  auto second = send(id, "Laptop will not boot", "m-1");
  // The joiner is sent the chunks already cut, then waits with the first.
  ASSERT_TRUE(second->wait_frames(2));
  EXPECT_EQ(second->types(), (std::vector<std::string>{"stream", "stream"}));
  llm_.release();

  ASSERT_TRUE(first->wait_final());
  ASSERT_TRUE(second->wait_final());
  EXPECT_EQ(first->last_type(), "done") << first->last().dump();
  EXPECT_EQ(second->last_type(), "done") << second->last().dump();
  EXPECT_EQ(second->frames()[0].value("seq", -1), 0);
  EXPECT_EQ(first->text(), "part one, part two");
  EXPECT_EQ(second->text(), "part one, part two");
  EXPECT_EQ(llm_.calls(), 1u);
  EXPECT_EQ(history(id).size(), 2u);
}

TEST_F(ChatServiceTest, ConcurrentSendsOfOneMessageIdMakeOneCall) {
  const auto id = new_session();
  constexpr int kRounds = 20;
  for (int round = 0; round < kRounds; ++round) {
    const std::string message_id = "m-" + std::to_string(round);
    const std::string content = "question " + std::to_string(round);
    std::shared_ptr<RecordingSink> a, b;
    std::thread other([&] { b = send(id, content, message_id); });
    a = send(id, content, message_id);
    other.join();
    ASSERT_TRUE(a->wait_final());
    ASSERT_TRUE(b->wait_final());
    EXPECT_EQ(a->last_type(), "done") << a->last().dump();
    EXPECT_EQ(b->last_type(), "done") << b->last().dump();
    EXPECT_EQ(a->text(), "re: " + content);
    EXPECT_EQ(b->text(), "re: " + content);
    EXPECT_EQ(a->finals(), 1);
    EXPECT_EQ(b->finals(), 1);
  }
  EXPECT_EQ(llm_.calls(), static_cast<std::size_t>(kRounds));
  EXPECT_EQ(history(id).size(), static_cast<std::size_t>(2 * kRounds));
}

TEST_F(ChatServiceTest, AMessageSentWhileAReplyGeneratesIsAnsweredAfterIt) {
  const auto id = new_session();
  llm_.script({{"first answer"}, true});
  auto first = send(id, "first question");
  ASSERT_TRUE(llm_.wait_for_held(1, kWait));

  std::promise<void> second_stored;
  auto second = send(id, "second question", "",
                     [&](const Result<StoredMessage>&) { second_stored.set_value(); });
  ASSERT_EQ(second_stored.get_future().wait_for(kWait), std::future_status::ready);
  EXPECT_EQ(llm_.calls(), 1u) << "the second reply waits for the first";
  EXPECT_EQ(second->frames().size(), 0u);

  llm_.release();
  ASSERT_TRUE(first->wait_final());
  ASSERT_TRUE(second->wait_final());
  EXPECT_EQ(first->text(), "first answer");
  EXPECT_EQ(second->text(), "re: second question");
  EXPECT_EQ(second->last_type(), "done") << second->last().dump();

  auto requests = llm_.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(roles_and_contents(requests[0]),
            (Turns{{"system", "SYS"}, {"user", "first question"}}));
  EXPECT_EQ(roles_and_contents(requests[1]), (Turns{{"system", "SYS"},
                                                    {"user", "first question"},
                                                    {"assistant", "first answer"},
                                                    {"user", "second question"}}));
  // Every message is answered once, and each reply names the message it answers.
  auto messages = history(id);
  ASSERT_EQ(messages.size(), 4u);
  std::map<std::string, std::string> reply_of;
  for (const auto& m : messages) {
    if (m.role == "assistant") reply_of[m.reply_to] = m.content;
  }
  EXPECT_EQ(reply_of[messages[0].id], "first answer");
  EXPECT_EQ(reply_of[messages[1].id], "re: second question");
}

TEST_F(ChatServiceTest, ASessionExpiresTtlAfterItsLastActivityAndIsPurged) {
  configure([](Settings& s) { s.sessions_ttl_s = 60; });
  const auto id = new_session();
  ASSERT_EQ(ask(id, "hello")->last_type(), "done");
  answered_ticket("T-3", "Mouse lag", "Change the batteries.");
  auto session = chats_->find_session(id);
  ASSERT_TRUE(session.is_ok());
  EXPECT_EQ(chats_->expires_at_ms(*session, settings()), session->last_activity_ms + 60'000);

  // The manual clock stands at the real time the store stamped, or a little before.
  clock_.set_unix_ms(session->last_activity_ms + 60'000 - 1);
  EXPECT_TRUE(chats_->find_session(id).is_ok()) << "one millisecond before the end";
  chats_->purge_expired();
  EXPECT_TRUE(chats_->find_session(id).is_ok()) << "not purged before it expired";

  clock_.advance(1ms);
  EXPECT_EQ(chats_->find_session(id).status().code(), ErrorCode::not_found);
  EXPECT_EQ(ask(id, "still there?")->error_code(), "not_found");
  EXPECT_EQ(chats_->append(id, "user", "still there?", "").status().code(), ErrorCode::not_found);
  auto row = store_->find_conversation(id);
  ASSERT_TRUE(row.is_ok());
  EXPECT_TRUE(row.value().has_value()) << "expired, but not yet purged";

  chats_->purge_expired();
  row = store_->find_conversation(id);
  ASSERT_TRUE(row.is_ok());
  EXPECT_FALSE(row.value().has_value()) << "purged";
  EXPECT_EQ(store_->list_messages(id, 10, 0).status().code(), ErrorCode::not_found);

  // A ticket's conversation does not expire.
  EXPECT_EQ(ask_ticket("T-3", "and then?")->last_type(), "done");
  EXPECT_EQ(llm_.calls(), 2u);
}

TEST_F(ChatServiceTest, MessageLengthCountsUnicodeCharactersNotBytes) {
  configure([](Settings& s) { s.sessions_max_message_chars = 4; });
  const auto id = new_session();
  const Settings now = settings();
  EXPECT_TRUE(chats_->check_content("\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9", now).is_ok());  // éééé
  EXPECT_TRUE(chats_
                  ->check_content("\xF0\x9F\x99\x82\xF0\x9F\x99\x82\xF0\x9F\x99\x82"
                                  "\xF0\x9F\x99\x82",
                                  now)
                  .is_ok());  // 4 emoji, 16 bytes
  EXPECT_TRUE(chats_->check_content("abcd", now).is_ok());
  EXPECT_EQ(chats_->check_content("abcde", now).code(), ErrorCode::too_large);

  auto fits = ask(id, "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9");
  EXPECT_EQ(fits->last_type(), "done") << fits->last().dump();
  auto too_long = ask(id, "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9");
  EXPECT_EQ(too_long->error_code(), "too_large") << too_long->last().dump();
  EXPECT_EQ(chats_->append(id, "user", "abcde", "").status().code(), ErrorCode::too_large);
  EXPECT_EQ(history(id).size(), 2u);
  EXPECT_EQ(llm_.calls(), 1u);
}

TEST_F(ChatServiceTest, TextThatIsNotUtf8OrEmptyIsABadRequest) {
  const auto id = new_session();
  for (const std::string& bad : {std::string("\xFF"), std::string("abc\xC3"),
                                 std::string("\xED\xA0\x80"),  // a UTF-16 surrogate
                                 std::string("\xC0\xAF"),      // an overlong '/'
                                 std::string("")}) {
    auto sink = ask(id, bad);
    EXPECT_EQ(sink->error_code(), "bad_request") << hex(bad) << ": " << sink->last().dump();
    EXPECT_EQ(chats_->append(id, "user", bad, "").status().code(), ErrorCode::bad_request);
  }
  EXPECT_TRUE(history(id).empty());
  EXPECT_EQ(llm_.calls(), 0u);
}

TEST_F(ChatServiceTest, AFullSessionRefusesNewMessagesAndKeepsWhatItHas) {
  configure([](Settings& s) { s.sessions_max_messages = 4; });
  const auto id = new_session();
  ASSERT_EQ(ask(id, "one", "m-1")->last_type(), "done");
  ASSERT_EQ(ask(id, "two", "m-2")->last_type(), "done");
  auto full = ask(id, "three", "m-3");
  EXPECT_EQ(full->error_code(), "session_full") << full->last().dump();
  EXPECT_EQ(chats_->append(id, "system", "note", "").status().code(), ErrorCode::session_full);

  // A resend of a stored message is still answered.
  auto resent = ask(id, "two", "m-2");
  EXPECT_EQ(resent->types(), (std::vector<std::string>{"cached", "done"}));
  EXPECT_EQ(resent->text(), "re: two");

  auto messages = history(id);
  ASSERT_EQ(messages.size(), 4u);
  EXPECT_EQ(messages[0].content, "one");
  EXPECT_EQ(messages[3].content, "re: two");
  EXPECT_EQ(llm_.calls(), 2u);
}

TEST_F(ChatServiceTest, AFailedReplyStoresNothingAndTheSameMessageIdRetries) {
  const auto id = new_session();
  llm_.script({{"half an"}, false, Status::error(ErrorCode::ollama_unavailable, "Ollama fell")});
  auto failed = ask(id, "Printer offline", "m-1");
  EXPECT_EQ(failed->types(), (std::vector<std::string>{"stream", "error"}));
  EXPECT_EQ(failed->error_code(), "ollama_unavailable");
  auto messages = history(id);
  ASSERT_EQ(messages.size(), 1u) << "the question stays, no reply";
  auto reply = store_->find_reply(id, messages[0].id);
  ASSERT_TRUE(reply.is_ok());
  EXPECT_FALSE(reply.value().has_value());

  auto retried = ask(id, "Printer offline", "m-1");
  EXPECT_EQ(retried->last_type(), "done") << retried->last().dump();
  EXPECT_EQ(retried->text(), "re: Printer offline");
  messages = history(id);
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_EQ(messages[1].reply_to, messages[0].id);
  auto requests = llm_.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(roles_and_contents(requests[1]),
            (Turns{{"system", "SYS"}, {"user", "Printer offline"}}))
      << "the question is sent once";
}

TEST_F(ChatServiceTest, ACancelledReplyStoresNothingAndAResendRegenerates) {
  const auto id = new_session();
  llm_.script({{"partial"}, true});
  auto first = send(id, "Wi-Fi drops", "m-1");
  ASSERT_TRUE(first->wait_frames(1));
  first->detach(true);
  // The connection answers its own cancel; the engine stops the generation.
  ASSERT_TRUE(wait_until([&] { return chats_->active_generations() == 0; }));
  EXPECT_EQ(first->finals(), 0) << "a detached listener is sent nothing more";
  auto messages = history(id);
  ASSERT_EQ(messages.size(), 1u) << "the question stays, no reply";

  auto again = ask(id, "Wi-Fi drops", "m-1");
  EXPECT_EQ(again->last_type(), "done") << again->last().dump();
  EXPECT_EQ(again->text(), "re: Wi-Fi drops");
  EXPECT_EQ(llm_.calls(), 2u);
  EXPECT_EQ(history(id).size(), 2u);
}

TEST_F(ChatServiceTest, UnknownConversationIsNotFound) {
  EXPECT_EQ(ask("0123456789abcdef0123456789abcdef", "hello?")->error_code(), "not_found");
  EXPECT_EQ(chats_->find_session("nope").status().code(), ErrorCode::not_found);
  EXPECT_EQ(llm_.calls(), 0u);
}

}  // namespace
}  // namespace ticketaid
