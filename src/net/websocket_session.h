// A WebSocket connection speaking the ticket protocol (SPEC §2), on a ticket or a
// chat session (SPEC §3).
//
// Created by HttpSession when a request upgrades on /api/websocket/chat/{ticketId}
// or /ws/sessions/{sessionId} (the id already validated); it owns the socket from
// then on. All its work runs on the connection's strand: one read in flight, one write in flight,
// and a send queue bounded by ws.max_send_buffer_bytes. Replies arrive from the engine through a
// ReplySink that posts onto the strand. Access was decided before the upgrade
// (WebsocketAdmission); messages that ask for model work pass the rate limit first,
// and reading pauses until the limiter has decided, so messages keep their order.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "net/beast.h"
#include "net/server.h"

namespace ticketaid::net {

// What a socket is about: a ticket (/api/websocket/chat/{ticketId}) or a chat
// session (/ws/sessions/{sessionId}).
struct SocketTarget {
  enum Kind { ticket, chat } kind = ticket;
  std::string id;
};

// What access control decided before the upgrade (net/access.h).
struct WebsocketAdmission {
  Identity identity;
  ConnectionRegistry::Lease lease;  // the connection's place, held while it is open
  std::uint16_t close_code = 0;     // not 0: close with this code once upgraded
  std::string close_reason;
};

void start_websocket(tcp::socket socket, http::request<http::string_body> request,
                     SocketTarget target, WebsocketAdmission admission,
                     std::shared_ptr<const ServerContext> context);

}  // namespace ticketaid::net
