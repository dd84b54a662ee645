// The ticket REST API end to end (SPEC §3 "Ticket sessions", §5): the real daemon, a
// real HTTP client, the real SQLite file and the fake Ollama. Replies that a test must
// catch in the middle are held by the fake (stall, release), so every interleaving a
// test claims is one it has waited for.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <ctime>
#include <future>
#include <mutex>
#include <regex>
#include <string>
#include <vector>

#include "integration/daemon_fixture.h"
#include "integration/rest_client.h"

namespace ticketaid::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

FakeScript answering(std::vector<std::string> tokens) {
  FakeScript script;
  script.tokens = std::move(tokens);
  return script;
}

// A reply held by the fake after its first two tokens until release().
FakeScript stalled_after_two() {
  FakeScript script;
  script.fault = FakeFault::stall_after_tokens;
  script.fault_after_tokens = 2;
  return script;
}

FakeScript failing_with(FakeFault fault) {
  FakeScript script;
  script.fault = fault;
  script.fault_after_tokens = 2;
  return script;
}

std::string session_path(const std::string& ticket) {
  return "/api/tickets/" + ticket + "/ai-session";
}

std::string revisions_path(const std::string& ticket) {
  return session_path(ticket) + "/revisions";
}

json ask(const std::string& body) {
  return {{"ticketBody", body}};
}

// The wall clock as the daemon writes it (ISO 8601, UTC, milliseconds), so that
// timestamps compare as strings.
std::string iso_now() {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buf[40];
  std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(ms % 1000));
  return buf;
}

std::vector<std::string> ticket_ids(const json& items) {
  std::vector<std::string> ids;
  for (const auto& item : items)
    ids.push_back(item.value("ticketId", ""));
  return ids;
}

std::vector<json> of_type(const std::vector<json>& frames, const std::string& type) {
  std::vector<json> out;
  for (const auto& f : frames) {
    if (f.value("type", "") == type) out.push_back(f);
  }
  return out;
}

std::string joined(const std::vector<json>& frames) {
  std::string text;
  for (const auto& f : of_type(frames, "stream"))
    text += f.value("content", "");
  return text;
}

// Sends an NDJSON POST on a plain socket and reads until `lines` NDJSON lines have
// arrived; then shuts down its sending side. The daemon reads end-of-file, takes the
// client as gone and closes the connection, which this waits for: when it returns "",
// the daemon has seen the client leave. Otherwise it returns what went wrong.
std::string post_then_hang_up(int port, const std::string& path, const std::string& body,
                              int lines) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "socket() failed";
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    return "connect() failed";
  }
  const std::string request = "POST " + path +
                              " HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/x-ndjson\r\n"
                              "Content-Type: application/json\r\nContent-Length: " +
                              std::to_string(body.size()) + "\r\n\r\n" + body;
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    return "send() failed";
  }
  // Reads until done() holds; false on timeout. Sets eof when the daemon closed.
  std::string received;
  bool eof = false;
  auto read_until = [&](auto done) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!done()) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd p{fd, POLLIN, 0};
      if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
      char buf[4096];
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) {
        eof = true;
        return done();
      }
      received.append(buf, static_cast<std::size_t>(n));
    }
    return true;
  };
  // An NDJSON line ends in "}\n"; the chunked framing's line ends are "\r\n".
  auto ndjson_lines = [&] {
    int count = 0;
    for (std::size_t i = 1; i < received.size(); ++i) {
      if (received[i] == '\n' && received[i - 1] != '\r') ++count;
    }
    return count;
  };
  if (!read_until([&] { return ndjson_lines() >= lines; })) {
    return "fewer than " + std::to_string(lines) + " lines arrived: " + received;
  }
  ::shutdown(fd, SHUT_WR);
  if (!read_until([&] { return eof; })) return "the daemon kept the connection open";
  return "";
}

class TicketRest : public DaemonTest {
 protected:
  int port() const { return daemon_->port(); }

  HttpResult get(const std::string& path) { return http_get(port(), path); }

  // POSTs a ticket body in the waiting mode and expects the finished session.
  json answer_by_post(const std::string& ticket, const std::string& body) {
    auto res = http_post(port(), session_path(ticket), ask(body));
    EXPECT_EQ(res.status, 200) << res.describe();
    EXPECT_EQ(res.json.value("status", ""), "complete") << res.describe();
    return res.json;
  }

