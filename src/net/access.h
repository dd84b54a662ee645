// Access control, one mechanism for HTTP and WebSocket (SPEC §4): the browser Origin
// policy, authentication into an Identity, and the rate limit of model work.
//
//   http_session (upgrade) ─┐
//                           ├─ admit(): Origin, then credentials → Identity or error
//   router (each request) ──┘
//   websocket_session (ticketBody, message) ─┐
//   router (the routes marked model work) ───┴─ take_rate(): the limiter's decision
//
// Over a limit: HTTP answers the Status's code (401, 403, 429 with Retry-After); a
// WebSocket is closed with 4002 / 4003 / 4008, or gets an error frame with
// retryAfterMs for the rate limit and stays open.
//
// Thread-safety: free functions of their arguments; take_rate's callback may run on
// any thread (the Redis limiter's own), so callers post back to their strand.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "limits/auth.h"
#include "limits/rate_limiter.h"
#include "util/config.h"
#include "util/status.h"

namespace ticketaid {

struct ServerContext;
struct HttpReply;

// What a request says about its sender, as received.
struct RequestFacts {
  std::string_view peer;           // the TCP peer's address
  std::string_view forwarded_for;  // X-Forwarded-For
  std::string_view origin;         // Origin; empty when absent
  std::string_view host;           // Host
  std::string_view authorization;  // Authorization
  std::string_view cookie;         // Cookie
  std::string_view query_token;    // ?token= (WebSocket upgrades only)
};

// The client's address after trusted proxies (server.trusted_proxies).
std::string client_address_of(const RequestFacts& facts, const Settings& settings);

// Origin first (forbidden), then, unless `public_route`, the credentials
// (unauthorized). A public route gets the anonymous identity of the address.
Result<Identity> admit(const RequestFacts& facts, const std::string& client_address,
                       bool public_route, const Settings& settings,
                       const Authenticator& authenticator);

// Counts one request for model work against the identity's rate limit.
void take_rate(const ServerContext& context, const Identity& identity,
               std::function<void(RateDecision)> done);

// The refusal as a Status ("rate limit of 60 messages per minute reached ...").
Status rate_limited(const RateDecision& decision, int per_minute);
// HTTP 429 with Retry-After (whole seconds, rounded up) and retryAfterMs in the body.
HttpReply rate_limited_reply(const RateDecision& decision, int per_minute);

// WebSocket close codes of SPEC §4.
inline constexpr std::uint16_t kCloseInvalidToken = 4002;
inline constexpr std::uint16_t kCloseForbidden = 4003;
inline constexpr std::uint16_t kCloseTooManyConnections = 4008;

}  // namespace ticketaid
