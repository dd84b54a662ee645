// REST endpoints for chat sessions (SPEC §3) and a ticket's conversation. The rules
// (limits, expiry, idempotency) live in core/chat_service; this file maps HTTP to
// them. Blocking calls run on the blocking executor.
#include <algorithm>
#include <mutex>

#include <nlohmann/json.hpp>

#include "core/frames.h"
#include "core/ids.h"
#include "net/router.h"
#include "util/clock.h"
#include "util/metrics.h"

namespace ticketaid::handlers {
namespace {

using nlohmann::json;

json message_json(const StoredMessage& m) {
  json j = {{"id", m.id},
            {"role", m.role},
            {"content", m.content},
            {"createdAt", iso8601_utc(m.created_at_ms)}};
  if (!m.client_message_id.empty()) j["messageId"] = m.client_message_id;
  if (m.role == "assistant") {
    if (!m.reply_to.empty()) j["replyTo"] = m.reply_to;
    j["model"] = m.stats.model;
    j["promptTokens"] = m.stats.prompt_tokens ? json(*m.stats.prompt_tokens) : json();
    j["responseTokens"] = m.stats.response_tokens ? json(*m.stats.response_tokens) : json();
    j["durationMs"] = m.stats.duration_ms ? json(*m.stats.duration_ms) : json();
  }
  return j;
}

json session_json(const ConversationInfo& s, const ServerContext& context) {
  json j = {{"id", s.id},
            {"userId", s.user_id},
            {"title", s.title},
            {"model", s.model},
            {"createdAt", iso8601_utc(s.created_at_ms)},
            {"updatedAt", iso8601_utc(s.last_activity_ms)},
            {"lastActivity", iso8601_utc(s.last_activity_ms)},
            {"expiresAt", iso8601_utc(context.chats.expires_at_ms(s, *context.settings()))},
            {"messageCount", s.message_count},
            {"totalTokens", s.total_tokens}};
  j["avgResponseTimeMs"] = s.avg_response_ms ? json(*s.avg_response_ms) : json();
  return j;
}

Status bad(std::string message) {
  return Status::error(ErrorCode::bad_request, std::move(message));
}

// Reads an optional string field; a present field of another type is an error.
Status optional_string(const json& body, const char* name, std::string& out) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return Status::ok();
  if (!it->is_string()) return bad(std::string("\"") + name + "\" must be a string");
  out = it->get<std::string>();
  return Status::ok();
}

Status required_string(const json& body, const char* name, std::string& out) {
  if (Status s = optional_string(body, name, out); !s) return s;
  if (out.empty()) return bad(std::string("\"") + name + "\" must be a non-empty string");
  return Status::ok();
}

Status check_ids(const std::string& user_id, const std::string& message_id,
                 const std::string& model) {
  if (!user_id.empty() && !valid_user_id(user_id)) {
    return bad("a userId is 1 to 256 characters of A-Z a-z 0-9 . _ @ : - | +");
  }
  if (!message_id.empty() && !valid_message_id(message_id)) {
    return bad("a messageId is 1 to 128 characters of A-Z a-z 0-9 . _ : -");
  }
  if (model.size() > 200) return bad("the model name is too long");
  return Status::ok();
}

// A chat session belongs to its user (SPEC §4): another user gets 403, an admin and
// anonymous callers (auth.mode none) may act on every session.
Status check_user(const Identity& who, const std::string& user_id) {
  if (who.may_access(user_id)) return Status::ok();
  return Status::error(ErrorCode::forbidden, "this belongs to another user");
}

// Blocking: the session's owner checked against the caller. An unknown session passes,
// for the caller to answer not_found as it would anyway.
Status check_owner(const ServerContext& context, const Identity& who, const std::string& id) {
  if (who.anonymous || who.admin) return Status::ok();
  auto found = context.store.find_conversation(id);
  if (!found) return found.status();
  if (!found.value()) return Status::ok();
  return check_user(who, found.value()->user_id);
}

std::optional<std::string> session_id_of(const HttpRequest& request,
                                         const std::shared_ptr<HttpResponder>& responder,
                                         const char* param = "id") {
  const std::string& id = request.params.at(param);
  if (!valid_session_id(id)) {
    responder->reply(error_reply(bad("a session id is 1 to 64 characters of A-Z a-z 0-9 _ -")));
    return std::nullopt;
  }
  return id;
}

// The page of a conversation's messages, oldest first.
HttpReply messages_page(const ServerContext& context, const std::string& conversation_id,
                        const Page& page) {
  auto found = context.store.list_messages(conversation_id, page.limit, page.offset);
  if (!found) return error_reply(found.status());
  json items = json::array();
  for (const auto& m : found.value().items)
    items.push_back(message_json(m));
  return json_reply(200, page_json(std::move(items), found.value().total, page));
}

// Answers a chat message over HTTP: streamed as NDJSON, or, once the reply is
// stored, as {message, reply} (plus the session, for /start).
class ChatReplySink final : public ReplySink {
 public:
  ChatReplySink(std::shared_ptr<HttpResponder> responder,
                std::shared_ptr<const ServerContext> context, bool stream, int status,
                std::optional<json> session)
      : responder_(std::move(responder)),
        context_(std::move(context)),
        stream_(stream),
        status_(status),
        session_(std::move(session)) {}