  // Asks over the WebSocket, as a browser does, and expects done.
  std::vector<json> answer_by_websocket(const std::string& ticket, const std::string& body) {
    auto client = open_ticket(ticket);
    client->send_json(ask(body));
    auto frames = read_reply(*client);
    EXPECT_FALSE(frames.empty());
    if (!frames.empty()) {
      EXPECT_EQ(frames.back()["type"], "done") << frames.back().dump();
    }
    return frames;
  }

  // Polls GET .../ai-session until the session has `status`; returns the last session.
  json wait_for_session(const std::string& ticket, const std::string& status) {
    HttpResult last;
    bool reached = wait_until([&] {
      last = get(session_path(ticket));
      return last.status == 200 && last.json.value("status", "") == status;
    });
    EXPECT_TRUE(reached) << "ticket " << ticket << " never became " << status << ": "
                         << last.describe() << "\ndaemon stderr:\n"
                         << daemon_->stderr_text();
    return last.json;
  }

  // Waits until the wall clock has passed `iso`, so that the next write gets a later
  // updatedAt (the list orders by it, at millisecond resolution).
  void wait_past(const std::string& iso) {
    ASSERT_TRUE(wait_until([&] { return iso_now() > iso; }));
  }

  void expect_error(const HttpResult& res, int status, const std::string& code) {
    EXPECT_EQ(res.status, status) << res.describe();
    EXPECT_EQ(res.error_code(), code) << res.describe();
    ASSERT_TRUE(res.json.is_object()) << res.describe();
    EXPECT_FALSE(res.json["error"].value("message", "").empty()) << res.describe();
    EXPECT_NE(res.header("Content-Type").find("application/json"), std::string::npos);
  }

  // A complete session of SPEC §3, answered by the fake's default script.
  void expect_complete_session(const json& s, const std::string& ticket, const std::string& body) {
    static const std::regex iso(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)");
    ASSERT_TRUE(s.is_object()) << s.dump();
    EXPECT_EQ(s.value("ticketId", ""), ticket) << s.dump();
    EXPECT_EQ(s.value("prompt", ""), body) << s.dump();
    EXPECT_EQ(s.value("response", ""), "Hello, world.") << s.dump();
    EXPECT_EQ(s.value("status", ""), "complete") << s.dump();
    EXPECT_EQ(s.value("model", ""), "llama3.2") << s.dump();
    EXPECT_TRUE(std::regex_match(s.value("createdAt", ""), iso)) << s.dump();
    EXPECT_TRUE(std::regex_match(s.value("updatedAt", ""), iso)) << s.dump();
    EXPECT_LE(s.value("createdAt", ""), s.value("updatedAt", "")) << s.dump();
    EXPECT_EQ(s.value("promptTokens", -1), 12) << s.dump();
    EXPECT_EQ(s.value("responseTokens", -1), 4) << s.dump();
    ASSERT_TRUE(s.contains("durationMs") && s["durationMs"].is_number_integer()) << s.dump();
    EXPECT_GE(s["durationMs"].get<int64_t>(), 0);
    EXPECT_EQ(s.value("revisionCount", -1), 0) << s.dump();
  }
};

// --- GET /api/tickets/{id}/ai-session -----------------------------------------------

TEST_F(TicketRest, SessionIsNotFoundBeforeAnyAnswer) {
  start_daemon();
  expect_error(get(session_path("T-404")), 404, "not_found");
  expect_error(get(session_path(std::string(128, 'a'))), 404, "not_found");
}

TEST_F(TicketRest, BadTicketIdsAreBadRequestsOnEveryEndpoint) {
  start_daemon();
  // "bad%20id" arrives as "bad id"; 129 characters is one too many; "%zz" is no encoding.
  for (const std::string& id :
       {std::string("bad%20id"), std::string(129, 'a'), std::string("x%2Fy"), std::string("%zz")}) {
    SCOPED_TRACE(id);
    expect_error(get(session_path(id)), 400, "bad_request");
    expect_error(get(revisions_path(id)), 400, "bad_request");
    expect_error(http_post(port(), session_path(id), ask("Printer jams")), 400, "bad_request");
    expect_error(http_call(port(), "DELETE", session_path(id)), 400, "bad_request");
  }
  if (using_fake()) {
    EXPECT_EQ(fake_.chat_requests(), 0);
  }
}

TEST_F(TicketRest, SessionAfterAWebSocketAnswerHasEveryField) {
  REQUIRE_FAKE_OLLAMA();
  start_daemon();
  answer_by_websocket("WS-1", "Monitor stays black after docking");
  auto res = get(session_path("WS-1"));
  ASSERT_EQ(res.status, 200) << res.describe();
  EXPECT_NE(res.header("Content-Type").find("application/json"), std::string::npos);
  expect_complete_session(res.json, "WS-1", "Monitor stays black after docking");
}

