// The limits of SPEC §4 seen from outside, each at its edge: connections in total and
// per user, message size, heartbeat, a client that stops reading, the rate limit over
// WebSocket and HTTP (one bucket for both), request size and slowloris, the Origin
// policy and X-Forwarded-For from trusted proxies. Small limits are set through the
// environment so that every expectation is exact: N allowed, then refused.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <string>
#include <vector>

#include "integration/daemon_fixture.h"
#include "integration/rest_client.h"
#include "support/raw_socket.h"

namespace ticketaid::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

// How much the daemon's resident memory may grow while a client that never reads
// floods it. The sanitizers' allocators keep freed memory aside (ASan's quarantine) and
// add shadow memory, so their builds get room for that; the plain build holds the
// real bound.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr long kFloodRssBoundKib = 512 * 1024;
#else
constexpr long kFloodRssBoundKib = 32 * 1024;
#endif

class Limits : public DaemonTest {
 protected:
  WsHandshakeResult connect(WsClient& client, const std::string& target,
                            const std::map<std::string, std::string>& headers = {}) {
    return client.connect(daemon_->port(), target, headers);
  }

  // Resident memory of the daemon in KiB (VmRSS).
  long daemon_rss_kib() {
    std::ifstream status("/proc/" + std::to_string(daemon_->pid()) + "/status");
    std::string line;
    while (std::getline(status, line)) {
      if (line.starts_with("VmRSS:")) return std::stol(line.substr(6));
    }
    return -1;
  }

  json ask(WsClient& client, const std::string& body) {
    EXPECT_TRUE(client.send_json({{"ticketBody", body}}));
    auto frames = read_reply(client);
    return frames.empty() ? json() : frames.back();
  }
};

TEST_F(Limits, TotalConnectionsOverTheLimitGet503BeforeTheUpgrade) {
  start_daemon({}, {{"TICKETAID_LIMITS_MAX_CONNECTIONS", "2"}});
  WsClient a, b, c;
  ASSERT_TRUE(connect(a, "/api/websocket/chat/T-1").upgraded);
  ASSERT_TRUE(connect(b, "/api/websocket/chat/T-2").upgraded);
  auto refused = connect(c, "/api/websocket/chat/T-3");
  EXPECT_FALSE(refused.upgraded);
  EXPECT_EQ(refused.http_status, 503);
  EXPECT_NE(refused.body.find("busy"), std::string::npos) << refused.body;
  // A freed place can be taken again once the daemon has seen the close.
  a.close();
  EXPECT_TRUE(wait_until([&] {
    WsClient d;
    return connect(d, "/api/websocket/chat/T-4").upgraded;
  }));
}

TEST_F(Limits, WebsocketMaxConnectionsLegacyVariableSetsTheLimit) {
  start_daemon({}, {{"WEBSOCKET_MAX_CONNECTIONS", "1"}});
  WsClient a, b;
  ASSERT_TRUE(connect(a, "/api/websocket/chat/T-1").upgraded);
  EXPECT_EQ(connect(b, "/api/websocket/chat/T-2").http_status, 503);
}

TEST_F(Limits, ConnectionsPerUserOverTheLimitAreClosedWith4008) {
  start_daemon({}, {{"TICKETAID_LIMITS_MAX_CONNECTIONS_PER_USER", "2"}});
  WsClient a, b, c;
  ASSERT_TRUE(connect(a, "/api/websocket/chat/T-1").upgraded);
  ASSERT_TRUE(connect(b, "/api/websocket/chat/T-1").upgraded);
  ASSERT_TRUE(connect(c, "/api/websocket/chat/T-1").upgraded);  // then closed
  EXPECT_FALSE(c.read_json(5s));
  EXPECT_EQ(c.close_code(), 4008);
  // The two admitted sockets still work.
  EXPECT_TRUE(a.send_json({{"type", "ping"}}));
  EXPECT_EQ(a.read_json()->value("type", ""), "pong");
}

TEST_F(Limits, AMessageOfExactlyTheLimitIsReadAndOneByteMoreCloses1009) {
  start_daemon({}, {{"TICKETAID_WS_MAX_MESSAGE_BYTES", "1024"}});
  WsClient client;
  ASSERT_TRUE(connect(client, "/api/websocket/chat/T-1").upgraded);
  const std::string prefix = R"({"type":"ping","pad":")";
  std::string at_limit = prefix + std::string(1024 - prefix.size() - 2, 'x') + "\"}";
  ASSERT_EQ(at_limit.size(), 1024u);
  ASSERT_TRUE(client.send_text(at_limit));
  auto pong = client.read_json();
  ASSERT_TRUE(pong);
  EXPECT_EQ(pong->value("type", ""), "pong");
  std::string over = prefix + std::string(1025 - prefix.size() - 2, 'x') + "\"}";
  ASSERT_TRUE(client.send_text(over));
  EXPECT_FALSE(client.read_json(5s));
  EXPECT_EQ(client.close_code(), 1009);
}

