// Checks on who a request comes from, before it is authenticated: the client's
// address (X-Forwarded-For believed only from trusted proxies) and the browser
// Origin policy against cross-site requests and WebSocket hijacking (SPEC §4).
//
// Plain functions of their arguments; thread-safe.
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace ticketaid {

// The address to treat as the client. When `peer` is one of `trusted_proxies`
// (addresses or CIDR networks), the X-Forwarded-For list is walked from the right,
// skipping trusted entries; the first untrusted entry is the client. Otherwise, or
// when the header is absent or malformed, the peer itself.
std::string client_address(std::string_view peer, std::string_view forwarded_for,
                           std::span<const std::string> trusted_proxies);

// Against DNS rebinding: a page on a name the attacker controls, re-pointed at this
// daemon's address, is same-origin for the browser and sends no Origin on GETs. So
// the Host header must name the daemon: an IP literal, "localhost", a name in
// `allowed_hosts`, or the host of one of `allowed_origins`. An empty Host (HTTP/1.0)
// is allowed.
bool host_allowed(std::string_view host, std::span<const std::string> allowed_hosts,
                  std::span<const std::string> allowed_origins);

// A request without an Origin header (empty) is allowed: it is not a browser page.
// Otherwise the Origin must be the daemon's own (its host[:port] equals the Host
// header the browser sent) or one of `allowed` (normalized scheme://host[:port]).
bool origin_allowed(std::string_view origin, std::string_view host,
                    std::span<const std::string> allowed);

}  // namespace ticketaid