// --- POST /api/tickets/{id}/ai-session ----------------------------------------------

TEST_F(TicketRest, PostWaitsAndAnswersWithTheFinishedSessionThenServesTheCache) {
  REQUIRE_FAKE_OLLAMA();
  start_daemon();
  auto posted = http_post(port(), session_path("P-1"), ask("Teams has no sound"));
  ASSERT_EQ(posted.status, 200) << posted.describe();
  expect_complete_session(posted.json, "P-1", "Teams has no sound");
  EXPECT_EQ(fake_.chat_requests(), 1);
  EXPECT_EQ(fake_.last_chat_body()["messages"].back()["content"], "Teams has no sound");

  auto read_back = get(session_path("P-1"));
  ASSERT_EQ(read_back.status, 200) << read_back.describe();
  EXPECT_EQ(read_back.json, posted.json) << "the POST answers with the stored session";

  // The same body again is answered from the store, and Ollama is not asked.
  auto again = http_post(port(), session_path("P-1"), ask("Teams has no sound"));
  ASSERT_EQ(again.status, 200) << again.describe();
  EXPECT_EQ(again.json, posted.json);
  EXPECT_EQ(fake_.chat_requests(), 1);
  // "regenerate": false is the default, said out loud.
  auto explicit_false = http_post(port(), session_path("P-1"),
                                  {{"ticketBody", "Teams has no sound"}, {"regenerate", false}});
  EXPECT_EQ(explicit_false.status, 200) << explicit_false.describe();
  EXPECT_EQ(fake_.chat_requests(), 1);
}

TEST_F(TicketRest, RegenerateAsksAgainAndKeepsTheOldAnswerAsARevision) {
  REQUIRE_FAKE_OLLAMA();
  start_daemon();
  answer_by_post("P-2", "Laptop fan is loud");
  fake_.set_script(answering({"Clean ", "the ", "vents."}));
  auto res = http_post(port(), session_path("P-2"),
                       {{"ticketBody", "Laptop fan is loud"}, {"regenerate", true}});
  ASSERT_EQ(res.status, 200) << res.describe();
  EXPECT_EQ(fake_.chat_requests(), 2);
  EXPECT_EQ(res.json.value("response", ""), "Clean the vents.");
  EXPECT_EQ(res.json.value("prompt", ""), "Laptop fan is loud");
  EXPECT_EQ(res.json.value("revisionCount", -1), 1);

  auto revisions = get(revisions_path("P-2"));
  ASSERT_EQ(revisions.status, 200) << revisions.describe();
  EXPECT_EQ(revisions.json.value("total", -1), 1);
  ASSERT_EQ(revisions.json["items"].size(), 1u);
  EXPECT_EQ(revisions.json["items"][0].value("prompt", ""), "Laptop fan is loud");
  EXPECT_EQ(revisions.json["items"][0].value("response", ""), "Hello, world.");
}

TEST_F(TicketRest, NdjsonPostStreamsTheSameObjectsAsTheWebSocket) {
  REQUIRE_FAKE_OLLAMA();
  start_daemon();
  auto streamed = post_ndjson(port(), session_path("N-1"), ask("Scanner sends no e-mail").dump());
  ASSERT_EQ(streamed.http.status, 200) << streamed.http.describe();
  EXPECT_EQ(streamed.http.header("Content-Type"), "application/x-ndjson");
  EXPECT_TRUE(streamed.bad_lines.empty()) << streamed.http.body;
  ASSERT_EQ(streamed.lines.size(), 5u) << streamed.http.body;
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(streamed.lines[i].value("type", ""), "stream") << streamed.lines[i].dump();
    EXPECT_EQ(streamed.lines[i].value("seq", -1), i) << streamed.lines[i].dump();
  }
  EXPECT_EQ(joined(streamed.lines), "Hello, world.");
  const auto& done = streamed.lines.back();
  EXPECT_EQ(done.value("type", ""), "done");
  EXPECT_EQ(done.value("model", ""), "llama3.2");
  EXPECT_EQ(done.value("promptTokens", -1), 12);
  EXPECT_EQ(done.value("responseTokens", -1), 4);
  EXPECT_EQ(done.value("doneReason", ""), "stop");
  EXPECT_TRUE(done.contains("durationMs"));

  // The WebSocket's frames for the same script are the same objects (durations apart).
  auto frames = answer_by_websocket("N-2", "Scanner sends no e-mail");
  ASSERT_EQ(frames.size(), streamed.lines.size());
  for (std::size_t i = 0; i < frames.size(); ++i) {
    auto a = frames[i], b = streamed.lines[i];
    a.erase("durationMs");
    b.erase("durationMs");
    EXPECT_EQ(a, b) << "line " << i;
  }

  // A cached answer streams as cached then done, again like the WebSocket.
  auto cached = post_ndjson(port(), session_path("N-1"), ask("Scanner sends no e-mail").dump());
  ASSERT_EQ(cached.http.status, 200) << cached.http.describe();
  ASSERT_EQ(cached.lines.size(), 2u) << cached.http.body;
  EXPECT_EQ(cached.lines[0].value("type", ""), "cached");
  EXPECT_EQ(cached.lines[0].value("response", ""), "Hello, world.");
  EXPECT_TRUE(cached.lines[0].value("message", "").starts_with("cached answer from 20"));
  EXPECT_EQ(cached.lines[0].value("model", ""), "llama3.2");
  EXPECT_TRUE(cached.lines[0].contains("createdAt"));
  EXPECT_EQ(cached.lines[1].value("type", ""), "done");
  auto socket_cached = answer_by_websocket("N-1", "Scanner sends no e-mail");
  ASSERT_EQ(socket_cached.size(), 2u);
  EXPECT_EQ(socket_cached[0], cached.lines[0]);
  EXPECT_EQ(socket_cached[1], cached.lines[1]);
  EXPECT_EQ(fake_.chat_requests(), 2);
}

