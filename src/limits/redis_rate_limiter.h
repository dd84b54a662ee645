// The Redis rate limiter (hiredis 0.14): GCRA in one Lua script per decision, so that
// every node using the same Redis shares each user's limit.
//
// Calls to Redis run on the limiter's own thread, never on an I/O thread; requests
// wait in a bounded queue. When Redis cannot be reached the limiter is degraded: it
// logs the change once, decides with `fallback` (on_failure = "local": the local
// limiter; "deny": refuse), and reconnects with capped exponential backoff. The
// recovery is logged once as well.
//
// Thread-safety: as RateLimiter, except that `done` may also run on the caller's
// thread before take() returns: when the fallback decides (Redis down, the queue
// full, the limiter stopping). The destructor stops the thread; pending requests
// are decided by the fallback.
#pragma once

#include <memory>
#include <string>

#include "limits/rate_limiter.h"
#include "util/redis_url.h"

namespace ticketaid {

struct RedisLimiterOptions {
  RedisUrl url;
  bool deny_on_failure = false;  // redis.on_failure = "deny"
  std::string key_prefix = "ticketaid:rl:";
  std::size_t max_pending = 10000;  // queued decisions beyond this use the fallback
  int max_backoff_ms = 30000;       // reconnect attempts back off up to this
};

std::unique_ptr<RateLimiter> make_redis_rate_limiter(RedisLimiterOptions options,
                                                     std::unique_ptr<RateLimiter> local_fallback);

// For `ticketaid doctor`: connects, authenticates, selects the db and runs PING and
// the limiter's script once. Says what failed, without the password.
Status probe_redis(const RedisUrl& url);

}  // namespace ticketaid
