// One HTTP connection: reads requests under the header, body and time limits,
// answers plain requests through route_http, and hands WebSocket upgrades to the
// WebSocket session for the path.
#pragma once

#include <memory>

#include "net/beast.h"
#include "net/server.h"

namespace ticketaid::net {

void start_http_session(tcp::socket socket, std::shared_ptr<const ServerContext> context);

}  // namespace ticketaid::net
