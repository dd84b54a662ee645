// The HTTP and WebSocket server (Boost.Beast), behind a header without Beast.
//
// start_server binds the listener and starts accepting on the given io_context;
// every connection runs on its own strand of it. Requests are handed to the core
// services in ServerContext. Beast is included only in net/*.cpp.
//
// Thread-safety: start_server and Server's methods are called from the app's
// control thread; the server's own work runs on the io_context threads.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "core/ticket_service.h"
#include "llm/llm_client.h"
#include "store/store.h"
#include "util/status.h"

namespace boost::asio {
class io_context;
}

namespace ticketaid {

// Counters the server keeps for /ws/status and /metrics.
struct ServerStats {
  std::atomic<int64_t> total_connections{0};
  std::atomic<int64_t> current_connections{0};
  std::atomic<int64_t> peak_connections{0};
  std::atomic<int64_t> total_messages{0};

  void connection_opened() {
    ++total_connections;
    int64_t now = ++current_connections;
    int64_t peak = peak_connections.load();
    while (now > peak && !peak_connections.compare_exchange_weak(peak, now)) {
    }
  }
  void connection_closed() { --current_connections; }
};

// What the server's handlers use. Everything here outlives the server.
struct ServerContext {
  TicketService& tickets;
  Store& store;               // blocking: call only through `blocking`
  LlmClient& llm;             // blocking: call only through `blocking`
  BlockingExecutor blocking;  // runs store and model calls off the I/O threads
  SettingsSource settings;
  ServerStats& stats;
};

class Server {
 public:
  virtual ~Server() = default;
  // "HOST:PORT" actually bound (the port is known even when 0 was asked).
  virtual std::string local_address() const = 0;
  // Closes the listening socket; open connections are left alone.
  virtual void stop_accepting() = 0;
};

Result<std::unique_ptr<Server>> start_server(boost::asio::io_context& ioc,
                                             std::shared_ptr<const ServerContext> context);

}  // namespace ticketaid
