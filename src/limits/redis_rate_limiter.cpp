// The Redis rate limiter (see redis_rate_limiter.h).
//
// One worker thread owns one blocking hiredis connection (redis_session.h). take()
// queues a request and wakes the worker, which sends the queued requests in one
// pipeline of script calls and calls each `done` with Redis' answer. While Redis is
// unreachable (degraded), take() decides with the fallback itself, and the worker only
// tries to reconnect, at the pace of a capped, jittered exponential backoff.
//
// Thread-safety: mutex_ guards the queue and the health state; the session, the sha
// and the backoff belong to the worker. `done` is never called under mutex_.
#include "limits/redis_rate_limiter.h"

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "limits/redis_session.h"

namespace ticketaid {
namespace {

using namespace redis_detail;
using SteadyClock = std::chrono::steady_clock;

constexpr int kFirstBackoffMs = 100;
constexpr std::size_t kMaxBatch = 128;  // script calls in one pipeline
constexpr RateDecision kDenied{false, 1000};
constexpr auto kWarningInterval = std::chrono::seconds(10);

// A warning that may repeat often (reply errors, a full queue): logged at most once
// per interval, with the count of those held back. Thread-safe.
class ThrottledWarning {
 public:
  void warn(const std::string& text) {
    std::unique_lock lock(mutex_);
    const auto now = SteadyClock::now();
    if (now < next_) {
      ++held_;
      return;
    }
    next_ = now + kWarningInterval;
    const int held = std::exchange(held_, 0);
    lock.unlock();
    if (held == 0) {
      spdlog::warn("{}", text);
    } else {
      spdlog::warn("{} ({} more like it not logged)", text, held);
    }
  }

 private:
  std::mutex mutex_;
  SteadyClock::time_point next_{};
  int held_ = 0;
};

class RedisRateLimiter final : public RateLimiter {
 public:
  RedisRateLimiter(RedisLimiterOptions options, std::unique_ptr<RateLimiter> local)
      : options_(std::move(options)), local_(std::move(local)), random_(std::random_device()()) {
    if (!options_.deny_on_failure && !local_) {
      throw std::invalid_argument("the Redis rate limiter needs a local fallback");
    }
    options_.max_backoff_ms = std::max(options_.max_backoff_ms, 1);
    backoff_ms_ = std::min(kFirstBackoffMs, options_.max_backoff_ms);
    worker_ = std::thread([this] { run(); });
  }

  ~RedisRateLimiter() override {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    worker_.join();
  }

  void take(const std::string& key, int per_minute,
            std::function<void(RateDecision)> done) override {
    Request request{key, per_minute, std::move(done)};
    bool overflow = false;
    {
      std::lock_guard lock(mutex_);
      if (!degraded_ && !stopping_ && queue_.size() < options_.max_pending) {
        queue_.push_back(std::move(request));
        if (queue_.size() == 1) wake_.notify_one();
        return;
      }
      overflow = !degraded_ && !stopping_;
    }
    if (overflow) {
      overflow_warning_.warn(
          fmt::format("rate limits: more than {} requests waiting for Redis {}; {}",
                      options_.max_pending, options_.url.display(), fallback_name()));
    }
    decide_locally(request);
  }

  RateLimiterHealth health() const override {
    std::lock_guard lock(mutex_);
    RateLimiterHealth out;
    out.backend = "redis";
    out.degraded = degraded_;
    out.detail = degraded_ ? fmt::format("redis {} unreachable: {}; {}", options_.url.display(),
                                         reason_, fallback_name())
                           : fmt::format("redis {}", options_.url.display());
    return out;
  }

 private:
  struct Request {
    std::string key;
    int per_minute = 1;
    std::function<void(RateDecision)> done;
  };

  const char* fallback_name() const {
    return options_.deny_on_failure ? "refusing requests" : "deciding locally";
  }

  void decide_locally(Request& request) {
    if (options_.deny_on_failure) {
      request.done(kDenied);
      return;
    }
    local_->take(request.key, request.per_minute, std::move(request.done));
  }

  void run() {
    // A write to a connection that Redis closed must fail with EPIPE, not kill the
    // process, whatever the embedding program did with SIGPIPE.
    sigset_t pipe_signal;
    sigemptyset(&pipe_signal);
    sigaddset(&pipe_signal, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_signal, nullptr);

    std::unique_lock lock(mutex_);
    while (!stopping_) {
      if (!session_) {
        // The first attempt at once; after a failure, at the backoff's pace.
        if (degraded_ && wake_.wait_until(lock, next_attempt_, [this] { return stopping_; })) {
          break;
        }
        lock.unlock();
        connect();
        lock.lock();
        continue;
      }
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) break;
      std::vector<Request> batch;
      while (!queue_.empty() && batch.size() < kMaxBatch) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      lock.unlock();
      decide(batch);
      lock.lock();
    }
    std::deque<Request> left = std::move(queue_);
    queue_.clear();
    lock.unlock();
    session_.reset();
    for (Request& request : left) {
      decide_locally(request);
    }
  }

  // Opens the session, or marks the limiter degraded.
  void connect() {
    Result<RedisSession> opened = open_redis_session(options_.url);
    if (!opened) {
      mark_degraded(opened.status().message(), {});
      return;
    }
    session_ = std::move(opened).value();
    mark_recovered();
  }