TEST_F(Limits, APeerThatNeverAnswersPingsIsClosedWithinTwoIntervals) {
  start_daemon({}, {{"TICKETAID_WS_HEARTBEAT_INTERVAL_S", "1"}});
  RawSocket peer;
  ASSERT_TRUE(peer.connect(daemon_->port()));
  ASSERT_EQ(peer.websocket_upgrade("/api/websocket/chat/T-1"), 101);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(peer.wait_closed(5s));  // two intervals, and some slack for a loaded machine
  EXPECT_GE(std::chrono::steady_clock::now() - start, 1s);  // not before the first ping
}

TEST_F(Limits, APeerThatAnswersPingsStaysOpen) {
  start_daemon({}, {{"TICKETAID_WS_HEARTBEAT_INTERVAL_S", "1"}});
  WsClient client;  // Beast answers pings while it reads
  ASSERT_TRUE(connect(client, "/api/websocket/chat/T-1").upgraded);
  EXPECT_FALSE(client.read_json(3500ms));  // nothing to read, but pings answered
  EXPECT_TRUE(client.is_open()) << client.error();
}

TEST_F(Limits, AClientThatStopsReadingIsClosedAndTheDaemonsMemoryStaysFlat) {
  start_daemon({}, {{"TICKETAID_WS_MAX_SEND_BUFFER_BYTES", "65536"}});
  RawSocket flooder;
  ASSERT_TRUE(flooder.connect(daemon_->port(), /*receive_buffer=*/16384));
  ASSERT_EQ(flooder.websocket_upgrade("/api/websocket/chat/T-1"), 101);
  const long before = daemon_rss_kib();
  // Pings ask for pongs that are never read: 64 MiB of requests for replies.
  std::string burst;
  for (int i = 0; i < 4096; ++i) {
    burst += RawSocket::text_frame(R"({"type":"ping"})");
  }
  // Flood until the daemon drops the connection (a send fails with a reset, not just
  // a full buffer), within a bound generous enough for a sanitizer build.
  const auto deadline = std::chrono::steady_clock::now() + 90s;
  std::size_t sent = 0;
  std::string pending;
  while (!flooder.closed() && std::chrono::steady_clock::now() < deadline) {
    if (pending.empty()) pending = burst;
    const std::size_t n = flooder.send_partial(pending, 1s);  // whole frames, in order
    pending.erase(0, n);
    sent += n;
  }
  EXPECT_TRUE(flooder.closed()) << "the daemon kept a client that never reads; sent " << sent;
  const long after = daemon_rss_kib();
  EXPECT_LT(after - before, kFloodRssBoundKib)
      << "RSS grew from " << before << " to " << after << " KiB";
  EXPECT_TRUE(wait_until([&] {
    return daemon_->stderr_text().find("stopped reading") != std::string::npos;
  })) << daemon_->stderr_text();
}

TEST_F(Limits, RateLimitOverWebsocketRefusesTheNextAndKeepsTheSocketOpen) {
  start_daemon({}, {{"TICKETAID_RATE_LIMIT_MESSAGES_PER_MINUTE", "3"}});
  WsClient client;
  ASSERT_TRUE(connect(client, "/api/websocket/chat/T-1").upgraded);
  for (int i = 0; i < 5; ++i) {  // pings do not count
    ASSERT_TRUE(client.send_json({{"type", "ping"}}));
    ASSERT_EQ(client.read_json()->value("type", ""), "pong");
  }
  for (int i = 0; i < 3; ++i) {  // the burst: three, cached or not
    EXPECT_EQ(ask(client, "the printer is jammed").value("type", ""), "done") << i;
  }
  auto refused = ask(client, "the printer is jammed");
  EXPECT_EQ(refused.value("type", ""), "error");
  EXPECT_EQ(refused.value("code", ""), "rate_limited");
  const int64_t retry = refused.value("retryAfterMs", int64_t{-1});
  EXPECT_GT(retry, 0);
  EXPECT_LE(retry, 20000);  // one token every 60/3 seconds
  ASSERT_TRUE(client.send_json({{"type", "ping"}}));
  EXPECT_EQ(client.read_json()->value("type", ""), "pong");
}

