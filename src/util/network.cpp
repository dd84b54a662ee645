#include "util/network.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace ticketaid {
namespace {

// Parses an address into `out`; an IPv4-mapped IPv6 address becomes IPv4.
bool parse_address(std::string_view text, Network& out) {
  if (text.empty() || text.size() > 45) return false;
  const std::string copy(text);
  if (inet_pton(AF_INET, copy.c_str(), out.bytes.data()) == 1) {
    out.family = AF_INET;
    return true;
  }
  std::array<std::uint8_t, 16> v6{};
  if (inet_pton(AF_INET6, copy.c_str(), v6.data()) != 1) return false;
  static constexpr std::uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(v6.data(), kMapped, sizeof kMapped) == 0) {
    out.family = AF_INET;
    std::memcpy(out.bytes.data(), v6.data() + 12, 4);
    return true;
  }
  out.family = AF_INET6;
  out.bytes = v6;
  return true;
}

}  // namespace

std::optional<Network> parse_network(std::string_view text) {
  Network network;
  const std::size_t slash = text.find('/');
  if (!parse_address(text.substr(0, slash), network)) return std::nullopt;
  const int max_prefix = network.family == AF_INET ? 32 : 128;
  network.prefix = max_prefix;
  if (slash != std::string_view::npos) {
    const std::string_view digits = text.substr(slash + 1);
    int prefix = -1;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
    if (ec != std::errc() || end != digits.data() + digits.size() || digits.empty() || prefix < 0 ||
        prefix > max_prefix) {
      return std::nullopt;
    }
    network.prefix = prefix;
  }
  return network;
}

bool network_contains(const Network& network, std::string_view address) {
  Network candidate;
  if (!parse_address(address, candidate) || candidate.family != network.family) return false;
  const int full_bytes = network.prefix / 8;
  if (std::memcmp(candidate.bytes.data(), network.bytes.data(), full_bytes) != 0) return false;
  const int rest = network.prefix % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
  return (candidate.bytes[full_bytes] & mask) == (network.bytes[full_bytes] & mask);
}

bool in_any_network(std::span<const std::string> networks, std::string_view address) {
  for (const std::string& text : networks) {
    if (auto network = parse_network(text); network && network_contains(*network, address)) {
      return true;
    }
  }
  return false;
}

}  // namespace ticketaid
