// Validation of identifiers that clients send in paths and messages.
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <string_view>

namespace ticketaid {

// True when id has 1 to max_size characters, each alphanumeric ASCII or in extra.
inline bool valid_id(std::string_view id, std::size_t max_size, std::string_view extra) {
  if (id.empty() || id.size() > max_size) return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              extra.find(c) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

// A ticket id: 1 to 128 characters of [A-Za-z0-9._:-] (SPEC §2).
inline bool valid_ticket_id(std::string_view id) {
  return valid_id(id, 128, "._:-");
}
// A chat session id (the store makes 32 hex digits): 1 to 64 of [A-Za-z0-9_-].
inline bool valid_session_id(std::string_view id) {
  return valid_id(id, 64, "_-");
}
// A user id: 1 to 128 of [A-Za-z0-9._@:-] (an e-mail address fits).
inline bool valid_user_id(std::string_view id) {
  return valid_id(id, 256, "._@:-|+");
}
// A client's messageId: 1 to 128 of [A-Za-z0-9._:-].
inline bool valid_message_id(std::string_view id) {
  return valid_id(id, 128, "._:-");
}

}  // namespace ticketaid