  void on_stored(const Result<StoredMessage>& message) {
    std::lock_guard lock(mutex_);
    if (message) message_ = message.value();
  }

  void deliver(const Frame& frame, bool final) override {
    if (stream_) {
      responder_->write_chunk(*frame + "\n");
      if (final) responder_->end_stream();
      return;
    }
    if (!final) return;
    auto end = json::parse(*frame, nullptr, false);
    if (end.value("type", "") != "done") {
      auto code = parse_error_code(end.value("code", "internal"));
      responder_->reply(
          error_reply(Status::error(code.value_or(ErrorCode::internal), end.value("message", ""))));
      return;
    }
    std::optional<StoredMessage> message;
    {
      std::lock_guard lock(mutex_);
      message = message_;
    }
    if (!message) {
      responder_->reply(error_reply(Status::error(ErrorCode::internal, "the message was lost")));
      return;
    }
    auto responder = responder_;
    auto context = context_;
    auto session = session_;
    const int status = status_;
    context_->blocking([responder, context, session, status, message = *message] {
      auto reply = context->store.find_reply(message.conversation_id, message.id);
      if (!reply) return responder->reply(error_reply(reply.status()));
      if (!reply.value()) {
        return responder->reply(
            error_reply(Status::error(ErrorCode::internal, "the reply was not stored")));
      }
      json body = {{"message", message_json(message)}, {"reply", message_json(*reply.value())}};
      if (session) {
        // The session as it is now, with the new messages counted.
        auto now = context->chats.find_session(message.conversation_id);
        body["session"] = now ? session_json(now.value(), *context) : *session;
      }
      responder->reply(json_reply(status, body));
    });
  }

 private:
  std::shared_ptr<HttpResponder> responder_;
  std::shared_ptr<const ServerContext> context_;
  const bool stream_;
  const int status_;
  const std::optional<json> session_;
  std::mutex mutex_;
  std::optional<StoredMessage> message_;
};

// Sends a message to the model for a chat session and answers over HTTP.
void ask(ChatMessageRequest message, const HttpRequest& request,
         const std::shared_ptr<HttpResponder>& responder,
         const std::shared_ptr<const ServerContext>& context, int status,
         std::optional<json> session) {
  const bool stream = request.accept.find("application/x-ndjson") != std::string::npos;
  if (stream) responder->start_stream(200, "application/x-ndjson");
  auto sink = std::make_shared<ChatReplySink>(responder, context, stream, status, session);
  if (stream && session) {
    responder->write_chunk(json({{"type", "session"}, {"session", *session}}).dump() + "\n");
  }
  std::weak_ptr<ReplySink> weak = sink;
  responder->on_close([weak] {
    if (auto s = weak.lock()) s->detach(false);
  });
  metrics().messages_total.add();
  context->chats.send(std::move(message), sink,
                      [sink](const Result<StoredMessage>& stored) { sink->on_stored(stored); });
}

}  // namespace

