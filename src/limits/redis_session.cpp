// A hiredis connection set up for the GCRA script (see redis_session.h).
#include "limits/redis_session.h"

#include <hiredis/hiredis.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <initializer_list>
#include <random>
#include <string_view>
#include <system_error>

#include <fmt/format.h>

namespace ticketaid::redis_detail {
namespace {

// GCRA with Redis' own clock, so that every node shares one time. KEYS[1] holds the
// theoretical arrival time (tat) in microseconds; ARGV[1] is the emission interval
// and ARGV[2] the burst tolerance, both in microseconds, as gcra() in
// rate_limiter.h. Returns {1, 0} when allowed, {0, retry_after_ms} when refused (the
// tat is then unchanged). The key expires once the bucket is full again. Numbers are
// written with %.0f: Lua 5.1's own conversion keeps only 14 digits.
constexpr std::string_view kScript = R"lua(
if redis.replicate_commands then redis.replicate_commands() end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '') or now
if tat < now then tat = now end
if tat - now > tolerance then
  return {0, math.ceil((tat - tolerance - now) / 1000)}
end
tat = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX',
           string.format('%.0f', math.max(1, math.ceil((tat - now) / 1000))))
return {1, 0}
)lua";

ReplyPtr command(redisContext* context, std::initializer_list<std::string_view> args) {
  std::vector<const char*> argv;
  std::vector<std::size_t> lengths;
  for (const std::string_view arg : args) {
    argv.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  return ReplyPtr(static_cast<redisReply*>(
      redisCommandArgv(context, static_cast<int>(argv.size()), argv.data(), lengths.data())));
}

// A message from Redis or the network with the password masked, should it ever be
// echoed back (very short passwords are left alone: masking them would garble).
std::string redact(std::string text, const RedisUrl& url) {
  if (url.password.size() < 4) return text;
  for (std::size_t at = text.find(url.password); at != std::string::npos;
       at = text.find(url.password, at + 3)) {
    text.replace(at, url.password.size(), "***");
  }
  return text;
}

// The connection failed (c->err is set): the session is unusable from here on.
Status link_failure(RedisSession& session, const RedisUrl& url) {
  const redisContext* context = session.context.get();
  const std::string_view text = context->errstr;
  session.timed_out =
      context->err == REDIS_ERR_IO && (text == std::generic_category().message(EAGAIN) ||
                                       text == std::generic_category().message(ETIMEDOUT));
  std::string reason = session.timed_out ? fmt::format("no answer within {} ms", url.timeout_ms)
                       : text.empty()    ? std::string("connection failed")
                                         : std::string(text);
  return Status::error(ErrorCode::busy, redact(std::move(reason), url));
}

std::string_view error_text(const redisReply& reply) {
  return std::string_view(reply.str != nullptr ? reply.str : "", reply.len);
}

// A reply error to `what` as a Status: credentials problems get their own codes.
Status reply_failure(std::string_view what, const redisReply& reply, ErrorCode otherwise,
                     const RedisUrl& url) {
  const std::string_view text = error_text(reply);
  ErrorCode code = otherwise;
  if (text.starts_with("NOAUTH") || text.starts_with("WRONGPASS")) code = ErrorCode::unauthorized;
  if (text.starts_with("NOPERM")) code = ErrorCode::forbidden;
  return Status::error(code, redact(fmt::format("{} refused: {}", what, text), url));
}

GcraReply read_gcra_reply(const redisReply& reply) {
  GcraReply out;
  if (reply.type == REDIS_REPLY_ERROR) {
    out.error = std::string(error_text(reply));
    out.kind =
        out.error.starts_with("NOSCRIPT") ? GcraReply::Kind::no_script : GcraReply::Kind::error;
    return out;
  }
  if (reply.type != REDIS_REPLY_ARRAY || reply.elements != 2 ||
      reply.element[0]->type != REDIS_REPLY_INTEGER ||
      reply.element[1]->type != REDIS_REPLY_INTEGER) {
    out.kind = GcraReply::Kind::error;
    out.error = fmt::format("an unexpected reply (type {}) to the script", reply.type);
    return out;
  }
  out.kind = GcraReply::Kind::decided;
  out.decision.allowed = reply.element[0]->integer == 1;
  out.decision.retry_after_ms = out.decision.allowed ? 0 : reply.element[1]->integer;
  return out;
}

timeval to_timeval(int ms) {
  timeval tv{};
  tv.tv_sec = ms / 1000;
  tv.tv_usec = static_cast<suseconds_t>(ms % 1000) * 1000;
  return tv;
}

}  // namespace

void ContextFree::operator()(redisContext* context) const {
  redisFree(context);
}

void ReplyFree::operator()(redisReply* reply) const {
  freeReplyObject(reply);
}

