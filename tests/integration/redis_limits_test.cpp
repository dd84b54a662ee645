// Rate limits shared through a real redis-server (SPEC §4): two daemons on one Redis
// stay within one limit together; Redis killed mid-test gives the configured
// fallback (local limits, or deny), logged once and shown in /ready and /metrics; and
// the daemons recover when Redis is back.
#include <gtest/gtest.h>

#include <string>

#include "integration/daemon_fixture.h"
#include "integration/rest_client.h"
#include "support/redis_server.h"

namespace ticketaid::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

class RedisLimits : public DaemonTest {
 protected:
  std::map<std::string, std::string> redis_env(int per_minute, const std::string& on_failure) {
    return {{"TICKETAID_REDIS_URL", redis_.url() + "?timeout_ms=500"},
            {"TICKETAID_REDIS_ON_FAILURE", on_failure},
            {"TICKETAID_RATE_LIMIT_MESSAGES_PER_MINUTE", std::to_string(per_minute)}};
  }

  static int post_ticket(int port) {
    return http_post(port, "/api/tickets/T-1/ai-session", {{"ticketBody", "disk is full"}}).status;
  }

  static int64_t gauge(int port, const std::string& name) {
    const std::string text = http_get(port, "/metrics").body;
    const auto at = text.find("\n" + name + " ");
    if (at == std::string::npos) return -1;
    return std::stoll(text.substr(at + name.size() + 2));
  }

  static std::size_t count(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
      ++n;
    return n;
  }

  RedisServer redis_;
};

TEST_F(RedisLimits, TwoDaemonsOnOneRedisShareEachUsersLimit) {
  if (!redis_.start()) return;
  start_daemon({}, redis_env(5, "local"));
  DaemonOptions options;
  options.db_path = dir_.path() / "second.db";
  options.ollama_url = using_fake() ? fake_.url() : real_ollama_url();
  options.env = redis_env(5, "local");
  options.env.emplace("TICKETAID_LIMITS_MAX_CONNECTIONS_PER_USER", "1000");
  DaemonProcess second(options);
  ASSERT_TRUE(second.start()) << second.stderr_text();
  EXPECT_EQ(gauge(daemon_->port(), "ticketaid_rate_limit_redis"), 1);

  int allowed = 0;
  int refused = 0;
  for (int i = 0; i < 10; ++i) {  // alternating between the nodes
    const int status = post_ticket(i % 2 == 0 ? daemon_->port() : second.port());
    if (status == 200) ++allowed;
    if (status == 429) ++refused;
  }
  EXPECT_EQ(allowed, 5) << "the sum over both nodes must stay within the limit";
  EXPECT_EQ(refused, 5);
}

TEST_F(RedisLimits, RedisDownFallsBackToLocalLimitsOnceThenRecovers) {
  if (!redis_.start()) return;
  start_daemon({}, redis_env(1000, "local"));
  const int port = daemon_->port();
  EXPECT_EQ(post_ticket(port), 200);
  EXPECT_EQ(gauge(port, "ticketaid_rate_limit_degraded"), 0);
  if (!redis_.kill()) return;

  for (int i = 0; i < 5; ++i) {  // decided locally, and allowed
    EXPECT_EQ(post_ticket(port), 200) << i;
  }
  EXPECT_EQ(gauge(port, "ticketaid_rate_limit_degraded"), 1);
  auto ready = http_get(port, "/ready");
  EXPECT_EQ(ready.status, 200) << ready.describe();  // local limits still protect this node
  EXPECT_TRUE(ready.json["rateLimit"].value("degraded", false)) << ready.describe();
  EXPECT_EQ(count(daemon_->stderr_text(), "unreachable"), 1u) << daemon_->stderr_text();

  if (!redis_.start()) return;
  EXPECT_TRUE(wait_until(
      [&] {
        post_ticket(port);  // a decision lets the limiter notice Redis again
        return gauge(port, "ticketaid_rate_limit_degraded") == 0;
      },
      40s))
      << daemon_->stderr_text();
  EXPECT_EQ(count(daemon_->stderr_text(), "reachable again"), 1u) << daemon_->stderr_text();
  EXPECT_EQ(http_get(port, "/ready").json["rateLimit"].value("degraded", true), false);
}

TEST_F(RedisLimits, RedisDownWithDenyRefusesModelWorkAndMakesTheNodeNotReady) {
  if (!redis_.start()) return;
  start_daemon({}, redis_env(1000, "deny"));
  const int port = daemon_->port();
  EXPECT_EQ(post_ticket(port), 200);
  if (!redis_.kill()) return;
  auto refused = http_post(port, "/api/tickets/T-1/ai-session", {{"ticketBody", "disk is full"}});
  EXPECT_EQ(refused.status, 429) << refused.describe();
  EXPECT_FALSE(refused.header("Retry-After").empty());
  EXPECT_EQ(http_get(port, "/api/tickets/T-1/ai-session").status, 200);  // reads still work
  auto ready = http_get(port, "/ready");
  EXPECT_EQ(ready.status, 503) << ready.describe();

  if (!redis_.start()) return;
  EXPECT_TRUE(wait_until([&] { return post_ticket(port) == 200; }, 40s)) << daemon_->stderr_text();
  EXPECT_EQ(http_get(port, "/ready").status, 200);
}

}  // namespace
}  // namespace ticketaid::testing

namespace ticketaid::testing {
namespace {

TEST(RedisDoctor, ReportsARedisThatAnswersAndOneThatDoesNot) {
  RedisServer redis({.password = "s3cret-pass"});
  if (!redis.start()) return;
  TempDir dir;
  const std::vector<std::string> args = {"doctor", "--db", (dir.path() / "t.db").string(),
                                         "--listen", "127.0.0.1:0"};
  std::string out, err;
  DaemonProcess::run_once(args, &out, &err, {{"TICKETAID_REDIS_URL", redis.url()}});
  EXPECT_NE(out.find("ok    redis: 127.0.0.1:" + std::to_string(redis.port())), std::string::npos)
      << out << err;

  std::string wrong = redis.url();
  wrong.replace(wrong.find("s3cret-pass"), 11, "wrong-pass1");
  out.clear();
  err.clear();
  EXPECT_NE(DaemonProcess::run_once(args, &out, &err, {{"TICKETAID_REDIS_URL", wrong}}), 0);
  EXPECT_NE(out.find("FAIL  redis"), std::string::npos) << out << err;
  EXPECT_EQ((out + err).find("wrong-pass1"), std::string::npos) << "the password was printed";

  if (!redis.kill()) return;
  out.clear();
  err.clear();
  EXPECT_NE(DaemonProcess::run_once(args, &out, &err, {{"TICKETAID_REDIS_URL", redis.url()}}), 0);
  EXPECT_NE(out.find("FAIL  redis"), std::string::npos) << out << err;
}

}  // namespace
}  // namespace ticketaid::testing
