// The HTTP and WebSocket server (Boost.Beast), behind a header without Beast.
//
// start_server binds the listener (or adopts a listening socket that systemd passed,
// socket activation) and starts accepting on the given io_context; every
// connection runs on its own strand of it. Requests are handed to the core
// services in ServerContext. Beast is included only in net/*.cpp.
//
// Thread-safety: start_server and Server's methods are called from the app's
// control thread; the server's own work runs on the io_context threads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/chat_service.h"
#include "core/health_monitor.h"
#include "core/ticket_service.h"
#include "limits/auth.h"
#include "limits/connection_registry.h"
#include "limits/rate_limiter.h"
#include "llm/llm_client.h"
#include "net/socket_hub.h"
#include "store/store.h"
#include "util/status.h"

namespace boost::asio {
class io_context;
}

namespace ticketaid {

// What the server's handlers use. Everything here outlives the server.
struct ServerContext {
  TicketService& tickets;
  ChatService& chats;
  Store& store;               // blocking: call only through `blocking`
  LlmClient& llm;             // blocking: call only through `blocking`
  BlockingExecutor blocking;  // runs store and model calls off the I/O threads
  SettingsSource settings;
  HealthMonitor& health;
  const Authenticator& authenticator;
  RateLimiter& rate_limiter;
  ConnectionRegistry& connections;  // open WebSockets, in total and per user
  SocketHub& sockets;               // open WebSockets, to close on stop
  Mirror* mirror = nullptr;         // the MongoDB mirror; nullptr while it is off
};

class Server {
 public:
  virtual ~Server() = default;
  // "HOST:PORT" actually bound (the port is known even when 0 was asked).
  virtual std::string local_address() const = 0;
  // Closes the listening socket; open connections are left alone.
  virtual void stop_accepting() = 0;
};

// adopted_fd: a listening TCP socket to accept on instead of binding
// server.listen (-1: bind). The server owns it from then on, also on failure.
Result<std::unique_ptr<Server>> start_server(boost::asio::io_context& ioc,
                                             std::shared_ptr<const ServerContext> context,
                                             int adopted_fd = -1);

}  // namespace ticketaid
