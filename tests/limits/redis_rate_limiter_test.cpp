// The Redis rate limiter against a real redis-server (tests/support/redis_server.h):
// the GCRA counts and retry times, a limit shared by two limiters, credentials and
// database from the URL, keys of any bytes, a flushed script cache, a key of another
// type, a full queue, the destructor, the probe. Waits are for conditions, each with
// a deadline; nothing sleeps a fixed time. The outages are in
// redis_rate_limiter_outage_test.cpp.
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

TEST(RedisRateLimiterTest, ExactlyNPassThenTheNextIsRefused) {
  RedisServer redis;
  if (!redis.start()) return;
  Decisions decisions;
  auto limiter = make_limiter(options_for(redis.url()));
  for (int i = 0; i < 61; ++i)
    limiter->take("user", 60, decisions.callback());
  ASSERT_TRUE(decisions.wait_for(61));
  const auto all = decisions.all();
  for (int i = 0; i < 60; ++i)
    EXPECT_TRUE(all[i].allowed) << i;
  EXPECT_FALSE(all[60].allowed);
  // One token every second: the refused one may retry after a second, less the time
  // the 61 requests took.
  EXPECT_LE(all[60].retry_after_ms, 1000);
  EXPECT_GE(all[60].retry_after_ms, 800);
  const RateLimiterHealth health = limiter->health();
  EXPECT_EQ(health.backend, "redis");
  EXPECT_FALSE(health.degraded) << health.detail;
}

TEST(RedisRateLimiterTest, OneMorePassesAfterTheInterval) {
  RedisServer redis;
  if (!redis.start()) return;
  Decisions decisions;
  auto limiter = make_limiter(options_for(redis.url()));
  for (int i = 0; i < 600; ++i)
    limiter->take("user", 600, decisions.callback());
  ASSERT_TRUE(decisions.wait_for(600));
  EXPECT_EQ(decisions.allowed(), 600);
  RateDecision refused;
  ASSERT_TRUE(eventually([&] { return !(refused = take_one(*limiter, "user", 600)).allowed; }));
  EXPECT_GT(refused.retry_after_ms, 0);
  EXPECT_LE(refused.retry_after_ms, 100);  // one token every 100 ms
  const auto start = SteadyClock::now();
  ASSERT_TRUE(eventually([&] { return take_one(*limiter, "user", 600).allowed; }, 3s));
  const auto waited =
      std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - start);
  EXPECT_GE(waited.count(), refused.retry_after_ms / 2);
  EXPECT_FALSE(take_one(*limiter, "user", 600).allowed);  // one passed, not more
}

TEST(RedisRateLimiterTest, TwoLimitersShareTheLimit) {
  RedisServer redis;
  if (!redis.start()) return;
  Decisions decisions;
  const RedisLimiterOptions options = options_for(redis.url());
  auto first = make_limiter(options);
  auto second = make_limiter(options);
  for (int i = 0; i < 50; ++i) {
    first->take("shared", 60, decisions.callback());
    second->take("shared", 60, decisions.callback());
  }
  ASSERT_TRUE(decisions.wait_for(100));
  EXPECT_EQ(decisions.allowed(), 60);
}

TEST(RedisRateLimiterTest, PasswordAndDatabaseFromTheUrl) {
  RedisServer redis(RedisServerOptions{"p@ss:w/rd%?"});
  if (!redis.start()) return;
  ASSERT_NE(redis.url().find("%40"), std::string::npos);  // the password is %-escaped
  const RedisLimiterOptions options = options_for(redis.url() + "/3");
  ASSERT_EQ(options.url.password, "p@ss:w/rd%?");
  ASSERT_EQ(options.url.db, 3);
  auto limiter = make_limiter(options);
  EXPECT_TRUE(take_one(*limiter, "user", 60).allowed);
  EXPECT_FALSE(limiter->health().degraded) << limiter->health().detail;
  EXPECT_EQ(redis.command({"EXISTS", options.key_prefix + "user"}, 3).text, "1");
  EXPECT_EQ(redis.command({"EXISTS", options.key_prefix + "user"}, 0).text, "0");
  EXPECT_TRUE(probe_redis(options.url).is_ok()) << probe_redis(options.url).message();
}

// Reconnection attempts follow the backoff (100 ms, then 200 ms, the cap here),

// however many requests come meanwhile.

