// REST endpoints for ticket AI sessions (SPEC §3). Store calls run on the blocking
// executor; POST joins the same engine (cache, single flight, queue) as the
// WebSocket, through a ReplySink that writes NDJSON, waits, or discards.
#include <nlohmann/json.hpp>

#include "core/frames.h"
#include "core/ids.h"
#include "net/router.h"
#include "util/clock.h"
#include "util/metrics.h"

namespace ticketaid::handlers {
namespace {

using nlohmann::json;

json session_json(const TicketSession& s) {
  json j = {{"ticketId", s.ticket_id},
            {"revision", s.revision},
            {"prompt", s.prompt},
            {"response", s.response},
            {"status", to_string(s.status)},
            {"model", s.stats.model},
            {"createdAt", iso8601_utc(s.created_at_ms)},
            {"updatedAt", iso8601_utc(s.updated_at_ms)},
            {"revisionCount", s.revision_count}};
  j["promptTokens"] = s.stats.prompt_tokens ? json(*s.stats.prompt_tokens) : json();
  j["responseTokens"] = s.stats.response_tokens ? json(*s.stats.response_tokens) : json();
  j["durationMs"] = s.stats.duration_ms ? json(*s.stats.duration_ms) : json();
  if (!s.stats.done_reason.empty()) j["doneReason"] = s.stats.done_reason;
  if (!s.failure_reason.empty()) j["failureReason"] = s.failure_reason;
  return j;
}

// The validated {ticketId}, or a 400 already sent.
std::optional<std::string> ticket_id_of(const HttpRequest& request,
                                        const std::shared_ptr<HttpResponder>& responder) {
  const std::string& id = request.params.at("ticketId");
  if (!valid_ticket_id(id)) {
    responder->reply(error_reply(400, ErrorCode::bad_request,
                                 "a ticket id is 1 to 128 characters of A-Z a-z 0-9 . _ : -"));
    return std::nullopt;
  }
  return id;
}

// Writes each frame as one NDJSON line; the client leaving detaches it.
class NdjsonSink final : public ReplySink {
 public:
  explicit NdjsonSink(std::shared_ptr<HttpResponder> responder)
      : responder_(std::move(responder)) {}
  void deliver(const Frame& frame, bool final) override {
    responder_->write_chunk(*frame + "\n");
    if (final) responder_->end_stream();
  }

 private:
  std::shared_ptr<HttpResponder> responder_;
};

// Waits for the end of the reply, then answers with the stored session or the error.
class WaitingSink final : public ReplySink {
 public:
  WaitingSink(std::shared_ptr<HttpResponder> responder,
              std::shared_ptr<const ServerContext> context, std::string ticket_id)
      : responder_(std::move(responder)),
        context_(std::move(context)),
        ticket_id_(std::move(ticket_id)) {}
  void deliver(const Frame& frame, bool final) override {
    if (!final) return;
    auto message = json::parse(*frame, nullptr, false);
    if (message.value("type", "") != "done") {
      auto code = parse_error_code(message.value("code", "internal"));
      responder_->reply(error_reply(
          Status::error(code.value_or(ErrorCode::internal), message.value("message", ""))));
      return;
    }
    blocking_reply(responder_, context_, [&store = context_->store, id = ticket_id_] {
      auto session = store.find_ticket_session(id);
      if (!session) return error_reply(session.status());
      if (!session.value()) {
        return error_reply(404, ErrorCode::not_found, "the session was deleted meanwhile");
      }
      return json_reply(200, session_json(*session.value()));
    });
  }

