// Validation of identifiers that clients send in paths and messages.
// Thread-safety: pure functions.
#pragma once

#include <string_view>

namespace ticketaid {

// A ticket id: 1 to 128 characters of [A-Za-z0-9._:-] (SPEC §2).
inline bool valid_ticket_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace ticketaid