TEST(RedisRateLimiterTest, FlushedScriptCacheFallsBackToEval) {
  RedisServer redis;
  if (!redis.start()) return;
  auto limiter = make_limiter(options_for(redis.url()));
  EXPECT_TRUE(take_one(*limiter, "user", 3).allowed);
  ASSERT_EQ(redis.command({"SCRIPT", "FLUSH"}).text, "OK");
  EXPECT_TRUE(take_one(*limiter, "user", 3).allowed);   // EVAL
  EXPECT_TRUE(take_one(*limiter, "user", 3).allowed);   // EVALSHA again
  EXPECT_FALSE(take_one(*limiter, "user", 3).allowed);  // Redis counted all three
  EXPECT_FALSE(limiter->health().degraded);
}

TEST(RedisRateLimiterTest, KeyOfAnotherTypeIsDecidedByTheFallback) {
  RedisServer redis;
  if (!redis.start()) return;
  LogCapture logs;
  const RedisLimiterOptions options = options_for(redis.url(), /*deny=*/true);
  ASSERT_EQ(redis.command({"RPUSH", options.key_prefix + "list", "x"}).text, "1");
  auto limiter = make_limiter(options);
  const RateDecision decision = take_one(*limiter, "list", 60);
  EXPECT_FALSE(decision.allowed);
  EXPECT_EQ(decision.retry_after_ms, 1000);
  EXPECT_TRUE(take_one(*limiter, "user", 60).allowed);
  EXPECT_FALSE(limiter->health().degraded);
  EXPECT_EQ(logs.count("WRONGTYPE"), 1) << logs.text();
}

TEST(RedisRateLimiterTest, KeysMayHoldAnyBytes) {
  RedisServer redis;
  if (!redis.start()) return;
  const RedisLimiterOptions options = options_for(redis.url());
  auto limiter = make_limiter(options);
  const std::string odd("a b\r\nc\0\xff\xfe%s", 11);
  const std::string prefix_of_odd("a b\r\nc", 6);
  EXPECT_TRUE(take_one(*limiter, odd, 1).allowed);
  EXPECT_FALSE(take_one(*limiter, odd, 1).allowed);
  EXPECT_TRUE(take_one(*limiter, prefix_of_odd, 1).allowed);  // not cut at the NUL
  EXPECT_EQ(redis.command({"EXISTS", options.key_prefix + odd}).text, "1");
  EXPECT_FALSE(limiter->health().degraded);
}

TEST(RedisRateLimiterTest, RequestsBeyondMaxPendingAreDecidedAtOnce) {
  RedisServer redis;
  if (!redis.start()) return;
  RedisLimiterOptions options = options_for(redis.url(), /*deny=*/true);
  options.max_pending = 2;
  Decisions decisions;
  auto limiter = make_limiter(options);
  EXPECT_TRUE(take_one(*limiter, "user", 60).allowed);  // connected
  ASSERT_EQ(redis.command({"CLIENT", "PAUSE", "500", "ALL"}).text, "OK");
  // The worker waits for Redis with at most 2 requests, and 2 more wait in the queue:
  // the others are refused before take() returns.
  int at_once = 0;
  for (int i = 0; i < 10; ++i) {
    const std::size_t before = decisions.all().size();
    limiter->take("user", 60, decisions.callback());
    at_once += decisions.all().size() > before ? 1 : 0;
  }
  EXPECT_GE(at_once, 6);
  ASSERT_TRUE(decisions.wait_for(10));
  EXPECT_EQ(decisions.allowed(), 10 - at_once);  // the queued ones, by Redis
}

TEST(RedisRateLimiterTest, DestructorDecidesEveryQueuedRequest) {
  RedisServer redis;
  if (!redis.start()) return;
  Decisions decisions;
  {
    auto limiter = make_limiter(options_for(redis.url(), /*deny=*/true));
    EXPECT_TRUE(take_one(*limiter, "user", 60).allowed);
    ASSERT_EQ(redis.command({"CLIENT", "PAUSE", "300", "ALL"}).text, "OK");
    for (int i = 0; i < 5; ++i)
      limiter->take("user", 60, decisions.callback());
  }
  // Some may have been on their way to the paused Redis, others still queued: each
  // got exactly one decision by the time the destructor returned.
  EXPECT_EQ(decisions.all().size(), 5u);
  redis.command({"CLIENT", "UNPAUSE"});  // for a shared TICKETAID_TEST_REDIS_URL
}

TEST(RedisRateLimiterTest, ProbeRunsTheScript) {
  RedisServer redis;
  if (!redis.start()) return;
  const Status status = probe_redis(options_for(redis.url()).url);
  EXPECT_TRUE(status.is_ok()) << status.message();
}

}  // namespace
}  // namespace ticketaid