TEST_F(TicketRest, WaitFalseAnswers202AtOnceAndTheAnswerAppearsLater) {
  REQUIRE_FAKE_OLLAMA();
  fake_.set_script(stalled_after_two());
  start_daemon();
  // The fake holds the reply, so an answer that came back did not wait for it.
  auto res = http_post(port(), session_path("W-1") + "?wait=false", ask("New hire needs a badge"));
  ASSERT_EQ(res.status, 202) << res.describe();
  EXPECT_EQ(res.json, json({{"ticketId", "W-1"}, {"status", "generating"}}));

  ASSERT_TRUE(fake_.wait_for_chat_requests(1, 10s));
  auto during = get(session_path("W-1"));
  ASSERT_EQ(during.status, 200) << during.describe();
  EXPECT_EQ(during.json.value("status", ""), "generating");
  EXPECT_EQ(during.json.value("response", "?"), "");

  fake_.release();
  auto done = wait_for_session("W-1", "complete");
  expect_complete_session(done, "W-1", "New hire needs a badge");
  EXPECT_EQ(fake_.chat_requests(), 1);
}

TEST_F(TicketRest, PostsJoinTheWebSocketsGenerationInFlight) {
  REQUIRE_FAKE_OLLAMA();
  fake_.set_script(stalled_after_two());
  start_daemon();
  auto browser = open_ticket("J-1");
  browser->send_json(ask("Wi-Fi asks for a certificate"));
  ASSERT_TRUE(browser->read_until_type("stream", 10s));
  ASSERT_TRUE(fake_.wait_for_chat_requests(1, 10s));

  // An NDJSON POST joins: it receives the two chunks already cut, then waits.
  std::mutex mutex;
  std::vector<json> seen;
  auto streaming = std::async(std::launch::async, [&] {
    return post_ndjson(port(), session_path("J-1"), ask("Wi-Fi asks for a certificate").dump(),
                       [&](const json& line) {
                         std::lock_guard lock(mutex);
                         seen.push_back(line);
                         return true;
                       });
  });
  ASSERT_TRUE(wait_until([&] {
    std::lock_guard lock(mutex);
    return seen.size() >= 2;
  })) << "the POST did not join";
  // A waiting POST joins too (each joiner counts as a miss: one generation, three misses).
  auto waiting = std::async(std::launch::async, [&] {
    return http_post(port(), session_path("J-1"), ask("Wi-Fi asks for a certificate"));
  });
  ASSERT_TRUE(wait_until([&] {
    auto status = get("/ws/status");
    return status.json.is_object() && status.json["stats"].value("cache_misses", 0) == 3;
  })) << "the waiting POST did not join";
  EXPECT_EQ(fake_.chat_requests(), 1);

  fake_.release();
  auto socket_rest = read_reply(*browser);
  ASSERT_EQ(socket_rest.back()["type"], "done") << socket_rest.back().dump();
  auto streamed = streaming.get();
  ASSERT_EQ(streamed.http.status, 200) << streamed.http.describe();
  ASSERT_EQ(streamed.lines.size(), 5u) << streamed.http.body;
  EXPECT_TRUE(of_type(streamed.lines, "cached").empty()) << "joined, not served from the cache";
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(streamed.lines[i].value("seq", -1), i) << streamed.lines[i].dump();
  EXPECT_EQ(joined(streamed.lines), "Hello, world.");
  EXPECT_EQ(streamed.lines.back().value("type", ""), "done");
  auto waited = waiting.get();
  ASSERT_EQ(waited.status, 200) << waited.describe();
  EXPECT_EQ(waited.json.value("response", ""), "Hello, world.");
  EXPECT_EQ(fake_.chat_requests(), 1);
}

