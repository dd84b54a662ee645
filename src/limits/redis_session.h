// Private to limits/: one blocking hiredis connection set up for the rate limiter's
// GCRA script, shared by the Redis limiter's worker and probe_redis.
//
// open_redis_session connects, authenticates, selects the database and loads the
// script; run_gcra sends one script call per request in a single pipeline. Errors
// name the server by RedisUrl::display() and never contain the password.
//
// Thread-safety: a RedisSession belongs to one thread at a time; the free functions
// are thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "limits/rate_limiter.h"
#include "util/redis_url.h"
#include "util/status.h"

struct redisContext;
struct redisReply;

namespace ticketaid::redis_detail {

struct ContextFree {
  void operator()(redisContext* context) const;
};
struct ReplyFree {
  void operator()(redisReply* reply) const;
};
using ContextPtr = std::unique_ptr<redisContext, ContextFree>;
using ReplyPtr = std::unique_ptr<redisReply, ReplyFree>;

struct RedisSession {
  ContextPtr context;
  std::string script_sha;  // from SCRIPT LOAD
  bool timed_out = false;  // the last connection failure was a timeout, not a broken link
};

// One decision to ask Redis for: the full key (prefix included; any bytes) and the limit.
struct GcraCall {
  std::string key;
  int per_minute = 1;
};

// What Redis answered for one call.
struct GcraReply {
  enum class Kind { decided, no_script, error, unanswered };
  Kind kind = Kind::unanswered;
  RateDecision decision;
  std::string error;  // the reply error (or what was unexpected) for Kind::error
};

// Connects with url.timeout_ms as the connect and command timeout, then AUTH, SELECT
// and SCRIPT LOAD. Errors: busy (unreachable or timed out), unauthorized (AUTH failed
// or required), bad_request (SELECT refused), internal (anything else).
Result<RedisSession> open_redis_session(const RedisUrl& url);

// Calls the script for each of `calls` (EVALSHA, or EVAL when by_sha is false), all
// in one pipeline, and fills `replies` (one per call). Returns an error (busy) when the
// connection failed, after which the session is unusable; the replies read before the
// failure are kept, the others are `unanswered`.
Status run_gcra(RedisSession& session, const RedisUrl& url, std::span<const GcraCall> calls,
                bool by_sha, std::vector<GcraReply>* replies);

// SCRIPT LOAD again (after a NOSCRIPT reply). Returns an error when it failed.
Status reload_gcra_script(RedisSession& session, const RedisUrl& url);

// PING and one script run on a throwaway key (deleted afterwards), for probe_redis.
Status check_redis_session(RedisSession& session, const RedisUrl& url);

}  // namespace ticketaid::redis_detail
