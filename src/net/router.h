// The table of HTTP endpoints: method, path pattern and handler, in one place.
//
// Patterns are literal segments and {name} placeholders, which match one non-empty
// segment and land in HttpRequest::params (still to be validated by the handler).
// A path that matches with another method answers 405 with Allow; no match, 404.
//
// Thread-safety: dispatch may be called from any thread; the table is immutable.
#pragma once

#include <memory>

#include "net/http_api.h"
#include "net/server.h"

namespace ticketaid {

using HttpHandler = void (*)(HttpRequest& request, const std::shared_ptr<HttpResponder>& responder,
                             const std::shared_ptr<const ServerContext>& context);

// Runs work() on the blocking executor (for answers that need the store or the
// model) and replies with the HttpReply it returns, unless the client left meanwhile.
template <class Work>
void blocking_reply(const std::shared_ptr<HttpResponder>& responder,
                    const std::shared_ptr<const ServerContext>& context, Work work) {
  context->blocking([responder, work = std::move(work)]() mutable {
    if (!responder->closed()) responder->reply(work());
  });
}

void dispatch_http(HttpRequest request, const std::shared_ptr<HttpResponder>& responder,
                   const std::shared_ptr<const ServerContext>& context);

// Handlers, by file.
namespace handlers {
// service_endpoints.cpp
void health(HttpRequest&, const std::shared_ptr<HttpResponder>&,
            const std::shared_ptr<const ServerContext>&);
void ws_status(HttpRequest&, const std::shared_ptr<HttpResponder>&,
               const std::shared_ptr<const ServerContext>&);
void ready(HttpRequest&, const std::shared_ptr<HttpResponder>&,
           const std::shared_ptr<const ServerContext>&);
void prometheus_metrics(HttpRequest&, const std::shared_ptr<HttpResponder>&,
                        const std::shared_ptr<const ServerContext>&);
void list_models(HttpRequest&, const std::shared_ptr<HttpResponder>&,
                 const std::shared_ptr<const ServerContext>&);
// ticket_endpoints.cpp
void get_ticket_session(HttpRequest&, const std::shared_ptr<HttpResponder>&,
                        const std::shared_ptr<const ServerContext>&);
void post_ticket_session(HttpRequest&, const std::shared_ptr<HttpResponder>&,
                         const std::shared_ptr<const ServerContext>&);
void delete_ticket_session(HttpRequest&, const std::shared_ptr<HttpResponder>&,
                           const std::shared_ptr<const ServerContext>&);
void list_ticket_revisions(HttpRequest&, const std::shared_ptr<HttpResponder>&,
                           const std::shared_ptr<const ServerContext>&);
void list_tickets(HttpRequest&, const std::shared_ptr<HttpResponder>&,
                  const std::shared_ptr<const ServerContext>&);
// chat_endpoints.cpp
void create_session(HttpRequest&, const std::shared_ptr<HttpResponder>&,
                    const std::shared_ptr<const ServerContext>&);
void get_session(HttpRequest&, const std::shared_ptr<HttpResponder>&,
                 const std::shared_ptr<const ServerContext>&);
void delete_session(HttpRequest&, const std::shared_ptr<HttpResponder>&,
                    const std::shared_ptr<const ServerContext>&);
void list_user_sessions(HttpRequest&, const std::shared_ptr<HttpResponder>&,
                        const std::shared_ptr<const ServerContext>&);
void append_message(HttpRequest&, const std::shared_ptr<HttpResponder>&,
                    const std::shared_ptr<const ServerContext>&);
void list_messages(HttpRequest&, const std::shared_ptr<HttpResponder>&,
                   const std::shared_ptr<const ServerContext>&);
void ticket_conversation(HttpRequest&, const std::shared_ptr<HttpResponder>&,
                         const std::shared_ptr<const ServerContext>&);
void start_chat(HttpRequest&, const std::shared_ptr<HttpResponder>&,
                const std::shared_ptr<const ServerContext>&);
void continue_chat(HttpRequest&, const std::shared_ptr<HttpResponder>&,
                   const std::shared_ptr<const ServerContext>&);
// static_files.cpp: the web console (src/web), open routes: pages load before a token
// is entered. A page (/, /tickets/{id}, /chat, /history, /status); a file under /static/;
// POST /tickets/{id} with a form field "body" (a long ticket text from a helpdesk link).
void web_page(HttpRequest&, const std::shared_ptr<HttpResponder>&,
              const std::shared_ptr<const ServerContext>&);
void web_asset(HttpRequest&, const std::shared_ptr<HttpResponder>&,
               const std::shared_ptr<const ServerContext>&);
void web_posted_ticket(HttpRequest&, const std::shared_ptr<HttpResponder>&,
                       const std::shared_ptr<const ServerContext>&);
}  // namespace handlers

}  // namespace ticketaid