TEST_F(Limits, RateLimitOverHttpAnswers429WithRetryAfterAndSharesTheBucket) {
  start_daemon({}, {{"TICKETAID_RATE_LIMIT_MESSAGES_PER_MINUTE", "3"}});
  WsClient client;
  ASSERT_TRUE(connect(client, "/api/websocket/chat/T-1").upgraded);
  EXPECT_EQ(ask(client, "vpn is down").value("type", ""), "done");
  for (int i = 0; i < 2; ++i) {
    auto posted =
        http_post(daemon_->port(), "/api/tickets/T-1/ai-session", {{"ticketBody", "vpn is down"}});
    EXPECT_EQ(posted.status, 200) << posted.describe();
  }
  for (int i = 0; i < 5; ++i) {  // GETs do not count
    EXPECT_EQ(http_get(daemon_->port(), "/api/tickets/T-1/ai-session").status, 200);
  }
  auto refused =
      http_post(daemon_->port(), "/api/tickets/T-1/ai-session", {{"ticketBody", "vpn is down"}});
  EXPECT_EQ(refused.status, 429) << refused.describe();
  EXPECT_EQ(refused.error_code(), "rate_limited");
  const std::string retry_after = refused.header("Retry-After");
  ASSERT_FALSE(retry_after.empty());
  EXPECT_GE(std::stoi(retry_after), 1);
  EXPECT_LE(std::stoi(retry_after), 20);
  // And the WebSocket shares the same bucket.
  EXPECT_EQ(ask(client, "vpn is down").value("code", ""), "rate_limited");
}

TEST_F(Limits, OversizedBodyGets413AndOversizedHeadersGet431) {
  start_daemon({}, {{"TICKETAID_SERVER_MAX_BODY_BYTES", "2KiB"},
                    {"TICKETAID_SERVER_MAX_HEADER_BYTES", "2KiB"}});
  auto body = http_call(daemon_->port(), "POST", "/api/tickets/T-1/ai-session",
                        json({{"ticketBody", std::string(4096, 'x')}}).dump());
  EXPECT_EQ(body.status, 413) << body.describe();
  EXPECT_EQ(body.error_code(), "too_large");
  auto headers =
      http_call(daemon_->port(), "GET", "/health", "", {{"X-Padding", std::string(4096, 'y')}});
  EXPECT_EQ(headers.status, 431) << headers.describe();
  EXPECT_EQ(http_get(daemon_->port(), "/health").status, 200);  // nothing else broken
}

TEST_F(Limits, ASlowlorisClientIsDroppedAfterTheHeaderTimeout) {
  start_daemon({}, {{"TICKETAID_SERVER_HEADER_TIMEOUT_S", "1"}});
  RawSocket slow;
  ASSERT_TRUE(slow.connect(daemon_->port()));
  ASSERT_TRUE(slow.send_all("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: "));
  const auto start = std::chrono::steady_clock::now();
  // One byte every 300 ms keeps the connection busy but never finishes the headers.
  bool dropped = false;
  for (int i = 0; i < 30 && !dropped; ++i) {
    dropped = !slow.send_all("a", 1s) || !slow.receive_some(300ms).empty() || slow.closed();
  }
  EXPECT_TRUE(dropped || slow.wait_closed(3s));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  EXPECT_EQ(http_get(daemon_->port(), "/health").status, 200);
}

TEST_F(Limits, AForeignOriginGets403BeforeTheUpgradeAndOnRest) {
  start_daemon();
  WsClient evil;
  auto refused = connect(evil, "/api/websocket/chat/T-1", {{"Origin", "http://evil.example"}});
  EXPECT_FALSE(refused.upgraded);
  EXPECT_EQ(refused.http_status, 403);
  EXPECT_NE(refused.body.find("forbidden"), std::string::npos) << refused.body;
  auto rest =
      http_call(daemon_->port(), "GET", "/api/tickets", "", {{"Origin", "http://evil.example"}});
  EXPECT_EQ(rest.status, 403) << rest.describe();
  // Its own origin (the Host the browser used) and no Origin at all are fine.
  WsClient own;
  EXPECT_TRUE(
      connect(own, "/api/websocket/chat/T-1", {{"Origin", "http://" + daemon_->host_port()}})
          .upgraded);
  WsClient script;
  EXPECT_TRUE(connect(script, "/api/websocket/chat/T-1").upgraded);
}