TEST_F(TicketRest, MalformedPostBodiesAreBadRequests) {
  start_daemon();
  const std::vector<std::string> bad = {"not json",
                                        "[1,2]",
                                        "\"ticketBody\"",
                                        "{}",
                                        R"({"ticketBody": ""})",
                                        R"({"ticketBody": 5})",
                                        R"({"ticketBody": null})",
                                        R"({"ticketBody": ["x"]})",
                                        R"({"body": "Printer jams"})",
                                        R"({"ticketBody": "Printer jams", "regenerate": "yes"})",
                                        R"({"ticketBody": "Printer jams", "regenerate": 1})"};
  for (const auto& body : bad) {
    SCOPED_TRACE(body);
    expect_error(http_call(port(), "POST", session_path("B-1"), body), 400, "bad_request");
    // Asking for a stream changes nothing: the error comes before any stream.
    auto streamed = post_ndjson(port(), session_path("B-1"), body);
    expect_error(streamed.http, 400, "bad_request");
  }
  expect_error(http_call(port(), "POST", session_path("B-1")), 400, "bad_request");  // no body
  expect_error(get(session_path("B-1")), 404, "not_found");
  if (using_fake()) {
    EXPECT_EQ(fake_.chat_requests(), 0);
  }
}

TEST_F(TicketRest, BodyOverTheLimitIsTooLarge) {
  start_daemon({}, {{"TICKETAID_SERVER_MAX_BODY_BYTES", "1024"}});
  auto res = http_post(port(), session_path("L-1"), ask(std::string(4096, 'x')));
  expect_error(res, 413, "too_large");
  expect_error(get(session_path("L-1")), 404, "not_found");
  if (using_fake()) {
    EXPECT_EQ(fake_.chat_requests(), 0);
    EXPECT_EQ(http_post(port(), session_path("L-1"), ask(std::string(900, 'x'))).status, 200);
  }
}

TEST_F(TicketRest, HeadersOverTheLimitAre431) {
  start_daemon({}, {{"TICKETAID_SERVER_MAX_HEADER_BYTES", "1024"}});
  auto res = http_call(port(), "GET", "/api/tickets", "", {{"X-Padding", std::string(4096, 'p')}});
  EXPECT_EQ(res.status, 431) << res.describe();
  EXPECT_EQ(get("/api/tickets").status, 200);
}

TEST_F(TicketRest, OllamaFailuresAre502InWaitModeAndAnErrorLineInNdjsonMode) {
  REQUIRE_FAKE_OLLAMA();
  fake_.set_script(failing_with(FakeFault::http_500));
  start_daemon();
  expect_error(http_post(port(), session_path("O-1"), ask("Mail server down")), 502,
               "ollama_unavailable");
  auto failed = get(session_path("O-1"));
  ASSERT_EQ(failed.status, 200) << failed.describe();
  EXPECT_EQ(failed.json.value("status", ""), "failed");
  EXPECT_FALSE(failed.json.value("failureReason", "").empty()) << failed.describe();
  EXPECT_EQ(failed.json.value("response", "?"), "");

  auto streamed = post_ndjson(port(), session_path("O-2"), ask("Mail server down").dump());
  ASSERT_EQ(streamed.http.status, 200) << streamed.http.describe();
  ASSERT_EQ(streamed.lines.size(), 1u) << streamed.http.body;
  EXPECT_EQ(streamed.lines[0].value("type", ""), "error");
  EXPECT_EQ(streamed.lines[0].value("code", ""), "ollama_unavailable");
  EXPECT_FALSE(streamed.lines[0].value("message", "").empty());

  // An error after the stream started ends the stream with the error line.
  fake_.set_script(failing_with(FakeFault::error_mid_stream));
  auto broken = post_ndjson(port(), session_path("O-3"), ask("Mail server down").dump());
  ASSERT_EQ(broken.http.status, 200) << broken.http.describe();
  ASSERT_EQ(broken.lines.size(), 3u) << broken.http.body;
  EXPECT_EQ(of_type(broken.lines, "stream").size(), 2u);
  EXPECT_EQ(broken.lines.back().value("type", ""), "error");
  EXPECT_EQ(broken.lines.back().value("code", ""), "ollama_unavailable");

  // The next request tries again.
  fake_.set_script(FakeScript{});
  auto retried = http_post(port(), session_path("O-1"), ask("Mail server down"));
  ASSERT_EQ(retried.status, 200) << retried.describe();
  expect_complete_session(retried.json, "O-1", "Mail server down");
  EXPECT_EQ(fake_.chat_requests(), 4);
}

