#include "net/access.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>

#include <fmt/format.h>

#include "limits/request_policy.h"
#include "net/http_api.h"
#include "net/server.h"
#include "util/metrics.h"
#include "util/network.h"

namespace ticketaid {
namespace {

// "2001:db8:1:2::/64" for an IPv6 address; IPv4 addresses as they are.
std::string address_block(const std::string& address) {
  auto network = parse_network(address);
  if (!network || network->family != AF_INET6) return address;
  char text[INET6_ADDRSTRLEN] = {};
  std::array<std::uint8_t, 16> prefix{};
  std::copy_n(network->bytes.begin(), 8, prefix.begin());
  inet_ntop(AF_INET6, prefix.data(), text, sizeof text);
  return std::string(text) + "/64";
}

}  // namespace

std::string client_address_of(const RequestFacts& facts, const Settings& settings) {
  return client_address(facts.peer, facts.forwarded_for, settings.server_trusted_proxies);
}

Result<Identity> admit(const RequestFacts& facts, const std::string& client_address,
                       bool public_route, const Settings& settings,
                       const Authenticator& authenticator) {
  if (!host_allowed(facts.host, settings.server_allowed_hosts, settings.server_allowed_origins)) {
    return Status::error(ErrorCode::forbidden,
                         "the Host header names no address of this daemon; an administrator "
                         "can add it to server.allowed_hosts");
  }
  if (!origin_allowed(facts.origin, facts.host, settings.server_allowed_origins)) {
    return Status::error(ErrorCode::forbidden,
                         "this page's origin may not call ticketaid; an administrator can add it "
                         "to server.allowed_origins");
  }
  if (public_route) return Identity{client_address, "", true, false};
  return authenticator.authenticate(
      {facts.authorization, facts.query_token, facts.cookie, client_address});
}

void take_rate(const ServerContext& context, const Identity& identity,
               std::function<void(RateDecision)> done) {
  const int per_minute = context.settings()->rate_limit_messages_per_minute;
  // Anonymous users are addresses; keep the two kinds of key apart. An IPv6 client
  // usually holds a whole /64, so that is what one bucket covers.
  const std::string key =
      identity.anonymous ? "ip:" + address_block(identity.user) : "user:" + identity.user;
  context.rate_limiter.take(key, per_minute, std::move(done));
}

Status rate_limited(const RateDecision& decision, int per_minute) {
  return Status::error(ErrorCode::rate_limited,
                       fmt::format("rate limit of {} requests per minute reached; retry in {} ms",
                                   per_minute, decision.retry_after_ms));
}

HttpReply rate_limited_reply(const RateDecision& decision, int per_minute) {
  const Status status = rate_limited(decision, per_minute);
  HttpReply reply = json_reply(429, {{"error",
                                      {{"code", "rate_limited"},
                                       {"message", status.message()},
                                       {"retryAfterMs", decision.retry_after_ms}}}});
  metrics().error(ErrorCode::rate_limited);
  reply.headers["Retry-After"] = std::to_string((decision.retry_after_ms + 999) / 1000);
  return reply;
}

}  // namespace ticketaid
