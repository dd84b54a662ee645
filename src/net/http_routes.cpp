#include "net/http_routes.h"

#include <nlohmann/json.hpp>

namespace ticketaid {
namespace {

using nlohmann::json;

std::string_view path_of(std::string_view target) {
  auto q = target.find('?');
  return q == std::string_view::npos ? target : target.substr(0, q);
}

HttpReply json_reply(int status, const json& body) {
  return {status, "application/json", body.dump()};
}

}  // namespace

HttpReply error_reply(int http_status, ErrorCode code, std::string message) {
  return json_reply(http_status,
                    {{"error", {{"code", to_string(code)}, {"message", std::move(message)}}}});
}

HttpReply error_reply(const Status& status) {
  return error_reply(http_status(status.code()), status.code(), status.message());
}

HttpReply route_http(const HttpRequestView& request, const ServerContext& context) {
  const auto path = path_of(request.target);
  if (path == "/health") {
    if (request.method != "GET" && request.method != "HEAD") {
      return error_reply(405, ErrorCode::bad_request, "use GET");
    }
    return json_reply(200, {{"status", "ok"}});
  }
  if (path == "/ws/status") {
    const auto& s = context.stats;
    return json_reply(200, {{"status", "ready"},
                            {"stats",
                             {{"total_connections", s.total_connections.load()},
                              {"current_connections", s.current_connections.load()},
                              {"peak_connections", s.peak_connections.load()},
                              {"total_messages", s.total_messages.load()},
                              {"active_generations", context.tickets.active_generations()}}}});
  }
  return error_reply(404, ErrorCode::not_found, "no such endpoint: " + std::string(path));
}

}  // namespace ticketaid
