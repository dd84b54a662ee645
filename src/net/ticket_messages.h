// Client-to-server messages of the ticket protocol (SPEC §2), parsed into structs
// at the edge. No Beast here: the WebSocket and HTTP layers both use it.
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>
#include <variant>

#include "util/status.h"

namespace ticketaid {

struct AskMessage {  // {"ticketBody": "...", "regenerate": bool?}
  std::string ticket_body;
  bool regenerate = false;
};
struct FollowUpMessage {  // {"type": "message", "content": "...", "messageId": "..."?}
  std::string content;
  std::string message_id;
};
struct CancelMessage {};
struct PingMessage {};

using TicketClientMessage = std::variant<AskMessage, FollowUpMessage, CancelMessage, PingMessage>;

// Errors are bad_request with a message saying what is wrong.
Result<TicketClientMessage> parse_ticket_message(std::string_view text);

}  // namespace ticketaid
