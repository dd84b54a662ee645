#include "core/chat_service.h"

#include <algorithm>
#include <unordered_map>

#include "core/frames.h"
#include "util/log.h"
#include "util/text.h"

namespace ticketaid {

ChatService::ChatService(Store& store, LlmClient& llm, GenerationQueue& queue, Clock& clock,
                         SettingsSource settings, BlockingExecutor blocking)
    : store_(store),
      llm_(llm),
      queue_(queue),
      clock_(clock),
      settings_(std::move(settings)),
      blocking_(std::move(blocking)) {}

void ChatService::send(ChatMessageRequest request, std::shared_ptr<ReplySink> sink,
                       MessageStored on_stored) {
  blocking_([this, request = std::move(request), sink = std::move(sink),
             on_stored = std::move(on_stored)] { handle(request, sink, on_stored); });
}

int64_t ChatService::expires_at_ms(const ConversationInfo& session,
                                   const Settings& settings) const {
  return session.last_activity_ms + int64_t{settings.sessions_ttl_s} * 1000;
}

bool ChatService::expired(const ConversationInfo& session, const Settings& settings) const {
  return session.kind == "chat" && clock_.unix_ms() >= expires_at_ms(session, settings);
}

void ChatService::purge_expired() {
  auto settings = settings_();
  // The sessions that expired() calls expired: last activity + ttl <= now.
  auto purged = store_.purge_chat_sessions_idle_since(clock_.unix_ms() -
                                                      int64_t{settings->sessions_ttl_s} * 1000 + 1);
  if (!purged) {
    spdlog::warn("purging expired chat sessions failed: {}", purged.status().to_string());
  } else if (purged.value() > 0) {
    spdlog::info("purged {} expired chat session(s)", purged.value());
  }
}

void ChatService::shutdown() {
  shutting_down_ = true;
  flights_.stop_all(Status::error(ErrorCode::busy, "the daemon is shutting down"));
}

Status ChatService::check_content(const std::string& content, const Settings& settings) const {
  auto length = utf8_length(content);
  if (!length) return Status::error(ErrorCode::bad_request, "the message is not valid UTF-8");
  if (*length == 0) return Status::error(ErrorCode::bad_request, "the message is empty");
  if (*length > static_cast<std::size_t>(settings.sessions_max_message_chars)) {
    return Status::error(ErrorCode::too_large,
                         "the message has " + std::to_string(*length) +
                             " characters; the limit is " +
                             std::to_string(settings.sessions_max_message_chars));
  }
  return Status::ok();
}

Result<ConversationInfo> ChatService::create_session(const std::string& user_id,
                                                     const std::string& title,
                                                     const std::string& model) {
  auto settings = settings_();
  SessionLimits limits{settings->sessions_max_per_user,
                       settings->sessions_on_limit == "evict_oldest"};
  return store_.create_chat_session(user_id, title, model.empty() ? settings->ollama_model : model,
                                    limits);
}

Result<ConversationInfo> ChatService::find_session(const std::string& id) {
  auto found = store_.find_conversation(id);
  if (!found) return found.status();
  if (!found.value() || found.value()->kind != "chat" || expired(*found.value(), *settings_())) {
    return Status::error(ErrorCode::not_found, "no chat session " + id + " (or it expired)");
  }
  return std::move(*found.value());
}

Result<AppendOutcome> ChatService::append(const std::string& conversation_id,
                                          const std::string& role, const std::string& content,
                                          const std::string& message_id) {
  auto settings = settings_();
  if (Status s = check_content(content, *settings); !s) return s;
  auto session = find_session(conversation_id);
  if (!session) return session.status();
  return store_.append_message(conversation_id, role, content, message_id,
                               settings->sessions_max_messages);
}

Result<ConversationInfo> ChatService::resolve(const ChatMessageRequest& request,
                                              const Settings& settings) {
  std::string id = request.conversation_id;
  if (!request.ticket_id.empty()) {
    auto ticket = store_.find_ticket_session(request.ticket_id);
    if (!ticket) return ticket.status();
    if (!ticket.value() || ticket.value()->status != SessionStatus::complete) {
      return Status::error(ErrorCode::bad_request,
                           "ask for the ticket's answer before a follow-up question");
    }
    id = ticket.value()->conversation_id;
  }
  auto found = store_.find_conversation(id);
  if (!found) return found.status();
  if (!found.value() || expired(*found.value(), settings)) {
    return Status::error(ErrorCode::not_found, "no chat session " + id + " (or it expired)");
  }
  return std::move(*found.value());
}

void ChatService::handle(const ChatMessageRequest& request, const std::shared_ptr<ReplySink>& sink,
                         const MessageStored& on_stored) {
  auto fail = [&](const Status& status) {
    if (on_stored) on_stored(status);
    sink->deliver(frames::error(status), true);
  };
  if (shutting_down_ || refusing_) {
    return fail(Status::error(ErrorCode::busy, "the daemon is shutting down"));
  }
  auto settings = settings_();
  if (Status s = check_content(request.content, *settings); !s) return fail(s);
  auto conversation = resolve(request, *settings);
  if (!conversation) return fail(conversation.status());

  auto appended = store_.append_message(conversation->id, "user", request.content,
                                        request.message_id, settings->sessions_max_messages);
  if (!appended) return fail(appended.status());
  if (on_stored) on_stored(appended->message);
  if (sink->detached()) return;
  if (appended->reply) {
    sink->deliver(frames::cached_message(*appended->reply), false);
    sink->deliver(frames::done(appended->reply->stats, true), true);
    return;
  }
  std::string model = request.model;
  if (model.empty()) model = conversation->model;
  if (model.empty()) model = settings->ollama_model;
  reply_to(conversation.value(), appended->message, model, sink);
}

bool ChatService::serve_stored_reply(const ConversationInfo& conversation,
                                     const StoredMessage& message, ReplySink& sink) {
  auto reply = store_.find_reply(conversation.id, message.id);
  if (!reply || !reply.value()) return false;
  sink.deliver(frames::cached_message(*reply.value()), false);
  sink.deliver(frames::done(reply.value()->stats, true), true);
  return true;
}

void ChatService::reply_to(const ConversationInfo& conversation, const StoredMessage& message,
                           const std::string& model, const std::shared_ptr<ReplySink>& sink) {
  auto settings = settings_();
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto found = flights_.join_or_defer(conversation.id, message.id, false, sink,
                                        [this, conversation, message, model, sink] {
                                          blocking_([this, conversation, message, model, sink] {
                                            if (!sink->detached())
                                              reply_to(conversation, message, model, sink);
                                          });
                                        });
    if (found != SingleFlight::Found::none) return;
    bool served = false;
    auto generation = flights_.register_new(
        conversation.id, [&] { return served = serve_stored_reply(conversation, message, *sink); },
        [&] { return make_generation(conversation, message, model, *settings); }, sink);
    if (served) return;
    if (!generation) continue;
    generation->start(queue_);
    return;
  }
  sink->deliver(frames::error(Status::error(ErrorCode::internal,
                                            "the conversation kept changing state; try again")),
                true);
}

