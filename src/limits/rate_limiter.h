// Rate limiting: how often a user (or an anonymous address) may ask for model work.
//
// SPEC §4: a token bucket whose burst equals the per-minute limit, refilled evenly
// over the minute. Both implementations use GCRA, the token bucket written as one
// "theoretical arrival time" per key: from a full bucket N requests pass at once,
// the N+1st is refused, and one more passes every 60/N seconds.
//
//   make_local_rate_limiter   in this process; memory bounded by an LRU of keys.
//   make_redis_rate_limiter   (redis_rate_limiter.cpp) in Redis, shared by every node
//                             that uses the same Redis; one Lua script per decision.
//
// Thread-safety: every method may be called from any thread. take() never blocks
// its caller: the local limiter calls `done` before returning, the Redis limiter
// calls it later from its own thread. Callers on an I/O strand post back to it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "util/clock.h"
#include "util/status.h"

namespace ticketaid {

struct RateDecision {
  bool allowed = true;
  std::int64_t retry_after_ms = 0;  // when refused: wait at least this long
};

// What /ready, /metrics and doctor show about a limiter.
struct RateLimiterHealth {
  std::string backend;    // "local" or "redis"
  bool degraded = false;  // Redis is configured but unreachable: the fallback decides
  std::string detail;     // e.g. "redis 127.0.0.1:6379/0 unreachable: Connection refused"
};

class RateLimiter {
 public:
  virtual ~RateLimiter() = default;
  // Takes one request for `key` at `per_minute` (>= 1) and reports the decision.
  virtual void take(const std::string& key, int per_minute,
                    std::function<void(RateDecision)> done) = 0;
  virtual RateLimiterHealth health() const = 0;
};

// max_keys: keys remembered; the least recently used is forgotten beyond it (a
// forgotten key starts again with a full bucket).
std::unique_ptr<RateLimiter> make_local_rate_limiter(const Clock& clock, std::size_t max_keys);

// The GCRA step, in microseconds so that a limit that does not divide a minute into
// whole milliseconds still refills at its pace. With `tat_us` the key's stored
// theoretical arrival time (0 when none), decides a request at `now_us` and gives the
// new tat (unchanged when refused). The Redis script computes the same.
struct GcraStep {
  RateDecision decision;
  std::int64_t new_tat_us = 0;
};
GcraStep gcra(std::int64_t tat_us, std::int64_t now_us, int per_minute);

}  // namespace ticketaid
