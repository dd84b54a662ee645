// The web console (src/web), served from the copy embedded in the binary
// (web/assets.h): pages, their modules and styles, and the Markdown libraries.
//
// Every answer carries the Content-Security-Policy that keeps model output inert
// (no inline scripts or handlers, no plugins, no foreign connections; innerHTML only
// through DOMPurify's Trusted Types policy), nosniff, and a same-origin referrer
// policy (a ticket's address may hold its text; no-referrer would also blank the
// Origin of the console's own form POSTs, which the Origin check then refuses).
//
// Caching: pages and the console's own files are revalidated on every use
// (no-cache + ETag, 304 when unchanged), so an upgraded daemon is seen at once; the
// libraries, whose names carry their version, are kept for a year. A gzip copy is
// sent to clients that accept it.
//
// Thread-safety: handlers read immutable data and the settings snapshot.
#include <cctype>
#include <string>
#include <string_view>

#include "net/router.h"
#include "web/assets.h"

namespace ticketaid::handlers {
namespace {

constexpr std::string_view kStaticPrefix = "/static/";

std::string content_security_policy(const Settings& settings) {
  // The helpdesk's own pages (server.allowed_origins) may frame the console.
  std::string ancestors = "'self'";
  for (const auto& origin : settings.server_allowed_origins)
    ancestors += " " + origin;
  return "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
         "font-src 'self'; connect-src 'self'; manifest-src 'self'; base-uri 'none'; "
         "form-action 'self'; object-src 'none'; frame-ancestors " +
         ancestors + "; require-trusted-types-for 'script'; trusted-types dompurify";
}

void add_security_headers(HttpReply& reply, const Settings& settings) {
  reply.headers["Content-Security-Policy"] = content_security_policy(settings);
  reply.headers["X-Content-Type-Options"] = "nosniff";
  reply.headers["Referrer-Policy"] = "same-origin";
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t'))
    text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t'))
    text.remove_suffix(1);
  return text;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  }
  return true;
}

// Calls f on each comma-separated element of a header value, trimmed.
template <class F>
void for_each_element(std::string_view list, F f) {
  while (!list.empty()) {
    const auto comma = list.find(',');
    f(trim(list.substr(0, comma)));
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
  }
}

// Accept-Encoding names gzip without q=0 (RFC 9110 §12.5.3).
bool accepts_gzip(std::string_view accept_encoding) {
  bool gzip = false;
  for_each_element(accept_encoding, [&](std::string_view element) {
    const auto semicolon = element.find(';');
    const auto coding = trim(element.substr(0, semicolon));
    if (!iequals(coding, "gzip") && !iequals(coding, "x-gzip")) return;
    bool refused = false;
    if (semicolon != std::string_view::npos) {
      auto q = trim(element.substr(semicolon + 1));
      if (q.starts_with("q=") || q.starts_with("Q=")) {
        q.remove_prefix(2);
        refused = !q.empty() && q.find_first_not_of("0.") == std::string_view::npos;
      }
    }
    gzip = !refused;
  });
  return gzip;
}

// If-None-Match names this file's version, in either encoding (weak comparison,
// RFC 9110 §13.1.2).
bool not_modified(std::string_view if_none_match, const web::Asset& asset) {
  bool match = false;
  for_each_element(if_none_match, [&](std::string_view tag) {
    if (tag.starts_with("W/")) tag.remove_prefix(2);
    match = match || tag == "*" || tag == asset.etag || tag == asset.gzip_etag;
  });
  return match;
}

void serve(const HttpRequest& request, HttpResponder& responder, const web::Asset& asset,
           const Settings& settings) {
  HttpReply reply;
  add_security_headers(reply, settings);
  reply.headers["Cache-Control"] =
      asset.immutable ? "public, max-age=31536000, immutable" : "no-cache";
  // A module loaded by a helpdesk page on an allowed origin (the Origin check of
  // net/access.cpp has passed) is a CORS request.
  if (!request.origin.empty()) {
    reply.headers["Access-Control-Allow-Origin"] = request.origin;
    reply.headers["Vary"] = "Origin";
  }
  const bool gzip = !asset.gzip.empty() && accepts_gzip(request.accept_encoding);
  if (!asset.gzip.empty()) {
    auto& vary = reply.headers["Vary"];
    vary += vary.empty() ? "Accept-Encoding" : ", Accept-Encoding";
  }
  reply.headers["ETag"] = std::string(gzip ? asset.gzip_etag : asset.etag);
  if (not_modified(request.if_none_match, asset)) {
    reply.status = 304;
    return responder.reply(std::move(reply));
  }
  reply.content_type = std::string(asset.content_type);
  if (gzip) reply.headers["Content-Encoding"] = "gzip";
  reply.body = std::string(gzip ? asset.gzip : asset.body);
  responder.reply(std::move(reply));
}

void not_found(HttpResponder& responder, const std::string& path) {
  responder.reply(error_reply(404, ErrorCode::not_found, "no such file: " + path));
}

// The page file of a console route: /tickets/{id} is the ticket console.
std::string_view page_of(std::string_view path) {
  while (!path.empty() && path.front() == '/')
    path.remove_prefix(1);
  while (!path.empty() && path.back() == '/')
    path.remove_suffix(1);
  if (path == "chat") return "chat.html";
  if (path == "history") return "history.html";
  if (path == "status") return "status.html";
  return "index.html";  // "" and tickets/{id}
}

std::string html_attribute_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 8);
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