TEST_F(TicketRest, AMissingModelIs502ModelNotFound) {
  REQUIRE_FAKE_OLLAMA();
  fake_.set_models({"mistral"});
  start_daemon();
  auto res = http_post(port(), session_path("M-1"), ask("Excel crashes on open"));
  expect_error(res, 502, "model_not_found");
  EXPECT_NE(res.json["error"].value("message", "").find("llama3.2"), std::string::npos)
      << res.describe();
}

// --- GET /api/tickets/{id}/ai-session/revisions -------------------------------------

TEST_F(TicketRest, RevisionsListEarlierAnswersNewestFirstWithPaging) {
  REQUIRE_FAKE_OLLAMA();
  start_daemon();
  fake_.set_script(answering({"First."}));
  answer_by_post("R-1", "VPN drops every hour");
  auto empty = get(revisions_path("R-1"));
  ASSERT_EQ(empty.status, 200) << empty.describe();
  EXPECT_EQ(empty.json,
            json({{"items", json::array()}, {"total", 0}, {"limit", 50}, {"offset", 0}}));

  // A changed body regenerates; the old answer becomes an earlier revision.
  fake_.set_script(answering({"Second."}));
  auto second = answer_by_post("R-1", "VPN drops every ten minutes");
  EXPECT_EQ(second.value("response", ""), "Second.");
  EXPECT_EQ(second.value("revisionCount", -1), 1);
  auto one = get(revisions_path("R-1"));
  ASSERT_EQ(one.status, 200) << one.describe();
  EXPECT_EQ(one.json.value("total", -1), 1);
  ASSERT_EQ(one.json["items"].size(), 1u);
  EXPECT_EQ(one.json["items"][0].value("prompt", ""), "VPN drops every hour");
  EXPECT_EQ(one.json["items"][0].value("response", ""), "First.");
  EXPECT_EQ(one.json["items"][0].value("status", ""), "complete");
  EXPECT_EQ(one.json["items"][0].value("ticketId", ""), "R-1");

  fake_.set_script(answering({"Third."}));
  auto third = answer_by_post("R-1", "VPN drops every minute");
  EXPECT_EQ(third.value("revisionCount", -1), 2);
  auto all = get(revisions_path("R-1"));
  ASSERT_EQ(all.status, 200) << all.describe();
  EXPECT_EQ(all.json.value("total", -1), 2);
  ASSERT_EQ(all.json["items"].size(), 2u);
  EXPECT_EQ(all.json["items"][0].value("response", ""), "Second.");
  EXPECT_EQ(all.json["items"][1].value("response", ""), "First.");

  auto page = get(revisions_path("R-1") + "?limit=1&offset=1");
  ASSERT_EQ(page.status, 200) << page.describe();
  EXPECT_EQ(page.json.value("total", -1), 2);
  EXPECT_EQ(page.json.value("limit", -1), 1);
  EXPECT_EQ(page.json.value("offset", -1), 1);
  ASSERT_EQ(page.json["items"].size(), 1u);
  EXPECT_EQ(page.json["items"][0].value("prompt", ""), "VPN drops every hour");
  auto first_page = get(revisions_path("R-1") + "?limit=1");
  ASSERT_EQ(first_page.json["items"].size(), 1u) << first_page.describe();
  EXPECT_EQ(first_page.json["items"][0].value("response", ""), "Second.");
  auto past_the_end = get(revisions_path("R-1") + "?offset=2&limit=500");
  ASSERT_EQ(past_the_end.status, 200) << past_the_end.describe();
  EXPECT_EQ(past_the_end.json["items"], json::array());
  EXPECT_EQ(past_the_end.json.value("total", -1), 2);
}

TEST_F(TicketRest, RevisionsOfAnUnknownTicketAndBadPagesAreRefused) {
  REQUIRE_FAKE_OLLAMA();
  start_daemon();
  expect_error(get(revisions_path("R-404")), 404, "not_found");
  answer_by_post("R-2", "Keyboard types wrong letters");
  for (const char* query : {"limit=0", "limit=501", "limit=abc", "limit=", "limit=1.5", "offset=-1",
                            "offset=x", "limit=10&offset=-5"}) {
    expect_error(get(revisions_path("R-2") + "?" + query), 400, "bad_request");
  }
  EXPECT_EQ(get(revisions_path("R-2") + "?limit=500&offset=0").status, 200);
}

