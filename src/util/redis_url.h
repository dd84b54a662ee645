// redis://[[user]:password@]host[:port][/db][?timeout_ms=N], for redis.url.
//
// hiredis 0.14 has no URL parser and no TLS, so the URL is read here; rediss:// is
// refused. Plain values; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "util/status.h"

namespace ticketaid {

struct RedisUrl {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string username;  // Redis 6 ACL user; empty: the default user
  std::string password;  // empty: no AUTH
  int db = 0;
  int timeout_ms = 2000;  // connect and command timeout

  // "host:port/db", without credentials: safe to log.
  std::string display() const;
};

// The URL's parts; an error names what is wrong without repeating the password.
Result<RedisUrl> parse_redis_url(std::string_view url);

}  // namespace ticketaid
