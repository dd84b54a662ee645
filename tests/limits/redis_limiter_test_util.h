// Helpers of the Redis rate limiter tests: decisions collected across threads,
// bounded waits for conditions, limiter options with keys of their own, and a capture
// of spdlog's output.
//
// Thread-safety: Decisions and LogCapture may be fed from any thread; the rest is
// used by the test's thread.
#pragma once

#include <gtest/gtest.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "limits/rate_limiter.h"
#include "limits/redis_rate_limiter.h"
#include "util/redis_url.h"

namespace ticketaid::testing {

using SteadyClock = std::chrono::steady_clock;

inline constexpr auto kWait = std::chrono::seconds(10);

// Decisions delivered on any thread, in the order they came.
class Decisions {
 public:
  std::function<void(RateDecision)> callback() {
    return [this](RateDecision decision) {
      std::lock_guard lock(mutex_);
      all_.push_back(decision);
      changed_.notify_all();
    };
  }
  bool wait_for(std::size_t n) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, kWait, [&] { return all_.size() >= n; });
  }
  std::vector<RateDecision> all() const {
    std::lock_guard lock(mutex_);
    return all_;
  }
  int allowed() const {
    std::lock_guard lock(mutex_);
    int n = 0;
    for (const RateDecision& d : all_)
      n += d.allowed ? 1 : 0;
    return n;
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<RateDecision> all_;
};

// One decision, waited for (a test failure and a refusal with -1 if none comes).
inline RateDecision take_one(RateLimiter& limiter, const std::string& key, int per_minute) {
  Decisions decisions;
  limiter.take(key, per_minute, decisions.callback());
  if (!decisions.wait_for(1)) {
    ADD_FAILURE() << "no decision within " << kWait.count() << " s";
    return {false, -1};
  }
  return decisions.all()[0];
}

// Polls until `condition` holds or the deadline passes.
template <class Condition>
inline bool eventually(Condition condition, std::chrono::milliseconds timeout = kWait) {
  const auto deadline = SteadyClock::now() + timeout;
  while (!condition()) {
    if (SteadyClock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

// Each limiter family gets its own keys, so that tests can share an external Redis.
inline std::string unique_prefix() {
  static std::atomic<int> counter{0};
  return "ticketaid-test:" + std::to_string(getpid()) + ":" + std::to_string(++counter) + ":";
}

inline RedisLimiterOptions options_for(const std::string& url, bool deny = false) {
  RedisLimiterOptions options;
  auto parsed = parse_redis_url(url);
  EXPECT_TRUE(parsed.is_ok()) << parsed.status().message();
  if (parsed) options.url = *parsed;
  options.deny_on_failure = deny;
  options.key_prefix = unique_prefix();
  options.max_backoff_ms = 200;
  return options;
}

inline std::unique_ptr<RateLimiter> make_limiter(const RedisLimiterOptions& options) {
  return make_redis_rate_limiter(options, make_local_rate_limiter(system_clock(), 1000));
}

// Sends spdlog's default logger to memory while it lives. Create it before the
// limiters and let it die after them.
class LogCapture {
 public:
  LogCapture()
      : previous_(spdlog::default_logger()),
        sink_(std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(200)) {
    auto logger = std::make_shared<spdlog::logger>("capture", sink_);
    logger->set_level(spdlog::level::info);
    spdlog::set_default_logger(logger);
  }
  ~LogCapture() { spdlog::set_default_logger(previous_); }
  std::string text() const {
    std::string out;
    for (const std::string& line : sink_->last_formatted())
      out += line;
    return out;
  }
  int count(std::string_view needle) const {
    int n = 0;
    for (const std::string& line : sink_->last_formatted()) {
      n += line.find(needle) != std::string::npos ? 1 : 0;
    }
    return n;
  }

 private:
  std::shared_ptr<spdlog::logger> previous_;
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink_;
};

}  // namespace ticketaid::testing