// --- GET /api/tickets ---------------------------------------------------------------

TEST_F(TicketRest, TicketListIsNewestFirstWithPagingAndAStatusFilter) {
  REQUIRE_FAKE_OLLAMA();
  start_daemon();
  auto none = get("/api/tickets");
  ASSERT_EQ(none.status, 200) << none.describe();
  EXPECT_EQ(none.json,
            json({{"items", json::array()}, {"total", 0}, {"limit", 50}, {"offset", 0}}));

  // Created in the order A, B, C (complete), then D (failed); each one later than the
  // one before, in names whose alphabetical order is the opposite of newest first.
  std::string last;
  for (const std::string ticket : {"L-a", "L-b", "L-c"}) {
    if (!last.empty()) wait_past(last);
    last = answer_by_post(ticket, "Body of " + ticket).value("updatedAt", "");
  }
  wait_past(last);
  fake_.set_script(failing_with(FakeFault::http_500));
  EXPECT_EQ(http_post(port(), session_path("L-d"), ask("Body of L-d")).status, 502);

  auto all = get("/api/tickets");
  ASSERT_EQ(all.status, 200) << all.describe();
  EXPECT_EQ(all.json.value("total", -1), 4);
  EXPECT_EQ(all.json.value("limit", -1), 50);
  EXPECT_EQ(all.json.value("offset", -1), 0);
  EXPECT_EQ(ticket_ids(all.json["items"]), (std::vector<std::string>{"L-d", "L-c", "L-b", "L-a"}));
  EXPECT_EQ(all.json["items"][1].value("response", ""), "Hello, world.");
  EXPECT_EQ(all.json["items"][1].value("prompt", ""), "Body of L-c");

  auto page = get("/api/tickets?limit=2&offset=1");
  ASSERT_EQ(page.status, 200) << page.describe();
  EXPECT_EQ(page.json.value("total", -1), 4);
  EXPECT_EQ(page.json.value("limit", -1), 2);
  EXPECT_EQ(page.json.value("offset", -1), 1);
  EXPECT_EQ(ticket_ids(page.json["items"]), (std::vector<std::string>{"L-c", "L-b"}));

  auto complete = get("/api/tickets?status=complete");
  ASSERT_EQ(complete.status, 200) << complete.describe();
  EXPECT_EQ(complete.json.value("total", -1), 3);
  EXPECT_EQ(ticket_ids(complete.json["items"]), (std::vector<std::string>{"L-c", "L-b", "L-a"}));
  auto failed = get("/api/tickets?status=failed");
  ASSERT_EQ(failed.status, 200) << failed.describe();
  EXPECT_EQ(failed.json.value("total", -1), 1);
  EXPECT_EQ(ticket_ids(failed.json["items"]), (std::vector<std::string>{"L-d"}));
  auto complete_page = get("/api/tickets?status=complete&limit=1&offset=2");
  EXPECT_EQ(complete_page.json.value("total", -1), 3) << complete_page.describe();
  EXPECT_EQ(ticket_ids(complete_page.json["items"]), (std::vector<std::string>{"L-a"}));
  auto generating = get("/api/tickets?status=generating");
  EXPECT_EQ(generating.json.value("total", -1), 0) << generating.describe();
}

TEST_F(TicketRest, TicketListRefusesABadStatusOrPage) {
  start_daemon();
  for (const char* query :
       {"status=bogus", "status=COMPLETE", "limit=0", "limit=501", "limit=abc", "offset=-1"}) {
    expect_error(get(std::string("/api/tickets?") + query), 400, "bad_request");
  }
}

// --- DELETE /api/tickets/{id}/ai-session --------------------------------------------