void create_session(HttpRequest& request, const std::shared_ptr<HttpResponder>& responder,
                    const std::shared_ptr<const ServerContext>& context) {
  auto body = parse_json_object(request.body);
  if (!body) return responder->reply(error_reply(body.status()));
  std::string user_id, title, model;
  Status s = required_string(*body, "userId", user_id);
  if (s) s = optional_string(*body, "title", title);
  if (s) s = optional_string(*body, "model", model);
  if (s) s = check_ids(user_id, "", model);
  if (s && title.size() > 500) s = bad("the title is longer than 500 bytes");
  if (s) s = check_user(request.identity, user_id);
  if (!s) return responder->reply(error_reply(s));
  blocking_reply(responder, context, [context, user_id, title, model] {
    auto created = context->chats.create_session(user_id, title, model);
    if (!created) return error_reply(created.status());
    return json_reply(201, session_json(created.value(), *context));
  });
}

void get_session(HttpRequest& request, const std::shared_ptr<HttpResponder>& responder,
                 const std::shared_ptr<const ServerContext>& context) {
  auto id = session_id_of(request, responder);
  if (!id) return;
  blocking_reply(responder, context, [context, id = *id, who = request.identity] {
    auto session = context->chats.find_session(id);
    if (!session) return error_reply(session.status());
    if (Status s = check_user(who, session->user_id); !s) return error_reply(s);
    return json_reply(200, session_json(session.value(), *context));
  });
}

void delete_session(HttpRequest& request, const std::shared_ptr<HttpResponder>& responder,
                    const std::shared_ptr<const ServerContext>& context) {
  auto id = session_id_of(request, responder);
  if (!id) return;
  blocking_reply(responder, context, [context, id = *id, who = request.identity] {
    if (Status s = check_owner(*context, who, id); !s) return error_reply(s);
    auto deleted = context->store.delete_chat_session(id);
    if (!deleted) return error_reply(deleted.status());
    if (!deleted.value()) return error_reply(404, ErrorCode::not_found, "no chat session " + id);
    return no_content();
  });
}

void list_user_sessions(HttpRequest& request, const std::shared_ptr<HttpResponder>& responder,
                        const std::shared_ptr<const ServerContext>& context) {
  const std::string& user_id = request.params.at("userId");
  if (Status s = check_ids(user_id, "", ""); !s) return responder->reply(error_reply(s));
  if (Status s = check_user(request.identity, user_id); !s) {
    return responder->reply(error_reply(s));
  }
  auto page = parse_page(request);
  if (!page) return responder->reply(error_reply(page.status()));
  blocking_reply(responder, context, [context, user_id, page = page.value()] {
    auto found = context->store.list_user_sessions(user_id, page.limit, page.offset);
    if (!found) return error_reply(found.status());
    json items = json::array();
    auto settings = context->settings();
    for (const auto& s : found.value().items) {
      if (!context->chats.expired(s, *settings)) items.push_back(session_json(s, *context));
    }
    return json_reply(200, page_json(std::move(items), found.value().total, page));
  });
}

void append_message(HttpRequest& request, const std::shared_ptr<HttpResponder>& responder,
                    const std::shared_ptr<const ServerContext>& context) {
  auto id = session_id_of(request, responder);
  if (!id) return;
  auto body = parse_json_object(request.body);
  if (!body) return responder->reply(error_reply(body.status()));
  std::string role, content, message_id;
  Status s = required_string(*body, "role", role);
  if (s && role != "user" && role != "assistant" && role != "system") {
    s = bad("\"role\" must be user, assistant or system");
  }
  if (s) s = required_string(*body, "content", content);
  if (s) s = optional_string(*body, "messageId", message_id);
  if (s) s = check_ids("", message_id, "");
  if (!s) return responder->reply(error_reply(s));
  metrics().messages_total.add();
  blocking_reply(
      responder, context, [context, id = *id, role, content, message_id, who = request.identity] {
        if (Status s = check_owner(*context, who, id); !s) return error_reply(s);
        auto appended = context->chats.append(id, role, content, message_id);
        if (!appended) return error_reply(appended.status());
        return json_reply(appended->existed ? 200 : 201, message_json(appended->message));
      });
}