bool is_form(std::string_view content_type) {
  const auto type = trim(content_type.substr(0, content_type.find(';')));
  return iequals(type, "application/x-www-form-urlencoded");
}

}  // namespace

void web_page(HttpRequest& request, const std::shared_ptr<HttpResponder>& responder,
              const std::shared_ptr<const ServerContext>& context) {
  const web::Asset* page = web::find_asset(page_of(request.path));
  if (page == nullptr) return not_found(*responder, request.path);
  serve(request, *responder, *page, *context->settings());
}

void web_asset(HttpRequest& request, const std::shared_ptr<HttpResponder>& responder,
               const std::shared_ptr<const ServerContext>& context) {
  std::string_view name = request.path;
  if (!name.starts_with(kStaticPrefix)) return not_found(*responder, request.path);
  name.remove_prefix(kStaticPrefix.size());
  const web::Asset* asset = web::find_asset(name);
  // Pages have their own routes; each has one address.
  if (asset == nullptr || name.ends_with(".html")) return not_found(*responder, request.path);
  serve(request, *responder, *asset, *context->settings());
}

// A helpdesk opens a ticket whose text is too long for a link with a form:
//   <form method="post" action="http://ticketaid:8080/tickets/4711">
//     <input type="hidden" name="body" value="...">
// The answer is the console page with the text in a meta element, which the page
// reads (src/web/console.js); it is never cached.
void web_posted_ticket(HttpRequest& request, const std::shared_ptr<HttpResponder>& responder,
                       const std::shared_ptr<const ServerContext>& context) {
  if (!is_form(request.content_type)) {
    return responder->reply(
        error_reply(415, ErrorCode::bad_request,
                    "send the form as application/x-www-form-urlencoded (an HTML form's default)"));
  }
  const web::Asset* page = web::find_asset("index.html");
  if (page == nullptr) return not_found(*responder, request.path);
  std::string html(page->body);
  const auto fields = parse_query(request.body);
  if (auto body = fields.find("body"); body != fields.end()) {
    const auto head_end = html.find("</head>");
    if (head_end != std::string::npos) {
      html.insert(head_end, "<meta name=\"ticketaid-posted-body\" content=\"" +
                                html_attribute_escape(body->second) + "\">\n");
    }
  }
  HttpReply reply;
  add_security_headers(reply, *context->settings());
  reply.headers["Cache-Control"] = "no-store";
  reply.content_type = std::string(page->content_type);
  reply.body = std::move(html);
  responder->reply(std::move(reply));
}

}  // namespace ticketaid::handlers
