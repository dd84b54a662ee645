// Plain HTTP endpoints (everything that is not a WebSocket upgrade), without Beast:
// a request in, a response out. http_session.cpp adapts them to Beast.
//
// Thread-safety: route_http may be called from any I/O thread; it must not block.
#pragma once

#include <string>
#include <string_view>

#include "net/server.h"

namespace ticketaid {

struct HttpRequestView {
  std::string_view method;
  std::string_view target;  // path and query
  std::string_view body;
};

struct HttpReply {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
};

// A JSON error body of SPEC §3: {"error": {"code": ..., "message": ...}}.
HttpReply error_reply(const Status& status);
HttpReply error_reply(int http_status, ErrorCode code, std::string message);

HttpReply route_http(const HttpRequestView& request, const ServerContext& context);

}  // namespace ticketaid
