// IP addresses and networks (CIDR), for server.trusted_proxies.
//
// Plain values; every function is thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace ticketaid {

struct Network {
  int family = 0;                        // AF_INET or AF_INET6
  std::array<std::uint8_t, 16> bytes{};  // the address, 4 or 16 bytes used
  int prefix = 0;                        // leading bits that must match
};

// "10.0.0.0/8", "192.168.1.7" (a /32), "::1", "fd00::/8"; nullopt when not valid.
std::optional<Network> parse_network(std::string_view text);

// True when `address` (an IP address as text; an IPv4-mapped IPv6 address counts
// as IPv4) lies in `network`.
bool network_contains(const Network& network, std::string_view address);

// True when `address` lies in any of `networks` (texts that parse_network accepts).
bool in_any_network(std::span<const std::string> networks, std::string_view address);

}  // namespace ticketaid
