// The HTTP side of the API without Beast: a parsed request, a responder that a
// handler answers through (at once, later from another thread, or as a stream),
// and the JSON helpers every endpoint shares (SPEC §3 errors and pagination).
//
// Thread-safety: HttpResponder's methods may be called from any thread, once a
// request has been handed over; the responder posts onto the connection's strand.
// A handler answers exactly once: reply(), or start_stream() ... end_stream().
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "limits/auth.h"
#include "util/status.h"

namespace ticketaid {

struct HttpRequest {
  std::string method;
  std::string path;                           // as sent (percent-encoded), without the query
  std::map<std::string, std::string> query;   // decoded query parameters
  std::map<std::string, std::string> params;  // path parameters ({ticketId})
  std::string body;
  std::string accept;
  // Read by the web console's files (net/static_files.cpp): the form POST's type,
  // compression and conditional requests.
  std::string content_type;
  std::string accept_encoding;
  std::string if_none_match;
  std::string client_address;  // after trusted proxies (server.trusted_proxies)
  // Headers that access control reads (net/access.h).
  std::string origin;
  std::string host;
  std::string authorization;
  std::string cookie;
  std::string forwarded_for;
  std::string peer;   // the TCP peer
  Identity identity;  // set by the router once the request is admitted
};

struct HttpReply {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::map<std::string, std::string> headers;
};

class HttpResponder {
 public:
  virtual ~HttpResponder() = default;
  virtual void reply(HttpReply reply) = 0;
  // A streamed body (chunked transfer encoding), one write per chunk.
  virtual void start_stream(int status, std::string content_type) = 0;
  virtual void write_chunk(std::string chunk) = 0;
  virtual void end_stream() = 0;
  // True once the client has gone away (stop producing).
  virtual bool closed() const = 0;
  // Runs hook (on some thread) when the client goes away before the answer is
  // complete; at once if it already has.
  virtual void on_close(std::function<void()> hook) = 0;
};

HttpReply json_reply(int status, const nlohmann::json& body);
HttpReply no_content();
// {"error": {"code", "message"}} with the status of the code (SPEC §3, §5).
HttpReply error_reply(const Status& status);
HttpReply error_reply(int http_status, ErrorCode code, std::string message);

// A list page of SPEC §3: limit (default 50, 1..500) and offset (>= 0).
struct Page {
  int limit = 50;
  int64_t offset = 0;
};
Result<Page> parse_page(const HttpRequest& request);
nlohmann::json page_json(nlohmann::json items, int64_t total, const Page& page);

// Parses the body as a JSON object, or a bad_request naming what is wrong.
Result<nlohmann::json> parse_json_object(std::string_view body);

// Percent-decoding for paths and query strings; nullopt when malformed.
std::optional<std::string> url_decode(std::string_view text, bool plus_is_space);
std::map<std::string, std::string> parse_query(std::string_view query);

}  // namespace ticketaid