namespace {

// The messages sent to the model: the conversation up to `last` (inclusive), at most
// `limit` of them, starting at a user message. A ticket's body (seq 0) stays first.
// Each reply goes right after the message it answers: a message sent while an earlier
// reply was generating is stored before that reply, which is still part of its context.
std::vector<ChatMessage> context_window(const std::vector<StoredMessage>& history,
                                        const StoredMessage& last, int limit, bool keep_first) {
  std::unordered_map<std::string, const StoredMessage*> reply_of;  // message id -> reply
  for (const auto& m : history) {
    if (!m.reply_to.empty()) reply_of.emplace(m.reply_to, &m);
  }
  std::vector<const StoredMessage*> upto;
  for (const auto& m : history) {
    if (m.seq > last.seq || !m.reply_to.empty()) continue;
    upto.push_back(&m);
    auto reply = reply_of.find(m.id);
    if (m.id != last.id && reply != reply_of.end()) upto.push_back(reply->second);
  }
  std::size_t start = upto.size() > static_cast<std::size_t>(limit) ? upto.size() - limit : 0;
  while (start < upto.size() && upto[start]->role == "assistant")
    ++start;
  std::vector<ChatMessage> out;
  if (keep_first && !upto.empty() && upto.front()->seq == 0 && start > 0) {
    out.push_back({upto.front()->role, upto.front()->content});
  }
  for (std::size_t i = start; i < upto.size(); ++i)
    out.push_back({upto[i]->role, upto[i]->content});
  return out;
}

}  // namespace

std::shared_ptr<Generation> ChatService::make_generation(const ConversationInfo& conversation,
                                                         const StoredMessage& message,
                                                         const std::string& model,
                                                         const Settings& settings) {
  GenerationSpec spec = spec_from_settings(settings, model);
  spec.key = conversation.id;
  spec.log_fields = {{"SESSION_ID", conversation.id}};
  spec.prompt = message.id;

  const std::string conversation_id = conversation.id;
  const bool is_ticket = conversation.kind == "ticket";
  const int context = settings.sessions_context_messages;
  const std::string system_prompt = settings.ollama_system_prompt;
  spec.begin = [this, conversation_id, message, is_ticket, context,
                system_prompt](ChatRequest& request) -> Status {
    // Later messages may have arrived while this one waited: read a little more.
    auto history = store_.last_messages(conversation_id, context + 32);
    if (!history) return history.status();
    if (is_ticket && !history.value().empty() && history.value().front().seq != 0) {
      auto first = store_.list_messages(conversation_id, 1, 0);
      if (!first) return first.status();
      history.value().insert(history.value().begin(), first.value().items.begin(),
                             first.value().items.end());
    }
    request.messages.clear();
    if (!system_prompt.empty()) request.messages.push_back({"system", system_prompt});
    for (auto& m : context_window(history.value(), message, context, is_ticket)) {
      request.messages.push_back(std::move(m));
    }
    return Status::ok();
  };
  spec.commit = [this, conversation_id, message_id = message.id, model](
                    const std::string& answer,
                    const ChatOutcome& outcome) -> Result<GenerationStats> {
    GenerationStats stats{outcome.model.empty() ? model : outcome.model, outcome.prompt_tokens,
                          outcome.response_tokens, outcome.duration_ms, outcome.done_reason};
    auto stored = store_.store_reply(conversation_id, message_id, answer, stats);
    if (!stored) return stored.status();
    return stored->stats;
  };
  spec.abort = [conversation_id](const Status& why) {
    // The user's message stays stored; sending it again (same messageId) retries.
    spdlog::info("conversation {}: no reply stored: {}", conversation_id, why.to_string());
  };
  return std::make_shared<Generation>(std::move(spec), llm_, clock_,
                                      [this](Generation& g) { flights_.unregister(g); });
}

}  // namespace ticketaid
