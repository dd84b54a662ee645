// Service endpoints: liveness and connection statistics.
#include "net/router.h"

namespace ticketaid::handlers {

void health(HttpRequest&, const std::shared_ptr<HttpResponder>& responder,
            const std::shared_ptr<const ServerContext>&) {
  responder->reply(json_reply(200, {{"status", "ok"}}));
}

void ws_status(HttpRequest&, const std::shared_ptr<HttpResponder>& responder,
               const std::shared_ptr<const ServerContext>& context) {
  const auto& s = context->stats;
  responder->reply(
      json_reply(200, {{"status", "ready"},
                       {"stats",
                        {{"total_connections", s.total_connections.load()},
                         {"current_connections", s.current_connections.load()},
                         {"peak_connections", s.peak_connections.load()},
                         {"total_messages", s.total_messages.load()},
                         {"active_generations", context->tickets.active_generations()}}}}));
}

}  // namespace ticketaid::handlers
