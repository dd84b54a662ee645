#include "util/redis_url.h"

#include <cctype>
#include <charconv>

#include <fmt/format.h>

namespace ticketaid {
namespace {

std::optional<int> number_in(std::string_view text, int min, int max) {
  int value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value < min ||
      value > max) {
    return std::nullopt;
  }
  return value;
}

// %XX escapes, as a password may hold reserved characters.
std::optional<std::string> percent_decode(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    if (i + 2 >= text.size() || !std::isxdigit(static_cast<unsigned char>(text[i + 1])) ||
        !std::isxdigit(static_cast<unsigned char>(text[i + 2]))) {
      return std::nullopt;
    }
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(text.data() + i + 1, text.data() + i + 3, value, 16);
    if (ec != std::errc() || end != text.data() + i + 3) return std::nullopt;
    out += static_cast<char>(value);
    i += 2;
  }
  return out;
}

Status bad(std::string_view what) {
  return Status::error(ErrorCode::bad_request, fmt::format("redis.url: {}", what));
}

}  // namespace

std::string RedisUrl::display() const {
  return fmt::format("{}:{}/{}", host.find(':') != std::string::npos ? "[" + host + "]" : host,
                     port, db);
}

Result<RedisUrl> parse_redis_url(std::string_view url) {
  if (url.starts_with("rediss://")) {
    return bad(
        "rediss:// (TLS) is not supported by this build's hiredis; reach a remote Redis "
        "through a TLS tunnel and use redis://");
  }
  if (!url.starts_with("redis://")) return bad("must start with redis://");
  std::string_view rest = url.substr(8);
  RedisUrl out;

  std::string_view query;
  if (const std::size_t q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  std::string_view path;
  if (const std::size_t slash = rest.find('/'); slash != std::string_view::npos) {
    path = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
  }
  if (const std::size_t at = rest.rfind('@'); at != std::string_view::npos) {
    const std::string_view userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    const std::size_t colon = userinfo.find(':');
    auto user = percent_decode(userinfo.substr(0, colon));
    auto password = percent_decode(colon == std::string_view::npos ? std::string_view()
                                                                   : userinfo.substr(colon + 1));
    if (!user || !password) return bad("a bad %-escape in the user or password");
    out.username = std::move(*user);
    out.password = std::move(*password);
  }
  std::string_view host = rest;
  std::string_view port;
  if (host.starts_with('[')) {
    const std::size_t close = host.find(']');
    if (close == std::string_view::npos) return bad("an IPv6 host needs its closing ]");
    port = host.substr(close + 1);
    host = host.substr(1, close - 1);
    if (!port.empty() && !port.starts_with(':')) return bad("junk after the IPv6 host");
    if (!port.empty()) port.remove_prefix(1);
  } else if (const std::size_t colon = host.rfind(':'); colon != std::string_view::npos) {
    port = host.substr(colon + 1);
    host = host.substr(0, colon);
    if (port.empty()) return bad("the port must be from 1 to 65535");
  }
  if (!host.empty()) out.host = std::string(host);
  if (out.host.find_first_of(" /?#@") != std::string::npos) return bad("a bad host");
  if (!port.empty()) {
    const auto number = number_in(port, 1, 65535);
    if (!number) return bad("the port must be from 1 to 65535");
    out.port = *number;
  }
  if (!path.empty()) {
    const auto db = number_in(path, 0, 1000000);
    if (!db) return bad("the path must be a database number, as /0");
    out.db = *db;
  }
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const std::size_t eq = pair.find('=');
    const std::string_view name = pair.substr(0, eq);
    const std::string_view value =
        eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    if (name == "timeout_ms" || name == "timeout") {
      const auto number = number_in(value, 1, 600000);
      if (!number) return bad("timeout_ms must be from 1 to 600000");
      out.timeout_ms = *number;
    } else {
      return bad(fmt::format("unknown parameter {} (only timeout_ms is known)", name));
    }
  }
  return out;
}

}  // namespace ticketaid
