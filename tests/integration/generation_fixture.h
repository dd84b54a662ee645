// What the integration tests of the generation engine share: scripts that hold a
// reply at a known point, frame helpers, and the GenerationEngine fixture (the real
// daemon against the fake Ollama, with the store opened beside it where a test looks
// at what was stored).
//
// Thread-safety: as DaemonTest, one test thread.
#pragma once

#include <httplib.h>

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "integration/daemon_fixture.h"
#include "store/store.h"

namespace ticketaid::testing {

using nlohmann::json;
using namespace std::chrono_literals;

// A reply held by the fake after its first two tokens until release().
inline FakeScript stalled_after_two(std::vector<std::string> tokens = {"Hello", ", ", "world",
                                                                       "."}) {
  FakeScript script;
  script.tokens = std::move(tokens);
  script.fault = FakeFault::stall_after_tokens;
  script.fault_after_tokens = 2;
  return script;
}

inline FakeScript answering(std::vector<std::string> tokens) {
  FakeScript script;
  script.tokens = std::move(tokens);
  return script;
}

// The first / last frame of a reply; null when there is none, so that a missing reply
// fails a comparison rather than the test program.
inline json first(const std::vector<json>& frames) {
  return frames.empty() ? json() : frames.front();
}
inline json last(const std::vector<json>& frames) {
  return frames.empty() ? json() : frames.back();
}

inline std::vector<json> of_type(const std::vector<json>& frames, const std::string& type) {
  std::vector<json> out;
  for (const auto& f : frames) {
    if (f.value("type", "") == type) out.push_back(f);
  }
  return out;
}

// The stream frames are numbered 0, 1, 2, ... with nothing missing or repeated.
inline void expect_contiguous_seq(const std::vector<json>& streams) {
  for (std::size_t i = 0; i < streams.size(); ++i) {
    EXPECT_EQ(streams[i].value("seq", int64_t{-1}), static_cast<int64_t>(i)) << streams[i].dump();
  }
}

// The ticket body the daemon sent to Ollama in one /api/chat request.
inline std::string asked_body(const ReceivedRequest& request) {
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

}  // namespace ticketaid::testing