  // Asks Redis for each request of `batch`. may_retry: whether requests that a broken
  // connection left unanswered may be sent once more over a new one.
  void decide(std::vector<Request>& batch, bool may_retry = true) {
    std::vector<GcraCall> calls;
    calls.reserve(batch.size());
    for (const Request& request : batch) {
      calls.push_back({options_.key_prefix + request.key, request.per_minute});
    }
    std::vector<GcraReply> replies;
    Status status = run_gcra(*session_, options_.url, calls, true, &replies);
    // NOSCRIPT (the script cache was flushed, or a failover): EVAL those, then reload.
    std::vector<std::size_t> no_script;
    for (std::size_t i = 0; i < replies.size(); ++i) {
      if (replies[i].kind == GcraReply::Kind::no_script) no_script.push_back(i);
    }
    if (status && !no_script.empty()) {
      std::vector<GcraCall> again;
      for (const std::size_t i : no_script) {
        again.push_back(calls[i]);
      }
      std::vector<GcraReply> evaluated;
      status = run_gcra(*session_, options_.url, again, false, &evaluated);
      for (std::size_t j = 0; j < no_script.size(); ++j) {
        replies[no_script[j]] = evaluated[j];
      }
      if (status) status = reload_gcra_script(*session_, options_.url);
    }

    std::vector<Request> unanswered;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      switch (replies[i].kind) {
        case GcraReply::Kind::decided:
          batch[i].done(replies[i].decision);
          break;
        case GcraReply::Kind::unanswered:
          unanswered.push_back(std::move(batch[i]));
          break;
        default:
          reply_warning_.warn(fmt::format("rate limits: Redis {} refused a decision ({}); {}",
                                          options_.url.display(), replies[i].error,
                                          fallback_name()));
          decide_locally(batch[i]);
          break;
      }
    }
    if (!status) lost_connection(status, std::move(unanswered), may_retry);
  }

  // The connection broke or timed out; `unanswered` still need a decision.
  void lost_connection(const Status& status, std::vector<Request> unanswered, bool may_retry) {
    const bool timed_out = session_->timed_out;
    session_.reset();
    if (timed_out) {
      mark_degraded(status.message(), std::move(unanswered));
      return;
    }
    // A connection that Redis closed (a restart, an idle timeout) is replaced at once,
    // and what it left unanswered is sent once more: most likely Redis never saw it
    // (at worst it counts one request twice). When that fails, the limiter is degraded.
    connect();
    if (session_ && may_retry && !unanswered.empty()) {
      decide(unanswered, false);
      return;
    }
    decide_all(unanswered);
  }

  void decide_all(std::vector<Request>& requests) {
    for (Request& request : requests) {
      decide_locally(request);
    }
  }

  // Marks the limiter degraded (logging the change once), schedules the next attempt
  // and decides `failed` and everything queued with the fallback.
  void mark_degraded(const std::string& reason, std::vector<Request> failed) {
    const auto delay = std::chrono::milliseconds(
        backoff_ms_ - std::uniform_int_distribution<int>(0, backoff_ms_ / 4)(random_));
    backoff_ms_ = std::min(backoff_ms_ * 2, options_.max_backoff_ms);
    bool was_degraded = false;
    std::deque<Request> queued;
    {
      std::lock_guard lock(mutex_);
      was_degraded = std::exchange(degraded_, true);
      reason_ = reason;
      next_attempt_ = SteadyClock::now() + delay;
      queued.swap(queue_);
    }
    if (!was_degraded) {
      spdlog::warn("rate limits: Redis {} unreachable ({}); {}", options_.url.display(), reason,
                   fallback_name());
    } else {
      spdlog::debug("rate limits: Redis {} still unreachable ({}); next attempt in {} ms",
                    options_.url.display(), reason, delay.count());
    }
    decide_all(failed);
    for (Request& request : queued) {
      decide_locally(request);
    }
  }

  void mark_recovered() {
    backoff_ms_ = std::min(kFirstBackoffMs, options_.max_backoff_ms);
    bool was_degraded = false;
    {
      std::lock_guard lock(mutex_);
      was_degraded = std::exchange(degraded_, false);
      reason_.clear();
    }
    if (was_degraded) spdlog::info("rate limits: Redis {} reachable again", options_.url.display());
  }

  RedisLimiterOptions options_;
  const std::unique_ptr<RateLimiter> local_;  // null only with deny_on_failure
  ThrottledWarning overflow_warning_;
  ThrottledWarning reply_warning_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Request> queue_;               // guarded by mutex_
  bool stopping_ = false;                   // guarded by mutex_
  bool degraded_ = false;                   // guarded by mutex_
  std::string reason_;                      // guarded by mutex_: why degraded
  SteadyClock::time_point next_attempt_{};  // guarded by mutex_: the next reconnection

  // The worker's own.
  std::optional<RedisSession> session_;
  int backoff_ms_ = kFirstBackoffMs;
  std::minstd_rand random_;

  std::thread worker_;  // last: started once everything above exists
};

}  // namespace

std::unique_ptr<RateLimiter> make_redis_rate_limiter(RedisLimiterOptions options,
                                                     std::unique_ptr<RateLimiter> local_fallback) {
  return std::make_unique<RedisRateLimiter>(std::move(options), std::move(local_fallback));
}

Status probe_redis(const RedisUrl& url) {
  Result<RedisSession> session = open_redis_session(url);
  Status status = session ? check_redis_session(*session, url) : session.status();
  if (status) return status;
  const char* what = status.code() == ErrorCode::busy ? "unreachable: " : "";
  return Status::error(status.code(),
                       fmt::format("redis {}: {}{}", url.display(), what, status.message()));
}

}  // namespace ticketaid
