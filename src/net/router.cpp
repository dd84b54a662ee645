#include "net/router.h"

#include "net/access.h"

#include <array>
#include <optional>
#include <string_view>
#include <vector>

namespace ticketaid {
namespace {

// Who may call a route, and whether a call counts against the rate limit.
enum class Access {
  open,        // health, readiness, metrics: no credentials (the Origin policy applies)
  user,        // credentials per auth.mode
  model_work,  // credentials, and one request of the rate limit (SPEC §4)
};

struct Route {
  std::string_view method;
  std::string_view pattern;
  HttpHandler handler;
  Access access = Access::user;
};

constexpr std::array kRoutes{
    Route{"GET", "/health", handlers::health, Access::open},
    Route{"GET", "/ready", handlers::ready, Access::open},
    Route{"GET", "/metrics", handlers::prometheus_metrics, Access::open},
    Route{"GET", "/ws/status", handlers::ws_status, Access::open},
    Route{"GET", "/api/models", handlers::list_models},
    Route{"GET", "/api/tickets", handlers::list_tickets},
    Route{"GET", "/api/tickets/{ticketId}/ai-session", handlers::get_ticket_session},
    Route{"POST", "/api/tickets/{ticketId}/ai-session", handlers::post_ticket_session,
          Access::model_work},
    Route{"DELETE", "/api/tickets/{ticketId}/ai-session", handlers::delete_ticket_session},
    Route{"GET", "/api/tickets/{ticketId}/ai-session/revisions", handlers::list_ticket_revisions},
    Route{"GET", "/api/tickets/{ticketId}/conversation", handlers::ticket_conversation},
    Route{"POST", "/api/sessions", handlers::create_session, Access::model_work},
    Route{"GET", "/api/sessions/{id}", handlers::get_session},
    Route{"DELETE", "/api/sessions/{id}", handlers::delete_session},
    Route{"POST", "/api/sessions/{id}/messages", handlers::append_message, Access::model_work},
    Route{"GET", "/api/sessions/{id}/messages", handlers::list_messages},
    Route{"GET", "/api/users/{userId}/sessions", handlers::list_user_sessions},
    Route{"POST", "/api/chat/session/start", handlers::start_chat, Access::model_work},
    Route{"POST", "/api/chat/session", handlers::continue_chat, Access::model_work},
    Route{"GET", "/api/chat/session/{id}/history", handlers::list_messages},
    // The web console (net/static_files.cpp).
    Route{"GET", "/", handlers::web_page, Access::open},
    Route{"GET", "/tickets/{ticketId}", handlers::web_page, Access::open},
    Route{"POST", "/tickets/{ticketId}", handlers::web_posted_ticket, Access::open},
    Route{"GET", "/chat", handlers::web_page, Access::open},
    Route{"GET", "/history", handlers::web_page, Access::open},
    Route{"GET", "/status", handlers::web_page, Access::open},
    Route{"GET", "/static/{file}", handlers::web_asset, Access::open},
    Route{"GET", "/static/vendor/{file}", handlers::web_asset, Access::open},
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

// Access control (net/access.h), then the handler; the rate limiter may decide on
// another thread, where the handler then runs (handlers only post work onward).
void admit_and_handle(const Route& route, HttpRequest request,
                      const std::shared_ptr<HttpResponder>& responder,
                      const std::shared_ptr<const ServerContext>& context) {
  const auto settings = context->settings();
  const RequestFacts facts{request.peer,      request.forwarded_for, request.origin,
                           request.host,      request.authorization, request.cookie,
                           /*query_token=*/{}};
  auto identity = admit(facts, request.client_address, route.access == Access::open, *settings,
                        context->authenticator);
  if (!identity) return responder->reply(error_reply(identity.status()));
  request.identity = std::move(identity.value());
  if (route.access != Access::model_work) return route.handler(request, responder, context);

  const Identity who = request.identity;
  const int per_minute = settings->rate_limit_messages_per_minute;
  take_rate(*context, who,
            [handler = route.handler, request = std::move(request), responder, context,
             per_minute](RateDecision decision) mutable {
              if (!decision.allowed) {
                return responder->reply(rate_limited_reply(decision, per_minute));
              }
              handler(request, responder, context);
            });
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
      return admit_and_handle(route, std::move(request), responder, context);
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