TEST_F(TicketRest, DeleteRemovesTheSessionAndTheNextOpenRegenerates) {
  REQUIRE_FAKE_OLLAMA();
  start_daemon();
  answer_by_websocket("D-1", "Password expired");
  fake_.set_script(answering({"Second."}));
  answer_by_post("D-1", "Password expired again");  // and an earlier revision
  EXPECT_EQ(fake_.chat_requests(), 2);

  auto deleted = http_call(port(), "DELETE", session_path("D-1"));
  EXPECT_EQ(deleted.status, 204) << deleted.describe();
  EXPECT_TRUE(deleted.body.empty());
  expect_error(get(session_path("D-1")), 404, "not_found");
  expect_error(get(revisions_path("D-1")), 404, "not_found");
  expect_error(http_call(port(), "DELETE", session_path("D-1")), 404, "not_found");
  EXPECT_EQ(get("/api/tickets").json.value("total", -1), 0);

  fake_.set_script(FakeScript{});
  auto frames = answer_by_websocket("D-1", "Password expired again");
  ASSERT_FALSE(frames.empty());
  EXPECT_EQ(frames.front()["type"], "stream") << "regenerated, not cached";
  EXPECT_EQ(fake_.chat_requests(), 3);
  auto fresh = get(session_path("D-1"));
  ASSERT_EQ(fresh.status, 200) << fresh.describe();
  expect_complete_session(fresh.json, "D-1", "Password expired again");
}

// --- Routing ------------------------------------------------------------------------

TEST_F(TicketRest, WrongMethodsAre405WithAllowAndUnknownPaths404) {
  start_daemon();
  struct Case {
    std::string method, path, allow;
  };
  for (const auto& c : std::vector<Case>{
           {"PUT", "/api/tickets", "GET"},
           {"POST", "/api/tickets", "GET"},
           {"PUT", session_path("X-1"), "GET, POST, DELETE"},
           {"PATCH", session_path("X-1"), "GET, POST, DELETE"},
           {"POST", revisions_path("X-1"), "GET"},
           {"DELETE", "/health", "GET"},
       }) {
    SCOPED_TRACE(c.method + " " + c.path);
    auto res = http_call(port(), c.method, c.path, c.method == "GET" ? "" : "{}");
    EXPECT_EQ(res.status, 405) << res.describe();
    EXPECT_EQ(res.header("Allow"), c.allow);
    EXPECT_FALSE(res.error_code().empty()) << res.describe();
  }
  for (const std::string path : {"/api/nothing", "/api/tickets/X-1", "/api/tickets/X-1/other",
                                 "/api/tickets/X-1/ai-session/revisions/1"}) {
    expect_error(get(path), 404, "not_found");
  }
}

// --- Clients that leave -------------------------------------------------------------

TEST_F(TicketRest, ADroppedNdjsonClientLeavesTheGenerationRunningAndTheAnswerIsCached) {
  REQUIRE_FAKE_OLLAMA();
  fake_.set_script(stalled_after_two());
  start_daemon();
  // Two chunks arrive; the client hangs up, and the daemon has seen it when this returns.
  EXPECT_EQ(post_then_hang_up(port(), session_path("X-2"), ask("Docking station dead").dump(), 2),
            "");
  fake_.release();
  auto done = wait_for_session("X-2", "complete");
  expect_complete_session(done, "X-2", "Docking station dead");
  EXPECT_EQ(fake_.client_aborts(), 0);
  EXPECT_EQ(fake_.chat_requests(), 1);

  auto cached = post_ndjson(port(), session_path("X-2"), ask("Docking station dead").dump());
  ASSERT_FALSE(cached.lines.empty()) << cached.http.describe();
  EXPECT_EQ(cached.lines[0].value("type", ""), "cached");
  EXPECT_EQ(fake_.chat_requests(), 1);
}

TEST_F(TicketRest, ADroppedNdjsonClientCancelsTheGenerationWhenConfigured) {
  REQUIRE_FAKE_OLLAMA();
  fake_.set_script(stalled_after_two());
  start_daemon({}, {{"TICKETAID_STREAM_CANCEL_ON_DISCONNECT", "true"}});
  auto dropped = post_ndjson(port(), session_path("X-3"), ask("Docking station dead").dump(),
                             [](const json& line) { return line.value("type", "") != "stream"; });
  ASSERT_EQ(dropped.lines.size(), 1u) << dropped.http.body;
  EXPECT_EQ(dropped.lines[0].value("type", ""), "stream");
  EXPECT_TRUE(fake_.wait_for_client_abort(10s)) << "the Ollama request was not aborted";
  auto cancelled = wait_for_session("X-3", "cancelled");
  EXPECT_EQ(cancelled.value("response", "?"), "") << "nothing is cached";

  fake_.set_script(FakeScript{});
  auto retried = http_post(port(), session_path("X-3"), ask("Docking station dead"));
  ASSERT_EQ(retried.status, 200) << retried.describe();
  expect_complete_session(retried.json, "X-3", "Docking station dead");
  EXPECT_EQ(fake_.chat_requests(), 2);
}

}  // namespace
}  // namespace ticketaid::testing
