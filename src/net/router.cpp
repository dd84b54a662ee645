#include "net/router.h"

#include <array>
#include <optional>
#include <string_view>
#include <vector>

namespace ticketaid {
namespace {

struct Route {
  std::string_view method;
  std::string_view pattern;
  HttpHandler handler;
};

constexpr std::array kRoutes{
    Route{"GET", "/health", handlers::health},
    Route{"GET", "/ready", handlers::ready},
    Route{"GET", "/metrics", handlers::prometheus_metrics},
    Route{"GET", "/ws/status", handlers::ws_status},
    Route{"GET", "/api/models", handlers::list_models},
    Route{"GET", "/api/tickets", handlers::list_tickets},
    Route{"GET", "/api/tickets/{ticketId}/ai-session", handlers::get_ticket_session},
    Route{"POST", "/api/tickets/{ticketId}/ai-session", handlers::post_ticket_session},
    Route{"DELETE", "/api/tickets/{ticketId}/ai-session", handlers::delete_ticket_session},
    Route{"GET", "/api/tickets/{ticketId}/ai-session/revisions", handlers::list_ticket_revisions},
    Route{"GET", "/api/tickets/{ticketId}/conversation", handlers::ticket_conversation},
    Route{"POST", "/api/sessions", handlers::create_session},
    Route{"GET", "/api/sessions/{id}", handlers::get_session},
    Route{"DELETE", "/api/sessions/{id}", handlers::delete_session},
    Route{"POST", "/api/sessions/{id}/messages", handlers::append_message},
    Route{"GET", "/api/sessions/{id}/messages", handlers::list_messages},
    Route{"GET", "/api/users/{userId}/sessions", handlers::list_user_sessions},
    Route{"POST", "/api/chat/session/start", handlers::start_chat},
    Route{"POST", "/api/chat/session", handlers::continue_chat},
    Route{"GET", "/api/chat/session/{id}/history", handlers::list_messages},
};

std::vector<std::string_view> segments(std::string_view path) {
  std::vector<std::string_view> out;
  while (!path.empty()) {
    if (path.front() == '/') {
      path.remove_prefix(1);
      continue;
    }
    auto slash = path.find('/');
    out.push_back(path.substr(0, slash));
    path = slash == std::string_view::npos ? std::string_view() : path.substr(slash);
  }
  return out;
}

// The path's segments, each percent-decoded after the split, so that an encoded "/"
// stays inside its segment (RFC 3986 §2.2); nullopt when an encoding is malformed.
std::optional<std::vector<std::string>> decoded_segments(std::string_view path) {
  std::vector<std::string> out;
  for (auto segment : segments(path)) {
    auto decoded = url_decode(segment, false);
    if (!decoded) return std::nullopt;
    out.push_back(std::move(*decoded));
  }
  return out;
}

bool match(std::string_view pattern, const std::vector<std::string>& path,
           std::map<std::string, std::string>& params) {
  auto parts = segments(pattern);
  if (parts.size() != path.size()) return false;
  std::map<std::string, std::string> found;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (parts[i].size() > 2 && parts[i].front() == '{' && parts[i].back() == '}') {
      found.emplace(std::string(parts[i].substr(1, parts[i].size() - 2)), path[i]);
    } else if (parts[i] != path[i]) {
      return false;
    }
  }
  params = std::move(found);
  return true;
}

}  // namespace

void dispatch_http(HttpRequest request, const std::shared_ptr<HttpResponder>& responder,
                   const std::shared_ptr<const ServerContext>& context) {
  const auto decoded = decoded_segments(request.path);
  if (!decoded) {
    return responder->reply(error_reply(400, ErrorCode::bad_request, "malformed percent-encoding"));
  }
  const auto& path = *decoded;
  std::string allowed;
  const bool head = request.method == "HEAD";
  for (const auto& route : kRoutes) {
    std::map<std::string, std::string> params;
    if (!match(route.pattern, path, params)) continue;
    if (route.method == request.method || (head && route.method == "GET")) {
      request.params = std::move(params);
      route.handler(request, responder, context);
      return;
    }
    if (!allowed.empty()) allowed += ", ";
    allowed += route.method;
  }
  if (!allowed.empty()) {
    auto reply = error_reply(405, ErrorCode::bad_request,
                             request.method + " is not allowed here; use " + allowed);
    reply.headers["Allow"] = allowed;
    responder->reply(std::move(reply));
    return;
  }
  responder->reply(error_reply(404, ErrorCode::not_found, "no such endpoint: " + request.path));
}

}  // namespace ticketaid