TEST_F(Limits, AnAllowedOriginMayConnect) {
  start_daemon({},
               {{"TICKETAID_SERVER_ALLOWED_ORIGINS", "https://desk.example, https://b.example"}});
  WsClient desk;
  EXPECT_TRUE(
      connect(desk, "/api/websocket/chat/T-1", {{"Origin", "https://desk.example"}}).upgraded);
  WsClient other;
  EXPECT_EQ(connect(other, "/api/websocket/chat/T-1", {{"Origin", "https://desk.example.evil"}})
                .http_status,
            403);
}

TEST_F(Limits, ForwardedForIsBelievedOnlyFromTrustedProxies) {
  // Trusted: two addresses behind the proxy are two users, two connections each.
  start_daemon({}, {{"TICKETAID_LIMITS_MAX_CONNECTIONS_PER_USER", "1"},
                    {"TICKETAID_SERVER_TRUSTED_PROXIES", "127.0.0.0/8"}});
  WsClient a, b, c;
  ASSERT_TRUE(connect(a, "/api/websocket/chat/T-1", {{"X-Forwarded-For", "10.0.0.1"}}).upgraded);
  ASSERT_TRUE(connect(b, "/api/websocket/chat/T-1", {{"X-Forwarded-For", "10.0.0.2"}}).upgraded);
  ASSERT_TRUE(
      connect(c, "/api/websocket/chat/T-1", {{"X-Forwarded-For", "10.0.0.9, 10.0.0.1"}}).upgraded);
  EXPECT_FALSE(c.read_json(5s));
  EXPECT_EQ(c.close_code(), 4008);  // the rightmost untrusted entry is the client
  EXPECT_TRUE(b.send_json({{"type", "ping"}}));
  EXPECT_EQ(b.read_json()->value("type", ""), "pong");
}

TEST_F(Limits, ForwardedForFromAnUntrustedPeerIsIgnored) {
  start_daemon({}, {{"TICKETAID_LIMITS_MAX_CONNECTIONS_PER_USER", "1"}});
  WsClient a, b;
  ASSERT_TRUE(connect(a, "/api/websocket/chat/T-1", {{"X-Forwarded-For", "10.0.0.1"}}).upgraded);
  ASSERT_TRUE(connect(b, "/api/websocket/chat/T-1", {{"X-Forwarded-For", "10.0.0.2"}}).upgraded);
  EXPECT_FALSE(b.read_json(5s));
  EXPECT_EQ(b.close_code(), 4008);  // both are 127.0.0.1
}

}  // namespace
}  // namespace ticketaid::testing

namespace ticketaid::testing {
namespace {

TEST_F(Limits, AHostNameThatIsNotTheDaemonsGets403AgainstDnsRebinding) {
  start_daemon({}, {{"TICKETAID_SERVER_ALLOWED_HOSTS", "desk-ai.example"}});
  auto rebound = http_call(daemon_->port(), "GET", "/api/tickets", "",
                           {{"Host", "evil.example:" + std::to_string(daemon_->port())}});
  EXPECT_EQ(rebound.status, 403) << rebound.describe();
  EXPECT_EQ(
      http_call(daemon_->port(), "GET", "/api/tickets", "", {{"Host", "desk-ai.example"}}).status,
      200);
  EXPECT_EQ(http_get(daemon_->port(), "/api/tickets").status, 200);  // Host: 127.0.0.1:PORT
}

TEST_F(Limits, EveryForwardedForLineIsReadSoAForgedFirstLineChangesNothing) {
  start_daemon({}, {{"TICKETAID_RATE_LIMIT_MESSAGES_PER_MINUTE", "1"},
                    {"TICKETAID_SERVER_TRUSTED_PROXIES", "127.0.0.1"}});
  auto post_as = [&](const std::string& forged) {
    httplib::Headers headers = {{"X-Forwarded-For", forged},          // the client's own line
                                {"X-Forwarded-For", "203.0.113.9"}};  // the proxy's line
    return http_call(daemon_->port(), "POST", "/api/tickets/T-1/ai-session",
                     json({{"ticketBody", "no sound"}}).dump(), headers)
        .status;
  };
  EXPECT_EQ(post_as("198.51.100.1"), 200);
  EXPECT_EQ(post_as("198.51.100.2"), 429);  // the same client, 203.0.113.9
}

}  // namespace
}  // namespace ticketaid::testing