Result<RedisSession> open_redis_session(const RedisUrl& url) {
  RedisSession session;
  const timeval timeout = to_timeval(url.timeout_ms);
  session.context.reset(redisConnectWithTimeout(url.host.c_str(), url.port, timeout));
  if (!session.context) return Status::error(ErrorCode::busy, "out of memory");
  redisContext* context = session.context.get();
  if (context->err != 0 || redisSetTimeout(context, timeout) != REDIS_OK) {
    return link_failure(session, url);
  }
  if (!url.password.empty()) {
    const ReplyPtr reply = url.username.empty()
                               ? command(context, {"AUTH", url.password})
                               : command(context, {"AUTH", url.username, url.password});
    if (!reply) return link_failure(session, url);
    if (reply->type == REDIS_REPLY_ERROR) {
      return Status::error(
          ErrorCode::unauthorized,
          redact(fmt::format("authentication failed: {}", error_text(*reply)), url));
    }
  }
  if (url.db != 0) {
    const std::string db = std::to_string(url.db);
    const ReplyPtr reply = command(context, {"SELECT", db});
    if (!reply) return link_failure(session, url);
    if (reply->type == REDIS_REPLY_ERROR) {
      return reply_failure("SELECT " + db, *reply, ErrorCode::bad_request, url);
    }
  }
  if (Status status = reload_gcra_script(session, url); !status) return status;
  return Result<RedisSession>(std::move(session));
}

Status reload_gcra_script(RedisSession& session, const RedisUrl& url) {
  const ReplyPtr reply = command(session.context.get(), {"SCRIPT", "LOAD", kScript});
  if (!reply) return link_failure(session, url);
  if (reply->type == REDIS_REPLY_ERROR) {
    return reply_failure("SCRIPT LOAD", *reply, ErrorCode::internal, url);
  }
  if (reply->type != REDIS_REPLY_STRING) {
    return Status::error(ErrorCode::internal, "SCRIPT LOAD gave an unexpected reply");
  }
  session.script_sha.assign(reply->str, reply->len);
  return Status::ok();
}

Status run_gcra(RedisSession& session, const RedisUrl& url, std::span<const GcraCall> calls,
                bool by_sha, std::vector<GcraReply>* replies) {
  replies->assign(calls.size(), GcraReply{});
  redisContext* context = session.context.get();
  const std::string_view verb = by_sha ? "EVALSHA" : "EVAL";
  const std::string_view script = by_sha ? std::string_view(session.script_sha) : kScript;
  for (const GcraCall& call : calls) {
    // The integer steps of gcra(): T = 60 s / N in microseconds, tolerance T * (N - 1).
    const std::int64_t n = std::max(call.per_minute, 1);
    const std::int64_t interval = std::max<std::int64_t>(60'000'000 / n, 1);
    const std::string interval_text = std::to_string(interval);
    const std::string tolerance_text = std::to_string(interval * (n - 1));
    const char* argv[] = {verb.data(),     script.data(),         "1",
                          call.key.data(), interval_text.c_str(), tolerance_text.c_str()};
    const std::size_t lengths[] = {verb.size(),     script.size(),        1,
                                   call.key.size(), interval_text.size(), tolerance_text.size()};
    if (redisAppendCommandArgv(context, 6, argv, lengths) != REDIS_OK) {
      return link_failure(session, url);
    }
  }
  for (GcraReply& out : *replies) {
    void* raw = nullptr;
    if (redisGetReply(context, &raw) != REDIS_OK || raw == nullptr) {
      return link_failure(session, url);
    }
    const ReplyPtr reply(static_cast<redisReply*>(raw));
    out = read_gcra_reply(*reply);
  }
  return Status::ok();
}

Status check_redis_session(RedisSession& session, const RedisUrl& url) {
  redisContext* context = session.context.get();
  {
    const ReplyPtr reply = command(context, {"PING"});
    if (!reply) return link_failure(session, url);
    if (reply->type == REDIS_REPLY_ERROR) {
      return reply_failure("PING", *reply, ErrorCode::internal, url);
    }
  }
  std::random_device random;
  const GcraCall call{fmt::format("ticketaid:probe:{}:{:08x}", getpid(), random()), 1};
  std::vector<GcraReply> replies;
  if (Status status = run_gcra(session, url, std::span(&call, 1), true, &replies); !status) {
    return status;
  }
  if (replies[0].kind != GcraReply::Kind::decided) {
    return Status::error(ErrorCode::internal,
                         redact("the rate limit script failed: " + replies[0].error, url));
  }
  const ReplyPtr reply = command(context, {"DEL", call.key});
  if (!reply) return link_failure(session, url);
  return Status::ok();
}

}  // namespace ticketaid::redis_detail
