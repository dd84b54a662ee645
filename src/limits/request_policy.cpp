#include "limits/request_policy.h"

#include <algorithm>
#include <cctype>

#include "util/network.h"

namespace ticketaid {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// "[::1]" -> "::1"; other forms as they are.
std::string_view unbracket(std::string_view address) {
  if (address.size() > 2 && address.front() == '[' && address.back() == ']') {
    return address.substr(1, address.size() - 2);
  }
  return address;
}

bool is_address(std::string_view text) {
  return parse_network(text).has_value() && text.find('/') == std::string_view::npos;
}

}  // namespace

std::string client_address(std::string_view peer, std::string_view forwarded_for,
                           std::span<const std::string> trusted_proxies) {
  if (trusted_proxies.empty() || forwarded_for.empty() || !in_any_network(trusted_proxies, peer)) {
    return std::string(peer);
  }
  // Only the right end matters (what the trusted proxies wrote); a long header is cut
  // to its last 4 KiB, without the entry the cut went through.
  std::string_view rest = forwarded_for;
  if (rest.size() > 4096) {
    rest = rest.substr(rest.size() - 4096);
    const std::size_t comma = rest.find(',');
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
  }
  while (!rest.empty()) {
    const std::size_t comma = rest.rfind(',');
    const std::string_view entry =
        unbracket(trim(comma == std::string_view::npos ? rest : rest.substr(comma + 1)));
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(0, comma);
    if (!is_address(entry)) return std::string(peer);  // a forged or broken header
    if (rest.empty() || !in_any_network(trusted_proxies, entry)) return std::string(entry);
  }
  return std::string(peer);
}

bool host_allowed(std::string_view host, std::span<const std::string> allowed_hosts,
                  std::span<const std::string> allowed_origins) {
  host = trim(host);
  if (host.empty()) return true;
  std::string_view name = host;
  if (name.front() == '[') {  // an IPv6 literal, with or without a port
    return name.find(']') != std::string_view::npos;
  }
  if (const std::size_t colon = name.find(':'); colon != std::string_view::npos) {
    name = name.substr(0, colon);
  }
  const std::string lowered = lower(name);
  if (lowered == "localhost" || is_address(lowered)) return true;
  if (std::find(allowed_hosts.begin(), allowed_hosts.end(), lowered) != allowed_hosts.end()) {
    return true;
  }
  for (const std::string& origin : allowed_origins) {  // normalized: scheme://host[:port]
    const std::size_t start = origin.find("://");
    if (start == std::string::npos) continue;
    std::string_view origin_host = std::string_view(origin).substr(start + 3);
    if (!origin_host.starts_with('[')) origin_host = origin_host.substr(0, origin_host.find(':'));
    if (origin_host == lowered) return true;
  }
  return false;
}

bool origin_allowed(std::string_view origin, std::string_view host,
                    std::span<const std::string> allowed) {
  if (origin.empty()) return true;
  std::string normalized = lower(trim(origin));
  while (normalized.ends_with('/')) {
    normalized.pop_back();
  }
  if (std::find(allowed.begin(), allowed.end(), normalized) != allowed.end()) return true;
  const std::size_t scheme = normalized.find("://");
  if (scheme == std::string::npos || host.empty()) return false;
  const std::string_view scheme_name = std::string_view(normalized).substr(0, scheme);
  if (scheme_name != "http" && scheme_name != "https") return false;
  return std::string_view(normalized).substr(scheme + 3) == lower(trim(host));
}

}  // namespace ticketaid
