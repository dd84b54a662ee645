// The Redis rate limiter when Redis fails: killed (local fallback, or refusals with
// on_failure = deny), restarted, unreachable from the start, slower than the timeout,
// refusing the password; the logging of each change once, and the pace of the
// reconnection attempts. A real redis-server (tests/support/redis_server.h); waits
// are for conditions, each with a deadline.
#include "limits/redis_rate_limiter.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "limits/redis_limiter_test_util.h"
#include "support/redis_server.h"

namespace ticketaid {
namespace {

using testing::Decisions;
using testing::eventually;
using testing::LogCapture;
using testing::make_limiter;
using testing::options_for;
using testing::RedisServer;
using testing::RedisServerOptions;
using testing::SteadyClock;
using testing::take_one;
using namespace std::chrono_literals;

TEST(RedisRateLimiterOutageTest, WrongPasswordDegradesAndIsNeverShown) {
  RedisServer redis(RedisServerOptions{"right-secret-1234"});
  if (!redis.start()) return;
  LogCapture logs;
  RedisLimiterOptions options = options_for(redis.url());
  options.url.password = "wrong-secret-5678";
  {
    auto limiter = make_limiter(options);
    EXPECT_TRUE(take_one(*limiter, "user", 60).allowed);  // the local limiter
    const RateLimiterHealth health = limiter->health();
    EXPECT_TRUE(health.degraded);
    EXPECT_NE(health.detail.find("authentication failed"), std::string::npos) << health.detail;
    EXPECT_EQ(health.detail.find("secret"), std::string::npos) << health.detail;
  }
  EXPECT_EQ(logs.count("unreachable"), 1) << logs.text();
  EXPECT_EQ(logs.text().find("secret"), std::string::npos) << logs.text();

  const Status wrong = probe_redis(options.url);
  EXPECT_EQ(wrong.code(), ErrorCode::unauthorized) << wrong.message();
  EXPECT_EQ(wrong.message().find("secret"), std::string::npos) << wrong.message();
  options.url.password.clear();
  const Status missing = probe_redis(options.url);
  EXPECT_EQ(missing.code(), ErrorCode::unauthorized) << missing.message();
}

TEST(RedisRateLimiterOutageTest, KilledRedisFallsBackToTheLocalLimiterAndRecovers) {
  RedisServer redis;
  if (!redis.start()) return;
  LogCapture logs;
  const RedisLimiterOptions options = options_for(redis.url());
  auto limiter = make_limiter(options);
  EXPECT_TRUE(take_one(*limiter, "user", 2).allowed);
  EXPECT_TRUE(take_one(*limiter, "user", 2).allowed);
  EXPECT_FALSE(take_one(*limiter, "user", 2).allowed);  // Redis counted two

  if (!redis.kill()) return;
  // The local bucket of the key is full: two more pass, the third is refused.
  EXPECT_TRUE(take_one(*limiter, "user", 2).allowed);
  EXPECT_TRUE(limiter->health().degraded);
  EXPECT_TRUE(take_one(*limiter, "user", 2).allowed);
  EXPECT_FALSE(take_one(*limiter, "user", 2).allowed);
  EXPECT_NE(limiter->health().detail.find("deciding locally"), std::string::npos);
  EXPECT_EQ(logs.count("unreachable"), 1) << logs.text();
  EXPECT_EQ(logs.count("deciding locally"), 1) << logs.text();

  if (!redis.start()) return;
  ASSERT_TRUE(eventually([&] { return !limiter->health().degraded; })) << limiter->health().detail;
  EXPECT_EQ(logs.count("reachable again"), 1) << logs.text();
  // Decisions come from Redis again: another limiter spends the key's bucket there,
  // which this one sees (its local bucket for the key is still full).
  auto other = make_limiter(options);
  EXPECT_TRUE(take_one(*other, "after", 2).allowed);
  EXPECT_TRUE(take_one(*other, "after", 2).allowed);
  EXPECT_FALSE(take_one(*limiter, "after", 2).allowed);
  EXPECT_EQ(logs.count("unreachable"), 1) << logs.text();
}

TEST(RedisRateLimiterOutageTest, RestartWhileIdleIsNotAnOutage) {
  RedisServer redis;
  if (!redis.start()) return;
  LogCapture logs;
  auto limiter = make_limiter(options_for(redis.url(), /*deny=*/true));
  EXPECT_TRUE(take_one(*limiter, "user", 2).allowed);
  if (!redis.stop() || !redis.start()) return;
  // The closed connection is replaced at once and the request sent again: Redis
  // decides (the fallback would refuse), and nothing is logged.
  EXPECT_TRUE(take_one(*limiter, "user", 2).allowed);
  EXPECT_TRUE(take_one(*limiter, "user", 2).allowed);
  EXPECT_FALSE(limiter->health().degraded);
  EXPECT_EQ(logs.text(), "");
}

TEST(RedisRateLimiterOutageTest, ReconnectsNoMoreOftenThanTheBackoff) {
  RedisServer redis(RedisServerOptions{"right-secret-1234"});
  if (!redis.start()) return;
  const auto connections = [&] {
    const std::string info = redis.command({"INFO", "stats"}).text;
    const std::string field = "total_connections_received:";
    const auto at = info.find(field);
    return at == std::string::npos ? -1L : std::stol(info.substr(at + field.size()));
  };
  const long before = connections();
  ASSERT_GE(before, 0);
  RedisLimiterOptions options = options_for(redis.url());
  options.url.password = "wrong-secret";
  Decisions decisions;
  const auto start = SteadyClock::now();
  {
    auto limiter = make_limiter(options);
    // Requests all along, each decided by the fallback at once, none a reason to retry.
    int requests = 0;
    while (SteadyClock::now() - start < 1000ms) {
      limiter->take("user", 1'000'000, decisions.callback());
      ++requests;
      std::this_thread::sleep_for(1ms);
    }
    EXPECT_TRUE(decisions.wait_for(requests));
    EXPECT_TRUE(limiter->health().degraded);
  }
  const auto elapsed = SteadyClock::now() - start;
  // One attempt at once, one 75-100 ms later, then one every 150-200 ms; the second
  // INFO made a connection of its own.
  const long attempts = connections() - before - 1;
  const long most =
      2 + std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count() / 150;
  EXPECT_GE(attempts, 4);
  EXPECT_LE(attempts, most);
}

TEST(RedisRateLimiterOutageTest, KilledRedisWithDenyRefuses) {
  RedisServer redis;
  if (!redis.start()) return;
  LogCapture logs;
  auto limiter = make_limiter(options_for(redis.url(), /*deny=*/true));
  EXPECT_TRUE(take_one(*limiter, "user", 60).allowed);
  if (!redis.kill()) return;
  for (int i = 0; i < 3; ++i) {
    const RateDecision decision = take_one(*limiter, "user", 60);
    EXPECT_FALSE(decision.allowed);
    EXPECT_EQ(decision.retry_after_ms, 1000);
  }
  const RateLimiterHealth health = limiter->health();
  EXPECT_TRUE(health.degraded);
  EXPECT_NE(health.detail.find("refusing requests"), std::string::npos) << health.detail;
  EXPECT_EQ(logs.count("refusing requests"), 1) << logs.text();
}

TEST(RedisRateLimiterOutageTest, UnreachableFromTheStart) {
  RedisServer redis;
  if (!redis.start() || !redis.stop()) return;
  auto local = make_limiter(options_for(redis.url()));
  EXPECT_TRUE(take_one(*local, "user", 60).allowed);
  EXPECT_TRUE(local->health().degraded);
  auto deny = make_limiter(options_for(redis.url(), /*deny=*/true));
  EXPECT_FALSE(take_one(*deny, "user", 60).allowed);
  const Status probe = probe_redis(options_for(redis.url()).url);
  EXPECT_EQ(probe.code(), ErrorCode::busy);
  EXPECT_NE(probe.message().find("unreachable"), std::string::npos) << probe.message();
  EXPECT_NE(probe.message().find(std::to_string(redis.port())), std::string::npos);
}

TEST(RedisRateLimiterOutageTest, AnswerSlowerThanTheTimeoutDegradesUntilRedisAnswers) {
  RedisServer redis;
  if (!redis.start()) return;
  RedisLimiterOptions options = options_for(redis.url(), /*deny=*/true);
  options.url.timeout_ms = 200;
  auto limiter = make_limiter(options);
  EXPECT_TRUE(take_one(*limiter, "user", 60).allowed);
  ASSERT_EQ(redis.command({"CLIENT", "PAUSE", "1000", "ALL"}).text, "OK");
  const auto start = SteadyClock::now();
  EXPECT_FALSE(take_one(*limiter, "user", 60).allowed);
  EXPECT_GE(SteadyClock::now() - start, 150ms);
  EXPECT_NE(limiter->health().detail.find("no answer within 200 ms"), std::string::npos)
      << limiter->health().detail;
  ASSERT_TRUE(eventually([&] { return !limiter->health().degraded; }));
  EXPECT_TRUE(take_one(*limiter, "user", 60).allowed);
}

}  // namespace
}  // namespace ticketaid
