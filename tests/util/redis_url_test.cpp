// parse_redis_url: defaults, credentials with %-escapes, ACL users, IPv6 hosts, the
// database and timeout, and every refusal, whose message never repeats the password.
#include "util/redis_url.h"

#include <gtest/gtest.h>

#include <string>

namespace ticketaid {
namespace {

RedisUrl parse_ok(const std::string& text) {
  auto parsed = parse_redis_url(text);
  EXPECT_TRUE(parsed.is_ok()) << text << ": " << parsed.status().message();
  return parsed ? *parsed : RedisUrl{};
}

// The error for `text`, checked to be bad_request and to hold no secret.
std::string parse_error(const std::string& text) {
  auto parsed = parse_redis_url(text);
  EXPECT_FALSE(parsed.is_ok()) << text << " was accepted";
  if (parsed) return std::string();
  EXPECT_EQ(parsed.status().code(), ErrorCode::bad_request) << text;
  EXPECT_EQ(parsed.status().message().find("secret"), std::string::npos)
      << parsed.status().message();
  return parsed.status().message();
}

TEST(RedisUrlTest, Defaults) {
  const RedisUrl url = parse_ok("redis://");
  EXPECT_EQ(url.host, "127.0.0.1");
  EXPECT_EQ(url.port, 6379);
  EXPECT_EQ(url.db, 0);
  EXPECT_EQ(url.timeout_ms, 2000);
  EXPECT_TRUE(url.username.empty());
  EXPECT_TRUE(url.password.empty());
  EXPECT_EQ(url.display(), "127.0.0.1:6379/0");
}

TEST(RedisUrlTest, HostPortDbAndTimeout) {
  const RedisUrl url = parse_ok("redis://redis.internal:6380/5?timeout_ms=250");
  EXPECT_EQ(url.host, "redis.internal");
  EXPECT_EQ(url.port, 6380);
  EXPECT_EQ(url.db, 5);
  EXPECT_EQ(url.timeout_ms, 250);
  EXPECT_EQ(parse_ok("redis://h/0?timeout=75").timeout_ms, 75);
  EXPECT_EQ(parse_ok("redis://h:6379/").db, 0);
}

TEST(RedisUrlTest, PasswordWithPercentEscapes) {
  const RedisUrl url = parse_ok("redis://:p%40ss%3Aw%2Frd%25@10.0.0.5/1");
  EXPECT_TRUE(url.username.empty());
  EXPECT_EQ(url.password, "p@ss:w/rd%");
  EXPECT_EQ(url.host, "10.0.0.5");
  EXPECT_EQ(url.db, 1);
  // An unescaped @ in the password: the last @ ends the credentials.
  EXPECT_EQ(parse_ok("redis://:a@b@host").password, "a@b");
}

TEST(RedisUrlTest, UserAndPassword) {
  const RedisUrl url = parse_ok("redis://alice:secret@127.0.0.1:6379");
  EXPECT_EQ(url.username, "alice");
  EXPECT_EQ(url.password, "secret");
  EXPECT_EQ(url.display().find("secret"), std::string::npos);
  EXPECT_EQ(url.display().find("alice"), std::string::npos);
}

TEST(RedisUrlTest, Ipv6Host) {
  const RedisUrl url = parse_ok("redis://:secret@[::1]:6390/2");
  EXPECT_EQ(url.host, "::1");
  EXPECT_EQ(url.port, 6390);
  EXPECT_EQ(url.db, 2);
  EXPECT_EQ(url.display(), "[::1]:6390/2");
  const RedisUrl no_port = parse_ok("redis://[fd00::5]");
  EXPECT_EQ(no_port.host, "fd00::5");
  EXPECT_EQ(no_port.port, 6379);
  EXPECT_NE(parse_error("redis://[::1:6379").find("]"), std::string::npos);
  parse_error("redis://[::1]6379");
}

TEST(RedisUrlTest, TlsIsRefusedClearly) {
  const std::string error = parse_error("rediss://:secret@redis.example:6380");
  EXPECT_NE(error.find("TLS"), std::string::npos) << error;
}

TEST(RedisUrlTest, OtherSchemesAreRefused) {
  parse_error("http://127.0.0.1:6379");
  parse_error("127.0.0.1:6379");
  parse_error("");
}

TEST(RedisUrlTest, BadPorts) {
  for (const char* port : {"", "0", "65536", "-1", "abc", "63 79", "6379x", "99999999999"}) {
    const std::string error = parse_error(std::string("redis://:secret@host:") + port);
    EXPECT_NE(error.find("port"), std::string::npos) << port << ": " << error;
  }
  EXPECT_EQ(parse_ok("redis://host:65535").port, 65535);
  EXPECT_EQ(parse_ok("redis://host:1").port, 1);
}

TEST(RedisUrlTest, BadDatabases) {
  for (const char* path : {"x", "-1", "1/2", "0x1"}) {
    const std::string error = parse_error(std::string("redis://:secret@host/") + path);
    EXPECT_NE(error.find("database"), std::string::npos) << path << ": " << error;
  }
}

TEST(RedisUrlTest, BadTimeouts) {
  for (const char* value : {"0", "-5", "abc", "", "600001"}) {
    const std::string error = parse_error(std::string("redis://h?timeout_ms=") + value);
    EXPECT_NE(error.find("timeout_ms"), std::string::npos) << value << ": " << error;
  }
}

TEST(RedisUrlTest, UnknownParametersAreRefused) {
  const std::string error = parse_error("redis://:secret@h/0?timeout_ms=5&ssl=true");
  EXPECT_NE(error.find("ssl"), std::string::npos) << error;
}

TEST(RedisUrlTest, BadEscapesAreRefusedWithoutTheSecret) {
  parse_error("redis://:secret%zz@h");
  parse_error("redis://:secret%4@h");
  parse_error("redis://:secret%@h");
  parse_error("redis://us%er:secret@h");
  parse_error("redis://:secret%-1@h");  // not a hex byte, though a signed parse reads -1
  parse_error("redis://:secret%+f@h");
}

TEST(RedisUrlTest, BadHostsAreRefused) {
  parse_error("redis://:secret@bad host:6379");
  parse_error("redis://:secret@h#frag:6379");
}

}  // namespace
}  // namespace ticketaid