void list_messages(HttpRequest& request, const std::shared_ptr<HttpResponder>& responder,
                   const std::shared_ptr<const ServerContext>& context) {
  auto id = session_id_of(request, responder);
  if (!id) return;
  auto page = parse_page(request);
  if (!page) return responder->reply(error_reply(page.status()));
  blocking_reply(responder, context,
                 [context, id = *id, page = page.value(), who = request.identity] {
                   auto session = context->chats.find_session(id);
                   if (!session) return error_reply(session.status());
                   if (Status s = check_user(who, session->user_id); !s) return error_reply(s);
                   return messages_page(*context, id, page);
                 });
}

void ticket_conversation(HttpRequest& request, const std::shared_ptr<HttpResponder>& responder,
                         const std::shared_ptr<const ServerContext>& context) {
  const std::string& ticket_id = request.params.at("ticketId");
  if (!valid_ticket_id(ticket_id)) {
    return responder->reply(
        error_reply(bad("a ticket id is 1 to 128 characters of A-Z a-z 0-9 . _ : -")));
  }
  auto page = parse_page(request);
  if (!page) return responder->reply(error_reply(page.status()));
  blocking_reply(responder, context, [context, ticket_id, page = page.value()] {
    auto ticket = context->store.find_ticket_session(ticket_id);
    if (!ticket) return error_reply(ticket.status());
    if (!ticket.value()) {
      return error_reply(404, ErrorCode::not_found, "ticket " + ticket_id + " has no AI session");
    }
    return messages_page(*context, ticket.value()->conversation_id, page);
  });
}

void start_chat(HttpRequest& request, const std::shared_ptr<HttpResponder>& responder,
                const std::shared_ptr<const ServerContext>& context) {
  auto body = parse_json_object(request.body);
  if (!body) return responder->reply(error_reply(body.status()));
  std::string user_id, title, model, initial;
  Status s = required_string(*body, "userId", user_id);
  if (s) s = optional_string(*body, "title", title);
  if (s) s = optional_string(*body, "modelId", model);
  if (s) s = required_string(*body, "initialMessage", initial);
  if (s) s = check_ids(user_id, "", model);
  if (s && title.size() > 500) s = bad("the title is longer than 500 bytes");
  if (s) s = context->chats.check_content(initial, *context->settings());
  if (s) s = check_user(request.identity, user_id);
  if (!s) return responder->reply(error_reply(s));
  if (title.empty()) {
    // At most 80 bytes of the message, cut between characters (it is valid UTF-8).
    std::size_t cut = std::min<std::size_t>(initial.size(), 80);
    while (cut < initial.size() && (static_cast<unsigned char>(initial[cut]) & 0xC0) == 0x80)
      --cut;
    title = initial.substr(0, cut);
  }
  context->blocking([request, responder, context, user_id, title, model, initial] {
    auto created = context->chats.create_session(user_id, title, model);
    if (!created) return responder->reply(error_reply(created.status()));
    ChatMessageRequest message;
    message.conversation_id = created->id;
    message.content = initial;
    message.model = model;
    ask(std::move(message), request, responder, context, 201,
        session_json(created.value(), *context));
  });
}

void continue_chat(HttpRequest& request, const std::shared_ptr<HttpResponder>& responder,
                   const std::shared_ptr<const ServerContext>& context) {
  auto body = parse_json_object(request.body);
  if (!body) return responder->reply(error_reply(body.status()));
  ChatMessageRequest message;
  Status s = required_string(*body, "sessionId", message.conversation_id);
  if (s && !valid_session_id(message.conversation_id)) {
    s = bad("a session id is 1 to 64 characters of A-Z a-z 0-9 _ -");
  }
  if (s) s = required_string(*body, "message", message.content);
  if (s) s = optional_string(*body, "modelId", message.model);
  if (s) s = optional_string(*body, "messageId", message.message_id);
  if (s) s = check_ids("", message.message_id, message.model);
  if (!s) return responder->reply(error_reply(s));
  if (request.identity.anonymous || request.identity.admin) {
    return ask(std::move(message), request, responder, context, 200, std::nullopt);
  }
  context->blocking([request, responder, context, message = std::move(message)]() mutable {
    if (Status s = check_owner(*context, request.identity, message.conversation_id); !s) {
      return responder->reply(error_reply(s));
    }
    ask(std::move(message), request, responder, context, 200, std::nullopt);
  });
}

}  // namespace ticketaid::handlers