 private:
  std::shared_ptr<HttpResponder> responder_;
  std::shared_ptr<const ServerContext> context_;
  std::string ticket_id_;
};

// For ?wait=false: the generation runs on with no listener and is cached.
class DiscardingSink final : public ReplySink {
 public:
  void deliver(const Frame&, bool) override {}
};

}  // namespace

void get_ticket_session(HttpRequest& request, const std::shared_ptr<HttpResponder>& responder,
                        const std::shared_ptr<const ServerContext>& context) {
  auto id = ticket_id_of(request, responder);
  if (!id) return;
  blocking_reply(responder, context, [&store = context->store, id = *id] {
    auto session = store.find_ticket_session(id);
    if (!session) return error_reply(session.status());
    if (!session.value()) {
      return error_reply(404, ErrorCode::not_found, "ticket " + id + " has no AI session");
    }
    return json_reply(200, session_json(*session.value()));
  });
}

void list_ticket_revisions(HttpRequest& request, const std::shared_ptr<HttpResponder>& responder,
                           const std::shared_ptr<const ServerContext>& context) {
  auto id = ticket_id_of(request, responder);
  if (!id) return;
  auto page = parse_page(request);
  if (!page) return responder->reply(error_reply(page.status()));
  blocking_reply(responder, context, [&store = context->store, id = *id, page = page.value()] {
    auto current = store.find_ticket_session(id);
    if (!current) return error_reply(current.status());
    if (!current.value()) {
      return error_reply(404, ErrorCode::not_found, "ticket " + id + " has no AI session");
    }
    auto revisions = store.list_ticket_revisions(id);
    if (!revisions) return error_reply(revisions.status());
    const auto& all = revisions.value();
    json items = json::array();
    for (int64_t i = page.offset;
         i < static_cast<int64_t>(all.size()) && i < page.offset + page.limit; ++i) {
      items.push_back(session_json(all[i]));
    }
    return json_reply(200, page_json(std::move(items), static_cast<int64_t>(all.size()), page));
  });
}

void list_tickets(HttpRequest& request, const std::shared_ptr<HttpResponder>& responder,
                  const std::shared_ptr<const ServerContext>& context) {
  auto page = parse_page(request);
  if (!page) return responder->reply(error_reply(page.status()));
  std::optional<SessionStatus> status;
  if (auto it = request.query.find("status"); it != request.query.end() && !it->second.empty()) {
    status = parse_session_status(it->second);
    if (!status) {
      return responder->reply(error_reply(
          400, ErrorCode::bad_request,
          "status must be one of generating, complete, failed, interrupted, cancelled"));
    }
  }
  blocking_reply(responder, context, [&store = context->store, status, page = page.value()] {
    auto found = store.list_ticket_sessions(status, page.limit, page.offset);
    if (!found) return error_reply(found.status());
    json items = json::array();
    for (const auto& s : found.value().items)
      items.push_back(session_json(s));
    return json_reply(200, page_json(std::move(items), found.value().total, page));
  });
}

void delete_ticket_session(HttpRequest& request, const std::shared_ptr<HttpResponder>& responder,
                           const std::shared_ptr<const ServerContext>& context) {
  auto id = ticket_id_of(request, responder);
  if (!id) return;
  blocking_reply(responder, context, [&store = context->store, id = *id] {
    auto deleted = store.delete_ticket_session(id);
    if (!deleted) return error_reply(deleted.status());
    if (!deleted.value()) {
      return error_reply(404, ErrorCode::not_found, "ticket " + id + " has no AI session");
    }
    return no_content();
  });
}

void post_ticket_session(HttpRequest& request, const std::shared_ptr<HttpResponder>& responder,
                         const std::shared_ptr<const ServerContext>& context) {
  auto id = ticket_id_of(request, responder);
  if (!id) return;
  auto body = parse_json_object(request.body);
  if (!body) return responder->reply(error_reply(body.status()));
  auto ticket_body = body->find("ticketBody");
  if (ticket_body == body->end() || !ticket_body->is_string() ||
      ticket_body->get_ref<const std::string&>().empty()) {
    return responder->reply(
        error_reply(400, ErrorCode::bad_request, "\"ticketBody\" must be a non-empty string"));
  }
  bool regenerate = false;
  if (auto it = body->find("regenerate"); it != body->end() && !it->is_null()) {
    if (!it->is_boolean()) {
      return responder->reply(
          error_reply(400, ErrorCode::bad_request, "\"regenerate\" must be a boolean"));
    }
    regenerate = it->get<bool>();
  }
  TicketRequest ask{*id, ticket_body->get<std::string>(), regenerate};
  metrics().messages_total.add();

  auto wait = request.query.find("wait");
  if (wait != request.query.end() && wait->second == "false") {
    context->tickets.request_answer(std::move(ask), std::make_shared<DiscardingSink>());
    return responder->reply(json_reply(202, {{"ticketId", *id}, {"status", "generating"}}));
  }
  std::shared_ptr<ReplySink> sink;
  if (request.accept.find("application/x-ndjson") != std::string::npos) {
    responder->start_stream(200, "application/x-ndjson");
    sink = std::make_shared<NdjsonSink>(responder);
  } else {
    sink = std::make_shared<WaitingSink>(responder, context, *id);
  }
  // A client that goes away leaves the reply, exactly as a closed WebSocket does.
  std::weak_ptr<ReplySink> weak = sink;
  responder->on_close([weak] {
    if (auto s = weak.lock()) s->detach(false);
  });
  context->tickets.request_answer(std::move(ask), std::move(sink));
}

}  // namespace ticketaid::handlers
