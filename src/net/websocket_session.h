// A WebSocket connection speaking the ticket protocol (SPEC §2), on a ticket or a
// chat session (SPEC §3).
//
// Created by HttpSession when a request upgrades on /api/websocket/chat/{ticketId}
// or /ws/sessions/{sessionId} (the id already validated); it owns the socket from
// then on. All its work runs on the connection's strand: one read in flight, one write in flight,
// and a send queue bounded by ws.max_send_buffer_bytes. Replies arrive from the engine through a
// ReplySink that posts onto the strand.
#pragma once

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

void start_websocket(tcp::socket socket, http::request<http::string_body> request,
                     SocketTarget target, std::shared_ptr<const ServerContext> context);

}  // namespace ticketaid::net
